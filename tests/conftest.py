"""Shared fixtures: the tiny model (built once, cached across sessions) and one full demo run per session."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("S1_CACHE", REPO / ".cache")).resolve()
SHARED_POOL = REPO.parent / "shared" / "data" / "pool"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(CACHE / "torch_extensions"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny random Qwen2 + BPE tokenizer (configs/model/tiny.yaml), built on first use."""
    from s1.tiny_model import ensure_tiny_model

    return ensure_tiny_model(CACHE / "models" / "tiny-qwen2", size="tiny")


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The untrained demo-size model (configs/model/demo.yaml)."""
    from s1.tiny_model import ensure_tiny_model

    return ensure_tiny_model(CACHE / "models" / "demo-qwen2", size="demo")


def chatty_copy(src: Path, out: Path) -> Path:
    """A copy of a tiny model with larger random weights, so greedy output varies instead of repeating one token."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(src, out)
    model = AutoModelForCausalLM.from_pretrained(out)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.5)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def chatty_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model made chatty (chatty_copy): varied greedy text, e.g. it often writes " two"."""
    return chatty_copy(tiny_model_dir, tmp_path_factory.mktemp("chatty") / "model")


@pytest.fixture(scope="session")
def shared_pool_dir() -> Path:
    """../shared/data/pool (real question pools); tests that need it skip with a reason elsewhere."""
    if not SHARED_POOL.is_dir():
        pytest.skip(f"real pools not found at {SHARED_POOL} (present on dev machines and CI only)")
    return SHARED_POOL


# The demo's training (567 float32 steps of the demo model) alone takes ~15 min on a 2-core CPU without AMX.
TIMING = ("seconds", "avg_seconds")   # wall time differs between any two runs; everything else must not


def untimed(x):
    """x without its wall-time fields, at any depth (records, metrics rows)."""
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if k not in TIMING}
    return [untimed(v) for v in x] if isinstance(x, list) else x


def run_script(script: str, *overrides: str, check: bool = True, timeout: float = 2400) -> subprocess.CompletedProcess:
    """Run scripts/<script> with Hydra overrides in a subprocess, as `make` would."""
    cmd = [sys.executable, str(REPO / "scripts" / script), *overrides]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """One full `make demo` pipeline (curate → train → eval) into a temp runs dir; returns its run dir."""
    runs = tmp_path_factory.mktemp("runs")
    common = ["experiment=demo", f"paths.runs_dir={runs}", "run.name=demo"]
    for script in ("curate.py", "train.py", "eval.py"):
        run_script(script, *common)
    return runs / "demo"


# ---- Strict mode: S1_REQUIRE=slurm,real-model,chromium,vllm turns a skip of those groups into a failure ---------
# Tests that need something a bare machine lacks call require_or_skip (or carry @requires): on a bare machine they
# skip with the reason, tagged "[group]"; where S1_REQUIRE names the group (.ci/run), they fail instead. Any other
# skip whose reason or marker belongs to a required group fails too (pytest_runtest_makereport below).
REQUIRE_GROUPS = {   # group: the command that enables its tests
    "slurm": "make slurm-up (root; make slurm-down stops it)",
    "real-model": "make real-model",
    "chromium": "the Debian package chromium (.ci/run sets it up)",
    "vllm": "make test-vllm (builds .venv-vllm with make vllm-env; the vLLM tests run in that venv)",
}
SKIP_TAG = re.compile(r"\[(" + "|".join(map(re.escape, REQUIRE_GROUPS)) + r")\] ")


def required_groups() -> set[str]:
    """The groups S1_REQUIRE names (comma-separated); an unknown name is a usage error naming the allowed ones."""
    names = {g.strip() for g in os.environ.get("S1_REQUIRE", "").split(",") if g.strip()}
    unknown = sorted(names - set(REQUIRE_GROUPS))
    if unknown:
        raise pytest.UsageError(f"S1_REQUIRE: unknown group(s) {unknown}; use a comma-separated subset of "
                                f"{','.join(REQUIRE_GROUPS)}")
    return names


def require_or_skip(group: str, reason: str) -> None:
    """Skip this test for `reason` (tagged [group]), or fail it where S1_REQUIRE names the group."""
    __tracebackhide__ = True   # reported at the caller's line
    assert group in REQUIRE_GROUPS, group
    if group in required_groups():
        pytest.fail(f"[{group}] S1_REQUIRE={os.environ['S1_REQUIRE']} needs this test to run, but: {reason}",
                    pytrace=False)
    pytest.skip(f"[{group}] {reason}")


def requires(group: str, missing: str | None):
    """Decorator form: the test runs when `missing` is None; else it skips (reported at the test), or fails before
    setup where S1_REQUIRE names the group."""
    return pytest.mark.s1_requires(group, missing)


def pytest_configure(config):
    required_groups()   # a misspelt S1_REQUIRE fails at start, not by silently requiring nothing
    config.addinivalue_line("markers", "s1_requires(group, missing): see tests/conftest.py requires()")


def _missing(item) -> list[tuple[str, str]]:
    return [mark.args for mark in item.iter_markers("s1_requires") if mark.args[1] is not None]


def pytest_collection_modifyitems(config, items):
    """@requires with something missing: a plain skip (reported at the test) unless S1_REQUIRE names the group."""
    required = required_groups()
    for item in items:
        plain = [(g, why) for g, why in _missing(item) if g not in required]
        if plain:
            item.add_marker(pytest.mark.skip(reason=f"[{plain[0][0]}] {plain[0][1]}"))


def pytest_runtest_setup(item):
    for group, reason in _missing(item):   # only required groups are left: a plain skip ran first
        require_or_skip(group, reason)


# Words in a skip's reason that say it is about a group, however it was skipped (pytest.skip, importorskip's
# "could not import 'vllm'", skipif(reason=...), a fixture's skip, @requires): under S1_REQUIRE such a skip fails.
GROUP_WORDS = {
    "slurm": ("[slurm]", "slurm", "sbatch", "squeue", "slurmctld"),
    "real-model": ("[real-model]", "real-model", "real model", "qwen2.5-0.5b-local"),
    "chromium": ("[chromium]", "chromium"),
    "vllm": ("[vllm]", "vllm"),
}


def skip_groups(reason: str, marker_groups: set[str] = frozenset()) -> set[str]:
    """The groups a skip belongs to: by its @requires markers, or by words of its reason."""
    text = reason.lower()
    return set(marker_groups) | {g for g, words in GROUP_WORDS.items() if any(w in text for w in words)}


def _skip_reason(rep) -> str:
    return rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)


def _fail_required_skip(rep, marker_groups: set[str]) -> None:
    """Turn a skipped report of a required group into a failure, in place."""
    if not rep.skipped or hasattr(rep, "wasxfail"):
        return
    required = required_groups()
    hit = sorted(skip_groups(_skip_reason(rep), marker_groups) & required)
    if hit:
        rep.outcome = "failed"
        rep.longrepr = (f"[{hit[0]}] S1_REQUIRE={os.environ['S1_REQUIRE']} needs this test to run, but it was "
                        f"skipped: {_skip_reason(rep)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    # only markers whose requirement is missing: a real-model test skipped for a missing vLLM is a vLLM skip
    _fail_required_skip(outcome.get_result(), {group for group, _ in _missing(item)})


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module skipped at collection (a module-level importorskip or pytest.skip(allow_module_level=True))."""
    outcome = yield
    _fail_required_skip(outcome.get_result(), set())


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Skips per group and the command that enables each (printed before pytest's closing line)."""
    counts = Counter()
    for rep in terminalreporter.stats.get("skipped", []):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        m = SKIP_TAG.search(reason)
        if m:
            counts[m.group(1)] += 1
    if not counts:
        return
    terminalreporter.write_sep("-", "skipped groups (S1_REQUIRE=<groups> makes these skips failures; .ci/run sets it)")
    for group in REQUIRE_GROUPS:
        if counts[group]:
            terminalreporter.write_line(f"{group:<10} {counts[group]:>3} skipped; enable with: {REQUIRE_GROUPS[group]}")
