"""Forced "Wait" on the demo over several training seeds: mean and spread (a benchmark, not a test).

  .venv/bin/python bench/wait_seeds.py                       # seeds 0 1 2 into runs/wait-seeds (~3 demo trainings)
  .venv/bin/python bench/wait_seeds.py --seeds 0 1 2 3 --strings   # more seeds; also Table 4's strings
  .venv/bin/python bench/wait_seeds.py --jobs 2              # two seeds at a time (one thread each)

For each seed the whole demo pipeline runs (curate → train → eval, the `make demo` stages, experiment=demo) with
run.seed = seed (data order, sampling) and a demo model built with that seed (initial weights, tokenizer corpus);
a finished stage is not redone on a rerun. Evaluated on the 300 held-out synthetic questions, greedy: no Wait, forced
Wait x1/x2/x4 and adaptive Wait (at most 4; peeks counted in its thinking tokens). Printed: accuracy (%) and average
thinking tokens per setting and seed, then mean ± sample standard deviation over the seeds.
Last line: seeds=… no_wait_acc=… wait1_acc=… wait2_acc=… wait4_acc=… adaptive_acc=… wait2_gain=… (points, mean)
wait2_gain_min=… (smallest over seeds) wait4_tokens=… adaptive_tokens=… (mean thinking tokens).
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

SETTINGS = [("no Wait", "auto", "auto"), ("Wait x1", "wait", 1), ("Wait x2", "wait", 2), ("Wait x4", "wait", 4),
            ("adaptive (<=4)", "adaptive", 4)]
KEYS = {"no Wait": "no_wait", "Wait x1": "wait1", "Wait x2": "wait2", "Wait x4": "wait4", "adaptive (<=4)": "adaptive"}


def seed_model(seed: int, runs_dir: Path) -> Path:
    """The demo model built with this seed (build in the main thread: building in several threads at once hung)."""
    return ensure_tiny_model(runs_dir / "models" / f"demo-qwen2-seed{seed}", size="demo", seed=seed)


def run_seed(seed: int, runs_dir: Path, strings: bool) -> dict:
    """One demo pipeline for this seed; returns its eval metrics.json."""
    model = seed_model(seed, runs_dir)
    methods = "[auto,wait,adaptive" + (",extrapolation_strings]" if strings else "]")
    common = ["experiment=demo", f"paths.runs_dir={runs_dir}", f"run.name=seed{seed}", f"run.seed={seed}",
              f"model.name_or_path={model}", "model.build_tiny=null"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.setdefault("OMP_NUM_THREADS", "1")   # one thread per process: on shared cores two threads fight
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "wait-seeds")
    ap.add_argument("--strings", action="store_true", help="also Table 4's extrapolation strings")
    ap.add_argument("--jobs", type=int, default=1, help="seeds run at once (each stage process uses one thread)")
    args = ap.parse_args()
    if len(args.seeds) < 2:
        raise SystemExit(f"--seeds {args.seeds}: give at least 2 seeds for a spread (3 or more for the README)")
    from concurrent.futures import ThreadPoolExecutor

    for s in args.seeds:
        seed_model(s, args.runs_dir.resolve())
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = pool.map(lambda s: run_seed(s, args.runs_dir.resolve(), args.strings), args.seeds)
        per_seed = dict(zip(args.seeds, done))
    acc = {name: [pick(per_seed[s], m, b)["accuracy"] for s in args.seeds] for name, m, b in SETTINGS}
    tok = {name: [pick(per_seed[s], m, b)["avg_thinking_tokens"] for s in args.seeds] for name, m, b in SETTINGS}
    print("\n| setting | " + " | ".join(f"seed {s} acc / tokens" for s in args.seeds) + " | mean acc ± sd | mean tokens |")
    print("|---|" + "---|" * (len(args.seeds) + 2))
    for name, _, _ in SETTINGS:
        cells = " | ".join(f"{a:.1f} / {t:.1f}" for a, t in zip(acc[name], tok[name]))
        print(f"| {name} | {cells} | {statistics.mean(acc[name]):.1f} ± {statistics.stdev(acc[name]):.1f} | "
              f"{statistics.mean(tok[name]):.1f} |")
    if args.strings:
        print("\nTable 4 (2 suppressions each), accuracy per seed:")
        for label in ("Wait", "Hmm", "Alternatively", "none"):
            vals = [pick(per_seed[s], "extrapolation_strings", label)["accuracy"] for s in args.seeds]
            print(f"  {label}: {' '.join(f'{v:.1f}' for v in vals)}  mean {statistics.mean(vals):.1f}")
    gains = [w - n for w, n in zip(acc["Wait x2"], acc["no Wait"])]
    line = {"seeds": len(args.seeds), **{f"{KEYS[k]}_acc": f"{statistics.mean(v):.1f}" for k, v in acc.items()},
            "wait2_gain": f"{statistics.mean(gains):.1f}", "wait2_gain_min": f"{min(gains):.1f}",
            "wait4_tokens": f"{statistics.mean(tok['Wait x4']):.1f}",
            "adaptive_tokens": f"{statistics.mean(tok['adaptive (<=4)']):.1f}"}
    print(" ".join(f"{k}={v}" for k, v in line.items()))


if __name__ == "__main__":
    main()
