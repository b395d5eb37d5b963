"""Eval stage: metrics by hand, the stage end to end on the tiny model, and resume after a hard kill."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_script, untimed

from s1.eval.metrics import majority_correct, pass_at_1, pass_at_k, scaling_metrics, summarize


def test_pass_at_1_mean_and_standard_error():
    acc, se = pass_at_1([[True, False], [True, True], [False, False]])
    assert acc == pytest.approx(50.0)
    assert se == pytest.approx(100 * math.sqrt(((0.5 - 0.5) ** 2 + 0.5 ** 2 + 0.5 ** 2) / 2 / 3))


def test_pass_at_k_and_majority():
    assert pass_at_k(4, 0, 2) == 0.0 and pass_at_k(4, 3, 2) == 1.0
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert majority_correct(["5", "6", "5", None], [True, False, True, False])
    assert not majority_correct(["6", "5", "6"], [False, True, False])
    assert not majority_correct([None, None], [False, False])


def test_scaling_metrics_match_the_definitions():
    pts = [(100.0, 10.0), (200.0, 30.0), (400.0, 20.0)]
    m = scaling_metrics(pts, a_min=100, a_max=300)
    assert m["control"] == pytest.approx(100 * 2 / 3)
    slopes = [(30 - 10) / 100, (20 - 10) / 300, (20 - 30) / 200]      # per token
    assert m["scaling"] == pytest.approx(1000 * sum(slopes) / 3)      # per 1,000 tokens
    assert m["performance"] == 30.0


def test_summarize_counts_outcomes_and_votes():
    recs = [{"question_id": q, "sample": k, "correct": c, "extracted": a, "outcome": o, "thinking_tokens": t, "answer_tokens": 2}
            for q, k, c, a, o, t in [("a", 0, True, "1", "answered", 10), ("a", 1, False, "2", "forced", 20),
                                     ("b", 0, False, None, "no_answer", 30), ("b", 1, False, "3", "answered", 40)]]
    s = summarize(recs)
    assert s["accuracy"] == pytest.approx(25.0) and s["avg_thinking_tokens"] == 25
    assert s["outcomes"] == {"answered": 2, "forced": 1, "no_answer": 1, "timeout": 0}
    assert s["maj@2"] == pytest.approx(50.0) and s["pass@2"] == pytest.approx(50.0)


COMMON = ["model=tiny", "eval.benchmarks=[synthetic]", "eval.limit=6", "eval.budgets=[4,16]",
          "eval.max_new_tokens=40", "eval.batch_size=1", "eval.budget_forcing.answer_max_tokens=6",
          "eval.budget_forcing.num_waits=1"]


def _eval_args(tmp, tiny_model_dir, name):
    return [*COMMON, f"paths.runs_dir={tmp}", f"run.name={name}", f"eval.model_path={tiny_model_dir}",
            f"model.name_or_path={tiny_model_dir}"]


def eval_here(args: list[str]) -> dict:
    """The eval stage in this process; the kill-and-resume part below runs the entry point itself."""
    from s1 import shards
    from s1.cluster.pipeline import compose_stage
    from s1.eval.stage import evaluate

    cfg = compose_stage("eval", args)
    shards.begin(cfg, "eval")
    return evaluate(cfg)


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.slow
def test_eval_stage_end_to_end_and_resume_after_kill(tmp_path, tiny_model_dir, capsys):
    # one uninterrupted run with the paper's baselines
    args = _eval_args(tmp_path, tiny_model_dir, "full") + [
        ("eval.methods=[no_bf,bf,wait,extrapolation_strings,token_conditional_prompt,step_conditional_prompt_bf,"
        "class_conditional,rejection_sampling,majority]"), "eval.majority_k=[1,2]", "eval.rejection_max_tries=2",
        "eval.tokens_per_step=4", "eval.wait_counts=[1]", "eval.extrapolation_strings=[Wait,'']"]
    eval_here(args)
    out = tmp_path / "full" / "eval"
    for f in ("config.yaml", "generations.jsonl", "metrics.json", "results.md", "scaling.png", "figure4.png"):
        assert (out / f).exists(), f
    metrics = json.loads((out / "metrics.json").read_text())
    methods = {(r["model"], r["method"]) for r in metrics["rows"]}
    assert {("base", "no_bf"), ("trained", "no_bf"), ("trained", "bf"), ("trained", "token_conditional_prompt"),
            ("trained", "step_conditional_prompt_bf"), ("trained", "class_conditional"),
            ("trained", "rejection_sampling"), ("base", "majority"), ("trained", "wait"),
            ("trained", "extrapolation_strings")} <= methods
    bf_control = next(s for s in metrics["scaling"] if s["method"] == "bf")
    # the paper's BF curve: caps 4 and 16 plus 1x Wait (given only the total, 40); each run within its own budget
    assert bf_control["budgets"] == 3 and bf_control["wait_points"] == 1
    assert bf_control["control_range"] == [0, 40] and bf_control["control"] == 100.0
    bf_rows = {r["budget"]: r for r in metrics["rows"] if r["method"] == "bf"}
    assert bf_rows[4]["avg_thinking_tokens"] <= 4 and bf_rows[16]["avg_thinking_tokens"] <= 16
    assert all(sum(r["outcomes"].values()) == 6 * r["samples_per_question"] for r in metrics["rows"]
               if r["method"] != "majority")
    assert "| model | method | budget |" in capsys.readouterr().out   # the table is printed
    md = (out / "results.md").read_text()
    assert "Table 1" in md and "Table 3" in md and "Table 4" in md and "Control" in md and "Wait" in md
    assert (out / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    # rerun: nothing generated, same metrics (re-scored from the cache)
    lines_before = len(_lines(out / "generations.jsonl"))
    eval_here(args)
    again = json.loads((out / "metrics.json").read_text())
    assert again["generated_this_run"] == 0 and again["rows"] == metrics["rows"]
    assert len(_lines(out / "generations.jsonl")) == lines_before

    # kill -9 mid-run, resume: no key generated twice, final metrics identical to an uninterrupted run
    small = _eval_args(tmp_path, tiny_model_dir, "a")
    eval_here(small)
    killed = _eval_args(tmp_path, tiny_model_dir, "b")
    gen = tmp_path / "b" / "eval" / "generations.jsonl"
    p = subprocess.Popen([sys.executable, str(REPO / "scripts" / "eval.py"), *killed], cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not gen.exists() or len(gen.read_text().splitlines()) < 8):
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    n_killed = len(gen.read_text().splitlines())
    total = len(_lines(tmp_path / "a" / "eval" / "generations.jsonl"))
    assert 8 <= n_killed < total, "the kill should land mid-run"
    run_script("eval.py", *killed)
    recs = _lines(gen)
    keys = [(r["model"], r["benchmark"], r["question_id"], r["method"], r["budget"], r["sample"], r["settings"])
            for r in recs]
    assert len(keys) == len(set(keys)) == total
    resumed = json.loads((tmp_path / "b" / "eval" / "metrics.json").read_text())
    full = json.loads((tmp_path / "a" / "eval" / "metrics.json").read_text())
    assert resumed["generated_this_run"] == total - n_killed
    assert untimed(resumed["rows"]) == untimed(full["rows"]) and resumed["scaling"] == full["scaling"]


def test_bad_config_names_key_and_fix(tmp_path, tiny_model_dir):
    proc = run_script("eval.py", *_eval_args(tmp_path, tiny_model_dir, "bad"), "eval.backend=tgi", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]  # a config error: one line, exit 2
    assert "eval.backend='tgi'" in proc.stderr and "transformers" in proc.stderr


def test_check_eval_config_refuses_missing_checkpoint_and_bad_budgets(tmp_path):
    from hydra import compose, initialize_config_dir

    from s1.eval.checks import check_eval_config
    from s1.eval.methods import plan_runs
    from s1.runtime import CONFIG_DIR, ConfigError

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("eval", overrides=[f"eval.model_path={tmp_path}/nothing", f"paths.runs_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="eval.model_path.*make train"):
        check_eval_config(cfg)
    cfg.eval.model_path = "simplescaling/s1-32B"   # a hub name is fine
    check_eval_config(cfg)
    cfg.eval.budgets = [0]
    with pytest.raises(ConfigError, match="eval.budgets"):
        check_eval_config(cfg)
    cfg.eval.budgets = [None]
    cfg.eval.methods = ["token_conditional"]
    with pytest.raises(ConfigError, match="numeric budgets"):
        plan_runs(cfg)
    cfg.eval.methods = ["beam"]
    with pytest.raises(ConfigError, match="eval.methods"):
        plan_runs(cfg)
    cfg.eval.budgets = [100]
    cfg.eval.paper_model = "s2"
    with pytest.raises(ConfigError, match="eval.paper_model='s2'.*s1.1"):
        check_eval_config(cfg)


# ---- Control, majority and the methods as the paper defines them -------------------------------------------------

def _compose(*overrides):
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("eval", overrides=list(overrides))


def _run_row(model, method, budget, tokens, acc=30.0):
    return {"model": model, "method": method, "budget": budget, "benchmark": "aime24", "accuracy": acc,
            "avg_thinking_tokens": float(tokens)}


def test_control_holds_each_run_to_its_own_budget():
    """The paper's Table 3: token-conditional control scores 40% because the model overshoots the budget it was
    told; held to the sweep's largest budget (the old rule) the same runs would score 100%."""
    from s1.eval.report import scaling_table

    cfg = _compose("eval.max_new_tokens=32768", "eval.tokens_per_step=100")
    told = [1024, 2048, 4096, 8192, 16384]
    rows = [_run_row("token_model", "token_conditional", b, t) for b, t in zip(told, [6000, 6500, 7000, 7500, 8000])]
    [tc] = scaling_table(rows, cfg)
    assert tc["control"] == pytest.approx(40.0) and tc["control_range"] == [0, 16384]
    assert scaling_metrics([(r["avg_thinking_tokens"], r["accuracy"]) for r in rows], 0, 16384)["control"] == 100.0
    assert [r["budget_given"] for r in rows] == [[0, b] for b in told]
    # step-conditional: steps x tokens_per_step; 16 steps = 1600 tokens overshot, 64 steps = 6400 kept
    rows = [_run_row("step_model", "step_conditional", 16, 2000), _run_row("step_model", "step_conditional", 64, 3000)]
    assert scaling_table(rows, cfg)[0]["control"] == 50.0
    # budget forcing: caps always hold; a minimum (min_thinking_tokens) is an a_min an undershooting run misses
    cfg_min = _compose("eval.max_new_tokens=32768", "eval.budget_forcing.min_thinking_tokens=600")
    rows = [_run_row("trained", "bf", 500, 480), _run_row("trained", "bf", 1000, 700),
            _run_row("trained", "wait", 2, 9000)]
    [bf] = scaling_table(rows, cfg_min)
    assert bf["control"] == pytest.approx(100 * 2 / 3) and bf["budgets"] == 3 and bf["wait_points"] == 1
    assert [r["budget_given"] for r in rows] == [[600, 500], [600, 1000], [600, 32768]]


