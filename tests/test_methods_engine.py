"""The post-s1 methods as rules of budget forcing's rounds (issue 32), through generate() on the transformers engine.

Each test checks a method's defining property on the chatty tiny model (varied random text): NoWait's banned strings
never appear in the thinking, AlphaOne inserts no Wait after α, DEER exits only above its threshold and never thinks
longer than without it, each cap ending's text and token counts, NoThinking's 0 thinking tokens, and the recorded
confidence; plus the settings' checks and the engine seams (log-probabilities, bans, the OpenAI refusals).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest
import torch

from s1.infer import build_prompt, generate, load_engine
from s1.infer.budget_forcing import DEFAULTS, METHOD_KEYS, bf_options, generate_sweep
from s1.infer.cap_endings import STOP_SENTENCE
from s1.infer.engine import Request
from s1.infer.no_thinking import FILLER, prefill
from s1.infer.nowait import BanIndex, banned_ids

QUESTIONS = ["What is 2+3?", "Is 91 a prime number?", "What is 17 * 3?", "Start at 3, add 4, 5 times."]
TOTAL = 120
ANSWER = 8
NO_END = "<never>"     # an end of thinking the model never writes: thinking runs to the cap or a method's end


@pytest.fixture(scope="module")
def engine(chatty_model_dir):
    return load_engine("transformers", str(chatty_model_dir), dtype="float32", max_context=1024)


@pytest.fixture(scope="module")
def prompts(engine):
    return [build_prompt(engine.tokenizer, q) for q in QUESTIONS]


def _run(engine, prompts, temperature=0.0, seed=0, **bf):
    return generate(engine, prompts, dict(answer_max_tokens=ANSWER, end_of_thinking=NO_END) | bf, max_new_tokens=TOTAL,
                    temperature=temperature, seed=seed, progress=False)


def _frequent(texts, n=2, size=2):
    """The n most frequent `size`-character strings (not only whitespace) in these texts."""
    grams = Counter(t[i:i + size] for t in texts for i in range(len(t) - size + 1) if t[i:i + size].strip())
    return [g for g, _ in grams.most_common(n)]


# ---- settings ------------------------------------------------------------------------------------------------------

def test_settings_default_off_and_keyed_only_when_set():
    from s1.eval.runner import KEYED_UNLESS_DEFAULT

    opts = bf_options(None)
    assert opts["ban_words"] == [] and opts["cap_ending"] == "hard" and opts["alpha"] is None
    assert opts["deer_threshold"] is None and not opts["no_thinking"] and not opts["record_confidence"]
    assert opts["cap_sentence"] == STOP_SENTENCE and opts["step_boundary"] == "\n\n"
    for k in METHOD_KEYS:     # old caches stay valid: a key enters the cache key only when it is set
        assert KEYED_UNLESS_DEFAULT[k] == DEFAULTS[k], k


def test_default_settings_leave_the_cache_key_as_before(tmp_path, tiny_model_dir):
    from test_eval_settings import _cfg

    from s1.eval.methods import plan_runs
    from s1.eval.runner import generation_settings

    cfg = _cfg(tmp_path, tiny_model_dir)
    for spec in plan_runs(cfg):     # none of the new keys in the key: caches made before them stay valid
        assert not set(generation_settings(spec, cfg)["budget_forcing"]) & set(METHOD_KEYS)
    cfg = _cfg(tmp_path, tiny_model_dir, "eval.budget_forcing.cap_ending=stop_sentence")
    assert all(generation_settings(spec, cfg)["budget_forcing"]["cap_ending"] == "stop_sentence"
               for spec in plan_runs(cfg))


@pytest.mark.parametrize("key, value, fix", [
    ("ban_words", "Wait", "list of non-empty strings"), ("ban_words", ["Wait", ""], "list of non-empty strings"),
    ("cap_ending", "soft", "'hard'"), ("cap_window", -0.1, ">= 0"), ("cap_sentence", "", "non-empty"),
    ("alpha", 0, "(0, 1]"), ("alpha", 1.5, "(0, 1]"), ("alpha_p0", 1.2, "[0, 1]"),
    ("alpha_schedule", "cosine", "'linear'"), ("step_boundary", "", "non-empty"), ("deer_threshold", 0.0, "(0, 1]"),
    ("trial_answer_tokens", 0, ">= 1"), ("no_thinking", "yes", "true or false"),
    ("record_confidence", 1, "true or false"),
])
def test_bad_values_name_key_value_and_fix(key, value, fix):
    with pytest.raises(ValueError, match=re.escape(f"budget_forcing.{key}={value!r}") + ".*" + re.escape(fix)):
        bf_options({key: value})


def test_conflicting_methods_are_refused():
    with pytest.raises(ValueError, match="deer_threshold.*adaptive_waits"):
        bf_options({"deer_threshold": 0.9, "adaptive_waits": True})
    with pytest.raises(ValueError, match="deer_threshold.*alpha"):
        bf_options({"deer_threshold": 0.9, "alpha": 0.5})
    with pytest.raises(ValueError, match="no_thinking.*plain_generation"):
        bf_options({"no_thinking": True, "plain_generation": True})


# ---- NoWait ----------------------------------------------------------------------------------------------------------

def test_ban_index_equals_the_text_rule(engine):
    pieces = [engine.decode([i]) for i in range(len(engine.tokenizer))]
    rng = random.Random(0)
    words = ["ab", "the", "Wait", "s t"]
    index = BanIndex(pieces, words)
    for _ in range(200):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))
        assert sorted(index.banned(text)) == banned_ids(text, pieces, words), repr(text)


def test_nowait_banned_strings_never_appear_in_the_thinking(engine, prompts):
    plain = [r for seed in (0, 1) for r in _run(engine, prompts, temperature=1.0, seed=seed, max_thinking_tokens=60)]
    words = _frequent([r.thinking for r in plain])
    assert any(w in r.thinking for w in words for r in plain)   # the test can fail: they appear without the ban
    for seed in (0, 1):
        for r in _run(engine, prompts, temperature=1.0, seed=seed, max_thinking_tokens=60, ban_words=words):
            assert r.thinking_tokens > 0 and not any(w in r.thinking for w in words), (words, r.thinking)
    for r in _run(engine, prompts, max_thinking_tokens=60, ban_words=words):      # greedy too
        assert not any(w in r.thinking for w in words)


# ---- AlphaOne --------------------------------------------------------------------------------------------------------

def test_alphaone_no_wait_after_alpha_and_the_end_forced_at_a_boundary(engine, prompts):
    cap, alpha = 80, 0.5
    plain = _run(engine, prompts, max_thinking_tokens=cap)
    [boundary] = _frequent([r.thinking for r in plain], n=1, size=1)     # a character it writes often: many steps
    moment = int(alpha * cap)
    waits = ends = 0
    for seed in range(3):
        for r in _run(engine, prompts, temperature=1.0, seed=seed, max_thinking_tokens=cap, alpha=alpha,
                      alpha_p0=0.6, alpha_schedule="constant", step_boundary=boundary, wait_string="WAIT"):
            assert all(t < moment for t in r.wait_at), (r.wait_at, moment)      # no Wait at or after α
            assert r.waits_used == len(r.wait_at) == r.thinking.count("WAIT")
            # thinking past α ends at a boundary (the α end), at the cap, or where the model ended it (end of turn)
            ends += moment <= r.thinking_tokens < cap and r.thinking.endswith(boundary)
            waits += r.waits_used
    assert waits > 0, "Waits should really be inserted before α"
    assert ends > 0, "the end of thinking should really be forced at a boundary after α"
    # p0 = 0: never a Wait; p0 = 1 (constant): a Wait at every boundary before α
    for r in _run(engine, prompts, max_thinking_tokens=cap, alpha=alpha, alpha_p0=0.0, step_boundary=boundary):
        assert r.waits_used == 0
    for r in _run(engine, prompts, max_thinking_tokens=cap, alpha=alpha, alpha_p0=1.0, alpha_schedule="constant",
                  step_boundary=boundary, wait_string="WAIT", wait_on_new_line=False):
        body = r.thinking.split("WAIT")
        assert all(part.endswith(boundary) for part in body[:-1]) and r.waits_used >= 1


def test_alphaone_wait_rate_through_the_controller_follows_the_schedule(engine):
    """Scripted steps of 20 thinking tokens each, ended by the boundary, on 1500 seeded sequences: the Wait rate in
    each third of [0, α) is the schedule's mean there (p(t) = 0.5 (1 - t/600), α moment 600 of a cap of 1000)."""
    from s1.infer.alphaone import p_wait
    from s1.infer.engine import Continuation

    class Steps:      # thinking: a step to the boundary; answering: an answer (fake_engine's, without its log)
        tokenizer = engine.tokenizer

        def continue_batch(self, requests):
            return [Continuation("a step", 20, "stop", "\n\n") if "\n\n" in r.stop else
                    Continuation("Answer: 1", 3, "eos") for r in requests]

    fake = Steps()
    prompt = build_prompt(engine.tokenizer, "Q")
    rs = generate(fake, [prompt] * 1500, dict(max_thinking_tokens=1000, alpha=0.6, alpha_p0=0.5, answer_max_tokens=8),
                  max_new_tokens=4000, progress=False)
    hits, seen = Counter(), Counter()
    for r in rs:
        assert r.thinking_tokens == 600 and all(t < 600 for t in r.wait_at)     # the end at the first step after α
        hits.update(r.wait_at)
        seen.update(range(20, 600, 20))
    for lo, hi in [(0, 200), (200, 400), (400, 600)]:
        ts = [t for t in seen if lo <= t < hi]
        rate = sum(hits[t] for t in ts) / sum(seen[t] for t in ts)
        expected = sum(p_wait(t, 600, 0.5, "linear") for t in ts) / len(ts)
        assert abs(rate - expected) < 0.02, (lo, rate, expected)


