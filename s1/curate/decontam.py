"""Decontamination (word n-grams against every evaluation set) and exact dedup.

As the released code does it: text lower-cased, whitespace collapsed, word
8-grams; a pool question sharing any 8-gram with a benchmark question is
dropped. Texts shorter than n words have no n-gram at all, so they are
compared whole (exact normalised match) — otherwise a short question (the
synthetic ones have <= 9 words) copied from a benchmark would never be caught.
Every removal is listed: pool id, benchmark, benchmark item, the shared n-gram.

The sets are the paper's (AIME 2022-2024, MATH500, GPQA Diamond,
LiveCodeBench): `aime24`, `aime_2022_2023` (the shipped AIME pool's 2022-2023
rows, else the hub's AI-MO/aimo-validation-aime that the released code uses),
`math500`, `gpqa_diamond` (a local CSV or the gated hub set), `livecodebench`
(hub livecodebench/code_generation_lite, release_v4 files, as the released
code), or any jsonl path. As the released code also does, each source is
checked against the sources collected before it (`cross_source`): a later
source's question sharing an 8-gram with an earlier source's is dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from s1.curate.funnel import StepResult
from s1.data.benchmarks import benchmark_name, load_benchmark, read_jsonl_rows


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


AIME_POOL_FILE = "aime_1983_2023.jsonl"
AIME_HUB = "AI-MO/aimo-validation-aime"        # AIME 2022-2024, the released code's "AIME validation" set
LCB_HUB = "livecodebench/code_generation_lite"
LCB_FILES = ["test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl"]   # release_v4 = the first four releases


def load_decontam_set(name: str, benchmarks_dir: str | Path, pool_dir: str | Path | None = None) -> list[dict]:
    """Rows with `id` and `problem` for one decontamination set (see the module doc for the names)."""
    if name == "aime_2022_2023":
        local = Path(pool_dir) / AIME_POOL_FILE if pool_dir else None
        if local is not None and local.exists():
            return [{"id": f"aime-{r['id']}", "problem": r["problem"]} for r in read_jsonl_rows(local)
                    if str(r.get("year")) in ("2022", "2023")]
        return _hub_rows(AIME_HUB, "problem", name, split="train")
    if name == "livecodebench":
        return _hub_rows(LCB_HUB, "question_content", name, data_files=LCB_FILES, split="train")
    return load_benchmark(name, benchmarks_dir)


def _hub_rows(repo: str, field: str, name: str, **kw) -> list[dict]:
    import datasets

    try:
        ds = datasets.load_dataset(repo, **kw)
    except Exception as e:
        raise FileNotFoundError(f"decontam set {name!r}: hub dataset {repo} could not be read ({e}); run with "
                                f"run.offline=false and network, or list a local jsonl with a problem field in "
                                f"curate.decontam.benchmarks instead") from None
    return [{"id": f"{name}-{i}", "problem": r[field]} for i, r in enumerate(ds) if r.get(field)]


def build_index(benchmarks: list[str], benchmarks_dir: str | Path, n: int,
                pool_dir: str | Path | None = None) -> BenchmarkIndex:
    """Every configured set; AIME24 under both its texts (original and the paper's no-figures one)."""
    index = BenchmarkIndex(n=n)
    for name in benchmarks:
        rows = load_decontam_set(name, benchmarks_dir, pool_dir)
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


def cross_source(pool: list[dict], n: int, matches_path: Path | None = None) -> StepResult:
    """Each source against the sources collected before it (pool order): a question sharing an n-gram (or its
    whole text) with an earlier source's question is dropped, as the released collection code does."""
    index = BenchmarkIndex(n=n)
    dropped, matches = [], []
    order: list[str] = []
    for rec in pool:
        if rec["source"] not in order:
            order.append(rec["source"])
    for src in order:
        recs = [r for r in pool if r["source"] == src]
        for rec in recs:
            hit = index.match(rec["question"])
            if hit is None:
                continue
            dropped.append((rec, f"overlaps earlier source:{hit[0]}"))
            matches.append({"id": rec["id"], "source": src, "earlier_source": hit[0], "earlier_id": hit[1],
                            "evidence": hit[2]})
        for rec in recs:                     # the whole source joins the index once it has been checked
            index.add(src, str(rec["id"]), rec["question"])
    if matches_path is not None:
        with open(matches_path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(m, ensure_ascii=False) + "\n" for m in matches)
    gone = {id(rec) for rec, _ in dropped}
    return StepResult([r for r in pool if id(r) not in gone], dropped)


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
