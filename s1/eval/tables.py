"""Tables 1 / 3 / 4, the results table and the outcomes table as data (a header and rows of strings), built once.

results.md (s1.eval.report) renders them as markdown; report.md and report.html (s1.report.build) put the same
data into their Table blocks. Which runs are rows, and their names, come from the method registry
(s1.eval.methods); the paper's numbers from s1.paper_numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from s1.eval.methods import BF_CURVE, REGISTRY, method_of
from s1.paper_numbers import PAPER_PROTOCOL, TABLE1, TABLE3, TABLE4

OUTCOMES = ("answered", "forced", "no_answer", "timeout")
PAPER_COLUMNS = ("aime24", "math500", "gpqa_diamond")


@dataclass(frozen=True)
class TableData:
    header: list[str]
    rows: list[list[str]]


def markdown(t: TableData) -> str:
    """A markdown table (no trailing blank line), as results.md prints it."""
    return "\n".join(["| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
                     + ["| " + " | ".join(r) + " |" for r in t.rows])


def budget_label(r: dict) -> str:
    """A run's budget as the results table names it (the method's record says how)."""
    return method_of(r["method"]).label(r["budget"])


def is_auto(r: dict) -> bool:
    """The release's max_tokens_thinking=auto run: method auto, or bf at no cap."""
    return r["method"] == "auto" or (r["method"] == "bf" and r["budget"] is None)


NONE = "—"   # a number the run has none of (e.g. wall time in a cache written before it was recorded)


def _number(x, digits: int = 1) -> str:
    return NONE if x is None else f"{x:.{digits}f}"


def accuracy_cell(r: dict) -> str:
    """"accuracy ± stderr", or "—" and why the row has none (a confidence filter without confidences)."""
    if r.get("accuracy") is None:
        return f"{NONE} ({r['unavailable']})" if r.get("unavailable") else NONE
    return f"{r['accuracy']:.1f} ± {r['stderr']:.1f}"


def results(metrics: dict) -> TableData:
    """Every run with accuracy ± stderr, avg thinking and generated tokens per question, avg seconds and outcome
    counts (results.md's "All runs"; one accounting: docs/methods.md)."""
    return TableData(["model", "method", "budget", "benchmark", "accuracy (%)", "avg thinking tokens",
                      "avg generated tokens", "avg seconds", *OUTCOMES],
                     [[r["model"], r["method"], budget_label(r), r["benchmark"], accuracy_cell(r),
                       f"{r['avg_thinking_tokens']:.1f}", _number(r.get("avg_generated_tokens")),
                       _number(r.get("avg_seconds"), 2), *[str(r["outcomes"].get(k, 0)) for k in OUTCOMES]]
                      for r in metrics["rows"]])


def outcomes(metrics: dict) -> TableData:
    """Outcome counts per run (report.md's "Outcomes per run")."""
    return TableData(["model", "method", "budget", "benchmark", "answered", "forced", "no answer", "timeout"],
                     [[r["model"], r["method"], str(r["budget"]), r["benchmark"],
                       *[str(r["outcomes"].get(k, 0)) for k in OUTCOMES]] for r in metrics["rows"]])


