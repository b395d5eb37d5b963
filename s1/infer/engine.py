"""The one seam between budget forcing and any inference engine.

An engine only continues text: "continue each of these sequences until one of
these stop strings, the end-of-sequence token, or N new tokens". Everything
about thinking budgets, "Wait" and answer forcing lives in the controller
(budget_forcing.py), so the same rules run on transformers, vLLM or a server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class Request:
    text: str                     # the whole sequence so far (prompt + everything generated and forced)
    max_new_tokens: int           # cap for this continuation
    stop: list[str] = field(default_factory=list)  # matched on decoded text, also across token boundaries
    temperature: float = 0.0      # 0 = greedy
    seed: int | None = None       # sampling seed (per sequence)
    key: str | None = None        # same key on the next round lets the engine reuse this sequence's KV cache
    deadline: float | None = None  # time.monotonic() after which the engine stops early (stop_reason "timeout")
    fork_from: str | None = None  # start from the cached state of this key (a sweep branch); engines may ignore it
    logprobs: bool = False        # return each generated token's log-probability (Continuation.logprobs)
    ban_words: tuple[str, ...] = ()  # NoWait: no token may complete one of these strings (s1.infer.nowait's text rule)
    token_ids: list[int] | None = None  # text's tokens as the controller holds them (the model's own tokens as
    #                               generated, each appended string encoded alone); None: the engine encodes text


@dataclass
class Continuation:
    text: str                     # newly generated text, the matched stop string removed
    num_tokens: int               # tokens generated (including the ones that spelled the stop string)
    stop_reason: str              # "stop" | "eos" | "length" | "timeout"
    matched_stop: str | None = None
    token_ids: list[int] | None = None  # the generated ids (stop string and end of sequence included), where known
    logprobs: list[float] | None = None  # log-probability of each generated id (as token_ids), when asked and known


class Engine(Protocol):
    tokenizer: object

    def continue_batch(self, requests: list[Request]) -> list[Continuation]: ...


OnDone = Callable[[Request, Continuation], list[Request]]


class StreamingEngine:
    """Base of the engines with continuous batching (transformers, vLLM): continue_batch is continue_stream with
    no follow-ups. A subclass defines continue_stream(requests, on_done)."""

    def continue_stream(self, requests: list[Request], on_done: OnDone) -> None:
        raise NotImplementedError

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        out: dict[int, Continuation] = {}
        self.continue_stream(requests, lambda r, c: out.__setitem__(id(r), c) or [])
        return [out[id(r)] for r in requests]


def run_requests(engine, requests: list[Request], on_done: OnDone) -> None:
    """Continue every request; on_done(request, continuation) returns the follow-up requests (a sequence's next
    round: "Wait" appended, the answer forced, a new question). An engine with continue_stream starts each follow-up
    as soon as its predecessor finishes (continuous batching: no sequence waits for the slowest one of its round);
    any other engine runs them in rounds of continue_batch. Greedy results are the same either way."""
    stream = getattr(engine, "continue_stream", None)
    if stream is not None:
        return stream(requests, on_done)
    while requests:
        follow: list[Request] = []
        for r, c in zip(requests, engine.continue_batch(requests)):
            follow += on_done(r, c)
        requests = follow


def find_stop(text: str, stops: list[str], start: int = 0) -> tuple[int, str] | None:
    """Earliest occurrence (at or after `start`) of any stop string in text: (index, stop), or None."""
    best = None
    for s in stops:
        if not s:
            continue
        i = text.find(s, start)
        if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(s) > len(best[1]))):
            best = (i, s)
    return best


def forget(engine, keys: list[str]) -> None:
    """Tell an engine it may drop the cached state of finished sequences (engines without state ignore it)."""
    drop = getattr(engine, "forget", None)
    if drop is not None and keys:
        drop(keys)
