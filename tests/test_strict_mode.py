"""Strict mode (S1_REQUIRE, tests/conftest.py): a skip for a missing Slurm, real model, Chromium or vLLM becomes a
failure where CI asks for that group, so every such skip must go through require_or_skip or @requires."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REQUIRE_GROUPS, require_or_skip

TESTS = Path(__file__).parent
# Words in a skip message that say it is about one of the groups (the command or thing that enables it).
GROUP_HINTS = ("make real-model", "make slurm-up", "make test-vllm", "make vllm-env", "chromium", "Slurm")


def plain_skips_about_a_group(source: str) -> list[int]:
    """Lines where pytest.skip(...) is called with a message naming a group's enabler."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "skip"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest"):
            message = ast.get_source_segment(source, node) or ""
            if any(h.lower() in message.lower() for h in GROUP_HINTS):
                lines.append(node.lineno)
    return lines


def test_group_skips_go_through_require_or_skip():
    found = {p.name: lines for p in sorted(TESTS.glob("*.py")) if p.name != "conftest.py"
             if (lines := plain_skips_about_a_group(p.read_text()))}
    assert not found, (f"plain pytest.skip about a required group at {found}: use conftest.require_or_skip(group, "
                       f"reason) or @requires(group, missing), so that S1_REQUIRE can make it a failure")


def test_the_checker_sees_a_plain_group_skip():
    assert plain_skips_about_a_group('import pytest\npytest.skip(f"run `make real-model` first")\n') == [2]
    assert plain_skips_about_a_group('import pytest\npytest.skip("a GPU machine may have liger-kernel")\n') == []


def test_require_or_skip_skips_unless_the_group_is_required(monkeypatch):
    monkeypatch.delenv("S1_REQUIRE", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^\[slurm\] no controller$"):
        require_or_skip("slurm", "no controller")
    monkeypatch.setenv("S1_REQUIRE", "real-model,slurm")
    with pytest.raises(pytest.fail.Exception, match=r"\[slurm\] S1_REQUIRE=real-model,slurm needs this test to run, "
                                                    r"but: no controller"):
        require_or_skip("slurm", "no controller")
    with pytest.raises(pytest.skip.Exception):   # a group not named stays a skip
        require_or_skip("chromium", "not on PATH")
    monkeypatch.setenv("S1_REQUIRE", "slrum")
    with pytest.raises(pytest.UsageError, match="unknown group"):
        require_or_skip("slurm", "no controller")
    assert set(REQUIRE_GROUPS) == {"slurm", "real-model", "chromium", "vllm"}
