"""Metrics from the cached generations, and the reports: metrics.json, results.md (Tables 1, 3, 4 from
s1.eval.tables), scaling.png, figure4.png, pareto*.png (s1.eval.pareto)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from s1.eval import pareto, plots, selectors, tables
from s1.eval.methods import BF_CURVE, RunSpec, method_of
from s1.eval.metrics import SCALING_UNIT, mean_or_none, pass_at_1, scaling_metrics, summarize
from s1.eval.runner import apply_unread, expected_records
from s1.eval.sampling import sampling_metrics, sampling_table
from s1.grading import canonical_answer
from s1.paper_numbers import PAPER_MODELS


def compute_metrics(records: dict[str, dict], runs: list[RunSpec], benches: dict[str, list[dict]], cfg) -> dict:
    """One row per (run, benchmark) plus the scaling metrics per (model, curve, benchmark).

    Only records generated under this config's settings count (the cache key holds them all). Each row carries
    the [a_min, a_max] thinking tokens its run was given (run_budget), which is what Control holds it to."""
    rows = []
    for spec in runs:
        found = [(b, rec) for b, _, _, rec in expected_records(spec, benches, records, cfg) if rec is not None]
        for bench in benches:
            recs = apply_unread([rec for b, rec in found if b == bench], str(cfg.eval.gpqa.unread))
            if not recs:
                continue
            if method_of(spec.method).budget == "votes":
                rows += _parallel_rows(spec, bench, recs, cfg.eval)
                continue
            rows.append({"model": spec.model, "model_path": spec.model_path, "method": spec.method,
                         "budget": spec.budget, "benchmark": bench, **summarize(recs),
                         **sampling_metrics(recs, canonical_answer)})   # cons@n votes by answer class, as maj@k
    out = {"rows": rows, "scaling": scaling_table(rows, cfg), "scaling_unit": SCALING_UNIT,
           "benchmarks": list(benches),
           "paper_model": _paper_model(cfg), "control_definition": CONTROL_DEFINITION,
           "extrapolation_waits": int(cfg.eval.extrapolation_waits),
           "protocol": {"temperature": float(cfg.eval.temperature), "max_new_tokens": int(cfg.eval.max_new_tokens)},
           "gpqa": {"option_order": str(cfg.eval.gpqa.option_order), "unread": str(cfg.eval.gpqa.unread)}}
    mismatch = tables.protocol_mismatch(out) is not None   # another protocol: no paper numbers anywhere
    for s in out["scaling"]:
        s["protocol_mismatch"] = mismatch
    return out


def scaling_table(rows: list[dict], cfg) -> list[dict]:
    """Control / Scaling / Performance per (model, curve, benchmark); sets each row's budget_given first."""
    for r in rows:
        r["budget_given"] = run_budget(r, rows, cfg)
    scaling = []
    for (model, curve, bench), members in _curves(rows).items():
        members = [r for r in members if r.get("accuracy") is not None]   # a row that says why it has none
        if len(members) < 2 and curve != "bf" or not members:
            continue
        pts = [(r["avg_thinking_tokens"], r["accuracy"]) for r in members]
        ranges = [None if r["budget_given"] is None else tuple(r["budget_given"]) for r in members]
        given = [g for g in ranges if g is not None]
        waits = sum(method_of(r["method"]).budget == "waits" for r in members)
        scaling.append({"model": model, "method": curve, "benchmark": bench, "budgets": len(pts),
                        "wait_points": waits if curve == "bf" else None, "paper_model": _paper_model(cfg),
                        "control_range": [min(g[0] for g in given), _max_or_none([g[1] for g in given])]
                        if given else None, **scaling_metrics(pts, ranges=ranges)})
    return scaling


