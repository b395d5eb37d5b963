"""The pipeline's stages in one table: what each writes, what it reads from upstream, what it records.

Plain data and config readers (no stage module is imported here), so every layer may read it: the stages
themselves (recording their inputs, s1/run_inputs.py), the checks before submission (s1/stage_checks.py: each
stage's own check and launch line) and the cluster layer (s1/cluster/), which renders, submits and reports
stages from these two modules only and never imports a stage's own modules. Adding a stage:
docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from omegaconf import DictConfig

from s1.errors import ConfigError

# Benchmarks named in a config that are no file (input checks skip them).
NAMED_BENCHMARKS = {"aime24", "aime25", "math500", "synthetic", "gpqa", "gpqa_diamond"}


@dataclass(frozen=True)
class Upstream:
    """Where a stage's main input comes from when the stage before it runs in the same pipeline."""

    key: str               # config key holding the path, e.g. train.dataset
    producer: str          # the stage that writes it
    hub_ok: bool = False   # a hub id is a valid value too (train.dataset=simplescaling/s1K-1.1): no path to check


@dataclass(frozen=True)
class Stage:
    name: str
    outputs: tuple[str, ...]              # files the stage writes last, under <stage>.output_dir; "a|b": either one
    reads: tuple[str, ...]                # config it reads besides its own section (recorded in inputs.json)
    files: tuple[str, ...]                # config keys holding files it reads (fingerprinted in inputs.json)
    input_paths: Callable[[DictConfig], list[tuple[str, str]]]  # (key, path) it reads that must exist first
    upstream: Upstream | None = None
    sharded: bool = False                 # cluster.shards=K splits its work into K shards and a merge
    engines: tuple[str, ...] = ()         # config keys of its engine blocks (GPUs per shard: their tensor parallel)
    launched: bool = False                # runs as a launch line on every node (stage_checks.LAUNCH), not scripts/
    record_files: Callable[[DictConfig], list[str]] = field(default=lambda cfg: [])  # more file keys, per config


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


def train_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    return [("train.deepspeed", cfg.train.deepspeed)] if cfg.train.deepspeed else []


def eval_paths(cfg: DictConfig) -> list[tuple[str, str]]:
    return benchmark_paths("eval.benchmarks", cfg.eval.benchmarks)


TABLE: dict[str, Stage] = {s.name: s for s in (
    Stage("curate", outputs=("s1k.jsonl",), reads=("model", "run.seed"), files=(), input_paths=curate_paths,
          sharded=True, engines=("curate.difficulty.engine", "curate.traces.engine"), record_files=curate_source_files),
    Stage("train", outputs=("final/config.json", "final/model.safetensors|final/model.safetensors.index.json"),
          reads=("model", "run.seed"), files=("train.dataset",), input_paths=train_paths,
          upstream=Upstream("train.dataset", "curate", hub_ok=True), launched=True),
    Stage("eval", outputs=("metrics.json",), reads=("model", "run.seed"), files=("eval.model_path",),
          input_paths=eval_paths, upstream=Upstream("eval.model_path", "train"), sharded=True,
          engines=("eval.engine",)),
)}
STAGES = tuple(TABLE)   # pipeline order: each reads the one before it


def stage(name: str) -> Stage:
    if name not in TABLE:
        raise ConfigError("stage", name, f"use one of {STAGES}")
    return TABLE[name]
