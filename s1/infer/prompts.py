"""Control prompts and markers of the paper's Table 3 methods; the s1 prompt itself is s1.format.build_prompt."""

from __future__ import annotations

from s1.format import ANSWER_MARKER, END_OF_THINKING, THINK, build_prompt

THINK_PREFIX = THINK
# the released evaluation's control prompts (lm-eval fork: PROMPTTOKEN / PROMPTSTEP / PROMPTSHORT / PROMPTLONG)
TOKEN_PROMPT = "Think for up to {n} tokens."
STEP_PROMPT = "Think for up to {n} steps."
CLASS_PROMPTS = {
    "short": "Answer after a short amount of thinking. Do not spend excessive time double-checking your work.",
    "long": ("Answer after a long amount of thinking. If you feel like you are finished early, spend the extra time "
             "trying to double-check your work until you are absolutely sure that you have the correct answer."),
}
# countdown markers in the conditional-control training traces (s1/train/transforms.py) and the stops that read them
STEP_MARKER = "<|im_start|>{n} steps left\n"
TOKEN_MARKER = "<|im_start|>{n} tokens left\n"
CONDITIONAL_END = ANSWER_MARKER                   # the model ends thinking itself (markers also start <|im_start|>)
STEP_OVERRUN = END_OF_THINKING + "0 steps left"   # step-conditional + BF: thinking stops when no step is left

__all__ = ["CLASS_PROMPTS", "CONDITIONAL_END", "STEP_MARKER", "STEP_OVERRUN", "STEP_PROMPT", "THINK_PREFIX",
           "TOKEN_MARKER", "TOKEN_PROMPT", "build_prompt"]
