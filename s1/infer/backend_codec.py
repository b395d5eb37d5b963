"""Encode and decode through a fast tokenizer's Rust backend directly: the ids of transformers'
`encode(text, add_special_tokens=False)` and the text of `decode(ids, skip_special_tokens=False,
clean_up_tokenization_spaces=False)`, without their Python wrapping (profiled on the tiny model: more time than the
Rust work for a round's text). vllm_bf encodes a forced string and decodes a round between two decoding steps of
the whole batch, so that time is every request's.

The backend is a private copy with truncation, padding and special-token splitting off: transformers sets those on
its shared backend before each call, and vLLM tokenizes on other threads. A tokenizer class that overrides
transformers' `_decode` / `_encode_plus` (or has no Rust backend) is called as is.
"""

from __future__ import annotations

import copy


class BackendCodec:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.backend = None
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None and _library_methods(tokenizer) and not getattr(tokenizer, "split_special_tokens",
                                                                                False):
            self.backend = copy.deepcopy(backend)
            self.backend.no_truncation()
            self.backend.no_padding()
            if hasattr(self.backend, "encode_special_tokens"):
                self.backend.encode_special_tokens = False

    def encode(self, text: str) -> list[int]:
        if self.backend is None:
            return self.tokenizer.encode(text, add_special_tokens=False)
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        if self.backend is None:
            return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return self.backend.decode(ids, skip_special_tokens=False)


def _library_methods(tokenizer) -> bool:
    """transformers' own fast-tokenizer encode and decode paths (they only call the backend for our arguments)."""
    try:
        from transformers import PreTrainedTokenizerFast
    except ImportError:
        return False
    cls = type(tokenizer)
    return isinstance(tokenizer, PreTrainedTokenizerFast) and all(
        getattr(cls, name, None) is getattr(PreTrainedTokenizerFast, name, None)
        for name in ("_decode", "_encode_plus", "_batch_encode_plus"))
