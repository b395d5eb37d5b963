"""Budget forcing and the engines: the tiny model really generates; scripted engines misbehave at the seam."""

from __future__ import annotations

import pytest
import torch
from fake_engine import ScriptedEngine

from s1.infer import build_prompt, generate, load_engine
from s1.infer.budget_forcing import DEFAULTS
from s1.infer.engine import Continuation, Request, find_stop

QUESTION = "Start at 3, add 4, 5 times. Last digit?"
LONG_QUESTION = "Start at 7, add 9, 12 times. Last digit?"   # the chatty model writes 40+ tokens on it (QUESTION: 4)


@pytest.fixture(scope="module")
def engine(chatty_model_dir):
    return load_engine("transformers", str(chatty_model_dir), max_context=4096)


def test_build_prompt_is_the_training_format(engine):
    p = build_prompt(engine.tokenizer, QUESTION)
    assert p == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                 f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\n")
    assert build_prompt(engine.tokenizer, QUESTION, system="S", think=False).startswith("<|im_start|>system\nS<|im_end|>")
    assert not build_prompt(engine.tokenizer, QUESTION, think=False).endswith("think\n")


def test_continuation_with_cache_equals_fresh_greedy_run(engine):
    prompt = build_prompt(engine.tokenizer, QUESTION)
    first = engine.continue_batch([Request(prompt, 30, [], key="k")])[0]
    assert len(set(first.text)) > 3, "the chatty model should produce varied text"
    text = prompt + first.text + "\nWait"
    fed_before = engine.stats["fed_tokens"]
    continued = engine.continue_batch([Request(text, 30, [], key="k")])[0]
    fed_continued = engine.stats["fed_tokens"] - fed_before
    fresh = engine.continue_batch([Request(text, 30, [])])[0]
    assert continued.text == fresh.text and continued.num_tokens == fresh.num_tokens
    # the cached round fed only the changed tail and the new tokens, not the prompt again
    assert fed_continued < len(engine.encode(text)) // 2 + 30


def test_batched_decoding_equals_one_at_a_time(engine):
    prompts = [build_prompt(engine.tokenizer, f"Start at {i}, add {i + 1}, {i + 2} times. Last digit?") + "x" * i
               for i in range(5)]
    batch = engine.continue_batch([Request(p, 25, []) for p in prompts])
    single = [engine.continue_batch([Request(p, 25, [])])[0] for p in prompts]
    assert [c.text for c in batch] == [c.text for c in single]


def test_batched_continuations_of_mixed_lengths_equal_fresh_runs(engine):
    """One prefill feeds cached rows with tails of different lengths and a fresh row; each equals its fresh run."""
    prompts = [build_prompt(engine.tokenizer, f"Start at {i}, add {i + 1}, {i + 2} times. Last digit?") for i in range(4)]
    firsts = engine.continue_batch([Request(p, 10 + 4 * i, [], key=f"mix{i}") for i, p in enumerate(prompts[:3])])
    tails = ["\nWait", " Wait, let me check that once more", ""]
    texts = [p + c.text + t for p, c, t in zip(prompts, firsts, tails)] + [prompts[3]]
    fed_before = engine.stats["fed_tokens"]
    batch = engine.continue_batch([Request(t, 20, [], key=f"mix{i}") for i, t in enumerate(texts)])
    fed = engine.stats["fed_tokens"] - fed_before
    fresh = [engine.continue_batch([Request(t, 20, [])])[0] for t in texts]
    assert [(c.text, c.num_tokens) for c in batch] == [(c.text, c.num_tokens) for c in fresh]
    assert fed < sum(len(engine.encode(t)) for t in texts) // 2 + 20 * 4    # cached prompts were not fed again
    engine.forget([f"mix{i}" for i in range(4)])


