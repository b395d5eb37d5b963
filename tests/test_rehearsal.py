"""A slice of `make rehearsal` (experiment=rehearsal): the real Qwen2.5 0.5B through every stage, small.

The same config and stage scripts as `make rehearsal`, cut to 8 pool rows, a s1K of 2, 2 training steps at block
size 128 in one process without DeepSpeed, in the precision the rehearsal picks for the machine (train.bf16=null:
float32 on a CPU without AMX) (ZeRO-3 over 2 processes: `make rehearsal` runs it; tests/test_train_run.py checks
ZeRO-3 on the tiny model), and 2 AIME24 + 2 MATH500 questions. Skipped where the real model is not built
(`make real-model`). In the vLLM venv (`make test-vllm`) the model runs on vLLM, as in the rehearsal; in the main
venv (`make test`) the same stages run on the transformers engine (the only override). Where S1_REQUIRE names vllm
(make test-vllm) and vLLM does not import, the test fails instead of falling back.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CACHE, REPO, require_or_skip, required_groups, run_script

REAL_MODEL = CACHE / "models" / "qwen2.5-0.5b-local"

try:
    import vllm  # noqa: F401
    ENGINE, VLLM_ERROR = "vllm", None
except Exception as e:  # not installed here, or a CUDA-built extra that fails to load
    ENGINE, VLLM_ERROR = "transformers", f"{type(e).__name__}: {e}"

SLICE = ["curate.sources.0.size=8", "curate.diversity.num_samples=2", "curate.difficulty.max_new_tokens=24",
         "curate.difficulty.batch_size=8", "curate.traces.max_tokens=4",
         "train.max_steps=2", "train.block_size=128", "train.nproc_per_node=1", "train.deepspeed=null",
         "train.save_steps=0",      # no checkpoint: the final model alone is 1.2 GB of disk
         "eval.limit=2", "eval.budgets=[null,16]", "eval.wait_counts=[1]", "eval.max_new_tokens=48",
         "eval.budget_forcing.answer_max_tokens=16"]
ON_TRANSFORMERS = ["curate.difficulty.backend=transformers", "curate.traces.serve_backend=transformers",
                   "eval.backend=transformers"]


@pytest.mark.slow
def test_rehearsal_slice_runs_every_stage_on_the_real_model(tmp_path):
    if not (REAL_MODEL / "config.json").exists():
        require_or_skip("real-model", f"the real model is not built at {REAL_MODEL}: run `make real-model`")
    if ENGINE == "transformers" and "vllm" in required_groups():
        pytest.fail(f"[vllm] S1_REQUIRE names vllm but it does not import ({VLLM_ERROR}): no fallback to transformers",
                    pytrace=False)
    args = ["experiment=rehearsal", f"paths.runs_dir={tmp_path}", "run.name=slice", *SLICE]
    if ENGINE == "transformers":
        args += ON_TRANSFORMERS
    logs = {script: run_script(script, *args, timeout=1200) for script in ("curate.py", "train.py", "eval.py")}
    run = tmp_path / "slice"
    if ENGINE == "vllm":
        # the eval above shares one sweep in rounds (the log says so); one setting at a time, budget forcing runs
        # inside vLLM (one request per sequence) and gives the same records
        eval_log = logs["eval.py"].stdout + logs["eval.py"].stderr
        assert "shared sweep: in rounds" in eval_log, eval_log[-3000:]
        alone = run_script("eval.py", *args, "eval.sweep_sharing=false", f"eval.output_dir={tmp_path / 'one_pass'}",
                           timeout=1200)
        assert "budget forcing: in one pass per sequence" in alone.stdout + alone.stderr
        decided = ("model", "benchmark", "question_id", "method", "budget", "sample",    # the key, then the record
                   "text", "thinking_tokens", "answer_tokens", "waits_used", "correct")

        def records(path: Path) -> dict:
            rows = [json.loads(line) for line in path.read_text().splitlines()]
            return {tuple(str(r[k]) for k in decided[:6]): {k: r.get(k) for k in decided} for r in rows}

        rounds = records(run / "eval" / "generations.jsonl")
        one_pass = records(tmp_path / "one_pass" / "generations.jsonl")
        assert one_pass.keys() == rounds.keys() and len(one_pass) >= 8
        for key in one_pass:
            assert one_pass[key] == rounds[key], key
    subprocess.run([sys.executable, str(REPO / "scripts" / "report.py"), str(run)], cwd=REPO, check=True,
                   capture_output=True, timeout=300)

    # curate: a real funnel (every step's input is the previous step's output; drops add up) down to the s1K
    steps = json.loads((run / "curate" / "funnel.json").read_text())["steps"]
    assert steps[0]["step"] == "load" and steps[0]["kept"] == 8
    for before, step in zip(steps, steps[1:]):
        assert step["in"] == before["kept"], step["step"]
        assert step["in"] - step["kept"] == sum(step["dropped"].values()), step["step"]
    s1k = [json.loads(line) for line in (run / "curate" / "s1k.jsonl").read_text().splitlines()]
    assert len(s1k) == steps[-1]["kept"] == 2
    references = [json.loads(line) for f in (run / "curate" / "cache").rglob("*.jsonl")
                  for line in f.read_text().splitlines()]
    assert references, "the real model should have answered the pool questions (reference cache)"

    # train: 2 real steps, a finite loss at each, a model dir with the real template
    summary = json.loads((run / "train" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["data"]["kept"] == 2
    losses = [json.loads(line)["loss"] for line in (run / "train" / "train_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    final = Path(summary["final"]) if Path(summary["final"]).is_absolute() else REPO / summary["final"]
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(final).chat_template
    assert "<|im_start|>" in template, "the trained model dir should carry the real ChatML template"

    # eval: the trained real model, no cap, a thinking cap and one forced "Wait", on both benchmarks
    rows = json.loads((run / "eval" / "metrics.json").read_text())["rows"]
    seen = {(r["benchmark"], r["method"], r["budget"]) for r in rows if r["model"] == "trained"}
    for bench in ("aime24", "math500"):
        assert {(bench, "no_bf", None), (bench, "bf", 16)} <= seen, seen
        assert any(b == bench and m == "wait" for b, m, _ in seen), seen
    assert all(r["questions"] == 2 for r in rows)
    report = (run / "report.md").read_text()
    for section in ("### Funnel", "## Training", "### Table 1 layout"):
        assert section in report
    assert not list((run / "train").rglob("checkpoint-*")), "train.save_steps=0 should write no checkpoint"
    shutil.rmtree(final)    # 2.5 GB


def test_rehearsal_zero3_bounds_what_deepspeed_holds_at_once_below_the_model():
    """README: the paper's configs/deepspeed/zero3.json was OOM-killed on the 24 GiB rehearsal host (two ZeRO-3
    processes of ~12 GiB and growing; measured with bench/peak_memory.py, not here). The rehearsal's
    zero3_small_host.json bounds each buffer DeepSpeed sizes by config: parameters kept gathered, prefetched or
    reused, and the optimizer's sub-group, to at most a quarter of the 0.5B model; zero3.json lets each hold it all."""
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR
    from s1.train.memory import ModelShape

    # Qwen2.5-0.5B as published (tied embeddings): 494M; the local build unties them (630M), so a quarter of 494M
    # is the stricter bound
    params = ModelShape(896, 24, 14, 2, 4864, 151936, tied=True).params
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=["experiment=rehearsal", f"paths.repo={REPO}"])
    bounded = ("stage3_max_live_parameters", "stage3_prefetch_bucket_size", "stage3_max_reuse_distance",
               "sub_group_size")
    deepspeed_defaults = dict(stage3_max_live_parameters=1e9, stage3_prefetch_bucket_size=5e7,
                              stage3_max_reuse_distance=1e9, sub_group_size=1e9)   # DeepSpeed's, where a file omits them

    def holds(path) -> dict:
        zero = json.loads(Path(path).read_text())["zero_optimization"]
        return {k: float(v) if isinstance(v, (int, float)) else v
                for k, v in {**deepspeed_defaults, **{k: zero[k] for k in bounded if k in zero}}.items()}

    small = holds(cfg.train.deepspeed)
    assert all(isinstance(v, float) and v <= params / 4 for v in small.values()), small
    assert json.loads(Path(cfg.train.deepspeed).read_text())["zero_optimization"]["overlap_comm"] is False
    paper = holds(REPO / "configs" / "deepspeed" / "zero3.json")
    assert paper["stage3_max_live_parameters"] >= params and paper["sub_group_size"] >= params
