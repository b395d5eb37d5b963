"""Confident early exit (s1/infer/deer.py): exits only above the threshold, never thinks past plain generation."""

import math
import random

import pytest

from s1.errors import ConfigError
from s1.infer.deer import confidence, early_exit, should_exit


def test_confidence_is_mean_token_probability():
    assert confidence([math.log(0.9), math.log(0.5)]) == pytest.approx(0.7)
    assert confidence([]) == 0.0
    assert should_exit([math.log(0.96), math.log(0.98)], 0.95)
    assert not should_exit([math.log(0.96), math.log(0.5)], 0.95)


def test_exits_only_above_threshold_and_never_past_plain():
    rng = random.Random(0)
    for _ in range(500):
        plain = rng.randint(50, 400)
        boundaries = [(t, [math.log(rng.uniform(0.5, 1.0)) for _ in range(rng.randint(1, 4))])
                      for t in sorted(rng.sample(range(1, 450), 8))]
        used, peeks = early_exit(boundaries, plain, threshold=0.9)
        assert used <= plain
        if used < plain:   # an early exit: at a boundary whose trial answer passed, and none before it did
            lps = dict(boundaries)[used]
            assert confidence(lps) >= 0.9
            assert all(confidence(lp) < 0.9 for t, lp in boundaries if t < used)
        else:
            assert all(confidence(lp) < 0.9 for t, lp in boundaries if t < plain)
        assert peeks == sum(len(lp) for t, lp in boundaries if t <= used and t < plain)


def test_threshold_outside_unit_interval_is_a_config_error():
    with pytest.raises(ConfigError, match="eval.deer.threshold"):
        should_exit([0.0], 1.5)
