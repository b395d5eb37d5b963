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
  peek: the answer the model would give now, on a copy of the sequence (the sequence itself is unchanged): after
  the cap's forced "Final Answer:" (adaptive_peek=final_answer: the model writes only its answer, where after the
  bare marker a real model writes its whole answer segment) or after the bare marker (adaptive_peek=marker: the peek
  is exactly what the answer phase would generate). When the peeked answer equals the previous peek's, stop forcing
  and keep that peek as the answer; otherwise append "Wait" as above. num_waits caps the Waits; the peeks that were
  not kept count in peek_tokens.

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

Tokens, as the release's fork holds them: on an engine that returns token ids (transformers, vLLM) a sequence keeps
the model's own tokens as generated and appends each forced string encoded alone (Request.token_ids), so "." then
"\nWait" stays ".", "\n", "Wait" where encoding the text whole would give ".\n", "Wait". vLLM's single pass holds
the same tokens, so both paths continue from the same ones. Where a continuation's text is not its tokens' text (a
stop string inside a token), the whole text is encoded once and held from there.

The post-s1 methods (issue 32, docs/methods.md) are rules of the same loop, so they run on every engine:
- cap endings (cap_ending): at the cap, the s1 cut (hard), a stop sentence then the end of thinking
  (stop_sentence), or up to floor(cap_window x cap) more thinking tokens until one holds a newline (finish_window:
  one more thinking request that stops at "\n"); s1.infer.cap_endings;
- AlphaOne (alpha): thinking also stops at each step boundary (the boundary text is kept); there a per-sequence
  random.Random seeded from the sequence's seed decides (s1.infer.alphaone.decide): append "Wait", go on, or, at or
  after the α moment (alpha x the thinking budget), end thinking with the bare answer marker; no Wait after α;
- DEER (deer_threshold): at each step boundary a trial answer is peeked as adaptive peeks (at most
  trial_answer_tokens, with log-probabilities); thinking exits, keeping the peek as the answer's start, when its mean
  token probability reaches the threshold (s1.infer.deer); the other peeks count in peek_tokens;
- NoWait (ban_words): thinking requests carry the words; the engine bans any token that would complete one
  (s1.infer.nowait);
- NoThinking (no_thinking): the sequence starts answering after a closed thinking segment with a filler
  (s1.infer.no_thinking.prefill), 0 thinking tokens;
- record_confidence: every request asks for log-probabilities; the result's confidence is their mean over the
  sample's generated tokens (None where the engine gives none).

generate_sweep() runs several settings (caps, waits) of the same prompts at once: greedy settings share every
continuation whose text they share, so a sweep costs about its largest setting (see its doc).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tqdm.auto import tqdm

from s1.config import BudgetForcingConfig
from s1.format import END, forced_answer
from s1.grading import canonical_answer, extract_answer
from s1.infer.alphaone import SCHEDULES, alpha_moment, decide
from s1.infer.cap_endings import ENDINGS, forced_text, window_tokens
from s1.infer.deer import confidence as trial_confidence
from s1.infer.deer import should_exit
from s1.infer.engine import Continuation, Request, forget, run_requests
from s1.infer.no_thinking import prefill
from s1.infer.nowait import check_words

DEFAULTS = dataclasses.asdict(BudgetForcingConfig())   # the one place for defaults is the config schema
END_OF_TEXT = END
PEEKS = ("final_answer", "marker")   # adaptive_peek: what a peek forces (the cap's answer prefix, or the bare marker)
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
    rng: random.Random | None = None  # AlphaOne: its Wait draws, seeded from the sequence's seed
    in_window: bool = False       # finish_window: thinking runs on past the cap to the next newline
    window_end: int = 0           # finish_window: the thinking tokens at which the window closes
    peek_confidence: list = dataclasses.field(default_factory=list)  # DEER: each trial answer's mean token probability
    wait_at: list = dataclasses.field(default_factory=list)  # thinking tokens at each forced Wait
    logprob_sum: float = 0.0      # log-probabilities of the tokens kept in the text (confidence)
    logprob_count: int = 0
    logprobs_missing: bool = False  # some kept continuation came without log-probabilities: no confidence
    started: float | None = None  # time.monotonic() of the first request
    ended: float | None = None    # time.monotonic() of the result
    prompt_ids: list | None = None  # the prompt's tokens, encoded once (for the caps; vLLM's single pass sends them)
    held_ids: list | None = None  # the tokens of (prompt + text)[:held_len] as the engine ran them (None: not held)
    held_len: int = 0


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
    peek_tokens: int = 0          # adaptive extrapolation, DEER: answer tokens spent on peeks (a cost, not thinking text)
    seconds: float = dataclasses.field(default=0.0, compare=False)  # wall time from the first request to the result
    confidence: float | None = dataclasses.field(default=None, compare=False)  # mean log-probability of the sample's generated tokens (record_confidence)
    peek_confidence: list = dataclasses.field(default_factory=list, compare=False)  # DEER: each peek's mean token probability
    wait_at: list = dataclasses.field(default_factory=list, compare=False)  # thinking tokens at each forced Wait


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
    _check_methods(opts, where)
    return opts