def test_class_conditional_control_uses_its_documented_range():
    from s1.eval.report import scaling_table

    rows = [_run_row("trained", "auto", "auto", 4000), _run_row("trained", "class_conditional", "short", 4500),
            _run_row("trained", "class_conditional", "long", 6000)]
    # default: short at most, long at least the unprompted (auto) run: the short prompt overshot -> 50%
    cc = next(s for s in scaling_table(rows, _compose()) if s["method"] == "class_conditional")
    assert cc["control"] == 50.0
    ranged = _compose("+eval.class_ranges={short: [0, 5000], long: [5000, null]}")
    cc = next(s for s in scaling_table([dict(r) for r in rows], ranged) if s["method"] == "class_conditional")
    assert cc["control"] == 100.0


def test_majority_votes_over_equivalent_spellings():
    # raw strings: "C" would win 2 votes to 1; as answers, B was given three times
    assert majority_correct(["B", "C", "(B)", "C", "B) 7"], [True, False, True, False, True])
    assert majority_correct(["016", "15", "16", "15", "\\boxed{16}"], [True, False, True, False, True])
    assert majority_correct(["\\frac12", "0.3", "0.5", "0.3", "1/2"], [True, False, True, False, True])
    assert not majority_correct(["\\frac13", "0.5", "1/3"], [False, True, False])
    assert majority_correct([None, None, "7"], [False, False, True])


