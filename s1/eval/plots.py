"""The eval plots' shared matplotlib setup and axis styling (scaling.png, figure4.png, pareto*.png): one look."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display on clusters and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panels(n: int, width: float = 5.5, height: float = 4):
    """A figure with n side-by-side panels (at least one): (figure, list of axes)."""
    fig, axes = pyplot().subplots(1, max(1, n), figsize=(width * max(1, n), height), squeeze=False)
    return fig, list(axes[0])


def style(ax, title: str, xlabel: str, *, log_x: bool = False, legend_size: int = 7, legend_outside: bool = False):
    """Title, axis labels (accuracy in % on y), a light grid and the legend (outside on the right for many series)."""
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    if legend_outside:
        ax.legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    else:
        ax.legend(fontsize=legend_size)


def save(fig, path: Path, dpi: int = 120) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return Path(path)
