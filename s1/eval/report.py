"""Metrics from the cached generations, and the reports: metrics.json, results.md (Tables 1, 3, 4), scaling.png, figure4.png."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from s1.eval.methods import RunSpec, finite_budgets
from s1.eval.metrics import SCALING_UNIT, scaling_metrics, summarize
from s1.eval.runner import expected_records
from s1.eval.sampling import sampling_metrics, sampling_table

OUTCOMES = ("answered", "forced", "no_answer", "timeout")


BF_METHODS = ("bf", "wait", "extrapolation_strings", "adaptive", "token_conditional_bf", "step_conditional_bf",
              "token_conditional_prompt_bf", "step_conditional_prompt_bf")   # budget forcing applies its minimum
TOKEN_BUDGET_METHODS = ("bf", "token_conditional", "token_conditional_bf", "step_conditional", "step_conditional_bf",
                        "token_conditional_prompt", "token_conditional_prompt_bf", "step_conditional_prompt",
                        "step_conditional_prompt_bf", "rejection_sampling")   # budget = a thinking-token maximum
SCALING_METHODS = TOKEN_BUDGET_METHODS + ("class_conditional", "wait", "majority")


def compute_metrics(records: dict[str, dict], runs: list[RunSpec], benches: dict[str, list[dict]], cfg) -> dict:
    """One row per (run, benchmark) plus the scaling metrics per (model, method, benchmark).

    Only records generated under this config's settings count (the cache key holds them all)."""
    rows = []
    for spec in runs:
        found = [(b, rec) for b, _, _, rec in expected_records(spec, benches, records, cfg) if rec is not None]
        for bench in benches:
            recs = [rec for b, rec in found if b == bench]
            if not recs:
                continue
            if spec.method == "majority":
                rows += _majority_rows(spec, bench, recs, cfg.eval.majority_k)
                continue
            rows.append({"model": spec.model, "model_path": spec.model_path, "method": spec.method,
                         "budget": spec.budget, "benchmark": bench, **summarize(recs), **sampling_metrics(recs)})
    budgets = finite_budgets(cfg.eval.budgets)
    min_tokens = cfg.eval.budget_forcing.get("min_thinking_tokens")   # set by budget forcing only
    scaling = []
    for (model, method, bench), pts in _points(rows).items():
        if len(pts) < 2 and method != "bf":
            continue
        asked = [r["budget"] for r in rows if (r["model"], r["method"], r["benchmark"]) == (model, method, bench)
                 and isinstance(r["budget"], int)]
        if method in TOKEN_BUDGET_METHODS:
            a_max = max(asked) if asked else None
        elif method == "class_conditional":       # asked for short/long thinking: held to the sweep's range
            a_max = budgets[-1] if budgets else None
        else:                                     # Wait extrapolation, majority voting: no maximum was asked for
            a_max = None
        a_min = int(min_tokens) if min_tokens and method in BF_METHODS else 0
        scaling.append({"model": model, "method": method, "benchmark": bench, "budgets": len(pts),
                        "control_range": [a_min, a_max], **scaling_metrics(pts, a_min, a_max)})
    return {"rows": rows, "scaling": scaling, "scaling_unit": SCALING_UNIT,
            "control_definition": CONTROL_DEFINITION, "extrapolation_waits": int(cfg.eval.extrapolation_waits)}


CONTROL_DEFINITION = ("Control: share of a method's runs whose average thinking tokens stay within [a_min, a_max]; "
                      "a_max = the largest budget the method was asked for (class-conditional: the sweep's largest; "
                      "none, so no Control, for Wait extrapolation and majority voting), a_min = 0 unless budget "
                      "forcing sets a minimum (paper §3.2: only a_max is usually constrained).")


def _hashable(b):
    return tuple(b) if isinstance(b, list) else b


def _majority_rows(spec: RunSpec, bench: str, recs: list[dict], ks) -> list[dict]:
    """Parallel scaling: majority vote over the first k samples, for each k; compute = k × generated tokens."""
    out = []
    for k in sorted(int(k) for k in ks):
        sub = [r for r in recs if r["sample"] < k]
        s = summarize(sub)
        if k > 1:
            s["accuracy"], s["stderr"] = s[f"maj@{k}"], 0.0
        # k samples' worth of generation per question (a base model answers without a thinking segment)
        s["avg_thinking_tokens"] = k * (s["avg_thinking_tokens"] + (0 if spec.think else s["avg_answer_tokens"]))
        out.append({"model": spec.model, "model_path": spec.model_path, "method": "majority", "budget": k,
                    "benchmark": bench, **s})
    return out


