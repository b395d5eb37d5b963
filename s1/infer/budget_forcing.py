"""Budget forcing (s1 §3): a per-sequence state machine that drives any engine.

Each sequence is THINKING → ANSWERING → DONE. Every round the engine
continues each unfinished sequence until a stop string or a token cap, then
the rules below decide what to append:

- thinking ended by the model (it wrote the end-of-thinking delimiter
  "<|im_start|>", or end-of-text) with waits left and budget left: drop the
  delimiter, append "Wait" (on a new line, as the "Wait 12:7+9=6" corrections
  of the training traces are), keep thinking;
- thinking ended otherwise, or the thinking budget T ran out: append the
  answer prefix "<|im_start|>answer\\nAnswer:" (after a newline if needed),
  exactly the shape the model was trained on, and let it answer;
- the answer ends at end-of-text (or a new "<|im_start|>") under its own cap.

The remaining thinking budget is decremented across rounds; waits, total
tokens (within the context window) and wall time per sequence are capped; every
sequence ends with an outcome: answered (the model ended thinking itself),
forced (the budget cut thinking), no_answer (the answer hit its cap) or timeout.
Thinking tokens count the tokens the model generated while thinking (the
forced "Wait" strings are appended text, not generated tokens).
"""

from __future__ import annotations

import enum
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tqdm.auto import tqdm

from s1.infer.engine import Request, forget

DEFAULTS = {"max_thinking_tokens": None, "num_waits": 0, "wait_string": "Wait", "think_prefix": "<|im_start|>think\n",
                "end_of_thinking": "<|im_start|>", "answer_prefix": "<|im_start|>answer\nAnswer:",
                "answer_max_tokens": 1024, "request_timeout_s": 600.0}
END_OF_TEXT = "<|im_end|>"
FORCED_SLACK = 16     # tokens kept free in the context for the forced strings
_KEYS = itertools.count()


class Phase(enum.Enum):
    THINKING = "thinking"
    ANSWERING = "answering"
    DONE = "done"


@dataclass
class Sequence:
    index: int
    prompt: str
    thinking: str = ""            # thinking text, forced "Wait"s included
    answer: str = ""              # what the model wrote after the answer prefix
    text: str = ""                # everything after the prompt: thinking + forced strings + answer
    phase: Phase = Phase.THINKING
    thinking_tokens: int = 0
    answer_tokens: int = 0
    waits_used: int = 0
    forced: bool = False          # the thinking budget, not the model, ended thinking
    outcome: str | None = None    # answered | forced | no_answer | timeout
    rounds: int = 0
    deadline: float | None = None
    think_limit: int = 0          # thinking-token cap for this sequence (budget, total and context caps)
    answer_limit: int = 0
    key: str = ""               # names this sequence's cached state in the engine


@dataclass
class SequenceResult:
    prompt: str
    thinking: str
    answer: str
    text: str
    outcome: str
    thinking_tokens: int
    answer_tokens: int
    waits_used: int
    rounds: int = 0


def bf_value(bf, name: str):
    """A budget-forcing setting from a dataclass, DictConfig or dict (None → the defaults)."""
    if bf is None:
        return DEFAULTS[name]
    if isinstance(bf, dict):
        return bf.get(name, DEFAULTS[name])
    return getattr(bf, name, DEFAULTS[name])


