"""Each stage's own checks before submission, and the launch line of a stage that runs on every node.

The one module between the stage table (s1/stages.py) and the stages' code: the cluster layer calls these by
stage name and so never imports train/ or eval/ itself. A stage's check(cfg, upstream) raises ConfigError on a
bad value and returns notes to print; `upstream` names the stages submitted before it in the same chain.
"""

from __future__ import annotations

import sys
from typing import Callable

from omegaconf import DictConfig

from s1.errors import ConfigError
from s1.eval.checks import check_eval_config
from s1.stages import Upstream
from s1.train.batch import nproc_per_node
from s1.train.format import is_hub_id
from s1.train.launch import build_launch_command, check_train_config, render_command
from s1.train.memory import GPU_MARGIN, gpu_limit, plan_memory


def check_curate(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    return []   # its sources are read and validated when it starts (s1/curate/sources.py)


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
                          f"the training plan needs {plan.per_gpu_gib:.0f} GiB per GPU, more than the "
                          f"{gpu_limit(cfg.cluster.gpu_memory_gib):.1f} GiB it may use ({cfg.cluster.gpu_memory_gib:g} "
                          f"less the {GPU_MARGIN:.0%} margin): {'; or '.join(plan.suggestions)}\n{plan.table()}")
    return [f"memory plan: {plan.per_gpu_gib:.1f} of {cfg.cluster.gpu_memory_gib:g} GiB per GPU"]


def check_eval(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    try:  # backend, budgets, benchmarks; the model may be the train job's, not there yet
        check_eval_config(cfg)
    except ConfigError as e:
        if not (e.key == "eval.model_path" and "train" in upstream):
            raise
    return []


def train_launch(cfg: DictConfig, python: str) -> str:
    """The per-node launch line on Slurm: torchrun running s1.train.sft on the resolved config that
    build_launch_command writes to ${train.output_dir}/config.yaml (the same command cluster=local runs)."""
    cmd = build_launch_command(cfg, nnodes=int(cfg.cluster.nodes), nproc_per_node=nproc_per_node(cfg),
                               node_rank="$SLURM_NODEID", master_addr="$MASTER_ADDR", master_port="$MASTER_PORT")
    if cmd and cmd[0] == sys.executable:  # cluster.python: the interpreter the job's setup lines provide
        cmd = [python, *cmd[1:]]
    return render_command(cmd)


def is_remote(upstream: Upstream, value: str) -> bool:
    """The upstream value names no local path (a hub id where the stage accepts one)."""
    return upstream.hub_ok and is_hub_id(value)


CHECKS: dict[str, Callable[[DictConfig, tuple[str, ...]], list[str]]] = {
    "curate": check_curate, "train": check_train, "eval": check_eval}
LAUNCH: dict[str, Callable[[DictConfig, str], str]] = {"train": train_launch}   # stages with Stage.launched