def _points(rows: list[dict]) -> dict[tuple, list[tuple[float, float]]]:
    pts: dict[tuple, list] = defaultdict(list)
    for r in rows:
        if r["method"] in SCALING_METHODS:
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
    if r["method"] == "adaptive":
        return f"≤{b}× Wait, adaptive"
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
    """Table 1's rows: setting name → benchmark → metrics row. Budget caps and Wait extrapolation are separate rows."""
    settings: dict[str, dict[str, dict]] = {}
    for r in rows:
        if r["method"] not in ("no_bf", "bf", "wait", "adaptive"):
            continue
        name = {"base": "base model", "trained": "trained"}.get(r["model"], r["model"])
        if r["method"] == "no_bf" or (r["method"] == "bf" and r["budget"] is None):
            name += " without budget forcing"
        elif r["method"] == "bf":
            name += f" with budget forcing (T={r['budget']})"
        elif r["method"] == "adaptive":
            name += f" with adaptive Wait (≤{r['budget']}×, peeks counted)"
        else:
            name += f" with budget forcing ({r['budget']}× Wait)"
        settings.setdefault(name, {})[r["benchmark"]] = r
    return settings


def paper_table1_row(name: str) -> tuple[str, dict] | None:
    """The paper's Table 1 row that a setting reproduces, or None. Table 1's "with budget forcing" numbers are
    extrapolation with "Wait" (paper Fig. 1/4: 50% → 57% on AIME24), so they sit beside the Wait rows only,
    never beside a thinking cap."""
    from s1.report import paper

    if name == "base model without budget forcing":
        key = "Qwen2.5-32B-Instruct"
    elif name == "trained without budget forcing":
        key = "s1-32B without budget forcing"
    elif name.startswith("trained with budget forcing (") and name.endswith("× Wait)"):
        key = "s1-32B with budget forcing"
    else:
        return None
    return key, paper.TABLE1[key]


PAPER_COLUMNS = ("aime24", "math500", "gpqa_diamond")


def _paper_cell(ref: dict, bench: str) -> str:
    v = ref.get("gpqa" if bench.startswith("gpqa") else bench)
    return "–" if v is None else f"{v:.1f}"


