"""The funnel report: funnel.json, funnel.md (counts per stage × source), funnel.png, histograms."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path


def write_funnel_report(funnel, s1k: list[dict], pool_lengths: list[int], out_dir: Path,
                        extra: dict | None = None) -> dict:
    out_dir = Path(out_dir)
    sources = sorted({s for st in funnel.steps for s in st["kept_by_source"]})
    domains = Counter(r.get("domain") for r in s1k)
    lengths = [r.get("thinking_length", 0) for r in s1k]
    summary = {
        "steps": funnel.steps,
        "notes": funnel.notes,
        "sources": sources,
        "domains": dict(domains.most_common()),
        "num_domains": len(domains),
        "tokens": {"s1k_thinking_total": sum(lengths), "s1k_thinking_mean": sum(lengths) / max(1, len(lengths)),
                   "s1k_thinking_max": max(lengths, default=0),
                   "pool_thinking_mean": sum(pool_lengths) / max(1, len(pool_lengths))},
        **(extra or {}),
    }
    (out_dir / "funnel.json").write_text(json.dumps(summary, indent=2, default=str))
    (out_dir / "funnel.md").write_text(funnel_markdown(funnel.steps, sources, summary))
    _plots(funnel.steps, sources, domains, lengths, pool_lengths, out_dir)
    return summary


def funnel_markdown(steps: list[dict], sources: list[str], summary: dict) -> str:
    head = "| step | " + " | ".join(sources) + " | total | dropped (reason: count) |"
    lines = ["# Curation funnel", "", "Records kept after each step, per source.", "", head,
             "|" + "---|" * (len(sources) + 3)]
    for st in steps:
        cells = [str(st["kept_by_source"].get(s, 0)) for s in sources]
        why = ", ".join(f"{k}: {v}" for k, v in sorted(st["dropped"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {st['step']} | " + " | ".join(cells) + f" | **{st['kept']}** | {why} |")
    t = summary["tokens"]
    totals = (f"s1K: {steps[-1]['kept'] if steps else 0} questions, {summary['num_domains']} domains, "
              f"{t['s1k_thinking_total']:,} thinking tokens (mean {t['s1k_thinking_mean']:.0f}, "
              f"max {t['s1k_thinking_max']:,}; pool mean {t['pool_thinking_mean']:.0f}).")
    lines += ["", totals, "",
              "Top domains: " + ", ".join(f"{d} ({n})" for d, n in list(summary["domains"].items())[:10]), ""]
    lines += _table("Gold answers per source (how the grader's reference was found; none = only an LLM judge "
                    "reading the solution can grade it)", summary.get("notes", {}).get("gold_answers"))
    coverage = next((st["notes"]["coverage_by_source"] for st in steps
                     if st["step"] == "domains" and "notes" in st), None)
    lines += _table("Domain coverage per source (how each question got its MSC domain)", coverage)
    return "\n".join(lines)


def _table(title: str, table: dict | None) -> list[str]:
    """{row: {column: count}} as a markdown table (nothing when absent)."""
    if not table:
        return []
    cols = sorted({c for row in table.values() for c in row})
    out = [f"{title}:", "", "| source | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    out += [f"| {r} | " + " | ".join(str(v.get(c, 0)) for c in cols) + " |" for r, v in sorted(table.items())]
    return out + [""]


def _plots(steps, sources, domains, lengths, pool_lengths, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.5 * len(steps) + 1.5))
    names = [s["step"] for s in steps][::-1]
    left = [0] * len(names)
    for src in sources:
        vals = [s["kept_by_source"].get(src, 0) for s in steps][::-1]
        ax.barh(names, vals, left=left, label=src)
        left = [a + b for a, b in zip(left, vals)]
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:,}", va="center", fontsize=8)
    ax.set_xscale("symlog")
    ax.set_xlabel("records kept (log scale)")
    ax.set_title("s1K curation funnel")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "funnel.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(domains))))
    top = domains.most_common()[::-1]
    ax.barh([str(d)[:40] for d, _ in top], [n for _, n in top])
    ax.set_xlabel("questions in s1K")
    ax.set_title("domains (MSC)")
    fig.tight_layout()
    fig.savefig(out_dir / "domains.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = 40
    if pool_lengths:
        ax.hist(pool_lengths, bins=bins, alpha=0.5, density=True, label="pool after difficulty")
    if lengths:
        ax.hist(lengths, bins=bins, alpha=0.5, density=True, label="s1K")
    ax.set_xlabel("thinking length (tokens)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "lengths.png", dpi=110)
    plt.close(fig)
