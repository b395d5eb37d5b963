"""Cluster: rendering, quoting and the checks before submission (no Slurm needed; the Slurm runs are in
test_cluster_slurm.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from s1.cluster import pipeline
from s1.cluster.checks import check_partition, check_submission, parse_slurm_time
from s1.cluster.render import job_script, render_template
from s1.cluster.submit import submit_stage
from s1.runtime import ConfigError


def compose(stage: str, tmp_path: Path, *overrides: str):
    return pipeline.compose_stage(stage, [f"paths.runs_dir={tmp_path / 'runs'}", *overrides])


def test_parse_slurm_time():
    assert parse_slurm_time("30") == 30 * 60
    assert parse_slurm_time("10:30") == 10 * 60 + 30
    assert parse_slurm_time("04:00:00") == 4 * 3600
    assert parse_slurm_time("1-12") == 36 * 3600
    assert parse_slurm_time("2-00:30:00") == 48 * 3600 + 30 * 60
    assert parse_slurm_time("UNLIMITED") == 0
    for bad in ("4h", "1:75:00", "00:00:00", "", "1-2-3", "-5"):
        with pytest.raises(ValueError):
            parse_slurm_time(bad)


def test_template_placeholders_are_strict():
    assert render_template("a {{x}} b", {"x": "it's $(x)"}) == "a 'it'\"'\"'s $(x)' b"
    with pytest.raises(KeyError, match="has no value"):
        render_template("{{missing}}", {})
    with pytest.raises(KeyError, match="not in the template"):
        render_template("{{x}}", {"x": "1", "unused": "2"})


def test_hostile_values_are_data_not_code(tmp_path):
    """Spaces, quotes, $(), backticks and ; in paths and overrides reach the program verbatim; nothing runs."""
    weird = tmp_path / "runs dir 'q' $(touch PWNED1); x"
    fake_python = tmp_path / "argv dump"  # stands in for the interpreter: records the argv it was given
    fake_python.write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$ARGV_OUT"\n')
    fake_python.chmod(0o755)
    overrides = [
        f'paths.runs_dir="{weird}"',
        f"run.name='n; touch {tmp_path}/PWNED2 `touch {tmp_path}/PWNED3`'",
        f'+extra.note="say \\"hi\\" $(touch {tmp_path}/PWNED4) && echo"',
        f"cluster.python='{fake_python}'",
        "cluster.dry_run=true", "cluster.preflight=off",
    ]
    cfg = pipeline.compose_stage("curate", overrides)
    script = job_script(cfg, "curate", overrides)
    assert subprocess.run(["bash", "-n"], input=script, check=False, text=True).returncode == 0
    # Run the body as the job would (the #SBATCH lines are comments to bash).
    env = dict(os.environ, ARGV_OUT=str(tmp_path / "argv"), SLURM_JOB_ID="1")
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    argv = (tmp_path / "argv").read_text().split("\0")[:-1]
    assert argv[1:] == overrides
    assert argv[0].endswith("scripts/curate.py")
    assert not [n for n in range(1, 5) if (tmp_path / f"PWNED{n}").exists()], "a value was run as shell code"
    assert "#SBATCH --job-name=s1-curate-n_touch_" in script  # job names are sanitised, not quoted


def test_dry_run_prints_and_submits_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # even where sbatch would exist: nothing is called
    cfg = compose("curate", tmp_path, "cluster=slurm", "cluster.partition=gpu", "cluster.dry_run=true", "cluster.preflight=off")
    assert submit_stage(cfg, "curate", ["cluster=slurm"]) is None
    out = capsys.readouterr().out
    assert "dry run" in out and "#SBATCH --partition=gpu" in out and "#SBATCH --gpus-per-node=8" in out
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("jobs.jsonl"))


def test_paper_train_script_two_nodes_by_eight_gpus(tmp_path, capsys):
    """The README's example: 2 nodes x 8 GPUs, one srun task per node, torchrun per node with its rank."""
    rc = pipeline.main([f"paths.runs_dir={tmp_path}", "experiment=paper_s1", "cluster.nodes=2",
                        "cluster.account=my_account", "cluster.dry_run=true", "cluster.preflight=off",
                        "cluster.setup=[module load cuda/12.4]"])
    out = capsys.readouterr().out
    assert rc == 0, out
    train = out[out.index("# train: dry run"):out.index("# eval: dry run")]
    assert "--dependency=afterok:<curate job>" in train
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --account=my_account", "#SBATCH --partition=gpu", "module load cuda/12.4",
                 "srun --kill-on-bad-exit=1 --nodes=2 --ntasks-per-node=1 bash -c"):
        assert line in train, line
    launch = train[train.index("bash -c '") + len("bash -c '"):].splitlines()[0]
    for arg in ("--nnodes=2", "--nproc_per_node=8", '--node_rank="$SLURM_NODEID"', '--master_addr="$MASTER_ADDR"',
                '--master_port="$MASTER_PORT"', "-m s1.train.sft", "/train/config.yaml"):
        assert arg in launch, arg
    script = "#!/bin/bash\n" + train.split("\n", 1)[1]
    assert subprocess.run(["bash", "-n"], input=script, check=False, text=True).returncode == 0


