"""Submit one stage: check, render, save script + resolved config in the run dir, sbatch, record the job id."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import s1.cluster.slurm as slurm  # the module itself, not the package (whose __init__ imports this one)
from s1.cluster.checks import check_submission
from s1.cluster.preflight import PreflightFailed, run_preflight
from s1.cluster.render import job_script, log_path
from s1.shards import SHARDED_STAGES, save_command, shard_count, shards_left


def slurm_dir(run_dir: str | Path) -> Path:
    """<run dir>/slurm: rendered scripts, the configs they ran with, jobs.jsonl."""
    return Path(run_dir) / "slurm"


def array_spec(indices: list[int], throttle: int | None) -> str:
    """sbatch --array value: 0-(K-1) when every shard runs, else the list; %N limits the tasks running at once."""
    spec = f"0-{indices[-1]}" if indices == list(range(len(indices))) else ",".join(map(str, indices))
    return spec + (f"%{int(throttle)}" if throttle else "")


def submit_stage(cfg: DictConfig, stage: str, overrides: list[str], *, dependency: str | None = None,
                 upstream: tuple[str, ...] = (), shards: list[int] | None = None, checked: bool = False,
                 stage_checked: bool = False) -> str | None:
    """Submit `stage` as a Slurm job; returns its job id (None on a dry run). Nothing is submitted on a bad config.

    With cluster.shards=K (curate, eval): first the shards as one job array (only `shards` when given, e.g. the
    ones `make resume` found unfinished), then the stage itself after it (afterok): the merge. Returns the merge's id.
    `checked`: the caller ran check_submission already (make pipeline checks every stage first); `stage_checked`:
    the entry point ran the stage's own checks, the cluster's remain. Either way each config is checked once.
    """
    if not checked:
        for note in check_submission(cfg, stage, upstream=upstream, stage_checked=stage_checked):
            print(f"{stage}: {note}")
    failed = None
    if not checked:   # interpreter, endpoint, token, hub: before anything is queued (a dry run prints the scripts first)
        try:
            run_preflight({stage: cfg}, [stage], upstream)
        except PreflightFailed as e:
            if not cfg.cluster.dry_run:
                raise
            failed = e
    if stage in SHARDED_STAGES and shard_count(cfg) > 1:
        todo = shards_left(cfg, stage) if shards is None else shards
        if not cfg.cluster.dry_run:
            save_command(cfg, stage, overrides)   # what `make resume` submits again
        if todo:
            script = job_script(cfg, stage, overrides, array=array_spec(todo, cfg.cluster.array_throttle))
            array_job = _submit(cfg, f"{stage}-shards", script, dependency, overrides, log_path(cfg, stage, array=True))
            dependency = f"afterok:{array_job or f'<{stage}-shards job>'}"
        else:
            print(f"{stage}: every shard finished its share; submitting the merge only")
    job = _submit(cfg, stage, job_script(cfg, stage, overrides), dependency, overrides, log_path(cfg, stage))
    if failed:
        raise failed
    return job


def _submit(cfg: DictConfig, name: str, script: str, dependency: str | None, overrides: list[str],
            log: Path) -> str | None:
    if cfg.cluster.dry_run:
        dep = f" --dependency={dependency}" if dependency else ""
        print(f"# {name}: dry run (cluster.dry_run=true), not submitted: sbatch --parsable{dep} <script>\n{script}")
        return None
    folder = slurm_dir(cfg.run.dir)
    folder.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)  # Slurm does not create it
    script_path = folder / f"{name}.sbatch"
    script_path.write_text(script)
    OmegaConf.save(cfg, folder / f"{name}.config.yaml", resolve=True)
    job_id = slurm.sbatch(script_path, dependency)
    stage = name
    record = {"stage": stage, "job_id": job_id, "dependency": dependency,
              "submitted": dt.datetime.now().isoformat(timespec="seconds"), "workdir": os.getcwd(),
              "script": str(script_path.absolute()), "log": str(log).replace("%A", job_id).replace("%j", job_id),
              "overrides": overrides}
    with open(folder / "jobs.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    after = f" after {dependency}" if dependency else ""
    print(f"{stage}: submitted job {job_id}{after}; log {record['log']}")
    return job_id


def latest_jobs(run_dir: str | Path) -> dict[str, dict]:
    """The last job submitted for each stage of a run, from <run dir>/slurm/jobs.jsonl."""
    path = slurm_dir(run_dir) / "jobs.jsonl"
    latest: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                latest[record["stage"]] = record
    return latest


def active_job(run_dir: str | Path, stage: str) -> str | None:
    """The stage's last job id if it is still pending or running (a re-submitted pipeline reuses it)."""
    record = latest_jobs(run_dir).get(stage)
    if record is None:
        return None
    info = slurm.job_info(record["job_id"])
    return record["job_id"] if info is not None and not info.done else None
