"""Grader: answer extraction and equivalence on real-looking model outputs, adversarial ones included."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from s1.grading import extract_answer, grade_many, is_correct

# (response as a model writes it, reference, integer_answer, expected)
CASES = [
    ("So the total is $\\boxed{204}$.", "204", True, True),
    ("Answer: 016", "16", True, True),
    ("\\boxed{016}", "16", True, True),
    ("\\boxed{16}", "016", True, True),
    ("The answer is \\boxed{0}", "0", True, True),
    ("\\boxed{25}", "025", True, True),
    ("\\boxed{1{,}000}", "1000", False, True),
    ("Answer: 73.", "73", True, True),
    ("Answer: $73$", "73", True, True),
    ("\\boxed{72}", "73", True, False),
    ("Answer: 16 apples", "16", True, True),            # units after the number are accepted
    ("\\boxed{\\frac{1}{2}}", "\\frac12", False, True),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", False, True),
    ("\\boxed{0.5}", "\\frac{1}{2}", False, True),
    ("\\boxed{\\tfrac{3}{4}}", "0.75", False, True),
    ("\\boxed{\\frac{2}{4}}", "\\frac{1}{2}", False, True),
    ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", False, False),
    ("\\boxed{\\sqrt{2}}", "\\sqrt2", False, True),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", False, True),
    ("\\boxed{\\pi}", "\\pi", False, True),
    ("\\boxed{\\frac{\\pi}{2}}", "\\frac{\\pi}{2}", False, True),
    ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)", False, True),
    ("\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)", False, True),
    ("\\boxed{(2, 3)}", "(3, 2)", False, False),
    ("\\boxed{[1, 4)}", "[1,4)", False, True),
    ("\\boxed{(-\\infty, 0]}", "(-\\infty,0]", False, True),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", False, True),
    ("\\boxed{x^2+2x}", "(x+1)^2", False, False),
    ("\\boxed{50\\%}", "50", False, True),
    ("\\boxed{10^\\circ}", "10", False, True),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}", False, True),
    ("Answer: (B)", "B", False, True),
    ("Answer: B", "(B)", False, True),
    ("Answer: C", "B", False, False),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}", False, True),
    ("\\boxed{Evelyn}", "\\text{Evelyn}", False, True),
    ("\\boxed{-3}", "-3", True, True),
    ("\\boxed{3}", "-3", True, False),
    ("First \\boxed{5}, but wait, actually \\boxed{7}", "7", True, True),
    ("First \\boxed{7}, then \\boxed{5}", "7", True, False),
    ("\\boxed{\\frac{a}{b}} and \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", False, True),
    ("nested \\boxed{\\frac{1}{\\sqrt{\\{2\\}}}} x", "\\frac{1}{\\sqrt{2}}", False, True),
    ("\\boxed 5", "5", True, True),
    ("\\boxed 5.", "5", True, True),
    ("\\fbox{12}", "12", True, True),
    ("unbalanced \\boxed{12", "12", True, False),
    ("no answer at all, just thinking about 12", "12", True, False),
    ("", "12", True, False),
    ("Answer:", "12", True, False),
    ("<|im_start|>answer\nAnswer: \\boxed{6}<|im_end|>", "6", True, True),
    ("Answer: 6<|im_end|>", "6", True, True),
    ("7+9=6\n6+9=5\n<|im_start|>answer\nAnswer: 5", "5", True, True),
    ("\\boxed{3\\sqrt{13}}", "3\\sqrt{13}", False, True),
    ("\\boxed{\\$18.90}", "\\$18.90", False, True),
    ("\\boxed{12\\text{ cm}}", "12", False, True),
    ("\\boxed{x=5}", "5", False, True),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False, True),
    ("\\boxed{" + "9" * 5000 + "}", "9", False, False),           # huge: refused by length, no hang
    ("x " * 200_000 + "\\boxed{42}", "42", True, True),            # huge output, answer at the end
]


def test_at_least_fifty_cases():
    assert len(CASES) >= 50


@pytest.mark.parametrize("response,reference,integer,expected", CASES)
def test_is_correct(response, reference, integer, expected):
    assert is_correct(response, reference, integer_answer=integer) is expected


def test_grade_many_matches_one_by_one():
    got = grade_many([c[0] for c in CASES], [c[1] for c in CASES], workers=2)
    want = [is_correct(r, ref) for r, ref, _, _ in CASES]
    assert got == want


@pytest.mark.parametrize("text,answer", [
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("a \\boxed{1} b \\fbox{2}", "2"),
    ("\\boxed{{a}{b}}", "{a}{b}"),
    ("Answer: 42.", "42"),
    ("Answer: 1\nAnswer: $2$", "2"),
    ("Answer: 7\n\n<|im_start|>user", "7"),
    ("nothing", None),
    ("\\boxed{}", ""),
])
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_pathological_input_is_bounded_in_time():
    """Inputs that are slow for sympy must not stall grading beyond the per-answer limit."""
    nasty = [
        "\\boxed{" + "(" * 400 + "1" + ")" * 400 + "}",
        "\\boxed{" + "^".join(["9"] * 30) + "}",
        "\\boxed{" + "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(300)) + "}",
        "\\boxed{10^{10^{10^{10}}}}",
    ]
    t = time.monotonic()
    verdicts = grade_many(nasty, ["1"] * len(nasty), timeout_s=1.0, workers=2)
    assert time.monotonic() - t < 1.0 * 2 * len(nasty) + 10
    assert verdicts[1:] == [False, False, False]
    # the pool still works after a timeout
    assert is_correct("\\boxed{\\frac{1}{2}}", "0.5")


# Grading from other processes: a pool that outlives the call kept a multiprocessing child from exiting and
# failed in daemonic workers (datasets.map(num_proc=...)). Each case needs math-verify (no quick verdict).
NEEDS_MATH_VERIFY = [("\\boxed{\\frac{2}{4}}", "0.5", True), ("\\boxed{\\frac{1}{3}}", "0.5", False)]


def _grade_in_child(queue) -> None:
    queue.put([is_correct(r, ref) for r, ref, _ in NEEDS_MATH_VERIFY])


def _grade_one(pair: tuple[str, str]) -> tuple[bool, float]:
    t = time.monotonic()
    return is_correct(*pair, timeout_s=1.0), time.monotonic() - t


def _children_of(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_process_that_grades_exits(method):
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    child = ctx.Process(target=_grade_in_child, args=(queue,))
    child.start()
    try:
        got = queue.get(timeout=60)
        child.join(timeout=30)
        assert not child.is_alive(), "the child graded, then never exited (a grading pool outlived the call)"
        assert child.exitcode == 0 and got == [want for _, _, want in NEEDS_MATH_VERIFY]
    finally:
        if child.is_alive():
            child.kill()
            child.join()


def test_grading_inside_daemonic_workers_keeps_its_time_limit():
    """multiprocessing.Pool workers are daemonic, as datasets.map(num_proc=2)'s are: no child processes there."""
    slow = "\\boxed{" + "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(300)) + "}"
    pairs = [(r, ref) for r, ref, _ in NEEDS_MATH_VERIFY] + [(slow, "1")]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map(_grade_one, pairs, chunksize=1)
    assert [ok for ok, _ in got] == [want for _, _, want in NEEDS_MATH_VERIFY] + [False]
    assert max(s for _, s in got) < 1.0 * 3 + 5  # parse, parse, verify: each within the 1 s limit


def test_grading_leaves_no_process_running():
    before = set(_children_of(os.getpid()))  # e.g. multiprocessing's resource tracker, started by other tests
    assert is_correct("\\boxed{\\frac{2}{4}}", "0.5")
    assert grade_many([r for r, _, _ in NEEDS_MATH_VERIFY], [ref for _, ref, _ in NEEDS_MATH_VERIFY]) == [True, False]
    assert not multiprocessing.active_children() and set(_children_of(os.getpid())) <= before


def test_grading_inside_datasets_map_with_two_processes():
    import datasets  # a dependency (pyproject.toml): always there

    rows = datasets.Dataset.from_list([{"response": r, "reference": ref} for r, ref, _ in NEEDS_MATH_VERIFY] * 2)
    graded = rows.map(lambda row: {"correct": is_correct(row["response"], row["reference"], timeout_s=2.0)},
                      num_proc=2, load_from_cache_file=False)
    assert graded["correct"] == [want for _, _, want in NEEDS_MATH_VERIFY] * 2
