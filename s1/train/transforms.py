"""Training sets for the paper's conditional-control baselines (Table 3), made from s1K.

The paper fine-tuned separate models for token- and step-conditional control:
the question states a budget ("Think for up to N tokens." / "... N steps.", the
released evaluation's wording) and the trace carries the countdown the model
learns to follow, each step opened by a marker in the form the released
evaluation counts (`<|im_start|>13 steps left`):

- step_conditional: the trace is split into steps; step i of S is opened by
  "<|im_start|>{S-i} steps left"; the question states S steps. At test time
  "<|im_start|>0 steps left" means the budget is spent (the stop the released
  step-conditional + budget forcing commands use).
- token_conditional: the question states B tokens, B = the smallest power of
  two >= the trace's tokens (the paper prompts 2048 ... 16384); each step is
  opened by "<|im_start|>{B - tokens used} tokens left", counted with the
  training tokenizer.

`make train ARGS="train.transform=step_conditional ..."` trains on the
transformed set; evaluate the result with eval.step_conditional_model and the
step_conditional[_bf] methods (s1/eval/methods.py).
"""

from __future__ import annotations

import re
from typing import Any

from s1.format import STEP_MARKER, STEP_PROMPT, TOKEN_MARKER, TOKEN_PROMPT
from s1.runtime import ConfigError
from s1.train.format import column_text

TRANSFORMS = ("none", "token_conditional", "step_conditional")


def _column_name(trace_column: str) -> str:
    return re.sub(r"\[\d+\]$", "", trace_column)  # "thinking_trajectories[0]" -> the list column


def split_steps(thinking: str) -> list[str]:
    """Steps of a trace: its paragraphs (blank-line separated), or its lines when it has one paragraph."""
    steps = [p.strip() for p in thinking.split("\n\n") if p.strip()]
    if len(steps) <= 1:
        steps = [ln.strip() for ln in thinking.splitlines() if ln.strip()]
    return steps


def step_conditional(record: dict[str, Any], trace_column: str = "thinking_trajectories") -> dict[str, Any]:
    steps = split_steps(column_text(record, trace_column))
    n = len(steps)
    thinking = "\n".join(STEP_MARKER.format(n=n - i) + step for i, step in enumerate(steps))
    return {**record, "question": f"{record['question']}\n\n{STEP_PROMPT.format(n=n)}",
            _column_name(trace_column): [thinking], "transform": "step_conditional", "stated_steps": n}


def token_conditional(record: dict[str, Any], tokenizer, trace_column: str = "thinking_trajectories") -> dict[str, Any]:
    steps = split_steps(column_text(record, trace_column))
    counts = [len(tokenizer(s + "\n", add_special_tokens=False)["input_ids"]) for s in steps]
    budget = 1 << max(0, sum(counts) - 1).bit_length()      # smallest power of two >= the trace's tokens
    parts, used = [], 0
    for step, c in zip(steps, counts):
        parts.append(TOKEN_MARKER.format(n=budget - used) + step)
        used += c
    return {**record, "question": f"{record['question']}\n\n{TOKEN_PROMPT.format(n=budget)}",
            _column_name(trace_column): ["\n".join(parts)], "transform": "token_conditional", "stated_tokens": budget}


def apply_transform(records: list[dict[str, Any]], name: str | None, tokenizer,
                    trace_column: str = "thinking_trajectories") -> list[dict[str, Any]]:
    """The training records for `train.transform`; records without a trace are left for the format's own check."""
    if name in (None, "", "none"):
        return records
    if name not in TRANSFORMS:
        raise ConfigError("train.transform", name, f"use one of {list(TRANSFORMS)}")
    out = []
    for r in records:
        if not column_text(r, trace_column).strip() or not isinstance(r.get("question"), str):
            out.append(r)
        elif name == "step_conditional":
            out.append(step_conditional(r, trace_column))
        else:
            out.append(token_conditional(r, tokenizer, trace_column))
    return out
