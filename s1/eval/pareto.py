"""Accuracy against average generated tokens: the Pareto frontier over every method's points, and its chart.

A point is (label, tokens, accuracy): tokens = average generated tokens per question (thinking + answer, peeks
included; parallel methods: the selector's cost, k × per-sample tokens or short-m@k's own), accuracy in percent.
A point is on the frontier when no other point has at most its tokens and more accuracy, or fewer tokens and at
least its accuracy. The eval stage writes `pareto.png` (the first benchmark of eval.benchmarks, or the only one)
and, where there are several, `pareto_<benchmark>.png` for each (`write_charts`).
"""

from __future__ import annotations

from pathlib import Path

from s1.eval import plots
from s1.eval.tables import budget_label

Point = tuple[str, float, float]   # (label, average generated tokens per question, accuracy %)
MARKERS = "osD^vph"   # 7 markers over 10 colours: 70 series before a (colour, marker) pair repeats


def series_styles(n: int) -> list[tuple[str, str]]:
    """(colour, marker) per series: distinct for up to 70 series (an eval.methods=[all] chart has ~23)."""
    return [(f"C{i % 10}", MARKERS[i % len(MARKERS)]) for i in range(n)]


NOTE = ("Every run's point: thinking + answer tokens per question, peeks included; parallel methods: the selector's "
        "cost (k × per-sample tokens; short-m@k: every sample up to the m-th finisher). Tokens on a log axis; the "
        "dashed line is the frontier.")


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


def chart_paths(out_dir: Path, benchmarks: list[str]) -> dict[Path, str]:
    """File -> benchmark: `pareto.png` for the first (or only) benchmark and, with several, `pareto_<benchmark>.png`
    for each."""
    if not benchmarks:
        return {}
    out = {Path(out_dir) / "pareto.png": benchmarks[0]}
    if len(benchmarks) > 1:
        out.update({Path(out_dir) / f"pareto_{b}.png": b for b in benchmarks})
    return out


def embedded_charts(benchmarks: list[str]) -> list[tuple[str, str]]:
    """(file name, benchmark) of the charts a page shows: pareto.png for one benchmark, one file each for several."""
    files = {p.name: b for p, b in chart_paths(Path("."), benchmarks).items()}
    return [(n, b) for n, b in files.items() if len(benchmarks) == 1 or n != "pareto.png"]


def points(metrics: dict, with_budget: bool = False) -> dict[str, list[Point]]:
    """Benchmark -> its points, one per metrics row with an accuracy and a token count (in eval.benchmarks order).
    The label names the series, "model · method"; with_budget adds the row's budget ("trained · bf T=64")."""
    out: dict[str, list[Point]] = {b: [] for b in metrics.get("benchmarks") or []}
    for r in metrics["rows"]:
        out.setdefault(r["benchmark"], [])
        if r.get("accuracy") is None or r.get("avg_generated_tokens") is None:
            continue   # e.g. a confidence filter without confidences (its row says why)
        label = f"{r['model']} · {r['method']}" + (f" {budget_label(r)}" if with_budget else "")
        out[r["benchmark"]].append((label, float(r["avg_generated_tokens"]), float(r["accuracy"])))
    return out


def plot_pareto(points_by_bench: dict[str, list[Point]], out_dir: Path) -> list[Path]:
    """One chart per file of chart_paths: each label's points as one series (its budgets joined by a thin line),
    tokens on a log axis, the frontier drawn as a dashed step line."""
    written = []
    for path, bench in chart_paths(out_dir, list(points_by_bench)).items():
        pts = points_by_bench[bench]
        series: dict[str, list[Point]] = {}
        for p in pts:
            series.setdefault(p[0], []).append(p)
        fig, [ax] = plots.panels(1, width=8, height=4.5)
        for (label, members), (color, marker) in zip(series.items(), series_styles(len(series))):
            members.sort(key=lambda p: p[1])
            ax.plot([max(p[1], 1) for p in members], [p[2] for p in members], marker=marker, linestyle="-",
                    color=color, linewidth=0.6, alpha=0.85, label=label)   # log axis: a 0-token point is drawn at 1
        front = frontier(pts)
        if front:
            ax.step([max(p[1], 1) for p in front], [p[2] for p in front], "k--", where="post", alpha=0.6,
                    label="Pareto frontier")
        plots.style(ax, bench, "average generated tokens per question (log; parallel: k × tokens, peeks included)",
                    log_x=True, legend_size=6, legend_outside=True)
        written.append(plots.save(fig, path))
    return written


def write_charts(metrics: dict, out_dir: Path) -> list[Path]:
    """The eval stage's Pareto charts from its metrics (chart_paths names them)."""
    return plot_pareto(points(metrics), out_dir)


def frontier_table(metrics: dict) -> list[list[str]]:
    """Rows (benchmark, setting, avg generated tokens, accuracy) of each benchmark's frontier, by tokens."""
    return [[bench, label, f"{x:.1f}", f"{y:.1f}"] for bench, pts in points(metrics, with_budget=True).items()
            for label, x, y in frontier(pts)]