def test_decode_and_encode_equal_the_tokenizers(engine):
    """The engine's fast decode (the Rust tokenizer called directly) gives the tokenizer's own results on random
    ids, and the decoded texts, prompts and forced strings encode as the tokenizer does."""
    assert engine._backend_decode is not None, "the fast path should be on"
    gen = torch.Generator().manual_seed(0)
    vocab = len(engine.tokenizer)
    for n in (0, 1, 7, 60):
        for _ in range(20):
            ids = torch.randint(vocab, (n,), generator=gen).tolist()
            text = engine.decode(ids)
            assert text == engine.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            for t in (text, build_prompt(engine.tokenizer, QUESTION) + text + "\nWait",
                      text + "\n<|im_start|>answer\nAnswer:"):
                assert engine.encode(t) == engine.tokenizer.encode(t, add_special_tokens=False)


def test_stop_string_spanning_tokens_is_caught(engine):
    prompt = build_prompt(engine.tokenizer, LONG_QUESTION)
    free = engine.continue_batch([Request(prompt, 40, [])])[0]
    assert free.num_tokens == 40, f"the chatty model ended after {free.num_tokens} tokens: pick a longer question"
    ids = engine.encode(free.text)
    # a stop made of the end of token k and the start of token k+1: no single token contains it (the first
    # boundary whose two sides give 3+ plain characters: the tiny BPE's merges vary between builds)
    stop = None
    for k in range(5, len(ids) - 1):
        left, right = engine.decode(ids[:k]), engine.decode(ids[:k + 1])
        candidate = left[-2:] + right[len(left):len(left) + 2]
        if len(candidate) >= 3 and "\ufffd" not in candidate and right.startswith(left):
            stop = candidate
            break
    assert stop is not None and stop in free.text, free.text
    cut = engine.continue_batch([Request(prompt, 40, [stop])])[0]
    assert cut.stop_reason == "stop" and cut.matched_stop == stop
    assert cut.text == free.text[:free.text.index(stop)]


def test_budget_forcing_with_tiny_model_has_the_trained_shape(engine):
    prompt = build_prompt(engine.tokenizer, QUESTION)
    bf = dict(DEFAULTS, max_thinking_tokens=12, num_waits=2, answer_max_tokens=5)
    [r] = generate(engine, [prompt], bf, max_new_tokens=64, progress=False)
    assert r.thinking_tokens <= 12 and r.answer_tokens <= 5
    assert r.text.startswith(r.thinking)
    forced = r.text[len(r.thinking):len(r.text) - len(r.answer)]
    if r.thinking_tokens == 12:   # the cap ended thinking: the release's "\n<|im_start|>answer\nFinal Answer:"
        assert forced == ("" if r.thinking.endswith("\n") else "\n") + "<|im_start|>answer\nFinal Answer:"
    else:                       # the model ended it: only the answer marker, the model writes on
        assert forced == "<|im_start|>answer"
    assert r.text.endswith(r.answer)
    assert r.outcome in ("answered", "forced", "no_answer")


def _run(engine, script, **bf):
    prompt = build_prompt(engine.tokenizer, QUESTION)
    se = ScriptedEngine(engine.tokenizer, script)
    [r] = generate(se, [prompt], dict(DEFAULTS, **bf), max_new_tokens=1000, progress=False)
    return r, se.requests


def test_never_stops_thinking_is_forced_to_answer(engine):
    def script(req, i):
        if "<|im_start|>answer" in req.text:
            return Continuation(" \\boxed{6}", 4, "eos")
        return Continuation("7+9=6\n" * req.max_new_tokens, req.max_new_tokens, "length")
    r, _reqs = _run(engine, script, max_thinking_tokens=50, num_waits=3)
    assert r.outcome == "forced" and r.thinking_tokens == 50 and r.waits_used == 0
    assert r.text.endswith("7+9=6\n<|im_start|>answer\nFinal Answer: \\boxed{6}")


def test_stops_at_once_gets_waits_then_answers(engine):
    def script(req, i):
        if req.text.endswith("<|im_start|>answer"):
            return Continuation("\nAnswer: 6", 2, "eos")
        return Continuation("", 1, "stop", "<|im_start|>")
    r, reqs = _run(engine, script, max_thinking_tokens=100, num_waits=2)
    assert r.outcome == "answered" and r.waits_used == 2
    assert r.thinking == "Wait\nWait"
    assert r.text == "Wait\nWait<|im_start|>answer\nAnswer: 6"   # the release: the marker replaces the stop
    # the remaining thinking budget shrinks across rounds
    assert [q.max_new_tokens for q in reqs[:3]] == [100, 99, 98]


