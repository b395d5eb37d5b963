"""The sampling protocol: avg@n, cons@n, unbiased pass@k, top_p in the engines, n per benchmark, experiment=r1_protocol."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
import torch

from s1.eval.sampling import (
    check_sampling_config,
    cons_at_n,
    mean_pass_at_k,
    samples_for,
    sampling_metrics,
    sampling_table,
)
from s1.runtime import ConfigError

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")

# two questions, four samples each: (extracted answer, correct)
CASE = {
    "q1": [("\\frac{1}{2}", True), ("0.5", True), ("3", False), ("3", False)],
    "q2": [("7", True), ("8", False), (None, False), ("8", False)],
}


def _records():
    return [{"question_id": q, "sample": k, "extracted": a, "correct": c}
            for q, samples in CASE.items() for k, (a, c) in enumerate(samples)]


def _brute_pass_at_k(correct: list[bool], k: int) -> float:
    """The share of all k-subsets of the samples that hold a correct one (what the estimator estimates)."""
    subsets = list(combinations(correct, k))
    return sum(any(s) for s in subsets) / len(subsets)


def test_avg_cons_and_pass_at_k_on_a_constructed_case():
    m = sampling_metrics(_records())
    assert m["n"] == 4
    assert m["avg@4"] == pytest.approx(100 * (2 / 4 + 1 / 4) / 2)          # each question's share correct, averaged
    assert m["avg@4_stderr"] == pytest.approx(100 * (2 * 0.125 ** 2) ** 0.5 / 2 ** 0.5)   # sample sd / sqrt(2)
    # string classes: q1's "3" (2 votes) beats 1/2 and 0.5 (1 each); q2's "8" wins; no question right
    assert m["cons@4"] == 0.0
    for k in (1, 2, 4):
        expect = 100 * sum(_brute_pass_at_k([c for _, c in s], k) for s in CASE.values()) / 2
        assert m[f"pass@{k}"] == pytest.approx(expect)
    assert m["pass@1"] == pytest.approx(m["avg@4"])                          # pass@1 is avg@n


def test_cons_at_n_merges_answer_classes_through_the_canonical_seam():
    same_value = {"\\frac{1}{2}": "1/2", "0.5": "1/2"}
    per_q = [([a for a, _ in s], [c for _, c in s]) for s in CASE.values()]
    # 1/2 and 0.5 are one class of 2 votes tying "3"; the class answered first wins: q1 right, q2 still wrong
    assert cons_at_n(per_q, canonical=lambda a: same_value.get(a, a)) == 50.0
    assert cons_at_n(per_q) == 0.0
    assert cons_at_n([([None, None], [False, False])]) == 0.0                # nobody answered: no vote


def test_pass_at_k_needs_no_samples_beyond_n_and_one_sample_gives_no_table():
    assert mean_pass_at_k([[False, True, False]], 3) == 100.0
    assert sampling_metrics([{"question_id": "a", "sample": 0, "extracted": "1", "correct": True}]) == {}
    rows = [{"model": "trained", "method": "no_bf", "budget": None, "benchmark": "aime24",
             **sampling_metrics(_records())}]
    table = sampling_table(rows)
    assert "| trained | no_bf | None | aime24 | 4 | 37.5 ± 12.5 | 0.0 |" in table and "@4 " in table


def _cfg(*overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("eval", overrides=list(overrides))


def test_r1_protocol_preset_and_samples_per_benchmark():
    from s1.eval.methods import plan_runs

    cfg = _cfg("experiment=r1_protocol", "eval.model_path=simplescaling/s1.1-32B")
    e = cfg.eval
    assert (e.temperature, e.top_p) == (0.6, 0.95)
    check_sampling_config(cfg)
    [spec] = plan_runs(cfg)
    assert spec.method == "no_bf" and spec.temperature == 0.6
    assert [samples_for(spec, b, cfg) for b in ("aime24", "math500", "gpqa_diamond")] == [64, 4, 8]
    greedy = _cfg("experiment=paper_s1")                       # the paper's greedy protocol beside it
    assert greedy.eval.temperature == 0.0 and greedy.eval.top_p == 1.0


@pytest.mark.parametrize("override, key", [("eval.top_p=1.5", "eval.top_p"), ("eval.top_p=0", "eval.top_p"),
                                           ("+eval.samples_per_benchmark.aime25=4", "eval.samples_per_benchmark.aime25"),
                                           ("+eval.samples_per_benchmark.aime24=0", "eval.samples_per_benchmark.aime24")])
def test_bad_sampling_settings_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        check_sampling_config(_cfg(override))
    assert key in str(err.value)


def test_top_p_in_the_cache_key_only_when_sampling(tmp_path):
    from s1.eval.methods import RunSpec
    from s1.eval.runner import generation_settings

    cfg = _cfg("eval.top_p=0.95")
    sampled = RunSpec("trained", str(tmp_path), "no_bf", temperature=0.6)
    greedy = RunSpec("trained", str(tmp_path), "no_bf")
    assert generation_settings(sampled, cfg)["top_p"] == 0.95
    assert "top_p" not in generation_settings(greedy, cfg)                  # greedy caches stay valid
    assert "top_p" not in generation_settings(sampled, _cfg())


def test_nucleus_keeps_the_smallest_head_reaching_top_p():
    from s1.infer.transformers_backend import _nucleus

    p = torch.tensor([0.2, 0.5, 0.3])
    assert _nucleus(p, 0.6).tolist() == pytest.approx([0.0, 0.5, 0.3])
    assert _nucleus(p, 0.5).tolist() == pytest.approx([0.0, 0.5, 0.0])
    assert _nucleus(p, 1.0) is p


def test_top_p_reaches_the_transformers_engine_and_reproduces(tiny_model_dir):
    from s1.infer import build_prompt, generate, load_engine

    def run(top_p, temperature, seeds):
        engine = load_engine("transformers", str(tiny_model_dir), max_context=4096, top_p=top_p)
        prompts = [build_prompt(engine.tokenizer, q) for q in ("What is 2+3?", "Name a prime.")]
        return [r.text for r in generate(engine, prompts, {"max_thinking_tokens": 12}, max_new_tokens=24,
                                         temperature=temperature, seeds=seeds, progress=False)]

    greedy = run(1.0, 0.0, [0, 1])
    assert run(1e-6, 5.0, [0, 1]) == greedy          # a tiny nucleus holds only the argmax token: greedy text
    wide = run(0.95, 5.0, [0, 1])
    assert wide != greedy and run(0.95, 5.0, [0, 1]) == wide   # sampled, and the same under the same seeds
    assert run(0.95, 5.0, [2, 3]) != wide


def test_results_md_shows_the_sampling_protocol(tmp_path):
    from s1.eval.metrics import summarize
    from s1.eval.report import CONTROL_DEFINITION, write_results_md

    recs = [{**r, "outcome": "answered", "thinking_tokens": 10, "answer_tokens": 2} for r in _records()]
    row = {"model": "trained", "model_path": "m", "method": "no_bf", "budget": None, "benchmark": "aime24",
           **summarize(recs), **sampling_metrics(recs)}
    metrics = {"rows": [row], "scaling": [], "scaling_unit": "u", "control_definition": CONTROL_DEFINITION,
               "extrapolation_waits": 2}
    md = write_results_md(metrics, tmp_path / "results.md").read_text()
    section = md.split("## Sampling protocol")[1].split("## All runs")[0]
    assert "| trained | no_bf | None | aime24 | 4 | 37.5 ± 12.5 | 0.0 | @1 37.5, @2 " in section
