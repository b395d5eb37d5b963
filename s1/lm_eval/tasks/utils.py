"""Offline harness tasks over the benchmarks `make eval` reads, scored with the project's grader (no OpenAI key).

Documents are `make eval`'s rows (s1.data.benchmarks.load_benchmark: id, problem, answer, ...): AIME24 with its
no-figures text (the paper's; aime24_figures: the original wording), MATH500, GPQA Diamond (gpqa_diamond.csv in
the benchmarks folder, else the gated hub set), from the repo's data/benchmarks or the folder given as
`--metadata '{"benchmarks_dir": DIR}'`.
AIME 2025 (s1.1's model card reports it) ships as data/benchmarks/aime25.jsonl; its task reads that.

Per document: exact_match = the first sample is correct (the release's metric); with `repeats: n`, also
avg@n (its fraction of correct samples), cons@n (its majority answer is correct) and the unbiased pass@k for
k = 1, 2, 4, ... n, whose means over documents are the sampling protocol's figures (s1/eval/sampling.py).
The control prompts of the release (PROMPTTOKEN / PROMPTSTEP / PROMPTSHORT / PROMPTLONG) apply as there.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets

from s1.eval.metrics import pass_at_k
from s1.eval.sampling import cons_correct, ks_up_to
from s1.grading import canonical_answer, grade_many
from s1.infer.prompts import CLASS_PROMPTS, STEP_PROMPT, TOKEN_PROMPT

REPO_BENCHMARKS = Path(__file__).resolve().parents[3] / "data" / "benchmarks"


def _rows(name: str, benchmarks_dir: str | None, aime_text: str = "problem_nofigures") -> dict[str, datasets.Dataset]:
    from s1.data.benchmarks import load_benchmark

    rows = load_benchmark(name, benchmarks_dir or REPO_BENCHMARKS, aime_text=aime_text)
    keep = ("id", "problem", "answer", "multiple_choice")
    return {"test": datasets.Dataset.from_list([{k: r.get(k, False) for k in keep} for r in rows])}


def load_aime24(benchmarks_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    return _rows("aime24", benchmarks_dir)


def load_aime24_figures(benchmarks_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    return _rows("aime24", benchmarks_dir, aime_text="problem")     # the original wording, figures as given


def load_math500(benchmarks_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    return _rows("math500", benchmarks_dir)


def load_gpqa_diamond(benchmarks_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    return _rows("gpqa_diamond", benchmarks_dir)


def load_aime25(benchmarks_dir: str | None = None, **_) -> dict[str, datasets.Dataset]:
    return _rows("aime25", benchmarks_dir)


def doc_to_text(doc: dict) -> str:
    """The question, plus the release's control prompt when its environment variable is set."""
    for env, text in (("PROMPTSTEP", STEP_PROMPT), ("PROMPTTOKEN", TOKEN_PROMPT)):
        if os.getenv(env):
            return f"{doc['problem']}\n\n{text.format(n=os.environ[env])}"
    for env, cls in (("PROMPTLONG", "long"), ("PROMPTSHORT", "short")):
        if os.getenv(env):
            return f"{doc['problem']}\n\n{CLASS_PROMPTS[cls]}"
    return doc["problem"]


def process_results_aime(doc: dict, results: list) -> dict:
    return _score(doc, results, integer_answer=True)


def process_results_math(doc: dict, results: list) -> dict:
    return _score(doc, results, integer_answer=False)


def process_results_gpqa(doc: dict, results: list) -> dict:
    return _score(doc, results, integer_answer=False)


def _score(doc: dict, results: list, integer_answer: bool) -> dict:
    from s1.eval.runner import extracted, grade

    texts = results[0] if isinstance(results[0], list) else results[:1]    # take_first_k: all n samples
    mc = bool(doc.get("multiple_choice"))
    if mc:
        correct = [grade(t, doc, "gpqa_diamond", multiple_choice=True) for t in texts]
    else:
        correct = grade_many(texts, [doc["answer"]] * len(texts), integer_answer=integer_answer)
    answers = [extracted(t, mc) for t in texts]         # GPQA: the chosen letter (extract_choice), as make eval
    out = {"exact_match": int(correct[0]), "extracted_answers": answers}
    n = len(texts)
    if n > 1:
        out[f"avg@{n}"] = sum(correct) / n
        # votes by answer class ("016" = "16", "\\frac12" = "0.5", "(B)" = "B"), as make eval's cons@n and the
        # release's maj@k over its judge-mapped answers
        out[f"cons@{n}"] = int(cons_correct(answers, correct, canonical_answer))
        out.update({f"pass@{k}": pass_at_k(n, sum(correct), k) for k in ks_up_to(n)})
    return out
