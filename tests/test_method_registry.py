"""Adding an eval method is one registry record plus its function: planned, grouped into sweeps, given its Control
range, put into Table 1 / Table 3 / the results table, with no other edit (docs/architecture.md)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from s1.eval import methods
from s1.eval.methods import REGISTRY, Method, RunSpec, plan_runs
from s1.eval.report import results_table, scaling_table, table1, table3
from s1.eval.runner import sweep_groups
from s1.runtime import CONFIG_DIR, ConfigError


def _toy_runs(p: methods.Plan) -> list[RunSpec]:
    """A toy method: the trained model, thinking capped at each budget with one Wait."""
    return [RunSpec("trained", p.trained, "toy", b, max_thinking_tokens=b, num_waits=1, temperature=p.greedy,
                    samples=p.samples) for b in p.budget_lists["budgets"]]


TOY = Method("toy", "trained", ("budgets",), budget_forcing=True, budget="cap", runs=_toy_runs,
             budget_list="budgets", curve="toy", tables=(1,), label=lambda b: f"toy cap {b}",
             setting=lambda b: f"with the toy cap (T={b})")


def _cfg(*overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("eval", overrides=["eval.max_new_tokens=4096", *overrides])


def _row(spec: RunSpec, tokens: float, acc: float) -> dict:
    return {"model": spec.model, "model_path": spec.model_path, "method": spec.method, "budget": spec.budget,
            "benchmark": "aime24", "accuracy": acc, "stderr": 1.0, "avg_thinking_tokens": tokens,
            "outcomes": {"answered": 3}, "questions": 3, "samples_per_question": 1}


def test_a_registered_method_is_planned_grouped_and_tabled(monkeypatch):
    cfg = _cfg("eval.methods=[no_bf,toy]", "eval.budgets=[256,512]", "eval.include_base_model=false",
               "eval.budget_forcing.min_thinking_tokens=100")
    with pytest.raises(ConfigError, match="unknown \\['toy'\\]"):   # not registered: refused, naming the key
        plan_runs(cfg)
    monkeypatch.setitem(REGISTRY, "toy", TOY)
    runs = plan_runs(cfg)
    toy = [r for r in runs if r.method == "toy"]
    assert [(r.budget, r.max_thinking_tokens) for r in toy] == [(256, 256), (512, 512)]
    # greedy and shareable: both caps in one sweep (no_bf's plain generation has its own override, so its own group)
    assert [s.method for g in sweep_groups(runs, sharing=True) for s in g if s.method == "toy"] == ["toy", "toy"]
    assert any(g == toy for g in sweep_groups(runs, sharing=True))
    monkeypatch.setitem(REGISTRY, "toy", Method(**{**TOY.__dict__, "shares_sweep": False}))
    assert [len(g) for g in sweep_groups(runs, sharing=True) if g[0].method == "toy"] == [1, 1]

    rows = [_row(s, t, a) for s, t, a in zip(runs, [900.0, 200.0, 480.0], [20.0, 30.0, 40.0])]
    [curve] = scaling_table(rows, cfg)    # no_bf joins no curve; the toy caps make one, held to [a_min, T]
    assert curve["method"] == "toy" and curve["budgets"] == 2 and curve["control_range"] == [100, 512]
    assert [r["budget_given"] for r in rows] == [[0, 4096], [100, 256], [100, 512]]
    metrics = {"rows": rows, "scaling": [curve], "paper_model": "s1"}
    assert "| trained · toy | aime24 | 2 | [100, 512] | 100 |" in table3(metrics)
    assert "| trained with the toy cap (T=256) | 30.0 ± 1.0 |" in table1(metrics)
    assert "| trained | toy | toy cap 512 | aime24 | 40.0 ± 1.0 |" in results_table(metrics)


NEW_METHODS = ("nowait", "alphaone", "deer", "no_thinking", "cap_stop_sentence", "cap_finish_window",
               "shortest_majority", "short_m_at_k", "confidence_filter")


def test_all_plans_every_method_runnable_without_other_checkpoints():
    from s1.eval.runner import key_of, spec_settings_hash

    cfg = _cfg("experiment=demo", "eval.methods=[all]", "eval.deer.thresholds=[0.8,0.95]", "eval.selectors.k=[1,3]")
    names = methods.all_methods()
    assert set(NEW_METHODS) <= set(names) and "bf" in names and "majority" in names
    assert not {"token_conditional", "token_conditional_bf", "step_conditional", "step_conditional_bf"} & set(names)
    runs = plan_runs(cfg)
    assert {r.method for r in runs} == set(names)        # every method of `all` has runs, and nothing else
    by = {m: [r for r in runs if r.method == m] for m in NEW_METHODS}
    # sequential ones over their budgets: nowait over every cap (null too), the cap endings and AlphaOne finite caps
    caps = [b for b in cfg.eval.budgets if b is not None]     # the demo's: finite caps, then null (no cap)
    assert len(caps) >= 4 and [r.budget for r in by["nowait"]] == [*caps, None]
    assert all(dict(r.bf_overrides)["ban_words"] == tuple(cfg.eval.nowait.words) and r.num_waits == 0
               for r in by["nowait"])
    assert [(r.budget, r.max_thinking_tokens) for r in by["alphaone"]] == [(b, b) for b in caps]
    assert dict(by["alphaone"][0].bf_overrides) == {"alpha": 0.6, "alpha_p0": 0.4, "alpha_schedule": "linear",
                                                       "step_boundary": "\n"}   # the demo's
    assert [dict(r.bf_overrides)["cap_ending"] for r in by["cap_stop_sentence"] + by["cap_finish_window"]] == \
        ["stop_sentence"] * len(caps) + ["finish_window"] * len(caps)
    assert [(r.budget, dict(r.bf_overrides)["deer_threshold"]) for r in by["deer"]] == [(0.8, 0.8), (0.95, 0.95)]
    # parallel ones: one run of max(k) samples at the sampling temperature
    assert [(r.samples, r.temperature, r.bf_overrides) for r in by["no_thinking"]] == [(8, 1.0, (("no_thinking", True),))]
    sel = [by[m][0] for m in ("shortest_majority", "short_m_at_k", "confidence_filter")]
    assert {(r.samples, r.samples_of, r.bf_overrides) for r in sel} == {(3, "selectors", (("record_confidence", True),))}
    # ... which share one cache key per (question, sample): the samples are generated once for the three
    cfg.eval.model_path = cfg.model.name_or_path = "Qwen/Qwen2.5-0.5B-Instruct"   # a hub name: no folder needed
    row = {"id": "q1", "problem": "1+1?"}
    keys = {key_of(s, "synthetic", row, 2, spec_settings_hash(s, cfg)) for s in sel}
    assert len(keys) == 1
    # new methods never share a greedy sweep (their rules act per sequence)
    assert all(len(g) == 1 for g in sweep_groups(runs, sharing=True) if g[0].method in NEW_METHODS)
    # `all` with a name beside it: each once
    assert methods.expand_methods(["bf", "all", "token_conditional"]) == ["bf", *[n for n in names if n != "bf"],
                                                                          "token_conditional"]


def test_method_settings_defaults_are_the_rules_defaults():
    from s1.infer.budget_forcing import DEFAULTS
    from s1.infer.cap_endings import STOP_SENTENCE
    from s1.infer.nowait import DEFAULT_WORDS

    e = _cfg().eval
    assert tuple(e.nowait.words) == DEFAULT_WORDS and e.cap_sentence == STOP_SENTENCE
    assert e.alphaone.step_boundary == e.deer.step_boundary == DEFAULTS["step_boundary"]


def test_the_demo_steps_at_a_newline_for_alphaone_and_deer_only():
    # a synthetic trace has no blank line: with the default boundary AlphaOne never inserts and DEER never peeks
    runs = plan_runs(_cfg("experiment=demo", "eval.methods=[bf,alphaone,deer]"))
    boundary = {r.method: dict(r.bf_overrides).get("step_boundary") for r in runs if r.method != "no_bf"}
    assert boundary == {"bf": None, "alphaone": "\n", "deer": "\n"}
    assert {dict(r.bf_overrides)["trial_answer_tokens"] for r in runs if r.method == "deer"} == {8}


@pytest.mark.parametrize("key,value", [
    ("eval.nowait.words", "[]"), ("eval.alphaone.alpha", "1.5"), ("eval.alphaone.p0", "-0.1"),
    ("eval.alphaone.schedule", "cosine"), ("eval.deer.thresholds", "[0.9,1.2]"), ("eval.deer.trial_answer_tokens", "0"),
    ("eval.alphaone.step_boundary", "''"), ("eval.deer.step_boundary", "''"),
    ("eval.no_thinking.k", "[0,2]"), ("eval.selectors.k", "[]"), ("eval.selectors.m", "0"),
    ("eval.selectors.keep", "0"), ("eval.cap_sentence", "' '"), ("eval.cap_window", "2.0")])
def test_bad_method_settings_name_key_value_and_fix(key, value):
    from s1.eval.checks import check_eval_config

    cfg = _cfg("eval.methods=[all]", "eval.budgets=[64]", f"{key}={value}")
    with pytest.raises(ConfigError, match=key.replace(".", "\\.")) as err:
        plan_runs(cfg)
    assert "give" in str(err.value)   # the fix
    with pytest.raises(ConfigError, match=key.replace(".", "\\.")):
        check_eval_config(cfg)          # before any model is loaded


def test_capped_methods_need_a_numeric_budget():
    with pytest.raises(ConfigError, match="alphaone"):
        plan_runs(_cfg("eval.methods=[alphaone]", "eval.budgets=[null]"))
    assert [r.budget for r in plan_runs(_cfg("eval.methods=[nowait]", "eval.budgets=[null]",
                                             "eval.include_base_model=false"))] == [None]
