"""Cap endings (s1/infer/cap_endings.py): each ending's text and token counts, worked out by hand."""

import pytest

from s1.errors import ConfigError
from s1.infer.cap_endings import STOP_SENTENCE, end_at_cap

END = "<|im_start|>answer"
# 10 generated thinking tokens; a newline ends token 6 (index 5) and token 9 (index 8)
TOKENS = ["Step", " one", ":", " 2", "+2", "=4\n", "Step", " two", ":\n", " 4"]


def test_hard_cut_keeps_exactly_the_cap():
    assert end_at_cap(TOKENS, 4, "hard", END) == ("Step one: 2", 4, END)


def test_stop_sentence_appends_the_sentence_then_the_end():
    text, n, forced = end_at_cap(TOKENS, 4, "stop_sentence", END)
    assert (text, n) == ("Step one: 2", 4)
    assert forced == "\n" + STOP_SENTENCE + "\n" + END
    # after a newline no extra newline; a custom sentence
    assert end_at_cap(TOKENS, 6, "stop_sentence", END, sentence="Stop.") == ("Step one: 2+2=4\n", 6,
                                                                           "Stop.\n" + END)


def test_finish_window_runs_to_the_next_newline_within_the_window():
    # cap 4, window 0.5 -> up to 2 extra tokens: "+2", "=4\n" -> stops at the newline, 6 tokens
    assert end_at_cap(TOKENS, 4, "finish_window", END, window=0.5) == ("Step one: 2+2=4\n", 6, END)
    # window 0.25 -> 1 extra token, no newline in it: cut at the window's end, 5 tokens
    assert end_at_cap(TOKENS, 4, "finish_window", END, window=0.25) == ("Step one: 2+2", 5, END)
    # window 0: the hard cut
    assert end_at_cap(TOKENS, 4, "finish_window", END, window=0) == end_at_cap(TOKENS, 4, "hard", END)
    # cap 6 with window 1: tokens 7..9 until ":\n" -> 9 tokens
    assert end_at_cap(TOKENS, 6, "finish_window", END, window=1.0)[1] == 9


def test_unknown_ending_and_bad_window_are_config_errors():
    with pytest.raises(ConfigError, match="eval.cap_ending"):
        end_at_cap(TOKENS, 4, "soft", END)
    with pytest.raises(ConfigError, match="eval.cap_window"):
        end_at_cap(TOKENS, 4, "finish_window", END, window=-1)
