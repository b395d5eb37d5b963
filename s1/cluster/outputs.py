"""When is a stage finished? Its contract outputs exist, were written after its config.yaml, and that
config.yaml holds the same stage settings as now. A finished stage is skipped by `make pipeline`."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# The files each stage writes last (contracts between areas); "a|b": either one.
STAGE_OUTPUTS = {
    "curate": ["s1k.jsonl"],
    "train": ["final/config.json", "final/model.safetensors|final/model.safetensors.index.json"],
    "eval": ["metrics.json"],
}


def output_dir(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg[stage].output_dir)


def stage_finished(cfg: DictConfig, stage: str) -> tuple[bool, str]:
    """(finished?, why) for the stage with these settings."""
    out = output_dir(cfg, stage)
    found = []
    for spec in STAGE_OUTPUTS[stage]:
        hits = [out / name for name in spec.split("|") if (out / name).exists()]
        if not hits:
            return False, f"{out / spec.split('|')[0]} missing"
        found.append(hits[0])
    saved = out / "config.yaml"
    if saved.exists():
        if min(p.stat().st_mtime for p in found) < saved.stat().st_mtime:
            return False, f"{saved} is newer than the outputs (a later run did not finish)"
        saved_cfg = OmegaConf.load(saved)
        then = OmegaConf.to_container(saved_cfg[stage], resolve=True) if stage in saved_cfg else None
        now = OmegaConf.to_container(cfg[stage], resolve=True)
        if then is not None and then != now:
            changed = sorted(k for k in set(then) | set(now) if then.get(k) != now.get(k))
            return False, f"settings changed since it ran: {stage}.{{{', '.join(changed)}}}"
    return True, f"outputs in {out}"
