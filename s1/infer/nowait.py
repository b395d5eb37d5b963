"""NoWait (arXiv 2506.08343): reflection words are banned while thinking.

A configurable list of strings ("Wait", "Hmm", "Alternatively", ...) may never appear in the thinking. Banning
only the tokens that spell a word whole is not enough (a word may be spelled by several tokens: "W" + "ait"), so
the rule is on text: a candidate token is banned when the text so far plus that token contains a banned string
that ends inside the new token. `banned_ids` applies it over a vocabulary for one step; `BanWords` is a
transformers LogitsProcessor over it (greedy or sampled). vLLM and the OpenAI engine: not wired yet
(docs/methods.md); the OpenAI chat API takes only per-token `logit_bias`, which cannot express a text rule.
"""

from __future__ import annotations

DEFAULT_WORDS = ("Wait", "wait", "Hmm", "hmm", "Alternatively", "alternatively")


def completes_banned(text: str, piece: str, words) -> bool:
    """Would appending `piece` to `text` make a banned word end inside `piece`?"""
    tail = text[-max(len(w) for w in words):] if words else ""
    joined = tail + piece
    return any(w in joined and joined.rfind(w) + len(w) > len(tail) for w in words)


def banned_ids(text: str, pieces: list[str], words) -> list[int]:
    """Token ids (indices into `pieces`, each token's decoded text) banned after `text`."""
    return [i for i, p in enumerate(pieces) if p and completes_banned(text, p, words)]


class BanWords:
    """transformers LogitsProcessor: -inf on the banned tokens of each row, given the row's text so far."""

    def __init__(self, tokenizer, prompt_len: int, words=DEFAULT_WORDS):
        self.tokenizer, self.prompt_len, self.words = tokenizer, prompt_len, tuple(words)
        self.pieces = [tokenizer.decode([i]) for i in range(len(tokenizer))]

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids):
            text = self.tokenizer.decode(ids[self.prompt_len:])
            bad = banned_ids(text, self.pieces[:scores.shape[-1]], self.words)
            if bad:
                scores[row, bad] = float("-inf")
        return scores
