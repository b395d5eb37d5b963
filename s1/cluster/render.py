"""Render slurm/<stage>.sbatch from a resolved config. Every value is shell-quoted; only the user's own
setup lines and extra #SBATCH flags go in verbatim."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from s1.cluster.checks import stage_time
from s1.runtime import REPO_ROOT
from s1.shards import SHARDED_STAGES, shard_count, shard_overrides
from s1.stage_checks import LAUNCH
from s1.stages import stage as stage_spec

TEMPLATES = REPO_ROOT / "slurm"
IN_JOB_ENV = "S1_IN_SLURM_JOB"  # set by the templates: inside the job a stage runs instead of submitting


def render_template(text: str, values: dict[str, str], raw: tuple[str, ...] = ()) -> str:
    """Fill {{name}} placeholders: values are shlex-quoted unless named in `raw`; unknown or unused names fail."""
    used = set()

    def fill(m: re.Match) -> str:
        name = m.group(1)
        if name not in values:
            raise KeyError(f"template placeholder {{{{{name}}}}} has no value")
        used.add(name)
        return str(values[name]) if name in raw else shlex.quote(str(values[name]))

    out = re.sub(r"\{\{\s*(\w+)\s*\}\}", fill, text)
    if unused := set(values) - used:
        raise KeyError(f"values not in the template: {sorted(unused)}")
    return out


def job_name(cfg: DictConfig, stage: str) -> str:
    return "s1-" + stage + "-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(cfg.run.name))[:60]


def log_path(cfg: DictConfig, stage: str, job_id: str | None = None, array: bool = False) -> Path:
    """Slurm's stdout+stderr file for the stage; %j is the job id (an array's: %A_%a, job and task)."""
    name = f"{stage}-shard-{job_id or '%A'}_%a.out" if array else f"{stage}-{job_id or '%j'}.out"
    return Path(cfg.cluster.log_dir).absolute() / name


def python_path(cfg: DictConfig) -> str:
    """cluster.python; else `make gpu-env`'s venv (cluster.gpu_venv) when it exists; else the submitting interpreter."""
    if cfg.cluster.python:
        return cfg.cluster.python
    gpu_python = Path(cfg.cluster.gpu_venv) / "bin" / "python"
    return str(gpu_python.absolute()) if gpu_python.exists() else sys.executable


def stage_gpus(cfg: DictConfig, stage: str) -> int:
    """GPUs one shard needs: the tensor parallel size of the stage's engines (the largest), on a GPU cluster."""
    if int(cfg.cluster.gpus_per_node) == 0:
        return 0
    engines = [OmegaConf.select(cfg, key) for key in stage_spec(stage).engines]
    return max([int((e or {}).get("tensor_parallel_size") or 1) for e in engines] + [1])


def hub_env(cfg: DictConfig) -> list[str]:
    """The hub cache the submitting node filled (make prefetch) and, with run.offline=true, no hub in the job."""
    lines = [f"export HF_HOME={shlex.quote(os.environ['HF_HOME'])}  # the hub cache (make prefetch)"] \
        if os.environ.get("HF_HOME") else []
    if cfg.run.offline:
        lines.append("export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1  # run.offline=true: models and data from HF_HOME")
    return lines


def requeue_block(cfg: DictConfig) -> str:
    """Shell lines: run_stage runs the stage's command in the background so that the batch shell can take Slurm's
    warning signal (--signal=B:USR1@N, bash defers traps while a foreground child runs) and requeue the job; the
    stage resumes where it stopped (caches, checkpoints). Requeued jobs wait ~2 min before they may start again."""
    c = cfg.cluster
    lines = ['run_stage() {  # the command in the background; wait again when a signal only interrupted the wait',
             '  "$@" & local child=$! rc=0',
             '  while :; do wait "$child" && rc=0 || rc=$?; kill -0 "$child" 2>/dev/null || break; done',
             '  return "$rc"',
             '}']
    if int(c.requeue_signal_s) > 0:
        limit = int(c.max_restarts)
        lines += [f'# Slurm sends USR1 {int(c.requeue_signal_s)} s before the time limit (cluster.requeue_signal_s): requeue, '
                  f'at most {limit} times (cluster.max_restarts)',
                  'requeue() {',
                  f'  if (( ${{SLURM_RESTART_COUNT:-0}} < {limit} )); then',
                  '    echo "s1: time limit near; requeueing job $SLURM_JOB_ID (restart $(( ${SLURM_RESTART_COUNT:-0} + 1 )))"',
                  '    scontrol requeue "$SLURM_JOB_ID"',
                  f'  else echo "s1: {limit} restarts reached (cluster.max_restarts); not requeueing" >&2; fi',
                  '}',
                  'trap requeue USR1']
    return "\n".join(lines)


