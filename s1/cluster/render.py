"""Render slurm/<stage>.sbatch from a resolved config. Every value is shell-quoted; only the user's own
setup lines and extra #SBATCH flags go in verbatim."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from omegaconf import DictConfig

from s1.cluster.checks import stage_time
from s1.runtime import REPO_ROOT

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


def log_path(cfg: DictConfig, stage: str, job_id: str | None = None) -> Path:
    """Slurm's stdout+stderr file for the stage; %j is the job id."""
    return Path(cfg.cluster.log_dir).absolute() / f"{stage}-{job_id or '%j'}.out"


def python_path(cfg: DictConfig) -> str:
    return cfg.cluster.python or sys.executable


def sbatch_options(cfg: DictConfig) -> str:
    """The optional #SBATCH lines: only what the config sets."""
    c = cfg.cluster
    lines = [f"#SBATCH --{flag}={shlex.quote(str(c[key]))}" for flag, key in
             (("partition", "partition"), ("account", "account"), ("qos", "qos"), ("mem", "mem")) if c[key]]
    if c.gpus_per_node > 0:
        lines.append(f"#SBATCH --gpus-per-node={int(c.gpus_per_node)}")
    lines += [f"#SBATCH {flag}" for flag in c.extra_sbatch]
    return "\n".join(lines)


def train_launch(cfg: DictConfig) -> str:
    """The per-node launch line: torchrun running s1.train.sft on the resolved config that
    build_launch_command writes to ${train.output_dir}/config.yaml (the same command cluster=local runs)."""
    from s1.train.launch import build_launch_command, nproc_per_node, render_command

    cmd = build_launch_command(cfg, nnodes=int(cfg.cluster.nodes), nproc_per_node=nproc_per_node(cfg),
                               node_rank="$SLURM_NODEID", master_addr="$MASTER_ADDR", master_port="$MASTER_PORT")
    if cmd and cmd[0] == sys.executable:  # cluster.python: the interpreter the job's setup lines provide
        cmd = [python_path(cfg), *cmd[1:]]
    return render_command(cmd)


def job_script(cfg: DictConfig, stage: str, overrides: list[str]) -> str:
    """The batch script for one stage: resources from cfg.cluster, the stage command with the user's overrides."""
    c = cfg.cluster
    values = {
        "job_name": job_name(cfg, stage),
        "cpus_per_task": int(c.cpus_per_task),
        "time": stage_time(c, stage),
        "log": str(log_path(cfg, stage)),
        "workdir": os.getcwd(),  # relative paths in the config mean the same thing in the job
        "sbatch_options": sbatch_options(cfg),
        "setup": "\n".join(c.setup),
    }
    raw = ("sbatch_options", "setup")
    if stage == "train":
        values |= {"nodes": int(c.nodes), "launch": train_launch(cfg)}
    else:
        values |= {"python": python_path(cfg), "script": str(REPO_ROOT / "scripts" / f"{stage}.py"),
                   "overrides": " ".join(shlex.quote(o) for o in overrides)}
        raw += ("overrides",)
    script = render_template((TEMPLATES / f"{stage}.sbatch").read_text(), values, raw)
    return re.sub(r"\n{3,}", "\n\n", script)  # no gap where an optional block is empty
