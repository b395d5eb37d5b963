"""make eval: accuracy with and without budget forcing, thinking-budget sweeps (the steps: s1/eval/stage.py).

  make eval ARGS="experiment=demo"                     # the demo model on 300 synthetic questions, CPU
  make eval ARGS="experiment=paper_s1 eval.model_path=simplescaling/s1-32B"   # AIME24, MATH500, GPQA Diamond; vLLM
  make eval ARGS="... eval.methods=[no_bf,bf,wait,extrapolation_strings,rejection_sampling,majority]"   # Tables 1/3/4
"""

from __future__ import annotations

import logging
import os

import hydra
from omegaconf import DictConfig

from s1 import shards
from s1.cluster import dispatch
from s1.cluster.render import IN_JOB_ENV
from s1.eval.checks import check_eval_config
from s1.eval.stage import evaluate, set_aside_stale_generations
from s1.runtime import prepare, run_stage


@hydra.main(config_path="../configs", config_name="eval", version_base=None)
def main(cfg: DictConfig) -> None:
    cfg = prepare(cfg, "eval")
    check_eval_config(cfg)                 # backend, budgets, model path: fail before loading anything
    shard = shards.begin(cfg, "eval")      # cluster.shard=i: this process does shard i's questions
    if shard is None and shards.shard_count(cfg) > 1 and not os.environ.get(IN_JOB_ENV):
        set_aside_stale_generations(cfg)   # before any shard writes (not in the merge: it would take theirs)
    if dispatch(cfg, "eval"):              # cluster=slurm: submitted; the job runs this same script
        return
    evaluate(cfg)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_stage(main)
