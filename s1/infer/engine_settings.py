"""Engine settings (EngineConfig in s1/config.py) as `load_engine` keyword arguments, validated early.

One block of settings wherever a model runs: curate.difficulty.engine (reference models),
curate.traces.engine (the model served for traces, the LLM judge and LLM domains), eval.engine.
"""

from __future__ import annotations

from pathlib import Path

from s1.errors import ConfigError

DTYPES = ("auto", "bfloat16", "float32", "float16")
BF_MODES = ("auto", "single_pass", "rounds")   # vLLM: budget forcing inside vLLM (s1.infer.vllm_bf) or in rounds


def engine_args(backend: str, engine, model, *, key: str, default_dtype: str | None = None) -> dict:
    """dtype, max_context and trust_remote_code for any backend; tensor parallel size and GPU memory share for vLLM.

    `engine` is an EngineConfig (or dict / DictConfig), `model` the ModelConfig it refines (None fields fall back
    to it, or to default_dtype first for the dtype, e.g. eval.dtype), `key` the config path named in errors.
    """
    get = engine.get if isinstance(engine, dict) else lambda k, d=None: getattr(engine, k, d)
    tp = int(get("tensor_parallel_size", 1))
    mem = float(get("gpu_memory_utilization", 0.9))
    dtype = get("dtype") or default_dtype or model.dtype
    max_len = get("max_model_len") or model.max_context
    if tp < 1:
        raise ConfigError(f"{key}.tensor_parallel_size", tp, "give 1 or more GPUs per model")
    if tp > 1 and backend == "transformers":   # (backend=openai: the server's settings, not ours)
        raise ConfigError(f"{key}.tensor_parallel_size", tp, "backend=transformers runs a model on one device; "
                          "use backend=vllm to split it over GPUs, or set 1")
    if not 0 < mem <= 1:
        raise ConfigError(f"{key}.gpu_memory_utilization", mem, "give a share of GPU memory in (0, 1], e.g. 0.9")
    if dtype not in DTYPES:
        raise ConfigError(f"{key}.dtype", dtype, f"use one of {DTYPES} (or null for model.dtype)")
    if int(max_len) < 1:
        raise ConfigError(f"{key}.max_model_len", max_len, "give tokens per sequence, or null for model.max_context")
    args = dict(dtype=dtype, max_context=int(max_len), trust_remote_code=bool(model.trust_remote_code))
    bf_mode = get("bf_mode", "auto") or "auto"
    if bf_mode not in BF_MODES:
        raise ConfigError(f"{key}.bf_mode", bf_mode, f"use one of {BF_MODES}: budget forcing inside vLLM or in rounds")
    if backend == "vllm":
        args.update(tensor_parallel_size=tp, gpu_memory_utilization=mem, bf_mode=bf_mode)
    return args


def hub_revision(name: str) -> str | None:
    """The commit a hub model name resolves to, the identity of all its files (weights included): the hub's answer
    when online (what a load fetches), else refs/main of the local hub cache (what an offline load reads); None
    when neither is reachable (a load fails too, or the name is a served model's: backend=openai)."""
    from huggingface_hub import HfApi, constants

    if not constants.is_offline_mode():
        try:
            return HfApi().model_info(name).sha
        except Exception:   # no network, gated, not a hub repo: the local cache may still know it
            pass
    ref = Path(constants.HF_HUB_CACHE) / f"models--{name.replace('/', '--')}" / "refs" / "main"
    return ref.read_text().strip() if ref.is_file() else None