def test_alphaone_same_seed_same_waits(engine, prompts):
    bf = dict(max_thinking_tokens=60, alpha=0.8, alpha_p0=0.5, step_boundary=" ", wait_string="WAIT")
    a, b = (_run(engine, prompts[:2], temperature=1.0, seed=7, **bf) for _ in range(2))
    assert [r.wait_at for r in a] == [r.wait_at for r in b]


# ---- DEER ------------------------------------------------------------------------------------------------------------

def test_deer_exits_only_above_the_threshold_and_never_thinks_longer(engine, prompts):
    cap = 80
    plain = _run(engine, prompts, max_thinking_tokens=cap)
    [boundary] = _frequent([r.thinking for r in plain], n=1, size=1)
    probe = _run(engine, prompts, max_thinking_tokens=cap, deer_threshold=1.0, step_boundary=boundary,
                 trial_answer_tokens=4)
    seen = sorted(c for r in probe for c in r.peek_confidence)
    assert len(seen) >= 4, "the trial answers should really be peeked"
    threshold = seen[len(seen) // 2]       # the median: some boundaries pass, some do not
    exits = 0
    for r, p in zip(_run(engine, prompts, max_thinking_tokens=cap, deer_threshold=threshold, step_boundary=boundary,
                         trial_answer_tokens=4), plain):
        conf = r.peek_confidence
        assert r.thinking_tokens <= p.thinking_tokens
        if conf and conf[-1] >= threshold:       # an exit: at the first confident trial answer
            exits += 1
            assert all(c < threshold for c in conf[:-1]) and r.outcome in ("answered", "no_answer")
            assert r.peek_tokens <= 4 * (len(conf) - 1)     # the kept trial answer is the answer's start
            assert r.text[len(r.thinking):].startswith("<|im_start|>answer")
        else:
            assert all(c < threshold for c in conf)
            assert r.peek_tokens <= 4 * len(conf)
    assert exits > 0, "some sequence should exit early"


# ---- cap endings -----------------------------------------------------------------------------------------------------

def test_cap_endings_text_and_token_counts(engine, prompts):
    cap = 30
    hard = _run(engine, prompts, max_thinking_tokens=cap)
    sentence = _run(engine, prompts, max_thinking_tokens=cap, cap_ending="stop_sentence", cap_sentence="Stop now.")
    window = _run(engine, prompts, max_thinking_tokens=cap, cap_ending="finish_window", cap_window=0.5)
    assert sum(h.thinking_tokens == cap for h in hard) >= 2, "the cap should really be reached"
    for h, s, w in zip(hard, sentence, window):
        if h.thinking_tokens < cap:          # the model ended thinking itself (end of turn): no cap ending applies
            assert s.text == w.text == h.text
            continue
        assert s.thinking_tokens == cap and h.outcome in ("no_answer", "forced")
        assert h.text.startswith(h.thinking + "\n<|im_start|>answer\nFinal Answer:") or \
            h.text.startswith(h.thinking + "<|im_start|>answer\nFinal Answer:")
        # the sentence on its own line, then the end of thinking; not counted as thinking tokens
        lead = "" if h.thinking.endswith("\n") else "\n"
        assert s.thinking == h.thinking + lead + "Stop now.\n"
        assert s.text.startswith(s.thinking + "<|im_start|>answer\nFinal Answer:")
        # up to floor(0.5 x 30) = 15 more tokens, until the first token holding a newline
        assert cap <= w.thinking_tokens <= cap + 15 and w.thinking.startswith(h.thinking)
        extra = w.thinking[len(h.thinking):]
        if w.thinking_tokens < cap + 15:
            assert extra.endswith("\n") and "\n" not in extra[:-1], repr(extra)
        else:
            assert "\n" not in extra[:-1]
        assert w.text.startswith(w.thinking) and "<|im_start|>answer\nFinal Answer:" in w.text[len(w.thinking):][:40]
    assert any(w.thinking_tokens > cap for w in window), "the window should really run"


def test_cap_endings_in_a_shared_sweep_equal_one_at_a_time(engine, prompts):
    settings = [{"max_thinking_tokens": 20}, {"max_thinking_tokens": 20, "cap_ending": "stop_sentence"},
                {"max_thinking_tokens": 30, "cap_ending": "finish_window", "cap_window": 0.3},
                {"no_thinking": True}]
    bf = dict(DEFAULTS, answer_max_tokens=ANSWER)
    shared = generate_sweep(engine, prompts[:2], settings, bf, max_new_tokens=TOTAL, progress=False)
    alone = [generate(engine, prompts[:2], dict(bf, **st), max_new_tokens=TOTAL, progress=False) for st in settings]
    assert shared == alone


# ---- NoThinking, confidence, seconds ---------------------------------------------------------------------------------

def test_no_thinking_prefills_and_thinks_zero_tokens(engine, prompts):
    for p, r in zip(prompts, _run(engine, prompts, max_thinking_tokens=50, no_thinking=True)):
        assert r.thinking_tokens == 0 and r.answer_tokens > 0 and r.thinking == FILLER + "\n"
        assert p + r.text == prefill(p) + r.answer
        assert r.text.startswith(FILLER + "\n<|im_start|>answer\n")


def test_engine_logprobs_are_the_models_own(engine, prompts):
    [c] = engine.continue_batch([Request(prompts[0], 6, logprobs=True)])
    assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids) == 6
    ids = engine.encode(prompts[0]) + c.token_ids
    with torch.no_grad():
        logits = engine.model(torch.tensor([ids])).logits[0].float()
    lps = torch.log_softmax(logits, -1)
    n = len(ids) - len(c.token_ids)
    want = [float(lps[n - 1 + i, t]) for i, t in enumerate(c.token_ids)]
    assert c.logprobs == pytest.approx(want, abs=1e-3)
    assert engine.continue_batch([Request(prompts[0], 3)])[0].logprobs is None     # only when asked


