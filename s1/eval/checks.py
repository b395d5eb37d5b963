"""Eval config checks: every bad value is reported with its key and the fix, before any model is loaded."""

from __future__ import annotations

from pathlib import Path

from s1.eval.methods import check_method_config
from s1.eval.sampling import check_sampling_config
from s1.infer import BACKENDS
from s1.infer.budget_forcing import bf_options
from s1.runtime import ConfigError, looks_local


def check_eval_config(cfg) -> None:
    e = cfg.eval
    if e.backend not in BACKENDS:
        raise ConfigError("eval.backend", e.backend, f"use one of {list(BACKENDS)}")
    if e.backend == "openai" and not e.base_url:
        raise ConfigError("eval.base_url", e.base_url, "backend=openai needs the server, e.g. "
                          "eval.base_url=http://127.0.0.1:8000/v1")
    if not e.benchmarks:
        raise ConfigError("eval.benchmarks", list(e.benchmarks), "name at least one: aime24, math500, synthetic "
                          "or a .jsonl path")
    for b in e.budgets:
        if b is not None and (not isinstance(b, int) or b <= 0):
            raise ConfigError("eval.budgets", list(e.budgets), "thinking budgets are positive token counts or null "
                              "(no cap), e.g. [500,1000,null]")
    bf_options(e.budget_forcing, "eval.budget_forcing")    # waits, minimum, answer cap: errors name the key
    for key, value, low in (("eval.num_samples", e.num_samples, 1), ("eval.max_new_tokens", e.max_new_tokens, 1),
                            ("eval.batch_size", e.batch_size, 1), ("eval.tokens_per_step", e.tokens_per_step, 1),
                            ("eval.rejection_max_tries", e.rejection_max_tries, 1),
                            ("eval.extrapolation_waits", e.extrapolation_waits, 1)):
        if value < low:
            raise ConfigError(key, value, f"must be >= {low}")
    if e.dtype not in (None, "auto", "float32", "bfloat16", "float16"):
        raise ConfigError("eval.dtype", e.dtype, "use float32 (the paper's evaluation), bfloat16, float16, auto, or "
                          "null for model.dtype")
    if e.get("paper_model", "s1") not in ("s1", "s1.1", "none"):
        raise ConfigError("eval.paper_model", e.paper_model, "use s1 (s1-32B's numbers), s1.1 (experiment=s1_1) or "
                          "none (no paper numbers beside this run)")
    if e.majority_model not in ("base", "trained"):
        raise ConfigError("eval.majority_model", e.majority_model, "use base (paper Fig. 4) or trained")
    check_sampling_config(cfg)                             # eval.top_p, eval.samples_per_benchmark
    check_method_config(e)                                 # the post-s1 methods' keys (eval.nowait, deer, ...)
    if e.temperature < 0:
        raise ConfigError("eval.temperature", e.temperature, "use 0 (greedy, the paper) or a positive temperature")
    if e.backend != "openai" and looks_local(e.model_path) and not (Path(e.model_path) / "config.json").exists():
        raise ConfigError("eval.model_path", e.model_path, "no HF model there: train first (make train), or point "
                          "eval.model_path at a checkpoint folder or hub name (e.g. simplescaling/s1-32B)")

