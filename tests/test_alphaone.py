"""Scheduled Wait (s1/infer/alphaone.py): no Wait after α; the seeded insertion rate follows the schedule."""

import random

import pytest

from s1.errors import ConfigError
from s1.infer.alphaone import alpha_moment, decide, p_wait


def _run(seed, budget, alpha, p0, schedule, step=20):
    """One scripted sequence: a step boundary every `step` thinking tokens until the end is forced."""
    rng, moment, out = random.Random(seed), alpha_moment(alpha, budget), []
    for t in range(step, budget + step, step):
        d = decide(t, moment, p0, schedule, rng)
        out.append((t, d))
        if d == "end":
            break
    return moment, out


def test_no_wait_at_or_after_alpha_and_the_end_is_forced_there():
    for seed in range(200):
        moment, out = _run(seed, budget=1000, alpha=0.6, p0=0.9, schedule="constant")
        assert moment == 600
        assert all(t < moment for t, d in out if d == "wait")
        assert out[-1] == (600, "end")


def test_empirical_rate_follows_the_schedule():
    # linear: p(t) = 0.5 (1 - t/600); check the rate in each of three bands of t against its mean p
    n_seq, counts = 3000, {}
    for seed in range(n_seq):
        _, out = _run(seed, budget=1000, alpha=0.6, p0=0.5, schedule="linear")
        for t, d in out:
            if d != "end":
                hits, n = counts.get(t, (0, 0))
                counts[t] = (hits + (d == "wait"), n + 1)
    for lo, hi in [(0, 200), (200, 400), (400, 600)]:
        ts = [t for t in counts if lo <= t < hi]
        rate = sum(counts[t][0] for t in ts) / sum(counts[t][1] for t in ts)
        expected = sum(p_wait(t, 600, 0.5, "linear") for t in ts) / len(ts)
        assert abs(rate - expected) < 0.02, (lo, rate, expected)
    # and the bands decrease, as the schedule does
    assert p_wait(20, 600, 0.5, "linear") > p_wait(580, 600, 0.5, "linear") > 0


def test_bad_settings_name_their_key():
    with pytest.raises(ConfigError, match="alpha"):
        alpha_moment(0, 100)
    with pytest.raises(ConfigError, match="schedule"):
        p_wait(1, 10, 0.5, "cosine")
    with pytest.raises(ConfigError, match="p0"):
        p_wait(1, 10, 1.5, "linear")