def test_no_bf_is_plain_generation_and_auto_its_own_method():
    from s1.eval.methods import plan_runs

    cfg = _compose("eval.methods=[no_bf,auto,bf,rejection_sampling,token_conditional_prompt,step_conditional_prompt]",
                   "eval.budgets=[100,200,null]", "eval.include_base_model=false", "eval.tokens_per_step=50",
                   "eval.rejection_budgets=[350,160]", "eval.token_budgets=[2048]")
    runs = {}
    for r in plan_runs(cfg):
        runs.setdefault(r.method, []).append(r)
    [plain] = runs["no_bf"]
    assert plain.bf({})["plain_generation"] is True and plain.max_thinking_tokens is None
    [auto] = runs["auto"]
    assert auto.budget == "auto" and auto.max_thinking_tokens is None and not dict(auto.bf_overrides)
    assert [r.budget for r in runs["bf"]] == [100, 200]              # auto is its own method: no bf at null
    assert [(r.budget, r.max_thinking_tokens, r.accept_max_thinking) for r in runs["rejection_sampling"]] == [
        (160, 161, 160), (350, 351, 350)]                            # the release: cap T + 1, keep <= T
    assert [r.instruction for r in runs["token_conditional_prompt"]] == ["Think for up to 2048 tokens."]
    assert [r.budget for r in runs["step_conditional_prompt"]] == [2, 4]   # eval.budgets / tokens_per_step
    with pytest.raises(Exception, match="eval.rejection_budgets"):
        plan_runs(_compose("eval.methods=[rejection_sampling]", "eval.rejection_budgets=[0]"))


