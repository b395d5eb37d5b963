"""make status RUN=<run dir>: every stage of a run, run here or on Slurm — done / running / failed / stale /
not started — with its outputs, its Slurm job (state, reason, exit code, log) if it had one.

    python -m s1.cluster.status runs/demo
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import s1.cluster.slurm as slurm  # the module itself, not the package (whose __init__ imports this one)
from s1.cluster.submit import latest_jobs, slurm_dir
from s1.run_inputs import stage_finished
from s1.shards import SHARD_DIR, SHARDED_STAGES
from s1.stages import STAGES, TABLE

LOG_TAIL_LINES = 15
PROCESS_FILE = "process.json"   # <output_dir>/process.json: the process running a stage (s1.cluster.record_process)


def stage_config(run_dir: Path, stage: str) -> DictConfig | None:
    """The config the stage last ran (or was submitted) with: the newer of <stage>/config.yaml and the Slurm copy."""
    paths = [p for p in (run_dir / stage / "config.yaml", slurm_dir(run_dir) / f"{stage}.config.yaml") if p.exists()]
    if not paths:
        return None
    return OmegaConf.load(max(paths, key=lambda p: p.stat().st_mtime))


def local_process(out: Path) -> str | None:
    """'running' / 'failed' from <output_dir>/process.json (written by the stage's process), None without one."""
    path = out / PROCESS_FILE
    if not path.exists():
        return None
    rec = json.loads(path.read_text())
    if rec.get("ended"):
        return "ended"
    if rec.get("host") != socket.gethostname():
        return f"running? (pid {rec['pid']} on {rec.get('host')})"
    try:
        os.kill(int(rec["pid"]), 0)
    except ProcessLookupError:
        return f"killed (pid {rec['pid']} is gone)"
    except PermissionError:
        pass
    return f"running (pid {rec['pid']})"


def stage_row(run_dir: Path, stage: str, record: dict | None) -> dict:
    row = {"stage": stage, "state": "not started", "job": "", "slurm": "", "reason": "", "exit": "",
           "outputs": "", "log": "", "after": ""}
    info = None
    if record:
        try:
            info = slurm.job_info(record["job_id"])
        except slurm.SlurmError as e:
            row["reason"] = str(e)[:80]
        row |= {"job": record["job_id"], "after": record.get("dependency") or "",
                "slurm": info.state if info else "UNKNOWN (not in scontrol/squeue; finished long ago?)",
                "reason": info.reason if info and info.reason not in ("None", "(null)") else row["reason"],
                "exit": info.exit_code if info else "",
                "log": record["log"] if Path(record["log"]).exists() else "(not written: never started)"}
    cfg = stage_config(run_dir, stage)
    if cfg is None:
        return row
    cwd = Path.cwd()
    try:  # relative paths in the config are relative to where the stage ran
        os.chdir(record.get("workdir", cwd) if record else cwd)
        out = Path(cfg[stage].output_dir).absolute()
        done, why = stage_finished(cfg, stage)
        process = local_process(out)
    finally:
        os.chdir(cwd)
    if done:
        row["state"], row["outputs"] = "done", ", ".join(str(out / s.split("|")[0]) for s in TABLE[stage].outputs)
        return row
    row["outputs"] = why
    if info and not info.done:
        row["state"] = "queued" if info.state == "PENDING" else "running"
    elif info and info.state != "COMPLETED":
        row["state"] = "failed" if info.state != "CANCELLED" else "cancelled"
    elif process and process.startswith("running"):
        row["state"] = process
    elif "inputs changed" in why:  # it finished, with other inputs than today's
        row["state"] = "stale"
    elif process:
        row["state"] = "failed" if process == "ended" else f"failed: {process}"
    else:
        row["state"] = "failed" if record else "not finished"
    return row


def stage_rows(run_dir: str | Path) -> list[dict]:
    run_dir = Path(run_dir)
    jobs = latest_jobs(run_dir)
    rows = [stage_row(run_dir, stage, jobs.get(stage)) for stage in STAGES]
    for before, row in zip(rows, rows[1:]):  # done, but from an upstream stage that is not: make pipeline redoes it
        if row["state"] == "done" and not before["state"].startswith("done"):
            row["state"] = f"done (but {before['stage']} is not)"
    return rows


def array_tasks(record: dict | None) -> dict[int, str]:
    """State per task of a shard array job: squeue -r for the queued and running, sacct for the finished."""
    if not record:
        return {}
    states: dict[int, str] = {}
    job = record["job_id"]
    for cmd in (["sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State"],   # finished long ago (accounting)
                ["scontrol", "show", "job", "-o", job],                        # finished within MinJobAge
                ["squeue", "-h", "-r", "-j", job, "-o", "%i|%T"]):             # queued and running: last, it wins
        if not shutil.which(cmd[0]):
            continue
        try:
            proc = slurm.run_slurm(cmd)
        except slurm.SlurmError:
            continue
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            if cmd[0] == "scontrol":
                f = slurm.parse_scontrol(line)
                task, state = f.get("ArrayTaskId", ""), f.get("JobState", "")
            else:
                task_job, _, state = line.partition("|")
                task = task_job.partition("_")[2]
            if task.isdigit():   # pending tasks not yet split off show as a range ("2-5%2"): left as unknown
                states[int(task)] = state.split()[0] if state else "UNKNOWN"
    return states


def shard_row(run_dir: Path, stage: str, record: dict | None) -> dict | None:
    """A sharded stage: shards finished / K, keys done / total of their current steps, task states, ETA."""
    cfg = stage_config(run_dir, stage)
    out = Path(cfg[stage].output_dir) if cfg is not None else run_dir / stage
    if record:
        out = Path(record.get("workdir", ".")) / out
    folder = out / SHARD_DIR
    if not folder.is_dir():
        return None
    k = int(cfg.cluster.get("shards") or 1) if cfg is not None else len(list(folder.glob("progress-[0-9]*.json")))
    finished = {int(p.name.split("-")[1]) for p in folder.glob(f"done-*-of-{k}.json")}
    done = total = 0
    steps, etas = set(), []
    for i in range(k):
        path = folder / f"progress-{i}.json"
        if not path.exists():
            continue
        p = json.loads(path.read_text())
        done, total = done + p["done"], total + p["total"]
        steps.add(p["step"])
        rate = (p["done"] - p["done_at_start"]) / max(p["updated"] - p["started"], 1e-9)
        if i not in finished and p["total"] > p["done"]:
            etas.append((p["total"] - p["done"]) / rate if rate > 0 else None)
    tasks = array_tasks(record)
    counts = {"running": 0, "pending": 0, "failed": 0}
    for state in tasks.values():
        if state in ("RUNNING", "COMPLETING"):
            counts["running"] += 1
        elif state in ("PENDING", "REQUEUED", "CONFIGURING"):
            counts["pending"] += 1
        elif state in slurm.TERMINAL - {"COMPLETED"}:
            counts["failed"] += 1
    eta = "" if not etas else ("unknown" if None in etas else f"{max(etas) / 60:.1f} min")
    return {"stage": stage, "shards done": f"{len(finished)}/{k}", "keys done": f"{done}/{total}",
            "step": ", ".join(sorted(steps)), "tasks": " ".join(f"{n} {c}" for c, n in counts.items()) if tasks else "",
            "eta": eta}


def print_shards(run_dir: Path) -> list[dict]:
    jobs = latest_jobs(run_dir)
    rows = [r for stage in SHARDED_STAGES if (r := shard_row(run_dir, stage, jobs.get(f"{stage}-shards")))]
    if rows:
        cols = list(rows[0])
        widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
        print("\nshards (keys of each shard's current step; tasks from squeue/sacct)")
        print("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
        for r in rows:
            print("  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip())
    return rows


def unfinished_notes(run_dir: str | Path) -> list[str]:
    """One line per stage whose outputs are not what its inputs say now (for the report: no silent mixing)."""
    return [f"{r['stage']}: {r['state']} — {r['outputs']}" for r in stage_rows(run_dir) if r["state"] != "done"]


def print_status(run_dir: str | Path) -> list[dict]:
    rows = stage_rows(run_dir)
    print(f"run {Path(run_dir).absolute()}")
    cols = ["stage", "state", "job", "slurm", "reason", "exit", "after", "outputs"]
    if not any(r["job"] for r in rows):
        cols = ["stage", "state", "outputs"]  # ran here, no Slurm jobs recorded
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        log = Path(r["log"]) if r["log"] else None
        if r["slurm"] in slurm.TERMINAL - {"COMPLETED", "CANCELLED"} and log and log.exists():
            tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            print(f"\n{r['stage']} (job {r['job']}) {r['slurm']}; last lines of {log}:")
            print("\n".join("  " + line for line in tail))
        elif r["reason"] == "DependencyNeverSatisfied" or (r["slurm"] == "CANCELLED" and r["after"]):
            print(f"\n{r['stage']} (job {r['job']}) never ran: its dependency {r['after']} failed")
    print_shards(Path(run_dir))
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
