"""transformers backend: batched decoding that keeps each sequence's KV cache between continuations.

Budget forcing continues the same sequence several times (think, "Wait",
think, answer). Re-running the model over the prompt and trace every round would make it
quadratic, so a keyed sequence keeps its tokens and per-layer key/value
tensors; the next round feeds only the tokens after the longest prefix it
shares with the cached ones (the dropped stop string and the forced text). Sequences of a batch are fed and
decoded together, in one prefill and then one token per step: their caches are padded to one length and masked.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import torch

from s1.infer.engine import Continuation, OnDone, Request, find_stop

log = logging.getLogger("s1.infer")

JOIN_RATIO = 1.0      # queued requests join the running batch once they are this share of its rows (see _stream)
LEAVE_SHARE = 0.25    # finished rows leave the batch once they are this share of its rows (see _retire)
STOP_WINDOW = 8       # extra tokens decoded beyond the longest stop string when scanning for it


@dataclass
class _State:
    ids: list[int]                 # every token of the sequence so far
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer [1, heads, len(ids) - 1, dim]: all but the last token
    generator: torch.Generator | None = None


@dataclass
class _Row:
    request: Request
    ids: list[int]                 # prompt tokens (this round's input)
    generated: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    generator: torch.Generator | None = None
    done: bool = False
    reason: str = ""
    retired: bool = False          # its continuation was reported; it may still sit in the batch until compaction


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


def _cache_from_layers(layers: list[tuple[torch.Tensor, torch.Tensor]], config) -> object:
    """A DynamicCache holding these per-layer (keys, values), built with the public update() call."""
    from transformers import DynamicCache

    cache = DynamicCache(config=config)
    for li, (k, v) in enumerate(layers):
        cache.update(k, v, li)
    return cache


def _layers_of(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer (keys, values) of a DynamicCache through its public iteration (the DDP round-trip protocol).
    tests/test_infer.py::test_dynamic_cache_round_trip_and_forward_use_it fails loudly if a transformers version changes it."""
    return [(layer[0], layer[1]) for layer in cache]


