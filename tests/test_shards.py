"""Shards of the model stages (cluster.shards=K) on the tiny model: sharded equals unsharded field by field,
a changed K re-splits without recomputing, conflicting duplicates are refused, a SIGKILLed shard resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, untimed
from fake_engine import spy_on_batches
from omegaconf import OmegaConf

from s1 import shards
from s1.cache import GenerationCache, JsonlCache, Shard, ShardConflictError, cache_files, record_key, set_shard
from s1.config import DifficultyConfig, ModelConfig


@pytest.fixture(autouse=True)
def unsharded_after():
    yield
    set_shard(None)


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_duplicate_keys_with_different_results_are_refused(tmp_path):
    base = tmp_path / "ref.jsonl"
    _write(base.with_name("ref.shard-0.jsonl"), [{"key": "q1", "response": "A"}, {"key": "q2", "response": "B"}])
    _write(base.with_name("ref.shard-1.jsonl"), [{"key": "q1", "response": "A"}])   # a re-run: identical, fine
    assert JsonlCache(base).data == {"q1": {"response": "A"}, "q2": {"response": "B"}}
    _write(base.with_name("ref.shard-2.jsonl"), [{"key": "q2", "response": "C"}])   # a different result
    with pytest.raises(ShardConflictError, match=r"cache key q2 .*ref\.shard-0\.jsonl.*ref\.shard-2\.jsonl"):
        JsonlCache(base)

    rec = {"model": "m", "benchmark": "b", "question_id": "1", "method": "bf", "budget": 4, "sample": 0,
           "settings": "s", "text": "x"}
    gens = tmp_path / "generations.jsonl"
    _write(gens, [rec])
    _write(gens.with_name("generations.shard-1.jsonl"), [rec | {"text": "y"}])
    with pytest.raises(ShardConflictError, match="question_id|\"1\""):
        GenerationCache(gens)


def test_a_shard_writes_only_its_own_file_and_an_update_goes_where_the_key_is(tmp_path):
    base = tmp_path / "c.jsonl"
    set_shard(Shard(1, 3))
    JsonlCache(base).put_many({"a": {"v": 1}})
    set_shard(Shard(2, 3))
    cache = JsonlCache(base)
    assert cache.get("a") == {"v": 1}                  # read from shard 1's file
    cache.put_many({"a": {"v": 1, "graded": True}, "b": {"v": 2}})
    assert [p.name for p in cache_files(base)] == ["c.shard-1.jsonl", "c.shard-2.jsonl"]
    assert JsonlCache(base).data == {"a": {"v": 1, "graded": True}, "b": {"v": 2}}
    assert '"b"' not in (tmp_path / "c.shard-1.jsonl").read_text()
    assert '"a"' not in (tmp_path / "c.shard-2.jsonl").read_text()


def test_bad_shard_index_names_the_key():
    cfg = OmegaConf.create({"cluster": {"shards": 3, "shard": 3}})
    with pytest.raises(Exception, match="cluster.shard"):
        shards.this_shard(cfg)


# --- the difficulty stage's reference answers ---------------------------------------------------------------

@pytest.fixture
def counted_generations(monkeypatch):
    """A spy on the real engine: how many questions each call of the difficulty stage generated."""
    import s1.curate.difficulty as difficulty  # the stage's own name for the engine loader

    return spy_on_batches(monkeypatch, difficulty)


@pytest.mark.slow
def test_three_shard_difficulty_equals_unsharded_and_a_changed_k_recomputes_nothing(tiny_model_dir, tmp_path,
                                                                                     counted_generations):
    from s1.curate.difficulty import add_reference_answers
    from s1.data.synthetic import generate_pool

    pool = list({r["id"]: r for r in generate_pool(30, seed=4, flaws=False)}.values())
    cfg = OmegaConf.structured(DifficultyConfig(max_new_tokens=8, batch_size=4, temperature=0.0))
    model = OmegaConf.structured(ModelConfig(name_or_path=str(tiny_model_dir), dtype="float32", max_context=4096))

    def run(folder, shard):
        set_shard(shard)
        part = shards.owned([dict(r) for r in pool], lambda r: str(r["id"]), shard)
        counted_generations.clear()
        out = add_reference_answers(part, cfg, model, folder)
        return out, sum(counted_generations)

    fresh, n = run(tmp_path / "one", None)
    assert n == len(pool)
    fresh_cache = JsonlCache(next((tmp_path / "one").glob("*.jsonl")))

    # three shards from scratch, then the merge: nothing generated, every field equal
    sizes = [run(tmp_path / "three", Shard(i, 3))[1] for i in range(3)]
    assert sum(sizes) == len(pool) and all(sizes)
    merged, n = run(tmp_path / "three", None)
    assert n == 0
    assert [r["reference_correct"] for r in merged] == [r["reference_correct"] for r in fresh]
    base = tmp_path / "three" / fresh_cache.path.name       # the merge wrote nothing: the shard files hold it all
    assert not base.exists()
    assert JsonlCache(base).data == fresh_cache.data   # response, tokens, stop reason, verdict: field by field

    # K=2, only shard 0 ran; then K=3: the three shards do only what shard 0 of 2 did not
    _, first = run(tmp_path / "k", Shard(0, 2))
    again = [run(tmp_path / "k", Shard(i, 3))[1] for i in range(3)]
    assert 0 < first < len(pool) and sum(again) == len(pool) - first
    files = list((tmp_path / "k").glob("*.shard-*.jsonl"))
    keys = [json.loads(x)["key"] for f in files for x in f.read_text().splitlines()]
    assert len(set(keys)) == len(pool)                # each key generated once (a verdict line may follow it)
    merged, n = run(tmp_path / "k", None)
    assert n == 0 and [r["reference_correct"] for r in merged] == [r["reference_correct"] for r in fresh]
    assert JsonlCache(tmp_path / "k" / base.name).data == fresh_cache.data


def stage_here(stage: str, overrides: list[str]) -> dict:
    """The stage function (curate(), evaluate()) in this process: the entry point is not what these tests are about."""
    from s1.cluster.pipeline import compose_stage
    from s1.curate.pipeline import curate
    from s1.eval.stage import evaluate

    cfg = compose_stage(stage, overrides)
    shards.begin(cfg, stage)
    return (curate if stage == "curate" else evaluate)(cfg)


def curate_here(overrides: list[str]) -> dict:
    return stage_here("curate", overrides)


@pytest.mark.slow
def test_three_shard_curate_stage_equals_unsharded(tmp_path):
    small = ["experiment=demo", f"paths.runs_dir={tmp_path}", "curate.sources.0.size=200",
             "curate.diversity.num_samples=48"]
    curate_here([*small, "run.name=one"])
    sharded = [*small, "run.name=three", "cluster.shards=3"]
    kept = [curate_here([*sharded, f"cluster.shard={i}"])["kept"] for i in range(3)]
    one, three = tmp_path / "one" / "curate", tmp_path / "three" / "curate"
    assert not (three / "s1k.jsonl").exists() and sum(kept) > 48   # shards stop before diversity
    curate_here(sharded)                                           # the merge
    assert (three / "s1k.jsonl").read_text() == (one / "s1k.jsonl").read_text()
    assert json.loads((three / "funnel.json").read_text()) == json.loads((one / "funnel.json").read_text())
    reference = next((one / "cache" / "reference").glob("*.jsonl"))
    assert not (three / "cache" / "reference" / reference.name).exists()   # the merge generated nothing
    assert JsonlCache(three / "cache" / "reference" / reference.name).data == JsonlCache(reference).data


# --- evaluation ------------------------------------------------------------------------------------------------

EVAL = ["model=tiny", "eval.benchmarks=[synthetic]", "eval.limit=9", "eval.budgets=[4,16]", "eval.max_new_tokens=40",
        "eval.batch_size=2", "eval.budget_forcing.answer_max_tokens=6", "eval.budget_forcing.num_waits=1",
        "eval.methods=[no_bf,bf,wait]", "eval.wait_counts=[1]"]


def eval_args(tmp: Path, model: Path, name: str) -> list[str]:
    return [*EVAL, f"paths.runs_dir={tmp}", f"run.name={name}", f"eval.model_path={model}",
            f"model.name_or_path={model}"]


def evaluate_here(overrides: list[str]) -> dict:
    return stage_here("eval", overrides)


def generations(out: Path) -> dict[str, dict]:
    return {record_key(r): untimed(r) for f in cache_files(out / "generations.jsonl")
            for r in map(json.loads, f.read_text().splitlines())}


def valid_lines(path: Path) -> int:
    from s1.cache import read_lines

    return len(read_lines(path)[0])


def same_metrics(a: dict, b: dict) -> bool:
    drop = ("generated_this_run",)
    return untimed({k: v for k, v in a.items() if k not in drop}) == untimed({k: v for k, v in b.items() if k not in drop})


@pytest.fixture(scope="module")
def unsharded_eval(tiny_model_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unsharded")
    metrics = evaluate_here(eval_args(tmp, tiny_model_dir, "one"))
    set_shard(None)
    return generations(tmp / "one" / "eval"), metrics


@pytest.mark.slow
def test_three_shard_eval_equals_unsharded(tiny_model_dir, tmp_path, unsharded_eval):
    args = eval_args(tmp_path, tiny_model_dir, "three") + ["cluster.shards=3"]
    made = [evaluate_here([*args, f"cluster.shard={i}"])["generated_this_run"] for i in range(3)]
    out = tmp_path / "three" / "eval"
    assert not (out / "metrics.json").exists()        # shards stop before metrics: the merge's work
    assert sum(map(bool, made)) >= 2 and sorted(p.name for p in out.glob("shards/done-*")) == [f"done-{i}-of-3.json" for i in range(3)]
    metrics = evaluate_here(args)                      # the merge
    records, expected = unsharded_eval
    assert metrics["generated_this_run"] == 0 and sum(made) == len(records)
    assert generations(out) == records                 # every record, every field
    assert same_metrics(metrics, expected)
    progress = json.loads((out / "shards" / "progress-1.json").read_text())
    assert progress["step"] == "generations" and progress["done"] == progress["total"] == made[1]


@pytest.mark.slow
def test_sigkilled_shard_then_resume_finishes_only_the_missing_keys(tiny_model_dir, tmp_path, unsharded_eval):
    args = eval_args(tmp_path, tiny_model_dir, "killed") + ["cluster.shards=3", "cluster.local_parallel=1"]
    out = tmp_path / "killed" / "eval"
    mine = out / "generations.shard-1.jsonl"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    parent = subprocess.Popen([sys.executable, str(REPO / "scripts" / "eval.py"), *args], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, killed = time.monotonic() + 300, None
    while time.monotonic() < deadline and parent.poll() is None and killed is None:
        if mine.exists() and mine.read_text().count("\n") >= 1:
            killed = json.loads((out / "shards" / "progress-1.json").read_text())["pid"]
            os.kill(killed, signal.SIGKILL)            # shard 1's process, mid-run
        time.sleep(0.01)
    assert killed, "shard 1 never started writing"
    _, err = parent.communicate(timeout=600)
    assert parent.returncode == 1 and "shard(s) 1 (exit -9) failed" in err, err[-2000:]
    assert not (out / "metrics.json").exists()
    before = {f.name: valid_lines(f) for f in cache_files(out / "generations.jsonl")}
    records, expected = unsharded_eval
    assert sorted(before) == [f"generations.shard-{i}.jsonl" for i in range(3)]
    assert before["generations.shard-1.jsonl"] < len(records) - before["generations.shard-0.jsonl"] \
        - before["generations.shard-2.jsonl"], "the kill should land before shard 1 finished"

    status = subprocess.run([sys.executable, "-m", "s1.cluster.status", str(tmp_path / "killed")], cwd=REPO,
                            env=env, capture_output=True, text=True, check=True).stdout
    assert "shards done" in status and "2/3" in status

    proc = subprocess.run([sys.executable, "-m", "s1.cluster.resume", str(tmp_path / "killed")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "shards with work left: [1] of 3" in proc.stdout
    after = {f.name: valid_lines(f) for f in cache_files(out / "generations.jsonl")}
    assert after["generations.shard-0.jsonl"] == before["generations.shard-0.jsonl"]   # untouched
    assert after["generations.shard-2.jsonl"] == before["generations.shard-2.jsonl"]
    assert generations(out) == records
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["generated_this_run"] == 0 and same_metrics(metrics, expected)
    assert sum(after.values()) == len(records)         # no key generated twice (a torn line is not a record)


# --- Slurm scripts (rendered only; tests/test_shards_slurm.py submits them) --------------------------------------

def test_dry_run_prints_the_shard_array_and_its_merge_then_the_chain(tmp_path, capsys):
    from s1.cluster import pipeline

    rc = pipeline.main([f"paths.runs_dir={tmp_path}", "run.name=big", "experiment=demo", "cluster=slurm",
                        "cluster.shards=4", "cluster.array_throttle=2", "cluster.gpus_per_node=8",
                        "curate.difficulty.backend=vllm", "curate.difficulty.engine.tensor_parallel_size=4",
                        "train.micro_batch_size=2", "cluster.preflight=off", "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0, out
    names = [line.split(":")[0].removeprefix("# ") for line in out.splitlines() if "dry run (cluster.dry_run" in line]
    assert names == ["curate-shards", "curate", "train", "eval-shards", "eval"]
    scripts = dict(zip(names, out.split("dry run (cluster.dry_run=true)")[1:]))
    array = scripts["curate-shards"]
    assert "#SBATCH --array=0-3%2\n" in array and "#SBATCH --gpus-per-node=4\n" in array
    assert 'cluster.shards=4 cluster.array_throttle=2' in array
    assert ' cluster.shard="$SLURM_ARRAY_TASK_ID"\n' in array   # the task's index, expanded by the shell
    assert "curate-shard-%A_%a.out" in array and "#SBATCH --requeue" in array
    assert "--dependency=afterok:<curate-shards job>" in scripts["curate"]
    assert "cluster.shard=" not in scripts["curate"] and "#SBATCH --array" not in scripts["curate"]
    assert "--dependency=afterok:<curate job>" in scripts["train"] and "--gpus-per-node=8" in scripts["train"]
    assert "--dependency=afterok:<train job>" in scripts["eval-shards"]
    assert "#SBATCH --gpus-per-node=1\n" in scripts["eval-shards"]   # eval.engine: tensor parallel 1
    assert "--dependency=afterok:<eval-shards job>" in scripts["eval"]


def test_array_of_only_the_shards_left():
    from s1.cluster.submit import array_spec

    assert array_spec([0, 1, 2], None) == "0-2"
    assert array_spec([1, 4], 3) == "1,4%3"