def _check_methods(opts: dict, where: str) -> None:
    """The post-s1 settings (issue 32): types, ranges and combinations; ban_words becomes a list."""
    def bad(key, fix):
        raise ValueError(f"{where}.{key}={opts[key]!r}: {fix}")

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    opts["ban_words"] = check_words(opts["ban_words"], f"{where}.ban_words")
    if opts["cap_ending"] not in ENDINGS:
        bad("cap_ending", f"use one of {list(ENDINGS)}")
    if not isinstance(opts["cap_sentence"], str) or not opts["cap_sentence"].strip():
        bad("cap_sentence", "give the sentence appended at the cap (a non-empty string)")
    if not number(opts["cap_window"]) or opts["cap_window"] < 0:
        bad("cap_window", "give the extra thinking as a fraction of the cap >= 0, e.g. 0.1")
    if opts["alpha"] is not None and (not number(opts["alpha"]) or not 0 < opts["alpha"] <= 1):
        bad("alpha", "give the slow-thinking share of the budget in (0, 1], e.g. 0.6, or null (off)")
    if not number(opts["alpha_p0"]) or not 0 <= opts["alpha_p0"] <= 1:
        bad("alpha_p0", "give a probability in [0, 1], e.g. 0.4")
    if opts["alpha_schedule"] not in SCHEDULES:
        bad("alpha_schedule", f"use one of {list(SCHEDULES)}")
    if not isinstance(opts["step_boundary"], str) or not opts["step_boundary"]:
        bad("step_boundary", "give a non-empty string, e.g. a blank line \"\\n\\n\"")
    if opts["deer_threshold"] is not None and (not number(opts["deer_threshold"])
                                               or not 0 < opts["deer_threshold"] <= 1):
        bad("deer_threshold", "give a mean token probability in (0, 1], e.g. 0.95, or null (off)")
    if not isinstance(opts["trial_answer_tokens"], int) or opts["trial_answer_tokens"] < 1:
        bad("trial_answer_tokens", "use an integer >= 1 (tokens of a trial answer)")
    for key in ("no_thinking", "record_confidence"):
        if not isinstance(opts[key], bool):
            bad(key, "use true or false")
    if opts["adaptive_peek"] not in PEEKS:
        bad("adaptive_peek", f"use one of {list(PEEKS)}")
    if opts["deer_threshold"] is not None and opts["adaptive_waits"]:
        bad("deer_threshold", "DEER and adaptive_waits both peek at answers: set one (adaptive_waits=false or "
                              "deer_threshold=null)")
    if opts["deer_threshold"] is not None and opts["alpha"] is not None:
        bad("deer_threshold", "DEER and AlphaOne both act at step boundaries: set one (alpha=null or "
                              "deer_threshold=null)")
    if opts["no_thinking"] and opts["plain_generation"]:
        bad("no_thinking", "NoThinking closes the thinking that plain generation leaves to the model: set one "
                           "(plain_generation=false or no_thinking=false)")


# the post-s1 settings: engines that run budget forcing themselves (vLLM's single pass) run none of them
METHOD_KEYS = ("ban_words", "cap_ending", "cap_sentence", "cap_window", "alpha", "alpha_p0", "alpha_schedule",
               "step_boundary", "deer_threshold", "trial_answer_tokens", "no_thinking", "record_confidence")