def test_paper_s1_takes_the_releases_budget_lists_and_strings():
    from s1.eval.methods import plan_runs

    cfg = _compose("experiment=paper_s1", "eval.model_path=simplescaling/s1-32B",
                   "eval.step_conditional_model=simplescaling/step-conditional-control",
                   "eval.token_conditional_model=simplescaling/token-conditional-control",
                   "eval.methods=[rejection_sampling,token_conditional,token_conditional_bf,step_conditional_bf]")
    runs = {}
    for r in plan_runs(cfg):
        runs.setdefault(r.method, []).append(r)
    assert [r.budget for r in runs["rejection_sampling"]] == [3500, 4000, 5000, 6000, 8000, 16000]
    assert all(r.temperature == 1.0 for r in runs["rejection_sampling"])
    assert [r.budget for r in runs["token_conditional"]] == [2048, 4096, 8192, 16384]
    assert [r.max_thinking_tokens for r in runs["token_conditional_bf"]] == [2048, 4096, 8192, 16384]
    assert [r.budget for r in runs["step_conditional_bf"]] == [16, 32, 64, 128, 256]
    assert runs["step_conditional_bf"][0].instruction == "Think for up to 16 steps."
    bf = cfg.eval.budget_forcing
    assert (bf.think_prefix, bf.end_of_thinking, bf.answer_prefix, bf.answer_prefix_after_end) == (
        "<|im_start|>think", "<|im_start|>", "<|im_start|>answer\nFinal Answer:", "<|im_start|>answer")