def test_wait_follows_the_training_traces(engine):
    def script(req, i):
        if req.text.endswith("<|im_start|>answer"):
            return Continuation("\nAnswer: \\boxed{5}", 4, "eos")
        return Continuation(["3+4=7\n", " 7+4=1\n", " 1+4=5\n"][i], 6, "stop", "<|im_start|>")
    r, reqs = _run(engine, script, max_thinking_tokens=100, num_waits=2)
    assert r.text == "3+4=7\nWait 7+4=1\nWait 1+4=5\n<|im_start|>answer\nAnswer: \\boxed{5}"
    assert r.thinking_tokens == 18 and [q.max_new_tokens for q in reqs[:3]] == [100, 94, 88]


def test_never_answers_ends_as_no_answer(engine):
    def script(req, i):
        if "<|im_start|>answer" in req.text:
            return Continuation("blah " * req.max_new_tokens, req.max_new_tokens, "length")
        return Continuation("1+1=2\n", 6, "eos")
    r, reqs = _run(engine, script, max_thinking_tokens=100, answer_max_tokens=7)
    assert r.outcome == "no_answer" and r.answer_tokens == 7 and reqs[-1].max_new_tokens == 7


def test_wall_clock_timeout(engine):
    import time

    def script(req, i):
        time.sleep(0.05)
        return Continuation("", 1, "stop", "<|im_start|>")
    r, reqs = _run(engine, script, max_thinking_tokens=10_000, num_waits=10_000, request_timeout_s=0.2)
    assert r.outcome == "timeout" and 1 <= len(reqs) < 20


def test_context_window_caps_thinking(engine):
    def script(req, i):
        if "<|im_start|>answer" in req.text:
            return Continuation("5", 1, "eos")
        return Continuation("x" * req.max_new_tokens, req.max_new_tokens, "length")
    se = ScriptedEngine(engine.tokenizer, script)
    se.max_context = 200
    prompt = build_prompt(engine.tokenizer, QUESTION)
    [r] = generate(se, [prompt], dict(DEFAULTS, answer_max_tokens=20), max_new_tokens=10_000, progress=False)
    used = len(engine.tokenizer.encode(prompt)) + r.thinking_tokens + r.answer_tokens
    assert used <= 200 and r.outcome == "forced"


def test_find_stop_prefers_earliest():
    assert find_stop("abc<|im_start|>x<|im_end|>", ["<|im_end|>", "<|im_start|>"]) == (3, "<|im_start|>")
    assert find_stop("abc", ["<|im_start|>"]) is None


class TextOnly:
    """An engine as a text-only client sees it: no token ids held, every request's text encoded whole."""
    returns_token_ids = False

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        return getattr(self.engine, name)


def test_openai_backend_against_a_real_local_server(engine, chatty_model_dir, monkeypatch):
    from s1.infer.server import serve_in_thread

    monkeypatch.setenv("S1_TEST_KEY", "sk-test-123")
    server, url = serve_in_thread(engine, "tiny", api_key="sk-test-123")
    try:
        client = load_engine("openai", str(chatty_model_dir), base_url=url, api_key_env="S1_TEST_KEY",
                             served_model="tiny")
        assert "sk-test" not in repr(client)
        prompts = [build_prompt(engine.tokenizer, q) for q in (QUESTION, "Start at 1, add 2, 3 times. Last digit?")]
        bf = dict(DEFAULTS, max_thinking_tokens=10, num_waits=1, answer_max_tokens=6)
        remote = generate(client, prompts, bf, max_new_tokens=64, progress=False)
        # a text-only client re-sends text, the server encodes it whole: as the local engine given text alone
        local = generate(TextOnly(engine), prompts, bf, max_new_tokens=64, progress=False)
        assert [(r.text, r.outcome, r.thinking_tokens) for r in remote] == \
            [(r.text, r.outcome, r.thinking_tokens) for r in local]
        monkeypatch.setenv("S1_TEST_KEY", "wrong")
        bad = load_engine("openai", str(chatty_model_dir), base_url=url, api_key_env="S1_TEST_KEY")
        with pytest.raises(RuntimeError, match="HTTP 401"):
            bad.continue_batch([Request("hi", 2, [])])
    finally:
        server.shutdown()
        server.server_close()



