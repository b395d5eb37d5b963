"""Control prompts and markers of the paper's Table 3 methods; the s1 prompt itself is s1.format.build_prompt."""

from __future__ import annotations

from s1.format import (  # the conditional-control strings live with the other s1 strings; re-exported here
    ANSWER_MARKER,
    END_OF_THINKING,
    STEP_MARKER,
    STEP_PROMPT,
    THINK,
    TOKEN_MARKER,
    TOKEN_PROMPT,
    build_prompt,
)

THINK_PREFIX = THINK
# the released evaluation's class prompts (lm-eval fork: PROMPTSHORT / PROMPTLONG)
CLASS_PROMPTS = {
    "short": "Answer after a short amount of thinking. Do not spend excessive time double-checking your work.",
    "long": ("Answer after a long amount of thinking. If you feel like you are finished early, spend the extra time "
             "trying to double-check your work until you are absolutely sure that you have the correct answer."),
}
# the stops that read the countdown markers (s1.format.STEP_MARKER / TOKEN_MARKER)
CONDITIONAL_END = ANSWER_MARKER                   # the model ends thinking itself (markers also start <|im_start|>)
STEP_OVERRUN = END_OF_THINKING + "0 steps left"   # step-conditional + BF: thinking stops when no step is left

__all__ = ["CLASS_PROMPTS", "CONDITIONAL_END", "STEP_MARKER", "STEP_OVERRUN", "STEP_PROMPT", "THINK_PREFIX",
           "TOKEN_MARKER", "TOKEN_PROMPT", "build_prompt"]
