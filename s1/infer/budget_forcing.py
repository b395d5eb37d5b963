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
- the answer ends at end-of-text (or a new "<|im_start|>") under its own cap (answer_max_tokens), or, when that is
  None, under the rest of the total (the public code's rule);
- minimum budget: with min_thinking_tokens = N, an end of thinking before N thinking tokens is suppressed with
  "Wait" too (these count as waits used).

The remaining thinking budget is decremented across rounds; waits, total
tokens (within the context window) and wall time per sequence are capped; every
sequence ends with an outcome: answered (the model ended thinking itself),
forced (the budget cut thinking), no_answer (the answer hit its cap) or timeout.
Thinking tokens count the tokens the model generated while thinking (the
forced "Wait" strings are appended text, not generated tokens).

generate_sweep() runs several settings (caps, waits) of the same prompts at once: greedy settings share every
continuation whose text they share, so a sweep costs about its largest setting (see its doc).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tqdm.auto import tqdm

from s1.config import BudgetForcingConfig
from s1.infer.engine import Continuation, Request, forget

DEFAULTS = dataclasses.asdict(BudgetForcingConfig())   # the one place for defaults is the config schema
END_OF_TEXT = "<|im_end|>"
FORCED_SLACK = 16     # tokens kept free in the context for the forced strings
ANSWER_RESERVE = 1024  # tokens thinking always leaves for the answer (at most half the total)
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
    total: int = 0                # generated-token cap for thinking + answer (max_new_tokens within the context)
    key: str = ""               # names this sequence's cached state in the engine
    fork_from: str | None = None  # sweep: the engine state this sequence continues from (its own is stale)


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


def bf_options(bf, where: str = "budget_forcing") -> dict:
    """Every budget-forcing setting (defaults filled in), checked: errors name the key, the value and the fix."""
    opts = {k: bf_value(bf, k) for k in DEFAULTS}
    for key, low in (("num_waits", 0), ("min_thinking_tokens", 0), ("max_thinking_tokens", 1),
                     ("answer_max_tokens", 1)):
        v = opts[key]
        if v is not None and (not isinstance(v, int) or v < low):
            fix = "or null (no cap)" if key in ("max_thinking_tokens", "answer_max_tokens") else ""
            raise ValueError(f"{where}.{key}={v!r}: use an integer >= {low} {fix}".rstrip())
    return opts


def generate(engine, prompts: list[str], bf=None, *, max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0, batch_size: int = 8, progress: bool = True, seeds: list[int] | None = None,
             on_result: Callable[[int, SequenceResult], None] | None = None) -> list[SequenceResult]:
    """Generate for every prompt under budget forcing; prompts that end with the think prefix start thinking.

    A prompt without the think prefix (e.g. a base model's plain chat prompt) is answered directly,
    with no thinking phase and max_new_tokens as the answer cap. Sampling seeds are seed + i for prompt i,
    or seeds[i]; on_result(i, result) is called as soon as sequence i is done (for caching).
    """
    opts = bf_options(bf)
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


def generate_sweep(engine, prompts: list[str], settings: list[dict], bf=None, *, max_new_tokens: int,
                   batch_size: int = 8, progress: bool = True,
                   on_result: Callable[[int, int, SequenceResult], None] | None = None) -> list[list[SequenceResult]]:
    """Greedy budget forcing of every setting on every prompt, for about the price of the largest setting.

    A setting overrides bf, e.g. {"max_thinking_tokens": 500} or {"max_thinking_tokens": None, "num_waits": 2};
    result[j][i] equals generate(engine, prompts, bf + settings[j], temperature=0)[i], field by field. Each round,
    the unfinished sequences of all settings ask to continue their text; those with the same text and stops (the
    thinking they share) make ONE engine request, run to the largest token cap among them. A member with a smaller
    cap gets that continuation cut at its cap (exactly the tokens greedy decoding gives it alone), then branches:
    its own forced string ("Wait" or the answer prefix) and its answer, starting from the leader's cached state
    (Request.fork_from: KV cache on transformers; vLLM's prefix cache and servers need nothing). An engine that does
    not return token ids (OpenAI-compatible servers) shares only identical requests.
    on_result(j, i, result) is called as soon as setting j on prompt i is done (for caching).
    """
    base = {k: bf_value(bf, k) for k in DEFAULTS}
    opts_of = [bf_options({**base, **dict(st)}, where=f"sweep setting {dict(st)}") for st in settings]
    cuts_known = bool(getattr(engine, "returns_token_ids", False))
    decode = getattr(engine, "decode", None) or (lambda ids: engine.tokenizer.decode(
        ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    max_context = getattr(engine, "max_context", 32768)
    seqs = []
    for i, p in enumerate(prompts):
        n = len(engine.tokenizer.encode(p, add_special_tokens=False))
        seqs.append([_new_sequence(i, p, o, max_new_tokens, max_context, engine.tokenizer, n) for o in opts_of])
    pending, active = deque(range(len(prompts))), []
    bar = tqdm(total=len(prompts), desc="generate (shared sweep)", unit="question", disable=not progress)
    while pending or active:
        while pending and len(active) < batch_size:
            i = pending.popleft()
            for s in seqs[i]:
                s.deadline = time.monotonic() + opts_of[0]["request_timeout_s"]
            active.append(i)
        live = [(j, s) for i in active for j, s in enumerate(seqs[i]) if s.phase is not Phase.DONE]
        reqs = [_next_request(s, opts_of[j], 0.0, 0) for j, s in live]
        groups: dict[tuple, list[int]] = {}
        for n, r in enumerate(reqs):      # same text and stops: one engine request (same cap too, without token ids)
            groups.setdefault((r.text, tuple(r.stop), None if cuts_known else r.max_new_tokens), []).append(n)
        leaders = [max(g, key=lambda n: reqs[n].max_new_tokens) for g in groups.values()]
        for g, lead, cont in zip(groups.values(), leaders, engine.continue_batch([reqs[n] for n in leaders])):
            for n in g:
                j, s = live[n]
                s.fork_from = None if n == lead else reqs[lead].key
                step(s, cont if n == lead else _cut(cont, reqs[n].max_new_tokens, decode), opts_of[j])
                if s.phase is Phase.DONE and on_result:
                    on_result(j, s.index, _result(s))
        finished = [i for i in active if all(s.phase is Phase.DONE for s in seqs[i])]
        for i in finished:
            forget(engine, [s.key for s in seqs[i]])
        bar.update(len(finished))
        active = [i for i in active if i not in finished]
    bar.close()
    return [[_result(seqs[i][j]) for i in range(len(prompts))] for j in range(len(settings))]


def _cut(cont: Continuation, n: int, decode) -> Continuation:
    """The continuation a request capped at n tokens gets: the same one if it ended within n, else its first n."""
    if cont.num_tokens <= n:
        return cont
    ids = cont.token_ids[:n]
    return Continuation(text=decode(ids), num_tokens=n, stop_reason="length", token_ids=ids)


def _result(s: Sequence) -> SequenceResult:
    return SequenceResult(s.prompt, s.thinking, s.answer, s.text, s.outcome, s.thinking_tokens, s.answer_tokens,
                          s.waits_used, s.rounds)


def _new_sequence(i, prompt, opts, max_new_tokens, max_context, tokenizer, prompt_tokens: int | None = None) -> Sequence:
    s = Sequence(index=i, prompt=prompt, key=f"bf-{next(_KEYS)}")
    if prompt_tokens is None:
        prompt_tokens = len(tokenizer.encode(prompt, add_special_tokens=False))
    room = max(0, max_context - prompt_tokens - FORCED_SLACK)
    s.total = min(max_new_tokens, room)
    if prompt.endswith(opts["think_prefix"]):
        answer_cap = opts["answer_max_tokens"]
        reserve = min(answer_cap if answer_cap is not None else ANSWER_RESERVE, s.total // 2)
        s.answer_limit = reserve                # None: raised to the rest of the total when the answer starts
        cap = opts["max_thinking_tokens"]
        s.think_limit = min(cap if cap is not None else s.total, s.total - reserve)
    else:
        s.phase, s.answer_limit = Phase.ANSWERING, s.total
    return s


def _next_request(s: Sequence, opts, temperature: float, seed: int) -> Request:
    if s.phase is Phase.THINKING:
        max_new, stop = s.think_limit - s.thinking_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    else:
        max_new, stop = s.answer_limit - s.answer_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    return Request(text=s.prompt + s.text, max_new_tokens=max(0, max_new), stop=stop, temperature=temperature,
                   seed=seed, key=s.key, deadline=s.deadline, fork_from=s.fork_from)


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
        wants_more = s.waits_used < opts["num_waits"] or s.thinking_tokens < opts["min_thinking_tokens"]
        if ended_by_model and wants_more and budget_left > 0:
            wait = _on_new_line(s, opts["wait_string"])     # suppress the end of thinking: "Wait"
            s.thinking += wait
            s.text += wait
            s.waits_used += 1
            return
        s.forced = not ended_by_model
        s.text += _on_new_line(s, opts["answer_prefix"])    # end thinking, force the answer
        s.phase = Phase.ANSWERING
        if opts["answer_max_tokens"] is None:
            s.answer_limit = s.total - s.thinking_tokens     # the rest of the total, as the public code
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
