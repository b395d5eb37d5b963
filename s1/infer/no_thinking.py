"""NoThinking (arXiv 2504.09858): the end of thinking forced at once, with a short filler in its place.

The prompt is prefilled with a thinking segment that is already closed ("Okay, I think I have finished thinking."
then the end-of-thinking string), so the model writes only its answer: thinking tokens are 0 by construction.
With n samples, best-of-n is majority (s1/eval/selectors.py) at a matched token budget: `matched_k` gives how
many NoThinking samples fit in the tokens another method spent per question. The prefill is plain text, so it
runs on every engine, the OpenAI one included (as a continuation of the assistant turn where the server allows
one). budget_forcing applies it (eval.budget_forcing.no_thinking): a thinking prompt starts answering after
prefill(prompt, think_open=think_prefix, think_close=answer_prefix_after_end + "\n").
"""

from __future__ import annotations

from s1.errors import ConfigError
from s1.format import ANSWER_MARKER, THINK

FILLER = "Okay, I think I have finished thinking."


def prefill(prompt: str, *, think_open: str = THINK, think_close: str = ANSWER_MARKER + "\n",
            filler: str = FILLER) -> str:
    """The prompt with its thinking segment opened (if it is not already), the filler, and the segment closed."""
    opened = prompt if prompt.endswith(think_open) else prompt + think_open
    return opened + filler + "\n" + think_close


def matched_k(budget_tokens: float, tokens_per_sample: float) -> int:
    """Samples that fit in `budget_tokens` per question at `tokens_per_sample` each (at least 1)."""
    if tokens_per_sample <= 0:
        raise ConfigError("eval.no_thinking.tokens_per_sample", tokens_per_sample, "give a positive token count")
    return max(1, int(budget_tokens // tokens_per_sample))
