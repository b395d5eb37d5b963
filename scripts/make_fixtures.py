"""Build data/fixtures/*.parquet: small samples in the exact shapes of the public s1 data (the paper, arXiv:2501.19393, and the release, github.com/simplescaling/s1).

  python scripts/make_fixtures.py [--pool-dir ../shared/data/pool] [--out data/fixtures]

Questions, solutions and metadata come from the real pools in ../shared/data/pool, written in the hub's
column formats (metadata as a Python-literal string, hub source_type names). Thinking traces and attempts
are SYNTHESISED here (the pools carry none): a short think-aloud built from the real solution, of varied
length. NuminaMath-shaped rows reuse real MATH questions under AI-MO/NuminaMath-CoT/<src> names with
NuminaMath's metadata (source, messages; no subject label). Deterministic: same pools → same files.

  s1_59k_sample.parquet  the 59K pool's 8 columns, with the pool's flaws (see FLAWS below)
  s1k_sample.parquet     s1K's shape (same 8 columns), clean rows
  s1k_1.1_sample.parquet s1K-1.1's shape: gemini_/deepseek_ trace and attempt strings, grade columns
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
S1_59K_COLUMNS = ("question", "solution", "cot_type", "source_type", "metadata", "cot", "thinking_trajectories",
                  "attempt")
S1K_1_1_COLUMNS = ("solution", "question", "cot_type", "source_type", "metadata", "gemini_thinking_trajectory",
                   "gemini_attempt", "deepseek_thinking_trajectory", "deepseek_attempt", "gemini_grade",
                   "gemini_grade_reason", "deepseek_grade", "deepseek_grade_reason")
NUMINA_SOURCES = ("cn_k12", "olympiads", "synthetic_math", "orca_math", "aops_forum", "amc_aime", "synthetic_amc")
API_ERROR_TEXT = ("Error code: 429 - {'error': {'code': 429, 'message': 'Resource has been exhausted "
                  "(e.g. check quota).', 'status': 'RESOURCE_EXHAUSTED'}}")
# flaws injected into the 59K sample (each row's flaw is recorded in data/fixtures/manifest.json)
FLAWS = {"api_error": 6, "missing_attempt": 3, "image": 3, "multi_part": 3, "bold_digits": 2, "no_gold": 5}


def question_id(question: str) -> str:
    return hashlib.sha256(question.encode("utf-8")).hexdigest()[:16]  # s1/data/schema.py's key


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def synth_trace(rng: random.Random, question: str, solution: str, answer: str, style: str) -> str:
    """A plausible think-aloud: opening, the solution's sentences as steps, checks of varied count."""
    opening = {"gemini": "The problem asks us to solve the following.",
               "deepseek": "Okay, so I need to figure out this problem. Let me read it again carefully."}[style]
    steps = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n\n+", solution) if s.strip()]
    checks = ["Wait, let me double-check that step.", "Let me verify this with a small case.",
              "Hmm, is there another way to see this?", "Let me recompute to be sure."]
    body = []
    for s in steps:
        body.append(s)
        if rng.random() < 0.3:
            body.append(rng.choice(checks) + " " + s)
    body += [rng.choice(checks) for _ in range(rng.randint(1, 8))]
    return "\n\n".join([opening, question.split("\n")[0][:300], *body, f"So the answer is {answer}."])


def synth_attempt(solution: str, answer: str) -> str:
    tail = solution.strip().split("\n\n")[-1][-600:]
    return f"{tail}\n\nFinal Answer: The final answer is $\\boxed{{{answer}}}$"


def py_literal(meta: dict) -> str:
    return repr(meta)  # the hub's metadata column: str(dict) (single quotes, None, True)


def math_row(r: dict) -> dict:
    return {"question": r["problem"], "solution": r["solution"], "source_type": f"qfq/openaimath/{r['subject']}",
            "metadata": {"answer": r["answer"], "subject": r["subject"], "level": r["level"],
                         "unique_id": r["unique_id"]},
            "gold": r["answer"], "pool": "math"}


def numina_row(r: dict, src: str) -> dict:
    return {"question": r["problem"], "solution": r["solution"], "source_type": f"AI-MO/NuminaMath-CoT/{src}",
            "metadata": {"source": src, "messages": [{"content": r["problem"], "role": "user"},
                                                     {"content": r["solution"], "role": "assistant"}]},
            "gold": r["answer"], "pool": "math"}


def aime_row(r: dict) -> dict:
    return {"question": r["problem"], "solution": r["answer"], "source_type": "qq8933/AIME_1983_2024",
            "metadata": {"ID": r["id"], "Year": int(r["year"]), "Problem Number": int(r["problem number"]),
                         "Part": r["part"] or None},
            "gold": r["answer"], "pool": "aime"}


