"""`--model s1`: an lm-evaluation-harness model whose every generation runs through the budget-forcing controller.

    lm_eval --model s1 --model_args pretrained=DIR,backend=transformers|vllm|openai[,dtype=...,max_model_len=...,
            tensor_parallel_size=...,gpu_memory_utilization=...,base_url=...,api_key_env=...,seed=...]

Requests that share gen_kwargs are one controller call (continuous batching, batch_size sequences in flight).
A thinking request's prompt is the harness's context plus the think prefix; its result is the think prefix and
everything generated and forced after it (the release's shape: thinking, "<|im_start|>answer", answer). Each of
a task's `repeats` gets its own sampling seed, from the model's seed, the document's id and the repeat index, the
same seed `make eval` gives that question's sample.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from s1.eval.runner import hash_seed
from s1.infer import BACKENDS, generate, load_engine
from s1.infer.engine_settings import engine_args
from s1.lm_eval.gen_kwargs import auto_thinking_cap, plan_generation
from s1.lm_eval.stops import with_stops

log = logging.getLogger("s1.lm_eval")
DEFAULT_MAX_GEN_TOKS = 32768   # as eval.max_new_tokens
DEFAULT_BATCH = 8              # as eval.batch_size; --batch_size auto: every request of a group at once on vllm/openai
GENERATION_ONLY = ("--model s1 serves generation tasks only (output_type: generate_until): budget forcing shapes "
                   "generated text, and its engines return no log-probabilities. Tasks that asked for {kind}: {tasks}. "
                   "Run those with --model hf or --model vllm.")


@register_model("s1")
class S1LM(TemplateLM):
    def __init__(self, pretrained: str, backend: str = "transformers", dtype: str | None = None,
                 max_model_len: int | None = None, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 trust_remote_code: bool = False, base_url: str | None = None, api_key_env: str | None = None,
                 seed: int = 0, max_gen_toks: int = DEFAULT_MAX_GEN_TOKS, batch_size: int | str | None = None,
                 max_batch_size: int | None = None, device: str | None = None, tokenizer: str | None = None,
                 **engine_kwargs):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"model_args backend={backend!r}: use one of {list(BACKENDS)}")
        model = SimpleNamespace(dtype="auto", max_context=_max_positions(pretrained),
                                trust_remote_code=bool(trust_remote_code))
        engine = {"dtype": dtype, "max_model_len": max_model_len, "tensor_parallel_size": int(tensor_parallel_size),
                  "gpu_memory_utilization": float(gpu_memory_utilization)}
        kw = {**engine_args(backend, engine, model, key="model_args"), **engine_kwargs}
        if device and backend == "transformers" and _usable(device):   # the harness passes --device (default cuda)
            kw["device"] = device
        if tokenizer and tokenizer != pretrained:   # the release's commands name Qwen's tokenizer for s1-32B
            if backend == "transformers":
                raise ValueError(f"model_args tokenizer={tokenizer!r}: backend=transformers reads the tokenizer "
                                 "saved with `pretrained`; drop it, or use backend=vllm")
            kw["tokenizer" if backend == "vllm" else "tokenizer_path"] = tokenizer
        self.engine = load_engine(backend, pretrained, base_url=base_url, api_key_env=api_key_env, **kw)
        self.tokenizer = self.engine.tokenizer
        self.pretrained, self.backend, self.seed = pretrained, backend, int(seed)
        self.max_gen_toks = int(max_gen_toks)
        auto = batch_size is None or str(batch_size).startswith("auto")
        self.batch_size = None if auto else int(batch_size)
        self.max_batch_size = max_batch_size
        self.last_results: list = []   # the controller's SequenceResult of each request of the last call (tests)

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def tokenizer_name(self) -> str:
        return str(self.pretrained).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.tokenizer.encode(string, add_special_tokens=bool(add_special_tokens))

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt,
                                                  continue_final_message=not add_generation_prompt)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(GENERATION_ONLY.format(kind="loglikelihood", tasks=_task_names(requests)))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise NotImplementedError(GENERATION_ONLY.format(kind="loglikelihood_rolling", tasks=_task_names(requests)))

    def _loglikelihood_tokens(self, requests, **kwargs):
        raise NotImplementedError(GENERATION_ONLY.format(kind="loglikelihood", tasks="?"))

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(json.dumps(req.args[1], sort_keys=True, default=str), []).append(i)
        copies: Counter = Counter()
        repeat = []                          # which of a document's repeats each request is (0, 1, ...)
        for req in requests:
            key = (req.task_name, req.doc_id, req.args[0])
            repeat.append(copies[key])
            copies[key] += 1
        out: list[str | None] = [None] * len(requests)
        self.last_results = [None] * len(requests)
        for idx in groups.values():
            gen_kwargs = requests[idx[0]].args[1]
            plan = plan_generation(gen_kwargs, self.max_gen_toks, eos=self.tokenizer.eos_token)
            contexts = [requests[i].args[0] for i in idx]
            if plan.auto_thinking:
                plan.bf["max_thinking_tokens"] = auto_thinking_cap(plan, [len(self.tok_encode(c)) for c in contexts],
                                                                   self.tok_encode)
            prefix = plan.bf["think_prefix"] if plan.think else ""
            seeds = [hash_seed(self.seed, _doc_id(requests[i]), repeat[i], 0) for i in idx]
            self.engine.top_p = plan.top_p
            results = generate(with_stops(self.engine, plan.stops), [c + prefix for c in contexts], plan.bf,
                               max_new_tokens=plan.max_new_tokens, temperature=plan.temperature,
                               batch_size=self._batch(len(idx)), seeds=seeds, progress=not disable_tqdm)
            for i, context, res in zip(idx, contexts, results):
                out[i] = prefix + res.text
                self.last_results[i] = res
                self.cache_hook.add_partial("generate_until", (context, gen_kwargs), out[i])
        return out

    def _batch(self, n: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        if self.backend == "transformers":
            return min(n, int(self.max_batch_size or DEFAULT_BATCH))
        return n if self.max_batch_size is None else min(n, int(self.max_batch_size))


def _doc_id(req) -> str:
    """The document's own id where it has one (as `make eval` keys its questions), else task and index."""
    doc = req.doc if isinstance(req.doc, dict) else {}
    return str(doc.get("id") or doc.get("unique_id") or f"{req.task_name}/{req.doc_id}")


def _usable(device: str) -> bool:
    import torch

    return not device.startswith("cuda") or torch.cuda.is_available()


def _task_names(requests) -> str:
    return ", ".join(sorted({str(r.task_name) for r in requests})) or "?"


def _max_positions(pretrained: str) -> int:
    """The context the model was built for (config.json max_position_embeddings), else 32,768 (model.max_context)."""
    cfg = Path(pretrained) / "config.json"
    if cfg.is_file():
        n = json.loads(cfg.read_text()).get("max_position_embeddings")
        if isinstance(n, int) and n > 0:
            return n
    return 32768
