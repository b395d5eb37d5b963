"""Model work of curation with the tiny model: reference answers (resume from cache), teacher traces over HTTP,
and one `scripts/curate.py` run end to end."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import run_script
from fake_engine import spy_on_batches
from omegaconf import OmegaConf

from s1.config import DifficultyConfig, ModelConfig, TracesConfig
from s1.curate.difficulty import add_reference_answers, keep_if_unsolved
from s1.data.synthetic import generate_pool


def model_cfg(path):
    return OmegaConf.structured(ModelConfig(name_or_path=str(path), dtype="float32", max_context=4096))


@pytest.mark.slow
def test_killed_difficulty_run_resumes_without_regenerating(tiny_model_dir, tmp_path, monkeypatch):
    import s1.curate.difficulty as difficulty  # the stage's own name for the engine loader

    pool = [r for r in generate_pool(40, seed=3, flaws=False)]
    pool = list({r["id"]: r for r in pool}.values())
    cfg = OmegaConf.structured(DifficultyConfig(max_new_tokens=6, batch_size=8, temperature=0.0))
    die_after = 2

    def kill_after(sizes):  # dies when the batch after the die_after-th starts
        if die_after and len(sizes) > die_after:
            raise KeyboardInterrupt("killed")

    calls = spy_on_batches(monkeypatch, difficulty, kill_after)
    with pytest.raises(KeyboardInterrupt):
        add_reference_answers([dict(r) for r in pool], cfg, model_cfg(tiny_model_dir), tmp_path)
    assert calls == [8, 8, 8]
    cache_file = next(tmp_path.glob("*.jsonl"))
    assert len(cache_file.read_text().splitlines()) == 16
    die_after, calls[:] = 0, []
    resumed = add_reference_answers([dict(r) for r in pool], cfg, model_cfg(tiny_model_dir), tmp_path)
    assert sum(calls) == len(pool) - 16                   # only the questions the killed run never finished
    calls[:] = []
    fresh = add_reference_answers([dict(r) for r in pool], cfg, model_cfg(tiny_model_dir), tmp_path / "fresh")
    assert [r["reference_correct"] for r in resumed] == [r["reference_correct"] for r in fresh]
    rows = {json.loads(x)["key"]: json.loads(x) for x in cache_file.read_text().splitlines()}
    fresh_rows = {json.loads(x)["key"]: json.loads(x) for x in next((tmp_path / "fresh").glob("*.jsonl")).read_text()
                  .splitlines()}
    assert {k: v["response"] for k, v in rows.items()} == {k: v["response"] for k, v in fresh_rows.items()}
    # a record a reference model solved is dropped, with the model named
    resumed[0]["reference_correct"] = {str(tiny_model_dir): True}
    result = keep_if_unsolved(resumed)
    assert [why for _, why in result.dropped] == [f"solved_by:{tiny_model_dir.name}"]


@pytest.mark.slow
def test_teacher_traces_over_a_real_local_http_server(tiny_model_dir, tmp_path, monkeypatch, caplog):
    from s1.curate.traces import generate_traces
    from s1.infer import load_engine
    from s1.infer.server import serve_in_thread

    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("TEACHER_KEY", secret)
    engine = load_engine("transformers", str(tiny_model_dir), dtype="float32")
    pool = [dict(r, thinking_trajectories=[], attempt="") for r in generate_pool(6, seed=5, flaws=False)]
    caplog.set_level(logging.DEBUG)
    for reasoning in ("field", "tags"):
        server, url = serve_in_thread(engine, "tiny", api_key=secret, reasoning=reasoning, fail_first=2, think_tokens=24,
                                      answer_tokens=8)
        try:
            cfg = OmegaConf.structured(TracesConfig(enabled=True, base_url=url, model="tiny", api_key_env="TEACHER_KEY",
                                                    concurrency=2, max_retries=3, backoff_s=0.05,
                                                    rate_limit_per_s=50, max_tokens=64,
                                                    temperature=1.0))  # the random tiny model greedily writes only newlines
            recs = [dict(r, thinking_trajectories=[], attempt="") for r in pool]
            generate_traces(recs, cfg, tmp_path / reasoning)
            assert server.stats["failed"] == 2 and server.stats["served"] == len(pool)   # 429s were retried
            assert all(r["thinking_trajectories"][0] and r["attempt"] is not None for r in recs)
            assert not any("<think>" in r["thinking_trajectories"][0] or "</think>" in r["attempt"] for r in recs)
            served = server.stats["requests"]
            again = [dict(r, thinking_trajectories=[], attempt="") for r in pool]
            generate_traces(again, cfg, tmp_path / reasoning)                            # resumed from the cache
            assert server.stats["requests"] == served
            assert [r["thinking_trajectories"] for r in again] == [r["thinking_trajectories"] for r in recs]
        finally:
            server.shutdown()
    files = "".join(p.read_text() for p in tmp_path.rglob("*.jsonl"))
    assert secret not in files and secret not in caplog.text


@pytest.mark.slow
def test_curate_script_end_to_end_and_rerun(tiny_model_dir, tmp_path):
    args = ["experiment=demo", "model=tiny", f"paths.runs_dir={tmp_path}", "run.name=c",
            "curate.sources.0.size=600", "curate.diversity.num_samples=150", "curate.difficulty.max_new_tokens=4"]
    run_script("curate.py", *args)
    out = tmp_path / "c" / "curate"
    funnel = json.loads((out / "funnel.json").read_text())
    steps = {s["step"]: s for s in funnel["steps"]}
    assert steps["load"]["kept"] == 600
    for s in funnel["steps"][1:]:
        assert s["in"] == s["kept"] + sum(s["dropped"].values())
    chain = [s["kept"] for s in funnel["steps"]]
    assert all(a == b["in"] for a, b in zip(chain, funnel["steps"][1:]))
    rows = [json.loads(x) for x in (out / "s1k.jsonl").read_text().splitlines()]
    assert len(rows) == 150 and {"question", "thinking_trajectories", "attempt", "domain", "thinking_length",
                                 "id", "source", "answer"} <= set(rows[0])
    assert len((out / "dropped.jsonl").read_text().splitlines()) == 600 - 150 - steps["validate"]["in"] + \
        steps["validate"]["kept"]
    assert (out / "quarantine.jsonl").read_text() and (out / "funnel.png").stat().st_size > 1000
    import datasets

    assert len(datasets.load_from_disk(str(out / "s1k"))) == 150
    assert "| step |" in (out / "funnel.md").read_text()
    cache = next((out / "cache" / "reference").glob("*.jsonl"))
    n_cached = len(cache.read_text().splitlines())
    proc = run_script("curate.py", *args)                      # rerun: every answer comes from the cache
    assert "answers 0 questions" in proc.stdout + proc.stderr
    assert len(cache.read_text().splitlines()) == n_cached
    assert [json.loads(x)["id"] for x in (out / "s1k.jsonl").read_text().splitlines()] == [r["id"] for r in rows]
