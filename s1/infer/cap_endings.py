"""How thinking ends when its budget runs out (the cap): three endings, as text over the generated tokens.

- hard: the s1 cut (today's budget forcing): thinking stops at the cap token, then the answer prefix.
- stop_sentence (Qwen3-style): at the cap, a configurable sentence (e.g. "Considering the limited time, I have
  to give the solution based on the thinking directly now.") is appended, then the end-of-thinking string.
- finish_window (NIM-style): thinking may run on up to `window` × cap more tokens, until the first token that
  contains a newline (the step in progress finishes); if none comes within the window, it is cut at the window's
  end. Then the end-of-thinking string.

`end_at_cap` takes the thinking token texts the model generates (at least cap tokens when it hits the cap, or up
to cap × (1 + window) for the finish window) and returns (thinking text, thinking tokens generated, forced text).
Forced text is appended, not generated: it is not counted in the thinking tokens. This module is a pure function
of the tokens; wiring it into budget_forcing.step is not done yet (docs/methods.md).
"""

from __future__ import annotations

import math

from s1.errors import ConfigError

ENDINGS = ("hard", "stop_sentence", "finish_window")
STOP_SENTENCE = "Considering the limited time, I have to give the solution based on the thinking directly now."


def end_at_cap(tokens: list[str], cap: int, ending: str, end_string: str, *, sentence: str = STOP_SENTENCE,
               window: float = 0.1) -> tuple[str, int, str]:
    """(thinking text, thinking tokens generated, forced text) for a sequence whose thinking reached the cap."""
    if ending not in ENDINGS:
        raise ConfigError("eval.cap_ending", ending, f"give one of {list(ENDINGS)}")
    if ending == "finish_window" and not window >= 0:
        raise ConfigError("eval.cap_window", window, "give extra tokens as a fraction of the cap >= 0, e.g. 0.1")
    kept = tokens[:cap]
    if ending == "finish_window":
        extra = math.floor(window * cap)
        for tok in tokens[cap:cap + extra]:
            kept.append(tok)
            if "\n" in tok:
                break
    text = "".join(kept)
    if ending == "stop_sentence":
        lead = "" if not text or text.endswith("\n") else "\n"
        return text, len(kept), lead + sentence + "\n" + end_string
    return text, len(kept), end_string