def generate(engine, prompts: list[str], bf=None, *, max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0, batch_size: int = 8, progress: bool = True, seeds: list[int] | None = None,
             on_result: Callable[[int, SequenceResult], None] | None = None) -> list[SequenceResult]:
    """Generate for every prompt under budget forcing; prompts that end with the think prefix start thinking.

    A prompt without the think prefix (e.g. a base model's plain chat prompt) is answered directly,
    with no thinking phase and max_new_tokens as the answer cap. Sampling seeds are seed + i for prompt i,
    or seeds[i]; on_result(i, result) is called as soon as sequence i is done (for caching).
    """
    opts = {k: bf_value(bf, k) for k in DEFAULTS}
    max_context = getattr(engine, "max_context", 32768)
    seqs = [_new_sequence(i, p, opts, max_new_tokens, max_context, engine.tokenizer) for i, p in enumerate(prompts)]
    pending, active = deque(seqs), []
    bar = tqdm(total=len(seqs), desc="generate", unit="seq", disable=not progress)
    while pending or active:
        while pending and len(active) < batch_size:   # keep the batch full: refill as sequences finish
            s = pending.popleft()
            s.deadline = time.monotonic() + opts["request_timeout_s"]
            active.append(s)
        reqs = [_next_request(s, opts, temperature, seeds[s.index] if seeds else seed + s.index) for s in active]
        for s, cont in zip(active, engine.continue_batch(reqs)):
            step(s, cont, opts)
        done = [s for s in active if s.phase is Phase.DONE]
        forget(engine, [s.key for s in done])
        bar.update(len(done))
        for s in done if on_result else []:
            on_result(s.index, _result(s))
        active = [s for s in active if s.phase is not Phase.DONE]
    bar.close()
    return [_result(s) for s in seqs]


def _result(s: Sequence) -> SequenceResult:
    return SequenceResult(s.prompt, s.thinking, s.answer, s.text, s.outcome, s.thinking_tokens, s.answer_tokens,
                          s.waits_used, s.rounds)


def _new_sequence(i, prompt, opts, max_new_tokens, max_context, tokenizer) -> Sequence:
    s = Sequence(index=i, prompt=prompt, key=f"bf-{next(_KEYS)}")
    room = max(0, max_context - len(tokenizer.encode(prompt, add_special_tokens=False)) - FORCED_SLACK)
    total = min(max_new_tokens, room)
    if prompt.endswith(opts["think_prefix"]):
        s.answer_limit = min(opts["answer_max_tokens"], total // 2)   # the answer always keeps its share
        cap = opts["max_thinking_tokens"]
        s.think_limit = min(cap if cap is not None else total, total - s.answer_limit)
    else:
        s.phase, s.answer_limit = Phase.ANSWERING, total
    return s


def _next_request(s: Sequence, opts, temperature: float, seed: int) -> Request:
    if s.phase is Phase.THINKING:
        max_new, stop = s.think_limit - s.thinking_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    else:
        max_new, stop = s.answer_limit - s.answer_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    return Request(text=s.prompt + s.text, max_new_tokens=max(0, max_new), stop=stop, temperature=temperature,
                   seed=seed, key=s.key, deadline=s.deadline)


def step(s: Sequence, cont, opts) -> None:
    """Apply one engine continuation to a sequence: the budget-forcing rules."""
    s.rounds += 1
    s.text += cont.text
    timed_out = cont.stop_reason == "timeout" or (s.deadline is not None and time.monotonic() > s.deadline)
    if s.phase is Phase.THINKING:
        s.thinking += cont.text
        s.thinking_tokens += cont.num_tokens
        if timed_out:
            return _finish(s, "timeout")
        ended_by_model = cont.stop_reason in ("stop", "eos")
        budget_left = s.think_limit - s.thinking_tokens
        if ended_by_model and s.waits_used < opts["num_waits"] and budget_left > 0:
            wait = _on_new_line(s, opts["wait_string"])     # suppress the end of thinking: "Wait"
            s.thinking += wait
            s.text += wait
            s.waits_used += 1
            return
        s.forced = not ended_by_model
        s.text += _on_new_line(s, opts["answer_prefix"])    # end thinking, force the answer
        s.phase = Phase.ANSWERING
        if s.answer_limit <= 0:
            _finish(s, "no_answer")
        return
    s.answer += cont.text
    s.answer_tokens += cont.num_tokens
    if timed_out:
        _finish(s, "timeout")
    elif cont.stop_reason in ("stop", "eos"):
        _finish(s, "forced" if s.forced else "answered")
    else:
        _finish(s, "no_answer")


def _on_new_line(s: Sequence, forced: str) -> str:
    full = s.prompt + s.text
    return forced if not full or full.endswith("\n") else "\n" + forced


def _finish(s: Sequence, outcome: str) -> None:
    s.outcome, s.phase = outcome, Phase.DONE
