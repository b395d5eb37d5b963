"""Decontamination (word n-grams against every evaluation set) and exact dedup.

As the released code does it: text lower-cased, whitespace collapsed, word
8-grams; a pool question sharing any 8-gram with a benchmark question is
dropped. Texts shorter than n words have no n-gram at all, so they are
compared whole (exact normalised match) — otherwise a short question (the
synthetic ones have <= 9 words) copied from a benchmark would never be caught.
Every removal is listed: pool id, benchmark, benchmark item, the shared n-gram.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from s1.curate.funnel import StepResult
from s1.data.benchmarks import benchmark_name, load_benchmark


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def ngrams(words: list[str], n: int) -> list[str]:
    return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


@dataclass
class BenchmarkIndex:
    n: int
    grams: dict[str, tuple[str, str]] = field(default_factory=dict)   # n-gram → (benchmark, item id)
    whole: dict[str, tuple[str, str]] = field(default_factory=dict)   # normalised text → (benchmark, item id)
    sizes: dict[str, int] = field(default_factory=dict)

    def add(self, bench: str, item_id: str, text: str) -> None:
        norm = normalise(text)
        self.whole.setdefault(norm, (bench, item_id))
        for g in ngrams(norm.split(), self.n):
            self.grams.setdefault(g, (bench, item_id))

    def match(self, text: str) -> tuple[str, str, str] | None:
        """(benchmark, item id, evidence) of the first hit, or None."""
        norm = normalise(text)
        hit = self.whole.get(norm)
        if hit:
            return hit[0], hit[1], norm if len(norm) < 200 else norm[:200] + "…"
        for g in ngrams(norm.split(), self.n):
            hit = self.grams.get(g)
            if hit:
                return hit[0], hit[1], g
        return None


def build_index(benchmarks: list[str], benchmarks_dir: str | Path, n: int) -> BenchmarkIndex:
    """Every configured set; AIME24 under both its texts (original and the paper's no-figures one)."""
    index = BenchmarkIndex(n=n)
    for name in benchmarks:
        rows = load_benchmark(name, benchmarks_dir)
        short = benchmark_name(name)
        index.sizes[short] = len(rows)
        for r in rows:
            index.add(short, r["id"], r["problem"])
            if r.get("problem_original"):
                index.add(short, r["id"], r["problem_original"])
    return index


def decontaminate(pool: list[dict], index: BenchmarkIndex, matches_path: Path | None = None) -> StepResult:
    kept, dropped, matches = [], [], []
    for rec in pool:
        hit = index.match(rec["question"])
        if hit is None:
            kept.append(rec)
            continue
        bench, item, evidence = hit
        dropped.append((rec, f"contaminated:{bench}"))
        matches.append({"id": rec["id"], "source": rec["source"], "benchmark": bench, "benchmark_id": item,
                        "evidence": evidence, "question": rec["question"][:300]})
    if matches_path is not None:
        with open(matches_path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(m, ensure_ascii=False) + "\n" for m in matches)
    return StepResult(kept, dropped)


def dedup(pool: list[dict]) -> StepResult:
    """Exact dedup of normalised question text; the first occurrence (source order) stays."""
    kept, dropped, seen = [], [], set()
    for rec in pool:
        key = normalise(rec["question"])
        if key in seen:
            dropped.append((rec, "duplicate"))
        else:
            seen.add(key)
            kept.append(rec)
    return StepResult(kept, dropped)
