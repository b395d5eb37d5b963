"""NoWait (arXiv 2506.08343): reflection words are banned while thinking.

A configurable list of strings ("Wait", "Hmm", "Alternatively", ...) may never appear in the thinking. Banning
only the tokens that spell a word whole is not enough (a word may be spelled by several tokens: "W" + "ait"), so
the rule is on text: a candidate token is banned when the text so far plus that token contains a banned string
that ends inside the new token. `banned_ids` applies it over a vocabulary for one step; `BanIndex` gives the same
ids fast: built once per vocabulary and word list, it keeps the tokens that hold a banned word whole (always banned)
and, for each way a word can start before the token (a prefix of it at the end of the text), the tokens that would
finish it; one step is then a few `str.endswith` calls. `BanWords` is a transformers LogitsProcessor over it.

Budget forcing (eval.budget_forcing.ban_words) bans them during thinking on every engine that can: the transformers
engine applies a BanIndex at sampling time; vLLM a logits processor (s1.infer.vllm_nowait) loaded with the engine
and asked for per request. The OpenAI engine refuses: a server takes only per-token `logit_bias`, which cannot
express a text rule. Pieces are each token's own decoded text, so a word spelled across the bytes of one
multi-byte character is not seen (the default words are ASCII).
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


class BanIndex:
    """The banned tokens for one vocabulary (`pieces`: each token's text) and word list, by the end of the text."""

    def __init__(self, pieces: list[str], words):
        self.words = tuple(w for w in words if w)
        self.longest = max((len(w) for w in self.words), default=0)
        self.always = [i for i, p in enumerate(pieces) if p and any(w in p for w in self.words)]  # hold a word whole
        always = set(self.always)
        by_first: dict[str, list[int]] = {}      # first character -> tokens (a vocabulary is scanned once)
        for i, p in enumerate(pieces):
            if p and i not in always:
                by_first.setdefault(p[0], []).append(i)
        needs: dict[str, set[int]] = {}          # text ending -> tokens that finish a word after it
        for w in self.words:
            for k in range(1, len(w)):           # w = w[:k] (already written) + w[k:] (starts this token)
                rest = w[k:]
                needs.setdefault(w[:k], set()).update(i for i in by_first.get(rest[0], ()) if pieces[i].startswith(rest))
        self.needs = {end: sorted(ids) for end, ids in needs.items() if ids}

    def banned(self, text: str) -> list[int]:
        """Token ids banned after `text` (the same as banned_ids(text, pieces, words))."""
        out = list(self.always)
        for end, ids in self.needs.items():
            if text.endswith(end):
                out += ids
        return out


class BanWords:
    """transformers LogitsProcessor: -inf on the banned tokens of each row, given the row's text so far."""

    def __init__(self, tokenizer, prompt_len: int, words=DEFAULT_WORDS):
        self.tokenizer, self.prompt_len, self.words = tokenizer, prompt_len, tuple(words)
        self.index = BanIndex([tokenizer.decode([i]) for i in range(len(tokenizer))], self.words)

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids):
            text = self.tokenizer.decode(ids[self.prompt_len:])
            bad = [i for i in self.index.banned(text) if i < scores.shape[-1]]
            if bad:
                scores[row, bad] = float("-inf")
        return scores


BAN_KEY = "s1_ban_words"   # vLLM: the SamplingParams extra_args key that asks s1.infer.vllm_nowait for a ban


def check_words(words, where: str = "ban_words") -> list[str]:
    """A ban list: non-empty strings (ValueError naming the key and the fix)."""
    if words is None or isinstance(words, str) or not all(isinstance(w, str) and w for w in words):
        raise ValueError(f"{where}={words!r}: give a list of non-empty strings, e.g. [Wait, Hmm]; [] = off")
    return list(words)
