"""The sampling protocol peers report (DeepSeek-R1, open-r1, LIMO, OpenThoughts), named so a reader can compare.

With n samples per question at temperature > 0 (R1: temperature 0.6, top_p 0.95):
- avg@n: pass@1 estimated as the mean over questions of each question's fraction of correct samples
  (what R1 and open-r1 call "pass@1"), with its standard error over questions;
- cons@n: majority vote over the n samples (R1's "cons@64"): the most common answer class wins, ties go to the
  class answered first, samples without an answer do not vote; a question counts if its winner is correct;
- pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), averaged over questions, for k = 1,
  2, 4, ... up to n.

Answers vote by class: `canonical` maps an extracted answer to its class key (default: the extracted string
itself, so "1/2" and "\\frac{1}{2}" are two classes); pass an equivalence-aware key to merge such classes.
Samples per question: eval.num_samples, or eval.samples_per_benchmark[benchmark] (open-r1: 64 for AIME, 4 for
MATH500, 8 for GPQA Diamond).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from s1.data.benchmarks import benchmark_name
from s1.eval.methods import method_of
from s1.eval.metrics import majority_correct, pass_at_1, pass_at_k
from s1.runtime import ConfigError

Canonical = Callable[[str], str]


def samples_for(spec, bench: str, cfg) -> int:
    """Samples per question of this run on this benchmark: eval.samples_per_benchmark overrides eval.num_samples
    for the runs that take num_samples (majority voting keeps its own k)."""
    per_bench = cfg.eval.get("samples_per_benchmark") or {}
    if method_of(spec.method).budget == "votes" or bench not in per_bench:   # k votes: its own sample count
        return spec.samples
    return int(per_bench[bench])


def check_sampling_config(cfg) -> None:
    """eval.top_p in (0, 1]; eval.samples_per_benchmark: n >= 1 per benchmark of eval.benchmarks."""
    e = cfg.eval
    top_p = float(e.get("top_p", 1.0))
    if not 0 < top_p <= 1:
        raise ConfigError("eval.top_p", top_p, "give a probability mass in (0, 1], e.g. 0.95; 1.0 = off")
    names = [benchmark_name(str(b)) for b in e.benchmarks]
    for bench, n in dict(e.get("samples_per_benchmark") or {}).items():
        if bench not in names:
            raise ConfigError(f"eval.samples_per_benchmark.{bench}", n, f"name one of eval.benchmarks {names}")
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"eval.samples_per_benchmark.{bench}", n, "give samples per question, an integer >= 1")


def avg_at_n(per_question: list[list[bool]]) -> tuple[float, float]:
    """(avg@n, standard error) in percent: the mean over questions of each one's fraction of correct samples."""
    return pass_at_1(per_question)


def cons_correct(answers: list[str | None], correct: list[bool], canonical: Canonical | None = None) -> bool:
    """Majority vote of one question's samples: is the winning answer class a correct one? (raw strings vote
    unless `canonical` is given)"""
    return majority_correct(answers, correct, canonical or (lambda a: a))


def cons_at_n(per_question: list[tuple[list[str | None], list[bool]]], canonical: Canonical | None = None) -> float:
    """cons@n in percent: the share of questions whose majority answer class is correct."""
    if not per_question:
        return 0.0
    return 100 * sum(cons_correct(a, c, canonical) for a, c in per_question) / len(per_question)


def mean_pass_at_k(per_question: list[list[bool]], k: int) -> float:
    """Unbiased pass@k in percent, averaged over questions (each with n >= k samples)."""
    if not per_question:
        return 0.0
    return 100 * sum(pass_at_k(len(s), sum(s), k) for s in per_question) / len(per_question)


def ks_up_to(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [1 << i for i in range(n.bit_length()) if 1 << i <= n]
    return ks if ks[-1] == n else ks + [n]


def sampling_metrics(records: list[dict[str, Any]], canonical: Canonical | None = None) -> dict[str, float]:
    """avg@n ± stderr, cons@n and pass@k of one (run, benchmark) from its records (question_id, sample, correct,
    extracted); n = the fewest samples any question has. Empty for one sample per question."""
    by_q: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_q[r["question_id"]].append(r)
    n = min((len(rs) for rs in by_q.values()), default=0)
    if n < 2:
        return {}
    firsts = [sorted(rs, key=lambda r: r["sample"])[:n] for rs in by_q.values()]
    correct = [[bool(r["correct"]) for r in rs] for rs in firsts]
    avg, se = avg_at_n(correct)
    out = {"n": n, f"avg@{n}": avg, f"avg@{n}_stderr": se,
           f"cons@{n}": cons_at_n([([r["extracted"] for r in rs], c) for rs, c in zip(firsts, correct)], canonical)}
    out.update({f"pass@{k}": mean_pass_at_k(correct, k) for k in ks_up_to(n)})
    return out


def sampling_table(rows: list[dict[str, Any]]) -> str:
    """results.md: every run with n > 1 samples per question: avg@n ± stderr, cons@n, pass@k."""
    sampled = [r for r in rows if r.get("n", 0) > 1 and method_of(r["method"]).budget != "votes"]   # votes: Fig. 4
    if not sampled:
        return "No sampled runs (set eval.num_samples > 1 or eval.samples_per_benchmark, e.g. experiment=r1_protocol)."
    lines = ["| model | method | budget | benchmark | n | avg@n (%) | cons@n (%) | pass@k (%) |", "|---|---|---|---|---|---|---|---|"]
    for r in sampled:
        n = r["n"]
        ks = ", ".join(f"@{k} {r[f'pass@{k}']:.1f}" for k in ks_up_to(n))
        lines.append(f"| {r['model']} | {r['method']} | {r['budget']} | {r['benchmark']} | {n} | "
                     f"{r[f'avg@{n}']:.1f} ± {r[f'avg@{n}_stderr']:.1f} | {r[f'cons@{n}']:.1f} | {ks} |")
    return "\n".join(lines)