def test_arena_cache_is_what_the_model_reads_and_writes(engine):
    """The backend's only contact with transformers' cache classes: a DynamicCache whose layers (a DynamicLayer
    subclass) are windows of the preallocated arena. A forward pass over that window (with the engine's grouped
    SDPA attention) gives the logits of a plain DynamicCache holding the same keys/values under transformers' own
    SDPA, writes its new keys/values in place at the window's end, and the cache reports the right length (the
    argument's name changed in 5.20). Fails loudly on a transformers version that changes any of these."""
    import transformers
    from transformers import DynamicCache

    from s1.infer.kv_arena import KVArena

    cfg = engine.model.config
    layers, heads, dim = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    past = torch.randn(layers, 2, 2, heads, 5, dim)
    ids, mask = torch.tensor([[5, 6, 7], [8, 9, 10]]), torch.ones(2, 8, dtype=torch.long)
    mask[1, :2] = 0                                 # padding: transformers passes the mask to the attention
    pos = torch.arange(5, 8)[None].repeat(2, 1)
    plain = DynamicCache(config=cfg)
    for li in range(layers):
        plain.update(past[li, 0], past[li, 1], li)
    assert cfg._attn_implementation == "s1_grouped_sdpa"
    engine.model.set_attn_implementation("sdpa")
    try:
        want = engine.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                            **{engine._cache_arg: plain}).logits
    finally:
        engine.model.set_attn_implementation("s1_grouped_sdpa")
    arena = KVArena(engine.model, engine.device)
    shift = arena.fit(4, -5, 3)                     # room for 4 rows and columns -5..3, wherever it puts them
    c0 = -5 + shift
    arena.kv[:, :, 1:3, :, c0:c0 + 5] = past        # rows in slots 1-2: a window that starts inside the arena
    cache = arena.cache(1, 3, c0, c0 + 5)
    got = engine.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                       **{engine._cache_arg: cache}).logits
    assert cache.get_seq_length() == 8, (f"transformers {transformers.__version__}: the model ignored "
                                         f"{engine._cache_arg}=; fix TransformersEngine._cache_arg")
    assert torch.allclose(got, want, atol=1e-5), f"transformers {transformers.__version__}: arena layers misread"
    new_keys = arena.kv[:, 0, 1:3, :, c0 + 5:c0 + 8]
    assert torch.allclose(new_keys, torch.stack([k for k, _, *_ in plain])[:, :, :, 5:], atol=1e-6), \
        "the forward pass should write its keys into the arena in place"


def test_sliding_window_model_is_refused_with_the_fix(tiny_model_dir, tmp_path):
    """The arena holds full-attention layers only: a model with sliding-window layers is refused at load, naming
    its layer types and the backend that serves it."""
    import json
    import shutil

    model = shutil.copytree(tiny_model_dir, tmp_path / "sliding")
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(use_sliding_window=True, sliding_window=16,
               layer_types=["sliding_attention"] + ["full_attention"] * (cfg["num_hidden_layers"] - 1))
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"sliding_attention.*vllm backend"):
        load_engine("transformers", str(model))


