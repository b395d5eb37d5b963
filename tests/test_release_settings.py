"""The release's smaller settings under experiment=paper_s1 (issue 29, item 6): the answer reserve of
max_tokens_thinking=auto, where the forced "Wait" goes, and that paper_s1 selects them."""

from __future__ import annotations

import pytest
from fake_engine import ScriptedEngine

from s1.format import THINK
from s1.infer.budget_forcing import generate
from s1.infer.engine import Continuation


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _thinks_then_answers(r, i):
    if r.text.endswith(("<|im_start|>answer", "Final Answer:")):
        return Continuation(" \\boxed{4}", 3, "eos")
    return Continuation("so 2+2=4.", 5, "stop", "<|im_start|>")          # ends thinking itself, no newline


@pytest.mark.parametrize("on_new_line, joined", [(True, "so 2+2=4.\nWait"), (False, "so 2+2=4.Wait")])
def test_wait_placement(tok, on_new_line, joined):
    engine = ScriptedEngine(tok, _thinks_then_answers)
    (res,) = generate(engine, ["Q" + THINK], {"num_waits": 1, "wait_on_new_line": on_new_line},
                      max_new_tokens=200, progress=False)
    assert joined in res.text and res.waits_used == 1


@pytest.mark.parametrize("reserve, think_room", [(1024, 1000 - 500), (100, 1000 - 100)])
def test_answer_reserve_of_an_uncapped_run(tok, reserve, think_room):
    """No cap (auto): thinking may use the total less the reserve (at most half the total); the release leaves 100."""
    engine = ScriptedEngine(tok, _thinks_then_answers)
    generate(engine, ["Q" + THINK], {"answer_reserve": reserve}, max_new_tokens=1000, progress=False)
    assert engine.requests[0].max_new_tokens == think_room


def test_paper_s1_selects_the_releases_settings():
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        e = compose("eval", overrides=["experiment=paper_s1"]).eval
        ours = compose("eval", overrides=[]).eval
    assert e.budget_forcing.answer_reserve == 100 and e.budget_forcing.wait_on_new_line is False
    assert e.gpqa.option_order == "release" and e.gpqa.unread == "A"
    assert ours.budget_forcing.wait_on_new_line is True and ours.gpqa.unread == "wrong"


def test_harness_auto_leaves_the_release_100_tokens():
    from s1.lm_eval.gen_kwargs import AUTO_ANSWER_ROOM, plan_generation

    assert plan_generation({"max_tokens_thinking": "auto"}, 32768).bf["answer_reserve"] == AUTO_ANSWER_ROOM == 100
    assert plan_generation({"max_tokens_thinking": 4000}, 32768).bf["answer_reserve"] == 1024


def _rec(question, source_type):
    from s1.data.schema import make_record

    return make_record(question, source="pool", source_type=source_type, answer="1", solution="1",
                       thinking_trajectories=["t"], attempt="1")


def test_quality_rules_exactly_as_the_notebook():
    """filter.ipynb cell 7: images are "![Image]" only; [asy] is kept when 'AIME' (case-sensitive) is in
    source_type, so amc_aime's [asy] goes; the broad rules (default) also drop other images and keep amc_aime's."""
    from omegaconf import OmegaConf

    from s1.config import QualityConfig
    from s1.curate.quality import apply_quality_rules

    pool = [_rec("Find x. ![Image](a.png)", "AI-MO/NuminaMath-CoT/olympiads"),
            _rec("Find x. ![](https://cdn.example/fig.jpg)", "AI-MO/NuminaMath-CoT/olympiads"),
            _rec("[asy] draw((0,0)--(1,1)); [/asy] Find x.", "AI-MO/NuminaMath-CoT/amc_aime"),
            _rec("[asy] draw((0,0)--(1,1)); [/asy] Find x.", "qq8933/AIME_1983_2024")]

    def dropped(**kw):
        res = apply_quality_rules(pool, OmegaConf.structured(QualityConfig(**kw)))
        return [pool.index(r) for r, _ in sorted(res.dropped, key=lambda d: pool.index(d[0]))]

    assert dropped(notebook_exact=True) == [0, 2]
    assert dropped() == [0, 1]


def test_seed_sources_match_the_notebooks_names_exactly():
    from omegaconf import OmegaConf

    from s1.config import DiversityConfig
    from s1.curate.diversity import seed_set

    pool = [{**_rec(f"q{i}", st), "teacher_correct": True, "thinking_length": 100} for i, st in
            enumerate(["Idavidrein/gpqa", "qq8933/AIME_1983_2024", "AI-MO/NuminaMath-CoT/amc_aime", "gpqa_extended"])]
    pool.append({**_rec("long", "qfq/openaimath/Algebra"), "teacher_correct": True, "thinking_length": 6000})
    exact = OmegaConf.structured(DiversityConfig(seed_sources=["Idavidrein/gpqa", "qq8933/AIME_1983_2024"],
                                                 seed_source_match="exact", seed=0))
    assert [r["question"] for r in seed_set(pool, exact)] == ["q0", "q1", "long"]
    broad = OmegaConf.structured(DiversityConfig(seed=0))              # substrings: amc_aime and gpqa_extended too
    assert len(seed_set(pool, broad)) == 5


def _metrics(temperature, n, rows_extra=()):
    rows = [{"model": m, "model_path": "x", "method": meth, "budget": b, "benchmark": bench, "accuracy": acc,
             "stderr": 0.0, "avg_thinking_tokens": 10.0, "questions": 30, "samples_per_question": n,
             "outcomes": {"answered": 30}, "unread_choices": unread}
            for m, meth, b, bench, acc, unread in [("base", "no_bf", None, "aime24", 20.0, 0),
                                                   ("trained", "bf", 4000, "aime24", 52.0, 0),
                                                   ("trained", "wait", 2, "aime24", 45.0, 0),
                                                   ("trained", "wait", 2, "gpqa_diamond", 58.0, 3), *rows_extra]]
    return {"rows": rows, "scaling": [], "paper_model": "s1", "protocol": {"temperature": temperature},
            "control_definition": "Control: ...", "scaling_unit": "pts per 1k", "extrapolation_waits": 2,
            "gpqa": {"option_order": "release", "unread": "A"}}


def test_report_pages_place_or_withhold_the_paper_numbers(tmp_path):
    """results.md and report.md (no demo run needed): the peak row carries 56.7 and the note says why; a sampled
    protocol shows none and says why; GPQA's unread answers are counted under Table 1."""
    import json

    from s1.eval.report import write_results_md
    from s1.report.build import evaluation_section
    from s1.report.document import to_markdown

    write_results_md(_metrics(0.0, 1), tmp_path / "results.md")
    text = (tmp_path / "results.md").read_text()
    assert "best of the budget-forcing sweep" in text and "| 56.7 |" in text
    assert 'GPQA answers with no readable letter (scored as "A"' in text and "wait 2× Wait: 3" in text
    (tmp_path / "metrics.json").write_text(json.dumps(_metrics(0.6, 64)))
    page = to_markdown(evaluation_section(tmp_path), tmp_path)
    assert "No paper numbers: this run samples at temperature 0.6 with up to n = 64" in page and "56.7" not in page
