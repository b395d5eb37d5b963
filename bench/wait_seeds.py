"""The demo over several training seeds and thread counts: forced Wait, adaptive Wait and the cap curve (a benchmark).

  .venv/bin/python bench/wait_seeds.py --seeds 0 1 2 3 4 --threads 1     # 5 demo trainings, two at a time
  .venv/bin/python bench/wait_seeds.py --seeds 0 1 2 3 4 --threads 2     # the same, one at a time on two threads
  .venv/bin/python bench/wait_seeds.py --seeds 100 101 --strings         # design seeds; also Table 4's strings

For each seed the whole demo pipeline runs (curate → train → eval, the `make demo` stages, experiment=demo) with
run.seed = seed (data order, sampling) and a demo model built with that seed (initial weights, tokenizer corpus),
each stage process on --threads threads (float32 training differs between thread counts, so each count is its own
run, under runs/wait-seeds/threads<N>/); a finished stage is not redone on a rerun. Evaluated on the 300 held-out
synthetic questions, greedy: no Wait (no cap), forced Wait x1/x2/x4, adaptive Wait (at most 4; peeks counted in its
thinking tokens) and the demo's thinking caps. Printed per seed and on the mean: accuracy (%) / average thinking
tokens, the cap curve, and each Wait count's gain over no Wait (points).
Last line: seeds= threads= no_wait_acc= wait1_acc= wait2_acc= wait4_acc= adaptive_acc= (means) no_wait_acc_min=
wait1_gain= wait2_gain= wait4_gain= (mean) wait1_gain_min= wait2_gain_min= (smallest over seeds)
adaptive_gap_max= (largest shortfall of adaptive under the best fixed Wait count, points)
adaptive_fewer_tokens_seeds= (seeds where adaptive thinks less than Wait x2) cap_rise_min= (smallest over seeds of
largest cap minus smallest cap, points) cap_curve_monotone_seeds= (seeds whose cap curve never falls).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from s1.tiny_model import ensure_tiny_model  # noqa: E402  (after the path set-up)

WAITS = [("Wait x1", 1), ("Wait x2", 2), ("Wait x4", 4)]


def seed_model(seed: int, runs_dir: Path) -> Path:
    """The demo model built with this seed (build in the main thread: building in several threads at once hung)."""
    return ensure_tiny_model(runs_dir / "models" / f"demo-qwen2-seed{seed}", size="demo", seed=seed)


def run_seed(seed: int, runs_dir: Path, threads: int, strings: bool) -> dict:
    """One demo pipeline for this seed; returns its eval metrics.json."""
    model = seed_model(seed, runs_dir)
    methods = "[no_bf,bf,wait,adaptive" + (",extrapolation_strings]" if strings else "]")
    common = ["experiment=demo", f"paths.runs_dir={runs_dir}", f"run.name=seed{seed}", f"run.seed={seed}",
              f"model.name_or_path={model}", "model.build_tiny=null"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    for script, extra in (("curate.py", []), ("train.py", []),
                          ("eval.py", [f"eval.methods={methods}", "eval.include_base_model=false"])):
        t = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "scripts" / script), *common, *extra], check=True, env=env,
                       cwd=REPO, stdout=subprocess.DEVNULL)
        print(f"seed {seed}: {script} {time.perf_counter() - t:.0f} s", flush=True)
    return json.loads((runs_dir / f"seed{seed}" / "eval" / "metrics.json").read_text())


def pick(metrics: dict, method: str, budget) -> dict:
    rows = [r for r in metrics["rows"] if r["model"] == "trained" and r["method"] == method and r["budget"] == budget
            and r["benchmark"] == "synthetic"]
    if len(rows) != 1:
        raise SystemExit(f"metrics.json: expected one trained {method} row with budget {budget}, found {len(rows)}")
    return rows[0]


def caps_of(metrics: dict) -> list[int]:
    return sorted(r["budget"] for r in metrics["rows"] if r["model"] == "trained" and r["method"] == "bf"
                  and r["budget"] is not None)


def summarize(per_seed: dict[int, dict]) -> dict:
    """Per seed: accuracy / tokens of each setting, the cap curve, the gains; the checks of issue 31."""
    out = {}
    for s, m in per_seed.items():
        rows = {"no Wait": pick(m, "bf", None), **{name: pick(m, "wait", w) for name, w in WAITS},
                "adaptive (<=4)": pick(m, "adaptive", 4)}
        caps = [(c, pick(m, "bf", c)["accuracy"]) for c in caps_of(m)]
        acc = {k: r["accuracy"] for k, r in rows.items()}
        best_fixed = max(acc[name] for name, _ in WAITS)
        out[s] = {"acc": acc, "tokens": {k: r["avg_thinking_tokens"] for k, r in rows.items()}, "caps": caps,
                  "gain": {name: acc[name] - acc["no Wait"] for name, _ in WAITS},
                  "adaptive_gap": best_fixed - acc["adaptive (<=4)"],
                  "adaptive_fewer_tokens": rows["adaptive (<=4)"]["avg_thinking_tokens"]
                  < rows["Wait x2"]["avg_thinking_tokens"],
                  "cap_rise": caps[-1][1] - caps[0][1],
                  "cap_monotone": all(b >= a for (_, a), (_, b) in zip(caps, caps[1:]))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--threads", type=int, default=1, help="threads per stage process (1 or 2 on a 2-core machine)")
    ap.add_argument("--jobs", type=int, default=None, help="seeds run at once (default: CPU cores // threads)")
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "wait-seeds")
    ap.add_argument("--strings", action="store_true", help="also Table 4's extrapolation strings")
    args = ap.parse_args()
    if len(args.seeds) < 2:
        raise SystemExit(f"--seeds {args.seeds}: give at least 2 seeds for a spread (5 for the docs)")
    if args.threads < 1:
        raise SystemExit(f"--threads {args.threads}: give 1 or more threads per process")
    jobs = args.jobs or max(1, (os.cpu_count() or 1) // args.threads)
    runs_dir = (args.runs_dir / f"threads{args.threads}").resolve()
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    for s in args.seeds:
        seed_model(s, runs_dir)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        per_seed = dict(zip(args.seeds, pool.map(lambda s: run_seed(s, runs_dir, args.threads, args.strings),
                                                 args.seeds)))
    res = summarize(per_seed)
    seeds = args.seeds
    names = ["no Wait", *(n for n, _ in WAITS), "adaptive (<=4)"]
    print(f"\n{len(seeds)} seeds, {args.threads} thread(s) per process, {jobs} at a time, "
          f"{time.perf_counter() - t0:.0f} s. Accuracy (%) / average thinking tokens:\n")
    print("| setting | " + " | ".join(f"seed {s}" for s in seeds) + " | mean acc ± sd | mean tokens |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for name in names:
        a = [res[s]["acc"][name] for s in seeds]
        t = [res[s]["tokens"][name] for s in seeds]
        cells = " | ".join(f"{x:.1f} / {y:.1f}" for x, y in zip(a, t))
        print(f"| {name} | {cells} | {statistics.mean(a):.1f} ± {statistics.stdev(a):.1f} | {statistics.mean(t):.1f} |")
    for c, _ in res[seeds[0]]["caps"]:
        a = [dict(res[s]["caps"])[c] for s in seeds]
        print(f"| cap {c} | " + " | ".join(f"{x:.1f}" for x in a) + f" | {statistics.mean(a):.1f} ± "
              f"{statistics.stdev(a):.1f} | |")
    print("\nGain over no Wait (points): " + "; ".join(
        f"{name} " + " ".join(f"{res[s]['gain'][name]:+.1f}" for s in seeds) for name, _ in WAITS))
    if args.strings:
        print("\nTable 4 (2 suppressions each), accuracy per seed:")
        for label in ("Wait", "Hmm", "Alternatively", "none"):
            vals = [pick(per_seed[s], "extrapolation_strings", label)["accuracy"] for s in seeds]
            print(f"  {label}: {' '.join(f'{v:.1f}' for v in vals)}  mean {statistics.mean(vals):.1f}")
    keys = {"no Wait": "no_wait", "Wait x1": "wait1", "Wait x2": "wait2", "Wait x4": "wait4",
            "adaptive (<=4)": "adaptive"}
    line = {"seeds": len(seeds), "threads": args.threads,
            **{f"{keys[n]}_acc": f"{statistics.mean(res[s]['acc'][n] for s in seeds):.1f}" for n in names},
            "no_wait_acc_min": f"{min(res[s]['acc']['no Wait'] for s in seeds):.1f}",
            **{f"{keys[n]}_gain": f"{statistics.mean(res[s]['gain'][n] for s in seeds):.1f}" for n, _ in WAITS},
            "wait1_gain_min": f"{min(res[s]['gain']['Wait x1'] for s in seeds):.1f}",
            "wait2_gain_min": f"{min(res[s]['gain']['Wait x2'] for s in seeds):.1f}",
            "adaptive_gap_max": f"{max(res[s]['adaptive_gap'] for s in seeds):.1f}",
            "adaptive_fewer_tokens_seeds": sum(res[s]["adaptive_fewer_tokens"] for s in seeds),
            "cap_rise_min": f"{min(res[s]['cap_rise'] for s in seeds):.1f}",
            "cap_curve_monotone_seeds": sum(res[s]["cap_monotone"] for s in seeds)}
    print(" ".join(f"{k}={v}" for k, v in line.items()))


if __name__ == "__main__":
    main()