def test_each_stage_config_is_checked_once_per_submission(tmp_path, capsys, monkeypatch):
    """make pipeline checks every stage before the first sbatch, and submitting does not check it again."""
    import s1.stage_checks

    calls = []
    for name in ("check_train_config", "check_eval_config"):
        real = getattr(s1.stage_checks, name)
        monkeypatch.setattr(s1.stage_checks, name, lambda cfg, real=real, name=name: (calls.append(name), real(cfg))[1])
    rc = pipeline.main([f"paths.runs_dir={tmp_path}", "experiment=paper_s1", "cluster.dry_run=true", "cluster.preflight=off"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(calls) == ["check_eval_config", "check_train_config"]
    assert "train: memory plan:" in capsys.readouterr().out   # the train check's note is still shown


def test_pipeline_applies_fit_auto_before_its_checks(tmp_path, capsys):
    """paper_s1 on one node of 8 × 80 GB does not fit as a full fine-tune at 32K; with train.fit=auto the pipeline
    submits what make train would pick, and its memory check passes on that choice."""
    args = [f"paths.runs_dir={tmp_path}", "experiment=paper_s1", "cluster.dry_run=true", "cluster.preflight=off", "cluster.nodes=1",
            "train.global_batch_size=8", "train.offload_optimizer=false"]
    assert pipeline.main(args) == 2 and "nothing was submitted" in capsys.readouterr().err
    assert pipeline.main([*args, "train.fit=auto"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "GiB" not in line and "setup" not in line]
    assert rows[0].endswith("| does not fit |"), out                   # the full fine-tune, ZeRO-3, no offload
    assert sum("**chosen**" in r for r in rows) == 1
    assert "train: memory plan:" in out and "#SBATCH" in out and "train.fit=auto" in out


@pytest.mark.parametrize("overrides, key, fix", [
    (["cluster.time=4h"], "cluster.time", "D-HH:MM:SS"),
    (["cluster.stage_time.train=1:75:00"], "cluster.stage_time.train", "D-HH:MM:SS"),
    (["cluster.nodes=3"], "train.global_batch_size", "multiple of"),          # 16 over 3 x 8 GPUs
    (["cluster.nodes=1", "cluster.gpus_per_node=1"], "cluster.gpus_per_node", "GiB"),  # 32B on one GPU
    (["cluster.partition=gpu partition"], "cluster.partition", "plain Slurm name"),
    (["train.deepspeed=/nonexistent/zero3.json"], "train.deepspeed", "no such file"),
    (["cluster.nodes=2", "eval.budgets=[0]"], "eval.budgets", "positive"),
])
def test_bad_plans_are_refused_before_submission(tmp_path, capsys, overrides, key, fix):
    rc = pipeline.main([f"paths.runs_dir={tmp_path}", "experiment=paper_s1", "cluster.dry_run=true", "cluster.preflight=off", *overrides])
    out, err = capsys.readouterr()
    assert rc == 2 and f"{key}=" in err and fix in err and "nothing was submitted" in err, err
    assert "#SBATCH" not in out


def test_missing_input_and_missing_sbatch(tmp_path, monkeypatch):
    cfg = compose("train", tmp_path, "experiment=demo", "cluster=local_slurm")
    with pytest.raises(ConfigError) as e:  # train alone: curate's output must exist already
        check_submission(cfg, "train")
    assert e.value.key == "train.dataset" and "make pipeline" in e.value.fix
    # in a chain it is curate's job to write it (whether a Slurm controller runs here is not this test's business)
    monkeypatch.setattr("s1.cluster.checks.check_slurm_here", lambda cfg: None)
    check_submission(cfg, "train", upstream=("curate",))
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as e:
        check_submission(cfg, "curate")
    assert e.value.key == "cluster.kind" and "make slurm-up" in e.value.fix and "cluster=local" in e.value.fix


def test_a_silent_controller_is_not_reported_as_a_bad_partition(tmp_path, monkeypatch):
    fake = tmp_path / "scontrol"  # Slurm installed, controller stopped: what `scontrol ping` then prints
    fake.write_text("#!/bin/sh\necho 'Slurmctld(primary) at localhost is DOWN'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(ConfigError) as e:
        check_partition("gpu")
    assert e.value.key == "cluster.kind" and "DOWN" in e.value.fix and "make slurm-up" in e.value.fix


def test_a_hung_controller_times_out(tmp_path, monkeypatch):
    """scontrol, squeue and sacct that never answer: a SlurmError naming the command within the limit, no hang."""
    from s1.cluster import slurm

    for prog in ("scontrol", "squeue", "sacct", "sbatch"):
        (tmp_path / prog).write_text("#!/bin/sh\nexec sleep 30\n")
        (tmp_path / prog).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(slurm, "COMMAND_TIMEOUT_S", 0.5)
    t = time.monotonic()
    with pytest.raises(slurm.SlurmError, match="scontrol show job -o 7` did not answer in 0.5 s"):
        slurm.job_info("7")
    with pytest.raises(slurm.SlurmError, match="scontrol ping` did not answer"):
        check_partition("local")
    assert time.monotonic() - t < 10


def test_tests_never_set_up_slurm_themselves(repo):
    """Installing packages, writing /etc and starting daemons is `make slurm-up`'s job (and .ci/run's), not a test's."""
    forbidden = ('"apt' + '-get"', "install" + " -y", "start" + ".sh\"", "/etc/" + "slurm", "munge" + "d")
    for path in sorted((repo / "tests").glob("*.py")):
        text = path.read_text()
        assert not [w for w in forbidden if w in text], f"{path.name} sets up Slurm itself"


def fake_finished_run(tmp_path: Path, *overrides: str) -> dict:
    """A run whose stages finished (their contract outputs + inputs.json), as the stages leave it, without running
    them: what `make pipeline` and `make status` read."""
    from omegaconf import OmegaConf

    from s1.run_inputs import record_inputs

    cfgs = {s: compose(s, tmp_path, "experiment=demo", *overrides) for s in ("curate", "train", "eval")}
    for stage, files in (("curate", ["s1k.jsonl"]), ("train", ["final/config.json", "final/model.safetensors"]),
                         ("eval", ["metrics.json"])):
        out = Path(cfgs[stage][stage].output_dir)
        (out / "final").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfgs[stage], out / "config.yaml", resolve=True)
        for name in files:
            (out / name).write_text('{"question": "q"}\n')
        record_inputs(cfgs[stage], stage)
    return cfgs


def test_a_stage_notices_changed_inputs_not_only_its_own_section(tmp_path, capsys):
    """The README's ablation re-curated into the same run: train must not count as finished, nor must a model change
    skip curate and train."""
    from s1.run_inputs import stage_finished

    cfgs = fake_finished_run(tmp_path)
    assert pipeline.stages_to_run(cfgs) == []
    # curate re-ran (other diversity method) and wrote another s1K: train and eval are stale, curate is not
    (Path(cfgs["curate"].curate.output_dir) / "s1k.jsonl").write_text('{"question": "other"}\n')
    done, why = stage_finished(cfgs["train"], "train")
    assert not done and "train.dataset (file)" in why
    assert pipeline.stages_to_run(cfgs) == ["train", "eval"]
    # another model: every stage reads it
    other = {s: compose(s, tmp_path, "experiment=demo", "model.dtype=bfloat16") for s in cfgs}
    for stage in ("curate", "train", "eval"):
        done, why = stage_finished(other[stage], stage)
        assert not done and "model.dtype" in why, (stage, why)
    # its own section still counts
    done, why = stage_finished(compose("curate", tmp_path, "experiment=demo", "curate.diversity.method=random"),
                               "curate")
    assert not done and "curate.diversity" in why


def test_status_shows_every_stage_of_a_local_run(tmp_path, capsys):
    """make status on a run made with cluster=local: done / failed / not started with the outputs, no Slurm needed."""
    import json

    from s1.cluster import PROCESS_FILE
    from s1.cluster.status import print_status

    cfgs = fake_finished_run(tmp_path)
    run_dir = Path(cfgs["curate"].run.dir)
    eval_dir = Path(cfgs["eval"].eval.output_dir)
    (eval_dir / "metrics.json").unlink()
    (eval_dir / PROCESS_FILE).write_text(json.dumps({"pid": 2**22 + 7, "host": __import__("socket").gethostname(),
                                                     "started": 0, "ended": None}))  # no such pid: killed
    rows = {r["stage"]: r for r in print_status(run_dir)}
    out = capsys.readouterr().out
    assert rows["curate"]["state"] == "done" and str(run_dir / "curate" / "s1k.jsonl") in out
    assert rows["train"]["state"] == "done"
    assert rows["eval"]["state"].startswith("failed: killed") and "metrics.json missing" in rows["eval"]["outputs"]
    assert "no Slurm jobs recorded" not in out
    import shutil

    shutil.rmtree(eval_dir)
    assert {r["stage"]: r["state"] for r in print_status(run_dir)}["eval"] == "not started"
    # curate re-ran with other results (the README's ablation in the same run): train is stale, eval's model with it
    (run_dir / "curate" / "s1k.jsonl").write_text('{"question": "other"}\n')
    (run_dir / "train" / PROCESS_FILE).write_text(json.dumps({"pid": 1, "host": "x", "started": 0, "ended": 1}))
    states = {r["stage"]: r for r in print_status(run_dir)}
    assert states["curate"]["state"] == "done" and states["train"]["state"] == "stale"
    assert "train.dataset (file)" in states["train"]["outputs"]
    from s1.cluster.status import unfinished_notes  # what the report prints above its sections

    notes = unfinished_notes(run_dir)
    assert notes[0].startswith("train: stale") and "train.dataset (file)" in notes[0] and len(notes) == 2
