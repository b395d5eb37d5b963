"""The synthetic pool: reproducible, correct answers, realistic flaws at about the configured rates."""

from __future__ import annotations

import json
from collections import Counter

from s1.data.schema import RECORD_FIELDS, question_id, record_metadata
from s1.data.synthetic import FLAW_RATES, SOURCES, TEMPLATES, generate_pool, generate_test_set, solve


def test_same_seed_same_pool_other_seed_other_pool(repo):
    a = list(generate_pool(300, seed=3))
    assert a == list(generate_pool(300, seed=3))
    assert a != list(generate_pool(300, seed=4))


def test_clean_records_are_solvable_from_their_trace():
    for rec in generate_pool(500, seed=0, flaws=False):
        assert set(RECORD_FIELDS) <= set(rec)
        assert rec["id"] == question_id(rec["question"])
        trace = rec["thinking_trajectories"][0].splitlines()
        last = trace[-1].split("=")[-1]
        attempt = rec["attempt"].removeprefix("Final Answer: ")      # some attempts say so, as real ones do
        if record_metadata(rec)["premature_stop"]:   # concluded at a 0 on line 2 or 3: its answer is 0
            assert last == "0" and attempt == "\\boxed{0}" and trace[-1][:2] in ("2:", "3:")
        else:
            assert last == rec["answer"] and attempt == f"\\boxed{{{rec['answer']}}}"
        assert len(rec["question"].split()) <= 9  # 8-gram decontamination relies on it


def test_solve_matches_hand_computation():
    assert solve(7, 9, 2, "+") == (5, ["2:7+9=6", "1:6+9=5"])
    assert solve(3, 5, 3, "+") == (8, ["3:3+5=8", "2:8+5=3", "1:3+5=8"])


def test_flaws_appear_at_about_their_rates(repo):
    bench = [repo / "data" / "benchmarks" / "aime24.jsonl"]
    recs = list(generate_pool(20000, seed=0, benchmark_files=bench))
    flaws = Counter(record_metadata(r).get("synthetic_flaw") for r in recs)
    for flaw, rate in FLAW_RATES.items():
        assert 0.5 * rate * len(recs) < flaws[flaw] < 1.6 * rate * len(recs), (flaw, flaws[flaw])
    images = [r for r in recs if record_metadata(r).get("synthetic_flaw") == "image"]
    assert all(r["question"].startswith("![Image](") for r in images)
    copies = [r for r in recs if record_metadata(r).get("synthetic_flaw") == "benchmark_copy"]
    aime = {json.loads(line)["problem"] for line in open(bench[0])}
    assert copies and all(r["question"] in aime for r in copies)
    sources = Counter(r["source"] for r in recs)
    assert sources.most_common(1)[0][0] == "NuminaMath" and set(sources) == set(SOURCES)


def test_test_set_is_distinct_and_covers_every_template():
    rows = generate_test_set(300)
    assert len({r["problem"] for r in rows}) == 300
    starts = {r["problem"].split()[0] for r in rows}
    assert {t[0].split()[0] for t in TEMPLATES} <= starts
