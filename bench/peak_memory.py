"""Peak resident memory of a command and every process it starts (a benchmark, not a test).

  .venv/bin/python bench/peak_memory.py make rehearsal
  .venv/bin/python bench/peak_memory.py .venv-vllm/bin/python scripts/train.py experiment=rehearsal train.max_steps=2

Samples the resident set (/proc, Linux) of the command's whole process tree every 0.5 s. A process that is
OOM-killed shows as the command's failure, with the peak it reached.
Last line: rc=… wall_s=… peak_total_gib=… peak_process_gib=…
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
