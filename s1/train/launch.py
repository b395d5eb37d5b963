"""How training starts: config checks, and the torchrun command Slurm and `cluster=local` share (batch arithmetic: batch.py).

One command line serves every case: `torchrun --nnodes N --nproc_per_node G --node_rank R
--master_addr A --master_port P -m s1.train.sft <output_dir>/config.yaml`. On Slurm, each node runs it
once (srun --ntasks-per-node=1) with R=$SLURM_NODEID and A=the first node; locally it runs with R=0,
A=127.0.0.1. Every process then reads the same resolved config.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from s1.runtime import ConfigError, RunDir
from s1.train.batch import gradient_accumulation, nproc_per_node, world_size  # noqa: F401 (re-exported)
from s1.train.format import check_dataset
from s1.train.hardware import GPU_RIG, check_switches, detect

log = logging.getLogger("s1")
WANDB_MODES = ("offline", "online", "off")
# glibc malloc for CPU training: tensors of 256 KiB or more get their own mapping, handed back when freed, and two
# arenas per process; glibc's defaults kept freed gradient and gather buffers resident: a 2-process ZeRO-3 run of
# the 0.5B peaked at 11.5+ GiB per process (OOM-killed on 24 GiB) with them, 9.7 GiB with these (README, Rehearsal).
CPU_MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "262144", "MALLOC_TRIM_THRESHOLD_": "262144"}


def check_train_config(cfg: DictConfig) -> None:
    """Every check that needs no model and no data: fails before anything is launched or submitted."""
    t = cfg.train
    gradient_accumulation(cfg)
    if t.block_size > cfg.model.max_context:
        raise ConfigError("train.block_size", t.block_size,
                          f"longer than the model's context ({cfg.model.max_context} tokens, model.max_context); "
                          "use a block size at most that long")
    if t.deepspeed and t.fsdp:
        raise ConfigError("train.fsdp", t.fsdp, "pick one of DeepSpeed and FSDP: set train.deepspeed=null or train.fsdp=null")
    for key in ("deepspeed", "fsdp"):
        path = t[key]
        if path and not Path(path).is_file():
            raise ConfigError(f"train.{key}", path, "no such file; the repo ships configs/deepspeed/zero3.json, "
                              "zero3_offload.json and fsdp.json")
    if t.fsdp and cfg.cluster.kind == "local" and not cfg.cluster.gpus_per_node:
        raise ConfigError("train.fsdp", t.fsdp, "FSDP needs GPUs (no CPU path through accelerate); on CPU use "
                          "train.deepspeed=configs/deepspeed/zero3.json")
    if cfg.cluster.kind == "local" and cfg.cluster.nodes != 1:
        raise ConfigError("cluster.nodes", cfg.cluster.nodes, "cluster=local runs on this machine: use 1, or cluster=slurm")
    if t.save_steps < 0:
        raise ConfigError("train.save_steps", t.save_steps, "use a checkpoint every N steps (N > 0), or 0 for none")
    if t.wandb_mode not in WANDB_MODES:
        raise ConfigError("train.wandb_mode", t.wandb_mode, f"use one of {WANDB_MODES}")
    if t.wandb_mode == "online" and not os.environ.get("WANDB_API_KEY"):
        raise ConfigError("train.wandb_mode", "online", "export WANDB_API_KEY first, or use train.wandb_mode=offline")
    if t.resume not in ("auto", "never") and not Path(t.resume).is_dir():
        raise ConfigError("train.resume", t.resume, "use auto, never, or an existing checkpoint folder")

    # this machine's hardware when it trains here; a plan, or a Slurm job (its node checks again), is for GPUs
    here = cfg.cluster.kind == "local" and not t.plan_only
    check_switches(cfg, detect(probe_4bit=t.peft == "qlora") if here else GPU_RIG)
    if here:  # a plan needs no data
        check_dataset(t.dataset)  # a jsonl / parquet / save_to_disk copy, or a hub id


def config_path(cfg: DictConfig) -> Path:
    return Path(cfg.train.output_dir).absolute() / "config.yaml"


def build_launch_command(cfg: DictConfig, *, nnodes: int, nproc_per_node: int, node_rank: str | int = "$SLURM_NODEID",
                         master_addr: str = "$MASTER_ADDR", master_port: int | str = 29500) -> list[str]:
    """The torchrun command every node runs; writes the resolved config it points to.

    `$SLURM_NODEID`-style arguments are left for the shell of each node to expand: join with `render_command`.
    """
    RunDir.create(cfg, config_path(cfg).parent)
    return [
        sys.executable, "-m", "torch.distributed.run",
        f"--nnodes={nnodes}", f"--nproc_per_node={nproc_per_node}", f"--node_rank={node_rank}",
        f"--master_addr={master_addr}", f"--master_port={master_port}",
        "-m", "s1.train.sft", str(config_path(cfg)),
    ]


# Shell variables a launch command may hold, expanded by the shell of each node (per task on Slurm); every
# other `$` is data.
TASK_VARS = ("$SLURM_NODEID", "$MASTER_ADDR", "$MASTER_PORT")


def quote_keep_vars(arg: str) -> str:
    """Shell-quote one argument but leave $SLURM_NODEID / $MASTER_ADDR / $MASTER_PORT expandable (the one
    quoting rule for launch lines, local and Slurm)."""
    parts = re.split("(" + "|".join(re.escape(v) for v in TASK_VARS) + ")", str(arg))
    return "".join(f'"{p}"' if p in TASK_VARS else shlex.quote(p) for p in parts if p) or "''"


def render_command(cmd: list[str]) -> str:
    """One shell line: every argument quoted, the TASK_VARS in it left for the node's shell to expand."""
    return " ".join(quote_keep_vars(a) for a in cmd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def needs_launcher(cfg: DictConfig) -> bool:
    """One plain process trains in-process; several processes, DeepSpeed or FSDP go through torchrun."""
    return world_size(cfg) > 1 or bool(cfg.train.deepspeed) or bool(cfg.train.fsdp)


def launch_local(cfg: DictConfig) -> None:
    """cluster=local: the same torchrun command as on Slurm, one node, rendezvous on 127.0.0.1."""
    if not needs_launcher(cfg):
        from s1.train.sft import train

        train(cfg)
        return
    cmd = build_launch_command(cfg, nnodes=1, nproc_per_node=nproc_per_node(cfg), node_rank=0,
                               master_addr="127.0.0.1", master_port=free_port())
    log.info("launching: %s", render_command(cmd))
    rc = subprocess.run(cmd, env=launch_env(nproc_per_node(cfg)), check=False).returncode
    if rc != 0:
        raise SystemExit(f"training processes failed (exit {rc}); re-run the same command to resume from the "
                         f"last checkpoint in {Path(cfg.train.output_dir) / 'checkpoints'}")


def launch_env(nproc: int) -> dict[str, str]:
    """DeepSpeed on a machine without GPUs needs its CPU accelerator (gloo); CPU threads split among processes."""
    env = dict(os.environ)
    import torch

    if not torch.cuda.is_available():
        env.setdefault("DS_ACCELERATOR", "cpu")
        for key, value in CPU_MALLOC_ENV.items():
            env.setdefault(key, value)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def describe(cfg: DictConfig) -> str:
    """One line: processes, micro batch, accumulation, global batch."""
    return json.dumps({"nodes": cfg.cluster.nodes, "nproc_per_node": nproc_per_node(cfg),
                       "micro_batch_size": cfg.train.micro_batch_size,
                       "gradient_accumulation": gradient_accumulation(cfg),
                       "global_batch_size": cfg.train.global_batch_size})
