"""Shards as a real Slurm job array (slurm/local/start.sh): scancel of one array task mid-run, then
`make resume` resubmits only that shard and the merge; the result equals the unsharded run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require_or_skip
from test_cluster_slurm import slurm_unavailable, status_output
from test_shards import eval_args, evaluate_here, generations, same_metrics, valid_lines

from s1.cache import cache_files, set_shard
from s1.cluster import resume, slurm
from s1.cluster.pipeline import compose_stage
from s1.cluster.submit import latest_jobs, submit_stage

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def local_slurm() -> None:
    reason = slurm_unavailable()
    if reason:
        require_or_skip("slurm", f"no running local Slurm ({reason}); start one with `make slurm-up` (root), stop "
                        "it with `make slurm-down`")


def array_done(array_job: str) -> bool:
    """No task of the array is queued or running any more."""
    proc = slurm.run_slurm(["squeue", "-h", "-r", "-j", array_job, "-o", "%T"])
    return proc.returncode != 0 or not proc.stdout.strip()


@pytest.mark.slow
def test_scancel_of_one_array_task_then_resume(local_slurm, tiny_model_dir, tmp_path):
    args = eval_args(tmp_path, tiny_model_dir, "sharded") + ["cluster=local_slurm", "cluster.shards=3"]
    run_dir = tmp_path / "sharded"
    out = run_dir / "eval"
    merge = submit_stage(compose_stage("eval", args), "eval", args)
    array = latest_jobs(run_dir)["eval-shards"]["job_id"]
    assert latest_jobs(run_dir)["eval"]["dependency"] == f"afterok:{array}"

    mine = out / "generations.shard-1.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (mine.exists() and valid_lines(mine) >= 1):
        time.sleep(0.05)
    assert mine.exists(), "array task 1 never started writing"
    subprocess.run(["scancel", f"{array}_1"], check=True)
    infos = slurm.wait_for([merge], timeout_s=300)
    assert infos[merge] is not None and infos[merge].state == "CANCELLED"    # afterok never satisfied
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not array_done(array):
        time.sleep(0.5)
    assert not (out / "metrics.json").exists()
    assert sorted(p.name for p in (out / "shards").glob("done-*")) == ["done-0-of-3.json", "done-2-of-3.json"]
    before = {f.name: valid_lines(f) for f in cache_files(out / "generations.jsonl")}
    row = next(line for line in status_output(run_dir).splitlines() if line.startswith("eval ") and "/3" in line)
    assert "2/3" in row and "1 failed" in row, row      # shards done; the cancelled task, from scontrol/squeue

    assert resume.main([str(run_dir)]) == 0              # from the files: shard 1 has work left
    jobs = latest_jobs(run_dir)
    assert jobs["eval-shards"]["job_id"] != array and jobs["eval"]["dependency"] == f"afterok:{jobs['eval-shards']['job_id']}"
    script = Path(jobs["eval-shards"]["script"]).read_text()
    assert "#SBATCH --array=1\n" in script
    infos = slurm.wait_for([jobs["eval"]["job_id"]], timeout_s=600)
    assert infos[jobs["eval"]["job_id"]].state == "COMPLETED", Path(jobs["eval"]["log"]).read_text()[-3000:]

    after = {f.name: valid_lines(f) for f in cache_files(out / "generations.jsonl")}
    assert after["generations.shard-0.jsonl"] == before["generations.shard-0.jsonl"]
    assert after["generations.shard-2.jsonl"] == before["generations.shard-2.jsonl"]
    metrics = json.loads((out / "metrics.json").read_text())
    unsharded = evaluate_here(eval_args(tmp_path, tiny_model_dir, "one"))
    set_shard(None)
    assert generations(out) == generations(tmp_path / "one" / "eval")
    assert sum(after.values()) == len(generations(out))  # no key generated twice
    assert metrics["generated_this_run"] == 0 and same_metrics(metrics, unsharded)
