"""Paper Table 6's ablations (curate.ablation): drawn from the quality-filtered 59K-shape pool with no difficulty
filter, without any reference model or judge call, with their own funnel."""

from __future__ import annotations

import json

import pytest

REPO_FIXTURE = ["+data@curate=s1_59k_fixture", "curate.decontam.benchmarks=[aime24,math500]"]


def _curate(tmp_path, monkeypatch, *overrides, name="a"):
    from hydra import compose, initialize_config_dir

    import s1.curate.difficulty as difficulty
    import s1.curate.pipeline as pipeline
    from s1.runtime import CONFIG_DIR, prepare

    def no_engine(*a, **kw):
        raise AssertionError("an ablation must not load a reference model")

    monkeypatch.setattr(difficulty, "load_engine", no_engine)                     # spy: any engine load fails
    monkeypatch.setattr(pipeline, "ChatEndpoint", lambda *a, **kw: pytest.fail("an ablation calls no LLM"))
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = prepare(compose("curate", overrides=["experiment=paper_s1", "cluster=local", "model=tiny",
                                                   "run.offline=true", f"paths.runs_dir={tmp_path}", f"run.name={name}",
                                                   *REPO_FIXTURE, *overrides]), "curate")
    pipeline.curate(cfg)
    out = tmp_path / name / "curate"
    return json.loads((out / "funnel.json").read_text()), [json.loads(x) for x in (out / "s1k.jsonl").open()]


def test_random_ablation_calls_no_engine_and_draws_the_asked_count(tmp_path, monkeypatch):
    funnel, rows = _curate(tmp_path, monkeypatch, "curate.ablation=random", "curate.diversity.num_samples=40")
    steps = [s["step"] for s in funnel["steps"]]
    assert "difficulty" not in steps and "domains" not in steps and steps[-1] == "ablation: random"
    assert len(rows) == 40 and funnel["ablation"] == "random"
    quality = next(s for s in funnel["steps"] if s["step"] == "quality")["kept"]
    assert funnel["steps"][-2]["kept"] <= quality < 335                     # the quality-filtered pool, decontaminated


def test_full_and_longest_ablations(tmp_path, monkeypatch):
    funnel, full = _curate(tmp_path, monkeypatch, "curate.ablation=full", name="f")
    assert len(full) == funnel["steps"][-2]["kept"]                          # every row after quality / decontam
    assert "difficulty" not in [s["step"] for s in funnel["steps"]]
    _, longest = _curate(tmp_path, monkeypatch, "curate.ablation=longest", "curate.diversity.num_samples=10", name="l")
    top = sorted(full, key=lambda r: (-r["thinking_length"], r["id"]))[:10]
    assert sorted(r["id"] for r in longest) == sorted(r["id"] for r in top)


def test_diverse_ablation_draws_over_domains_without_difficulty(tmp_path, monkeypatch):
    funnel, rows = _curate(tmp_path, monkeypatch, "curate.ablation=diverse", "curate.diversity.num_samples=30",
                           "curate.domains.method=labels")
    steps = [s["step"] for s in funnel["steps"]]
    assert "difficulty" not in steps and "domains" in steps and len(rows) == 30
    assert len({r["domain"] for r in rows}) > 3


def test_unknown_ablation_names_the_key(tmp_path, monkeypatch):
    from s1.runtime import ConfigError

    with pytest.raises(ConfigError, match="curate.ablation"):
        _curate(tmp_path, monkeypatch, "curate.ablation=hardest")