def methods_on(opts: dict) -> list[str]:
    """The post-s1 settings that differ from their defaults (they change what the rounds do)."""
    return [k for k in METHOD_KEYS if opts[k] != DEFAULTS[k]]


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
    codec = _codec(engine)
    pending, asked = deque(seqs), {}          # asked: id(request) -> its sequence
    bar = tqdm(total=len(seqs), desc="generate", unit="seq", disable=not progress)

    def ask(s: Sequence) -> Request:
        if s.deadline is None:
            s.started = time.monotonic()
            s.deadline = s.started + opts["request_timeout_s"]
        req = _next_request(s, opts, temperature, seeds[s.index] if seeds else seed + s.index, codec)
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
        _hold(s, req, cont, codec)
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
    codec = _codec(engine)
    cuts_known = codec is not None        # token ids returned: a member's continuation can be cut at its cap
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
            r = _next_request(s, opts_of[j], 0.0, 0, codec)
            by_text.setdefault((r.text, tuple(r.token_ids or ()), tuple(r.stop),
                                None if cuts_known else r.max_new_tokens, r.logprobs, r.ban_words),
                               []).append((j, s, r))
        leaders = []
        for group in by_text.values():
            lead = max(group, key=lambda m: m[2].max_new_tokens)[2]
            groups[id(lead)] = group
            leaders.append(lead)
        return leaders

    def start(i: int) -> list[Request]:
        for s in seqs[i]:
            s.started = time.monotonic()
            s.deadline = s.started + opts_of[0]["request_timeout_s"]
            s.rng = random.Random(s.index)        # AlphaOne's draws as generate(seed=0) seeds them (seed + i)
        return ask(list(enumerate(seqs[i])))

    def on_done(lead: Request, cont: Continuation) -> list[Request]:
        group, live = groups.pop(id(lead)), []
        for j, s, r in group:
            s.fork_from = None if r is lead else lead.key
            c = cont if r is lead else _cut(cont, r.max_new_tokens, codec[1] if codec else None)
            _hold(s, r, c, codec)
            step(s, c, opts_of[j])
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
    return Continuation(text=decode(ids), num_tokens=n, stop_reason="length", token_ids=ids,
                        logprobs=None if cont.logprobs is None else cont.logprobs[:n])


def _result(s: Sequence) -> SequenceResult:
    seconds = (s.ended or time.monotonic()) - s.started if s.started is not None else 0.0
    confidence = s.logprob_sum / s.logprob_count if s.logprob_count and not s.logprobs_missing else None
    return SequenceResult(s.prompt, s.thinking, s.answer, s.text, s.outcome, s.thinking_tokens, s.answer_tokens,
                          s.waits_used, s.rounds, s.peek_tokens, seconds=seconds, confidence=confidence,
                          peek_confidence=list(s.peek_confidence), wait_at=list(s.wait_at))


def _new_sequence(i, prompt, opts, max_new_tokens, max_context, tokenizer, prompt_tokens: int | None = None) -> Sequence:
    s = Sequence(index=i, prompt=prompt, key=f"bf-{next(_KEYS)}")
    if prompt_tokens is None:
        s.prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
        prompt_tokens = len(s.prompt_ids)
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
        if opts.get("no_thinking"):           # NoThinking: the thinking segment closed at once, with the filler
            close = opts["answer_prefix_after_end"]
            close = close if close.endswith("\n") else close + "\n"
            s.text = prefill(prompt, think_open=opts["think_prefix"], think_close=close)[len(prompt):]
            s.thinking, s.think_limit = s.text[:len(s.text) - len(close)], 0
            s.phase, s.answer_limit = Phase.ANSWERING, min(answer_cap, s.total) if answer_cap is not None else s.total
    else:
        s.phase, s.answer_limit = Phase.ANSWERING, s.total
    return s