def sbatch_options(cfg: DictConfig, array: str | None = None, stage: str = "") -> str:
    """The optional #SBATCH lines: only what the config sets. A sharded stage (its array and its merge): one GPU set
    per job, the tensor parallel size of the stage's engines (the merge only loads a model for stragglers)."""
    c = cfg.cluster
    lines = [f"#SBATCH --{flag}={shlex.quote(str(c[key]))}" for flag, key in
             (("partition", "partition"), ("account", "account"), ("qos", "qos"), ("mem", "mem")) if c[key]]
    if array is not None:
        lines.append(f"#SBATCH --array={array}")
    if stage in SHARDED_STAGES and shard_count(cfg) > 1:
        if stage_gpus(cfg, stage):
            lines += ["# one GPU set per shard: the tensor parallel size of the stage's engines",
                      f"#SBATCH --gpus-per-node={stage_gpus(cfg, stage)}"]
    elif c.gpus_per_node > 0:
        lines.append(f"#SBATCH --gpus-per-node={int(c.gpus_per_node)}")
    if int(c.requeue_signal_s) > 0:   # to the batch shell only (B:), which requeues the job (requeue_block)
        lines.append(f"#SBATCH --signal=B:USR1@{int(c.requeue_signal_s)}")
    lines += [f"#SBATCH {flag}" for flag in c.extra_sbatch]
    return "\n".join(lines)


def job_script(cfg: DictConfig, stage: str, overrides: list[str], array: str | None = None) -> str:
    """The batch script for one stage: resources from cfg.cluster, the stage command with the user's overrides.
    `array` ("0-7%4", "1,5"): the stage's shards as one job array, task i running cluster.shard=i."""
    c = cfg.cluster
    values = {
        "job_name": job_name(cfg, stage) + ("-shards" if array else ""),
        "cpus_per_task": int(c.cpus_per_task),
        "time": stage_time(c, stage),
        "log": str(log_path(cfg, stage, array=array is not None)),
        "workdir": os.getcwd(),  # relative paths in the config mean the same thing in the job
        "sbatch_options": sbatch_options(cfg, array, stage),
        "setup": "\n".join([*hub_env(cfg), *c.setup]),
        "requeue": requeue_block(cfg),
    }
    raw = ("sbatch_options", "setup", "requeue")
    if stage_spec(stage).launched:   # train: torchrun on every node (slurm/train.sbatch)
        values |= {"nodes": int(c.nodes), "launch": LAUNCH[stage](cfg, python_path(cfg))}
    else:
        values |= {"python": python_path(cfg), "script": str(REPO_ROOT / "scripts" / f"{stage}.py"),
                   "overrides": " ".join(shlex.quote(o) for o in overrides)}
        if array is not None:  # the task's index picks its shard; the shell expands it, unquoted on purpose
            values["overrides"] = " ".join(shlex.quote(o) for o in shard_overrides(overrides, 0)[:-1]) \
                + ' cluster.shard="$SLURM_ARRAY_TASK_ID"'
        raw += ("overrides",)
    script = render_template((TEMPLATES / f"{stage}.sbatch").read_text(), values, raw)
    return re.sub(r"\n{3,}", "\n\n", script)  # no gap where an optional block is empty
