"""make curate: s1K out of a question pool (paper §2; the steps: s1/curate/pipeline.py).

  make curate ARGS="experiment=demo"        # 4,000 synthetic records, untrained demo model as reference, ~1 min
  make curate ARGS="experiment=real_pool"   # the 5 real pools in ../shared/data/pool, offline
  make curate ARGS="experiment=paper_s1"    # the 59K hub pool, Qwen2.5-7B/32B references on vLLM, Slurm
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from s1 import shards
from s1.cluster import dispatch
from s1.curate.pipeline import run_stage_here
from s1.runtime import prepare, run_stage


@hydra.main(config_path="../configs", config_name="curate", version_base=None)
def main(cfg: DictConfig) -> None:
    cfg = prepare(cfg, "curate")
    shard = shards.begin(cfg, "curate")    # cluster.shard=i: this process does shard i's questions
    if dispatch(cfg, "curate"):            # cluster=slurm: submitted; the job runs this same script
        return
    run_stage_here(cfg, shard)


if __name__ == "__main__":
    run_stage(main)
