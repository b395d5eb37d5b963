"""Parallel selectors: pick one answer from a question's k samples, and count the tokens that choice cost.

Each sample is a `Sample(answer, correct, tokens, confidence)`: its extracted answer (None: no answer, no vote),
whether it is correct, the tokens it generated, and its confidence (mean token log-probability; None where the
engine returns no log-probabilities). Answers vote by class (`canonical`, default s1.grading.canonical_answer, as
metrics.majority_correct: "016" and "16" are one vote). Cost is the
tokens generated across all k samples (peeks and discarded samples included), so selectors compare at one
accounting:

- majority (cons@k): most votes wins, ties go to the class answered first; cost = all k samples.
- shortest_majority (arXiv 2502.12215): most votes wins, ties go to the class whose samples are shortest on
  average (then the first answered); cost = all k samples.
- short_m_at_k (arXiv 2505.17813): the k samples run in parallel and stop when the first m finish (fewest
  tokens first, ties by index); majority over those m, ties to the shortest; cost = each sample's tokens up to
  the m-th finisher's length (k × that length at most).
- confidence_filter (DeepConf offline, arXiv 2508.15260): keep the `keep` fraction of samples with the highest
  confidence, then a majority vote weighted by confidence shifted to be positive (exp(mean log-prob)); needs
  confidences.

A Selection also names the samples the choice waited for (`finished`: all k, or short-m@k's first m), so a
report can charge wall time as the k samples run side by side: the slowest of those.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from s1.grading import canonical_answer
from s1.runtime import ConfigError


@dataclass(frozen=True)
class Sample:
    answer: str | None
    correct: bool
    tokens: int                    # generated tokens (thinking + answer)
    confidence: float | None = None   # mean token log-probability; None: the engine gave none


@dataclass(frozen=True)
class Selection:
    answer: str | None     # the chosen class's first answer; None when no sample answered
    correct: bool
    tokens: int            # tokens generated across the k samples for this choice
    finished: tuple[int, ...] = ()   # indices of the samples run to their end for this choice (wall time: the slowest)


def _vote(samples: list[Sample], weight, tie, canonical, tokens: int, finished: tuple[int, ...]) -> Selection:
    """Winner = the class with the largest total weight; ties by `tie(class members)` (smaller wins), then first
    answered. The winner's first answer, whether any of its members is correct, and the choice's cost."""
    classes: dict[str, list[Sample]] = {}
    for s in samples:
        key = None if s.answer is None else canonical(s.answer)
        if key is not None:      # no answer (or none the canonical form reads): no vote
            classes.setdefault(key, []).append(s)
    if not classes:
        return Selection(None, False, tokens, finished)
    order = list(classes)   # insertion order = first answered
    best = min(order, key=lambda c: (-round(sum(weight(s) for s in classes[c]), 12), tie(classes[c]), order.index(c)))
    members = classes[best]
    return Selection(members[0].answer, any(s.correct for s in members), tokens, finished)


def _mean_length(members: list[Sample]) -> float:
    return sum(s.tokens for s in members) / len(members)


def _all(samples: list[Sample]) -> tuple[int, tuple[int, ...]]:
    """Cost and finished samples of a choice that waits for all k: every sample's tokens."""
    return sum(s.tokens for s in samples), tuple(range(len(samples)))


def majority(samples: list[Sample], canonical=canonical_answer) -> Selection:
    """cons@k: one vote per answered sample; ties to the class answered first."""
    return _vote(samples, lambda s: 1.0, lambda ms: 0, canonical, *_all(samples))


def shortest_majority(samples: list[Sample], canonical=canonical_answer) -> Selection:
    """Majority; ties to the class with the shortest mean sample length."""
    return _vote(samples, lambda s: 1.0, _mean_length, canonical, *_all(samples))


def short_m_at_k(samples: list[Sample], m: int, canonical=canonical_answer) -> Selection:
    """Stop when the first m of the k samples finish; majority over them (ties: shortest mean length)."""
    if not 1 <= m <= len(samples):
        raise ConfigError("eval.selectors.m", m, f"give m in [1, k={len(samples)}] (how many finished samples vote)")
    finished = sorted(range(len(samples)), key=lambda i: (samples[i].tokens, i))[:m]
    stop_at = samples[finished[-1]].tokens   # the m-th finisher's length: every other sample stops there
    cost = sum(min(s.tokens, stop_at) for s in samples)
    voters = [samples[i] for i in sorted(finished)]
    return _vote(voters, lambda s: 1.0, _mean_length, canonical, cost, tuple(sorted(finished)))


def confidence_filter(samples: list[Sample], keep: float = 0.5, canonical=canonical_answer) -> Selection:
    """Keep the most confident ceil(keep * k) samples, then vote weighted by exp(mean log-prob)."""
    if not 0 < keep <= 1:
        raise ConfigError("eval.selectors.keep", keep, "give the kept fraction in (0, 1], e.g. 0.5 (DeepConf: 0.1 or 0.9)")
    if any(s.confidence is None for s in samples):
        raise ConfigError("eval.engine", "no log-probabilities",
                          "the confidence filter needs per-token log-probabilities: use the transformers or vLLM engine")
    n_keep = math.ceil(keep * len(samples))
    kept_idx = sorted(sorted(range(len(samples)), key=lambda i: (-samples[i].confidence, i))[:n_keep])
    kept = [samples[i] for i in kept_idx]
    return _vote(kept, lambda s: math.exp(s.confidence), lambda ms: 0, canonical, *_all(samples))


def accuracy(per_question: list[list[Sample]], select: Callable[[list[Sample]], Selection]) -> tuple[float, float]:
    """(accuracy %, average generated tokens per question) of one selector over questions."""
    if not per_question:
        return 0.0, 0.0
    picks = [select(q) for q in per_question]
    return (100 * sum(p.correct for p in picks) / len(picks), sum(p.tokens for p in picks) / len(picks))
