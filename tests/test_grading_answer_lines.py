"""The answer lines real models write, read after the release's rules (answer section, last box, "Answer:") find
nothing or leave wrappers: one test per pattern of docs/grading.md "Answer lines" (own cases, in those shapes)."""

from __future__ import annotations

from s1.grading import extract_answer, quick_verdict


def test_the_answer_is_colon_metamath_style():
    text = "We add 3 and 4 to get 7, then double it.\nThe answer is: 14"
    assert extract_answer(text) == "14"
    assert extract_answer("... so the probability is 1/4.\nThe answer is: \\frac{1}{4}") == "\\frac{1}{4}"


def test_a_closing_the_answer_is_sentence():
    assert extract_answer("Both checks agree, so the answer is 250.") == "250"
    assert extract_answer("First I thought the answer is 3.\nRechecking, the final answer is $\\sqrt{2}$.") == \
        "\\sqrt{2}"                                                 # the last such sentence decides


def test_answer_inside_display_math():
    assert extract_answer("Putting it together:\n\\[Answer: 2\\pi\\]") == "2\\pi"
    assert extract_answer("\\[\\text{Answer: } 108\\]") == "108"


def test_answer_heading_with_the_answer_in_the_next_paragraph():
    assert extract_answer("Work...\n\n### Answer:\n\n$\\frac{3}{5}$") == "\\frac{3}{5}"
    assert extract_answer("Work...\n\n### Final Answer\n\n17") == "17"                      # no colon
    assert extract_answer("Work...\n\n**Answer:**\n\nThe number of paths is $35$.") == "35"   # a sentence: its math


def test_a_boxed_statement_against_a_text_gold():
    assert quick_verdict("\\text{The function is even}", "\\text{even}") is True
    assert quick_verdict("\\text{f is odd}", "\\text{odd}") is True
    assert quick_verdict("\\text{neither even nor odd}", "\\text{odd}") is not True           # a negation
    assert quick_verdict("\\text{The function is even}", "\\text{odd}") is not True
    assert quick_verdict("\\text{even}", "\\text{even}") is True                               # as before


def test_the_release_rules_still_come_first():
    text = "The answer is 5 I guess.\n<|im_start|>answer\nAnswer: 7"
    assert extract_answer(text) == "7"                        # the answer section's label, not the thinking's line
    assert extract_answer("the answer is 3, so \\boxed{4}") == "4"   # a box beats a sentence
    assert extract_answer("Answer: 12") == "12" and extract_answer("no answer here") is None