class TransformersEngine:
    def __init__(self, model_path: str, *, dtype: str = "auto", trust_remote_code: bool = False,
                 max_context: int = 32768, device: str | None = None, max_cached: int = 4096,
                 cpu_threads: int | None = 1, join_ratio: float = JOIN_RATIO):
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
                      "attended_positions": 0}
        self.returns_token_ids = True      # Continuation.token_ids: a sweep can cut a shared continuation
        # Small models decode fastest on one CPU thread, and 2+ threads collapse (10x+) when the cores are
        # shared with other work; raise it for big models on big CPUs. None = leave torch's setting.
        self.cpu_threads = cpu_threads if self.device.type == "cpu" else None
        self.join_ratio = join_ratio
        self.leave_share = LEAVE_SHARE
        self._backend_decode = _backend_decoder(self.tokenizer)
        # the cache argument's name: `cache` from transformers 5.20 (`past_key_values` deprecated), before it
        # `past_key_values` (an unknown `cache=` would be swallowed by **kwargs and the model run without cache)
        forward_args = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"

    def forget(self, keys: list[str]) -> None:
        for k in keys:
            self.states.pop(k, None)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        if self._backend_decode is not None:
            return self._backend_decode(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        out: dict[int, Continuation] = {}
        self.continue_stream(requests, lambda r, c: out.__setitem__(id(r), c) or [])
        return [out[id(r)] for r in requests]

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
        the running rows (or nothing runs): one prefill of the newcomers alone, whose cache is then padded and
        stacked onto the running batch's, so a join costs about one decoding step."""
        rows: list[_Row] = []
        batch = None                     # (cache, mask, next positions) of rows; every row's last token unfed
        while queue or rows:
            if queue and (not rows or len(queue) >= self.join_ratio * len(rows)):
                # a branch (fork_from) starts from another key's state as it was before any of these changes it
                forks = {r.key: self.states.get(r.fork_from) for r in queue if r.key and r.fork_from}
                new = [self._start(r, forks.get(r.key)) for r in queue]
                queue = [f for r in new if r.done for f in on_done(r.request, self._finish(r))]
                new = [r for r in new if not r.done]
                if not new:
                    continue
                cache, mask, pos, logits = self._prefill(new)
                for r, tok in zip(new, self._sample(logits, new)):
                    self._accept(r, tok)
                new, joined = self._retire(new, (cache, mask, pos), queue, on_done, lazy=False)
                if new:
                    rows, batch = self._compact(rows, batch)
                    rows, batch = rows + new, self._stack(batch, joined)
                continue
            cache, mask, pos = batch
            mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=mask.dtype, device=self.device)], dim=1)
            last = torch.tensor([[r.generated[-1]] for r in rows], device=self.device)
            out = self.model(input_ids=last, attention_mask=mask, position_ids=pos[:, None],
                             use_cache=True, **{self._cache_arg: cache})
            self.stats["fed_tokens"] += len(rows)
            self.stats["forward_passes"] += 1
            self.stats["attended_positions"] += mask.numel()
            for r, tok in zip(rows, self._sample(out.logits[:, -1], rows)):
                if not r.done:          # a finished row waiting for compaction decodes along, unread
                    self._accept(r, tok)
            rows, batch = self._retire(rows, (cache, mask, pos + 1), queue, on_done)

    def _retire(self, rows: list[_Row], batch, queue: list[Request], on_done: OnDone, lazy: bool = True):
        """Rows that just finished: their cache is kept (the real positions: all but the token just sampled), their
        continuation reported, and on_done's follow-ups queued. They leave the batch once finished rows are
        leave_share of it (lazy) or at once: each removal copies the whole batch cache. Returns the rows and batch."""
        cache, mask, pos = batch
        just = [i for i, r in enumerate(rows) if r.done and not r.retired]
        if just:
            layers = _layers_of(cache)
            for i in just:
                r = rows[i]
                real = mask[i].bool()
                r.kv = [(k[i:i + 1, :, real], v[i:i + 1, :, real]) for k, v in layers]
                r.retired = True
                queue += on_done(r.request, self._finish(r))
        dead = sum(r.done for r in rows)
        if dead == len(rows):
            return [], None
        if not dead or (lazy and dead < self.leave_share * len(rows)):
            return rows, batch
        return self._compact(rows, batch)

    def _compact(self, rows: list[_Row], batch):
        """Drop finished rows from the batch, and the leading columns that are padding for every row left."""
        if batch is None or not any(r.done for r in rows):
            return rows, batch
        cache, mask, pos = batch
        keep = [i for i, r in enumerate(rows) if not r.done]
        if not keep:
            return [], None
        idx = torch.tensor(keep, dtype=torch.long, device=self.device)
        cache.batch_select_indices(idx)
        mask, pos = mask[idx], pos[idx]
        lead = int((mask.sum(0) == 0).long().cumprod(0).sum())    # columns every remaining row has as padding
        if lead >= 16 and 4 * lead >= mask.shape[1]:
            cache = _cache_from_layers([(k[:, :, lead:], v[:, :, lead:]) for k, v in _layers_of(cache)],
                                       self.model.config)
            mask = mask[:, lead:]
        return [rows[i] for i in keep], (cache, mask, pos)

    def _stack(self, a, b):
        """One batch from two (cache, mask, positions): caches and masks left-padded to the wider one."""
        if a is None:
            return b
        wa, wb = a[1].shape[1], b[1].shape[1]
        w = max(wa, wb)
        pad = torch.nn.functional.pad
        layers = [tuple(torch.cat([pad(x, (0, 0, w - wa, 0)), pad(y, (0, 0, w - wb, 0))]) for x, y in zip(la, lb))
                  for la, lb in zip(_layers_of(a[0]), _layers_of(b[0]))]
        mask = torch.cat([pad(a[1], (w - wa, 0)), pad(b[1], (w - wb, 0))])
        return _cache_from_layers(layers, self.model.config), mask, torch.cat([a[2], b[2]])

    def _start(self, req: Request, fork: _State | None = None) -> _Row:
        """Token ids for this round; a keyed sequence reuses the KV cache of its longest common token prefix.

        The text is always encoded whole, exactly as a fresh run would encode it, so the continuation is the
        fresh run's continuation; only the forward passes over the unchanged prefix are saved. A branch (fork)
        reuses the state it was forked from instead of its own (stale) one; cached tensors are never written to,
        so branches share them.
        """
        st = self.states.pop(req.key, None) if req.key else None
        if req.fork_from:
            st = fork
        row = _Row(request=req, ids=self.encode(req.text), generated=[])
        if st is not None:
            common = _common_prefix_len(st.ids, row.ids)
            keep = min(common, st.kv[0][0].shape[2], len(row.ids) - 1)   # feed at least one token
            if keep > 0:
                row.kv = [(kk[:, :, :keep], vv[:, :, :keep]) for kk, vv in st.kv]
                self.stats["reused_tokens"] += keep
            row.generator = None if req.fork_from else st.generator
        if row.generator is None and req.temperature > 0:
            row.generator = torch.Generator(device=self.device).manual_seed(req.seed or 0)
        if req.max_new_tokens <= 0 or len(row.ids) >= self.max_context:
            row.done, row.reason = True, "length"
        return row

    def _prefill(self, rows: list[_Row]) -> tuple[object, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward pass over every row's uncached tokens; returns (cache, mask, next positions, logits).

        Row i has past_i cached tokens and feed_i new ones. Caches are left-padded to the longest past, the new
        tokens are right-padded to the longest feed (padding after a real token, so no query attends to nothing),
        and the mask hides both paddings, in the prefill and in every later decoding step.
        """
        past = [r.kv[0][0].shape[2] if r.kv else 0 for r in rows]
        feeds = [r.ids[p:] for r, p in zip(rows, past)]
        width, span = max(past), max(len(f) for f in feeds)
        layers = []
        if width:   # cached keys/values left-padded with zeros to the longest past; a fresh row is all padding
            ref = next(r.kv for r in rows if r.kv)
            kvs = [r.kv or [(k[:, :, :0], v[:, :, :0]) for k, v in ref] for r in rows]
            layers = [tuple(torch.cat([torch.nn.functional.pad(kv[li][j], (0, 0, width - p, 0))
                                       for kv, p in zip(kvs, past)]) for j in (0, 1))
                      for li in range(len(ref))]
        cache = _cache_from_layers(layers, self.model.config)
        mask = torch.zeros(len(rows), width + span, dtype=torch.long, device=self.device)
        for i, (p, f) in enumerate(zip(past, feeds)):
            mask[i, width - p:width + len(f)] = 1
        feed = torch.tensor([f + [f[-1]] * (span - len(f)) for f in feeds], device=self.device)
        pos = torch.tensor(past, device=self.device)[:, None] + torch.arange(span, device=self.device)
        # logits only at each row's last fed token: a 1D tensor of positions means "these positions for every
        # row" on every transformers 5 version (5.19 indexes with any tensor; 5.24 reads a 2D one per row)
        keep = sorted({len(f) - 1 for f in feeds})
        col = torch.tensor([keep.index(len(f) - 1) for f in feeds], device=self.device)
        self.stats["fed_tokens"] += sum(len(f) for f in feeds)
        self.stats["forward_passes"] += 1
        self.stats["attended_positions"] += mask.numel()
        out = self.model(input_ids=feed, attention_mask=mask, position_ids=pos, use_cache=True,
                         logits_to_keep=torch.tensor(keep, device=self.device), **{self._cache_arg: cache})
        logits = out.logits[torch.arange(len(rows), device=self.device), col]
        nxt = torch.tensor([len(r.ids) for r in rows], device=self.device)
        return cache, mask, nxt, logits

    def _sample(self, logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        toks = logits.argmax(-1).tolist()
        for i, r in enumerate(rows):
            if r.request.temperature > 0 and not r.done:   # a finished row's generator is left untouched
                probs = torch.softmax(logits[i].float() / r.request.temperature, -1)
                toks[i] = int(torch.multinomial(probs, 1, generator=r.generator))
        return toks

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

    def _finish(self, r: _Row) -> Continuation:
        req = r.request
        gen = r.generated[:-1] if r.reason == "eos" else r.generated
        text = self.decode(gen)
        matched = None
        if r.reason == "stop":
            i, matched = find_stop(text, req.stop)
            text = text[:i]
        if req.key and r.kv is not None:
            ids = r.ids + r.generated
            self.states[req.key] = _State(ids=ids, kv=r.kv, generator=r.generator)
            while len(self.states) > self.max_cached:
                self.states.popitem(last=False)
        self.stats["generated_tokens"] += len(r.generated)
        return Continuation(text=text, num_tokens=len(r.generated), stop_reason=r.reason or "length",
                            matched_stop=matched, token_ids=list(r.generated))