def test_arena_moves_only_the_rows_that_fill_gaps():
    """Finished rows leave by moving rows from the end into their slots; the order says where each row went, every
    kept row's keys/values and mask come along, and columns every kept row has as padding are dropped."""
    from types import SimpleNamespace

    from s1.infer.kv_arena import KVArena

    cfg = SimpleNamespace(num_hidden_layers=2, num_key_value_heads=1, hidden_size=8, num_attention_heads=2,
                          head_dim=4)
    model = SimpleNamespace(config=SimpleNamespace(get_text_config=lambda decoder: cfg), dtype=torch.float32)
    arena = KVArena(model, torch.device("cpu"))
    arena.fit(5, 0, 6)
    arena.n, arena.off, arena.end = 5, 0, 6
    for i in range(5):
        arena.kv[:, :, i, :, :6] = float(i)
        arena.mask[i, :6] = torch.tensor([0, 0, 1, 1, 1, 1]) if i != 3 else torch.ones(6, dtype=torch.long)
        arena.pos[i] = 10 + i
    order = arena.keep([0, 2, 4])                    # slots 1 and 3 finished
    assert order == [0, 4, 2] and arena.n == 3
    assert [float(arena.kv[0, 0, i, 0, 3, 0]) for i in range(3)] == [0.0, 4.0, 2.0]
    assert arena.pos[:3].tolist() == [10, 14, 12]
    assert arena.off == 2, "the two leading columns are padding for every kept row (row 3, which used them, left)"
    assert [arena.row_kv(i).shape[3] for i in range(3)] == [4, 4, 4]
    arena.mask[1, 4] = 0                             # a feed padded by one column (4): left out
    assert arena.row_kv(1).shape[3] == 3 and float(arena.row_kv(1)[0, 0, 0, 0, 0]) == 4.0