def test_confidence_and_seconds_recorded(engine, prompts):
    from s1.eval.methods import RunSpec
    from s1.eval.runner import make_record

    rs = _run(engine, prompts, max_thinking_tokens=30, record_confidence=True)
    for r in rs:
        assert r.confidence is not None and r.confidence < 0 and r.seconds > 0
        assert math.isfinite(r.confidence)
    assert len({round(r.confidence, 6) for r in rs}) > 1
    assert all(r.confidence is None for r in _run(engine, prompts[:1], max_thinking_tokens=30))
    spec = RunSpec("trained", "m", "bf", 30, max_thinking_tokens=30)
    row = {"id": "q", "answer": "5"}
    rec = make_record(spec, "synthetic", row, 0, rs[0])
    assert rec["confidence"] == rs[0].confidence and rec["seconds"] == rs[0].seconds
    plain = make_record(spec, "synthetic", row, 0, _run(engine, prompts[:1], max_thinking_tokens=30)[0])
    assert "confidence" not in plain and plain["seconds"] > 0


# ---- the OpenAI engine: what it refuses and why ----------------------------------------------------------------------

def test_openai_engine_refuses_nowait_and_deer_without_logprobs(tiny_model_dir, monkeypatch):
    from s1.infer.openai_backend import OpenAIEngine

    e = OpenAIEngine(str(tiny_model_dir), base_url="http://127.0.0.1:9/v1")
    prompt = build_prompt(e.tokenizer, QUESTIONS[0])
    with pytest.raises(ValueError, match="ban_words.*logit_bias"):
        generate(e, [prompt], dict(ban_words=["Wait"]), max_new_tokens=40, progress=False)
    served = []

    def post(path, body, timeout):   # a server that returns no log-probabilities and names its stop (vLLM)
        served.append(body)
        stop = body["stop"][-1]
        return {"choices": [{"text": "x", "finish_reason": "stop", "stop_reason": stop}],
                "usage": {"completion_tokens": 2}}

    monkeypatch.setattr(e, "_post", post)
    with pytest.raises(RuntimeError, match="deer_threshold.*log-probabilities"):
        generate(e, [prompt], dict(deer_threshold=0.9), max_new_tokens=40, progress=False)
    assert "logprobs" not in served[0] and served[-1]["logprobs"] == 1     # thinking asks none; the peek asks
    [r] = generate(e, [prompt], dict(record_confidence=True), max_new_tokens=40, progress=False)
    assert r.confidence is None
