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
