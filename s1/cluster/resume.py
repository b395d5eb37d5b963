"""make resume RUN=runs/<name>: finish a sharded stage whose shards were killed, preempted or timed out.

    python -m s1.cluster.resume runs/paper

What is missing comes from the run's files, not from Slurm's memory: a shard has work left until it wrote
<output_dir>/shards/done-<i>-of-<K>.json with today's inputs, and a stage is finished once its outputs and
inputs.json are there. Each unfinished sharded stage runs again with the overrides it was started with
(<output_dir>/shards/command.json): cluster=slurm submits an array of only the shards left, then the merge;
cluster=local runs those shards here, then the merge. Every shard skips the keys any shard's cache holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from s1.cluster.pipeline import compose_stage, explain_errors
from s1.cluster.submit import submit_stage
from s1.run_inputs import stage_finished
from s1.runtime import REPO_ROOT
from s1.shards import SHARD_DIR, shards_left
from s1.stages import STAGES


def sharded_stages(run_dir: Path) -> list[tuple[str, dict]]:
    """(stage, saved command) for every stage of the run that ran with cluster.shards > 1, in pipeline order."""
    found = {}
    for path in Path(run_dir).glob(f"*/{SHARD_DIR}/command.json"):
        command = json.loads(path.read_text())
        found[command["stage"]] = command
    return [(s, found[s]) for s in STAGES if s in found]


def resume(run_dir: str | Path) -> int:
    stages = sharded_stages(Path(run_dir))
    if not stages:
        print(f"{run_dir}: no stage ran with cluster.shards > 1 (no */{SHARD_DIR}/command.json); nothing to resume")
        return 2
    for stage, command in stages:
        cwd = os.getcwd()
        os.chdir(command["workdir"])  # relative paths in the overrides mean what they meant then
        try:
            cfg = compose_stage(stage, command["overrides"])
            done, why = stage_finished(cfg, stage)
            if done:
                print(f"{stage}: finished ({why}); nothing to resume")
                continue
            left = shards_left(cfg, stage)
            print(f"{stage}: shards with work left: {left or 'none'} of {int(cfg.cluster.shards)}; then the merge")
            if cfg.cluster.kind == "slurm":
                submit_stage(cfg, stage, command["overrides"], shards=left)
            else:  # the stage's own entry point runs the shards left, then merges
                rc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{stage}.py"),
                                     *command["overrides"]], check=False).returncode
                if rc != 0:
                    print(f"{stage}: failed again (exit {rc})", file=sys.stderr)
                    return rc
        finally:
            os.chdir(cwd)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m s1.cluster.resume <run dir>   (make resume RUN=runs/<name>)", file=sys.stderr)
        return 2
    return explain_errors(lambda: resume(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
