"""Accuracy statistics and the paper's test-time-scaling metrics.

pass@1 is the mean over questions of each question's fraction of correct
samples, with its standard error over questions. maj@k is majority voting
over k samples by canonical answer (ties: the earliest answer), pass@k the unbiased estimator
1 - C(n-c, k) / C(n, k).

Scaling metrics over budgets with accuracies f(a), where a is the average
number of thinking tokens actually used at that budget (s1 §3.2):
- Control = fraction of runs whose used thinking tokens stay within the
  [a_min, a_max] THAT run was given (its thinking cap, the token or step
  budget stated in its prompt, its class prompt's range: s1/eval/report.py
  run_budget); a_min is 0 unless budget forcing sets a minimum (paper: "we
  usually only constrain a_max");
- Scaling = average slope (f(b) - f(a)) / (b - a) over all pairs a < b,
  in accuracy points per 1,000 thinking tokens (SCALING_UNIT);
- Performance = max accuracy.

One accounting for every row (docs/methods.md): avg_generated_tokens = thinking + answer tokens per question
(peeks included: they are counted in thinking_tokens; parallel rows: the selector's cost, k × per-sample tokens
or short-m@k's own), avg_seconds = the mean of the records' `seconds` (wall time per sequence; None when no record
has one, e.g. a cache written before it was recorded).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

from s1.grading import canonical_answer

SCALING_UNIT = "accuracy points (%) per 1,000 thinking tokens"


def pass_at_1(per_question: list[list[bool]]) -> tuple[float, float]:
    """(mean, standard error) in percent over questions."""
    means = [sum(s) / len(s) for s in per_question if s]
    if not means:
        return 0.0, 0.0
    m = sum(means) / len(means)
    if len(means) < 2:
        return 100 * m, 0.0
    var = sum((x - m) ** 2 for x in means) / (len(means) - 1)
    return 100 * m, 100 * math.sqrt(var / len(means))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples (drawn from n with c correct) is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_correct(answers: list[str | None], correct: list[bool], canonical=canonical_answer) -> bool:
    """Is the most common answer class a correct one? Answers vote by `canonical` (default s1.grading.canonical_answer:
    "B", "(B)" and "B) 7" are one vote, so are "016" and "16", "\\frac12" and "0.5"); None answers do not vote;
    ties go to the class answered first."""
    keys = [None if a is None else canonical(a) for a in answers]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(k for k in keys if k is not None and votes[k] == top)
    return any(c for k, c in zip(keys, correct) if k == winner)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy ± stderr, maj@n, pass@n, token averages and outcome counts of one (model, method, budget, benchmark)."""
    by_q: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_q[r["question_id"]].append(r)
    for rs in by_q.values():
        rs.sort(key=lambda r: r["sample"])
    per_q = [[r["correct"] for r in rs] for rs in by_q.values()]
    acc, se = pass_at_1(per_q)
    n = min((len(s) for s in per_q), default=0)
    outcomes = Counter(r["outcome"] for r in records)
    out = {
        "questions": len(by_q),
        "samples_per_question": n,
        "accuracy": acc,
        "stderr": se,
        "avg_thinking_tokens": _mean(r["thinking_tokens"] for r in records),
        "avg_answer_tokens": _mean(r["answer_tokens"] for r in records),
        "avg_generated_tokens": _mean(r["thinking_tokens"] + r["answer_tokens"] for r in records),
        "avg_seconds": mean_or_none(r.get("seconds") for r in records),
        "avg_waits": _mean(r.get("waits_used", 0) for r in records),
        "outcomes": {k: outcomes.get(k, 0) for k in ("answered", "forced", "no_answer", "timeout")},
        "no_fit_within_tries": sum(not r.get("accepted", True) for r in records),  # rejection sampling: scored wrong
        "unread_choices": sum(bool(r.get("unread")) for r in records),   # multiple choice: no letter read (eval.gpqa.unread)
    }
    if n > 1:
        out[f"maj@{n}"] = 100 * _mean(majority_correct([r["extracted"] for r in rs][:n], [r["correct"] for r in rs][:n])
                                       for rs in by_q.values())
        out[f"pass@{n}"] = 100 * _mean(pass_at_k(n, sum(s[:n]), n) for s in per_q)
    return out


def scaling_metrics(points: list[tuple[float, float]], a_min: float = 0, a_max: float | None = None,
                    ranges: list[tuple[float, float | None] | None] | None = None) -> dict[str, float | None]:
    """Control / Scaling / Performance from (avg thinking tokens used, accuracy %) points of one method.

    Control holds each run to the budget THAT run was given: ranges[i] = (a_min, a_max) of point i (None: the run
    was given no budget and is left out). Without ranges every run is held to [a_min, a_max]; a_max None there, or
    no run with a budget, leaves Control undefined (None)."""
    if not points:
        return {"control": None, "scaling": None, "performance": None}
    if ranges is None:
        ranges = [None if a_max is None else (a_min, a_max)] * len(points)
    held = [(a, r) for (a, _), r in zip(points, ranges) if r is not None]
    control = sum(lo <= a and (hi is None or a <= hi) for a, (lo, hi) in held) / len(held) if held else None
    slopes = [(fb - fa) / (b - a) * 1000 for (a, fa), (b, fb) in combinations(sorted(points), 2) if b > a]
    return {
        "control": None if control is None else 100 * control,
        "scaling": sum(slopes) / len(slopes) if slopes else None,
        "performance": max(f for _, f in points),
    }


def mean_or_none(xs) -> float | None:
    """The mean of the values that are not None; None when there are none."""
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0
