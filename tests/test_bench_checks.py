"""The benchmarks' own checks: a BF overhead measured without forced waits, or against another token count,
stops the bench; the curation scale figure is a fit over 3 sizes; cold runs drop the pool from the page cache."""

from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

from conftest import REPO


def load_bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bf_overhead_refuses_a_comparison_without_forced_waits():
    bf = load_bench("bf_overhead")
    forced = [SimpleNamespace(waits_used=2, thinking_tokens=100, answer_tokens=10) for _ in range(3)]
    assert bf.MIN_WAITS >= 2 and bf.forcing_problems(forced, [110, 110, 110], bf.MIN_WAITS) == []
    unforced = forced[:2] + [SimpleNamespace(waits_used=0, thinking_tokens=100, answer_tokens=10)]
    assert bf.forcing_problems(unforced, [110, 110, 110], 2) == ["sequence 2: 0 forced waits, fewer than 2"]
    assert "token counts differ" in bf.forcing_problems(forced, [110, 110, 109], 2)[0]


def test_curate_bench_scale_fit_and_cold_page_cache(tmp_path):
    cb = load_bench("curate_throughput")
    assert math.isclose(cb.scale_exponent([(100, 1.0), (316, 3.16), (1000, 10.0)]), 1.0, rel_tol=1e-3)
    assert math.isclose(cb.scale_exponent([(100, 1.0), (316, 10.0), (1000, 100.0)]), 2.0, rel_tol=1e-2)
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"question": "q"}\n' * 1000)
    assert cb.drop_from_page_cache(pool).startswith("pool dropped")
    assert "NOT dropped" in cb.drop_from_page_cache(tmp_path / "missing.jsonl")


def test_peak_memory_counts_the_child_processes_and_their_exit(capsys):
    """A grandchild holding ~300 MiB is in the tree's peak; the command's exit status comes back."""
    import sys

    pm = load_bench("peak_memory")
    child = ("import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-c', "
             "\"import time; b = bytearray(300 * 2**20); time.sleep(1.5)\"]) + 3)")
    assert pm.main([sys.executable, "-c", child]) == 3
    figures = dict(kv.split("=") for kv in capsys.readouterr().out.split())
    assert figures["rc"] == "3" and 0.28 <= float(figures["peak_process_gib"]) <= float(figures["peak_total_gib"]) < 1
