"""Run stages as Slurm jobs: `dispatch` for one stage (make curate|train|eval cluster=slurm),
s1.cluster.pipeline for the chain, s1.cluster.status for where a run stands."""

from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import s1.cluster.slurm as slurm
from s1.cluster.render import IN_JOB_ENV
from s1.cluster.status import PROCESS_FILE, print_status
from s1.cluster.submit import submit_stage
from s1.errors import ConfigError
from s1.runtime import REPO_ROOT
from s1.shards import SHARDED_STAGES, ShardFailed, run_local_shards, shard_count, shards_left


def dispatch(cfg: DictConfig, stage: str) -> bool:
    """Submit the stage when cluster.kind=slurm and we are not already inside its job; True means the caller returns.

    The job re-runs the same entry point with the same overrides; inside it the template sets S1_IN_SLURM_JOB,
    so there dispatch returns False and the stage does its work.
    """
    if cfg.cluster.kind != "slurm" or os.environ.get(IN_JOB_ENV):
        if cfg.cluster.get("shard") is not None:
            return False  # one shard of the stage: its progress file is what `make status` reads
        record_process(cfg, stage)  # the stage runs in this process: `make status` shows it running / failed
        if cfg.cluster.kind != "slurm":
            run_shards_here(cfg, stage)
        return False
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    try:  # the entry point checked the stage's own config before calling us: the cluster's checks remain
        job_id = submit_stage(cfg, stage, overrides, stage_checked=True)
    except ConfigError as e:  # one clear line, not Hydra's traceback
        print(f"{e}\nnothing was submitted", file=sys.stderr)
        sys.exit(2)
    except slurm.SlurmError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    if job_id and cfg.cluster.wait:
        infos = slurm.wait_for([job_id])
        print_status(cfg.run.dir)
        if infos[job_id] is None or infos[job_id].state != "COMPLETED":
            sys.exit(1)
    return True


def run_shards_here(cfg: DictConfig, stage: str) -> None:
    """cluster=local cluster.shards=K: the K shards as processes here first (those not finished), then the merge
    continues in this process."""
    if stage not in SHARDED_STAGES or shard_count(cfg) == 1:
        return
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    try:
        run_local_shards(cfg, stage, overrides, REPO_ROOT / "scripts" / f"{stage}.py", shards_left(cfg, stage))
    except ShardFailed as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)


def record_process(cfg: DictConfig, stage: str) -> Path:
    """<output_dir>/process.json: this process runs the stage (pid, host, start); `ended` is filled in at exit."""
    path = Path(cfg[stage].output_dir) / PROCESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "ended": None,
              "slurm_job": os.environ.get("SLURM_JOB_ID")}
    path.write_text(json.dumps(record))

    def ended() -> None:
        if path.exists() and json.loads(path.read_text()).get("pid") == record["pid"]:
            path.write_text(json.dumps(record | {"ended": time.time()}))

    atexit.register(ended)
    return path
