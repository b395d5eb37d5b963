"""Confident early exit, DEER-style (arXiv 2504.15895).

At each step boundary of the thinking, a trial answer is peeked (the answer marker and a short answer, on a copy
of the sequence, as adaptive Wait peeks) and thinking exits when the trial answer's confidence, the mean token
probability exp(log p) over its tokens, reaches the threshold; otherwise thinking goes on. Log-probabilities:
the transformers and vLLM engines return them; the OpenAI completions engine asks for `logprobs` and, where the
server returns none, the method stops with an error saying so (docs/methods.md).

`confidence` and `should_exit` are the rule; `early_exit` replays it over one sequence's scripted step
boundaries. budget_forcing.step peeks on the engine at each step boundary (eval.budget_forcing.deer_threshold,
trial_answer_tokens, step_boundary) and applies them.
"""

from __future__ import annotations

import math

from s1.errors import ConfigError


def confidence(logprobs: list[float]) -> float:
    """Mean token probability of a trial answer (0 for an empty one: no answer, no exit)."""
    return sum(math.exp(lp) for lp in logprobs) / len(logprobs) if logprobs else 0.0


def should_exit(logprobs: list[float], threshold: float) -> bool:
    if not 0 < threshold <= 1:
        raise ConfigError("eval.deer.threshold", threshold, "give a mean token probability in (0, 1], e.g. 0.95")
    return confidence(logprobs) >= threshold


def early_exit(boundaries: list[tuple[int, list[float]]], plain_tokens: int, threshold: float) -> tuple[int, int]:
    """Replay the rule over one sequence: boundaries are (thinking tokens so far, the trial answer's
    log-probabilities) in order; plain_tokens is where plain generation ends thinking. Returns (thinking tokens
    used, peek tokens spent). Exits at the first confident boundary; never thinks past plain generation."""
    peeks = 0
    for t, lps in boundaries:
        if t >= plain_tokens:
            break
        peeks += len(lps)
        if should_exit(lps, threshold):
            return t, peeks
    return plain_tokens, peeks
