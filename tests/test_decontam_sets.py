"""Decontamination sets of the paper (AIME 2022-2023 from the shipped pool, GPQA Diamond) and the released code's
cross-source check (each source against the sources collected before it)."""

from __future__ import annotations

import pytest
from conftest import REPO

from s1.curate.decontam import build_index, cross_source, decontaminate, load_decontam_set

BENCH = REPO / "data" / "benchmarks"
GPQA_CSV = REPO / "tests" / "data" / "gpqa_sample.csv"


def rec(q, source, i):
    return {"id": f"{source}-{i}", "source": source, "question": q}


def test_aime_2022_2023_comes_from_the_shipped_pool(shared_pool_dir):
    rows = load_decontam_set("aime_2022_2023", BENCH, shared_pool_dir)
    assert rows and all(r["id"].startswith(("aime-2022", "aime-2023")) for r in rows)
    assert len(rows) == 59                 # 2022 I+II and 2023 I+II, 15 each; upstream 2023-I has 14
    index = build_index(["aime_2022_2023"], BENCH, 8, shared_pool_dir)
    pool = [rec("Find x. " + rows[0]["problem"], "numina", 0), rec("Start at 4, add 7, 8 times.", "numina", 1)]
    result = decontaminate(pool, index)
    assert [r["id"] for r in result.kept] == ["numina-1"]
    assert result.dropped[0][1] == "contaminated:aime_2022_2023"


def test_gpqa_questions_are_in_the_index():
    index = build_index([str(GPQA_CSV)], BENCH, 8)
    pool = [rec("Which organelle holds most of the DNA outside the nucleus in an animal cell? Explain.", "sci", 0),
            rec("Which organelle makes ribosomes?", "sci", 1)]
    result = decontaminate(pool, index)
    assert [r["id"] for r in result.kept] == ["sci-1"] and result.dropped[0][1] == "contaminated:gpqa_sample"


def test_each_source_is_checked_against_the_sources_before_it(tmp_path):
    shared = "Let a, b and c be positive reals with a + b + c = 1. Find the minimum of 1/a + 1/b + 1/c."
    pool = [rec(shared, "math", 0), rec("Compute 2 + 2 in base 3 and explain the carry.", "math", 1),
            rec("Prove it. " + shared, "omni", 0), rec("A different omni question about primes and squares.", "omni", 1),
            rec(shared + " Justify.", "numina", 0), rec("Compute 2 + 2 in base 3 and explain the carry.", "numina", 1)]
    result = cross_source(pool, 8, tmp_path / "x.jsonl")
    assert [r["id"] for r in result.kept] == ["math-0", "math-1", "omni-1"]     # the first source keeps its own
    assert sorted(reason for _, reason in result.dropped) == ["overlaps earlier source:math"] * 3
    assert len((tmp_path / "x.jsonl").read_text().splitlines()) == 3


def test_same_source_duplicates_are_left_to_dedup():
    q = "Let a, b and c be positive reals with a + b + c = 1. Find the minimum of 1/a + 1/b + 1/c."
    result = cross_source([rec(q, "math", 0), rec(q, "math", 1)], 8)
    assert len(result.kept) == 2


def test_hub_sets_offline_say_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="livecodebench.*run.offline=false"):
        load_decontam_set("livecodebench", BENCH)
