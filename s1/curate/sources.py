"""Question pools from anywhere, normalised to one record schema (s1K columns + id/source/answer).

Kinds: `synthetic` (s1/data/synthetic.py), `jsonl` / `pool` (local JSON Lines,
e.g. ../shared/data/pool/*.jsonl), `parquet`, `arrow` (a save_to_disk folder
or .arrow file), `hub` (datasets.load_dataset by name/subset/split/revision).
`field_map` says which source field fills which record field
(question: problem); source fields not mapped are kept in `metadata`.
Lines that are not JSON or not UTF-8 come out as invalid markers, so the
validate step can quarantine them with their reason instead of crashing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from s1.curate.quality import is_na
from s1.data.schema import GOLD_SOURCES, gold_answer, make_record, parse_metadata, source_family
from s1.data.synthetic import generate_pool
from s1.runtime import ConfigError

log = logging.getLogger("s1.curate")
KINDS = ("synthetic", "jsonl", "pool", "parquet", "arrow", "hub")
# record fields a source can fill; domain_label feeds domains.method=labels
MAPPABLE = ("question", "solution", "answer", "attempt", "thinking_trajectories", "cot_type", "source_type",
            "metadata", "domain_label")
MAX_RAW_CHARS = 2000  # of an invalid line kept in quarantine.jsonl


def check_source(src, i: int) -> None:
    key = f"curate.sources[{i}]"
    if src.kind not in KINDS:
        raise ConfigError(f"{key}.kind", src.kind, f"use one of {KINDS}")
    if src.kind in ("jsonl", "pool", "parquet", "arrow") and (not src.path or not Path(src.path).exists()):
        raise ConfigError(f"{key}.path", src.path, f"no such file; give an existing {src.kind} file")
    if src.kind == "hub" and not src.name:
        raise ConfigError(f"{key}.name", src.name, "give the hub dataset name, e.g. simplescaling/s1K")
    if src.kind == "synthetic" and src.size <= 0:
        raise ConfigError(f"{key}.size", src.size, "give the number of synthetic records to generate (> 0)")
    bad = sorted(set(src.field_map) - set(MAPPABLE))
    if bad:
        raise ConfigError(f"{key}.field_map.{bad[0]}", src.field_map[bad[0]], f"record fields are {MAPPABLE}")


def load_pool(sources, benchmarks_dir: str | Path) -> list[dict[str, Any]]:
    """All sources, in order, as records (invalid lines as markers for quarantine)."""
    for i, src in enumerate(sources):
        check_source(src, i)
    pool: list[dict[str, Any]] = []
    for src in sources:
        before = len(pool)
        pool.extend(load_source(src, benchmarks_dir))
        log.info("source %-14s %-9s %6d records", source_name(src), src.kind, len(pool) - before)
    return pool


def source_name(src) -> str:
    return src.name or (Path(src.path).stem if src.path else src.kind)


def load_source(src, benchmarks_dir: str | Path) -> Iterator[dict[str, Any]]:
    name = source_name(src)
    if src.kind == "synthetic":
        files = [p for p in (Path(benchmarks_dir) / "aime24.jsonl", Path(benchmarks_dir) / "math500.jsonl")
                 if p.exists()]
        for rec in generate_pool(src.size, seed=src.seed, benchmark_files=files):
            rec["source"] = name
            yield rec
        return
    rows = _raw_rows(src)
    for n, row in enumerate(rows):
        if src.size and n >= src.size:
            break
        yield row if "_invalid" in row else normalise(row, src, name)


def _raw_rows(src) -> Iterator[dict[str, Any]]:
    name = source_name(src)
    if src.kind in ("jsonl", "pool"):
        with open(src.path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                where = f"{src.path}:{lineno}"
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield _invalid("not_utf8", name, where, raw.decode("utf-8", "replace"), str(e))
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as e:
                    yield _invalid("invalid_json", name, where, text, e.msg)
                    continue
                if not isinstance(row, dict):
                    yield _invalid("not_an_object", name, where, text, type(row).__name__)
                    continue
                yield row
        return
    import datasets

    if src.kind == "parquet":
        ds = datasets.Dataset.from_parquet(str(src.path))
    elif src.kind == "arrow":
        p = Path(src.path)
        ds = datasets.load_from_disk(str(p)) if p.is_dir() else datasets.Dataset.from_file(str(p))
    else:
        ds = datasets.load_dataset(src.name, src.subset, split=src.split, revision=src.revision)
    yield from ds


def _invalid(reason: str, source: str, where: str, raw: str, detail: str) -> dict[str, Any]:
    return {"_invalid": reason, "source": source, "where": where, "detail": detail, "raw": raw[:MAX_RAW_CHARS]}


def normalise(row: dict[str, Any], src, name: str) -> dict[str, Any]:
    """One source row → one record: mapped fields, the rest of the row in metadata."""
    fmap = {f: f for f in MAPPABLE if f in row}
    fmap.update(src.field_map)
    got = {f: row.get(s) for f, s in fmap.items()}
    raw_meta = got.get("metadata")
    meta = parse_metadata(raw_meta)  # the hub's Python-literal string, or JSON
    meta = dict(meta) if meta is not None else {"metadata": raw_meta}
    used = set(fmap.values())
    meta.update({k: v for k, v in row.items() if k not in used})
    traces = got.get("thinking_trajectories")
    if isinstance(traces, str):
        traces = [traces]
    solution = got.get("solution")
    if isinstance(solution, list):  # OlympiadBench: a list of solutions
        solution = "\n\n".join(str(s) for s in solution)
    answer = got.get("answer")
    if isinstance(answer, list):
        answer = ", ".join(str(a) for a in answer)
    rec = make_record(
        got.get("question"), source=name,
        answer=None if answer is None else str(answer),
        solution=solution or "",
        cot_type=got.get("cot_type") or "math",
        source_type=src.source_type or got.get("source_type") or name,
        metadata=json.loads(json.dumps(meta, default=str)),
        thinking_trajectories=traces,
        attempt=got.get("attempt"),
    )
    if got.get("domain_label") is not None:
        rec["domain_label"] = got["domain_label"]
    return rec


def add_gold_answers(pool: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """rec["answer"] = the gold answer (None when there is none) and rec["gold_source"] = how it was found.

    A source's own answer column wins unless it is empty or NA ("NA", "none", ...); else gold_answer(): last \\boxed{} of the solution, a bare-answer
    solution, the metadata's answer. Returns {source family (source_type's dataset): {how: count}} for the funnel.
    """
    counts: dict[str, dict[str, int]] = {}
    for rec in pool:
        if not is_na(rec.get("answer")):
            rec["gold_source"] = "answer_column"
        else:
            rec["answer"], rec["gold_source"] = gold_answer(rec)
        per = counts.setdefault(source_family(rec), dict.fromkeys(GOLD_SOURCES, 0))
        per[rec["gold_source"]] += 1
    for src, per in sorted(counts.items()):
        log.info("gold answers %-24s %s", src, ", ".join(f"{k} {v}" for k, v in per.items() if v))
    return counts
