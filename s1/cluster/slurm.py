"""Talking to Slurm: sbatch, scontrol and squeue (sacct only where accounting exists)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Job states after which a job never runs again (a requeued job passes through REQUEUED, PENDING).
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
            "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}


class SlurmError(RuntimeError):
    """sbatch or scontrol refused or failed; the message carries Slurm's own words."""


@dataclass
class JobInfo:
    job_id: str
    state: str              # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...
    reason: str = ""        # e.g. Dependency, DependencyNeverSatisfied, NonZeroExitCode
    exit_code: str = ""     # "code:signal"
    source: str = ""        # scontrol | squeue | sacct

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


# Seconds any scontrol/squeue/sacct/sinfo call may take; a controller that answers slower is treated as down.
COMMAND_TIMEOUT_S = 30.0


def run_slurm(cmd: list[str], timeout_s: float | None = None) -> subprocess.CompletedProcess:
    """Run a Slurm client command with a time limit; SlurmError (naming the command) when it does not answer."""
    limit = COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(cmd)}` did not answer in {limit:g} s: the Slurm controller is down or "
                         "overloaded (scontrol ping); try again later") from None


def available() -> bool:
    return shutil.which("sbatch") is not None


def sbatch(script: Path, dependency: str | None = None) -> str:
    """Submit a batch script; returns the job id. A dependent job is cancelled if its parent fails."""
    cmd = ["sbatch", "--parsable"]
    if dependency:
        cmd += [f"--dependency={dependency}", "--kill-on-invalid-dep=yes"]
    cmd.append(str(script))
    proc = run_slurm(cmd, timeout_s=max(120.0, COMMAND_TIMEOUT_S))
    if proc.returncode != 0:
        raise SlurmError(f"sbatch {script} failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout.strip().split(";")[0]  # "id;cluster" on federated clusters


def parse_scontrol(line: str) -> dict[str, str]:
    """`scontrol show job -o` prints Key=Value pairs on one line; values may contain spaces."""
    fields = {}
    starts = [m for m in re.finditer(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=", line)]
    for m, nxt in zip(starts, starts[1:] + [None]):
        fields[m.group(1)] = line[m.end(): nxt.start() if nxt else len(line)].strip()
    return fields


def job_info(job_id: str) -> JobInfo | None:
    """The job's state from scontrol (finished jobs stay for MinJobAge), else squeue, else sacct; None if unknown."""
    if shutil.which("scontrol"):
        proc = run_slurm(["scontrol", "show", "job", "-o", str(job_id)])
        if proc.returncode == 0 and proc.stdout.strip():
            f = parse_scontrol(proc.stdout.strip().splitlines()[0])
            return JobInfo(job_id, f.get("JobState", "UNKNOWN"), f.get("Reason", ""), f.get("ExitCode", ""), "scontrol")
    if shutil.which("squeue"):
        proc = run_slurm(["squeue", "-h", "-j", str(job_id), "-o", "%T|%r"])
        if proc.returncode == 0 and proc.stdout.strip():
            state, _, reason = proc.stdout.strip().splitlines()[0].partition("|")
            return JobInfo(job_id, state, reason, "", "squeue")
    if shutil.which("sacct"):  # only where accounting storage exists; prints an error elsewhere
        proc = run_slurm(["sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "State,ExitCode"])
        if proc.returncode == 0 and proc.stdout.strip():
            state, _, code = proc.stdout.strip().splitlines()[0].partition("|")
            return JobInfo(job_id, state.split()[0], "", code, "sacct")
    return None


def wait_for(job_ids: list[str], poll_s: float = 1.0, timeout_s: float | None = None) -> dict[str, JobInfo | None]:
    """Poll until every job is finished (or unknown to Slurm); returns the last state seen per job."""
    start = time.monotonic()
    while True:
        infos = {j: job_info(j) for j in job_ids}
        if all(i is None or i.done for i in infos.values()):
            return infos
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"jobs {job_ids} still running after {timeout_s:.0f}s: "
                               + ", ".join(f"{j}={i.state if i else '?'}" for j, i in infos.items()))
        time.sleep(poll_s)
