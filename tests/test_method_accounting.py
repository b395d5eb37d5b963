"""One accounting for every method (issue 32): generated tokens and seconds in every metrics row, parallel rows per
k from the method's selector, the results table's columns, and the Pareto charts."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from s1.eval import pareto
from s1.eval.methods import RunSpec
from s1.eval.metrics import summarize
from s1.eval.report import _parallel_rows, write_results_md
from s1.eval.tables import results


def _rec(q, k, answer, correct, think, ans, secs=None, conf=None):
    r = {"question_id": q, "sample": k, "extracted": answer, "correct": correct, "thinking_tokens": think,
         "answer_tokens": ans, "outcome": "answered", "waits_used": 0}
    if secs is not None:
        r["seconds"] = secs
    if conf is not None:
        r["confidence"] = conf
    return r


# two questions x four samples: (answer, correct, thinking tokens, answer tokens, seconds, confidence)
Q1 = [("5", True, 30, 5, 3.0, -0.2), ("6", False, 10, 5, 1.0, -0.9), ("6", False, 20, 5, 2.0, -1.0),
      ("5", True, 40, 5, 4.0, -0.1)]
Q2 = [("2", True, 8, 2, 1.0, -0.5), (None, False, 50, 10, 5.0, -3.0), ("3", False, 6, 2, 0.5, -0.05),
      ("2", True, 12, 2, 1.5, -0.4)]
E = OmegaConf.create({"selectors": {"k": [1, 2, 4], "m": 2, "keep": 0.5}, "majority_k": [1, 2, 4]})


def _recs(with_conf=True, with_secs=True):
    return [_rec(q, k, a, c, t, n, s if with_secs else None, f if with_conf else None)
            for q, rows in (("q1", Q1), ("q2", Q2)) for k, (a, c, t, n, s, f) in enumerate(rows)]


def _spec(method):
    return RunSpec("trained", "m", method, None, temperature=1.0, samples=4,
                   samples_of=None if method == "majority" else "selectors")


def test_summarize_reports_generated_tokens_and_seconds():
    s = summarize(_recs())
    assert s["avg_generated_tokens"] == pytest.approx((35 + 15 + 25 + 45 + 10 + 60 + 8 + 14) / 8)
    assert s["avg_seconds"] == pytest.approx((3 + 1 + 2 + 4 + 1 + 5 + 0.5 + 1.5) / 8)
    assert summarize(_recs(with_secs=False))["avg_seconds"] is None     # a cache from before wall time was kept
    partly = _recs()
    del partly[0]["seconds"]
    assert summarize(partly)["avg_seconds"] == pytest.approx((1 + 2 + 4 + 1 + 5 + 0.5 + 1.5) / 7)


def test_short_m_at_k_rows_by_hand():
    rows = {r["budget"]: r for r in _parallel_rows(_spec("short_m_at_k"), "b", _recs(), E)}
    assert sorted(rows) == [1, 2, 4] and all(r["method"] == "short_m_at_k" for r in rows.values())
    # k=1 (m=1): each question's only sample: q1 "5" right (35 tokens, 3 s), q2 "2" right (10 tokens, 1 s)
    assert (rows[1]["accuracy"], rows[1]["avg_generated_tokens"], rows[1]["avg_seconds"]) == (100.0, 22.5, 2.0)
    # k=2 (m=2): q1 "5"(35) vs "6"(15) tie -> shorter "6", wrong; cost 50, 3 s. q2 "2" vs no answer -> right;
    # cost 70, 5 s
    assert (rows[2]["accuracy"], rows[2]["avg_generated_tokens"], rows[2]["avg_seconds"]) == (50.0, 60.0, 4.0)
    # k=4, m=2: q1 finishers 15, 25 ("6", "6") -> wrong, every sample stops at 25: 25+15+25+25 = 90, slowest 2 s;
    # q2 finishers 8 ("3"), 10 ("2") tie -> shorter "3", wrong; stop at 10: 10+10+8+10 = 38, slowest 1 s
    assert (rows[4]["accuracy"], rows[4]["avg_generated_tokens"], rows[4]["avg_seconds"]) == (0.0, 64.0, 1.5)
    assert rows[4]["avg_thinking_tokens"] == 4 * (30 + 10 + 20 + 40 + 8 + 50 + 6 + 12) / 8   # k x thinking


def test_majority_and_confidence_filter_rows_by_hand():
    maj = {r["budget"]: r for r in _parallel_rows(_spec("majority"), "b", _recs(), E)}
    # k=4: q1 "5" x2 vs "6" x2 -> first answered "5", right; q2 "2" x2 -> right; cost = all tokens (120, 92),
    # wall time = the slowest sample (4 s, 5 s)
    assert (maj[4]["accuracy"], maj[4]["avg_generated_tokens"], maj[4]["avg_seconds"]) == (100.0, 106.0, 4.5)
    conf = {r["budget"]: r for r in _parallel_rows(_spec("confidence_filter"), "b", _recs(), E)}
    # k=4, keep 0.5: q1 keeps -0.1 ("5") and -0.2 ("5") -> right; q2 keeps -0.05 ("3"), -0.4 ("2"):
    # weights e^-0.05 > e^-0.4 -> "3", wrong
    assert (conf[4]["accuracy"], conf[4]["avg_generated_tokens"]) == (50.0, 106.0)
    # without confidences the row says why instead of a number, and the table shows it
    none = _parallel_rows(_spec("confidence_filter"), "b", _recs(with_conf=False), E)
    assert all(r["accuracy"] is None and "no confidence" in r["unavailable"] for r in none)
    assert results({"rows": none}).rows[0][4].startswith("— (2 of 2 samples have no confidence")   # k=1


def _row(bench, method, budget, tokens, acc, secs=None):
    return {"model": "trained", "model_path": "m", "method": method, "budget": budget, "benchmark": bench,
            "accuracy": acc, "stderr": 0.0, "avg_thinking_tokens": tokens, "avg_generated_tokens": tokens + 5,
            "avg_seconds": secs, "outcomes": {"answered": 2}, "questions": 2, "samples_per_question": 1}


def test_results_table_has_the_accounting_columns():
    t = results({"rows": [_row("a", "bf", 64, 60.0, 50.0, 1.234), _row("a", "nowait", 32, 30.0, 40.0)]})
    assert t.header[4:8] == ["accuracy (%)", "avg thinking tokens", "avg generated tokens", "avg seconds"]
    assert t.rows[0][4:8] == ["50.0 ± 0.0", "60.0", "65.0", "1.23"]
    assert t.rows[1][2] == "T=32" and t.rows[1][6:8] == ["35.0", "—"]   # no wall time recorded: "—"


def test_pareto_charts_for_two_benchmarks_and_the_frontier(tmp_path):
    rows = [_row("b1", "bf", 16, 10.0, 20.0), _row("b1", "bf", 64, 60.0, 50.0), _row("b1", "nowait", 16, 12.0, 40.0),
            _row("b1", "majority", 4, 200.0, 45.0), _row("b2", "deer", 0.9, 30.0, 10.0),
            {**_row("b2", "confidence_filter", 2, 80.0, None), "unavailable": "no confidence"}]
    metrics = {"benchmarks": ["b1", "b2"], "rows": rows}
    written = pareto.write_charts(metrics, tmp_path)
    assert sorted(p.name for p in written) == ["pareto.png", "pareto_b1.png", "pareto_b2.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
    assert (tmp_path / "pareto.png").read_bytes() == (tmp_path / "pareto_b1.png").read_bytes()   # the first
    # b1's frontier by generated tokens (+5 each): bf 16 (15, 20), nowait 16 (17, 40), bf 64 (65, 50); majority is
    # dominated; b2's only point with an accuracy is deer's
    assert pareto.frontier_table(metrics) == [["b1", "trained · bf 16", "15.0", "20.0"],
                                              ["b1", "trained · nowait T=16", "17.0", "40.0"],
                                              ["b1", "trained · bf 64", "65.0", "50.0"],
                                              ["b2", "trained · deer p≥0.9", "35.0", "10.0"]]
    md = write_results_md({**metrics, "scaling": [], "scaling_unit": "", "control_definition": ""},
                          tmp_path / "results.md").read_text()
    assert "![Pareto b1](pareto_b1.png)" in md and "![Pareto b2](pareto_b2.png)" in md
    assert "| b1 | trained · nowait T=16 | 17.0 | 40.0 |" in md


@pytest.mark.slow
def test_eval_stage_runs_every_method_of_all_on_the_tiny_model(tmp_path, tiny_model_dir):
    """`eval.methods=[all]` end to end (2 questions, small budgets): a row for every method, the accounting columns,
    pareto.png, and the selectors' one shared sample set generated once. Until the rules are wired into the
    controller (the budget-forcing keys of docs/methods_interface §1) this checks structure, not their effects."""
    import json

    from s1 import shards
    from s1.cluster.pipeline import compose_stage
    from s1.eval.methods import SELECTOR_SAMPLES, all_methods
    from s1.eval.stage import evaluate

    args = ["model=tiny", "eval.benchmarks=[synthetic]", "eval.limit=2", "eval.budgets=[4,16]",
            "eval.max_new_tokens=40", "eval.batch_size=8", "eval.budget_forcing.answer_max_tokens=6",
            "eval.budget_forcing.num_waits=1", "eval.methods=[all]", "eval.majority_k=[1,2]", "eval.no_thinking.k=[1,2]",
            "eval.selectors.k=[1,3]", "eval.deer.thresholds=[0.5,0.9]", "eval.wait_counts=[1]",
            "eval.extrapolation_strings=[Wait]", "eval.rejection_max_tries=2", "eval.tokens_per_step=4",
            f"paths.runs_dir={tmp_path}", "run.name=all", f"eval.model_path={tiny_model_dir}",
            f"model.name_or_path={tiny_model_dir}"]
    cfg = compose_stage("eval", args)
    shards.begin(cfg, "eval")
    metrics = evaluate(cfg)
    out = tmp_path / "all" / "eval"
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG" and not list(out.glob("pareto_*.png"))
    rows = metrics["rows"]
    assert {r["method"] for r in rows} == set(all_methods())
    parallel = ("majority", "no_thinking", "shortest_majority", "short_m_at_k", "confidence_filter")
    for r in rows:
        if r["method"] not in parallel:   # thinking (peeks included) + answer per question
            assert r["avg_generated_tokens"] == pytest.approx(r["avg_thinking_tokens"] + r["avg_answer_tokens"]), r
        assert r["avg_generated_tokens"] > 0 and (r["avg_seconds"] is None or r["avg_seconds"] >= 0)
        assert r["accuracy"] is not None, r     # confidence_filter too: the transformers engine records confidences
    for m in ("no_thinking", "shortest_majority", "short_m_at_k", "confidence_filter"):
        assert sorted(r["budget"] for r in rows if r["method"] == m) == ([1, 2] if m == "no_thinking" else [1, 3])
    curves = {s["method"] for s in metrics["scaling"]}
    assert {"nowait", "alphaone", "deer", "cap_stop_sentence", "cap_finish_window"} <= curves   # Table 3 rows
    recs = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines()]
    assert sum(r["method"] == SELECTOR_SAMPLES for r in recs) == 2 * 3     # 2 questions x max(k) = 3, once
    assert not {"shortest_majority", "short_m_at_k", "confidence_filter"} & {r["method"] for r in recs}
    # the rules act through the runs' overrides: each method's defining property in its records
    assert all(r["confidence"] is not None and r["confidence"] <= 0 for r in recs if r["method"] == SELECTOR_SAMPLES)
    assert all(r["thinking_tokens"] == 0 for r in recs if r["method"] == "no_thinking")
    assert all("Okay, I think I have finished thinking." in r["text"] for r in recs if r["method"] == "no_thinking")
    for r in recs:
        if r["method"] == "nowait":
            thinking = r["text"].split("<|im_start|>answer")[0]
            assert not any(w in thinking for w in cfg.eval.nowait.words), r["text"]
        if r["method"] == "cap_stop_sentence" and r["outcome"] == "forced":
            assert cfg.eval.cap_sentence in r["text"]
    md = (out / "results.md").read_text()
    assert "![Pareto synthetic](pareto.png)" in md and "| avg generated tokens | avg seconds |" in md
    assert all(f"| {m} |" in md for m in all_methods())
