"""AIME 2025 ships in data/ (provenance in data/README.md) and runs in make eval and the offline harness task."""

from __future__ import annotations

import hashlib

from conftest import REPO

AIME25 = REPO / "data" / "benchmarks" / "aime25.jsonl"


def test_aime25_is_shipped_with_its_provenance():
    digest = hashlib.sha256(AIME25.read_bytes()).hexdigest()
    readme = (REPO / "data" / "README.md").read_text()
    assert digest in readme and "armenjeddi/mcd" in readme          # the checksum and origin are written down


def test_aime25_loads_as_a_named_benchmark_and_grades_as_integers():
    from s1.data.benchmarks import load_benchmark
    from s1.eval.runner import grade

    rows = load_benchmark("aime25", REPO / "data" / "benchmarks")
    assert len(rows) == 30 and {r["id"] for r in rows} >= {"2025-I-1", "2025-II-15"}
    assert all(r["answer"].isdigit() and 0 <= int(r["answer"]) <= 999 for r in rows)
    first = next(r for r in rows if r["id"] == "2025-I-1")
    assert grade("<|im_start|>answer\nAnswer: \\boxed{070}", first, "aime25")   # AIME's integer rule: 070 == 70


def test_aime25_harness_task_is_offline():
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(REPO / "s1" / "lm_eval" / "tasks"), include_defaults=False)  # ours only: fast
    task = get_task_dict(["aime25_nofigures"], manager)["aime25_nofigures"]
    docs = list(task.test_docs())
    assert len(docs) == 30 and docs[0]["problem"].startswith("Find the sum of all integer bases")


def test_harness_cons_votes_by_answer_class_and_reads_gpqa_letters():
    """The harness task's cons@n votes on mapped answers ("016" = "16"), as make eval's, and a GPQA answer is read
    with extract_choice (the chosen letter), not the raw answer text."""
    from s1.lm_eval.tasks.utils import process_results_aime, process_results_gpqa

    a = "<|im_start|>answer\nAnswer: "
    out = process_results_aime({"answer": "16"}, [[a + "7", a + "016", a + "16", a + "8"]])
    assert out["cons@4"] == 1                       # raw strings would tie 7 / 016 / 16 / 8 and the first (7) win
    g = process_results_gpqa({"answer": "C", "multiple_choice": True},
                             [[a + "B", a + "(C) 250 eV", a + "C) 250 eV"]])
    assert g["extracted_answers"] == ["B", "C", "C"] and g["cons@3"] == 1