def omni_row(r: dict) -> dict:
    return {"question": r["problem"], "solution": r["solution"], "source_type": "KbsdJames/Omni-MATH",
            "metadata": {"domain": r["domain"], "difficulty": r["difficulty"], "answer": r["answer"],
                         "source": r["omni_source"]},
            "gold": r["answer"], "pool": "omni"}


def olympiad_row(r: dict) -> dict:
    sol = r["solution"] if isinstance(r["solution"], str) else "\n\n".join(r["solution"])
    return {"question": r["problem"], "solution": sol, "source_type": "Hothan/OlympiadBench/Open-ended/Math",
            "metadata": {"id": r["id"], "final_answer": r["final_answer"], "context": r["context"], "image_1": None,
                         "modality": "Text-only", "difficulty": "Competition", "is_multiple_answer":
                         r["is_multiple_answer"], "unit": r["unit"], "answer_type": r["answer_type"],
                         "error": r["error"], "question_type": "Open-ended", "subfield": r["subfield"],
                         "subject": "Math", "language": "English"},
            "gold": r["answer"], "pool": "olympiad"}


def theoremqa_row(r: dict) -> dict:
    return {"question": r["problem"], "solution": r["answer"], "source_type": f"TIGER-Lab/TheoremQA/{r['Answer_type']}",
            "metadata": {"Answer_type": r["Answer_type"], "Picture": r["Picture"]},
            "gold": r["answer"], "pool": "theoremqa"}


def pick(rng: random.Random, rows: list[dict], n: int, cond=lambda r: True) -> list[dict]:
    cand = [r for r in rows if cond(r)]
    return rng.sample(cand, min(n, len(cand)))


def build_pool_rows(pool_dir: Path, rng: random.Random) -> list[dict]:
    math = read_jsonl(pool_dir / "math.jsonl")
    aime = read_jsonl(pool_dir / "aime_1983_2023.jsonl")
    omni = read_jsonl(pool_dir / "omni_math_rule.jsonl")
    olym = read_jsonl(pool_dir / "olympiadbench.jsonl")
    tqa = read_jsonl(pool_dir / "theoremqa.jsonl")
    short = lambda r: len(r["problem"]) < 1500 and len(str(r.get("solution", ""))) < 2500  # noqa: E731
    train = [r for r in math if not r["in_math500"] and short(r)]
    rng.shuffle(train)
    asy = [r for r in train if "[asy]" in r["problem"]][:6]
    plain = [r for r in train if "[asy]" not in r["problem"]]
    rows = [math_row(r) for r in plain[:84]] + [{**math_row(r), "flaw": "asy"} for r in asy]  # [asy] outside AIME
    rows += [{**math_row(r), "flaw": "math500_copy"} for r in pick(rng, math, 5, lambda r: r["in_math500"])]
    rows += [numina_row(r, NUMINA_SOURCES[i % len(NUMINA_SOURCES)]) for i, r in enumerate(plain[84:204])]
    aime_asy = [r for r in aime if "[asy]" in r["problem"]]
    rows += [aime_row(r) for r in pick(rng, aime, 36, lambda r: "[asy]" not in r["problem"]) + aime_asy[:4]]
    rows += [omni_row(r) for r in pick(rng, omni, 40, short)]
    rows += [olympiad_row(r) for r in pick(rng, olym, 20, short)]
    rows += [theoremqa_row(r) for r in pick(rng, tqa, 16, lambda r: not r["has_picture"])]
    rows += [{**theoremqa_row(r), "flaw": "image"} for r in pick(rng, tqa, 4, lambda r: r["has_picture"])]
    return rows


def add_traces(rng: random.Random, row: dict) -> dict:
    row = dict(row)
    for style in ("gemini", "deepseek"):
        row[f"{style}_trace"] = synth_trace(rng, row["question"], row["solution"], row["gold"], style)
        row[f"{style}_attempt"] = synth_attempt(row["solution"], row["gold"])
    return row


