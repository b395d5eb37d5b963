"""What every stage entry point does first: check overrides, resolve + validate the config, open its run dir.

Errors here name the key, the bad value and the fix, and happen before any
work (or any Slurm submission).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, ValidationError

from s1.config import S1Config
from s1.errors import ConfigError  # re-exported: `from s1.runtime import ConfigError` keeps working
from s1.infer.engine_settings import engine_args
from s1.stages import STAGES  # the stage table's names, in pipeline order
from s1.tiny_model import SIZES, ensure_tiny_model

log = logging.getLogger("s1")
REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = str(REPO_ROOT / "configs")


def _schema_keys(node: Any, prefix: str = "") -> list[str]:
    keys = []
    for k in node.keys() if isinstance(node, DictConfig) else []:
        full = f"{prefix}{k}"
        keys.append(full)
        child = node._get_node(k)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            keys += _schema_keys(child, full + ".")
    return keys


def check_overrides(argv: list[str]) -> None:
    """Fail fast on overrides naming a key the schema lacks (with the closest key) or a value of the wrong type.

    Hydra would also refuse them, with a message that names neither a fix nor the near miss.
    """
    schema = OmegaConf.structured(S1Config)
    known = _schema_keys(schema)
    groups = {"model", "cluster", "experiment"}
    for arg in argv:
        if arg.startswith(("-", "+", "~", "hydra.", "hydra/")) or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        if key in groups or key.split(".")[0] == "extra" or key.startswith(("curate.sources", "model.")):
            continue  # group choices, free-form dicts, list items, model keys (filled by the group)
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}=...?" if close else "see s1/config.py for the keys"
            raise ConfigError(key, value, f"no such key; {hint} (add a new key with +{key}=... only if intended)")
        try:
            OmegaConf.merge(schema, OmegaConf.from_dotlist([arg]))
        except ValidationError as e:
            expected = str(e).split("\n")[0]
            raise ConfigError(key, value, f"wrong type ({expected}); give a value of the schema's type") from None


def prepare(cfg: DictConfig, stage: str) -> DictConfig:
    """Resolve interpolations, validate shared keys, go offline if asked, build the tiny model if needed."""
    if stage not in STAGES:
        raise ConfigError("stage", stage, f"use one of {STAGES}")
    OmegaConf.resolve(cfg)
    if cfg.run.offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(cfg.paths.cache_dir).absolute() / "torch_extensions"))
    random.seed(cfg.run.seed)
    if cfg.cluster.kind not in ("local", "slurm"):
        raise ConfigError("cluster.kind", cfg.cluster.kind, "use local or slurm (cluster=local | cluster=slurm)")
    prepare_model(cfg)
    check_engines(cfg)
    return cfg


def check_engines(cfg: DictConfig) -> None:
    """Every engine settings block is valid before any model loads (see s1/infer/engine_settings.py)."""
    for key, backend, engine in (("curate.difficulty.engine", cfg.curate.difficulty.backend, cfg.curate.difficulty.engine),
                                 ("curate.traces.engine", cfg.curate.traces.serve_backend, cfg.curate.traces.engine),
                                 ("eval.engine", cfg.eval.backend, cfg.eval.engine)):
        engine_args(backend, engine, cfg.model, key=key)


def prepare_model(cfg: DictConfig) -> None:
    """Build the offline tiny model when the config asks for one; refuse unknown local paths early."""
    m = cfg.model
    if m.build_tiny:
        if m.build_tiny not in SIZES:
            raise ConfigError("model.build_tiny", m.build_tiny, f"use one of {sorted(SIZES)} or null")
        ensure_tiny_model(m.name_or_path, size=m.build_tiny, seed=0)
    elif looks_local(m.name_or_path) and not Path(m.name_or_path).exists():
        fix = "no such folder; give a hub name or an existing model folder"
        if Path(m.name_or_path).name == "qwen2.5-0.5b-local":
            fix = "the real Qwen2.5 0.5B is not built yet: run `make real-model` (scripts/fetch_real_model.py)"
        raise ConfigError("model.name_or_path", m.name_or_path, fix)
    if m.trust_remote_code:
        log.warning("trust_remote_code is ON for model %s: its repository code will run", m.name_or_path)


def looks_local(name: str) -> bool:
    """A model/dataset name that must be a folder here, not a hub id: starts with . / ~, exists, or is not of the
    hub's `name` / `owner/name` form (one slash at most; runs/… and .cache/… are ours). The one rule for train, curate and eval."""
    name = str(name)
    return (name.startswith((".", "/", "~")) or Path(name).exists() or name.count("/") > 1 or "\\" in name
            or Path(name).parts[:1] in (("runs",), (".cache",)))


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")   # owner/name, e.g. simplescaling/s1K-1.1


def is_hub_id(name: str) -> bool:
    """A hub id in owner/name form that looks_local does not claim (no such path here, not runs/ or .cache/)."""
    return bool(HUB_ID.match(str(name))) and not looks_local(name)


@dataclass
class RunDir:
    """A stage's output folder: resolved config.yaml next to the outputs, caches in cache/."""

    path: Path

    @classmethod
    def create(cls, cfg: DictConfig, path: str | Path) -> "RunDir":
        run = cls(Path(path))
        run.path.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run.path / "config.yaml", resolve=True)
        return run

    def cache(self, name: str) -> Path:
        p = self.path / "cache" / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        p = self.path / name
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, default=str))
        tmp.replace(p)
        return p


def run_stage(main, argv: list[str] | None = None) -> None:
    """Entry-point guard: override checks first, then Hydra; config errors exit 2 with one clear line."""
    argv = sys.argv[1:] if argv is None else argv
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's exit(1) + trimmed traceback
    try:
        check_overrides(argv)
        main()
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        sys.exit(2)
