"""make status RUN=<run dir>: each stage's latest Slurm job — state, reason, exit code, log — and its outputs.

    python -m s1.cluster.status runs/demo
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

from s1.cluster import slurm
from s1.cluster.outputs import stage_finished
from s1.cluster.submit import latest_jobs, slurm_dir
from s1.runtime import STAGES

LOG_TAIL_LINES = 15


def stage_rows(run_dir: str | Path) -> list[dict]:
    rows = []
    for stage, record in latest_jobs(run_dir).items():
        info = slurm.job_info(record["job_id"])
        config = slurm_dir(run_dir) / f"{stage}.config.yaml"
        outputs = "?"
        if config.exists():
            cwd = Path.cwd()
            try:  # relative output dirs are relative to where the job ran
                os.chdir(record.get("workdir", cwd))
                outputs = "done" if stage_finished(OmegaConf.load(config), stage)[0] else "missing"
            finally:
                os.chdir(cwd)
        rows.append({"stage": stage, "job": record["job_id"],
                     "state": info.state if info else "UNKNOWN (not in scontrol/squeue; finished long ago?)",
                     "reason": info.reason if info and info.reason not in ("None", "(null)") else "",
                     "exit": info.exit_code if info else "", "outputs": outputs,
                     "log": record["log"] if Path(record["log"]).exists() else "(not written: never started)",
                     "after": record.get("dependency") or ""})
    return sorted(rows, key=lambda r: STAGES.index(r["stage"]) if r["stage"] in STAGES else 99)


def print_status(run_dir: str | Path) -> list[dict]:
    rows = stage_rows(run_dir)
    if not rows:
        print(f"no Slurm jobs recorded in {slurm_dir(run_dir) / 'jobs.jsonl'} (submitted with cluster=slurm?)")
        return rows
    print(f"run {Path(run_dir).absolute()}")
    cols = ["stage", "job", "state", "reason", "exit", "after", "outputs", "log"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        log = Path(r["log"])
        if r["state"] in slurm.TERMINAL - {"COMPLETED", "CANCELLED"} and log.exists():
            tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            print(f"\n{r['stage']} (job {r['job']}) {r['state']}; last lines of {log}:")
            print("\n".join("  " + line for line in tail))
        elif r["reason"] == "DependencyNeverSatisfied" or (r["state"] == "CANCELLED" and r["after"]):
            print(f"\n{r['stage']} (job {r['job']}) never ran: its dependency {r['after']} failed")
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m s1.cluster.status <run dir>   (make status RUN=runs/<name>)", file=sys.stderr)
        return 2
    print_status(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
