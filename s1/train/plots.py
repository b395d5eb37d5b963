"""The loss curve of a run, from its train_log.jsonl."""

from __future__ import annotations

import json
from pathlib import Path


def plot_loss(log_path: Path, png_path: Path) -> Path | None:
    """loss (and lr on a second axis) against optimizer step; None when nothing was logged."""
    if not Path(log_path).exists():
        return None
    rows = [json.loads(line) for line in Path(log_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="train loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    lr = [(r["step"], r["lr"]) for r in rows if r.get("lr") is not None]
    if lr:
        ax2 = ax.twinx()
        ax2.plot(*zip(*lr), color="gray", alpha=0.5, label="learning rate")
        ax2.set_ylabel("learning rate")
    ax.set_title("SFT loss")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path
