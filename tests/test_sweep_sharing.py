"""A shared budget sweep writes exactly the records of the same sweep run one setting at a time (greedy)."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from s1.cluster.pipeline import compose_stage
from s1.data.benchmarks import benchmark_name, load_benchmark
from s1.eval.cache import GenerationCache
from s1.eval.methods import plan_runs
from s1.eval.runner import run_all


@pytest.fixture(scope="module")
def chatty_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with larger random weights: varied greedy text that often writes " two" (our stop here)."""
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("chatty") / "model"
    shutil.copytree(tiny_model_dir, out)
    model = AutoModelForCausalLM.from_pretrained(out)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.5)
    model.save_pretrained(out)
    return out


def _records(tmp_path, model_dir, name, *extra):
    """The demo's sweep shape (4 caps + no cap, Wait x1/x2/x4) on 5 synthetic questions; returns the cache records."""
    cfg = compose_stage("eval", [
        "model=tiny", "model.build_tiny=null", f"model.name_or_path={model_dir}", f"eval.model_path={model_dir}",
        f"paths.runs_dir={tmp_path}", f"run.name={name}", "eval.benchmarks=[synthetic]", "eval.limit=5",
        "eval.methods=[no_bf,bf,wait]", "eval.budgets=[6,12,20,33,null]", "eval.wait_counts=[1,2,4]",
        "eval.include_base_model=false", "eval.max_new_tokens=70", "eval.batch_size=3",
        "eval.budget_forcing.answer_max_tokens=5", "eval.budget_forcing.end_of_thinking=' two'", *extra])
    e = cfg.eval
    benches = {benchmark_name(b): load_benchmark(b, cfg.paths.benchmarks_dir, e.aime_text, e.limit)
               for b in e.benchmarks}
    cache = GenerationCache(tmp_path / f"{name}.jsonl")
    made = run_all(plan_runs(cfg), benches, cache, cfg)
    cache.close()
    assert made == len(cache.records) == 5 * 8
    return cache.records


def test_shared_sweep_writes_the_one_by_one_records(tmp_path, chatty_model_dir, caplog):
    with caplog.at_level(logging.INFO, logger="s1.eval"):
        shared = _records(tmp_path, chatty_model_dir, "shared")
    assert "one shared sweep of 8 settings" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="s1.eval"):
        alone = _records(tmp_path, chatty_model_dir, "alone", "eval.sweep_sharing=false")
    assert "shared sweep" not in caplog.text
    assert shared.keys() == alone.keys()
    for key in alone:
        assert shared[key] == alone[key], key
    assert any(r["waits_used"] for r in alone.values() if r["method"] == "wait"), "waits should really happen"
    assert len({r["text"] for r in alone.values()}) > 20, "settings should differ"
