"""Strict mode (S1_REQUIRE, tests/conftest.py): a skip for a missing Slurm, real model, Chromium or vLLM becomes a
failure where CI asks for that group, however the test was skipped: pytest.skip, importorskip, skipif, a module
skipped at collection, or @requires. Checked by running small test files in a child pytest with this conftest."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, REQUIRE_GROUPS, require_or_skip, skip_groups

pytest_plugins = ["pytester"]

SKIPPING = {
    "test_plain.py": 'import pytest\ndef test_a():\n    pytest.skip("no running local Slurm: start one")\n',
    "test_importorskip.py": 'import pytest\ndef test_a():\n    pytest.importorskip("vllm_not_installed_anywhere")\n',
    "test_skipif.py": 'import pytest\n@pytest.mark.skipif(True, reason="chromium is not on PATH")\ndef test_a():\n    pass\n',
    "test_requires.py": 'from conftest import requires\n@requires("real-model", "not built")\ndef test_a():\n    pass\n',
    "test_module_skip.py": 'import pytest\npytest.importorskip("vllm_not_installed_anywhere")\ndef test_a():\n    pass\n',
    "test_other.py": 'import pytest\ndef test_a():\n    pytest.skip("a GPU machine may have liger-kernel")\n',
}


@pytest.fixture
def skipping_tests(pytester):
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(**{name[:-3]: body for name, body in SKIPPING.items()})
    return pytester


def test_every_kind_of_group_skip_fails_when_its_group_is_required(skipping_tests, monkeypatch):
    monkeypatch.setenv("S1_REQUIRE", "slurm,real-model,chromium,vllm")
    result = skipping_tests.runpytest_subprocess("-p", "no:cacheprovider", "-rfEs", "--continue-on-collection-errors")
    out = result.stdout.str()
    # a failure in the call phase reads FAILED, in setup (skipif, @requires) or collection ERROR: none passes
    for name in ("test_plain.py", "test_importorskip.py", "test_skipif.py", "test_requires.py", "test_module_skip.py"):
        assert re.search(rf"^(FAILED|ERROR) {name}", out, re.M), (name, out)
    assert "S1_REQUIRE=slurm,real-model,chromium,vllm needs this test to run" in out
    result.assert_outcomes(failed=2, skipped=1, errors=3)   # the liger skip stays a skip
    assert result.ret != 0


def test_the_same_skips_stay_skips_when_no_group_is_required(skipping_tests, monkeypatch):
    monkeypatch.delenv("S1_REQUIRE", raising=False)
    result = skipping_tests.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=6)


def test_a_met_requirement_does_not_make_another_groups_skip_its_own(pytester, monkeypatch):
    """A real-model test (real model present) that skips for a missing vLLM is a vLLM skip: with real-model required
    and vllm not, it stays a skip (the main venv's run in .ci/run); with vllm required, it fails."""
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_both='import pytest\nfrom conftest import requires\n@requires("real-model", None)\n'
                                  'def test_a():\n    pytest.skip("[vllm] vLLM is not importable here")\n')
    monkeypatch.setenv("S1_REQUIRE", "real-model")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv("S1_REQUIRE", "real-model,vllm")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(failed=1)


def test_skip_groups_reads_markers_and_reasons():
    assert skip_groups("could not import 'vllm': No module named 'vllm'") == {"vllm"}
    assert skip_groups("[real-model] the real model is not built") == {"real-model"}
    assert skip_groups("anything", {"slurm"}) == {"slurm"}
    assert skip_groups("a GPU machine may have liger-kernel") == set()


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
