"""make gpu-kit and bench/gpu_check.sh's install step, here: the kit's wheels install with pip --no-index --no-deps
into a clean --target folder for the GPU machine's Python (3.12, manylinux x86-64), everything they need is in the
kit or already on that machine, and the kit plus the repo stays under the 64 MiB a device call carries."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu_kit  # noqa: E402

KIT = REPO / ".gpu-kit"
CALL_LIMIT_MIB = 64
# what pip prints when no index it can reach has the package at all (no network, DNS, proxy, an offline mirror);
# a wrong pin lists the versions it found instead of "none"
OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable|"
                     r"Failed to establish a new connection|ProxyError|\(from versions: none\)")


@pytest.fixture(scope="module")
def kit():
    """The kit make gpu-kit built, or built now (pip download from the registry, a few seconds)."""
    if len(list(KIT.glob("*.whl"))) != len(gpu_kit.PACKAGES):
        proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_kit.py")], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode and OFFLINE.search(proc.stdout + proc.stderr):
            pytest.skip("make gpu-kit downloads its wheels from PyPI, which this machine cannot reach "
                        "(run `make gpu-kit` where PyPI is reachable)")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return sorted(KIT.glob("*.whl"))


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_kit_and_the_repo_fit_one_device_call(kit):
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    repo_bytes = sum((REPO / f).stat().st_size for f in tracked.decode().split("\0") if f and (REPO / f).is_file())
    kit_bytes = sum(w.stat().st_size for w in kit)
    assert len(kit) == len(gpu_kit.PACKAGES)
    assert (repo_bytes + kit_bytes) / 2**20 < CALL_LIMIT_MIB - 2, (repo_bytes / 2**20, kit_bytes / 2**20)


def test_everything_the_kit_needs_is_in_it_or_on_the_machine(kit):
    from packaging.requirements import Requirement

    machine = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "extra": "",
               "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "os_name": "posix"}
    have = {norm(w.name.split("-")[0]) for w in kit} | {norm(n) for n in gpu_kit.DEVICE_PACKAGES}
    missing = []
    for w in kit:
        meta = next(n for n in zipfile.ZipFile(w).namelist() if n.endswith(".dist-info/METADATA"))
        for line in zipfile.ZipFile(w).read(meta).decode().splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            req = Requirement(line.split(":", 1)[1])
            if (req.marker is None or req.marker.evaluate(machine)) and norm(req.name) not in have:
                missing.append((w.name, req.name))
    assert not missing, missing


def test_the_install_step_works_with_no_index_into_a_clean_target(kit, tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--install-only"], cwd=REPO, text=True,
                          capture_output=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PY": sys.executable, "SITE": str(site),
                               "WORK": str(tmp_path / "work"), "HOME": str(tmp_path)})
    assert proc.returncode == 0 and "install_rc=0" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"install_wheels={len(gpu_kit.PACKAGES)}" in proc.stdout
    installed = {norm(p.name.split("-")[0]) for p in site.glob("*.dist-info")}
    assert installed == {norm(w.name.split("-")[0]) for w in kit}
    assert (site / "deepspeed" / "runtime" / "zero" / "stage3.py").is_file()


def test_the_check_script_parses():
    assert subprocess.run(["bash", "-n", str(REPO / "bench" / "gpu_check.sh")]).returncode == 0
