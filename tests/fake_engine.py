"""The one fake engine of the tests: an engine at the seam (`tokenizer` + `continue_batch`) that answers each
request from a script and records every request. Used where a test needs exact continuations (budget forcing's
rounds, adaptive Waits, rejection sampling's tries); everything else runs the tiny model for real."""

from __future__ import annotations

from typing import Callable

from s1.infer.engine import Continuation, Request


class ScriptedEngine:
    """script(request, i) -> Continuation, where i counts the earlier requests with this request's key."""

    def __init__(self, tokenizer, script: Callable[[Request, int], Continuation]):
        self.tokenizer, self.script, self.requests = tokenizer, script, []

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        out = []
        for r in requests:
            self.requests.append(r)
            out.append(self.script(r, len([q for q in self.requests if q.key == r.key]) - 1))
        return out


def spy_on_batches(monkeypatch, module, before_batch: Callable[[list[int]], None] | None = None) -> list[int]:
    """Wrap the real engines `module.load_engine` returns: each continue_batch call appends its request count to the
    returned list, then calls before_batch(that list) (a test raises there to simulate a kill) before running."""
    sizes: list[int] = []
    real_load = module.load_engine

    def load_and_count(*a, **kw):
        engine = real_load(*a, **kw)
        real_continue = engine.continue_batch

        def continue_batch(reqs):
            sizes.append(len(reqs))
            if before_batch:
                before_batch(sizes)
            return real_continue(reqs)

        engine.continue_batch = continue_batch
        return engine

    monkeypatch.setattr(module, "load_engine", load_and_count)
    return sizes
