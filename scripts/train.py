"""make train: supervised fine-tuning on s1K (the paper, arXiv:2501.19393; the release's train/sft.py).

  make train ARGS="experiment=paper_s1"                 # the paper: 32B, 5 epochs, ZeRO-3, 16 GPUs
  make train ARGS="experiment=paper_s1 train.plan_only=true"   # the per-GPU memory plan, nothing runs
  make train ARGS="experiment=demo"                     # tiny model on CPU, minutes
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from s1.cluster import dispatch
from s1.runtime import ConfigError, RunDir, prepare, run_stage
from s1.train.fit import fit_config
from s1.train.launch import check_train_config, describe, launch_local
from s1.train.memory import GPU_MARGIN, gpu_limit, plan_memory

log = logging.getLogger("s1")


@hydra.main(config_path="../configs", config_name="train", version_base=None)
def main(cfg: DictConfig) -> None:
    cfg = prepare(cfg, "train")
    if cfg.train.fit == "auto":              # full ZeRO-3 → + offload → LoRA → QLoRA: the first that fits the rig
        cfg, table = fit_config(cfg)
        print(table)
    check_train_config(cfg)                  # global batch = micro × GPUs × accumulation, paths, block ≤ context
    plan = plan_memory(cfg)                  # per-GPU weights, grads, Adam, activations at the block size
    if cfg.train.plan_only:
        print(plan.table())
        return
    if not plan.fits:                        # refuse an OOM plan before launching or submitting
        print(plan.table(), file=sys.stderr)
        raise ConfigError("cluster.gpus_per_node", cfg.cluster.gpus_per_node,
                          f"the plan needs {plan.per_gpu_gib:.0f} GiB per GPU, more than the "
                          f"{gpu_limit(cfg.cluster.gpu_memory_gib):.1f} GiB it may use ({cfg.cluster.gpu_memory_gib:g} "
                          f"less the {GPU_MARGIN:.0%} margin): {'; or '.join(plan.suggestions)}")
    if dispatch(cfg, "train"):               # cluster=slurm: submitted; the job runs the same launch
        return
    RunDir.create(cfg, cfg.train.output_dir)
    log.info("train: %s, %s", cfg.model.name_or_path, describe(cfg))
    launch_local(cfg)                        # SFT (TRL, ZeRO-3), resume from the last checkpoint, final/ in HF format


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_stage(main)
