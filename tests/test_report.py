"""make report on the demo run: every section and figure, a real browser render, and partial runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import requires

from s1.report.build import build_report

ARTIFACTS = Path(os.environ.get("S1_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".cache" / "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


@pytest.fixture(scope="module")
def report(demo_run):
    md, html = build_report(demo_run)
    return demo_run, md.read_text(), html.read_text()


def test_report_has_every_section_from_the_stage_outputs(report):
    run, md, _ = report
    for heading in ("## Curation", "### Funnel", "### Quarantine", "### Decontamination", "### Curated set",
                    "## Training", "### Hyperparameters", "### Throughput", "## Evaluation",
                    "### Table 1 layout", "### Table 3 layout", "### Outcomes per run", "## Provenance"):
        assert heading in md, heading
    assert "has not run yet" not in md
    # numbers come from the outputs, not from text typed into the report
    s1k = sum(1 for _ in open(run / "curate" / "s1k.jsonl"))
    assert f"| diversity | {s1k} | **{s1k}** |" in md
    assert "| learning_rate | 0.003 | **1e-05** |" not in md and "| learning_rate | **0.003** | 1e-05 |" in md
    assert "| epochs | 5 |" not in md  # the demo's epochs (18) differ from the paper's 5 and are marked
    assert re.search(r"\| trained without budget forcing \| \d+\.\d ± \d+\.\d \| 300 × 1 \|", md)
    for png in ("curate/funnel.png", "curate/domains.png", "curate/lengths.png", "train/loss.png",
                "train/lr.png", "eval/scaling.png", "eval/figure4.png", "eval/pareto.png"):
        assert f"]({png})" in md, png


def test_html_is_self_contained(report):
    _, md, html = report
    assert html.count("src='data:image/png;base64,") == md.count("![")
    assert "src='http" not in html and "<link" not in html


@requires("chromium", None if CHROMIUM else "chromium not on PATH (the Debian package chromium; .ci/run sets it up)")
def test_report_renders_with_its_images_in_a_real_browser(report, tmp_path):
    run, md, _ = report
    url = (run / "report.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *profile, "--virtual-time-budget=10000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120).stdout
    n = md.count("![")
    assert f'data-images-ok="{n}/{n}"' in dom, dom[:500]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, *profile, "--window-size=1200,2400", f"--screenshot={shot}", url],
                   capture_output=True, timeout=120)
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[0] == 2400 and pixels.std() > 0.05  # a rendered page, not a blank one


def test_partial_run_names_the_missing_stages(demo_run, tmp_path):
    shutil.copytree(demo_run / "curate", tmp_path / "partial" / "curate")
    md, _ = build_report(tmp_path / "partial")
    text = md.read_text()
    assert "### Funnel" in text
    assert "Training has not run yet" in text and "Evaluation has not run yet" in text


def test_missing_run_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run dir .* not found: give the folder"):
        build_report(tmp_path / "nope")


@pytest.mark.slow
def test_eval_section_pairs_paper_numbers_and_shows_tables_3_4_and_figure4(tmp_path, tiny_model_dir):
    from conftest import REPO, run_script

    gpqa = REPO / "tests" / "data" / "gpqa_sample.csv"
    run_script("eval.py", "model=tiny", f"eval.benchmarks=[synthetic,{gpqa}]", "eval.limit=2", "eval.budgets=[4,16]",
               "eval.max_new_tokens=24", "eval.batch_size=8", "eval.budget_forcing.answer_max_tokens=4",
               "eval.methods=[no_bf,bf,wait,extrapolation_strings,majority]", "eval.wait_counts=[1]",
               "eval.majority_k=[1,2]", "eval.extrapolation_strings=[Wait,'']", f"paths.runs_dir={tmp_path}",
               "run.name=r", f"eval.model_path={tiny_model_dir}", f"model.name_or_path={tiny_model_dir}")
    md, _ = build_report(tmp_path / "r")
    text = md.read_text()
    header = next(ln for ln in text.splitlines() if ln.startswith("| setting | gpqa_sample pass@1"))
    assert header.endswith("| paper row |")       # synthetic / a 4-question GPQA file are not the paper's sets
    assert "### Table 4 layout" in text and '| 2× "Wait" |' in text and "| 2× without string |" in text
    assert "| trained with budget forcing (1× Wait) |" in text and "](eval/figure4.png)" in text
    assert re.search(r"\| trained with budget forcing \(T=4\) \|.*\| – \|$", text, re.M)
    assert "THAT run was given" in text                    # Control's definition beside Table 3
    # the Pareto charts: two benchmarks, one file each (pareto.png is the first's) in the report and results.md
    eval_dir = tmp_path / "r" / "eval"
    assert {p.name for p in eval_dir.glob("pareto*.png")} == {"pareto.png", "pareto_synthetic.png",
                                                              "pareto_gpqa_sample.png"}
    assert "](eval/pareto_synthetic.png)" in text and "](eval/pareto_gpqa_sample.png)" in text
    assert "### Pareto: accuracy against average generated tokens" in text
    assert "![Pareto gpqa_sample](pareto_gpqa_sample.png)" in (eval_dir / "results.md").read_text()


def test_table4_sets_the_papers_numbers_beside_its_own_settings_only():
    from s1.eval.tables import table4

    def row(method, budget, acc):
        return {"method": method, "model": "trained", "benchmark": "aime24", "budget": budget, "accuracy": acc,
                "avg_thinking_tokens": 100.0}

    # "no extrapolation" is budget forcing with no Wait (auto), not the plain generation (no_bf)
    rows = [row("auto", "auto", 40.0), row("no_bf", None, 35.0), row("extrapolation_strings", "Wait", 45.0),
            row("extrapolation_strings", "none", 30.0)]
    t = table4({"rows": rows, "extrapolation_waits": 2})
    header, out = t.header, t.rows
    assert header == ["setting", "aime24 (%)", "avg thinking tokens", "paper aime24"]
    assert {r[0]: r[-1] for r in out} == {"no extrapolation": "50.0", '2× "Wait"': "53.3", "2× without string": "50.0"}
    out3 = table4({"rows": rows, "extrapolation_waits": 3}).rows   # not the paper's setting: no paper number
    assert {r[0]: r[-1] for r in out3} == {"no extrapolation": "50.0", '3× "Wait"': "–", "3× without string": "–"}



def _t1_row(model, method, budget, acc):
    return {"model": model, "method": method, "budget": budget, "benchmark": "aime24", "accuracy": acc, "stderr": 0.0,
            "avg_thinking_tokens": 10.0, "questions": 30, "samples_per_question": 1}


T1_ROWS = [_t1_row("base", "no_bf", None, 20.0), _t1_row("trained", "no_bf", None, 40.0),
           _t1_row("trained", "auto", "auto", 42.0), _t1_row("trained", "bf", 500, 30.0),
           _t1_row("trained", "wait", 1, 44.0), _t1_row("trained", "wait", 2, 45.0),
           _t1_row("trained", "adaptive", 4, 46.0)]


def _paper_rows(paper_model):
    from s1.eval.report import table1

    lines = table1({"rows": T1_ROWS, "paper_model": paper_model}).splitlines()[2:]
    return {ln.split(" | ")[0].strip("| "): ln.rsplit(" | ", 1)[1].strip(" |") for ln in lines}


def test_paper_numbers_sit_beside_the_one_setting_they_describe_for_s1():
    assert _paper_rows("s1") == {
        "base model without budget forcing": "Qwen2.5-32B-Instruct",
        "trained without budget forcing": "s1-32B without budget forcing",          # plain generation
        "trained with budget forcing (auto: no cap)": "–",
        "trained with budget forcing (T=500)": "–",
        "trained with budget forcing (1× Wait)": "–",
        "trained with budget forcing (2× Wait)": "s1-32B with budget forcing (AIME24: best of the budget-forcing "
                                                  "sweep, as Table 3's Performance; MATH500 / GPQA: = Table 4's 2× Wait)",
        "trained with adaptive Wait (≤4×, peeks counted)": "–"}   # adaptive (46.0) is not on the sweep


def _paper_table(rows, **extra):
    from s1.eval.tables import table1

    t = table1({"rows": rows, "paper_model": "s1", **extra})
    return {r[0]: dict(zip(t.header, r)) for r in t.rows}


def test_table1_bf_cell_sits_beside_the_sweeps_peak_not_beside_2x_wait():
    """Table 1's s1-32B BF AIME24 (56.7) is Table 3's Performance: beside the best point of the sweep (here a cap),
    never beside 2x Wait (whose paper AIME24 is Table 4's 53.3); its MATH500 / GPQA equal Table 4's 2x Wait."""
    rows = [_t1_row("trained", "bf", 500, 30.0), _t1_row("trained", "bf", 4000, 52.0),
            _t1_row("trained", "wait", 2, 45.0), _t1_row("base", "no_bf", None, 20.0)]
    rows += [{**_t1_row("trained", "wait", 2, 90.0), "benchmark": "math500"}]
    out = _paper_table(rows)
    peak, wait2 = out["trained with budget forcing (T=4000)"], out["trained with budget forcing (2× Wait)"]
    assert peak["paper aime24"] == "56.7" and "best of the budget-forcing sweep" in peak["paper row"]
    assert wait2["paper aime24"] == "–" and wait2["paper math500"] == "93.0"
    assert out["trained with budget forcing (T=500)"]["paper aime24"] == "–"


def test_another_protocol_shows_no_paper_numbers():
    """experiment=r1_protocol (temperature 0.6, n = 64): no s1 numbers in Tables 1, 3, 4, one line saying why."""
    from s1.eval.tables import paper_note, paper_table3_cell, protocol_mismatch, table4

    rows = [{**_t1_row("trained", "no_bf", None, 40.0), "samples_per_question": 64},
            _t1_row("base", "no_bf", None, 20.0)]
    out = _paper_table(rows, protocol={"temperature": 0.6})
    assert all(c == "–" for r in out.values() for k, c in r.items() if k.startswith("paper"))
    m = {"rows": rows, "protocol": {"temperature": 0.6}}
    assert "temperature 0.6" in protocol_mismatch(m) and "n = 64" in paper_note(m)
    assert protocol_mismatch({"rows": [_t1_row("base", "no_bf", None, 20.0)], "protocol": {"temperature": 0.0}}) is None
    bf = {"model": "trained", "method": "bf", "benchmark": "aime24", "wait_points": 4, "paper_model": "s1"}
    assert paper_table3_cell({**bf, "protocol_mismatch": True}) == "–"
    t4 = table4({"rows": [{"method": "extrapolation_strings", "model": "trained", "benchmark": "aime24",
                           "budget": "Wait", "accuracy": 45.0, "avg_thinking_tokens": 100.0}],
                 "extrapolation_waits": 2, "paper_model": "s1", "protocol": {"temperature": 0.6}})
    assert t4.rows[0][-1] == "–"


def test_paper_numbers_for_an_s1_1_model_are_s1_1s():
    from s1.eval.tables import paper_table3_cell, table4

    assert _paper_rows("s1.1") == {
        "base model without budget forcing": "Qwen2.5-32B-Instruct",
        "trained without budget forcing": "–",                                      # s1.1 ran auto, not plain
        "trained with budget forcing (auto: no cap)": "s1.1-32B without budget forcing",
        "trained with budget forcing (T=500)": "–",
        "trained with budget forcing (1× Wait)": "–",
        "trained with budget forcing (2× Wait)": "s1.1-32B, 2 x Wait",
        "trained with adaptive Wait (≤4×, peeks counted)": "–"}
    bf = {"model": "trained", "method": "bf", "benchmark": "aime24", "wait_points": 4}
    assert paper_table3_cell({**bf, "paper_model": "s1"}) == "100% / 15 / 56.7"
    assert paper_table3_cell({**bf, "paper_model": "s1.1"}) == "–"          # Table 3 is s1-32B's
    assert paper_table3_cell({**bf, "paper_model": "s1", "wait_points": 0}) == "–"   # caps alone: not that curve
    rows = [{"method": "extrapolation_strings", "model": "trained", "benchmark": "aime24", "budget": "Wait",
             "accuracy": 45.0, "avg_thinking_tokens": 100.0}]
    out = table4({"rows": rows, "extrapolation_waits": 2, "paper_model": "s1.1"}).rows
    assert out[0][-1] == "–"


def test_s1_1_experiment_selects_s1_1_numbers():
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        assert compose("eval", overrides=["experiment=s1_1"]).eval.paper_model == "s1.1"
        assert compose("eval", overrides=["experiment=paper_s1"]).eval.paper_model == "s1"


def test_training_table_shows_the_precision_the_machine_picked_and_the_adapter(report, tmp_path):
    """train.bf16=null is resolved by the machine (train_summary.json's precision), and a LoRA run is marked as one."""
    import json
    import shutil

    from omegaconf import OmegaConf

    from s1.report.build import training_section
    from s1.report.document import to_markdown

    run, _, _ = report
    train = shutil.copytree(run / "train", tmp_path / "train", ignore=shutil.ignore_patterns("final", "checkpoint-*"))
    cfg = OmegaConf.load(train / "config.yaml")
    cfg.train.bf16, cfg.train.peft, cfg.train.lora.r, cfg.train.lora.alpha = None, "lora", 16, 32
    OmegaConf.save(cfg, train / "config.yaml")
    summary = json.loads((train / "train_summary.json").read_text())
    (train / "train_summary.json").write_text(json.dumps({**summary, "precision": "float32", "peft": "lora"}))
    md = to_markdown(training_section(train), tmp_path)
    assert "| bf16 | **False (null: float32, picked by the machine)** | True |" in md, md
    assert "| peft | **lora (r=16, alpha=32)** | none |" in md
    assert "| peft | none | none |" in (run / "report.md").read_text()   # the demo: a full fine-tune, not marked
