"""make pipeline ARGS="...": curate -> train -> eval as Slurm jobs chained with --dependency=afterok.

    python -m s1.cluster.pipeline experiment=paper_s1 cluster=slurm cluster.partition=gpu
    python -m s1.cluster.pipeline experiment=demo cluster=local_slurm cluster.wait=true

All three stages share one config tree and run dir, so each reads the one before it from the same place
(train.dataset = ${run.dir}/curate/s1k.jsonl, eval.model_path = ${run.dir}/train/final). Stages that
finished with the same settings are skipped; a stage whose job is still queued or running is reused.
Every stage is checked before the first sbatch. With cluster=local the stages run here, in order.
"""

from __future__ import annotations

import subprocess
import sys

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import s1.cluster.slurm as slurm  # the module itself, not the package (whose __init__ imports this one)
from s1.cluster.checks import check_submission
from s1.cluster.preflight import PreflightFailed, run_preflight
from s1.cluster.status import print_status
from s1.cluster.submit import active_job, submit_stage
from s1.run_inputs import stage_finished
from s1.runtime import CONFIG_DIR, REPO_ROOT, ConfigError, check_overrides, prepare
from s1.stages import STAGES
from s1.train.fit import fit_config


def compose_stage(stage: str, overrides: list[str]) -> DictConfig:
    """The config `scripts/<stage>.py <overrides>` would get, resolved and validated; train.fit=auto applied the way
    scripts/train.py applies it (the job fits again from the same overrides and gets the same choice)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose(config_name=stage, overrides=list(overrides))
    cfg = prepare(cfg, stage)
    if stage == "train" and cfg.train.fit == "auto":
        cfg, table = fit_config(cfg)
        print(table)
    return cfg


def pipeline_stages(cfgs: dict[str, DictConfig]) -> tuple[str, ...]:
    """The stages this setting has: no curate when there is nothing to curate (experiment=s1_1 trains on s1K-1.1
    as released: curate.sources is empty and train.dataset names the data)."""
    if not cfgs["curate"].curate.sources:
        print(f"curate: skipped (curate.sources is empty; train reads train.dataset={cfgs['train'].train.dataset})")
        return tuple(s for s in STAGES if s != "curate")
    return tuple(STAGES)


def stages_to_run(cfgs: dict[str, DictConfig]) -> list[str]:
    """From the first stage that is not finished on: everything after a re-run stage runs again too."""
    stages = pipeline_stages(cfgs)
    for i, stage in enumerate(stages):
        done, why = stage_finished(cfgs[stage], stage)
        if not done or active_job(cfgs[stage].run.dir, stage):
            print(f"{stage}: to run ({why if not done else 'its job is still queued or running'})")
            return list(stages[i:])
        print(f"{stage}: finished, skipped ({why})")
    return []


def run_local(stages: list[str], overrides: list[str]) -> int:
    for stage in stages:
        print(f"{stage}: running here (cluster.kind=local)", flush=True)
        rc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{stage}.py"), *overrides], check=False).returncode
        if rc != 0:
            print(f"{stage} failed (exit {rc}); later stages not run", file=sys.stderr)
            return rc
    return 0


def submit_chain(cfgs: dict[str, DictConfig], stages: list[str], overrides: list[str]) -> list[str]:
    for i, stage in enumerate(stages):  # all checks first, once each: a bad train config submits no curate job
        for note in check_submission(cfgs[stage], stage, upstream=tuple(stages[:i])):
            print(f"{stage}: {note}")
    failed = None
    try:  # what the jobs need from the machines (s1/cluster/preflight.py); a dry run prints the scripts, then fails
        run_preflight(cfgs, stages)
    except PreflightFailed as e:
        if not cfgs[stages[0]].cluster.dry_run:
            raise
        failed = e
    job_ids, previous = [], None
    for stage in stages:
        cfg = cfgs[stage]
        dependency = f"afterok:{previous}" if previous else None
        job = None if cfg.cluster.dry_run else active_job(cfg.run.dir, stage)
        if job:
            print(f"{stage}: job {job} is still queued or running; reusing it")
        else:
            job = submit_stage(cfg, stage, overrides, dependency=dependency, checked=True)
        previous = job or f"<{stage} job>"
        if job:
            job_ids.append(job)
    if failed:
        raise failed
    return job_ids


def explain_errors(run) -> int:
    """run(): its exit code; a bad config or a Slurm refusal is one clear line and exit 2 / 1, not a traceback."""
    try:
        return run()
    except ConfigError as e:
        print(f"{e}\nnothing was submitted", file=sys.stderr)
        return 2
    except slurm.SlurmError as e:
        print(str(e), file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    overrides = sys.argv[1:] if argv is None else list(argv)
    if "--dry-run" in overrides:  # print every rendered sbatch script (shard arrays and merges too), submit nothing
        overrides = [o for o in overrides if o != "--dry-run"] + ["cluster.dry_run=true"]
    return explain_errors(lambda: run_pipeline(overrides))


def run_pipeline(overrides: list[str]) -> int:
    check_overrides(overrides)
    cfgs = {stage: compose_stage(stage, overrides) for stage in STAGES}
    stages = stages_to_run(cfgs)
    if not stages:
        print("every stage is finished; nothing to submit")
        return 0
    cluster = cfgs["curate"].cluster
    if cluster.kind != "slurm":
        return run_local(stages, overrides)
    job_ids = submit_chain(cfgs, stages, overrides)
    print(f"follow: make status RUN={cfgs['curate'].run.dir}")
    if cluster.wait and job_ids:
        infos = slurm.wait_for(job_ids)
        print_status(cfgs["curate"].run.dir)
        return 0 if all(i is not None and i.state == "COMPLETED" for i in infos.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