CONTROL_DEFINITION = ("Control: share of a curve's runs whose average thinking tokens stay within the [a_min, a_max] "
                      "THAT run was given: a thinking cap T -> [0, T] (rejection sampling: its T); a token budget "
                      "stated in the prompt -> [0, tokens]; a step budget -> [0, steps x eval.tokens_per_step]; a "
                      "class prompt -> its range in eval.class_ranges (default: short at most, long at least the "
                      "unprompted auto run's average); no cap (auto, Wait) -> [0, eval.max_new_tokens]; majority "
                      "voting -> none (left out). a_min is budget forcing's minimum where it sets one, else 0 "
                      "(paper §3.2: only a_max is usually constrained). The budget-forcing curve (bf) is the "
                      "paper's: every thinking cap plus auto and the Wait extrapolation points.")


def run_budget(row: dict, rows: list[dict], cfg) -> list | None:
    """[a_min, a_max] thinking tokens one run was given (a_max None: no maximum); None: no budget at all."""
    e = cfg.eval
    m, b = method_of(row["method"]), row["budget"]
    min_tokens = e.budget_forcing.get("min_thinking_tokens")
    a_min = int(min_tokens) if min_tokens and m.budget_forcing else 0
    if m.budget == "votes":
        return None
    if m.budget in ("cap", "tokens"):
        return [a_min, int(b) if isinstance(b, int) else int(e.max_new_tokens)]
    if m.budget == "steps":
        return [a_min, int(b) * int(e.tokens_per_step)]
    if m.budget == "class":
        return _class_range(row, rows, e)
    return [a_min, int(e.max_new_tokens)]    # waits, strings, none (auto, no_bf): the total


def _class_range(row: dict, rows: list[dict], e) -> list | None:
    """A class prompt's range: eval.class_ranges[class], else relative to the same model's unprompted run."""
    ranges = dict(e.get("class_ranges") or {})
    if row["budget"] in ranges:
        lo, hi = list(ranges[row["budget"]])
        return [int(lo or 0), None if hi is None else int(hi)]
    plain = [r for r in rows if r["model"] == row["model"] and r["benchmark"] == row["benchmark"]
             and tables.is_auto(r)]
    plain = plain or [r for r in rows if r["model"] == row["model"] and r["benchmark"] == row["benchmark"]
                      and method_of(r["method"]).budget == "none"]   # the plain generation (no_bf)
    if not plain:
        return None
    ref = plain[0]["avg_thinking_tokens"]
    return [0, ref] if row["budget"] == "short" else [ref, None]


def _max_or_none(xs: list) -> int | None:
    return None if any(x is None for x in xs) else max(xs)


def _paper_model(cfg) -> str:
    return str(cfg.eval.get("paper_model") or "s1")


def _hashable(b):
    return tuple(b) if isinstance(b, list) else b


def _as_sample(r: dict) -> selectors.Sample:
    return selectors.Sample(r.get("extracted"), bool(r["correct"]), int(r["thinking_tokens"]) + int(r["answer_tokens"]),
                            r.get("confidence"))


def _parallel_rows(spec: RunSpec, bench: str, recs: list[dict], e) -> list[dict]:
    """Parallel scaling: the method's selector over the first k samples of each question, a row per k of its
    eval.<ks> list. avg_generated_tokens is the selector's cost (k × per-sample tokens; short-m@k: its own);
    avg_seconds charges each question its slowest sample among those the choice waited for (the k run side by
    side); avg_thinking_tokens is k × per-sample thinking (Table 3's axis; a base model's answer counts as
    thinking). majority (no selector in its record) keeps maj@k by metrics.majority_correct."""
    m = method_of(spec.method)
    by_q: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(recs, key=lambda r: r["sample"]):
        by_q[r["question_id"]].append(r)
    out = []
    for k in sorted({int(k) for k in OmegaConf.select(e, m.ks)}):
        per_q = [[r for r in rs if r["sample"] < k] for rs in by_q.values()]
        sub = [r for rs in per_q for r in rs]
        s = summarize(sub)
        samples = [[_as_sample(r) for r in rs] for rs in per_q]
        missing = sum(r.get("confidence") is None for r in sub) if m.needs_confidence else 0
        picks = [selectors.majority(q) for q in samples]   # what waiting for all k costs
        if missing:
            s.update(accuracy=None, stderr=None, unavailable=(
                f"{missing} of {len(sub)} samples have no confidence: the engine returned no log-probabilities "
                "(budget_forcing.record_confidence on the transformers or vLLM engine)"))
        elif m.select is None:
            if k > 1:
                s["accuracy"], s["stderr"] = s[f"maj@{k}"], 0.0
        else:
            picks = [m.select(q, e) for q in samples]
            s["accuracy"], s["stderr"] = pass_at_1([[p.correct] for p in picks])
        # k samples' worth of generation per question (a base model answers without a thinking segment)
        s["avg_thinking_tokens"] = k * (s["avg_thinking_tokens"] + (0 if spec.think else s["avg_answer_tokens"]))
        s["avg_generated_tokens"] = sum(p.tokens for p in picks) / len(picks) if picks else 0.0
        s["avg_seconds"] = _side_by_side_seconds(per_q, picks)
        out.append({"model": spec.model, "model_path": spec.model_path, "method": spec.method, "budget": k,
                    "benchmark": bench, **s})
    return out


