"""Inference: budget forcing over any engine (transformers, vLLM, OpenAI-compatible server).

    from s1.infer import load_engine, generate, generate_sweep, build_prompt
"""

from __future__ import annotations

from s1.infer.budget_forcing import Phase, SequenceResult, generate, generate_sweep
from s1.infer.engine import Continuation, Engine, Request
from s1.infer.prompts import build_prompt

BACKENDS = ("transformers", "vllm", "openai")


def load_engine(backend: str, model_path: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                max_context: int = 32768, base_url: str | None = None, api_key_env: str | None = None, **kw):
    """An engine with `.tokenizer` and `continue_batch(requests)`; backend: transformers | vllm | openai."""
    # each backend is imported when asked for: torch / vLLM are heavy, and vLLM is optional
    if backend == "transformers":
        from s1.infer.transformers_backend import TransformersEngine

        return TransformersEngine(model_path, dtype=dtype, trust_remote_code=trust_remote_code,
                                  max_context=max_context, **kw)
    if backend == "vllm":
        from s1.infer.vllm_backend import load_vllm

        return load_vllm(model_path, dtype=dtype, trust_remote_code=trust_remote_code, max_context=max_context, **kw)
    if backend == "openai":
        from s1.infer.openai_backend import OpenAIEngine

        return OpenAIEngine(model_path, base_url=base_url, api_key_env=api_key_env, max_context=max_context,
                            trust_remote_code=trust_remote_code, **kw)
    raise ValueError(f"backend={backend!r}: use one of {BACKENDS}")


__all__ = ["BACKENDS", "Continuation", "Engine", "Phase", "Request", "SequenceResult", "build_prompt",
           "generate", "generate_sweep", "load_engine"]