def table1(metrics: dict) -> str:
    """Paper Table 1 layout: one row per model setting, one column per benchmark (accuracy %), the paper's
    number beside the matching setting only."""
    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    paper_cols = [b for b in benches if b in PAPER_COLUMNS]
    cell = lambda r: f"{r['accuracy']:.1f} ± {r['stderr']:.1f}"
    header = ["model", *benches, *[f"paper {b}" for b in paper_cols], "paper row"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, v in table1_settings(metrics["rows"]).items():
        match = paper_table1_row(name)
        refs = [(_paper_cell(match[1], b) if match else "–") for b in paper_cols]
        cells = [name, *[cell(v[b]) if b in v else "–" for b in benches], *refs, match[0] if match else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


PAPER_TABLE3_METHODS = {   # our method → the paper's Table 3 row (AIME24); prompt-only variants have none
    "bf": "budget forcing", "token_conditional": "token-conditional control",
    "token_conditional_bf": "token-conditional + budget forcing", "step_conditional": "step-conditional control",
    "step_conditional_bf": "step-conditional + budget forcing", "class_conditional": "class-conditional control",
    "rejection_sampling": "rejection sampling",
}


def paper_table3_cell(s: dict) -> str:
    """The paper's Control / Scaling / Performance for this method on AIME24, or "–"."""
    from s1.report.paper import TABLE3

    name = PAPER_TABLE3_METHODS.get(s["method"])
    if s["benchmark"] != "aime24" or name is None or s["model"] == "base":
        return "–"
    c, sc, p = TABLE3[name]
    return f"{c}% / {sc} / {p}"


def table3(metrics: dict) -> str:
    """Paper Table 3 layout: Control / Scaling / Performance per method (and benchmark), the paper's beside the
    matching method on AIME24 only."""
    lines = ["| method | benchmark | budgets | [a_min, a_max] | Control (%) | Scaling | Performance (%) | "
             "paper (Control / Scaling / Performance) |", "|---|---|---|---|---|---|---|---|"]
    for s in metrics["scaling"]:
        f = (lambda x, d=1: "–" if x is None else f"{x:.{d}f}")
        lines.append(f"| {s['model']} · {s['method']} | {s['benchmark']} | {s['budgets']} | {s.get('control_range')} | "
                     f"{f(s['control'], 0)} | {f(s['scaling'])} | {f(s['performance'])} | {paper_table3_cell(s)} |")
    no_fit = [r for r in metrics["rows"] if r["method"] == "rejection_sampling"]
    if no_fit:
        lines += ["", "Rejection sampling: questions with no sample inside the budget within the try limit "
                  "(scored wrong): " + ", ".join(f"{r['benchmark']} T={r['budget']}: {r.get('no_fit_within_tries', 0)}"
                                                 for r in no_fit) + "."]
    return "\n".join(lines)


def table4_rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """Paper Table 4 layout: extrapolation string (2 suppressed ends of thinking each) vs no extrapolation."""
    rows = [r for r in metrics["rows"] if r["method"] == "extrapolation_strings"
            or (r["method"] == "no_bf" and r["model"] == "trained")]
    if not any(r["method"] == "extrapolation_strings" for r in rows):
        return [], []
    benches = sorted({r["benchmark"] for r in rows})
    w = metrics.get("extrapolation_waits", 2)
    from s1.report.paper import TABLE4

    paper_cols = [b for b in benches if b in PAPER_COLUMNS]
    by: dict[str, dict[str, dict]] = {}
    paper_key: dict[str, str | None] = {}
    for r in rows:
        name = "no extrapolation" if r["method"] == "no_bf" else (
            f"{w}× without string" if r["budget"] == "none" else f'{w}× "{r["budget"]}"')
        by.setdefault(name, {})[r["benchmark"]] = r
        # the paper's row only where the setting is the paper's: 2 suppressions (or none at all)
        paper_key[name] = "no extrapolation" if r["method"] == "no_bf" else (str(r["budget"]) if w == 2 else None)
    out = []
    for name, v in by.items():
        toks = [x["avg_thinking_tokens"] for x in v.values()]
        ref = TABLE4.get(paper_key[name] or "", {})
        out.append([name, *[f"{v[b]['accuracy']:.1f}" if b in v else "–" for b in benches],
                    f"{sum(toks) / len(toks):.0f}", *[_paper_cell(ref, b) for b in paper_cols]])
    return (["setting", *[f"{b} (%)" for b in benches], "avg thinking tokens", *[f"paper {b}" for b in paper_cols]],
            out)


def table4(metrics: dict) -> str:
    header, rows = table4_rows(metrics)
    if not rows:
        return "No extrapolation-string runs (add `extrapolation_strings` to eval.methods)."
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def write_results_md(metrics: dict, path: Path) -> Path:
    text = "\n\n".join([
        "# Results", "## Table 1 layout: accuracy (%) ± standard error over questions",
        "Paper numbers (s1-32B / Qwen2.5-32B-Instruct) sit beside the setting they reproduce only; its "
        "\"with budget forcing\" numbers are Wait extrapolation, so thinking-cap rows have none."
        + ("" if _is_paper_model(metrics) else " This run evaluates other models: the paper's numbers are reference "
           "only."),
        table1(metrics),
        "## Table 3 layout: test-time scaling metrics",
        (f"{metrics['control_definition']} Scaling: average slope over all budget pairs, in "
         f"{metrics['scaling_unit']}. Performance: best accuracy."), table3(metrics),
        "## Table 4 layout: extrapolation strings", table4(metrics),
        "## Figure 4: sequential (budget forcing) vs parallel (majority voting) scaling",
        "![Figure 4](figure4.png)",
        "## Sampling protocol: avg@n (pass@1 over n samples) ± stderr, cons@n (majority), unbiased pass@k",
        sampling_table(metrics["rows"]),
        "## All runs", results_table(metrics), ""])
    path.write_text(text, encoding="utf-8")
    return path


def _is_paper_model(metrics: dict) -> bool:
    from s1.report.paper import PAPER_MODELS

    return any(r.get("model_path") in PAPER_MODELS for r in metrics["rows"])


def plot_figure4(metrics: dict, path: Path) -> Path:
    """Paper Figure 4 on one plot per benchmark: sequential scaling (budget forcing caps and Wait extrapolation of
    the trained model) against parallel scaling (majority vote over k samples, by default of the base model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    fig, axes = plt.subplots(1, max(1, len(benches)), figsize=(5.5 * max(1, len(benches)), 4), squeeze=False)
    for ax, bench in zip(axes[0], benches):
        seq = sorted((r["avg_thinking_tokens"], r["accuracy"]) for r in metrics["rows"] if r["benchmark"] == bench
                     and r["model"] == "trained" and (r["method"] in ("wait",) or
                                                      (r["method"] == "bf" and r["budget"] is not None)))
        par = sorted((r["avg_thinking_tokens"], r["accuracy"], r["budget"], r["model"]) for r in metrics["rows"]
                     if r["benchmark"] == bench and r["method"] == "majority")
        if seq:
            ax.plot([p[0] for p in seq], [p[1] for p in seq], "o-", label="sequential: budget forcing (trained)")
        if par:
            ax.plot([p[0] for p in par], [p[1] for p in par], "s--",
                    label=f"parallel: majority vote ({par[0][3]} model)")
            for x, y, k, _ in par:
                ax.annotate(f"k={k}", (x, y), fontsize=7)
        ax.set_xscale("log")
        ax.set_title(bench)
        ax.set_xlabel("average thinking tokens per question (log; parallel: k × generated)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
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
                label = f"{r['model']} · {r['method']}"
                if r["method"] in ("extrapolation_strings", "adaptive"):   # ablation points, not a curve
                    label += f" ({_budget_label(r)})"
                lines[label].append((r["avg_thinking_tokens"], r["accuracy"]))
                if r["method"] == "wait":
                    ax.annotate(f"{r['budget']}×", (r["avg_thinking_tokens"], r["accuracy"]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        for label, pts in lines.items():
            pts.sort()
            style = "o-" if len(pts) > 1 else ("x" if "extrapolation_strings" in label else "s")
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
