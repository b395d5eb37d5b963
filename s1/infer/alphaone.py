"""Scheduled Wait, AlphaOne-style (arXiv 2505.24863): slow thinking first, then fast.

The α moment is α × the thinking budget (tokens). Before it, at each step boundary (a blank line, "\\n\\n") a
"Wait" is inserted with probability p(t) from a schedule over the thinking token t: `constant` (p0 throughout)
or `linear` (annealed from p0 at t = 0 to 0 at the α moment; the paper's default). At or after the α moment no
Wait is inserted and the end of thinking is forced at the next step boundary (the paper replaces a slow-thinking
transition token by the end of thinking).

`decide` is the per-boundary rule, seeded per sequence (random.Random(seed)); budget_forcing.step applies it at
each step boundary of the thinking (eval.budget_forcing.alpha, alpha_p0, alpha_schedule, step_boundary) on every
engine.
"""

from __future__ import annotations

import random

from s1.errors import ConfigError

SCHEDULES = ("constant", "linear")


def alpha_moment(alpha: float, budget: int) -> int:
    """The thinking token at which slow thinking ends."""
    if not 0 < alpha <= 1:
        raise ConfigError("eval.alphaone.alpha", alpha, "give the slow-thinking share of the budget in (0, 1], e.g. 0.6")
    return int(alpha * budget)


def p_wait(t: int, moment: int, p0: float, schedule: str) -> float:
    """Probability of a Wait at a step boundary after t thinking tokens (0 at or after the α moment)."""
    if schedule not in SCHEDULES:
        raise ConfigError("eval.alphaone.schedule", schedule, f"give one of {list(SCHEDULES)}")
    if not 0 <= p0 <= 1:
        raise ConfigError("eval.alphaone.p0", p0, "give a probability in [0, 1], e.g. 0.4")
    if t >= moment:
        return 0.0
    return p0 if schedule == "constant" else p0 * (1 - t / moment)


def decide(t: int, moment: int, p0: float, schedule: str, rng: random.Random) -> str:
    """At a step boundary after t thinking tokens: "wait" (insert a Wait), "end" (force the end of thinking: past
    the α moment) or "go" (let it think on)."""
    if t >= moment:
        return "end"
    return "wait" if rng.random() < p_wait(t, moment, p0, schedule) else "go"
