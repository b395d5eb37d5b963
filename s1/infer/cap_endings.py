"""How thinking ends when its budget runs out (the cap): three endings, as text over the generated tokens.

- hard: the s1 cut (today's budget forcing): thinking stops at the cap token, then the answer prefix.
- stop_sentence (Qwen3-style): at the cap, a configurable sentence (e.g. "Considering the limited time, I have
  to give the solution based on the thinking directly now.") is appended, then the end-of-thinking string.
- finish_window (NIM-style): thinking may run on up to `window` × cap more tokens, until the first token that
  contains a newline (the step in progress finishes); if none comes within the window, it is cut at the window's
  end. Then the end-of-thinking string.

`end_at_cap` takes the thinking token texts the model generates (at least cap tokens when it hits the cap, or up
to cap × (1 + window) for the finish window) and returns (thinking text, thinking tokens generated, forced text).
Forced text is appended, not generated: it is not counted in the thinking tokens. budget_forcing.step runs the same
endings on every engine (cap_ending, cap_sentence, cap_window of eval.budget_forcing) with `forced_text` and
`window_tokens`; the finish window there is one more thinking request that stops at "\n".
"""

from __future__ import annotations

import math

from s1.config import STOP_SENTENCE
from s1.errors import ConfigError

ENDINGS = ("hard", "stop_sentence", "finish_window")
__all__ = ["ENDINGS", "STOP_SENTENCE", "end_at_cap", "forced_text", "window_tokens"]


def window_tokens(cap: int, window: float) -> int:
    """The finish window's most extra thinking tokens: floor(window x cap)."""
    return math.floor(window * cap)


def forced_text(text: str, ending: str, end_string: str, sentence: str = STOP_SENTENCE) -> str:
    """What is appended after the thinking text `text` at the cap: the end string, after the stop sentence (on its
    own line) for stop_sentence."""
    if ending != "stop_sentence":
        return end_string
    lead = "" if not text or text.endswith("\n") else "\n"
    return lead + sentence + "\n" + end_string


def end_at_cap(tokens: list[str], cap: int, ending: str, end_string: str, *, sentence: str = STOP_SENTENCE,
               window: float = 0.1) -> tuple[str, int, str]:
    """(thinking text, thinking tokens generated, forced text) for a sequence whose thinking reached the cap."""
    if ending not in ENDINGS:
        raise ConfigError("eval.cap_ending", ending, f"give one of {list(ENDINGS)}")
    if ending == "finish_window" and not window >= 0:
        raise ConfigError("eval.cap_window", window, "give extra tokens as a fraction of the cap >= 0, e.g. 0.1")
    kept = tokens[:cap]
    if ending == "finish_window":
        extra = window_tokens(cap, window)
        for tok in tokens[cap:cap + extra]:
            kept.append(tok)
            if "\n" in tok:
                break
    text = "".join(kept)
    return text, len(kept), forced_text(text, ending, end_string, sentence)
