"""The pipeline's stages in one table: what each writes, what it reads from upstream, what it records, its checks.

The cluster layer (s1/cluster/) renders, submits and reports stages by reading this table only; it never
imports a stage's modules. To add a stage: write its package and its scripts/<name>.py entry point, then add
one `Stage` record below (docs/architecture.md walks through it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from omegaconf import DictConfig

from s1.errors import ConfigError
from s1.eval.checks import check_eval_config
from s1.train.batch import nproc_per_node
from s1.train.format import is_hub_id
from s1.train.launch import build_launch_command, check_train_config, render_command
from s1.train.memory import plan_memory

# Benchmarks named in a config that are no file (input checks skip them).
NAMED_BENCHMARKS = {"aime24", "math500", "synthetic", "gpqa", "gpqa_diamond"}


@dataclass(frozen=True)
class Upstream:
    """Where a stage's main input comes from when the stage before it runs in the same pipeline."""

    key: str                                          # config key holding the path, e.g. train.dataset
    producer: str                                     # the stage that writes it
    remote: Callable[[str], bool] = lambda value: False   # a value that is no local path (a hub id)


@dataclass(frozen=True)
class Stage:
    name: str
    outputs: tuple[str, ...]              # files the stage writes last, under <stage>.output_dir; "a|b": either one
    reads: tuple[str, ...]                # config it reads besides its own section (recorded in inputs.json)
    files: tuple[str, ...]                # config keys holding files it reads (fingerprinted in inputs.json)
    check: Callable[[DictConfig, tuple[str, ...]], list[str]]   # its own checks (cfg, stages before it) → notes
    input_paths: Callable[[DictConfig], list[tuple[str, str]]]  # (key, path) it reads that must exist first
    upstream: Upstream | None = None
    sharded: bool = False                 # cluster.shards=K splits its work into K shards and a merge
    engines: tuple[str, ...] = ()         # config keys of its engine blocks (GPUs per shard: their tensor parallel)
    launch: Callable[[DictConfig, str], str] | None = None   # per-node shell line (cfg, python); None: scripts/<name>.py
    record_files: Callable[[DictConfig], list[str]] = field(default=lambda cfg: [])  # more file keys, from the config


def benchmark_paths(prefix: str, benchmarks) -> list[tuple[str, str]]:
    return [(f"{prefix}.{i}", b) for i, b in enumerate(benchmarks)
            if b not in NAMED_BENCHMARKS and ("/" in b or b.endswith(".jsonl"))]


def curate_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    """Local source files and benchmark files for decontamination."""
    paths = [(f"curate.sources.{i}.path", src.path) for i, src in enumerate(cfg.curate.sources)
             if src.get("path") and src.kind in ("jsonl", "parquet", "arrow", "pool")]
    return paths + benchmark_paths("curate.decontam.benchmarks", cfg.curate.decontam.benchmarks)


def curate_source_files(cfg: DictConfig) -> list[str]:
    return [f"curate.sources.{i}.path" for i, s in enumerate(cfg.curate.sources) if s.get("path")]


def check_curate(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    return []   # its sources are read and validated when it starts (s1/curate/sources.py)


def train_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    return [("train.deepspeed", cfg.train.deepspeed)] if cfg.train.deepspeed else []


def check_train(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    check_train_config(cfg)  # global batch = micro x processes x accumulation, block <= context, paths
    return check_memory(cfg)


def check_memory(cfg: DictConfig) -> list[str]:
    """The training engineer's memory planner must say the plan fits the GPUs asked for."""
    if int(cfg.cluster.gpus_per_node) == 0:
        return ["memory plan: skipped (cluster.gpus_per_node=0, CPU job)"]
    plan = plan_memory(cfg)
    if not plan.fits:
        raise ConfigError("cluster.gpus_per_node", cfg.cluster.gpus_per_node,
                          f"the training plan needs {plan.per_gpu_gb:.0f} GiB per GPU, more than the "
                          f"{cfg.cluster.gpu_memory_gb:g} GiB there is: {'; or '.join(plan.suggestions)}\n{plan.table()}")
    return [f"memory plan: {plan.per_gpu_gb:.1f} of {cfg.cluster.gpu_memory_gb:g} GiB per GPU"]


def train_launch(cfg: DictConfig, python: str) -> str:
    """The per-node launch line on Slurm: torchrun running s1.train.sft on the resolved config that
    build_launch_command writes to ${train.output_dir}/config.yaml (the same command cluster=local runs)."""
    cmd = build_launch_command(cfg, nnodes=int(cfg.cluster.nodes), nproc_per_node=nproc_per_node(cfg),
                               node_rank="$SLURM_NODEID", master_addr="$MASTER_ADDR", master_port="$MASTER_PORT")
    if cmd and cmd[0] == sys.executable:  # cluster.python: the interpreter the job's setup lines provide
        cmd = [python, *cmd[1:]]
    return render_command(cmd)


def eval_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    return benchmark_paths("eval.benchmarks", cfg.eval.benchmarks)


def check_eval(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    try:  # backend, budgets, benchmarks; the model may be the train job's, not there yet
        check_eval_config(cfg)
    except ConfigError as e:
        if not (e.key == "eval.model_path" and "train" in upstream):
            raise
    return []


TABLE: dict[str, Stage] = {s.name: s for s in (
    Stage("curate", outputs=("s1k.jsonl",), reads=("model", "run.seed"), files=(), check=check_curate,
          input_paths=curate_paths, sharded=True, engines=("curate.difficulty.engine", "curate.traces.engine"),
          record_files=curate_source_files),
    Stage("train", outputs=("final/config.json", "final/model.safetensors|final/model.safetensors.index.json"),
          reads=("model", "run.seed"), files=("train.dataset",), check=check_train, input_paths=train_paths,
          upstream=Upstream("train.dataset", "curate", remote=is_hub_id),   # simplescaling/s1K-1.1 is no path
          launch=train_launch),
    Stage("eval", outputs=("metrics.json",), reads=("model", "run.seed"), files=("eval.model_path",),
          check=check_eval, input_paths=eval_paths, upstream=Upstream("eval.model_path", "train"), sharded=True,
          engines=("eval.engine",)),
)}
STAGES = tuple(TABLE)   # pipeline order: each reads the one before it


def stage(name: str) -> Stage:
    if name not in TABLE:
        raise ConfigError("stage", name, f"use one of {STAGES}")
    return TABLE[name]