def _side_by_side_seconds(per_q: list[list[dict]], picks: list) -> float | None:
    """Mean over questions of the slowest `seconds` among the samples each choice waited for; None when a
    sample has none."""
    slowest = []
    for rs, pick in zip(per_q, picks):
        secs = [rs[i].get("seconds") for i in pick.finished]
        if not secs or any(x is None for x in secs):
            return None
        slowest.append(max(secs))
    return mean_or_none(slowest)


def _curves(rows: list[dict]) -> dict[tuple, list[dict]]:
    """(model, curve, benchmark) -> its runs: the budget-forcing curve joins caps, auto and Wait points."""
    curves: dict[tuple, list] = defaultdict(list)
    for r in rows:
        curve = method_of(r["method"]).curve
        if curve is not None:
            curves[(r["model"], curve, r["benchmark"])].append(r)
    return curves


def results_table(metrics: dict) -> str:
    """The demo's table: every run with accuracy ± stderr, avg thinking tokens and outcome counts."""
    return tables.markdown(tables.results(metrics))


def table1(metrics: dict) -> str:
    return tables.markdown(tables.table1(metrics))


def table3(metrics: dict) -> str:
    """Table 3 in results.md, then the rejection-sampling runs' questions that found no fit."""
    no_fit = tables.no_fit_runs(metrics)
    return tables.markdown(tables.table3(metrics, tables.TABLE3_PAPER_FULL)) + (
        "\n\nRejection sampling (the release resamples until a sample fits): questions that hit the safety limit "
        "eval.rejection_max_tries with no sample inside the budget (scored wrong): "
        + no_fit + "." if no_fit else "")


def table4(metrics: dict) -> str:
    t = tables.table4(metrics)
    if not t.rows:
        return "No extrapolation-string runs (add `extrapolation_strings` to eval.methods)."
    return tables.markdown(t)


def write_results_md(metrics: dict, path: Path) -> Path:
    text = "\n\n".join([
        "# Results", "## Table 1 layout: accuracy (%) ± standard error over questions",
        f"Paper numbers: {PAPER_MODEL_NAMES.get(metrics.get('paper_model', 's1'), 'none')} (eval.paper_model). "
        + tables.paper_note(metrics)
        + ("" if _is_paper_model(metrics) else " This run evaluates other models: the paper's numbers are reference "
           "only."),
        table1(metrics) + (f"\n\n{u}" if (u := tables.unread_note(metrics)) else ""),
        "## Table 3 layout: test-time scaling metrics",
        (f"{metrics['control_definition']} Scaling: average slope over all budget pairs, in "
         f"{metrics['scaling_unit']}. Performance: best accuracy."), table3(metrics),
        "## Table 4 layout: extrapolation strings", table4(metrics),
        "## Figure 4: sequential (budget forcing) vs parallel (majority voting) scaling",
        "![Figure 4](figure4.png)",
        "## Pareto: accuracy against average generated tokens per question", pareto.NOTE,
        *[f"![Pareto {b}]({name})" for name, b in pareto.embedded_charts(_benchmarks(metrics))],
        "Frontier (no other setting has more accuracy at no more tokens):",
        tables.markdown(tables.TableData(["benchmark", "setting", "avg generated tokens", "accuracy (%)"],
                                         pareto.frontier_table(metrics))),
        "## Sampling protocol: avg@n (pass@1 over n samples) ± stderr, cons@n (majority), unbiased pass@k",
        sampling_table(metrics["rows"]),
        "## All runs", results_table(metrics), ""])
    path.write_text(text, encoding="utf-8")
    return path