def test_prefill_passes_split_where_padding_would_cost_more():
    """A fresh prompt and short answer branches joining together get separate prefill passes; feeds of about the
    same length share one."""
    from s1.infer.transformers_backend import PREFILL_SPLIT, _prefill_groups, _Row

    def rows(*feeds):
        return [_Row(request=Request("", 1, []), ids=[0] * f, generated=[]) for f in feeds]

    def lengths(groups):
        return [sorted((len(r.ids) for r in g), reverse=True) for g in groups]

    assert lengths(_prefill_groups(rows(6, 300, 5, 7, 6, 290))) == [[300, 290], [7, 6, 6, 5]]
    assert lengths(_prefill_groups(rows(6, 7, 5, 8))) == [[8, 7, 6, 5]]
    # a second pass costs PREFILL_SPLIT padded tokens: worth it once it saves more
    assert len(_prefill_groups(rows(PREFILL_SPLIT // 4 + 2, 1, 1, 1, 1))) == 2
    assert len(_prefill_groups(rows(PREFILL_SPLIT // 4, 1, 1, 1, 1))) == 1


def test_no_unwritten_cache_value_is_ever_read(engine, monkeypatch):
    """Arena allocations are not zero-filled (for speed); with every allocation filled with NaN instead, a shared
    sweep with waits, branches, joins and row moves still equals the ordinary run: padding a forward pass reads was
    zeroed where its row joined (0 x NaN would be NaN)."""
    from s1.infer.budget_forcing import generate_sweep
    from s1.infer.kv_arena import KVArena

    prompts = [build_prompt(engine.tokenizer, f"From {i}, go up {i + 3}, {i + 1} times. Last digit?") + "x" * i
               for i in range(5)]
    free = engine.continue_batch([Request(prompts[0], 60, [])])[0].text
    stop = max({free[i:i + 2] for i in range(len(free) - 1) if free[i:i + 2].isalpha()}, key=free.count)
    bf = dict(DEFAULTS, end_of_thinking=stop, answer_max_tokens=5, num_waits=2)
    clean = generate_sweep(engine, prompts, SWEEP, bf, max_new_tokens=60, batch_size=3, progress=False)
    monkeypatch.setattr(KVArena, "fill", float("nan"))
    poisoned = generate_sweep(engine, prompts, SWEEP, bf, max_new_tokens=60, batch_size=3, progress=False)
    assert poisoned == clean
    assert any(r.waits_used for rs in clean for r in rs), "waits should really happen"


SWEEP = [{"max_thinking_tokens": c} for c in (6, 12, 20, 33)] + \
    [{"max_thinking_tokens": None, "num_waits": w} for w in (1, 2, 4)]   # the demo's shape: 4 caps + Wait x1/x2/x4


@pytest.mark.parametrize("stop", ["frequent", "<|im_start|>"])
def test_shared_sweep_equals_one_setting_at_a_time(engine, stop):
    """Every setting of a shared greedy sweep equals its own run field by field, and the sweep generates far fewer
    tokens than the settings one by one. "frequent": a word piece the chatty model writes often, so waits really
    happen (picked from its own text: the tiny BPE's merges vary between builds)."""
    from collections import Counter

    from s1.infer.budget_forcing import generate_sweep

    prompts = [build_prompt(engine.tokenizer, f"Start at {i}, add 4, {i + 3} times. Last digit?") for i in range(4)]
    if stop == "frequent":
        free = engine.continue_batch([Request(prompts[0], 60, [])])[0].text
        stop = Counter(free[i:i + 2] for i in range(len(free) - 1) if free[i:i + 2].isalpha()).most_common(1)[0][0]
        frequent = True
    else:
        frequent = False
    bf = dict(DEFAULTS, end_of_thinking=stop, answer_max_tokens=5)   # short answers, as the demo's
    before = engine.stats["generated_tokens"]
    alone = [generate(engine, prompts, dict(bf, **st), max_new_tokens=70, batch_size=3, progress=False)
             for st in SWEEP]
    alone_tokens = engine.stats["generated_tokens"] - before
    seen = []
    before = engine.stats["generated_tokens"]
    shared = generate_sweep(engine, prompts, SWEEP, bf, max_new_tokens=70, batch_size=3, progress=False,
                            on_result=lambda j, i, r: seen.append((j, i, r)))
    shared_tokens = engine.stats["generated_tokens"] - before
    assert shared == alone
    assert sorted((j, i) for j, i, _ in seen) == [(j, i) for j in range(len(SWEEP)) for i in range(4)]
    assert all(r == shared[j][i] for j, i, r in seen)
    if frequent:
        assert {r.waits_used for r in alone[-1]} - {0}, "the stop string should really trigger waits"
    largest = max(sum(r.thinking_tokens + r.answer_tokens for r in rs) for rs in alone)
    assert shared_tokens <= 1.5 * largest < alone_tokens


class _RoundsOnly:
    """The same engine without continue_stream: run_requests falls back to rounds of continue_batch (what vLLM's
    servers and the openai backend get)."""

    def __init__(self, engine):
        self.inner, self.tokenizer, self.max_context = engine, engine.tokenizer, engine.max_context
        self.returns_token_ids, self.decode, self.forget = True, engine.decode, engine.forget

    def continue_batch(self, requests):
        return self.inner.continue_batch(requests)


@pytest.mark.parametrize("join_ratio", [0.0, 1.0])
def test_continuous_batching_equals_rounds_with_fewer_passes(engine, join_ratio):
    """A sequence's next round joining the running batch (continuous batching) changes nothing in greedy results,
    single settings and shared sweeps alike, Wait rounds and peeks included; it takes fewer forward passes than
    rounds in which every sequence waits for the slowest of its batch."""
    from s1.infer.budget_forcing import generate_sweep

    prompts = [build_prompt(engine.tokenizer, f"From {i}, go up {i + 2}, {2 * i + 1} times. Last digit?")
               for i in range(6)]
    free = engine.continue_batch([Request(prompts[0], 60, [])])[0].text
    stop = max({free[i:i + 2] for i in range(len(free) - 1) if free[i:i + 2].isalpha()}, key=free.count)
    bf = dict(DEFAULTS, end_of_thinking=stop, answer_max_tokens=5, num_waits=2)
    engine.join_ratio, before = join_ratio, engine.join_ratio
    try:
        runs = {}
        for name, eng in (("stream", engine), ("rounds", _RoundsOnly(engine))):
            passes = engine.stats["forward_passes"]
            single = generate(eng, prompts, bf, max_new_tokens=60, batch_size=4, progress=False)
            peeks = generate(eng, prompts, dict(bf, adaptive_waits=True), max_new_tokens=60, batch_size=4,
                             progress=False)
            sweep = generate_sweep(eng, prompts, SWEEP, bf, max_new_tokens=60, batch_size=4, progress=False)
            runs[name] = (single, peeks, sweep, engine.stats["forward_passes"] - passes)
    finally:
        engine.join_ratio = before
    assert runs["stream"][:3] == runs["rounds"][:3]
    assert any(r.waits_used for r in runs["rounds"][0]), "waits should really happen"
    assert runs["stream"][3] < runs["rounds"][3]


def test_min_thinking_tokens_suppresses_early_ends(engine):
    def script(req, i):
        if req.text.endswith("<|im_start|>answer"):
            return Continuation("\nAnswer: 6", 2, "eos")
        if req.max_new_tokens < 6:
            return Continuation("3+4"[:req.max_new_tokens], req.max_new_tokens, "length")
        return Continuation("3+4=7\n", 6, "stop", "<|im_start|>")
    r, reqs = _run(engine, script, max_thinking_tokens=100, min_thinking_tokens=15)
    assert r.thinking_tokens == 18 and r.waits_used == 2 and r.outcome == "answered"
    r, _ = _run(engine, script, max_thinking_tokens=100, min_thinking_tokens=15, num_waits=3)
    assert r.thinking_tokens == 24 and r.waits_used == 3
    r, _ = _run(engine, script, max_thinking_tokens=10, min_thinking_tokens=50)   # the cap wins over the minimum
    assert r.thinking_tokens == 10 and r.outcome == "forced"


def test_answer_uses_the_rest_of_the_total_unless_capped(engine):
    def script(req, i):
        if "<|im_start|>answer" in req.text:
            return Continuation("x" * req.max_new_tokens, req.max_new_tokens, "length")
        return Continuation("1+1=2\n" * 10, 60, "stop", "<|im_start|>")
    r, reqs = _run(engine, script, max_thinking_tokens=100)
    assert DEFAULTS["answer_max_tokens"] is None and reqs[-1].max_new_tokens == 1000 - 60
    r, reqs = _run(engine, script, max_thinking_tokens=100, answer_max_tokens=7)
    assert reqs[-1].max_new_tokens == 7 and r.outcome == "no_answer"


def test_bad_budget_forcing_values_name_the_key(engine):
    with pytest.raises(ValueError, match=r"budget_forcing.min_thinking_tokens=-1"):
        _run(engine, lambda req, i: Continuation("", 1, "eos"), min_thinking_tokens=-1)
    from s1.infer.budget_forcing import generate_sweep

    with pytest.raises(ValueError, match=r"max_thinking_tokens=0"):
        generate_sweep(engine, ["x"], [{"max_thinking_tokens": 0}], max_new_tokens=5, progress=False)


class RecordingEngine:
    """The real engine, with every request it was given kept."""

    def __init__(self, engine):
        self.engine, self.tokenizer, self.requests = engine, engine.tokenizer, []
        self.max_context = engine.max_context
        self.returns_token_ids, self.encode, self.decode = engine.returns_token_ids, engine.encode, engine.decode

    def continue_batch(self, requests):
        self.requests += requests
        return self.engine.continue_batch(requests)


@pytest.mark.parametrize("cap", [7, 12, 20])
def test_bf_forced_strings_are_the_releases_token_for_token(engine, cap):
    """At the cap the answer round carries exactly the release's sequence (vllm_causallms.py): prompt +
    "<|im_start|>think" + the thinking + "\\n" unless the thinking ends in one + tok("<|im_start|>answer\\nFinal
    Answer:"), the forced string's tokens identical, the model's own tokens kept as generated (Request.token_ids);
    when the model ends thinking, tok("<|im_start|>answer") replaces the stop."""
    from s1 import format as fmt

    tok = engine.tokenizer
    chat = build_prompt(tok, QUESTION, think=False)
    prompt_ids = engine.encode(chat) + engine.encode("<|im_start|>think")            # the release's request
    think = engine.continue_batch([Request(engine.decode(prompt_ids), cap, ["<|im_start|>"])])[0]
    assert think.stop_reason == "length"
    nl = [] if think.text.endswith("\n") else engine.encode("\n")
    forced_ids = engine.encode("<|im_start|>answer\nFinal Answer:")                # thinking_end_max_tok
    release = prompt_ids + think.token_ids + nl + forced_ids

    rec = RecordingEngine(engine)
    bf = dict(DEFAULTS, think_prefix=fmt.RELEASE_THINK, max_thinking_tokens=cap, answer_max_tokens=2)
    [r] = generate(rec, [build_prompt(tok, QUESTION, think_prefix=fmt.RELEASE_THINK)], bf, max_new_tokens=64,
                   progress=False)
    assert r.thinking == think.text and r.thinking_tokens == cap
    assert rec.requests[-1].text == engine.decode(release)                  # the same text, character for character
    assert rec.requests[-1].token_ids == release                            # and the same tokens
    # the model-ended case: the marker is its own tokens after any thinking text (a special token starts it)
    assert engine.encode(think.text + fmt.FORCED_AFTER_END) == engine.encode(think.text) + engine.encode(
        "<|im_start|>answer")


def test_bf_plain_generation_forces_nothing(engine):
    """no_bf (the release's "without budget forcing"): one generation to the total that ends only at the end of
    turn; the model's own answer marker splits thinking from answer; nothing is appended."""
    def script(req, i):
        return Continuation("3+4=7\n<|im_start|>answer\nAnswer: \\boxed{7}", 40, "eos")
    r, reqs = _run(engine, script, plain_generation=True, max_thinking_tokens=5, num_waits=3)
    [req] = reqs
    assert req.stop == ["<|im_end|>"] and req.max_new_tokens == 1000
    assert r.text == "3+4=7\n<|im_start|>answer\nAnswer: \\boxed{7}" and r.waits_used == 0
    assert r.thinking == "3+4=7\n" and r.answer == "<|im_start|>answer\nAnswer: \\boxed{7}"
    assert r.thinking_tokens + r.answer_tokens == 40 and 0 < r.answer_tokens < 40 and r.outcome == "answered"
    r, _ = _run(engine, lambda req, i: Continuation("x " * 1000, 1000, "length"), plain_generation=True)
    assert r.outcome == "no_answer" and "<|im_start|>answer" not in r.text


def test_held_tokens_and_the_whole_text_fallback(engine):
    """The controller holds the model's own tokens (here spelled one character each, not the tokenizer's spelling)
    and appends a forced string's own tokens; a continuation whose text is not its tokens' text (a stop string
    inside a token) is not held: the next request encodes the whole text once."""
    from s1.infer.budget_forcing import Sequence, _codec, _hold, _tokens

    codec = _codec(engine)
    prompt = build_prompt(engine.tokenizer, QUESTION)
    s = Sequence(index=0, prompt=prompt)
    first = _tokens(s, "", codec)
    assert first == engine.encode(prompt)
    text = "so 7."
    own = [t for ch in text for t in engine.encode(ch)]
    assert own != engine.encode(text)                    # not the tokenizer's spelling: a re-encode would show
    req = Request(prompt, 8, token_ids=first)
    _hold(s, req, Continuation(text, len(own), "length", token_ids=own), codec)
    s.text += text + "\nWait"
    assert _tokens(s, "", codec) == first + own + engine.encode("\nWait")
    # the text stops inside the last token: nothing is held, the whole text is encoded
    ids = engine.encode(" answer")
    word = engine.decode(ids[:1])
    assert len(word) >= 2                                # a stop at its last character cuts inside the token
    req = Request(prompt + s.text, 8, token_ids=_tokens(s, "", codec))
    _hold(s, req, Continuation(word[:-1], len(ids), "stop", matched_stop=word[-1], token_ids=ids), codec)
    assert s.held_ids is None
    s.text += word[:-1]
    assert _tokens(s, "", codec) == engine.encode(prompt + s.text)
    # a text-only engine holds nothing
    assert _codec(type("TextOnly", (), {"returns_token_ids": False})()) is None
