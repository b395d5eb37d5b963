"""Budget forcing inside vLLM: a logits processor, so each sequence is ONE vLLM request (no re-submission).

Load it with `LLM(..., logits_processors=[BUDGET_FORCING])` or `vllm serve --logits-processors
s1.infer.vllm_bf:BudgetForcingLogitsProcessor` (`python -m s1.infer.vllm_serve` does that), and ask for it per request
with `SamplingParams(extra_args={...})` / the OpenAI server's `vllm_xargs`: the keys of `eval.budget_forcing`
(max_thinking_tokens, min_thinking_tokens, num_waits, wait_string, answer_max_tokens, think_prefix, end_of_thinking,
answer_prefix, answer_prefix_after_end) and max_new_tokens (thinking + answer; default the request's max_tokens).
A request without them is untouched.

One state machine: each request holds the controller's own `Sequence` (s1.infer.budget_forcing), and the processor
only tells the controller's `step()` where a round would have ended:
- thinking: the row's argmax (greedy) is an end of thinking (the end_of_thinking token, end of turn, a stop/eos
  token) -> the round ended "stop" (that token counted, as the rounds count it); the thinking cap is reached ->
  "length". `step()` then appends what it appends in rounds ("\\nWait", the answer prefix); the processor suppresses
  the end token and forces the appended string's tokens, one per step, each at logit 0.0 with every other -inf;
- answering: the answer cap -> the end-of-turn token is forced (the request stops; that token is not counted); an
  end of thinking in the answer -> replaced by end of turn (the rounds stop there too); end of turn / eos -> free.
Thinking tokens are counted as the controller counts them: generated tokens, the suppressed end tokens included,
the forced strings not. State is derived from the live output-token list: a decision for output position n is
committed only once position n exists (prefill chunks and preemption re-add requests and re-ask a position).

Sampling (temperature > 0): vLLM samples after the processor, so it cannot see the sampled token before it is
emitted. The processor draws the token itself from the row (temperature, top_k, top_p; a generator seeded from the
request's seed and the position) and forces it; an end of thinking drawn that way is suppressed like greedy's argmax.
The samples follow the model's distribution but are not vLLM's own draws (tests/test_vllm_bf.py checks the
distribution). vLLM's penalties and min_p act after the processor, so requests that set them are refused.

Limits: end_of_thinking and "<|im_end|>" must each be one token (the rounds match them as text); speculative
decoding refuses custom logits processors; the V1 model runner only (VLLM_USE_V2_MODEL_RUNNER=0, set by
s1.infer.vllm_backend and s1.infer.vllm_serve; a GPU vLLM otherwise picks Model Runner V2, whose processor
interface differs). Tokens: the model's own are kept as generated and each forced string is its own tokens (encoded
alone), as the release's fork appends them and as the rounds hold a sequence's tokens on transformers and vLLM
(s1.infer.budget_forcing): "." then "\nWait" is ".", "\n", "Wait" in both, so greedy results are equal.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import random
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from s1.format import END
from s1.infer.backend_codec import BackendCodec
from s1.infer.budget_forcing import DEFAULTS, Phase, Sequence, _new_sequence, bf_options, step
from s1.infer.engine import Continuation
from s1.infer.nowait import BAN_KEY

log = logging.getLogger("s1.infer")

BUDGET_FORCING = "s1.infer.vllm_bf:BudgetForcingLogitsProcessor"
BF_KEYS = ("max_thinking_tokens", "min_thinking_tokens", "num_waits", "wait_string", "answer_max_tokens",
           "think_prefix", "end_of_thinking", "answer_prefix", "answer_prefix_after_end")
TAG_KEY = "s1_tag"                 # names the request's trace (the engine and the server's middleware read it)
TOTAL_KEY = "max_new_tokens"       # thinking + answer tokens, as eval.max_new_tokens
VLLM_KEYS = ("kv_transfer_params", "ec_transfer_params")   # vLLM's own uses of extra_args
TOKENIZER_ENV = "S1_BF_TOKENIZER"  # model dir: lets validate_params (in the API process) tokenize the strings
TRACE_ENV = "S1_BF_TRACE_DIR"      # where traces go as <tag>.json when the engine runs in another process
_STRING_KEYS = ("wait_string", "think_prefix", "end_of_thinking", "answer_prefix", "answer_prefix_after_end")
_KEEP = 4096                       # live request states kept (LRU; a state outlives its request only a little)

TRACES: OrderedDict = OrderedDict()    # tag -> _State, in this process (an in-process engine reads them)
PROMPTS: OrderedDict = OrderedDict()   # tag -> prompt text, from an in-process engine (saves decoding the ids)
_STATES: OrderedDict = OrderedDict()   # id(params) -> (params, _State): a re-added request keeps its state


def wants_budget_forcing(extra_args: dict | None) -> bool:
    return bool(extra_args) and any(k in extra_args for k in (*BF_KEYS, TAG_KEY, TOTAL_KEY))


def check_args(extra_args: dict, tokenizer=None) -> dict:
    """The request's budget-forcing settings (defaults filled in); ValueError naming the key for anything wrong.
    A batch's requests share their settings (only the tag and total differ): each distinct set is checked once."""
    try:
        key = json.dumps({k: v for k, v in extra_args.items() if k != TAG_KEY}, sort_keys=True)
    except TypeError:              # not JSON (a bad value): check it uncached, for its error
        return _check_args(extra_args, tokenizer)
    return dict(_checked(key, tokenizer))


