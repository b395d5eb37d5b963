"""Batch arithmetic: processes per node, world size, gradient accumulation for a fixed global batch.

Its own module so launch (the command), sft (the trainer) and memory (the planner) share it without importing
one another.
"""

from __future__ import annotations

from omegaconf import DictConfig

from s1.errors import ConfigError


def nproc_per_node(cfg: DictConfig) -> int:
    """Training processes per node: one per GPU, or train.nproc_per_node (CPU runs: 1 unless set)."""
    n = cfg.train.nproc_per_node or cfg.cluster.gpus_per_node or 1
    if n < 1:
        raise ConfigError("train.nproc_per_node", n, "use a positive number of processes per node")
    return n


def world_size(cfg: DictConfig) -> int:
    return cfg.cluster.nodes * nproc_per_node(cfg)


def gradient_accumulation(cfg: DictConfig) -> int:
    """Global batch = micro batch × world size × accumulation; the global batch stays fixed (paper: 16)."""
    t, world = cfg.train, world_size(cfg)
    per_step = t.micro_batch_size * world
    if t.micro_batch_size < 1 or t.global_batch_size % per_step:
        raise ConfigError(
            "train.global_batch_size", t.global_batch_size,
            f"must be a multiple of micro_batch_size ({t.micro_batch_size}) × processes ({world} = "
            f"{cfg.cluster.nodes} nodes × {nproc_per_node(cfg)} per node); change the GPU count, "
            f"train.micro_batch_size or train.global_batch_size")
    return t.global_batch_size // per_step
