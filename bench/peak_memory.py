"""Peak resident memory of a command and every process it starts (a benchmark, not a test).

  .venv/bin/python bench/peak_memory.py make rehearsal
  .venv/bin/python bench/peak_memory.py .venv-vllm/bin/python scripts/train.py experiment=rehearsal train.max_steps=2
  .venv/bin/python bench/peak_memory.py --peft [key=value ...]   # full fine-tune vs LoRA on the real 0.5B

Samples the resident set (/proc, Linux) of the command's whole process tree every 0.5 s. A process that is
OOM-killed shows as the command's failure, with the peak it reached.
Last line: rc=… wall_s=… peak_total_gib=… peak_process_gib=…
--peft: the same 2 training steps of the real Qwen2.5 0.5B (make real-model) in one process, once as a full
fine-tune and once with train.peft=lora; last line: full_peak_gib=… lora_peak_gib=… lora_vs_full=…
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


def compare_peft(overrides: list[str]) -> int:
    """Full fine-tune vs LoRA, same steps and data: each run's peak (process tree) on its own line, then both."""
    peaks = {}
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
        peaks[peft] = peak
    print(f"full_peak_gib={peaks['none']:.2f} lora_peak_gib={peaks['lora']:.2f} "
          f"lora_vs_full={peaks['lora'] / peaks['none']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(compare_peft(args[1:]) if args[:1] == ["--peft"] else main(args))