@functools.lru_cache(maxsize=256)
def _checked(key: str, tokenizer) -> dict:
    return _check_args(json.loads(key), tokenizer)


def _check_args(extra_args: dict, tokenizer=None) -> dict:
    known = (*BF_KEYS, TAG_KEY, TOTAL_KEY, *VLLM_KEYS, BAN_KEY)
    for k in extra_args:
        if k not in known:
            raise ValueError(f"vllm_xargs.{k}: not a budget-forcing key; use {', '.join((*BF_KEYS, TOTAL_KEY))}")
    opts = bf_options({k: v for k, v in extra_args.items() if k in BF_KEYS}, where="vllm_xargs")
    for k in _STRING_KEYS:
        if not isinstance(opts[k], str) or (k != "think_prefix" and not opts[k]):
            raise ValueError(f"vllm_xargs.{k}={opts[k]!r}: give a non-empty string")
    total = extra_args.get(TOTAL_KEY)
    if total is not None and (not isinstance(total, int) or total < 1):
        raise ValueError(f"vllm_xargs.{TOTAL_KEY}={total!r}: use an integer >= 1 (thinking + answer tokens)")
    if tokenizer is not None:
        enc = functools.partial(_ids, tokenizer)
        for k in ("wait_string", "answer_prefix", "answer_prefix_after_end"):
            if not enc(opts[k]):
                raise ValueError(f"vllm_xargs.{k}={opts[k]!r}: tokenizes to nothing; give a string with text")
        for k, s in (("end_of_thinking", opts["end_of_thinking"]), ("end of turn", END)):
            if len(enc(s)) != 1:
                raise ValueError(f"vllm_xargs.{k}={s!r}: must be one token for budget forcing inside vLLM "
                                 f"(it is {len(enc(s))}); use the default, or the rounds (bf_mode=rounds)")
    return opts


@functools.lru_cache(maxsize=256)
def _ids(tokenizer, text: str) -> tuple[int, ...]:
    """A setting string's tokens (every request checks the same few strings: encode each once)."""
    return tuple(tokenizer.encode(text, add_special_tokens=False))