def table1_settings(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Table 1's rows: setting name → benchmark → metrics row. Plain generation, auto, caps and Wait counts are
    separate rows."""
    settings: dict[str, dict[str, dict]] = {}
    for r in rows:
        m = method_of(r["method"])
        if 1 not in m.tables or m.setting is None:
            continue
        name = {"base": "base model", "trained": "trained"}.get(r["model"], r["model"]) + " " + m.setting(r["budget"])
        settings.setdefault(name, {})[r["benchmark"]] = r
    return settings


# The paper's Table 1 row each of our settings reproduces, per paper model (s1: simplescaling/s1-32B; s1.1:
# simplescaling/s1.1-32B, experiment=s1_1). The release's commands (eval/commands.sh): s1 "without budget forcing"
# is a plain generation (max_gen_toks only: our no_bf); s1.1's rows run max_tokens_thinking=auto (our auto) with 0
# or 2 Waits. s1's "with budget forcing" row states no setting (s1.paper_numbers.TABLE1_SETTINGS): its AIME24 cell
# sits beside the best point of the budget-forcing sweep (BF_BEST), its MATH500 / GPQA cells beside 2x Wait (Table
# 4's numbers). Settings the paper did not run (caps, other Wait counts, adaptive) get none.
BF_BEST = "best of the budget-forcing sweep"
S1_BF = "s1-32B with budget forcing"
TABLE1_ROWS = {
    "s1": {"base model without budget forcing": "Qwen2.5-32B-Instruct",
           "trained without budget forcing": "s1-32B without budget forcing",
           "trained with budget forcing (2× Wait)": S1_BF},
    "s1.1": {"base model without budget forcing": "Qwen2.5-32B-Instruct",
             "trained with budget forcing (auto: no cap)": "s1.1-32B without budget forcing",
             "trained with budget forcing (2× Wait)": "s1.1-32B, 2 x Wait"},
}
# (paper row, benchmarks of it) a setting shows; the rest of that row's cells are "–"
S1_BF_WAIT_COLUMNS = ("math500", "gpqa")          # = Table 4's 2x "Wait" row
S1_BF_BEST_COLUMNS = ("aime24",)                   # = Table 3's budget-forcing Performance


def protocol_mismatch(metrics: dict) -> str | None:
    """Why this run's protocol is not the paper's (greedy, n = 1: s1.paper_numbers.PAPER_PROTOCOL), or None. A run
    under another protocol (experiment=r1_protocol) shows no paper numbers at all."""
    p = metrics.get("protocol") or {}
    t = float(p.get("temperature", 0.0) or 0.0)
    n = max((int(r.get("samples_per_question", 1)) for r in metrics.get("rows", [])
             if method_of(r["method"]).budget != "votes" and r["method"] != "rejection_sampling"), default=1)
    if t != PAPER_PROTOCOL["temperature"] or n != PAPER_PROTOCOL["samples_per_question"]:
        return (f"no paper numbers: this run samples at temperature {t:g} with up to n = {n} per question; the "
                f"paper's are greedy, n = 1 (experiment=paper_s1)")
    return None


def paper_table1_row(name: str, paper_model: str = "s1") -> tuple[str, dict] | None:
    """The paper's Table 1 row that a setting reproduces for this paper model (eval.paper_model), or None."""
    key = TABLE1_ROWS.get(paper_model, {}).get(name)
    return None if key is None else (key, TABLE1[key])


def bf_best_setting(settings: dict[str, dict[str, dict]]) -> str | None:
    """The trained model's Table 1 setting with the best AIME24 accuracy among the budget-forcing sweep's points
    (caps, auto, Wait counts: Table 3's budget-forcing Performance); None without AIME24 sweep points."""
    pts = [(v["aime24"]["accuracy"], name) for name, v in settings.items()
           if "aime24" in v and v["aime24"]["model"] == "trained" and method_of(v["aime24"]["method"]).curve == BF_CURVE]
    return max(pts, key=lambda p: p[0])[1] if pts else None   # max keeps the first of equals


def paper_cells(name: str, paper_model: str, best: str | None) -> tuple[str, dict]:
    """(paper row label, benchmark → number) for one Table 1 setting; s1's BF row is split by what it equals."""
    match = paper_table1_row(name, paper_model)
    if paper_model != "s1" or (match is None or match[0] != S1_BF) and name != best:
        return (match[0], match[1]) if match else ("–", {})
    ref, labels = {}, []
    if name == best:
        ref.update({b: TABLE1[S1_BF][b] for b in S1_BF_BEST_COLUMNS})
        labels.append(f"AIME24: {BF_BEST}, as Table 3's Performance")
    if match is not None:
        ref.update({b: TABLE1[S1_BF][b] for b in S1_BF_WAIT_COLUMNS})
        labels.append("MATH500 / GPQA: = Table 4's 2× Wait")
    return f"{S1_BF} ({'; '.join(labels)})", ref


def paper_cell(ref: dict, bench: str) -> str:
    """The paper's number for a benchmark from one of its rows (its gpqa is our gpqa_diamond), or "–"."""
    v = ref.get("gpqa" if bench.startswith("gpqa") else bench)
    return "–" if v is None else f"{v:.1f}"


def table1(metrics: dict, with_n: bool = False) -> TableData:
    """Paper Table 1 layout: one row per model setting, one column per benchmark (accuracy % ± stderr), the paper's
    number beside the matching setting only (none under another protocol: protocol_mismatch). with_n: the report's
    layout (pass@1 headers, a questions × samples column)."""
    benches = sorted({r["benchmark"] for r in metrics["rows"]})
    paper_cols = [b for b in benches if b in PAPER_COLUMNS]
    if with_n:
        header = ["setting", *[f"{b} pass@1 (%)" for b in benches], "n (questions × samples)"]
    else:
        header = ["model", *benches]
    header += [*[f"paper {b}" for b in paper_cols], "paper row"]
    rows = []
    settings = table1_settings(metrics["rows"])
    paper_model = "none" if protocol_mismatch(metrics) else metrics.get("paper_model", "s1")
    best = bf_best_setting(settings) if paper_model == "s1" else None
    for name, v in settings.items():
        label, ref = paper_cells(name, paper_model, best)
        first = next(iter(v.values()))
        rows.append([name, *[f"{v[b]['accuracy']:.1f} ± {v[b]['stderr']:.1f}" if b in v else "–" for b in benches],
                     *([f"{first['questions']} × {first['samples_per_question']}"] if with_n else []),
                     *[paper_cell(ref, b) for b in paper_cols], label])
    return TableData(header, rows)


def paper_note(metrics: dict) -> str:
    """One line under Table 1: where the paper's numbers sit, or why there are none."""
    if why := protocol_mismatch(metrics):
        return why[0].upper() + why[1:] + "."
    return ("Paper numbers sit beside the one setting each describes: \"without budget forcing\" is s1's plain "
            "generation (no_bf) and s1.1's auto run; s1-32B's \"with budget forcing\" states no setting, so its "
            f"AIME24 56.7 sits beside the {BF_BEST} (= Table 3's budget-forcing Performance) and its MATH500 / GPQA "
            "beside 2× Wait (= Table 4's 2× \"Wait\" row, whose AIME24 is 53.3); caps and other Wait counts have "
            "none.")


def paper_table3_cell(s: dict) -> str:
    """The paper's Control / Scaling / Performance for this curve on AIME24, or "–": Table 3 is s1-32B's (none for
    s1.1), and its budget-forcing row describes the curve of caps plus Wait extrapolation (none for caps alone)."""
    name = method_of(s["method"]).paper_row if s["method"] in REGISTRY else None   # a curve is named by a method
    if s["benchmark"] != "aime24" or name is None or s["model"] == "base" or s.get("paper_model", "s1") != "s1" \
            or s.get("protocol_mismatch"):
        return "–"
    if s["method"] == BF_CURVE and s.get("wait_points") == 0:
        return "–"
    c, sc, p = TABLE3[name]
    return f"{c}% / {sc} / {p}"


TABLE3_PAPER_FULL = "paper (Control / Scaling / Performance)"   # results.md's header of the paper column
TABLE3_PAPER_SHORT = "paper (AIME24)"                           # report.md's


def table3(metrics: dict, paper_header: str = TABLE3_PAPER_FULL) -> TableData:
    """Paper Table 3 layout: Control / Scaling / Performance per curve (and benchmark), the paper's beside the
    matching method on AIME24 only."""
    f = (lambda x, d=1: "–" if x is None else f"{x:.{d}f}")
    return TableData(["method", "benchmark", "budgets", "[a_min, a_max]", "Control (%)", "Scaling (pts per 1k thinking tokens)",
                      "Performance (%)", paper_header],
                     [[f"{s['model']} · {s['method']}", s["benchmark"], str(s["budgets"]), str(s.get("control_range")),
                       f(s.get("control"), 0), f(s.get("scaling")), f(s.get("performance")), paper_table3_cell(s)]
                      for s in metrics["scaling"]])


def unread_note(metrics: dict) -> str:
    """Multiple-choice answers with no readable letter, per run, and how they were scored (eval.gpqa.unread); ""
    when no run is multiple choice."""
    mc = [r for r in metrics["rows"] if "unread_choices" in r and r["benchmark"].startswith("gpqa")]
    if not mc:
        return ""
    g = metrics.get("gpqa") or {}
    how = "scored as \"A\" (the release's default)" if g.get("unread") == "A" else "scored wrong"
    return (f"GPQA answers with no readable letter ({how}, eval.gpqa.unread; option order "
            f"{g.get('option_order', 'seeded')}): " + ", ".join(f"{r['model']} {r['method']} {budget_label(r)}: "
                                                              f"{r['unread_choices']}" for r in mc) + ".")


def no_fit_runs(metrics: dict) -> str:
    """Runs of a rejecting method (rejection sampling) with their questions that found no sample within the budget
    ("aime24 T=500: 2, ..."); "" when there are none."""
    return ", ".join(f"{r['benchmark']} T={r['budget']}: {r.get('no_fit_within_tries', 0)}"
                     for r in metrics["rows"] if method_of(r["method"]).rejects)


def _is_table4_string(r: dict) -> bool:
    """A Table 4 extrapolation-string row (the method's budget is the string)."""
    m = method_of(r["method"])
    return 4 in m.tables and m.budget == "string"


def table4(metrics: dict) -> TableData:
    """Paper Table 4 layout: extrapolation string (2 suppressed ends of thinking each) vs no extrapolation, which is
    budget forcing with no Wait (auto; its MATH500 / GPQA numbers are not Table 1's plain generation). No rows
    without extrapolation-string runs."""
    rows = [r for r in metrics["rows"] if _is_table4_string(r) or (is_auto(r) and r["model"] == "trained")]
    if not any(_is_table4_string(r) for r in rows):
        return TableData([], [])
    benches = sorted({r["benchmark"] for r in rows})
    w = metrics.get("extrapolation_waits", 2)
    paper_cols = [b for b in benches if b in PAPER_COLUMNS]
    by: dict[str, dict[str, dict]] = {}
    paper_key: dict[str, str | None] = {}
    for r in rows:
        name = "no extrapolation" if is_auto(r) else (
            f"{w}× without string" if r["budget"] == "none" else f'{w}× "{r["budget"]}"')
        by.setdefault(name, {})[r["benchmark"]] = r
        # the paper's row only where the setting is the paper's: 2 suppressions (or none at all)
        paper_key[name] = "no extrapolation" if is_auto(r) else (str(r["budget"]) if w == 2 else None)
    out = []
    for name, v in by.items():
        toks = [x["avg_thinking_tokens"] for x in v.values()]
        ref = TABLE4.get(paper_key[name] or "", {}) if metrics.get("paper_model", "s1") == "s1" \
            and not protocol_mismatch(metrics) else {}   # s1-32B's, greedy
        out.append([name, *[f"{v[b]['accuracy']:.1f}" if b in v else "–" for b in benches],
                    f"{sum(toks) / len(toks):.0f}", *[paper_cell(ref, b) for b in paper_cols]])
    return TableData(["setting", *[f"{b} (%)" for b in benches], "avg thinking tokens",
                      *[f"paper {b}" for b in paper_cols]], out)
