"""transformers backend: batched decoding that keeps each sequence's KV cache between continuations.

Budget forcing continues the same sequence several times (think, "Wait",
think, answer). Re-running the model over the prompt and trace every round would make it
quadratic, so a keyed sequence keeps its tokens and per-layer key/value
tensors; the next round feeds only the tokens after the longest prefix it
shares with the cached ones (the dropped stop string and the forced text). Sequences of a batch are fed and
decoded together, in one prefill and then one token per step, in one preallocated cache (KVArena, s1/infer/kv_arena.py): each row a slot,
left-padded and masked so that every row's next token goes to the same column, written in place.

A request may ask for each generated token's log-probability (Request.logprobs: log_softmax of the row the token is
drawn from, after any ban and the temperature) and ban words (Request.ban_words, NoWait): before each draw, the
tokens that would complete a banned string after the row's text get -inf (s1.infer.nowait.BanIndex, built once per
word list over the token pieces, decoded once per engine).
"""

from __future__ import annotations

import inspect
import itertools
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

import torch

from s1.infer.engine import Continuation, OnDone, Request, StreamingEngine, find_stop
from s1.infer.kv_arena import KVArena
from s1.infer.nowait import BanIndex

log = logging.getLogger("s1.infer")

JOIN_RATIO = 1.0      # queued requests join the running batch once they are this share of its rows (see _stream)
LEAVE_SHARE = 0.25    # finished rows leave the batch once they are this share of its rows (see _retire)
PREFILL_SPLIT = 32    # a prefill pass's fixed cost, in padded tokens (see _prefill_groups)
STOP_WINDOW = 8       # extra tokens decoded beyond the longest stop string when scanning for it


@dataclass
class _State:
    ids: list[int]                 # every token of the sequence so far
    kv: torch.Tensor | None        # [layers, 2 (keys, values), kv heads, len(ids) - 1, head dim]: all but the last token
    generator: torch.Generator | None = None


@dataclass
class _Row:
    request: Request
    ids: list[int]                 # prompt tokens (this round's input)
    generated: list[int]
    kv: torch.Tensor | None = None  # as _State.kv: the cached part of ids (before the row joins), then its state
    generator: torch.Generator | None = None
    done: bool = False
    reason: str = ""
    retired: bool = False
    logprobs: list[float] | None = None   # per generated token, when the request asks          # its continuation was reported; it may still sit in the batch until compaction


