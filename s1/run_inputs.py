"""What a finished stage leaves in its run directory, and whether it is finished: its outputs, and inputs.json.

Each stage writes <output_dir>/inputs.json last, when it finishes: the config it read (its own section, the
model, the seed) and fingerprints of the files it read (curate's source files, train's s1K, eval's model).
A stage whose recorded inputs differ from today's is not finished: `make pipeline` runs it again (and every
stage after it), `make status` says what changed, and train/eval start over instead of reusing stale work.
What each stage writes and reads comes from the stage table (s1/stages.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from s1.stages import stage as stage_spec

INPUTS_FILE = "inputs.json"
HASH_MAX_BYTES = 256 * 2**20  # larger files (model shards) are fingerprinted by size + mtime, not read


def output_dir(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg[stage].output_dir)


def fingerprint(path: Path) -> str:
    """sha256 over a file or a folder's files (names, and content up to HASH_MAX_BYTES, else size + mtime)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if f != path else f.name).encode() + b"\0")
        st = f.stat()
        if st.st_size > HASH_MAX_BYTES:
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
            continue
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:16]


def stage_inputs(cfg: DictConfig, stage: str) -> dict[str, Any]:
    """What the stage reads now: config values (resolved) and fingerprints of local input files."""
    config = {stage: OmegaConf.to_container(cfg[stage], resolve=True)}
    config[stage].pop("output_dir", None)  # where the outputs go is not an input (a moved run stays finished)
    spec = stage_spec(stage)
    for key in spec.reads:
        node = OmegaConf.select(cfg, key)
        config[key] = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    keys = [*spec.files, *spec.record_files(cfg)]
    files = {}
    for key in keys:
        value = OmegaConf.select(cfg, key)
        if value and Path(str(value)).exists():
            files[key] = fingerprint(Path(str(value)))
    return {"config": config, "files": files}


def record_inputs(cfg: DictConfig, stage: str) -> Path:
    """Called by the stage when its outputs are written: the last file it writes."""
    path = output_dir(cfg, stage) / INPUTS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stage_inputs(cfg, stage), indent=1, sort_keys=True, default=str))
    tmp.replace(path)
    return path


def changed_inputs(cfg: DictConfig, stage: str) -> list[str] | None:
    """Keys whose value or file differs from what the finished stage recorded; None when nothing is recorded."""
    path = output_dir(cfg, stage) / INPUTS_FILE
    if not path.exists():
        return None
    then, now = json.loads(path.read_text()), json.loads(json.dumps(stage_inputs(cfg, stage), default=str))
    changed = []
    for section in sorted(set(then["config"]) | set(now["config"])):
        a, b = then["config"].get(section), now["config"].get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            changed.append(section)
    changed += [f"{k} (file)" for k in sorted(set(then["files"]) | set(now["files"]))
                if then["files"].get(k) != now["files"].get(k)]
    return changed


def stage_finished(cfg: DictConfig, stage: str) -> tuple[bool, str]:
    """(finished?, why) for the stage with these settings and these input files."""
    out = output_dir(cfg, stage)
    found = []
    for spec in stage_spec(stage).outputs:
        hits = [out / name for name in spec.split("|") if (out / name).exists()]
        if not hits:
            return False, f"{out / spec.split('|')[0]} missing"
        found.append(hits[0])
    record = out / INPUTS_FILE
    if not record.exists():
        return False, f"{record} missing (the stage did not finish, or ran before inputs were recorded)"
    saved = out / "config.yaml"
    if saved.exists() and saved.stat().st_mtime > record.stat().st_mtime:
        return False, f"{saved} is newer than {INPUTS_FILE} (a later run did not finish)"
    changed = changed_inputs(cfg, stage)
    if changed:
        return False, f"inputs changed since it ran: {', '.join(changed)}"
    return True, f"outputs in {out}"
