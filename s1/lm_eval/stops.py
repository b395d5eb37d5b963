"""A task's `until` strings as extra stops of every engine request (thinking and answer alike, as in the fork).

The controller asks engines to stop at the end-of-thinking string and end of text; a harness task may add its own
stop strings. Wrapping the engine adds them to each request without touching the controller: a continuation that
ends on one reads as the model ending that phase itself.
"""

from __future__ import annotations

import dataclasses

from s1.infer.engine import Continuation, OnDone, Request


def with_stops(engine, stops: list[str]):
    """The engine itself when there is nothing to add, else a wrapper that adds `stops` to every request."""
    return _WithStops(engine, stops) if stops else engine


class _WithStops:
    budget_forcing_in_engine = None       # the task's stops are text: they need the rounds (vLLM's single pass is off)

    def __init__(self, engine, stops: list[str]):
        self.engine, self.stops = engine, list(stops)

    def __getattr__(self, name):          # tokenizer, max_context, decode, forget, returns_token_ids, ...
        return getattr(self.engine, name)

    def _add(self, r: Request) -> Request:
        return dataclasses.replace(r, stop=[*r.stop, *[s for s in self.stops if s not in r.stop]])

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        return self.engine.continue_batch([self._add(r) for r in requests])

    @property
    def continue_stream(self):
        inner = getattr(self.engine, "continue_stream", None)
        if inner is None:
            return None

        def stream(requests: list[Request], on_done: OnDone) -> None:
            original: dict[int, Request] = {}

            def wrap(rs: list[Request]) -> list[Request]:
                out = []
                for r in rs:
                    w = self._add(r)
                    original[id(w)] = r
                    out.append(w)
                return out

            inner(wrap(requests), lambda w, cont: wrap(on_done(original.pop(id(w)), cont)))
        return stream
