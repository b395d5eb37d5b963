"""NoWait inside vLLM: a logits processor that bans, per request, every token that would complete a banned string.

The vLLM engine (s1.infer.vllm_backend, bf_mode auto or single) loads it with the engine, as it loads
s1.infer.vllm_bf; a request asks for it with `SamplingParams(extra_args={"s1_ban_words": ["Wait", ...]})`
(nowait.BAN_KEY). The rule is s1.infer.nowait's text rule, the one the transformers engine applies: the text so far
(the prompt's last tokens and the output's) plus a candidate token must not end a banned string inside that token;
a BanIndex per word list (token pieces decoded once per processor) makes a step a few `str.endswith` calls. A
request without the key is untouched. The V1 model runner only, as s1.infer.vllm_bf.
"""

from __future__ import annotations

import functools

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from s1.infer.nowait import BAN_KEY, BanIndex, check_words

BAN_WORDS = "s1.infer.vllm_nowait:BanWordsLogitsProcessor"


class BanWordsLogitsProcessor(AdapterLogitsProcessor):
    """-inf on the tokens that would complete a banned string (per request: extra_args["s1_ban_words"])."""

    def __init__(self, vllm_config, device, is_pin_memory):
        super().__init__(vllm_config, device, is_pin_memory)
        from vllm.tokenizers.registry import cached_tokenizer_from_config

        self.tokenizer = cached_tokenizer_from_config(vllm_config.model_config)
        self._pieces: list[str] | None = None
        self._indexes: dict[tuple, BanIndex] = {}

    def is_argmax_invariant(self) -> bool:
        return False               # it changes greedy's choice: vLLM must call it for greedy requests too

    @classmethod
    def validate_params(cls, params) -> None:
        words = (params.extra_args or {}).get(BAN_KEY)
        if words is not None:
            check_words(words, f"extra_args.{BAN_KEY}")

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def index(self, words: tuple) -> BanIndex:
        if words not in self._indexes:
            if self._pieces is None:
                self._pieces = [self.decode([i]) for i in range(len(self.tokenizer))]
            self._indexes[words] = BanIndex(self._pieces, words)
        return self._indexes[words]

    def new_req_logits_processor(self, params):
        words = (params.extra_args or {}).get(BAN_KEY)
        if not words:
            return None
        return functools.partial(self._apply, self.index(tuple(words)))

    def _apply(self, index: BanIndex, prompt_ids: list[int], output_ids: list[int],
               logits: torch.Tensor) -> torch.Tensor:
        n = index.longest
        tail = list(output_ids[-n:])
        if len(tail) < n:
            tail = list(prompt_ids[-(n - len(tail)):]) + tail
        banned = [i for i in index.banned(self.decode(tail)) if i < logits.shape[-1]]
        if banned:
            logits[banned] = float("-inf")
        return logits
