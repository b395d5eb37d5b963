"""Metrics from the cached generations, and the three reports: metrics.json, results.md, scaling.png."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from s1.eval.methods import RunSpec, finite_budgets
from s1.eval.metrics import SCALING_UNIT, scaling_metrics, summarize
from s1.eval.runner import model_id

OUTCOMES = ("answered", "forced", "no_answer", "timeout")


def compute_metrics(records: dict[str, dict], runs: list[RunSpec], benches: dict[str, list[dict]], cfg) -> dict:
    """One row per (run, benchmark) plus the scaling metrics per (model, method, benchmark)."""
    want = {b: {r["id"] for r in rows} for b, rows in benches.items()}
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for rec in records.values():
        if rec["question_id"] in want.get(rec["benchmark"], ()):
            grouped[(rec["model"], rec["method"], _hashable(rec["budget"]), rec["benchmark"])].append(rec)
    rows = []
    for spec in runs:
        for bench in benches:
            recs = [r for r in grouped.get((model_id(spec), spec.method, _hashable(spec.budget), bench), [])
                    if r["sample"] < spec.samples]
            if not recs:
                continue
            if spec.method == "majority":
                rows += _majority_rows(spec, bench, recs, cfg.eval.majority_k)
                continue
            rows.append({"model": spec.model, "model_path": spec.model_path, "method": spec.method,
                         "budget": spec.budget, "benchmark": bench, **summarize(recs)})
    budgets = finite_budgets(cfg.eval.budgets)
    a_min, a_max = (budgets[0], budgets[-1]) if budgets else (0, float("inf"))
    scaling = []
    for (model, method, bench), pts in _points(rows).items():
        if len(pts) >= 2 or method in ("bf",):
            scaling.append({"model": model, "method": method, "benchmark": bench, "budgets": len(pts),
                            **scaling_metrics(pts, a_min, a_max)})
    return {"rows": rows, "scaling": scaling, "scaling_unit": SCALING_UNIT,
            "control_range": [a_min, a_max if a_max != float("inf") else None]}


def _hashable(b):
    return tuple(b) if isinstance(b, list) else b


def _majority_rows(spec: RunSpec, bench: str, recs: list[dict], ks) -> list[dict]:
    """Parallel scaling: majority vote over the first k samples, for each k; compute = k × thinking tokens."""
    out = []
    for k in sorted(int(k) for k in ks):
        sub = [r for r in recs if r["sample"] < k]
        s = summarize(sub)
        if k > 1:
            s["accuracy"], s["stderr"] = s[f"maj@{k}"], 0.0
        s["avg_thinking_tokens"] *= k   # k samples' worth of thinking per question
        out.append({"model": spec.model, "model_path": spec.model_path, "method": "majority", "budget": k,
                    "benchmark": bench, **s})
    return out


def _points(rows: list[dict]) -> dict[tuple, list[tuple[float, float]]]:
    pts: dict[tuple, list] = defaultdict(list)
    for r in rows:
        if r["method"] in ("bf", "token_conditional", "token_conditional_bf", "step_conditional",
                           "step_conditional_bf", "class_conditional", "rejection_sampling", "wait", "majority"):
            if r["method"] == "bf" and r["budget"] is None:
                continue
            pts[(r["model"], r["method"], r["benchmark"])].append((r["avg_thinking_tokens"], r["accuracy"]))
    return pts


def _budget_label(r: dict) -> str:
    b = r["budget"]
    if r["method"] == "no_bf" or (r["method"] == "bf" and b is None):
        return "no cap"
    if r["method"] == "wait":
        return f"{b}× Wait"
    if r["method"] == "majority":
        return f"k={b}"
    return str(b)


def results_table(metrics: dict) -> str:
    """The demo's table: every run with accuracy ± stderr, avg thinking tokens and outcome counts."""
    head = "| model | method | budget | benchmark | accuracy (%) | avg thinking tokens | " + \
           " | ".join(OUTCOMES) + " |"
    lines = [head, "|" + "---|" * (6 + len(OUTCOMES))]
    for r in metrics["rows"]:
        o = r["outcomes"]
        lines.append(f"| {r['model']} | {r['method']} | {_budget_label(r)} | {r['benchmark']} | "
                     f"{r['accuracy']:.1f} ± {r['stderr']:.1f} | {r['avg_thinking_tokens']:.1f} | "
                     + " | ".join(str(o.get(k, 0)) for k in OUTCOMES) + " |")
    return "\n".join(lines)


def table1_settings(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Table 1's rows: setting name ("trained with budget forcing (T=64)", ...) → benchmark → metrics row."""
    settings: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["method"] not in ("no_bf", "bf"):
            continue
        name = {"base": "base model", "trained": "trained"}[r["model"]]
        name += " without budget forcing" if r["method"] == "no_bf" or r["budget"] is None else \
            f" with budget forcing (T={r['budget']})"
        settings.setdefault(name, {})[r["benchmark"]] = r
    return settings


def table1(metrics: dict) -> str:
    """Paper Table 1 layout: one row per model setting, one column per benchmark (accuracy %)."""
    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    cell = lambda r: f"{r['accuracy']:.1f} ± {r['stderr']:.1f}"
    lines = ["| model | " + " | ".join(benches) + " |", "|---|" + "---|" * len(benches)]
    lines += [f"| {name} | " + " | ".join(cell(v[b]) if b in v else "–" for b in benches) + " |"
              for name, v in table1_settings(metrics["rows"]).items()]
    return "\n".join(lines)


def table3(metrics: dict) -> str:
    """Paper Table 3 layout: Control / Scaling / Performance per method (and benchmark)."""
    lines = ["| method | benchmark | budgets | Control (%) | Scaling | Performance (%) |", "|---|---|---|---|---|---|"]
    for s in metrics["scaling"]:
        f = (lambda x, d=1: "–" if x is None else f"{x:.{d}f}")
        lines.append(f"| {s['model']} · {s['method']} | {s['benchmark']} | {s['budgets']} | {f(s['control'], 0)} | "
                     f"{f(s['scaling'])} | {f(s['performance'])} |")
    return "\n".join(lines)


def write_results_md(metrics: dict, path: Path) -> Path:
    lo, hi = metrics["control_range"]
    text = "\n\n".join([
        "# Results", "## Table 1 layout: accuracy (%) ± standard error over questions", table1(metrics),
        "## Table 3 layout: test-time scaling metrics",
        (f"Control: share of budgets whose average thinking tokens stay within [{lo}, {hi}]. "
        f"Scaling: average slope over all budget pairs, in {metrics['scaling_unit']}. "
        "Performance: best accuracy."), table3(metrics),
        "## All runs", results_table(metrics), ""])
    path.write_text(text, encoding="utf-8")
    return path


def plot_scaling(metrics: dict, path: Path) -> Path:
    """Accuracy vs average thinking tokens, one line per (model, method), one panel per benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    fig, axes = plt.subplots(1, max(1, len(benches)), figsize=(5.5 * max(1, len(benches)), 4), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        lines: dict[str, list] = defaultdict(list)
        for r in metrics["rows"]:
            if r["benchmark"] == bench:
                lines[f"{r['model']} · {r['method']}"].append((r["avg_thinking_tokens"], r["accuracy"]))
        for label, pts in lines.items():
            pts.sort()
            style = "o-" if len(pts) > 1 else "s"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        ax.set_title(bench)
        ax.set_xlabel("average thinking tokens")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def rows_by(metrics: dict, **match: Any) -> list[dict]:
    return [r for r in metrics["rows"] if all(r.get(k) == v for k, v in match.items())]
