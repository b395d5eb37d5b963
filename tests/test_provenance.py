"""Provenance: an unmodified checkout reads as clean after `make install` (which rewrites s1.egg-info/)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from s1.report.provenance import git_commit


@pytest.fixture
def clone(repo, tmp_path):
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout (or git missing): nothing to check")
    proc = subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(repo), str(tmp_path / "clone")],
                          capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"git clone of this checkout failed: {proc.stderr.strip()[:200]}")
    return tmp_path / "clone"


def test_build_outputs_do_not_make_a_fresh_clone_dirty(clone):
    tracked_but_ignored = subprocess.run(["git", "ls-files", "-ci", "--exclude-standard"], cwd=clone,
                                         capture_output=True, text=True, check=True).stdout.split()
    assert tracked_but_ignored == [], "ignored files are tracked: every install makes the checkout dirty"
    (clone / "s1.egg-info").mkdir(exist_ok=True)  # what pip install -e writes
    (clone / "s1.egg-info" / "PKG-INFO").write_text("Metadata-Version: 2.4\nName: s1\nVersion: 0.0.0\n")
    (clone / "s1.egg-info" / "SOURCES.txt").write_text("s1/__init__.py\n")
    assert "uncommitted" not in git_commit(clone)
    (clone / "README.md").write_text("changed\n")
    assert git_commit(clone).endswith("(uncommitted changes)")
