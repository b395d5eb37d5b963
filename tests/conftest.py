"""Shared fixtures: the tiny model (built once, cached across sessions) and one full demo run per session."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_script(script: str, *overrides: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
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
