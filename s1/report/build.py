"""One page per pipeline run: curation funnel, training, evaluation beside the paper, provenance.

Every number comes from the stage outputs in the run dir (curate/, train/,
eval/); a stage that has not run gets a line saying so instead of a section.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from s1 import paper_numbers as paper
from s1.cluster.status import unfinished_notes
from s1.eval import pareto, tables
from s1.report.document import Block, Heading, Image, Para, Table, to_html, to_markdown
from s1.report.provenance import file_hashes, git_commit, hardware, package_versions, sha256_file
from s1.train.memory import plan_memory

REPO = Path(__file__).resolve().parents[2]


def build_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write report.md and report.html (self-contained) into run_dir; return both paths."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run dir {run} not found: give the folder that holds curate/ train/ eval/ "
                                f"(e.g. runs/demo)")
    blocks: list[Block] = [Heading(f"s1 reproduction report: {run.name}", 1),
                           Para(f"Run directory: {run}. Generated from the stage outputs; "
                                "the paper's numbers are shown for reference.")]

    if notes := unfinished_notes(run):  # e.g. curate re-ran after train: the sections below disagree
        blocks += [Para("Not every stage is up to date with its inputs (make status RUN=... shows the same): "
                        + "; ".join(notes) + ".")]
    blocks += curation_section(run / "curate")
    blocks += training_section(run / "train")
    blocks += evaluation_section(run / "eval")
    blocks += provenance_section(run)
    md, html_path = run / "report.md", run / "report.html"
    md.write_text(to_markdown(blocks, run), encoding="utf-8")
    html_path.write_text(to_html(blocks, f"s1 report: {run.name}"), encoding="utf-8")
    return md, html_path


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _images(folder: Path, names_captions: list[tuple[str, str]]) -> list[Block]:
    return [Image(folder / n, c) for n, c in names_captions if (folder / n).exists()]


def curation_section(d: Path) -> list[Block]:
    blocks: list[Block] = [Heading("Curation")]
    funnel_path = d / "funnel.json"
    if not funnel_path.exists():
        return blocks + [Para(f"Curation has not run yet (no {funnel_path}).")]
    f = json.loads(funnel_path.read_text())
    steps, sources = f["steps"], f["sources"]
    rows = [[s["step"], *[str(s["kept_by_source"].get(src, 0)) for src in sources], str(s["kept"]),
             ", ".join(f"{k}: {v}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])) or "–"]
            for s in steps]
    blocks += [Heading("Funnel (records kept after each step, per source)", 3),
               Table(["step", *sources, "total", "dropped (reason: count)"], rows,
                     highlight={(len(rows) - 1, len(sources) + 1)}),
               Para("Paper: " + " → ".join(f"{n:,} ({name})" for name, n in paper.FUNNEL) + ".")]
    blocks += _images(d, [("funnel.png", "Funnel: records kept per step and source"),
                          ("domains.png", "Domains of the curated set"),
                          ("lengths.png", "Thinking length (tokens) of the curated set vs the pool")])
    quarantined = next((s["dropped"] for s in steps if s["step"] == "validate"), {})
    blocks += [Heading("Quarantine (invalid records, kept aside with a reason)", 3),
               Table(["reason", "records"], [[k, str(v)] for k, v in sorted(quarantined.items())] or [["none", "0"]])]
    matches = _read_jsonl(d / "decontam_matches.jsonl")
    per_bench = Counter(m.get("benchmark", "?") for m in matches)
    blocks += [Heading("Decontamination", 3),
               Para(f"{len(matches)} pool questions matched an evaluation question (word "
                    f"{f.get('ngram', 8)}-grams, or the whole text when shorter): "
                    + (", ".join(f"{b}: {n}" for b, n in per_bench.most_common()) or "none") + ".")]
    if matches:
        blocks.append(Table(["pool id", "benchmark", "benchmark item", "matched"],
                            [[str(m.get("id", "")), str(m.get("benchmark", "")), str(m.get("benchmark_id", "")),
                              str(m.get("evidence", ""))[:80]] for m in matches[:10]]))
    t = f.get("tokens", {})
    blocks += [Heading("Curated set", 3),
               Table(["questions", "domains", "thinking tokens (total)", "mean", "max", "pool mean",
                      "tokenizer"],
                     [[str(steps[-1]["kept"]), str(f.get("num_domains", "?")), f"{t.get('s1k_thinking_total', 0):,}",
                       f"{t.get('s1k_thinking_mean', 0):.0f}", f"{t.get('s1k_thinking_max', 0):,}",
                       f"{t.get('pool_thinking_mean', 0):.0f}", str(f.get("tokenizer", "?"))]])]
    return blocks


def training_section(d: Path) -> list[Block]:
    from omegaconf import OmegaConf

    blocks: list[Block] = [Heading("Training")]
    summary_path = d / "train_summary.json"
    if not (d / "config.yaml").exists():
        return blocks + [Para(f"Training has not run yet (no {d / 'config.yaml'}).")]
    cfg = OmegaConf.load(d / "config.yaml")
    t = cfg.train
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    rows, diff = [], set()
    for i, (key, ref) in enumerate(paper.HYPERPARAMETERS.items()):
        ours, shown = t.get(key), str(t.get(key))
        if key == "bf16" and ours is None and "precision" in summary:   # train.bf16=null: the machine picked
            ours = summary["precision"] == "bf16"
            shown = f"{ours} (null: {summary['precision']}, picked by the machine)"
        rows.append([key, shown, str(ref)])
        if ours != ref and not (isinstance(ref, float) and isinstance(ours, (int, float)) and abs(ours - ref) < 1e-12):
            diff.add((i, 1))
    peft = t.get("peft", "none")   # the paper fine-tuned every weight
    rows.append(["peft", str(peft) + (f" (r={t.lora.r}, alpha={t.lora.alpha})" if peft != "none" else ""), "none"])
    if peft != "none":
        diff.add((len(rows) - 1, 1))
    blocks += [Heading("Hyperparameters (differences from the paper in bold)", 3),
               Table(["key", "this run", "paper"], rows, highlight=diff),
               Para(f"Model: {cfg.model.name_or_path}; DeepSpeed: {t.get('deepspeed') or 'none'}.")]
    if not summary:
        return blocks + [Para("Training has not finished (no train_summary.json): curves below are partial.")] + \
            _training_curves(d)
    log = _read_jsonl(d / "train_log.jsonl")
    tps = [r["tokens_per_s"] for r in log if r.get("tokens_per_s")]
    mfu = [r["mfu"] for r in log if r.get("mfu") is not None]
    gpus = int(cfg.cluster.nodes) * int(cfg.cluster.gpus_per_node) if cfg.cluster.kind == "slurm" else 0
    hours = summary.get("wall_s", 0) / 3600
    blocks += [Heading("Throughput", 3),
               Table(["steps", "final train loss", "wall time", "tokens/s (mean)", "MFU (mean)", "GPU-hours",
                      "resumed from"],
                     [[str(summary.get("steps")), f"{summary.get('train_loss', float('nan')):.4f}",
                       f"{hours * 60:.1f} min",
                       f"{sum(tps) / len(tps):,.0f}" if tps else "–", f"{sum(mfu) / len(mfu):.2%}" if mfu else "–",
                       f"{hours * gpus:.1f}" if gpus else "0 (CPU run)", str(summary.get("resumed_from") or "–")]])]
    blocks += _training_curves(d)
    blocks += _memory_plan(cfg, summary)
    return blocks


def _training_curves(d: Path) -> list[Block]:
    log = _read_jsonl(d / "train_log.jsonl")
    out: list[Block] = _images(d, [("loss.png", "Training loss")])
    if log and any("lr" in r or "learning_rate" in r for r in log):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in log if "lr" in r or "learning_rate" in r]
        lrs = [r.get("lr", r.get("learning_rate")) for r in log if "lr" in r or "learning_rate" in r]
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(steps, lrs)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("learning rate")
        ax.set_title("Learning-rate schedule (warmup + cosine)")
        fig.tight_layout()
        fig.savefig(d / "lr.png", dpi=110)
        plt.close(fig)
        out.append(Image(d / "lr.png", "Learning rate per step"))
    return out


def _memory_plan(cfg, summary: dict) -> list[Block]:
    try:
        plan = plan_memory(cfg)
    except Exception as e:  # the planner needs a model config it may not reach offline
        return [Para(f"Memory plan unavailable: {e}")]
    observed = summary.get("peak_memory_gb")  # GiB reserved by the CUDA allocator on rank 0 (train_summary.json)
    rss = summary.get("peak_rss_gb")
    seen = (f"{observed:.1f} GiB reserved on rank 0" if observed is not None else
            f"no GPU (CPU run; peak resident memory {rss:.2f} GiB)" if rss else "not recorded")
    return [Heading("Memory plan", 3),
            Para(f"Planner estimate per GPU: {plan.per_gpu_gib:.1f} GiB (fits with the margin: {plan.fits}); observed peak: {seen}.")]


def evaluation_section(d: Path) -> list[Block]:
    blocks: list[Block] = [Heading("Evaluation")]
    mpath = d / "metrics.json"
    if not mpath.exists():
        return blocks + [Para(f"Evaluation has not run yet (no {mpath}).")]
    m = json.loads(mpath.read_text())
    rows = m["rows"]
    benches = sorted({r["benchmark"] for r in rows})
    order = list(m.get("benchmarks") or dict.fromkeys(r["benchmark"] for r in rows))   # eval.benchmarks order
    model_path = next((r["model_path"] for r in rows if r["model"] == "trained"), "")
    base_path = next((r["model_path"] for r in rows if r["model"] == "base"), "")
    is_paper = any(p in (model_path, base_path) for p in paper.PAPER_MODELS)
    t1 = tables.table1(m, with_n=True)
    blocks += [Heading("Table 1 layout: accuracy with and without budget forcing", 3), Table(t1.header, t1.rows)]
    if unread := tables.unread_note(m):
        blocks.append(Para(unread))
    if any(b in tables.PAPER_COLUMNS for b in benches):
        blocks.append(Para(f"Paper numbers: {m.get('paper_model', 's1')}-32B's (eval.paper_model). "
                           + tables.paper_note(m)
                           + ("" if is_paper else " Reference only: this run evaluates a different model.")))
    blocks += _images(d, [("scaling.png", "Accuracy vs average thinking tokens (budget forcing sweep)"),
                          ("figure4.png", "Figure 4 layout: sequential (budget forcing) vs parallel (majority vote) "
                                          "scaling")])
    charts = _images(d, [(name, f"Pareto ({b}): accuracy against average generated tokens per question, every "
                                f"method; the dashed line is the frontier") for name, b in pareto.embedded_charts(order)])
    if charts:
        blocks += [Heading("Pareto: accuracy against average generated tokens", 3), Para(pareto.NOTE), *charts,
                   Table(["benchmark", "setting", "avg generated tokens", "accuracy (%)"], pareto.frontier_table(m))]
    if m.get("scaling"):
        t3 = tables.table3(m, tables.TABLE3_PAPER_SHORT)
        blocks += [Heading("Table 3 layout: Control / Scaling / Performance", 3),
                   Para(f"{m.get('control_definition', '')} Scaling in {m.get('scaling_unit', '?')}."),
                   Table(t3.header, t3.rows)]
        if not tables.protocol_mismatch(m):   # the paper's are greedy, n = 1
            blocks.append(Para("Paper (AIME24, s1-32B): " + "; ".join(f"{k} {c}% / {s} / {p}"
                                                                for k, (c, s, p) in paper.TABLE3.items()) + "."))
        if no_fit := tables.no_fit_runs(m):
            blocks.append(Para("Rejection sampling (resampled until a sample fits, as the release): questions that hit "
                               "the safety limit eval.rejection_max_tries (scored wrong): " + no_fit + "."))
    if (t4 := tables.table4(m)).rows:
        blocks += [Heading("Table 4 layout: extrapolation strings (2 suppressed ends of thinking each)", 3),
                   Table(t4.header, t4.rows)]
    t = tables.outcomes(m)
    blocks += [Heading("Outcomes per run", 3), Table(t.header, t.rows)]
    return blocks


def provenance_section(run: Path) -> list[Block]:
    configs = sorted(run.glob("*/config.yaml"))
    data = [p for p in [run / "curate" / "s1k.jsonl", *sorted((REPO / "data" / "benchmarks").glob("*.jsonl"))]
            if p.exists()]
    rows = [["git commit", git_commit(REPO)]]
    rows += [[f"config {p.parent.name}/config.yaml", sha256_file(p)[:16]] for p in configs]
    rows += [[f"data {Path(p).name}", h] for p, h in file_hashes(data).items()]
    rows += [[f"package {k}", v] for k, v in package_versions().items()]
    rows += [[f"hardware {k}", v] for k, v in hardware().items()]
    return [Heading("Provenance"), Table(["what", "value (sha256 prefix for files)"], rows)]
