"""Evaluation sets by name or path: the shipped AIME24 / AIME25 / MATH500, GPQA Diamond, the synthetic test set, any
jsonl.

GPQA Diamond (198 questions) is gated by its authors and not shipped: `gpqa_diamond`
reads `<benchmarks_dir>/gpqa_diamond.csv` when present (the CSV of the GPQA release,
same columns as the hub), else the hub (`Idavidrein/gpqa`, subset `gpqa_diamond`,
needs HF_TOKEN after accepting its terms). Any `*.csv` path in that shape works too.
The four options are written as the released s1 evaluation does ("A) ...", one per line) and the answer is a letter.
Their order (eval.gpqa.option_order): `seeded` shuffles each question with its own seed (its order does not depend
on the rest of the set); `release` is the fork's gpqa/openai/utils.py process_docs: one RNG seeded with
eval.gpqa.seed (lm-evaluation-harness's random_seed, 0) shuffles [Incorrect 1, Incorrect 2, Incorrect 3, Correct]
question after question in the set's order, texts as they are.

Curation decontaminates against the same sets evaluation scores on, so both
load them here. Every benchmark is a list of {id, problem, answer, ...} dicts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from s1.data.synthetic import generate_test_set

SHIPPED = {"aime24": "aime24.jsonl", "aime25": "aime25.jsonl", "math500": "math500.jsonl"}   # data/README.md: provenance
GPQA_NAME, GPQA_HUB, GPQA_SUBSET, GPQA_SIZE = "gpqa_diamond", "Idavidrein/gpqa", "gpqa_diamond", 198
GPQA_SHUFFLE_SEED = 0         # option order: fixed, so every run and rerun grades the same letters
GPQA_ORDERS = ("seeded", "release")
GPQA_COLUMNS = ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
SYNTHETIC_TEST_SIZE = 300     # held-out questions for the demo
SYNTHETIC_TEST_SEED = 1234


def load_benchmark(name_or_path: str, benchmarks_dir: str | Path, aime_text: str = "problem_nofigures",
                   limit: int = 0, gpqa_order: str = "seeded", gpqa_seed: int = GPQA_SHUFFLE_SEED) -> list[dict[str, Any]]:
    """Rows with `id`, `problem`, `answer` (str) and the file's other fields.

    aime_text picks AIME24's text: "problem_nofigures" (what the paper evaluated) or "problem"; gpqa_order / gpqa_seed
    GPQA's option order (eval.gpqa.option_order / seed).
    """
    if name_or_path == "synthetic":
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
    elif name_or_path == GPQA_NAME or name_or_path.endswith(".csv"):
        rows = load_gpqa(name_or_path, benchmarks_dir, gpqa_order, gpqa_seed)
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
    return name_or_path if "/" not in name_or_path and not name_or_path.endswith((".jsonl", ".csv")) else Path(
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
    import datasets

    if "gpqa" in name.lower():
        return load_gpqa(GPQA_NAME, "")
    ds = datasets.load_dataset(name, split="test")
    return [dict(r) for r in ds]


def load_gpqa(name_or_path: str, benchmarks_dir: str | Path, order: str = "seeded",
              seed: int = GPQA_SHUFFLE_SEED) -> list[dict[str, Any]]:
    """GPQA rows (hub or CSV, GPQA's own columns) → {id, problem, answer letter, choices, multiple_choice}."""
    import csv

    local = Path(name_or_path) if name_or_path.endswith(".csv") else Path(benchmarks_dir) / f"{GPQA_NAME}.csv"
    if local.exists():
        with open(local, encoding="utf-8", newline="") as f:
            raw = list(csv.DictReader(f))
        origin = str(local)
    elif name_or_path.endswith(".csv"):
        raise FileNotFoundError(f"GPQA file {local} not found (a CSV with columns {list(GPQA_COLUMNS)})")
    else:
        import datasets

        try:
            raw = [dict(r) for r in datasets.load_dataset(GPQA_HUB, GPQA_SUBSET, split="train")]
        except Exception as e:
            raise FileNotFoundError(
                f"GPQA Diamond: no {local} and the hub set {GPQA_HUB}/{GPQA_SUBSET} could not be read ({e}); "
                f"accept its terms on the hub and set HF_TOKEN (run.offline=false), or put gpqa_diamond.csv "
                f"from the GPQA release in paths.benchmarks_dir") from None
        origin = f"{GPQA_HUB}/{GPQA_SUBSET}"
    missing = [c for c in GPQA_COLUMNS if raw and c not in raw[0]]
    if missing:
        raise ValueError(f"GPQA {origin}: columns {missing} missing; expected the GPQA release's {list(GPQA_COLUMNS)}")
    if name_or_path == GPQA_NAME and len(raw) != GPQA_SIZE:
        import logging

        logging.getLogger("s1.data").warning("GPQA Diamond from %s has %d questions, the paper's has %d",
                                             origin, len(raw), GPQA_SIZE)
    if order not in GPQA_ORDERS:
        raise ValueError(f"eval.gpqa.option_order={order!r}: use one of {GPQA_ORDERS}")
    if order == "release":
        import random

        rng = random.Random(seed)   # the fork: random.seed(random_seed) once, then process_docs in the set's order
        return [gpqa_release_row(r, i, rng) for i, r in enumerate(raw)]
    return [gpqa_row(r, i, seed) for i, r in enumerate(raw)]


def gpqa_release_row(r: dict[str, Any], i: int, rng) -> dict[str, Any]:
    """The fork's gpqa/openai/utils.py _process_doc: shuffle [inc1, inc2, inc3, correct] with the shared RNG; the
    answer is the letter of the first option equal to the correct text (choices.index)."""
    choices = [r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"], r["Correct Answer"]]
    rng.shuffle(choices)
    qid = str(r.get("Record ID") or f"gpqa-{i}")
    body = "\n".join(f"{LETTERS[k]}) {c}" for k, c in enumerate(choices))
    return {"id": qid, "problem": f"{r['Question']}\n\n{body}", "answer": LETTERS[choices.index(r["Correct Answer"])],
            "choices": choices, "multiple_choice": True}


def gpqa_row(r: dict[str, Any], i: int, seed: int = GPQA_SHUFFLE_SEED) -> dict[str, Any]:
    """One question with its 4 options in a fixed shuffled order; the answer is the correct option's letter."""
    import random

    choices = [r["Correct Answer"], r["Incorrect Answer 1"], r["Incorrect Answer 2"], r["Incorrect Answer 3"]]
    choices = [str(c).strip() for c in choices]
    qid = str(r.get("Record ID") or f"gpqa-{i}")
    order = list(range(4))
    random.Random(f"{seed}/{qid}").shuffle(order)
    body = "\n".join(f"{LETTERS[k]}) {choices[j]}" for k, j in enumerate(order))
    return {
        "id": qid,
        "problem": f"{str(r['Question']).strip()}\n\n{body}",
        "answer": LETTERS[order.index(0)],
        "choices": [choices[j] for j in order],
        "multiple_choice": True,
    }


LETTERS = "ABCD"
_CHOICE = re.compile(r"^\(?\s*([A-D])\s*(?:[).:]|$|\s)")
_MARKED_CHOICE = re.compile(r"(?:\(([A-D])\)|\b([A-D])\))")


def choice_letter(answer: str | None) -> str | None:
    """The option letter of an extracted answer: "C", "(C)", "C) 7", "\\text{C}", "**C**" → "C"; else None."""
    if not answer:
        return None
    a = re.sub(r"\\(?:text|mathrm|textbf)\{([^}]*)\}", r"\1", answer)
    a = a.replace("*", "").replace("$", "").strip()
    m = _CHOICE.match(a)
    if m:
        return m.group(1)
    marked = [m.group(1) or m.group(2) for m in _MARKED_CHOICE.finditer(a)]  # "the answer is (C)": one letter only
    return marked[0] if len(set(marked)) == 1 else None
