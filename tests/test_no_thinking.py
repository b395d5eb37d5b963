"""NoThinking (s1/infer/no_thinking.py): thinking closed at once in both formats; k matched to a token budget."""

import pytest

from s1.errors import ConfigError
from s1.format import ANSWER_MARKER, THINK
from s1.infer.no_thinking import FILLER, matched_k, prefill


def test_prefill_closes_thinking_in_the_s1_and_think_tag_formats():
    p = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n" + THINK
    assert prefill(p) == p + FILLER + "\n" + ANSWER_MARKER + "\n"   # THINK not repeated
    q = "<|im_start|>assistant\n"
    assert prefill(q, think_open="<think>\n", think_close="</think>\n\n") == q + "<think>\n" + FILLER + "\n</think>\n\n"


def test_matched_k():
    assert matched_k(1000, 240) == 4
    assert matched_k(100, 240) == 1
    with pytest.raises(ConfigError, match="tokens_per_sample"):
        matched_k(100, 0)
