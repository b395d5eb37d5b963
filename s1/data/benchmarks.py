"""Evaluation sets by name or path: the shipped AIME24 / MATH500, the synthetic test set, any jsonl, hub sets.

Curation decontaminates against the same sets evaluation scores on, so both
load them here. Every benchmark is a list of {id, problem, answer, ...} dicts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHIPPED = {"aime24": "aime24.jsonl", "math500": "math500.jsonl"}
SYNTHETIC_TEST_SIZE = 300     # held-out questions for the demo
SYNTHETIC_TEST_SEED = 1234


def load_benchmark(name_or_path: str, benchmarks_dir: str | Path, aime_text: str = "problem_nofigures",
                   limit: int = 0) -> list[dict[str, Any]]:
    """Rows with `id`, `problem`, `answer` (str) and the file's other fields.

    aime_text picks AIME24's text: "problem_nofigures" (what the paper evaluated) or "problem".
    """
    if name_or_path == "synthetic":
        from s1.data.synthetic import generate_test_set

        rows = generate_test_set(SYNTHETIC_TEST_SIZE, seed=SYNTHETIC_TEST_SEED)
    elif name_or_path in SHIPPED:
        path = Path(benchmarks_dir) / SHIPPED[name_or_path]
        if not path.exists():
            raise FileNotFoundError(
                f"benchmark {name_or_path!r}: {path} not found; set paths.benchmarks_dir to the folder "
                f"holding {SHIPPED[name_or_path]} (the repo ships it under data/benchmarks)"
            )
        rows = read_jsonl_rows(path)
        if name_or_path == "aime24":
            if aime_text not in ("problem", "problem_nofigures"):
                raise ValueError(f"eval.aime_text={aime_text!r}: use problem_nofigures (paper) or problem")
            for r in rows:
                r["problem_original"] = r["problem"]
                r["problem"] = r.get(aime_text) or r["problem"]
    elif name_or_path.endswith((".jsonl", ".json")):
        path = Path(name_or_path)
        if not path.exists():
            raise FileNotFoundError(f"benchmark file {path} not found (give a jsonl with problem and answer)")
        rows = read_jsonl_rows(path)
    else:
        rows = _load_hub_benchmark(name_or_path)
    out = []
    for i, r in enumerate(rows):
        if not r.get("problem") or r.get("answer") in (None, ""):
            raise ValueError(f"benchmark {name_or_path!r} row {i}: needs non-empty 'problem' and 'answer'")
        r = dict(r)
        r["id"] = str(r.get("id") or r.get("unique_id") or f"{Path(name_or_path).stem}-{i}")
        r["answer"] = str(r["answer"])
        out.append(r)
    return out[:limit] if limit else out


def benchmark_name(name_or_path: str) -> str:
    """Short name for tables: 'aime24', 'math500', 'synthetic', or a file's stem."""
    return name_or_path if "/" not in name_or_path and not name_or_path.endswith(".jsonl") else Path(
        name_or_path).stem


def read_jsonl_rows(path: str | Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    return rows


def _load_hub_benchmark(name: str) -> list[dict[str, Any]]:
    """Hub sets (e.g. Idavidrein/gpqa, gpqa_diamond): multiple choice becomes problem + letter answer."""
    import datasets

    if "gpqa" in name.lower():
        ds = datasets.load_dataset(name, "gpqa_diamond", split="train")
        return [_gpqa_row(r, i) for i, r in enumerate(ds)]
    ds = datasets.load_dataset(name, split="test")
    return [dict(r) for r in ds]


def _gpqa_row(r: dict[str, Any], i: int) -> dict[str, Any]:
    import random

    choices = [r["Correct Answer"], r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"]]
    order = list(range(4))
    random.Random(i).shuffle(order)  # fixed per question so reruns grade the same letters
    letters = "ABCD"
    body = "\n".join(f"({letters[k]}) {choices[j].strip()}" for k, j in enumerate(order))
    return {
        "id": f"gpqa-{i}",
        "problem": f"{r['Question'].strip()}\n\n{body}",
        "answer": letters[order.index(0)],
        "multiple_choice": True,
    }
