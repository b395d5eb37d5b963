"""Accuracy against average generated tokens: the Pareto frontier over every method's points, and its chart.

A point is (label, tokens, accuracy): tokens = average generated tokens per question (parallel methods: k ×
tokens, peeks included), accuracy in percent. A point is on the frontier when no other point has at most its
tokens and more accuracy, or fewer tokens and at least its accuracy.
"""

from __future__ import annotations

from pathlib import Path

Point = tuple[str, float, float]   # (label, average generated tokens per question, accuracy %)


def frontier(points: list[Point]) -> list[Point]:
    """The non-dominated points, by increasing tokens (ties in tokens: only the most accurate; exact duplicates:
    the first)."""
    out: list[Point] = []
    best = float("-inf")
    for p in sorted(points, key=lambda p: (p[1], -p[2])):
        if p[2] > best:
            out.append(p)
            best = p[2]
    return out


def chart_paths(out_dir: Path, benchmarks: list[str]) -> dict[str, Path]:
    """`pareto.png` for one benchmark, `pareto_<benchmark>.png` for each of several."""
    if len(benchmarks) == 1:
        return {benchmarks[0]: Path(out_dir) / "pareto.png"}
    return {b: Path(out_dir) / f"pareto_{b}.png" for b in benchmarks}


def plot_pareto(points_by_bench: dict[str, list[Point]], out_dir: Path) -> list[Path]:
    """One chart per benchmark: every point, labelled, tokens on a log axis, the frontier drawn as a step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for bench, path in chart_paths(out_dir, sorted(points_by_bench)).items():
        pts = points_by_bench[bench]
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, x, y in pts:
            ax.plot([max(x, 1)], [y], "o", label=label)   # log axis: a 0-token point is drawn at 1
        front = frontier(pts)
        if front:
            ax.step([max(p[1], 1) for p in front], [p[2] for p in front], "k--", where="post", alpha=0.6,
                    label="Pareto frontier")
        ax.set_xscale("log")
        ax.set_title(bench)
        ax.set_xlabel("average generated tokens per question (log; parallel: k × tokens)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