@functools.lru_cache(maxsize=4)
def _tokenizer_at(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


@dataclass
class _Decision:
    pos: int                       # output position it is for
    token: int | None              # forced token; None = the model's own (greedy argmax)
    state: dict = field(default_factory=dict)   # the state fields once this position is committed


class _State:
    """One request: the controller's Sequence plus where its rounds start in the output and what is being forced."""

    def __init__(self, proc: "BudgetForcingLogitsProcessor", params, opts: dict, prompt_ids: list[int],
                 prompt: str | None = None):
        tok, self.opts, self.proc = proc.tokenizer, opts, proc
        if prompt is None:         # served: the request came as text or ids; the rounds would see its decode
            prompt = proc.codec.decode(list(prompt_ids))
        self.prompt = prompt
        total = (params.extra_args or {}).get(TOTAL_KEY) or params.max_tokens
        self.seq: Sequence = _new_sequence(0, self.prompt, opts, int(total), proc.max_context, None,
                                           len(prompt_ids))
        self.eot = _ids(tok, opts["end_of_thinking"])[0]
        self.ends = {self.eot, proc.end_id, *params.all_stop_token_ids}
        if params.eos_token_id is not None:
            self.ends.add(params.eos_token_id)
        self.stops = set(params.all_stop_token_ids) | ({params.eos_token_id} - {None})
        self.round_start = 0       # output position of the current round's first model token
        self.forcing: tuple = ()   # tokens still to force, from the next position
        self.answer_start = 0 if self.seq.phase is Phase.ANSWERING else None
        self.final: str | None = None   # how the request ends: "stop" | "cap" (the answer cap forced end of turn)
        self.committed = 0         # output positions applied to the state
        self.pending: _Decision | None = None
        self.temperature, self.top_p, self.top_k = params.temperature, params.top_p, params.top_k
        self.seed = params.seed if params.seed is not None else random.SystemRandom().randrange(2**62)
        self.tag = (params.extra_args or {}).get(TAG_KEY)
        self.key = id(params)
        self.output_ids: list[int] = []   # vLLM's live output list (set when the request is added or re-added)
        self.free_until = 0        # output positions below it need nothing unless the argmax is an end token
        self.refresh()

    # -- per step (the batch processor calls it with the live output list) --
    def next_token(self, output_ids: list[int], logits: torch.Tensor, argmax: int | None = None) -> int | None:
        """The token to force at the next output position (None: the model's own), the decision kept pending."""
        n = len(output_ids)
        self.commit(output_ids)
        if self.final is not None:
            return None            # finished: its end token is out (it stops the request)
        d = self.pending = self.decide(n, output_ids, logits, argmax)
        if d is None:
            return None
        self.free_until = 0        # until this decision is committed, every position goes through decide()
        return d.token

    def commit(self, output_ids: list[int]) -> None:
        """Apply the decisions of every output position that now exists."""
        d = self.pending
        if d is not None and self.committed <= d.pos < len(output_ids):
            for k, v in d.state.items():
                setattr(self, k, v)
            self.pending = None
            self.refresh()
        self.committed = max(self.committed, len(output_ids))

    def refresh(self) -> None:
        """free_until: below this output position a greedy step whose argmax is no end token is the model's own
        token with no state change (decide() would return None): before the thinking cap while thinking, before
        the answer cap while answering. 0 while a string is forced, a decision waits, the request is sampled or
        finished. The batch processor skips those rows without calling the request (the hot path)."""
        s = self.seq
        if self.temperature > 0 or self.forcing or self.pending is not None or self.final is not None:
            self.free_until = 0
        elif s.phase is Phase.THINKING:
            self.free_until = self.round_start + s.think_limit - s.thinking_tokens
        elif s.phase is Phase.ANSWERING and self.answer_start is not None and s.answer_limit is not None:
            self.free_until = self.answer_start + s.answer_limit
        else:
            self.free_until = 0

    def decide(self, n: int, output_ids: list[int], logits: torch.Tensor, argmax: int | None = None
               ) -> _Decision | None:
        """What position n gets: a forced token and/or state to commit; None = the model's own token, no change."""
        if self.forcing:
            rest = self.forcing[1:]
            st = {"forcing": rest}
            if not rest and self.seq.phase is Phase.THINKING:
                st["round_start"] = n + 1
            return _Decision(n, self.forcing[0], st)
        s = self.seq
        if s.phase is Phase.DONE:             # the answer cap was 0: end the turn now
            return _Decision(n, self.proc.end_id, {"final": "cap"})
        want = self.pick(n, logits, argmax)
        if s.phase is Phase.THINKING:
            used = s.thinking_tokens + (n - self.round_start)
            if used >= s.think_limit:
                return self.end_round(n, output_ids, "length", n - self.round_start)
            if want in self.ends:
                return self.end_round(n, output_ids, "stop", n - self.round_start + 1)
            return None if self.temperature <= 0 else _Decision(n, want)
        # answering
        if n - self.answer_start >= s.answer_limit:
            return _Decision(n, self.proc.end_id, {"final": "cap"})
        if want in self.stops:
            return _Decision(n, None if self.temperature <= 0 else want, {"final": "stop"})
        if want in self.ends:                  # an end of thinking in the answer ends it, as the rounds' stop does
            return _Decision(n, self.proc.end_id, {"final": "stop"})
        return None if self.temperature <= 0 else _Decision(n, want)

    def pick(self, n: int, logits: torch.Tensor, argmax: int | None = None) -> int:
        """The model's next token: greedy argmax (the batch's, when given), or a draw from the row with this
        request's seed and position."""
        if self.temperature <= 0:
            return int(logits.argmax()) if argmax is None else argmax
        return draw(logits, self.temperature, self.top_p, self.top_k, self.seed, n)

    def end_round(self, n: int, output_ids: list[int], reason: str, num_tokens: int) -> _Decision:
        """A thinking round ends at position n: the controller's step() decides what is appended, and its tokens
        (the string encoded alone) are forced from n."""
        s = copy.copy(self.seq)
        s.peeks, s.wait_at = list(s.peeks), list(s.wait_at)   # step() appends to them: this copy only
        text = self.proc.decode(list(output_ids[self.round_start:n]))
        before = len(s.text)
        step(s, Continuation(text=text, num_tokens=num_tokens, stop_reason=reason), self.opts)
        forced_ids = _ids(self.proc.tokenizer, s.text[before + len(text):])
        st = {"seq": s, "forcing": tuple(forced_ids[1:])}
        if s.phase is Phase.ANSWERING:
            st["answer_start"] = n + len(forced_ids)
        elif s.phase is Phase.THINKING and len(forced_ids) == 1:
            st["round_start"] = n + 1
        return _Decision(n, forced_ids[0], st)

    # -- the record, once the request has finished (engine side) --
    def finish(self, output_ids: list[int], timed_out: bool = False) -> Sequence:
        """The controller's Sequence for the whole output: the last round (the answer, or thinking cut by a
        timeout) stepped like the rounds step it."""
        self.commit(output_ids)
        s = self.seq
        if s.phase is Phase.DONE:
            return s
        n = len(output_ids)
        if self.forcing:                       # stopped while forcing (a timeout): the forced part is text
            timed_out = True
        if s.phase is Phase.THINKING:
            ids = list(output_ids[self.round_start:n])
            step(s, Continuation(self.proc.decode(ids), len(ids), "timeout"), self.opts)
            return s
        ids = list(output_ids[self.answer_start:n])
        if self.final == "cap":
            ids = ids[:-1]                     # the forced end of turn is not an answer token
            reason, count = "length", len(ids)
        elif self.final == "stop" and ids:
            reason, count = "stop", len(ids)
            ids = ids[:-1]                     # the stop token: counted, not text (as vLLM's stop)
        else:
            reason, count = "length", len(ids)
        if timed_out:
            reason = "timeout"
        step(s, Continuation(self.proc.decode(ids), count, reason), self.opts)
        return s

    def summary(self) -> dict:
        s = self.seq
        return {"thinking_tokens": s.thinking_tokens, "waits_used": s.waits_used, "forced": s.forced,
                "phase": s.phase.value, "answer_start": self.answer_start, "final": self.final}


def draw(logits: torch.Tensor, temperature: float, top_p: float, top_k: int, seed: int, position: int) -> int:
    """One token from softmax(logits / temperature), within top_k and top_p; reproducible per (seed, position)."""
    row = logits.float() / temperature
    if top_k and 0 < top_k < row.numel():
        kth = torch.topk(row, top_k).values[-1]
        row = row.masked_fill(row < kth, float("-inf"))
    probs = torch.softmax(row, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        drop = sorted_p.cumsum(0) - sorted_p >= top_p      # keep the smallest set reaching top_p
        probs = probs.clone()
        probs[order[drop]] = 0.0
    gen = torch.Generator().manual_seed((seed * 1_000_003 + position) % (2**63))
    return int(torch.multinomial(probs, 1, generator=gen))


class BudgetForcingLogitsProcessor(AdapterLogitsProcessor):
    """s1 budget forcing per request (see the module doc); vLLM V1 model runner."""

    def __init__(self, vllm_config, device, is_pin_memory):
        super().__init__(vllm_config, device, is_pin_memory)
        if getattr(vllm_config, "use_v2_model_runner", False):
            raise RuntimeError("s1 budget forcing runs on vLLM's V1 model runner: set VLLM_USE_V2_MODEL_RUNNER=0")
        from vllm.tokenizers.registry import cached_tokenizer_from_config

        self.tokenizer = cached_tokenizer_from_config(vllm_config.model_config)
        self.codec = BackendCodec(self.tokenizer)   # a round's decode, between steps
        self.max_context = vllm_config.model_config.max_model_len
        self.end_id = _ids(self.tokenizer, END)[0]
        self.trace_dir = os.environ.get(TRACE_ENV)

    def is_argmax_invariant(self) -> bool:
        return False               # it changes greedy's choice: vLLM must call it for greedy requests too

    @classmethod
    def validate_params(cls, params) -> None:
        """Errors become HTTP 400 naming the key. A budget-forcing request keeps special tokens in its text (the
        forced "<|im_start|>answer") and stops at end of turn: both are set here, on the request's own params."""
        args = params.extra_args or {}
        if not any(k not in (*VLLM_KEYS, BAN_KEY) for k in args):   # not ours, or only NoWait (s1.infer.vllm_nowait)
            return
        path = os.environ.get(TOKENIZER_ENV)
        tok = _tokenizer_at(path) if path else None
        opts = check_args(args, tok)
        for k in ("presence_penalty", "frequency_penalty"):
            if getattr(params, k, 0.0):
                raise ValueError(f"{k}={getattr(params, k)}: not applied under budget forcing (it decides before "
                                 "vLLM's penalties); drop it")
        if getattr(params, "repetition_penalty", 1.0) != 1.0:
            raise ValueError("repetition_penalty: not applied under budget forcing; drop it")
        if getattr(params, "min_p", 0.0):
            raise ValueError("min_p: not applied under budget forcing's own draw; use top_p / top_k")
        forced = " ".join(opts[k] for k in ("wait_string", "answer_prefix", "answer_prefix_after_end"))
        for s in params.stop or []:
            if s and s in forced:
                raise ValueError(f"stop={s!r}: occurs in a forced string and would stop the request; drop it "
                                 "(thinking ends at the end_of_thinking token anyway)")
        params.skip_special_tokens = False
        params.spaces_between_special_tokens = False
        if tok is not None:
            end = _ids(tok, END)[0]
            params.stop_token_ids = sorted({*(params.stop_token_ids or []), end})
            params._all_stop_token_ids.add(end)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """AdapterLogitsProcessor.apply over our states: the batch's argmax in one op; a greedy row before its cap
        whose argmax is no end token is skipped (State.refresh); the others run the request's rules, and the
        forced tokens are written into their rows in two batched ops."""
        if not self.req_info:
            return logits
        argmax = _argmax(logits)
        rows, tokens = [], []
        for i, state in self.req_info.items():
            n = len(state.output_ids)
            if n < state.free_until and argmax[i] not in state.ends:
                if n > state.committed:
                    state.committed = n
                continue
            token = state.next_token(state.output_ids, logits[i], argmax[i])
            if token is not None:
                rows.append(i)
                tokens.append(token)
            if self.trace_dir and state.tag and state.pending is not None and "final" in state.pending.state:
                _write_trace(self.trace_dir, state)
        if rows:                   # each forced row: its token at logit 0.0, every other -inf
            index = torch.tensor(rows, device=logits.device)
            logits[index] = float("-inf")
            logits[index, torch.tensor(tokens, device=logits.device)] = 0.0
        return logits

    def update_state(self, batch_update) -> None:
        if batch_update:            # a request that leaves with its end token decided is finished: drop its state
            for i in batch_update.removed:
                state = self.req_info.get(i)
                if state is not None and (state.final is not None or
                                          (state.pending is not None and "final" in state.pending.state)):
                    _STATES.pop(state.key, None)
        super().update_state(batch_update)

    def new_req_logits_processor(self, params):
        raise NotImplementedError   # _new_state below takes the prompt too

    def _new_state(self, params, prompt_ids, output_ids) -> _State | None:
        """The request's state (req_info holds it: apply() calls it with its live output list), or None."""
        args = params.extra_args or {}
        if not wants_budget_forcing(args):
            return None
        known = _STATES.get(id(params))
        if known is not None and known[0] is params:    # re-added (preempted): the same state continues
            state = known[1]
        else:
            try:
                state = _State(self, params, check_args(args, self.tokenizer), prompt_ids or [],
                               PROMPTS.pop(args.get(TAG_KEY), None))
            except ValueError as e:    # validate_params missed it (no tokenizer there): never fail the engine
                log.error("budget forcing off for one request: %s", e)
                return None
            state.key = id(params)
            _remember(_STATES, state.key, (params, state))
            if state.tag and not self.trace_dir:     # an in-process engine takes it (take_trace)
                _remember(TRACES, state.tag, state)
        state.output_ids = output_ids
        return state

    def decode(self, ids: list[int]) -> str:
        return self.codec.decode(ids)


def _argmax(logits: torch.Tensor) -> list[int]:
    """Each row's argmax (the first, on ties, as torch's and vLLM's greedy sampler); numpy's on a CPU float32
    batch, where it is faster than torch's."""
    if logits.device.type == "cpu" and logits.dtype == torch.float32 and logits.is_contiguous():
        return logits.numpy().argmax(-1).tolist()
    return logits.argmax(dim=-1).tolist()


def give_prompt(tag: str, prompt: str) -> None:
    """An in-process engine hands over the prompt text of the request it is about to add (tag: its TAG_KEY)."""
    _remember(PROMPTS, tag, prompt)


def _remember(d: OrderedDict, key, value) -> None:
    d[key] = value
    d.move_to_end(key)
    while len(d) > _KEEP:
        d.popitem(last=False)


def _write_trace(folder: str, state: _State) -> None:
    """What the server's middleware adds to the response: counts once the request's last token is decided."""
    s = copy.copy(state.seq)
    d = state.pending
    fields = {**state.summary(), **{k: v for k, v in d.state.items() if k == "final"}}
    if "seq" in d.state:
        s = d.state["seq"]
        fields.update(thinking_tokens=s.thinking_tokens, waits_used=s.waits_used, forced=s.forced)
    fields["last_position"] = d.pos
    path = os.path.join(folder, f"{state.tag}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(fields, f)
    os.replace(path + ".tmp", path)


def take_trace(tag: str) -> _State | None:
    """The in-process state of a finished request (None when the engine runs elsewhere)."""
    return TRACES.pop(tag, None)


__all__ = ["BF_KEYS", "BUDGET_FORCING", "BudgetForcingLogitsProcessor", "DEFAULTS", "check_args", "draw",
           "give_prompt", "take_trace", "wants_budget_forcing"]
