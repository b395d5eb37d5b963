"""Shards of a model stage (cluster.shards=K): which work a shard does, where it writes, how it reports.

The shard key is the question: curate's record id, eval's "<benchmark>/<question id>". Shard i takes the
questions with stable_hash(key) % K == i and carries each through every per-question model step of its stage
(reference answers and their grading, teacher grading, domain labels, teacher traces; every budget and Wait
count of an eval sweep, so shared sweeps keep their shared prefixes). It stops before the first step that needs
every question (curate's diversity sampling, eval's metrics). The merge is the unsharded stage: its caches read
every shard's file, so it finds the model work done and continues exactly as an unsharded run would.

Files, under the stage's output_dir:
  cache files           <name>.shard-<i>.jsonl next to <name>.jsonl (s1.cache)
  shards/shard-<i>/     the shard's own funnel and config (curate)
  shards/progress-<i>.json   its current step: keys total / done, for `make status`
  shards/done-<i>-of-<K>.json  written when shard i of K finished its share with these inputs
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from s1.cache import Shard, content_key, set_shard
from s1.run_inputs import stage_inputs
from s1.runtime import ConfigError, RunDir
from s1.stages import STAGES, TABLE

log = logging.getLogger("s1.cluster")
SHARDED_STAGES = tuple(s for s in STAGES if TABLE[s].sharded)   # train is one data-parallel job, not shards
SHARD_DIR = "shards"


def shard_count(cfg: DictConfig) -> int:
    k = int(cfg.cluster.get("shards") or 1)
    if k < 1:
        raise ConfigError("cluster.shards", k, "use 1 (no shards) or more")
    return k


def this_shard(cfg: DictConfig) -> Shard | None:
    """The shard this process is (cluster.shard set by the array task / local launcher), None for a whole run."""
    index = cfg.cluster.get("shard")
    if index is None:
        return None
    k = shard_count(cfg)
    if not 0 <= int(index) < k:
        raise ConfigError("cluster.shard", index, f"use 0 .. {k - 1} (cluster.shards={k}), or null for the whole stage")
    return Shard(int(index), k)


def begin(cfg: DictConfig, stage: str) -> Shard | None:
    """Called by the stage first: from here on every cache this process opens writes its shard's file."""
    shard = this_shard(cfg)
    set_shard(shard, progress_path(cfg[stage].output_dir, shard) if shard_count(cfg) > 1 else None)
    if shard_count(cfg) > 1 and shard is None:
        save_command(cfg, stage)
    if shard is not None:
        log.info("%s: shard %d of %d", stage, shard.index, shard.count)
    return shard


def save_command(cfg: DictConfig, stage: str, overrides: list[str] | None = None) -> Path:
    """<output_dir>/shards/command.json: the overrides the sharded stage ran with (what `make resume` reruns)."""
    from hydra.core.hydra_config import HydraConfig

    if overrides is None:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    path = shard_folder(cfg[stage].output_dir) / "command.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stage": stage, "overrides": overrides, "workdir": os.getcwd()}))
    return path


def owned(items: list, key, shard: Shard | None) -> list:
    """The items whose shard key hashes to this shard (all of them when unsharded)."""
    return items if shard is None else [x for x in items if shard.owns(key(x))]


def shard_folder(output_dir: str | Path) -> Path:
    return Path(output_dir) / SHARD_DIR


def progress_path(output_dir: str | Path, shard: Shard | None) -> Path:
    return shard_folder(output_dir) / f"progress-{shard.index if shard else 'merge'}.json"


def done_path(output_dir: str | Path, shard: Shard) -> Path:
    return shard_folder(output_dir) / f"done-{shard.index}-of-{shard.count}.json"


def inputs_key(cfg: DictConfig, stage: str) -> str:
    """What a finished shard's share depends on: the stage's inputs (config and files), not the cluster."""
    return content_key(json.dumps(stage_inputs(cfg, stage), sort_keys=True, default=str))


def mark_done(cfg: DictConfig, stage: str, shard: Shard, keys: int) -> Path:
    path = done_path(cfg[stage].output_dir, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"inputs": inputs_key(cfg, stage), "questions": keys, "finished": time.time()}))
    return path


def shard_finished(cfg: DictConfig, stage: str, shard: Shard) -> bool:
    path = done_path(cfg[stage].output_dir, shard)
    return path.exists() and json.loads(path.read_text()).get("inputs") == inputs_key(cfg, stage)


def shards_left(cfg: DictConfig, stage: str) -> list[int]:
    """Shards of cluster.shards=K that have not finished their share with today's inputs (from the files)."""
    k = shard_count(cfg)
    return [i for i in range(k) if not shard_finished(cfg, stage, Shard(i, k))]


@dataclass
class ShardRunDir(RunDir):
    """A shard's own folder for its reports; its caches are the stage's shared cache folder."""

    cache_root: Path = Path(".")

    def cache(self, name: str) -> Path:
        return RunDir(self.cache_root).cache(name)


def run_dir(cfg: DictConfig, output_dir: str | Path, shard: Shard | None) -> RunDir:
    if shard is None:
        return RunDir.create(cfg, output_dir)
    own = RunDir.create(cfg, shard_folder(output_dir) / f"shard-{shard.index}")
    return ShardRunDir(own.path, Path(output_dir))


def shard_overrides(overrides: list[str], index: int) -> list[str]:
    return [o for o in overrides if not o.lstrip("+~").startswith("cluster.shard=")] + [f"cluster.shard={index}"]


def run_local_shards(cfg: DictConfig, stage: str, overrides: list[str], script: Path,
                     indices: list[int] | None = None) -> None:
    """cluster=local: the shards as processes of this machine, cluster.local_parallel at a time; raises if one fails."""
    todo = list(range(shard_count(cfg)) if indices is None else indices)
    parallel = max(1, int(cfg.cluster.get("local_parallel") or 1))
    running: dict[int, subprocess.Popen] = {}
    failed = []
    env = os.environ | {"S1_SHARD_PARENT": str(os.getpid())}
    while todo or running:
        while todo and len(running) < parallel:
            i = todo.pop(0)
            log.info("%s: starting shard %d of %d here", stage, i, shard_count(cfg))
            running[i] = subprocess.Popen([sys.executable, str(script), *shard_overrides(overrides, i)], env=env)
        for i, proc in list(running.items()):
            if proc.poll() is not None:
                del running[i]
                if proc.returncode != 0:
                    failed.append((i, proc.returncode))
        time.sleep(0.2)
    if failed:
        raise ShardFailed(stage, failed)


class ShardFailed(RuntimeError):
    def __init__(self, stage: str, failed: list[tuple[int, int]]):
        self.failed = failed
        super().__init__(f"{stage}: shard(s) {', '.join(f'{i} (exit {rc})' for i, rc in failed)} failed; what they "
                         "finished is cached: `make resume RUN=<run dir>` runs only the work left")