def _common_prefix_len(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n          # binary search on list-slice equality (C speed) for the first difference
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _past_len(r: _Row) -> int:
    return r.kv.shape[3] if r.kv is not None else 0


def _prefill_groups(rows: list[_Row]) -> list[list[_Row]]:
    """Rows split into prefill passes by the number of tokens they feed: one pass pads every row to its longest
    feed, so a fresh prompt (hundreds of tokens) joining answer branches (a few) would make them all prompt-long.
    The split costs the fewest padded tokens, counting PREFILL_SPLIT for each pass (its fixed cost): found exactly
    over the distinct feed lengths, longest first (a pass then takes a run of them)."""
    feed = {id(r): len(r.ids) - _past_len(r) for r in rows}
    rows_of = Counter(feed.values())
    lengths = sorted(rows_of, reverse=True)
    count = [0, *itertools.accumulate(rows_of[n] for n in lengths)]   # count[i]: rows feeding one of the i longest
    best, cut = [0] * (len(lengths) + 1), [0] * (len(lengths) + 1)   # cost of the i longest; where its last pass starts
    for i in range(1, len(lengths) + 1):
        best[i], cut[i] = min((best[j] + PREFILL_SPLIT + (count[i] - count[j]) * lengths[j], j) for j in range(i))
    groups, i = [], len(lengths)
    while i:
        keep = set(lengths[cut[i]:i])
        groups.append([r for r in rows if feed[id(r)] in keep])
        i = cut[i]
    return groups[::-1]


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Top-p: keep the most likely tokens whose mass reaches top_p (at least one), zero the rest."""
    if top_p >= 1.0:
        return probs
    sorted_p, order = probs.sort(descending=True)
    drop = sorted_p.cumsum(-1) - sorted_p >= top_p    # mass before this token already reaches top_p
    return probs.scatter(-1, order, sorted_p.masked_fill(drop, 0.0))


def _backend_decoder(tokenizer):
    """The Rust tokenizer's own decode (public `backend_tokenizer`) when it equals tokenizer.decode(ids,
    skip_special_tokens=False, clean_up_tokenization_spaces=False) on a probe of every added token and a spread of
    ids; it skips transformers' per-call overhead, half the cost of the stop-string check made after every sampled
    token. None when there is no backend tokenizer or the probe disagrees (the class customises decoding)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None

    def fast(ids):
        return backend.decode(ids, skip_special_tokens=False)

    vocab = len(tokenizer)
    added = sorted(tokenizer.get_added_vocab().values())
    spread = list(range(0, vocab, max(1, vocab // 997)))
    probes = [added, spread, [i for pair in zip(spread, added * len(spread)) for i in pair][:400], [], spread[:1]]
    for ids in probes:
        if fast(ids) != tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
            return None
    return fast


def _use_grouped_sdpa(model) -> None:
    """Where the model uses transformers' SDPA attention: the same, except that a pass of several tokens per row (a
    prefill) reads grouped keys/values in place (SDPA's enable_gqa) instead of copying them once per query head. The
    same numbers (tests/test_infer.py compares them); on this CPU a branch prefill's attention takes half the time.
    transformers leaves masked grouped attention to the copy because some GPU kernels need it."""
    from transformers import AttentionInterface, AttentionMaskInterface

    if model.config._attn_implementation != "sdpa":
        return
    sdpa = AttentionInterface()["sdpa"]

    def grouped_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
        if (query.shape[2] > 1 and attention_mask is not None and getattr(module, "num_key_value_groups", 1) > 1
                and kwargs.get("position_bias") is None and kwargs.get("softcap") is None):
            out = torch.nn.functional.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, enable_gqa=True)
            return out.transpose(1, 2).contiguous(), None
        return sdpa(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal,
                    **kwargs)

    AttentionInterface.register("s1_grouped_sdpa", grouped_sdpa)
    AttentionMaskInterface.register("s1_grouped_sdpa", AttentionMaskInterface()["sdpa"])
    model.set_attn_implementation("s1_grouped_sdpa")


class TransformersEngine(StreamingEngine):
    def __init__(self, model_path: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                 max_context: int = 32768, device: str | None = None, max_cached: int = 4096,
                 cpu_threads: int | None = 1, join_ratio: float = JOIN_RATIO, top_p: float = 1.0):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch_dtype, trust_remote_code=trust_remote_code).to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos_ids = set(eos) | ({self.tokenizer.eos_token_id} if self.tokenizer.eos_token_id is not None else set())
        self.max_context = max_context
        self.max_cached = max_cached
        self.states: OrderedDict[str, _State] = OrderedDict()
        # attended_positions: rows × cache width (padding included) summed over forward passes, what a small
        # model's step costs grow with (attention and the cache copy on every token)
        self.stats = {"fed_tokens": 0, "reused_tokens": 0, "generated_tokens": 0, "forward_passes": 0,
                      "attended_positions": 0, "requests": 0}
        self.returns_token_ids = True      # Continuation.token_ids: a sweep can cut a shared continuation
        # Small models decode fastest on one CPU thread, and 2+ threads collapse (10x+) when the cores are
        # shared with other work; raise it for big models on big CPUs. None = leave torch's setting.
        self.cpu_threads = cpu_threads if self.device.type == "cpu" else None
        self.join_ratio = join_ratio
        self.top_p = top_p                 # nucleus sampling for sampled requests (temperature > 0); 1.0 = off
        self.leave_share = LEAVE_SHARE
        self._backend_decode = _backend_decoder(self.tokenizer)
        self._pieces: list[str] | None = None   # each token's own text (NoWait), decoded on first use
        self._bans: dict[tuple, BanIndex] = {}  # word list -> its BanIndex over the pieces
        _use_grouped_sdpa(self.model)
        # the cache argument's name: `cache` from transformers 5.20 (`past_key_values` deprecated), before it
        # `past_key_values` (an unknown `cache=` would be swallowed by **kwargs and the model run without cache)
        forward_args = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        layer_types = set(getattr(self.model.config.get_text_config(decoder=True), "layer_types", None) or [])
        if layer_types - {"full_attention"}:
            raise ValueError(f"{model_path}: layer types {sorted(layer_types)}; the transformers backend's cache "
                             "holds full-attention layers only. Use the vllm backend for this model")

    def forget(self, keys: list[str]) -> None:
        for k in keys:
            self.states.pop(k, None)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        if self._backend_decode is not None:
            return self._backend_decode(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def continue_stream(self, requests: list[Request], on_done: OnDone) -> None:
        """Continuous batching: a follow-up request (on_done's answer) joins the running batch instead of waiting
        for the slowest row of its round (see s1.infer.engine.run_requests)."""
        before = torch.get_num_threads()
        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        try:
            self._stream(list(requests), on_done)
        finally:
            torch.set_num_threads(before)

    @torch.inference_mode()
    def _stream(self, queue: list[Request], on_done: OnDone) -> None:
        """Decode the running rows one token per step; queued requests join when they are at least join_ratio of
        the running rows (or nothing runs): a prefill of the newcomers alone, written into free slots of the
        running batch's arena, so a join costs about one decoding step and copies nothing that was there."""
        rows: list[_Row] = []            # rows[i] is in arena slot i; every row's last token is unfed
        arena = KVArena(self.model, self.device)
        while queue or rows:
            if queue and (not rows or len(queue) >= self.join_ratio * len(rows)):
                # a branch (fork_from) starts from another key's state as it was before any of these changes it
                forks = {r.key: self.states.get(r.fork_from) for r in queue if r.key and r.fork_from}
                new = [self._start(r, forks.get(r.key)) for r in queue]
                queue = [f for r in new if r.done for f in on_done(r.request, self._finish(r))]
                new = [r for r in new if not r.done]
                if not new:
                    continue
                rows = self._compact(rows, arena)
                for group in _prefill_groups(new):
                    logits = self._prefill(group, arena)
                    for r, tok in zip(group, self._sample(logits, group)):
                        self._accept(r, tok)
                    rows += group
                rows = self._retire(rows, arena, queue, on_done)
                continue
            n, end = len(rows), arena.end
            end += arena.fit(n, end, end + 1)
            arena.mask[:n, end] = 1
            last = torch.tensor([[r.generated[-1]] for r in rows], device=self.device)
            out = self.model(input_ids=last, attention_mask=arena.mask[:n, arena.off:end + 1],
                             position_ids=arena.pos[:n, None], use_cache=True,
                             **{self._cache_arg: arena.cache(0, n, arena.off, end)})
            arena.end = end + 1
            arena.pos[:n] += 1
            self.stats["fed_tokens"] += n
            self.stats["forward_passes"] += 1
            self.stats["attended_positions"] += n * (arena.end - arena.off)
            for r, tok in zip(rows, self._sample(out.logits[:, -1], rows)):
                if not r.done:          # a finished row waiting for compaction decodes along, unread
                    self._accept(r, tok)
            rows = self._retire(rows, arena, queue, on_done)

    def _retire(self, rows: list[_Row], arena: KVArena, queue: list[Request], on_done: OnDone) -> list[_Row]:
        """Rows that just finished: their continuation is reported, on_done's follow-ups queued, and their cache kept
        (the real positions: all but the token just sampled) unless on_done forgot the key (a finished sequence's
        last round: no copy). They leave the batch once finished rows are leave_share of it, or when newcomers
        join. Returns the rows."""
        for i, r in enumerate(rows):
            if r.done and not r.retired:
                r.retired = True
                queue += on_done(r.request, self._finish(r, in_batch=True))
                state = self.states.get(r.request.key) if r.request.key else None
                if state is not None and state.kv is None:
                    state.kv = arena.row_kv(i)
        dead = sum(r.done for r in rows)
        if dead and (dead == len(rows) or dead >= self.leave_share * len(rows)):
            return self._compact(rows, arena)
        return rows

    def _compact(self, rows: list[_Row], arena: KVArena) -> list[_Row]:
        """Drop finished rows from the batch (moving the last rows into their slots)."""
        if not any(r.done for r in rows):
            return rows
        order = arena.keep([i for i, r in enumerate(rows) if not r.done])
        return [rows[i] for i in order]

    def _start(self, req: Request, fork: _State | None = None) -> _Row:
        """Token ids for this round; a keyed sequence reuses the KV cache of its longest common token prefix.

        The ids are the request's token_ids where the controller holds them (the model's own tokens, each appended
        string encoded alone), else the text encoded whole; the continuation is a fresh run's continuation of those
        ids: only the forward passes over the unchanged prefix are saved. A branch (fork)
        reuses the state it was forked from instead of its own (stale) one; cached tensors are never written to,
        so branches share them.
        """
        st = self.states.pop(req.key, None) if req.key else None
        if req.fork_from:
            st = fork
        self.stats["requests"] += 1
        row = _Row(request=req, ids=list(req.token_ids) if req.token_ids is not None else self.encode(req.text),
                   generated=[])
        if st is not None and st.kv is not None:
            common = _common_prefix_len(st.ids, row.ids)
            keep = min(common, st.kv.shape[3], len(row.ids) - 1)   # feed at least one token
            if keep > 0:
                row.kv = st.kv[:, :, :, :keep]
                self.stats["reused_tokens"] += keep
            row.generator = None if req.fork_from else st.generator
        if row.generator is None and req.temperature > 0:
            row.generator = torch.Generator(device=self.device).manual_seed(req.seed or 0)
        if req.max_new_tokens <= 0 or len(row.ids) >= self.max_context:
            row.done, row.reason = True, "length"
        return row
    def _prefill(self, rows: list[_Row], arena: KVArena) -> torch.Tensor:
        """One forward pass over these rows' uncached tokens, in the arena slots after the running rows; returns
        each row's logits at its last token, and the rows are then running.

        Row i has past_i cached tokens and feed_i new ones. Every row's feed goes to the `span` columns before the
        running rows' `end` (its past just before), right-padded to the longest feed (padding after a real token, so
        no query attends to nothing); the mask hides both paddings, in the prefill and in every later decoding step.
        """
        past = [_past_len(r) for r in rows]
        feeds = [r.ids[p:] for r, p in zip(rows, past)]
        width, span, n, g = max(past), max(len(f) for f in feeds), arena.n, len(rows)
        end = arena.end
        end += arena.fit(n + g, end - span - width, end)
        c0, mid = end - span - width, end - span        # this pass's columns; its feed goes to mid..end
        # padding must hold numbers (0 x NaN is NaN): these rows' columns from the batch's first one to their feed
        arena.kv[:, :, n:n + g, :, min(arena.off, c0) if n else c0:mid] = 0
        for j, (r, p) in enumerate(zip(rows, past)):
            if p:
                arena.kv[:, :, n + j, :, mid - p:mid] = r.kv
        cols = torch.arange(arena.mask.shape[1], device=self.device)
        first = mid - torch.tensor(past, device=self.device)[:, None]
        stop = mid + torch.tensor([len(f) for f in feeds], device=self.device)[:, None]
        arena.mask[n:n + g] = (cols >= first) & (cols < stop)
        arena.pos[n:n + g] = torch.tensor([len(r.ids) for r in rows], device=self.device)
        if n and c0 < arena.off:                        # columns the running rows never used: stale or unwritten
            arena.mask[:n, c0:arena.off] = 0
            arena.kv[:, :, :n, :, c0:arena.off] = 0
        feed = torch.tensor([f + [f[-1]] * (span - len(f)) for f in feeds], device=self.device)
        pos = torch.tensor(past, device=self.device)[:, None] + torch.arange(span, device=self.device)
        # logits only at each row's last fed token: a 1D tensor of positions means "these positions for every
        # row" on every transformers 5 version (5.19 indexes with any tensor; 5.24 reads a 2D one per row)
        keep = sorted({len(f) - 1 for f in feeds})
        col = torch.tensor([keep.index(len(f) - 1) for f in feeds], device=self.device)
        self.stats["fed_tokens"] += sum(len(f) for f in feeds)
        self.stats["forward_passes"] += 1
        self.stats["attended_positions"] += g * (end - c0)
        out = self.model(input_ids=feed, attention_mask=arena.mask[n:n + g, c0:end], position_ids=pos,
                         use_cache=True, logits_to_keep=torch.tensor(keep, device=self.device),
                         **{self._cache_arg: arena.cache(n, n + g, c0, mid)})
        arena.n, arena.off, arena.end = n + g, min(arena.off, c0) if n else c0, end
        return out.logits[torch.arange(g, device=self.device), col]

    def _sample(self, logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        for i, r in enumerate(rows):
            if r.request.ban_words and not r.done:
                banned = self._banned(r, logits.shape[-1])
                if banned:
                    logits[i, banned] = float("-inf")
        toks = logits.argmax(-1).tolist()
        for i, r in enumerate(rows):
            if r.request.temperature > 0 and not r.done:   # a finished row's generator is left untouched
                probs = torch.softmax(logits[i].float() / r.request.temperature, -1)
                toks[i] = int(torch.multinomial(_nucleus(probs, self.top_p), 1, generator=r.generator))
            if r.request.logprobs and not r.done:
                t = r.request.temperature if r.request.temperature > 0 else 1.0
                lp = torch.log_softmax(logits[i].float() / t, -1)[toks[i]]
                r.logprobs = [] if r.logprobs is None else r.logprobs
                r.logprobs.append(float(lp))
        return toks

    def _banned(self, r: _Row, vocab: int) -> list[int]:
        """NoWait: the tokens that would complete a banned word after this row's text (request text + generated)."""
        words = tuple(r.request.ban_words)
        index = self._bans.get(words)
        if index is None:
            if self._pieces is None:
                self._pieces = [self.decode([i]) for i in range(len(self.tokenizer))]
            index = self._bans[words] = BanIndex(self._pieces, words)
        n = index.longest
        text = r.request.text[-n:] + self.decode(r.generated[-n:]) if r.generated else r.request.text[-n:]
        return [i for i in index.banned(text) if i < vocab]

    def _accept(self, r: _Row, tok: int) -> None:
        """Append a sampled token, then decide whether the row is finished (eos, stop string, length, time)."""
        r.generated.append(tok)
        req = r.request
        if tok in self.eos_ids:
            r.done, r.reason = True, "eos"
            return
        if req.stop:
            window = max(len(s) for s in req.stop) + STOP_WINDOW
            if find_stop(self.decode(r.generated[-window:]), req.stop):
                r.done, r.reason = True, "stop"
                return
        if len(r.generated) >= req.max_new_tokens or len(r.ids) + len(r.generated) >= self.max_context:
            r.done, r.reason = True, "length"
        elif req.deadline is not None and time.monotonic() > req.deadline:
            r.done, r.reason = True, "timeout"

    def _finish(self, r: _Row, in_batch: bool = False) -> Continuation:
        """The row's continuation; a keyed row's state is kept (its keys/values filled in by _retire if in_batch)."""
        req = r.request
        gen = r.generated[:-1] if r.reason == "eos" else r.generated
        text = self.decode(gen)
        matched = None
        if r.reason == "stop":
            i, matched = find_stop(text, req.stop)
            text = text[:i]
        if req.key and (in_batch or r.kv is not None):
            ids = r.ids + r.generated
            self.states[req.key] = _State(ids=ids, kv=None if in_batch else r.kv, generator=r.generator)
            while len(self.states) > self.max_cached:
                self.states.popitem(last=False)
        self.stats["generated_tokens"] += len(r.generated)
        return Continuation(text=text, num_tokens=len(r.generated), stop_reason=r.reason or "length",
                            matched_stop=matched, token_ids=list(r.generated),
                            logprobs=(r.logprobs or []) if req.logprobs else None)
