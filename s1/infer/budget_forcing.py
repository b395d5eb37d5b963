"""Budget forcing (s1 §3): a per-sequence state machine that drives any engine.

Each sequence is THINKING → ANSWERING → DONE. Every round the engine
continues each unfinished sequence until a stop string or a token cap, then
the rules below decide what to append:

- thinking ended by the model (it wrote the end-of-thinking delimiter
  "<|im_start|>", or end-of-text) with waits left and budget left: drop the
  delimiter, append "Wait" (on a new line, as the "Wait 12:7+9=6" corrections
  of the training traces are; wait_on_new_line=false: right after the last token, as the release), keep thinking;
- the thinking budget T ran out: append the answer prefix
  "<|im_start|>answer\\nFinal Answer:" (after a newline if needed) and let it answer;
- thinking ended by the model with no wait or budget left: append only "<|im_start|>answer" in place of the
  delimiter, and the model writes "\\nAnswer: ..." on as it was trained (the release's two cases, s1.format);
- the answer ends at end-of-text (or a new "<|im_start|>") under its own cap (answer_max_tokens), or, when that is
  None, under the rest of the total (the public code's rule);
- minimum budget: with min_thinking_tokens = N, an end of thinking before N thinking tokens is suppressed with
  "Wait" too (these count as waits used);
- adaptive extrapolation (adaptive_waits, beyond the paper): at each end of thinking that would be suppressed, first
  peek: the answer the model would give now (the answer marker and a short answer, on a copy of the sequence: the
  sequence itself is unchanged). When the peeked answer equals the previous peek's, stop forcing and keep that peek
  as the answer (it is exactly what the answer phase would generate); otherwise append "Wait" as above. num_waits
  caps the Waits; the peeks that were not kept count in peek_tokens.

Each sequence's next round is handed to the engine as soon as its last one returns (s1.infer.engine.run_requests:
continuous batching on transformers and vLLM), so no sequence waits for the slowest of a batch.
plain_generation (method no_bf, the release's "without budget forcing" row) turns all of this off: one
generation to the total that ends only at the end of turn; its thinking is the text before the answer marker it
wrote itself.
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
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tqdm.auto import tqdm

from s1.config import BudgetForcingConfig
from s1.format import END, forced_answer
from s1.grading import canonical_answer, extract_answer
from s1.infer.engine import Continuation, Request, forget, run_requests

DEFAULTS = dataclasses.asdict(BudgetForcingConfig())   # the one place for defaults is the config schema
END_OF_TEXT = END
FORCED_SLACK = 16     # tokens kept free in the context for the forced strings
ANSWER_RESERVE = DEFAULTS["answer_reserve"]  # tokens thinking always leaves for the answer (at most half the total)
_KEYS = itertools.count()
log = logging.getLogger("s1.infer")


class Phase(enum.Enum):
    THINKING = "thinking"
    PEEKING = "peeking"           # adaptive: a short forced answer on a copy of the sequence
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
    peek_tokens: int = 0          # adaptive: tokens generated by peeks not kept as the answer
    peeks: list = dataclasses.field(default_factory=list)  # adaptive: extracted answer of each peek, in order


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
    peek_tokens: int = 0          # adaptive extrapolation: answer tokens spent on peeks (a cost, not thinking text)


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
                     ("answer_max_tokens", 1), ("answer_reserve", 0)):
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
    pending, asked = deque(seqs), {}          # asked: id(request) -> its sequence
    bar = tqdm(total=len(seqs), desc="generate", unit="seq", disable=not progress)

    def ask(s: Sequence) -> Request:
        if s.deadline is None:
            s.deadline = time.monotonic() + opts["request_timeout_s"]
        req = _next_request(s, opts, temperature, seeds[s.index] if seeds else seed + s.index)
        asked[id(req)] = s
        return req

    def finished(s: Sequence) -> None:
        forget(engine, [s.key, s.key + "/peek"])
        if opts["plain_generation"]:
            _split_plain(s, opts, engine.tokenizer)
        bar.update(1)
        if on_result:
            on_result(s.index, _result(s))

    def on_done(req: Request, cont: Continuation) -> list[Request]:
        s = asked.pop(id(req))
        step(s, cont, opts)
        if s.phase is not Phase.DONE:
            return [ask(s)]
        finished(s)
        return [ask(pending.popleft())] if pending else []    # keep the batch full

    # an engine that runs these rules itself (vLLM's logits processor, s1.infer.vllm_bf): one request per sequence
    in_engine = getattr(engine, "budget_forcing_in_engine", None)
    if in_engine is None or not in_engine(seqs, opts, temperature=temperature, batch_size=batch_size,
                                          seed_of=lambda s: seeds[s.index] if seeds else seed + s.index,
                                          finished=finished):
        run_requests(engine, [ask(pending.popleft()) for _ in range(min(batch_size, len(pending)))], on_done)
    bar.close()
    return [_result(s) for s in seqs]


def generate_sweep(engine, prompts: list[str], settings: list[dict], bf=None, *, max_new_tokens: int,
                   batch_size: int = 8, progress: bool = True,
                   on_result: Callable[[int, int, SequenceResult], None] | None = None) -> list[list[SequenceResult]]:
    """Greedy budget forcing of every setting on every prompt, for about the price of the largest setting.

    A setting overrides bf, e.g. {"max_thinking_tokens": 500} or {"max_thinking_tokens": None, "num_waits": 2};
    result[j][i] equals generate(engine, prompts, bf + settings[j], temperature=0)[i], field by field. A question's
    settings start as one group; each time a group's request returns, its sequences take their budget-forcing step
    and ask to continue: those with the same text and stops (the thinking they share) make ONE engine request, run
    to the largest token cap among them. A member with a smaller
    cap gets that continuation cut at its cap (exactly the tokens greedy decoding gives it alone), then branches:
    its own forced string ("Wait" or the answer prefix) and its answer, starting from the leader's cached state
    (Request.fork_from: KV cache on transformers; vLLM's prefix cache and servers need nothing). An engine that does
    not return token ids (OpenAI-compatible servers) shares only identical requests.
    on_result(j, i, result) is called as soon as setting j on prompt i is done (for caching).
    """
    if getattr(engine, "budget_forcing_in_engine", None) is not None:
        log.info("shared sweep: in rounds (one request per continuation; single pass shares nothing across settings)")
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
    pending, groups = deque(range(len(prompts))), {}    # groups: id(leader request) -> [(setting, sequence, its request)]
    bar = tqdm(total=len(prompts), desc="generate (shared sweep)", unit="question", disable=not progress)

    def ask(members: list[tuple[int, Sequence]]) -> list[Request]:
        """One engine request per distinct text and stops among these sequences (same cap too, without token ids),
        run to the largest cap among its members."""
        by_text: dict[tuple, list] = {}
        for j, s in members:
            r = _next_request(s, opts_of[j], 0.0, 0)
            by_text.setdefault((r.text, tuple(r.stop), None if cuts_known else r.max_new_tokens), []).append((j, s, r))
        leaders = []
        for group in by_text.values():
            lead = max(group, key=lambda m: m[2].max_new_tokens)[2]
            groups[id(lead)] = group
            leaders.append(lead)
        return leaders

    def start(i: int) -> list[Request]:
        for s in seqs[i]:
            s.deadline = time.monotonic() + opts_of[0]["request_timeout_s"]
        return ask(list(enumerate(seqs[i])))

    def on_done(lead: Request, cont: Continuation) -> list[Request]:
        group, live = groups.pop(id(lead)), []
        for j, s, r in group:
            s.fork_from = None if r is lead else lead.key
            step(s, cont if r is lead else _cut(cont, r.max_new_tokens, decode), opts_of[j])
            if s.phase is Phase.DONE and opts_of[j]["plain_generation"]:
                _split_plain(s, opts_of[j], engine.tokenizer)
            if s.phase is not Phase.DONE:
                live.append((j, s))
            elif on_result:
                on_result(j, s.index, _result(s))
        i = group[0][1].index
        if live or any(s.phase is not Phase.DONE for s in seqs[i]):
            return ask(live)
        forget(engine, [k for s in seqs[i] for k in (s.key, s.key + "/peek")])
        bar.update(1)
        return start(pending.popleft()) if pending else []

    first = [r for _ in range(min(batch_size, len(pending))) for r in start(pending.popleft())]
    run_requests(engine, first, on_done)
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
                          s.waits_used, s.rounds, s.peek_tokens)


def _new_sequence(i, prompt, opts, max_new_tokens, max_context, tokenizer, prompt_tokens: int | None = None) -> Sequence:
    s = Sequence(index=i, prompt=prompt, key=f"bf-{next(_KEYS)}")
    if prompt_tokens is None:
        prompt_tokens = len(tokenizer.encode(prompt, add_special_tokens=False))
    room = max(0, max_context - prompt_tokens - FORCED_SLACK)
    s.total = min(max_new_tokens, room)
    if opts["plain_generation"]:               # no thinking control: the model writes thinking and answer itself
        s.phase, s.answer_limit = Phase.ANSWERING, s.total
    elif prompt.endswith(opts["think_prefix"]):
        answer_cap = opts["answer_max_tokens"]
        reserve = min(answer_cap if answer_cap is not None else opts.get("answer_reserve", ANSWER_RESERVE),
                      s.total // 2)
        s.answer_limit = reserve                # None: raised to the rest of the total when the answer starts
        cap = opts["max_thinking_tokens"]
        s.think_limit = min(cap if cap is not None else s.total, s.total - reserve)
    else:
        s.phase, s.answer_limit = Phase.ANSWERING, s.total
    return s


def _next_request(s: Sequence, opts, temperature: float, seed: int) -> Request:
    if s.phase is Phase.PEEKING:    # a branch off the sequence: its own key, starting from the sequence's state
        return Request(text=s.prompt + s.text + _forced(s, opts, at_cap=False),
                       max_new_tokens=max(0, _answer_cap(s, opts)), stop=[opts["end_of_thinking"], END_OF_TEXT],
                       temperature=temperature, seed=seed, key=s.key + "/peek", deadline=s.deadline,
                       fork_from=s.fork_from or s.key)
    if s.phase is Phase.THINKING:
        max_new, stop = s.think_limit - s.thinking_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    elif opts["plain_generation"]:
        max_new, stop = s.answer_limit - s.answer_tokens, [END_OF_TEXT]
    else:
        max_new, stop = s.answer_limit - s.answer_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    return Request(text=s.prompt + s.text, max_new_tokens=max(0, max_new), stop=stop, temperature=temperature,
                   seed=seed, key=s.key, deadline=s.deadline, fork_from=s.fork_from)


def step(s: Sequence, cont, opts) -> None:
    """Apply one engine continuation to a sequence: the budget-forcing rules."""
    s.rounds += 1
    if s.phase is Phase.PEEKING:
        return _after_peek(s, cont, opts)
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
        if ended_by_model and wants_more and budget_left > 0 and opts["adaptive_waits"]:
            s.phase = Phase.PEEKING                         # read the answer it would give before forcing more
            return
        if ended_by_model and wants_more and budget_left > 0:
            wait = _wait_text(s, opts)                      # suppress the end of thinking: "Wait"
            s.thinking += wait
            s.text += wait
            s.waits_used += 1
            return
        s.forced = not ended_by_model
        s.text += _forced(s, opts, at_cap=not ended_by_model)   # end thinking, force the answer
        s.phase = Phase.ANSWERING
        s.answer_limit = _answer_cap(s, opts)
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


def _answer_cap(s: Sequence, opts) -> int:
    """The answer's token cap once thinking ends now: its own cap, or the rest of the total (the public code)."""
    return s.answer_limit if opts["answer_max_tokens"] is not None else s.total - s.thinking_tokens


def _after_peek(s: Sequence, cont, opts) -> None:
    """Adaptive extrapolation: keep the peek as the answer once two consecutive peeks agree, else force "Wait"."""
    extracted = extract_answer(cont.text) if cont.stop_reason in ("stop", "eos") else None
    answer = canonical_answer(extracted) if extracted else None   # "\\boxed{7}" and "Answer: 7" agree
    stable = answer is not None and bool(s.peeks) and s.peeks[-1] == answer   # equal answers in any spelling
    s.peeks.append(answer)
    timed_out = cont.stop_reason == "timeout" or (s.deadline is not None and time.monotonic() > s.deadline)
    if stable or timed_out:
        s.text += _forced(s, opts, at_cap=False) + cont.text
        s.answer, s.answer_tokens, s.phase = cont.text, cont.num_tokens, Phase.ANSWERING
        return _finish(s, "timeout" if timed_out else "answered")
    s.peek_tokens += cont.num_tokens
    wait = _wait_text(s, opts)
    s.thinking += wait
    s.text += wait
    s.waits_used += 1
    s.phase = Phase.THINKING


def _split_plain(s: Sequence, opts, tokenizer) -> None:
    """A plain generation's own thinking and answer: the text before and after its last answer marker (all answer
    when it wrote none), with the answer's tokens counted by the tokenizer."""
    i = s.answer.rfind(opts["answer_prefix_after_end"])
    if i <= 0 or not s.prompt.endswith(opts["think_prefix"]):
        return
    thinking, answer = s.answer[:i], s.answer[i:]
    n_answer = min(s.answer_tokens, len(tokenizer.encode(answer, add_special_tokens=False)))
    s.thinking, s.answer = thinking, answer
    s.thinking_tokens, s.answer_tokens = s.answer_tokens - n_answer, n_answer


def _forced(s: Sequence, opts, *, at_cap: bool) -> str:
    """The string that ends thinking: at the cap the answer prefix on a new line, else the bare answer marker."""
    return forced_answer(s.prompt + s.text, at_cap=at_cap, at_cap_string=opts["answer_prefix"],
                         after_end_string=opts["answer_prefix_after_end"])


def _wait_text(s: Sequence, opts) -> str:
    """The forced Wait string: on a new line (ours), or right after the last token (the release's fork)."""
    return _on_new_line(s, opts["wait_string"]) if opts.get("wait_on_new_line", True) else opts["wait_string"]


def _on_new_line(s: Sequence, forced: str) -> str:
    full = s.prompt + s.text
    return forced if not full or full.endswith("\n") else "\n" + forced


def _finish(s: Sequence, outcome: str) -> None:
    s.outcome, s.phase = outcome, Phase.DONE
