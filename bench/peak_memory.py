"""Peak resident memory of a command and every process it starts (a benchmark, not a test).

  .venv/bin/python bench/peak_memory.py make rehearsal
  .venv/bin/python bench/peak_memory.py .venv-vllm/bin/python scripts/train.py experiment=rehearsal train.max_steps=2
  .venv/bin/python bench/peak_memory.py --peft [key=value ...]   # full fine-tune vs LoRA on the real 0.5B

Samples the resident set (/proc, Linux) of the command's whole process tree every 0.5 s. A process that is
OOM-killed shows as the command's failure, with the peak it reached.
Last line: rc=… wall_s=… peak_total_gib=… peak_process_gib=…
--peft: the same 2 training steps of the real Qwen2.5 0.5B (make real-model) in one process, once as a full
fine-tune and once with train.peft=lora, each peak beside the memory planner's CPU estimate of the same run
(s1.train.memory.cpu_estimate_gib on the run's config.yaml); last line: full_peak_gib=… lora_peak_gib=…
lora_vs_full=… full_planner_gib=… lora_planner_gib=…
bench/peak_memory_calibration.json records a run of it (command, CPU); tests/test_train_memory.py holds the planner
within a band of those figures.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def tree(pid: int) -> list[int]:
    """pid and its descendants."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += tree(int(child))
    return out


def rss_gib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20        # kB -> GiB
    except OSError:
        pass
    return 0.0


def main(cmd: list[str]) -> int:
    if not cmd:
        raise SystemExit(__doc__)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    peak_total = peak_process = 0.0
    while proc.poll() is None:
        sizes = [rss_gib(pid) for pid in tree(proc.pid)]
        peak_total, peak_process = max(peak_total, sum(sizes)), max(peak_process, max(sizes))
        time.sleep(0.5)
    print(f"rc={proc.returncode} wall_s={time.perf_counter() - start:.0f} peak_total_gib={peak_total:.2f} "
          f"peak_process_gib={peak_process:.2f}", flush=True)
    return proc.returncode


PEFT_RUN = ["scripts/train.py", "experiment=rehearsal", "train.nproc_per_node=1", "train.deepspeed=null",
            "train.max_steps=2", "train.save_steps=0", "train.dataset=data/fixtures/s1k_sample.parquet"]


def planner_gib(overrides: list[str], run_name: str) -> float:
    """The planner's CPU estimate for the run that just finished (its resolved config.yaml)."""
    from omegaconf import OmegaConf

    from s1.train.memory import cpu_estimate_gib, setup_from_config, shape_of

    runs = next((o.split("=", 1)[1] for o in overrides if o.startswith("paths.runs_dir=")), "runs")
    cfg = OmegaConf.load(Path(runs) / run_name / "train" / "config.yaml")
    return cpu_estimate_gib(shape_of(cfg), setup_from_config(cfg))


def compare_peft(overrides: list[str]) -> int:
    """Full fine-tune vs LoRA, same steps and data: each run's peak (process tree) and the planner's estimate on its
    own line, then both."""
    peaks, planned = {}, {}
    for peft in ("none", "lora"):
        cmd = [sys.executable, *PEFT_RUN, f"run.name=mem_{peft}", f"train.peft={peft}", *overrides]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, sum(rss_gib(pid) for pid in tree(proc.pid)))
            time.sleep(0.5)
        print(f"peft={peft} rc={proc.returncode} wall_s={time.perf_counter() - start:.0f} peak_total_gib={peak:.2f}",
              flush=True)
        if proc.returncode:
            return proc.returncode
        peaks[peft], planned[peft] = peak, planner_gib(overrides, f"mem_{peft}")
        print(f"peft={peft} measured_gib={peak:.2f} planner_cpu_gib={planned[peft]:.2f} "
              f"planner_vs_measured={planned[peft] / peak:.3f}", flush=True)
    print(f"full_peak_gib={peaks['none']:.2f} lora_peak_gib={peaks['lora']:.2f} "
          f"lora_vs_full={peaks['lora'] / peaks['none']:.3f} full_planner_gib={planned['none']:.2f} "
          f"lora_planner_gib={planned['lora']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(compare_peft(args[1:]) if args[:1] == ["--peft"] else main(args))