def _codec(engine) -> tuple | None:
    """(encode, decode) of an engine whose continuations carry their token ids (the sequence's tokens are then
    held, see the module doc); None for text-only engines (OpenAI-compatible servers)."""
    if not getattr(engine, "returns_token_ids", False):
        return None
    decode = getattr(engine, "decode", None) or (lambda ids: engine.tokenizer.decode(
        ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
    encode = getattr(engine, "encode", None) or (lambda t: engine.tokenizer.encode(t, add_special_tokens=False))
    return encode, decode


def _tokens(s: Sequence, extra: str, codec) -> list[int] | None:
    """The request's tokens: those held, then the text after them (and `extra`, a peek's forced string) encoded
    alone, as the release's fork appends a forced string's tokens to the generated ones."""
    if codec is None:
        return None
    full = s.prompt + s.text
    if s.held_ids is None:          # the start, or a continuation whose text was not its tokens': encode it whole
        s.held_ids = list(s.prompt_ids) if not s.text and s.prompt_ids is not None else codec[0](full)
        s.held_len = len(full)
    rest = full[s.held_len:] + extra
    return s.held_ids + codec[0](rest) if rest else list(s.held_ids)


def _hold(s: Sequence, req: Request, cont: Continuation, codec) -> None:
    """Hold the request's tokens and the continuation's own (its stop or end token dropped) where they spell the
    continuation's text; else nothing is held and the next request encodes the text whole. Peeks hold nothing
    (a kept peek's text is encoded at the next request)."""
    if req.token_ids is None or s.phase is Phase.PEEKING:
        return
    s.held_ids, ids = None, cont.token_ids
    if codec is None or ids is None:
        return
    for k in (len(ids), len(ids) - 1):
        if k >= 0 and codec[1](ids[:k]) == cont.text:
            s.held_ids, s.held_len = req.token_ids + list(ids[:k]), len(req.text) + len(cont.text)
            return


def _next_request(s: Sequence, opts, temperature: float, seed: int, codec=None) -> Request:
    if s.rng is None:
        s.rng = random.Random(seed)
    logprobs = bool(opts.get("record_confidence"))
    if s.phase is Phase.PEEKING:    # a branch off the sequence: its own key, starting from the sequence's state
        cap = _answer_cap(s, opts)
        if opts.get("deer_threshold") is not None:
            cap, logprobs = min(cap, opts["trial_answer_tokens"]), True
        forced = _peek_forced(s, opts)
        return Request(text=s.prompt + s.text + forced,
                       max_new_tokens=max(0, cap), stop=[opts["end_of_thinking"], END_OF_TEXT],
                       temperature=temperature, seed=seed, key=s.key + "/peek", deadline=s.deadline,
                       fork_from=s.fork_from or s.key, logprobs=logprobs, token_ids=_tokens(s, forced, codec))
    ban: tuple[str, ...] = ()
    if s.phase is Phase.THINKING:
        max_new, stop = s.think_limit - s.thinking_tokens, [opts["end_of_thinking"], END_OF_TEXT]
        if s.in_window:                       # finish_window: on to the next newline
            max_new = s.window_end - s.thinking_tokens
            stop.append("\n")
        elif opts.get("alpha") is not None or opts.get("deer_threshold") is not None:
            stop.append(opts["step_boundary"])
        ban = tuple(opts.get("ban_words") or ())
    elif opts["plain_generation"]:
        max_new, stop = s.answer_limit - s.answer_tokens, [END_OF_TEXT]
    else:
        max_new, stop = s.answer_limit - s.answer_tokens, [opts["end_of_thinking"], END_OF_TEXT]
    return Request(text=s.prompt + s.text, max_new_tokens=max(0, max_new), stop=stop, temperature=temperature,
                   seed=seed, key=s.key, deadline=s.deadline, fork_from=s.fork_from, logprobs=logprobs,
                   ban_words=ban, token_ids=_tokens(s, "", codec))


def step(s: Sequence, cont, opts) -> None:
    """Apply one engine continuation to a sequence: the budget-forcing rules."""
    s.rounds += 1
    if s.phase is Phase.PEEKING:
        if opts.get("deer_threshold") is not None:
            return _after_trial_answer(s, cont, opts)
        return _after_peek(s, cont, opts)
    s.text += cont.text
    _keep_logprobs(s, cont)
    timed_out = cont.stop_reason == "timeout" or (s.deadline is not None and time.monotonic() > s.deadline)
    if s.phase is Phase.THINKING:
        s.thinking += cont.text
        s.thinking_tokens += cont.num_tokens
        if timed_out:
            return _finish(s, "timeout")
        if s.in_window:
            return _after_window(s, cont, opts)
        boundary = cont.stop_reason == "stop" and opts.get("step_boundary") and \
            cont.matched_stop == opts["step_boundary"] and (opts.get("alpha") is not None or
                                                            opts.get("deer_threshold") is not None)
        if boundary:                                        # a step boundary: its text stays in the thinking
            s.thinking += cont.matched_stop
            s.text += cont.matched_stop
        ended_by_model = cont.stop_reason in ("stop", "eos") and not boundary
        budget_left = s.think_limit - s.thinking_tokens
        if boundary and budget_left > 0:
            return _at_step_boundary(s, opts)
        moment = _alpha_moment(s, opts)
        wants_more = (s.waits_used < opts["num_waits"] or s.thinking_tokens < opts["min_thinking_tokens"]) and \
            (moment is None or s.thinking_tokens < moment)  # AlphaOne: no Wait after the α moment
        if ended_by_model and wants_more and budget_left > 0 and opts["adaptive_waits"]:
            s.phase = Phase.PEEKING                         # read the answer it would give before forcing more
            return
        if ended_by_model and wants_more and budget_left > 0:
            _append_wait(s, opts)                           # suppress the end of thinking: "Wait"
            return
        if not ended_by_model and opts.get("cap_ending") == "finish_window":
            # up to floor(cap_window x cap) more thinking tokens, within what the answer needs left
            extra = min(window_tokens(s.think_limit, opts["cap_window"]),
                        s.total - s.answer_limit - s.thinking_tokens)
            if extra > 0:
                s.in_window, s.window_end = True, s.thinking_tokens + extra
                return
        return _end_thinking(s, opts, at_cap=not ended_by_model, forced=not ended_by_model)
    s.answer += cont.text
    s.answer_tokens += cont.num_tokens
    if timed_out:
        _finish(s, "timeout")
    elif cont.stop_reason in ("stop", "eos"):
        _finish(s, "forced" if s.forced else "answered")
    else:
        _finish(s, "no_answer")


def _end_thinking(s: Sequence, opts, *, at_cap: bool, forced: bool) -> None:
    """End thinking: at the cap the cap ending's text (cap_ending) and the answer prefix, else the bare answer
    marker; the sequence then answers."""
    s.forced = forced
    if at_cap and opts.get("cap_ending") == "stop_sentence":
        sentence = forced_text(s.prompt + s.text, "stop_sentence", "", opts["cap_sentence"])
        s.thinking += sentence                  # thinking text, not generated: not counted in thinking tokens
        s.text += sentence
    s.text += _forced(s, opts, at_cap=at_cap)   # end thinking, force the answer
    s.phase = Phase.ANSWERING
    s.answer_limit = _answer_cap(s, opts)
    if s.answer_limit <= 0:
        _finish(s, "no_answer")


def _after_window(s: Sequence, cont, opts) -> None:
    """finish_window: the window's continuation ended (a newline, its token cap, or the model's own end)."""
    s.in_window = False
    if cont.stop_reason == "stop" and cont.matched_stop == "\n":
        s.thinking += "\n"                     # the newline that closes the step stays in the thinking
        s.text += "\n"
    own_end = cont.stop_reason == "eos" or (cont.stop_reason == "stop" and cont.matched_stop not in ("\n", None))
    _end_thinking(s, opts, at_cap=not own_end, forced=True)


def _alpha_moment(s: Sequence, opts) -> int | None:
    """AlphaOne's α moment in thinking tokens (alpha x this sequence's thinking budget); None when off."""
    return None if opts.get("alpha") is None else alpha_moment(opts["alpha"], s.think_limit)


def _at_step_boundary(s: Sequence, opts) -> None:
    """DEER: peek a trial answer. AlphaOne: a Wait, go on, or (at or after the α moment) end thinking."""
    if opts.get("deer_threshold") is not None:
        s.phase = Phase.PEEKING
        return
    decision = decide(s.thinking_tokens, _alpha_moment(s, opts), opts["alpha_p0"],
                               opts["alpha_schedule"], s.rng)
    if decision == "wait":
        _append_wait(s, opts)
    elif decision == "end":                     # as when the model ends thinking: the bare answer marker
        _end_thinking(s, opts, at_cap=False, forced=True)


def _after_trial_answer(s: Sequence, cont, opts) -> None:
    """DEER: exit thinking when the trial answer's mean token probability reaches the threshold, keeping it as the
    answer (an answer cut at trial_answer_tokens goes on from it); else count its tokens and think on."""
    if cont.logprobs is None:
        raise RuntimeError(f"budget_forcing.deer_threshold={opts['deer_threshold']}: DEER needs each trial answer's "
                           "log-probabilities and this engine returned none; use the transformers or vLLM engine, "
                           "or a server that returns `logprobs`")
    s.peek_confidence.append(trial_confidence(cont.logprobs))
    timed_out = cont.stop_reason == "timeout" or (s.deadline is not None and time.monotonic() > s.deadline)
    if not (timed_out or should_exit(cont.logprobs, opts["deer_threshold"])):
        s.peek_tokens += cont.num_tokens
        s.phase = Phase.THINKING
        return
    s.text += _peek_forced(s, opts) + cont.text   # what the trial answer's request forced
    s.answer, s.answer_tokens, s.phase = cont.text, cont.num_tokens, Phase.ANSWERING
    _keep_logprobs(s, cont)
    s.answer_limit = _answer_cap(s, opts)
    if timed_out:
        _finish(s, "timeout")
    elif cont.stop_reason in ("stop", "eos"):
        _finish(s, "answered")
    elif s.answer_tokens >= s.answer_limit:
        _finish(s, "no_answer")


def _keep_logprobs(s: Sequence, cont) -> None:
    """Add a continuation kept in the text to the sample's confidence (mean log-probability)."""
    if cont.logprobs is None:
        s.logprobs_missing = s.logprobs_missing or cont.num_tokens > 0
        return
    s.logprob_sum += sum(cont.logprobs)
    s.logprob_count += len(cont.logprobs)


def _answer_cap(s: Sequence, opts) -> int:
    """The answer's token cap once thinking ends now: its own cap, or the rest of the total (the public code)."""
    return s.answer_limit if opts["answer_max_tokens"] is not None else s.total - s.thinking_tokens


def _after_peek(s: Sequence, cont, opts) -> None:
    """Adaptive extrapolation: keep the peek as the answer once two consecutive peeks agree, else force "Wait"."""
    forced = _peek_forced(s, opts)   # read with the peek's text: after "Final Answer:" a model may write a bare "7"
    extracted = extract_answer(forced + cont.text) if cont.stop_reason in ("stop", "eos") else None
    answer = canonical_answer(extracted) if extracted else None   # "\\boxed{7}" and "Answer: 7" agree
    stable = answer is not None and bool(s.peeks) and s.peeks[-1] == answer   # equal answers in any spelling
    s.peeks.append(answer)
    timed_out = cont.stop_reason == "timeout" or (s.deadline is not None and time.monotonic() > s.deadline)
    if stable or timed_out:
        s.text += forced + cont.text
        s.answer, s.answer_tokens, s.phase = cont.text, cont.num_tokens, Phase.ANSWERING
        _keep_logprobs(s, cont)
        return _finish(s, "timeout" if timed_out else "answered")
    s.peek_tokens += cont.num_tokens
    _append_wait(s, opts)
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


def _peek_forced(s: Sequence, opts) -> str:
    """What an adaptive peek forces after the thinking so far: the cap's "Final Answer:" (the model then writes only
    its answer, a few tokens) or the bare marker (the model writes its whole answer segment, as after its own end)."""
    if opts.get("deer_threshold") is None and opts["adaptive_peek"] == "final_answer":
        return _forced(s, opts, at_cap=True)
    return _forced(s, opts, at_cap=False)


def _forced(s: Sequence, opts, *, at_cap: bool) -> str:
    """The string that ends thinking: at the cap the answer prefix on a new line, else the bare answer marker."""
    return forced_answer(s.prompt + s.text, at_cap=at_cap, at_cap_string=opts["answer_prefix"],
                         after_end_string=opts["answer_prefix_after_end"])


def _append_wait(s: Sequence, opts) -> None:
    wait = _wait_text(s, opts)
    s.thinking += wait
    s.text += wait
    s.waits_used += 1
    s.wait_at.append(s.thinking_tokens)


def _wait_text(s: Sequence, opts) -> str:
    """The forced Wait string: on a new line (ours), or right after the last token (the release's fork)."""
    return _on_new_line(s, opts["wait_string"]) if opts.get("wait_on_new_line", True) else opts["wait_string"]


def _on_new_line(s: Sequence, forced: str) -> str:
    full = s.prompt + s.text
    return forced if not full or full.endswith("\n") else "\n" + forced


def _finish(s: Sequence, outcome: str) -> None:
    s.outcome, s.phase, s.ended = outcome, Phase.DONE, time.monotonic()
