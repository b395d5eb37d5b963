"""Cluster on a real one-node Slurm (slurm/local/start.sh): the demo pipeline through sbatch with afterok
dependencies, failure propagation, `make status`, re-submission skipping finished stages, quoting."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_or_skip

from s1.cluster import pipeline, slurm
from s1.cluster.submit import latest_jobs, submit_stage

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slurm


@pytest.fixture(scope="session")
def local_slurm() -> None:
    """A Slurm that already runs here (make slurm-up, or a real cluster with partition `local`); else skip, saying
    why. Tests never install packages, write /etc or start daemons: `make slurm-up` / `.ci/run` do that."""
    reason = slurm_unavailable()
    if reason:
        require_or_skip("slurm", f"no running local Slurm ({reason}); start one with `make slurm-up` (root), stop it "
                        "with `make slurm-down`")


def slurm_unavailable() -> str | None:
    """Why the cluster tests cannot run here, or None."""
    for prog in ("sbatch", "scontrol", "squeue"):
        if shutil.which(prog) is None:
            return f"{prog} is not on PATH"
    try:
        ping = slurm.run_slurm(["scontrol", "ping"], timeout_s=10)
        if "UP" not in ping.stdout:
            return f"scontrol ping: {(ping.stdout or ping.stderr).strip()[:120]}"
        part = slurm.run_slurm(["scontrol", "show", "partition", "local"], timeout_s=10)
    except slurm.SlurmError as e:
        return str(e)
    if part.returncode != 0:
        return "the controller has no partition `local` (configs/cluster/local_slurm.yaml)"
    return None


def status_output(run_dir: Path) -> str:
    """`make status RUN=<run dir>` as the user runs it."""
    proc = subprocess.run([sys.executable, "-m", "s1.cluster.status", str(run_dir)], cwd=REPO,
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_hostile_values_through_sbatch(local_slurm, tmp_path, monkeypatch):
    """sbatch parses the quoted #SBATCH lines (log path with spaces, quotes, $() and ;) and the job's argv is
    exactly the overrides given; nothing in them runs."""
    fake_python = tmp_path / "argv-dump"
    fake_python.write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$ARGV_OUT"\n')
    fake_python.chmod(0o755)
    monkeypatch.setenv("ARGV_OUT", str(tmp_path / "argv"))  # reaches the job: --export=ALL
    overrides = [
        f'paths.runs_dir="{tmp_path}/runs dir \'q\' $(touch {tmp_path}/PWNED1); x"',
        f"run.name='n; touch {tmp_path}/PWNED2 `touch {tmp_path}/PWNED3`'",
        f'+extra.note="say \\"hi\\" $(touch {tmp_path}/PWNED4) && echo"',
        "cluster=local_slurm", f"cluster.python={fake_python}",
    ]
    cfg = pipeline.compose_stage("curate", overrides)
    job = submit_stage(cfg, "curate", overrides)
    info = slurm.wait_for([job], timeout_s=60)[job]
    assert info.state == "COMPLETED", info
    assert (tmp_path / "argv").read_text().split("\0")[1:-1] == overrides
    assert not [n for n in range(1, 5) if (tmp_path / f"PWNED{n}").exists()], "a value was run as shell code"
    record = latest_jobs(cfg.run.dir)["curate"]
    assert Path(record["log"]).is_file() and "s1 curate: job " + job in Path(record["log"]).read_text()
    assert (Path(cfg.run.dir) / "slurm" / "curate.sbatch").is_file()
    assert (Path(cfg.run.dir) / "slurm" / "curate.config.yaml").is_file()


def test_failed_curate_never_runs_train_or_eval(local_slurm, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "broken"
    rc = pipeline.main([f"paths.runs_dir={tmp_path / 'runs'}", "run.name=broken", "experiment=demo",
                        "cluster=local_slurm", "cluster.setup=['echo simulated curate failure >&2; exit 3']"])
    assert rc == 0, capsys.readouterr()
    jobs = latest_jobs(run_dir)
    assert list(jobs) == ["curate", "train", "eval"]
    assert jobs["train"]["dependency"] == f"afterok:{jobs['curate']['job_id']}"
    assert jobs["eval"]["dependency"] == f"afterok:{jobs['train']['job_id']}"
    infos = slurm.wait_for([j["job_id"] for j in jobs.values()], timeout_s=60)
    assert infos[jobs["curate"]["job_id"]].state == "FAILED"
    assert infos[jobs["curate"]["job_id"]].exit_code.startswith("3")
    for stage in ("train", "eval"):
        assert infos[jobs[stage]["job_id"]].state == "CANCELLED"
        assert not Path(jobs[stage]["log"]).exists()  # never started
    out = status_output(run_dir)
    lines: dict[str, str] = {}   # the table's row per stage (the first line naming it; log tails follow)
    for line in out.splitlines():
        if line.split()[:1] in (["curate"], ["train"], ["eval"]):
            lines.setdefault(line.split()[0], line)
    assert "failed" in lines["curate"] and "FAILED" in lines["curate"] and "missing" in lines["curate"]
    assert "CANCELLED" in lines["train"] and "CANCELLED" in lines["eval"]
    assert "simulated curate failure" in out  # the failed job's log tail
    assert f"train (job {jobs['train']['job_id']}) never ran" in out


@pytest.mark.slow
def test_demo_pipeline_through_slurm_then_resubmit_skips(local_slurm, tmp_path, capsys):
    """make pipeline on the demo (made small), waits for the chain, then a re-submission submits nothing."""
    args = [f"paths.runs_dir={tmp_path}", "run.name=e2e", "experiment=demo", "cluster=local_slurm",
            "curate.sources.0.size=300", "curate.diversity.num_samples=64", "train.max_steps=5",
            "train.global_batch_size=8", "train.micro_batch_size=8", "eval.limit=4", "eval.budgets=[16]",
            "eval.methods=[bf]", "eval.max_new_tokens=48", "eval.include_base_model=false"]
    proc = subprocess.run([sys.executable, "-m", "s1.cluster.pipeline", *args, "cluster.wait=true"], cwd=REPO,
                          check=False, capture_output=True, text=True, timeout=600)
    run_dir = tmp_path / "e2e"
    jobs = latest_jobs(run_dir)
    logs = "\n".join(f"--- {j['log']}\n" + Path(j["log"]).read_text()[-3000:] for j in jobs.values()
                     if Path(j["log"]).exists())
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{logs}"
    assert jobs["train"]["dependency"] == f"afterok:{jobs['curate']['job_id']}"
    assert jobs["eval"]["dependency"] == f"afterok:{jobs['train']['job_id']}"
    assert len((run_dir / "curate" / "s1k.jsonl").read_text().splitlines()) == 64
    assert (run_dir / "train" / "final" / "config.json").is_file()
    assert json.loads((run_dir / "train" / "train_summary.json").read_text())["steps"] == 5
    # eval: the one (model, method, budget, benchmark) asked for, over eval.limit questions, one sample each
    gens = [json.loads(x) for x in (run_dir / "eval" / "generations.jsonl").read_text().splitlines()]
    assert len(gens) == 4 and len({g["question_id"] for g in gens}) == 4
    assert all((g["model_label"], g["benchmark"], g["method"], g["budget"]) == ("trained", "synthetic", "bf", 16)
               and g["thinking_tokens"] <= 16 for g in gens)
    [row] = json.loads((run_dir / "eval" / "metrics.json").read_text())["rows"]
    assert (row["model"], row["method"], row["budget"], row["benchmark"]) == ("trained", "bf", 16, "synthetic")
    assert (row["questions"], row["samples_per_question"]) == (4, 1) and sum(row["outcomes"].values()) == 4
    assert row["accuracy"] == pytest.approx(100 * sum(g["correct"] for g in gens) / 4)
    assert "COMPLETED" in proc.stdout and proc.stdout.count("done") >= 3  # the status table printed at the end

    submitted = (run_dir / "slurm" / "jobs.jsonl").read_text()
    assert pipeline.main(args) == 0  # everything finished with these settings: nothing submitted
    out = capsys.readouterr().out
    assert out.count("finished, skipped") == 3 and "nothing to submit" in out
    assert (run_dir / "slurm" / "jobs.jsonl").read_text() == submitted

    (run_dir / "eval" / "metrics.json").unlink()  # eval unfinished: only eval goes, with nothing to wait for
    assert pipeline.main([*args, "cluster.dry_run=true"]) == 0
    out = capsys.readouterr().out
    assert out.count("finished, skipped") == 2 and "# eval: dry run" in out and "# train: dry run" not in out
    assert "--dependency" not in out.split("# eval: dry run")[1].splitlines()[0]


@pytest.mark.slow
def test_a_stage_job_requeues_itself_at_its_time_limit_and_resumes(local_slurm, tmp_path, monkeypatch):
    """A 1-minute limit with USR1 50 s before it (cluster.requeue_signal_s): the job requeues itself, Slurm starts
    it again, and the stage resumes its work where it stopped. The stage is a fake interpreter that does 40
    one-second units, appending each to a progress file it resumes from. Slurm holds a requeued job ~2 min before
    it may start (BeginTime); the test releases it at once (scontrol update StartTime=now) to save that wait."""
    stage = tmp_path / "stage"
    stage.write_text('#!/bin/bash\nset -e\necho "run ${SLURM_RESTART_COUNT:-0}" >> "$RUNS"\n'
                     'done_units=$(wc -l < "$PROGRESS" 2>/dev/null || echo 0)\n'
                     'for i in $(seq $((done_units + 1)) 40); do sleep 1; echo "$i" >> "$PROGRESS"; done\n')
    stage.chmod(0o755)
    monkeypatch.setenv("RUNS", str(tmp_path / "runs.txt"))        # reach the job: --export=ALL
    monkeypatch.setenv("PROGRESS", str(tmp_path / "progress.txt"))
    overrides = [f"paths.runs_dir={tmp_path}", "run.name=requeue", "experiment=demo", "cluster=local_slurm",
                 f"cluster.python={stage}", "cluster.time=1", "cluster.requeue_signal_s=50", "cluster.max_restarts=1"]
    cfg = pipeline.compose_stage("curate", overrides)
    job = submit_stage(cfg, "curate", overrides)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:   # requeued: Slurm holds it ~2 min (BeginTime); the test lets it start now
        f = slurm.parse_scontrol(slurm.run_slurm(["scontrol", "show", "job", "-o", job]).stdout.strip())
        if f.get("Restarts") == "1" and f.get("JobState") == "PENDING":
            slurm.run_slurm(["scontrol", "update", f"JobId={job}", "StartTime=now"])
            break
        if f.get("JobState") in slurm.TERMINAL:
            break
        time.sleep(1)
    info = slurm.wait_for([job], poll_s=1, timeout_s=240)[job]
    log = Path(latest_jobs(cfg.run.dir)["curate"]["log"]).read_text()
    assert info.state == "COMPLETED", (info, log)
    assert "#SBATCH --signal=B:USR1@50" in (Path(cfg.run.dir) / "slurm" / "curate.sbatch").read_text()
    assert "s1: time limit near; requeueing job" in log and "restart 1" in log, log
    assert (tmp_path / "runs.txt").read_text().split("\n")[:2] == ["run 0", "run 1"]
    assert (tmp_path / "progress.txt").read_text().split() == [str(i) for i in range(1, 41)]  # each unit once
    restarts = slurm.run_slurm(["scontrol", "show", "job", job]).stdout
    assert "Restarts=1" in restarts
