"""Checks before anything is submitted: each failure is a ConfigError naming the key, the value and the fix."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from s1.cluster.slurm import run_slurm
from s1.errors import ConfigError
from s1.stage_checks import CHECKS, is_remote
from s1.stages import stage as stage_spec


def parse_slurm_time(value: str) -> int:
    """Seconds in a Slurm time limit: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; UNLIMITED/INFINITE is 0 (no limit)."""
    v = str(value).strip()
    if v.upper() in ("UNLIMITED", "INFINITE"):
        return 0
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", v)
    if not m:
        raise ValueError(v)
    days, a, b, c = m.groups()
    if days is not None:  # D-H[:M[:S]]
        parts = [int(days) * 24 + int(a), int(b or 0), int(c or 0)]
    elif c is not None:   # H:M:S
        parts = [int(a), int(b), int(c)]
    elif b is not None:   # M:S
        parts = [0, int(a), int(b)]
    else:                 # M
        parts = [0, int(a), 0]
    if parts[1] >= 60 or parts[2] >= 60:
        raise ValueError(v)
    seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    if seconds == 0:
        raise ValueError(v)
    return seconds


def stage_time(cluster: DictConfig, stage: str) -> str:
    return str(cluster.stage_time[stage] or cluster.time)


def check_submission(cfg: DictConfig, stage: str, *, upstream: tuple[str, ...] = (), stage_checked: bool = False
                     ) -> list[str]:
    """Everything that can be known before sbatch. `upstream`: stages submitted before this one in the same chain;
    `stage_checked`: the entry point already ran the stage's own checks (each config is checked once)."""
    c = cfg.cluster
    notes = []
    key = f"cluster.stage_time.{stage}" if c.stage_time[stage] else "cluster.time"
    for k, value in (("cluster.time", c.time), (key, stage_time(c, stage))):   # cluster.time even where unused
        try:
            parse_slurm_time(value)
        except ValueError:
            raise ConfigError(k, value, "use a Slurm time limit: MM, HH:MM:SS or D-HH:MM:SS "
                              "(e.g. 04:00:00 or 1-12:00:00)") from None
    if c.preflight not in ("fail", "warn", "off"):
        raise ConfigError("cluster.preflight", c.preflight, "use fail (refuse to submit), warn (submit anyway) or off")
    if int(c.requeue_signal_s) < 0:
        raise ConfigError("cluster.requeue_signal_s", c.requeue_signal_s, "use seconds before the limit, or 0 (off)")
    for name in ("nodes", "cpus_per_task"):
        if int(c[name]) < 1:
            raise ConfigError(f"cluster.{name}", c[name], "use 1 or more")
    if int(c.gpus_per_node) < 0:
        raise ConfigError("cluster.gpus_per_node", c.gpus_per_node, "use 0 (CPU only) or more")
    for name in ("partition", "account", "qos", "mem"):
        if c[name] is not None and not re.fullmatch(r"[A-Za-z0-9_.,:+\-]+", str(c[name])):
            raise ConfigError(f"cluster.{name}", c[name], "use a plain Slurm name (letters, digits, _ . , : + -)")
    for i, flag in enumerate(c.extra_sbatch):
        if "\n" in flag or not str(flag).startswith("-"):
            raise ConfigError(f"cluster.extra_sbatch.{i}", flag, "give one sbatch flag per item, e.g. --exclusive")
    for i, line in enumerate(c.setup):
        if "\n" in line:
            raise ConfigError(f"cluster.setup.{i}", line, "give one shell line per item")
    log_dir = Path(c.log_dir).absolute()
    if "%" in str(log_dir) or "\n" in str(log_dir):
        raise ConfigError("cluster.log_dir", c.log_dir, "use a path without '%' or newlines (Slurm reads % as a pattern)")
    if c.python is not None and "/" in c.python and not Path(c.python).exists():
        raise ConfigError("cluster.python", c.python, "no such interpreter; give an existing path, or null for this venv")
    check_inputs(cfg, stage, upstream)
    if not stage_checked:
        notes += CHECKS[stage](cfg, upstream)   # train: batch, paths, memory plan; eval: its settings
    if not c.dry_run:  # the config first (it is what the user edits), then whether Slurm is here
        check_slurm_here(cfg)
    return notes


def check_slurm_here(cfg: DictConfig) -> None:
    """sbatch on PATH, a controller that answers, the partition known to it."""
    c = cfg.cluster
    if shutil.which("sbatch") is None:
        raise ConfigError("cluster.kind", c.kind, "sbatch is not on PATH: submit from a Slurm login node, start the "
                          "local test cluster (make slurm-up: sudo bash slurm/local/start.sh), or run here with cluster=local")
    if c.partition:
        check_partition(c.partition)


def check_inputs(cfg: DictConfig, stage: str, upstream: tuple[str, ...]) -> None:
    """Input paths exist now, or are the output of a stage that runs before this one in the same chain."""
    spec = stage_spec(stage)
    paths = spec.input_paths(cfg)
    if spec.upstream is not None:
        key, producer = spec.upstream.key, spec.upstream.producer
        value = str(OmegaConf.select(cfg, key))
        if producer not in upstream:
            if not is_remote(spec.upstream, value):  # a hub id (simplescaling/s1K-1.1) is no path
                paths.append((key, value))
        elif not _is_under(value, cfg[producer].output_dir):
            raise ConfigError(key, value, f"the {producer} job of this pipeline writes under "
                              f"{cfg[producer].output_dir}; point {key} there, or run {stage} on its own")
    for key, value in paths:
        if not Path(value).exists():
            raise ConfigError(key, value, f"no such file or folder ({Path(value).absolute()}); create it first, fix "
                              "the path, or submit the stage that produces it with `make pipeline`")


def _is_under(path: str, folder: str) -> bool:
    return Path(path).absolute().is_relative_to(Path(folder).absolute())


def check_partition(partition: str) -> None:
    if shutil.which("scontrol") is None:
        return
    ping = run_slurm(["scontrol", "ping"])
    if "UP" not in ping.stdout:  # installed but no controller answers: not a partition problem
        raise ConfigError("cluster.kind", "slurm", "the Slurm controller does not answer (scontrol ping: "
                          f"{(ping.stdout or ping.stderr).strip()[:120]}); start it (on this machine: "
                          "make slurm-up, i.e. sudo bash slurm/local/start.sh) or run here with cluster=local")
    proc = run_slurm(["scontrol", "show", "partition", partition])
    if proc.returncode != 0:
        known = run_slurm(["sinfo", "-h", "-o", "%R"]).stdout.split()
        raise ConfigError("cluster.partition", partition,
                          f"no such partition on this cluster; use one of {sorted(set(known))} (sinfo lists them)")