def _benchmarks(metrics: dict) -> list[str]:
    """The run's benchmarks in eval.benchmarks order (older metrics.json: in row order)."""
    return list(metrics.get("benchmarks") or dict.fromkeys(r["benchmark"] for r in metrics["rows"]))


PAPER_MODEL_NAMES = {"s1": "s1-32B / Qwen2.5-32B-Instruct", "s1.1": "s1.1-32B / Qwen2.5-32B-Instruct"}


def _is_paper_model(metrics: dict) -> bool:
    return any(r.get("model_path") in PAPER_MODELS for r in metrics["rows"])


def plot_figure4(metrics: dict, path: Path) -> Path:
    """Paper Figure 4 on one plot per benchmark: sequential scaling (budget forcing caps and Wait extrapolation of
    the trained model) against parallel scaling (majority vote over k samples, by default of the base model)."""
    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    fig, axes = plots.panels(len(benches))
    for ax, bench in zip(axes, benches):
        seq = sorted((r["avg_thinking_tokens"], r["accuracy"]) for r in metrics["rows"] if r["benchmark"] == bench
                     and r["model"] == "trained" and method_of(r["method"]).curve == BF_CURVE)   # caps, auto, Wait
        par = sorted((r["avg_thinking_tokens"], r["accuracy"], r["budget"], r["model"]) for r in metrics["rows"]
                     if r["benchmark"] == bench and r["method"] == "majority")   # the paper's parallel baseline
        if seq:
            ax.plot([p[0] for p in seq], [p[1] for p in seq], "o-", label="sequential: budget forcing (trained)")
        if par:
            ax.plot([p[0] for p in par], [p[1] for p in par], "s--",
                    label=f"parallel: majority vote ({par[0][3]} model)")
            for x, y, k, _ in par:
                ax.annotate(f"k={k}", (x, y), fontsize=7)
        plots.style(ax, bench, "average thinking tokens per question (log; parallel: k × generated)", log_x=True)
    return plots.save(fig, path)


def plot_scaling(metrics: dict, path: Path) -> Path:
    """Accuracy vs average thinking tokens, one line per (model, method), one panel per benchmark."""
    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    fig, axes = plots.panels(len(benches))
    for ax, bench in zip(axes, benches):
        lines: dict[str, list] = defaultdict(list)
        strings = set()   # labels of extrapolation-string points, drawn as crosses
        for r in metrics["rows"]:
            if r["benchmark"] == bench and r.get("accuracy") is not None:
                m = method_of(r["method"])
                label = f"{r['model']} · {r['method']}"
                if m.curve is None and m.budget != "none":   # ablation points (strings, adaptive), not a curve
                    label += f" ({tables.budget_label(r)})"
                lines[label].append((r["avg_thinking_tokens"], r["accuracy"]))
                if m.budget == "string":
                    strings.add(label)
                if m.curve is not None and m.budget == "waits":
                    ax.annotate(f"{r['budget']}×", (r["avg_thinking_tokens"], r["accuracy"]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        for label, pts in lines.items():
            pts.sort()
            style = "o-" if len(pts) > 1 else ("x" if label in strings else "s")
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        plots.style(ax, bench, "average thinking tokens")
    return plots.save(fig, path)


def plot_pareto(metrics: dict, out_dir: Path) -> list[Path]:
    """pareto.png (and pareto_<benchmark>.png for several benchmarks): accuracy against average generated tokens."""
    return pareto.write_charts(metrics, out_dir)


def rows_by(metrics: dict, **match: Any) -> list[dict]:
    return [r for r in metrics["rows"] if all(r.get(k) == v for k, v in match.items())]
