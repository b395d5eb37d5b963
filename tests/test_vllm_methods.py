"""The post-s1 methods (issue 32) on the vLLM engine: each rule's defining property, and the fall back to the rounds.

Runs under `make test-vllm` (skipped where vLLM is not importable). The engine is bf_mode=auto, as eval runs it: a
request with any post-s1 setting declines the single pass (one log line per setting) and runs in the rounds, where
NoWait is vLLM's logits processor s1.infer.vllm_nowait and log-probabilities come from SamplingParams(logprobs=0).
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from test_vllm import QUESTIONS, hd32_dir, needs_vllm  # noqa: F401  (hd32_dir: fixture)

from s1.infer import build_prompt, generate, load_engine
from s1.infer.engine import Request
from s1.infer.no_thinking import FILLER, prefill

pytestmark = [needs_vllm, pytest.mark.slow]

TOTAL, ANSWER = 120, 8
NO_END = "<never>"     # an end of thinking the model never writes: thinking runs to the cap or a method's end


@pytest.fixture(scope="module")
def engine(hd32_dir):  # noqa: F811
    return load_engine("vllm", str(hd32_dir), dtype="float32", max_context=1024)


@pytest.fixture(scope="module")
def prompts(engine):
    return [build_prompt(engine.tokenizer, q) for q in QUESTIONS + ["Start at 5, add 2, 3 times."]]


def _run(engine, prompts, temperature=0.0, seed=0, **bf):
    return generate(engine, prompts, dict(answer_max_tokens=ANSWER, end_of_thinking=NO_END) | bf,
                    max_new_tokens=TOTAL, temperature=temperature, seed=seed, progress=False)


def _frequent(texts, n=2, size=2):
    grams = Counter(t[i:i + size] for t in texts for i in range(len(t) - size + 1) if t[i:i + size].strip())
    return [g for g, _ in grams.most_common(n)]


def test_methods_fall_back_to_the_rounds_with_one_log_line(engine, prompts, caplog):
    end = dict(end_of_thinking="<|im_start|>")     # one token: the single pass could run it
    with caplog.at_level(logging.INFO, logger="s1.infer"):
        before = engine.stats["forward_passes"]
        _run(engine, prompts[:1], max_thinking_tokens=10, **end)
        assert "in rounds" not in caplog.text and engine.stats["forward_passes"] > before
        for _ in range(2):
            _run(engine, prompts[:1], max_thinking_tokens=10, cap_ending="stop_sentence", **end)
            _run(engine, prompts[:1], max_thinking_tokens=10, no_thinking=True, **end)
    assert caplog.text.count("in rounds (cap_ending set") == 1
    assert caplog.text.count("in rounds (no_thinking set") == 1


def test_nowait_on_vllm(engine, prompts):
    plain = [r for seed in (0, 1) for r in _run(engine, prompts, temperature=1.0, seed=seed, max_thinking_tokens=60)]
    words = _frequent([r.thinking for r in plain])
    assert any(w in r.thinking for w in words for r in plain)   # the test can fail: they appear without the ban
    for seed in (0, 1):
        for r in _run(engine, prompts, temperature=1.0, seed=seed, max_thinking_tokens=60, ban_words=words):
            assert r.thinking_tokens > 0 and not any(w in r.thinking for w in words), (words, r.thinking)
    # a request without the key is untouched, beside one with it
    free = engine.continue_batch([Request(prompts[0], 30)])[0].text
    both = engine.continue_batch([Request(prompts[0], 30), Request(prompts[1], 30, ban_words=tuple(words))])
    assert both[0].text == free and not any(w in both[1].text for w in words)


def test_cap_endings_on_vllm(engine, prompts):
    cap = 30
    hard = _run(engine, prompts, max_thinking_tokens=cap, record_confidence=True)      # in the rounds, as the others
    sentence = _run(engine, prompts, max_thinking_tokens=cap, cap_ending="stop_sentence", cap_sentence="Stop now.")
    window = _run(engine, prompts, max_thinking_tokens=cap, cap_ending="finish_window", cap_window=0.5)
    assert sum(h.thinking_tokens == cap for h in hard) >= 2, "the cap should really be reached"
    for h, s, w in zip(hard, sentence, window):
        if h.thinking_tokens < cap:          # the model ended thinking itself: no cap ending applies
            continue
        lead = "" if h.thinking.endswith("\n") else "\n"
        assert s.thinking_tokens == cap and s.thinking == h.thinking + lead + "Stop now.\n"
        assert s.text.startswith(s.thinking + "<|im_start|>answer\nFinal Answer:")
        assert cap <= w.thinking_tokens <= cap + 15 and w.thinking.startswith(h.thinking)
        extra = w.thinking[len(h.thinking):]
        assert "\n" not in extra[:-1] and (extra.endswith("\n") or w.thinking_tokens == cap + 15)
    assert any(w.thinking_tokens > cap for w in window), "the window should really run"


def test_alphaone_on_vllm_no_wait_after_alpha(engine, prompts):
    cap, alpha = 80, 0.5
    [boundary] = _frequent([r.thinking for r in _run(engine, prompts, max_thinking_tokens=cap)], n=1, size=1)
    moment, waits, ends = int(alpha * cap), 0, 0
    for seed in range(2):
        for r in _run(engine, prompts, temperature=1.0, seed=seed, max_thinking_tokens=cap, alpha=alpha,
                      alpha_p0=0.6, alpha_schedule="constant", step_boundary=boundary, wait_string="WAIT"):
            assert all(t < moment for t in r.wait_at) and r.waits_used == r.thinking.count("WAIT")
            ends += moment <= r.thinking_tokens < cap and r.thinking.endswith(boundary)
            waits += r.waits_used
    assert waits > 0 and ends > 0


def test_deer_on_vllm_exits_above_the_threshold(engine, prompts):
    cap = 80
    plain = _run(engine, prompts, max_thinking_tokens=cap)
    [boundary] = _frequent([r.thinking for r in plain], n=1, size=1)
    probe = _run(engine, prompts, max_thinking_tokens=cap, deer_threshold=1.0, step_boundary=boundary,
                 trial_answer_tokens=4)
    seen = sorted(c for r in probe for c in r.peek_confidence)
    assert len(seen) >= 4
    threshold, exits = seen[len(seen) // 2], 0
    for r, p in zip(_run(engine, prompts, max_thinking_tokens=cap, deer_threshold=threshold, step_boundary=boundary,
                         trial_answer_tokens=4), plain):
        conf = r.peek_confidence
        assert r.thinking_tokens <= p.thinking_tokens
        if conf and conf[-1] >= threshold:
            exits += 1
            assert all(c < threshold for c in conf[:-1]) and r.peek_tokens <= 4 * (len(conf) - 1)
        else:
            assert all(c < threshold for c in conf)
    assert exits > 0


def test_no_thinking_and_confidence_on_vllm(engine, prompts, hd32_dir):  # noqa: F811
    for p, r in zip(prompts, _run(engine, prompts, max_thinking_tokens=50, no_thinking=True, record_confidence=True)):
        assert r.thinking_tokens == 0 and r.answer_tokens > 0 and p + r.text == prefill(p) + r.answer
        assert r.thinking == FILLER + "\n" and r.confidence is not None and r.confidence < 0
    # vLLM's log-probabilities are the model's own: the transformers engine's on the same tokens
    [c] = engine.continue_batch([Request(prompts[0], 6, logprobs=True)])
    t = load_engine("transformers", str(hd32_dir), dtype="float32", max_context=1024)
    [d] = t.continue_batch([Request(prompts[0], 6, logprobs=True)])
    assert c.token_ids == d.token_ids and c.logprobs == pytest.approx(d.logprobs, abs=2e-3)