def inject_flaws(rng: random.Random, rows: list[dict]) -> None:
    """Flaws of the real pool, on NuminaMath-shaped rows (half the real pool) that carry no other flaw."""
    numina = [r for r in rows if r["source_type"].startswith("AI-MO/") and "flaw" not in r]
    rng.shuffle(numina)
    it = iter(numina)
    for _ in range(FLAWS["api_error"]):
        r = next(it)
        r["flaw"], r["gemini_trace"], r["gemini_attempt"] = "api_error", API_ERROR_TEXT, API_ERROR_TEXT
    for _ in range(FLAWS["missing_attempt"]):
        r = next(it)
        r["flaw"], r["gemini_attempt"] = "missing_attempt", None
    for _ in range(FLAWS["image"]):
        r = next(it)
        r["flaw"] = "image"
        r["question"] += "\n\n![](https://cdn.mathpix.com/cropped/2024_05_06_figure.jpg?height=300&width=400)"
    for _ in range(FLAWS["multi_part"]):
        r = next(it)
        r["flaw"] = "multi_part"
        r["question"] = f"p1. {r['question']}\n\np2. Generalise the result of p1. to any positive integer."
    for _ in range(FLAWS["bold_digits"]):
        r = next(it)
        r["flaw"] = "bold_digits"
        r["question"] = f"**3.** {r['question']}"
    for _ in range(FLAWS["no_gold"]):  # a worked solution without \boxed and no answer in metadata
        r = next(it)
        r["flaw"] = "no_gold"
        r["solution"] = re.sub(r"\\boxed\{", "{", r["solution"])
        r["metadata"]["messages"][1]["content"] = r["solution"]
        r["gold"] = None


def s1_59k_table(rows: list[dict]) -> pa.Table:
    cols = {
        "question": [r["question"] for r in rows],
        "solution": [r["solution"] for r in rows],
        "cot_type": ["math"] * len(rows),
        "source_type": [r["source_type"] for r in rows],
        "metadata": [py_literal(r["metadata"]) for r in rows],
        "cot": [None] * len(rows),
        "thinking_trajectories": [[r["gemini_trace"]] for r in rows],
        "attempt": [r["gemini_attempt"] for r in rows],
    }
    schema = pa.schema([("question", pa.string()), ("solution", pa.string()), ("cot_type", pa.string()),
                        ("source_type", pa.string()), ("metadata", pa.string()), ("cot", pa.null()),
                        ("thinking_trajectories", pa.list_(pa.string())), ("attempt", pa.string())])
    return pa.table(cols, schema=schema)


def s1k_1_1_table(rows: list[dict]) -> pa.Table:
    cols = {
        "solution": [r["solution"] for r in rows],
        "question": [r["question"] for r in rows],
        "cot_type": ["math"] * len(rows),
        "source_type": [r["source_type"] for r in rows],
        "metadata": [py_literal(r["metadata"]) for r in rows],
        "gemini_thinking_trajectory": [r["gemini_trace"] for r in rows],
        "gemini_attempt": [r["gemini_attempt"] for r in rows],
        "deepseek_thinking_trajectory": [r["deepseek_trace"] for r in rows],
        "deepseek_attempt": [r["deepseek_attempt"] for r in rows],
        "gemini_grade": ["Yes"] * len(rows),
        "gemini_grade_reason": ["The attempt's final answer matches the solution's."] * len(rows),
        "deepseek_grade": ["Yes"] * len(rows),
        "deepseek_grade_reason": ["The attempt's final answer matches the solution's."] * len(rows),
    }
    return pa.table(cols, schema=pa.schema([(c, pa.string()) for c in S1K_1_1_COLUMNS]))


def write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", compression_level=19)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool-dir", default=str(REPO.parent / "shared" / "data" / "pool"))
    ap.add_argument("--out", default=str(REPO / "data" / "fixtures"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = [add_traces(rng, r) for r in build_pool_rows(Path(args.pool_dir), rng)]
    inject_flaws(rng, rows)
    rng.shuffle(rows)
    write(s1_59k_table(rows), out / "s1_59k_sample.parquet")
    clean = [r for r in rows if "flaw" not in r]
    s1k = clean[:100]
    write(s1_59k_table(s1k), out / "s1k_sample.parquet")
    s1k_1_1 = clean[100:160]
    write(s1k_1_1_table(s1k_1_1), out / "s1k_1.1_sample.parquet")
    manifest = {
        "seed": args.seed,
        "s1_59k_sample": {"rows": len(rows),
                          "by_source_type_prefix": _count(r["source_type"].rsplit("/", 1)[0]
                                                          if r["source_type"].startswith(("qfq", "AI-MO", "TIGER"))
                                                          else r["source_type"] for r in rows),
                          "flaws": _count(r.get("flaw") for r in rows if r.get("flaw")),
                          "asy_outside_aime": sum("[asy]" in r["question"] and "AIME" not in r["source_type"]
                                                  for r in rows),
                          "asy_in_aime": sum("[asy]" in r["question"] and "AIME" in r["source_type"] for r in rows),
                          "no_gold": sum(r["gold"] is None for r in rows),
                          "flaw_by_id": {question_id(r["question"]): r["flaw"] for r in rows if r.get("flaw")}},
        "s1k_sample": {"rows": len(s1k)},
        "s1k_1.1_sample": {"rows": len(s1k_1_1)},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(json.dumps(manifest, indent=2, sort_keys=True))


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


if __name__ == "__main__":
    main()
