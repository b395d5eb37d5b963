"""make demo end to end on CPU: curate → train → eval with budget forcing; the tiny model really learns."""

from __future__ import annotations

import json


def _rows(run):
    return json.loads((run / "eval" / "metrics.json").read_text())["rows"]


def test_curation_made_s1k_and_a_funnel(demo_run):
    s1k = [json.loads(line) for line in open(demo_run / "curate" / "s1k.jsonl")]
    assert len(s1k) == 1000
    funnel = json.loads((demo_run / "curate" / "funnel.json").read_text())
    assert funnel["steps"][0]["kept"] == 4000 and funnel["steps"][-1]["kept"] == 1000
    assert (demo_run / "curate" / "funnel.md").exists() and (demo_run / "curate" / "funnel.png").exists()


def test_training_lowered_the_loss(demo_run):
    log = [json.loads(line) for line in open(demo_run / "train" / "train_log.jsonl")]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.3 * losses[0], losses
    assert (demo_run / "train" / "final" / "model.safetensors").exists()


def test_trained_model_beats_the_untrained_one_on_held_out_questions(demo_run):
    rows = _rows(demo_run)
    base = next(r for r in rows if r["model"] == "base")
    trained = next(r for r in rows if r["model"] == "trained" and r["method"] == "no_bf")
    assert base["questions"] == trained["questions"] == 300
    assert trained["accuracy"] > base["accuracy"] + 30, (base["accuracy"], trained["accuracy"])
    assert trained["accuracy"] > 50


def test_accuracy_grows_with_the_thinking_budget(demo_run):
    bf = sorted((r for r in _rows(demo_run) if r["method"] == "bf" and r["budget"] is not None),
                key=lambda r: r["budget"])
    assert len(bf) >= 3
    for r in bf:  # budget forcing keeps thinking within the cap
        assert r["avg_thinking_tokens"] <= r["budget"] + 1e-9
    acc = [r["accuracy"] for r in bf]
    assert acc[-1] > acc[0] + 20, acc
    assert (demo_run / "eval" / "scaling.png").exists() and (demo_run / "eval" / "results.md").exists()
