"""Parallel selectors (s1/eval/selectors.py) against votes worked out by hand on scripted samples."""

import math

import pytest

from s1.eval.metrics import majority_correct
from s1.eval.selectors import Sample, accuracy, confidence_filter, majority, short_m_at_k, shortest_majority
from s1.runtime import ConfigError


def S(answer, correct, tokens, confidence=None):
    return Sample(answer, correct, tokens, confidence)


def test_majority_most_votes_ties_to_first_answered_and_none_does_not_vote():
    # votes: 7 x2, 3 x2, None x3 -> tie between 7 (answered first) and 3: 7 wins; cost = all tokens
    qs = [S(None, False, 50), S("7", False, 10), S("3", True, 20), S("3", True, 30), S("7", False, 40),
          S(None, False, 60), S(None, False, 70)]
    sel = majority(qs)
    assert (sel.answer, sel.correct, sel.tokens) == ("7", False, 280)
    assert majority([S(None, False, 5)]).answer is None


def test_shortest_majority_breaks_ties_by_mean_length():
    # same tie as above: class 7 mean (10+40)/2 = 25, class 3 mean (20+20)/2 = 20 -> 3 wins
    qs = [S("7", False, 10), S("3", True, 20), S("3", True, 20), S("7", False, 40)]
    sel = shortest_majority(qs)
    assert (sel.answer, sel.correct, sel.tokens) == ("3", True, 90)
    # a strict majority still wins however long it is
    qs2 = [S("5", True, 900), S("5", True, 800), S("2", False, 10)]
    assert shortest_majority(qs2).answer == "5"


def test_short_m_at_k_votes_over_first_finishers_and_charges_until_the_mth():
    # k=5, m=3: finishers by length are idx 3 (10), 1 (20), 4 (20; tie with 1 broken by index) -> stop at 20
    qs = [S("9", True, 100), S("4", False, 20), S("9", True, 80), S("4", False, 10), S("9", True, 20)]
    sel = short_m_at_k(qs, m=3)
    # voters: 4, 4, 9 -> 4 wins (2 votes)
    assert (sel.answer, sel.correct) == ("4", False)
    assert sel.tokens == 20 + 20 + 20 + 10 + 20   # every sample stops at 20 tokens
    assert sel.finished == (1, 3, 4)              # the choice waited for the three finishers only
    # m = k is plain majority over all, at full cost
    full = short_m_at_k(qs, m=5)
    assert (full.answer, full.tokens) == ("9", 230)
    # m=2: voters 4 (10) and 4 (20) -> 4
    assert short_m_at_k(qs, m=2).answer == "4"
    with pytest.raises(ConfigError, match="eval.selectors.m"):
        short_m_at_k(qs, m=6)


def test_confidence_filter_keeps_top_fraction_and_weights_votes():
    # log-probs: A -0.1, B -2.0, B -2.1, B -2.2, A -0.2, C -0.05
    qs = [S("A", True, 10, -0.1), S("B", False, 10, -2.0), S("B", False, 10, -2.1), S("B", False, 10, -2.2),
          S("A", True, 10, -0.2), S("C", False, 10, -0.05)]
    # plain majority: B (3 votes)
    assert majority(qs).answer == "B"
    # keep half: top-3 by confidence = C (-0.05), A (-0.1), A (-0.2) -> A weight e^-0.1 + e^-0.2 > e^-0.05
    sel = confidence_filter(qs, keep=0.5)
    assert (sel.answer, sel.correct, sel.tokens) == ("A", True, 60)
    assert math.exp(-0.1) + math.exp(-0.2) > math.exp(-0.05)
    # keep all: weights A 0.905+0.819=1.72; B 0.135+0.122+0.111=0.37; C 0.95 -> A
    assert confidence_filter(qs, keep=1.0).answer == "A"
    # keep one sixth: only C
    assert confidence_filter(qs, keep=1 / 6).answer == "C"


def test_confidence_filter_refuses_without_logprobs_and_bad_keep():
    with pytest.raises(ConfigError, match="log-probabilities"):
        confidence_filter([S("A", True, 1)], keep=0.5)
    with pytest.raises(ConfigError, match="eval.selectors.keep"):
        confidence_filter([S("A", True, 1, -0.1)], keep=0)


def test_accuracy_over_questions():
    q1 = [S("1", True, 10), S("1", True, 30), S("2", False, 20)]     # majority right, 60 tokens
    q2 = [S("2", False, 10), S("3", True, 10), S("2", False, 10)]    # majority wrong, 30 tokens
    assert accuracy([q1, q2], majority) == (50.0, 45.0)
    assert accuracy([], majority) == (0.0, 0.0)


def test_answers_vote_by_canonical_class_by_default():
    # s1.grading.canonical_answer: "016" and "16" are one class (2 votes) against "7" and "1/2" (1 vote each)
    qs = [S("7", False, 10), S("016", True, 50), S("16", True, 60), S("\\frac{1}{2}", False, 5)]
    sel = majority(qs)   # 16 x2 beats 7 x1 and 1/2 x1; the raw strings would tie 1:1:1:1 and pick "7"
    assert (sel.answer, sel.correct, sel.tokens, sel.finished) == ("016", True, 125, (0, 1, 2, 3))
    assert majority(qs, canonical=lambda a: a).answer == "7"   # raw strings: four classes, first answered wins
    # shortest-majority: 16-class mean 55 vs 1/2-class ("0.5" and "\frac12") mean 7.5 in a 2:2 tie -> 1/2
    tie = [S("016", True, 50), S("0.5", False, 5), S("16", True, 60), S("\\frac12", False, 10)]
    assert shortest_majority(tie).answer == "0.5"
    assert majority(tie).answer == "016"   # plain majority: the class answered first


def test_majority_agrees_with_metrics_majority_correct():
    import random

    rng = random.Random(0)
    for _ in range(300):
        k = rng.randint(1, 7)
        answers = [rng.choice([None, "1", "01", "2", "3", "\\frac{1}{2}", "0.5"]) for _ in range(k)]
        correct = [a is not None and rng.random() < 0.5 for a in answers]
        sel = majority([S(a, c, 1) for a, c in zip(answers, correct)])
        assert sel.correct == majority_correct(answers, correct), (answers, correct)
