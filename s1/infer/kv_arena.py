"""The preallocated KV cache of the transformers engine's running batch (KVArena), and the cache layer that lets a
forward pass write into it in place. Used by s1/infer/transformers_backend.py only (behind the engine seam)."""

from __future__ import annotations

import torch


def _arena_layer_class():
    from transformers.cache_utils import DynamicLayer

    class ArenaLayer(DynamicLayer):
        """One layer of a DynamicCache that is a window of an KVArena (row slots r0:r1, columns c0:end): the forward
        pass's new keys and values are written in place at column `end` on, where DynamicLayer would copy the whole
        cache with torch.cat on every token."""

        def __init__(self, arena: KVArena, layer: int, r0: int, r1: int, c0: int, end: int):
            super().__init__()
            self.arena, self.layer, self.rows, self.c0, self.end = arena, layer, slice(r0, r1), c0, end
            self.lazy_initialization(arena.kv[layer, 0, :0], arena.kv[layer, 1, :0])
            self.keys, self.values = (arena.kv[layer, j, self.rows, :, c0:end] for j in (0, 1))

        def update(self, key_states, value_states, *args, **kwargs):
            n = key_states.shape[-2]
            kv = self.arena.kv[self.layer]
            kv[0, self.rows, :, self.end:self.end + n] = key_states
            kv[1, self.rows, :, self.end:self.end + n] = value_states
            self.end += n
            self.keys, self.values = kv[0, self.rows, :, self.c0:self.end], kv[1, self.rows, :, self.c0:self.end]
            return self.keys, self.values

    return ArenaLayer


_ARENA_LAYER = None


class KVArena:
    """The running batch's KV cache, preallocated: kv [layers, 2 (keys, values), row slots, kv heads, columns, head
    dim] with spare slots and columns, the attention mask [slots, columns] and each slot's next position id.

    The n running rows fill slots 0..n-1 and all end at column `end` (their real positions right-aligned, padding to
    the left masked), so a decoding step writes one column in place; a join writes only the newcomers' slots; a
    finished row's slot is refilled by moving a row from the end (only those rows are copied); the columns before
    `off` are padding for every row. A row's padding columns are zeroed where it joins (an allocation is not
    zero-filled: that costs as much as the copy), so a masked position never holds a NaN."""

    fill: float | None = None      # tests: fill each allocation (NaN) to show no unwritten value is ever read

    def __init__(self, model, device):
        cfg = model.config.get_text_config(decoder=True)
        self.model, self.layers, self.heads = model, cfg.num_hidden_layers, cfg.num_key_value_heads
        self.dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.dtype, self.device = model.dtype, device
        self.kv = torch.zeros(self.layers, 2, 0, self.heads, 0, self.dim, dtype=self.dtype, device=device)
        self.mask = torch.zeros(0, 0, dtype=torch.long, device=device)
        self.pos = torch.zeros(0, dtype=torch.long, device=device)
        self.n = self.off = self.end = 0

    def fit(self, slots: int, lo: int, hi: int) -> int:
        """Room for `slots` rows and columns lo..hi (lo may be negative) beside the running rows' off..end; returns
        how far the columns moved (add it to lo and hi). A new allocation has half again the room it needs, a
        quarter of the spare columns on the left (for newcomers with a longer past), so it is rare."""
        if self.n == 0:
            self.off = self.end = hi
        start, stop = min(lo, self.off), max(hi, self.end)
        have_slots, have_cols = self.kv.shape[2], self.kv.shape[4]
        if start >= 0 and stop <= have_cols and slots <= have_slots:
            return 0
        spare = max(64, (stop - start) // 2)
        start -= spare // 4
        cols = max(have_cols, stop - start + spare - spare // 4)
        rows = max(have_slots, slots + (slots + 1) // 2) if slots > have_slots else have_slots
        # empty, not zeros: what a forward pass reads unwritten (a new row's padding) is zeroed where it joins
        kv = torch.empty(self.layers, 2, rows, self.heads, cols, self.dim, dtype=self.dtype, device=self.device)
        if self.fill is not None:
            kv.fill_(self.fill)
        mask = torch.zeros(rows, cols, dtype=torch.long, device=self.device)
        pos = torch.zeros(rows, dtype=torch.long, device=self.device)
        a, b = self.off - start, self.end - start
        kv[:, :, :self.n, :, a:b] = self.kv[:, :, :self.n, :, self.off:self.end]
        mask[:self.n, a:b] = self.mask[:self.n, self.off:self.end]
        pos[:self.n] = self.pos[:self.n]
        self.kv, self.mask, self.pos = kv, mask, pos
        self.off, self.end = a, b
        return -start

    def cache(self, r0: int, r1: int, c0: int, end: int):
        """A DynamicCache over slots r0:r1 and columns c0:end whose forward pass writes from column `end` on."""
        from transformers import DynamicCache

        global _ARENA_LAYER
        _ARENA_LAYER = _ARENA_LAYER or _arena_layer_class()
        cache = DynamicCache(config=self.model.config)
        cache.layers = [_ARENA_LAYER(self, li, r0, r1, c0, end) for li in range(self.layers)]
        return cache

    def row_kv(self, i: int) -> torch.Tensor:
        """A copy of slot i's real keys/values (its masked-in columns): [layers, 2, kv heads, tokens, head dim]."""
        cols = self.mask[i, self.off:self.end].nonzero().squeeze(1) + self.off
        return self.kv[:, :, i].index_select(3, cols)

    def keep(self, live: list[int]) -> list[int]:
        """Keep these slots (ascending) as slots 0..len-1: each gap below len is filled from a live slot above it.
        Returns the new order (the old slot of each new one); drops columns that became padding for every row."""
        k = len(live)
        alive = set(live)
        holes = [i for i in range(k) if i not in alive]
        movers = [i for i in live if i >= k]
        order = list(range(k))
        for h, m in zip(holes, movers):     # slice copies: 4x faster than one gather/scatter of them all here
            self.kv[:, :, h, :, self.off:self.end] = self.kv[:, :, m, :, self.off:self.end]
            self.mask[h, self.off:self.end] = self.mask[m, self.off:self.end]
            self.pos[h] = self.pos[m]
            order[h] = m
        self.n = k
        if k:
            used = self.mask[:k, self.off:self.end].sum(0)
            self.off += int((used == 0).long().cumprod(0).sum())
        return order
