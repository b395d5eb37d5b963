"""A synthetic question pool in the s1K schema, small enough for a tiny model to learn.

Task: "start at s, add a, n times; last digit?". The thinking
trace is one fixed-shape line per step, `k:x+a=y`, where k counts the steps
left (n down to 1), so harder questions (larger n) need longer traces, which
is what the paper's length-as-difficulty signal assumes. The countdown makes
"stop after the line numbered 1" a local rule: a tiny model trained mostly on
long traces (the paper's sampling prefers them) still stops short ones at the
right place. Some traces make a mistake, then "Wait" and a correction.

Premature conclusions (the effect forced "Wait" repairs, paper §3): a running
digit of 0 one or two steps before the end (a line numbered 2 or 3) "looks final".
There the teacher concludes too early (thinking ends, answer 0) in PREMATURE_STOP of
cases, writes "Wait" and carries on in PREMATURE_WAIT, and just carries on otherwise; a 0
earlier in the chain is passed over. After the last line it re-checks in RECHECK of
traces: "Wait" and the last line again, sometimes more than once. A chain has at
most one such 0, so one forced Wait can repair any premature conclusion, and the
teacher never concludes at the same 0 twice. Some attempts say "Final Answer:" (as
many real attempts do), so the release's forced "Final Answer:" at a thinking cap is
in the model's distribution.
A model trained on these traces stops at such a 0 when left alone, and when the end
of its thinking is replaced by "Wait" it continues the chain as the self-corrected
traces do.

The pool also carries the real pool's flaws at about the real rates
(the paper's funnel, arXiv:2501.19393 §2: 59,029 → 54,116 for API errors / missing fields, ~8%; ~5% formatting):
API-error text, missing answers, images, [asy] figures, numbered sub-parts,
bold-digit formatting, exact duplicates, empty questions and verbatim copies
of benchmark questions. Each record says which flaw it has in
`metadata["synthetic_flaw"]` so tests can check the filters catch it; no
stage reads that key.

Every question is at most 9 words long with its numbers in the middle, so
every word 8-gram holds all of its numbers: 8-gram decontamination then
matches only the same question.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator

from s1.data.schema import make_record

# (template, op, MATH-style subject label): the label is the "existing label" domains map from.
# Addition only: a ~1M-parameter model learns one 10x10 digit table in minutes, not two.
TEMPLATES = (
    ("Start at {s}, add {a}, {n} times. Last digit?", "+", "Prealgebra"),
    ("Units digit of {s} plus {a} repeated {n} times?", "+", "Number Theory"),
    ("Add {a} to {s}, {n} times. Final units digit?", "+", "Algebra"),
    ("From {s}, go up {a}, {n} times. Last digit?", "+", "Counting & Probability"),
)
MAX_STEPS = 16

# source name → (share of the pool, s1K-style source_type); shares follow the real 59K pool's mix.
SOURCES = {
    "NuminaMath": (0.52, "AI-MO/NuminaMath-CoT/aops_forum"),
    "MATH": (0.20, "qfq/openaimath/Prealgebra"),
    "OlympicArena": (0.07, "GAIR/OlympicArena/Math"),
    "OmniMath": (0.07, "KbsdJames/Omni-MATH"),
    "AGIEval": (0.04, "baber/agieval/math_agieval"),
    "AIME": (0.015, "qq8933/AIME_1983_2024"),
    "OlympiadBench": (0.015, "Hothan/OlympiadBench/Open-ended/Math"),
    "TheoremQA": (0.013, "TIGER-Lab/TheoremQA/integer"),
    "JEEBench": (0.009, "daman1209arora/jeebench/math"),
    "GPQA": (0.006, "Idavidrein/gpqa"),
    "SciEval": (0.004, "OpenDFM/SciEval/math"),
    "s1-prob": (0.003, "simplescaling/s1-prob"),
    "LiveCodeBench": (0.003, "LiveCodeBench/code_generation_lite"),
    "crossword": (0.017, "0xharib/xword1"),
}

# flaw → rate per record; about the real pool's (59,029 → 54,116 → 51,581).
FLAW_RATES = {
    "api_error": 0.05,
    "missing_answer": 0.03,
    "image": 0.015,
    "asy": 0.015,
    "multi_part": 0.01,
    "bold_digits": 0.007,
    "empty_question": 0.002,
    "duplicate": 0.02,
    "benchmark_copy": 0.005,
}
API_ERRORS = (
    "Error code: 429 - Resource has been exhausted (e.g. check quota).",
    "Error code: 500 - An internal error has occurred. Please retry.",
    "The model is overloaded. Please try again later.",
)
MISTAKE_RATE = 0.05  # traces with one wrong step, then "Wait" and the fix
PREMATURE_LINES = (2, 3)  # a running digit 0 on these lines (steps left) looks final
PREMATURE_STOP = 0.6  # ... there the trace ends (answer 0, wrong unless the chain ends at 0 anyway)
PREMATURE_WAIT = 0.25  # ... the trace writes "Wait" on its own line and continues the chain
RECHECK = 0.25        # after the last step: "Wait" and the last line again; each re-check is repeated with
RECHECK_AGAIN = 0.4   # this probability (at most MAX_RECHECKS); both < 0.5, so a greedy model ends on its own.
MAX_RECHECKS = 5      # 0.4, not 0.3: ~4% of traces re-check 3+ times, so 4 forced Waits stay in the distribution
FINAL_ANSWER = 0.25   # attempts written "Final Answer: \boxed{d}" (the rest "\boxed{d}")


def apply_op(op: str, x: int, a: int) -> int:
    return (x + a) % 10 if op == "+" else (x - a) % 10


def solve(s: int, a: int, n: int, op: str) -> tuple[int, list[str]]:
    """Final digit and the per-step lines, steps left first, e.g. ['2:7+9=6', '1:6+9=5']."""
    lines, x = [], s
    for i in range(n):
        y = apply_op(op, x, a)
        lines.append(f"{n - i}:{x}{op}{a}={y}")
        x = y
    return x, lines


def question_text(template: int, s: int, a: int, n: int) -> str:
    return TEMPLATES[template][0].format(s=s, a=a, n=n)


def draw_question(rng: random.Random, max_steps: int = MAX_STEPS) -> tuple[int, int, int, int]:
    """(template, start, addend, steps): n uniform in 1..max_steps."""
    return rng.randrange(len(TEMPLATES)), rng.randrange(10), rng.randrange(1, 10), rng.randint(1, max_steps)


def clean_record(rng: random.Random, template: int, s: int, a: int, n: int, source: str) -> dict[str, Any]:
    _, op, subject = TEMPLATES[template]
    digit, lines = solve(s, a, n, op)
    mistake_at = rng.randrange(n) if rng.random() < MISTAKE_RATE else None
    trace_lines, concluded, stopped, waits = [], digit, False, 0
    for i, line in enumerate(lines):
        if i == mistake_at:
            x, rest = line.split("=")
            wrong = (int(rest) + rng.randrange(1, 10)) % 10
            trace_lines += [f"{x}={wrong}", f"Wait {x}={rest}"]
        else:
            trace_lines.append(line)
        if line.endswith("=0") and n - i in PREMATURE_LINES:   # a 0 one or two steps before the end looks final
            r = rng.random()
            if r < PREMATURE_STOP:
                concluded, stopped = 0, True
                break
            if r < PREMATURE_STOP + PREMATURE_WAIT:
                trace_lines.append("Wait")
                waits += 1
    if not stopped and rng.random() < RECHECK:
        for _ in range(MAX_RECHECKS):
            trace_lines += ["Wait", lines[-1]]
            if rng.random() >= RECHECK_AGAIN:
                break
    question = question_text(template, s, a, n)
    meta = {"subject": subject, "steps": n, "mistake_fixed": mistake_at is not None, "synthetic_flaw": None,
            "premature_stop": stopped, "premature_waits": waits}
    return make_record(
        question,
        source=source,
        answer=str(digit),
        solution=f"Keep only the last digit at each step: {', '.join(ln.split(':')[1] for ln in lines)}. "
                 f"The answer is $\\boxed{{{digit}}}$.",
        source_type=SOURCES[source][1],
        metadata=meta,
        thinking_trajectories=["\n".join(trace_lines)],
        attempt=("Final Answer: " if rng.random() < FINAL_ANSWER else "") + f"\\boxed{{{concluded}}}",
    )


def _benchmark_questions(benchmark_files: list[Path]) -> list[dict[str, str]]:
    out = []
    for path in benchmark_files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                out.append({"problem": row["problem"], "answer": str(row["answer"]), "file": Path(path).name})
    return out


def _with_flaw(rng: random.Random, rec: dict[str, Any], flaw: str, earlier: list[dict], bench: list[dict]):
    meta = json.loads(rec["metadata"])
    meta["synthetic_flaw"] = flaw
    if flaw == "duplicate" and earlier:
        dup = dict(rng.choice(earlier))
        dup["metadata"] = json.dumps({**json.loads(dup["metadata"]), "synthetic_flaw": flaw}, sort_keys=True)
        return dup
    if flaw == "benchmark_copy" and bench:
        b = rng.choice(bench)
        copy = make_record(
            b["problem"], source=rec["source"], answer=b["answer"], solution="",
            source_type=rec["source_type"], metadata={**meta, "copied_from": b["file"]},
            thinking_trajectories=rec["thinking_trajectories"], attempt=rec["attempt"],
        )
        return copy
    q = rec["question"]
    if flaw == "api_error":
        err = rng.choice(API_ERRORS)
        if rng.random() < 0.5:
            rec["thinking_trajectories"], rec["attempt"] = [err], err
        else:
            rec["thinking_trajectories"], rec["attempt"] = [], None
    elif flaw == "missing_answer":
        rec["answer"] = None if rng.random() < 0.5 else "NA"
    elif flaw == "image":
        q = f"![Image](https://cdn.mathpix.com/cropped/2024_{rng.randrange(10**6):06d}.jpg)\n{q}"
    elif flaw == "asy":
        q = f"[asy]\nsize(100); draw((0,0)--({rng.randint(1, 9)},1));\n[/asy]\n{q}"
    elif flaw == "multi_part":
        other = question_text(*draw_question(rng))
        q = f"p1. {q}\np2. {other}"
    elif flaw == "bold_digits":
        q = f"**{rng.randint(1, 30)}.** {q}"
    elif flaw == "empty_question":
        q = "" if rng.random() < 0.5 else "   "
    rec = make_record(
        q, source=rec["source"], answer=rec["answer"], solution=rec["solution"],
        source_type=rec["source_type"], metadata=meta,
        thinking_trajectories=rec["thinking_trajectories"], attempt=rec["attempt"],
    )
    return rec


def generate_pool(
    size: int, seed: int = 0, benchmark_files: list[Path] | None = None, flaws: bool = True
) -> Iterator[dict[str, Any]]:
    """`size` records in the s1K schema, reproducible for a given seed."""
    rng = random.Random(seed)
    names = list(SOURCES)
    weights = [SOURCES[n][0] for n in names]
    bench = _benchmark_questions(benchmark_files or [])
    earlier: list[dict[str, Any]] = []
    for _ in range(size):
        source = rng.choices(names, weights)[0]
        rec = clean_record(rng, *draw_question(rng), source=source)
        if flaws:
            for flaw, rate in FLAW_RATES.items():
                if rng.random() < rate:
                    rec = _with_flaw(rng, rec, flaw, earlier, bench)
                    break
        if len(earlier) < 512:  # duplicates copy from a bounded window of earlier records
            earlier.append(rec)
        elif rng.random() < 0.01:
            earlier[rng.randrange(512)] = rec
        yield rec


def generate_test_set(size: int, seed: int = 1234, max_steps: int = MAX_STEPS) -> list[dict[str, Any]]:
    """Held-out questions in benchmark form (id, problem, answer, steps): distinct questions."""
    rng = random.Random(seed)
    seen, rows = set(), []
    while len(rows) < size:
        t, s, a, n = draw_question(rng, max_steps)
        q = question_text(t, s, a, n)
        if q in seen:
            continue
        seen.add(q)
        digit, _ = solve(s, a, n, TEMPLATES[t][1])
        rows.append({"id": f"synthetic-{len(rows)}", "problem": q, "answer": str(digit), "steps": n})
    return rows


def write_jsonl(rows, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
