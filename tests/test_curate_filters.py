"""Curation filters on real-looking inputs: quarantine, quality rules, decontamination, dedup; counts add up."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from s1.config import QualityConfig, SourceConfig
from s1.curate.decontam import BenchmarkIndex, build_index, decontaminate, dedup
from s1.curate.funnel import Funnel
from s1.curate.quality import apply_quality_rules
from s1.curate.sources import load_pool
from s1.curate.validate import quarantine_invalid
from s1.data.schema import make_record

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "data" / "benchmarks"


def rec(q, source="NuminaMath", source_type="AI-MO/NuminaMath-CoT/aops_forum", answer="7", trace="Let me think.",
        attempt="\\boxed{7}", **meta):
    return make_record(q, source=source, answer=answer, source_type=source_type, metadata=meta,
                       thinking_trajectories=[trace] if trace is not None else [], attempt=attempt)


def test_quarantine_reasons_from_a_messy_jsonl(tmp_path):
    lines = [
        json.dumps({"problem": "Find $x$ if $2x+3=11$.", "answer": "4"}).encode(),
        b'{"problem": "Compute $1+1$.", "answer": "2"',                      # truncated line
        '{"problem": "caf\u00e9 \u00e0 deux", "answer": "1"}'.encode("latin-1"),   # not UTF-8
        json.dumps({"problem": "", "answer": "3"}).encode(),
        json.dumps({"problem": 12, "answer": "3"}).encode(),
        json.dumps({"answer": "3"}).encode(),
        json.dumps({"problem": "Find $x$ if $2x+3=11$.", "answer": "4"}).encode(),   # same question again
        json.dumps({"problem": "Prove it." + "x" * 600, "answer": "5"}).encode(),
        b"[1, 2, 3]",
    ]
    path = tmp_path / "pool.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    src = OmegaConf.structured(SourceConfig(kind="jsonl", name="messy", path=str(path),
                                            field_map={"question": "problem"}))
    pool = load_pool([src], BENCH)
    result = quarantine_invalid(pool, max_field_chars=500)
    reasons = sorted(r for _, r in result.dropped)
    assert reasons == sorted(["invalid_json", "not_utf8", "empty_question", "non_string_question",
                              "missing_question", "duplicate_id", "field_too_large:question", "not_an_object"])
    assert [r["question"] for r in result.kept] == ["Find $x$ if $2x+3=11$."]
    funnel = Funnel(tmp_path)
    funnel.start("load", pool)
    funnel.add("validate", pool, result)
    quarantined = [json.loads(x) for x in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    assert len(quarantined) == 8 and all(q["reason"] and q["source"] == "messy" for q in quarantined)
    bad_json = next(q for q in quarantined if q["reason"] == "invalid_json")
    assert bad_json["where"].endswith("pool.jsonl:2") and "Compute" in bad_json["raw"]
    step = funnel.steps[-1]
    assert step["in"] == step["kept"] + sum(step["dropped"].values())


def test_quality_rules_catch_each_flaw():
    cfg = QualityConfig()
    cases = {
        "api_error": rec("What is $3+4$?", trace="Error code: 429 - Resource has been exhausted (e.g. check quota)."),
        "missing_answer": rec("What is $3+5$?", answer="NA"),
        "missing_trace": rec("What is $3+6$?", trace=None, attempt=None),
        "image": rec("![](https://cdn.mathpix.com/cropped/2024_04_20_6027bc27089ed4fc493cg-11.jpg?height=300)\n"
                     "In the figure, find the area of triangle $ABC$."),
        "asy": rec("[asy]\ndraw((0,0)--(5,0)--(5,3)--cycle);\n[/asy]\nFind the hypotenuse."),
        "multi_part": rec("p1. Find all primes $p$ with $p^2+2$ prime.\n\np2. Solve $x^2=4$."),
        "bold_digits": rec("**19.** Let $n$ be the number of ordered pairs $(a,b)$. Find $n$."),
    }
    result = apply_quality_rules(list(cases.values()), cfg)
    assert [reason for _, reason in result.dropped] == list(cases)
    assert result.kept == []
    # a long real trace that mentions a rate limit is not an API error
    long_trace = "Rate limit of the queue is 3 per second, so " * 30
    keep = [
        rec("Find the hypotenuse of a 3-4-5 triangle.", trace=long_trace),
        rec("[asy]\ndraw((0,0)--(1,1));\n[/asy]\n**1.** Find $x$.", source="AIME", source_type="qq8933/AIME_1983_2024"),
        rec("Let $p$ be a prime and $p^2 = 49$; find $p$."),            # "p" without a part number
        rec("Compute $2**3$ in Python notation."),                      # no bold digits: no closing pattern
    ]
    result = apply_quality_rules(keep, cfg)
    assert len(result.kept) == 4, result.dropped
    # bare question pools (no traces): missing_trace is off when require_traces is off
    bare = rec("What is $3+6$?", trace=None, attempt=None)
    assert apply_quality_rules([bare], QualityConfig(require_traces=False)).kept == [bare]


def test_theoremqa_picture_questions_are_image_drops():
    r = rec("What is the area of the shaded region in the figure?", has_picture=True)
    assert [x for _, x in apply_quality_rules([r], QualityConfig()).dropped] == ["image"]


def test_short_questions_are_compared_whole_and_long_ones_by_8grams():
    index = BenchmarkIndex(n=8)
    index.add("synthetic", "synthetic-3", "Start at 4, add 7, 9 times. Last digit?")      # 8 words: one 8-gram
    index.add("synthetic", "synthetic-4", "Start at 2, add 3, 5 times.")                   # 6 words: no 8-gram
    index.add("math500", "test/x.json", "Let $f(x) = x^2 + 3x$. Find the sum of all values of $x$ with $f(x)=4$.")
    pool = [
        rec("start at 2,  add 3, 5 times."),                                   # whole match, case/space differ
        rec("Start at 4, add 7, 9 times. Last digit?"),
        rec("Start at 4, add 7, 8 times. Last digit?"),                        # a different question
        rec("Hence let $f(x) = x^2 + 3x$. find the sum of all values of $y$."),  # shares an 8-gram
        rec("Start at 2, add 3, 6 times."),
    ]
    result = decontaminate(pool, index)
    assert [r["question"] for r in result.kept] == ["Start at 4, add 7, 8 times. Last digit?",
                                                    "Start at 2, add 3, 6 times."]
    assert sorted(reason for _, reason in result.dropped) == ["contaminated:math500"] + ["contaminated:synthetic"] * 2


def test_synthetic_benchmark_copies_are_all_removed():
    from s1.data.benchmarks import load_benchmark
    from s1.data.synthetic import generate_pool

    index = build_index(["aime24", "math500", "synthetic"], BENCH, 8)
    pool = list(generate_pool(3000, seed=0, benchmark_files=[BENCH / "aime24.jsonl", BENCH / "math500.jsonl"]))
    pool = [r for r in pool if r["question"].strip()]
    result = decontaminate(pool, index)
    copies = [r for r in pool if json.loads(r["metadata"]).get("synthetic_flaw") == "benchmark_copy"]
    dropped_ids = {r["id"] for r, _ in result.dropped}
    assert copies and all(r["id"] in dropped_ids for r in copies)
    held_out = {r["problem"] for r in load_benchmark("synthetic", BENCH)}
    assert not any(r["question"] in held_out for r in result.kept)
    assert any(reason == "contaminated:synthetic" for _, reason in result.dropped)


def test_math_pool_loses_every_math500_problem(shared_pool_dir, tmp_path):
    src = OmegaConf.structured(SourceConfig(kind="pool", name="MATH", path=str(shared_pool_dir / "math.jsonl"),
                                            field_map={"question": "problem"}))
    pool = load_pool([src], BENCH)
    index = build_index(["math500"], BENCH, 8)
    result = decontaminate(pool, index, tmp_path / "matches.jsonl")
    in500 = [r for r in pool if json.loads(r["metadata"])["in_math500"]]
    dropped_ids = {r["id"] for r, _ in result.dropped}
    assert len(in500) == 500 and all(r["id"] in dropped_ids for r in in500)
    assert not any(json.loads(r["metadata"])["in_math500"] for r in result.kept)
    matches = [json.loads(x) for x in (tmp_path / "matches.jsonl").read_text().splitlines()]
    assert len(matches) == len(result.dropped) and all(m["benchmark"] == "math500" for m in matches)
    others = [m for m in matches if m["id"] not in {r["id"] for r in in500}]
    # the rest share boilerplate 8-grams ("express your answer as a common fraction ...") with MATH500
    print(f"MATH500 decontamination: 500/500 in_math500 removed; {len(others)} other MATH problems removed; "
          f"e.g. {[m['evidence'] for m in others[:3]]}")
    assert all(len(m["evidence"].split()) == 8 for m in others)


def test_dedup_keeps_the_first_of_normalised_duplicates():
    pool = [rec("Find  $x$."), rec("find $x$.", source="MATH"), rec("Find $y$.")]
    result = dedup(pool)
    assert [r["question"] for r in result.kept] == ["Find  $x$.", "Find $y$."]
    assert [(r["source"], why) for r, why in result.dropped] == [("MATH", "duplicate")]


def test_bad_source_config_names_key_value_and_fix(tmp_path):
    import pytest

    from s1.runtime import ConfigError

    missing = OmegaConf.structured(SourceConfig(kind="jsonl", path=str(tmp_path / "nope.jsonl")))
    with pytest.raises(ConfigError) as e:
        load_pool([missing], BENCH)
    assert e.value.key == "curate.sources[0].path" and "existing jsonl file" in e.value.fix
    typo = OmegaConf.structured(SourceConfig(kind="synthetic", size=10, field_map={"questoin": "problem"}))
    with pytest.raises(ConfigError) as e:
        load_pool([typo], BENCH)
    assert e.value.key == "curate.sources[0].field_map.questoin" and "question" in e.value.fix
