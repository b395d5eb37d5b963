"""Diversity sampling (paper Algorithm 1) and the ablation selectors of Table 6.

s1 (paper): start from the seed set (teacher-correct GPQA/AIME questions, and
teacher-correct MATH questions with traces longer than seed_min_length tokens); then until
num_samples: pick a domain uniformly among those with questions left; rank
its questions by thinking length (rank 0 = longest) and draw one with
probability ∝ 2^-rank; remove it.
notebook: the released filter.ipynb: the same, but after switch_after picks
domains are drawn by benchmark weights (domain counts over the pool's GPQA
and AIME questions, GPQA scaled by 0.5·|AIME|/|GPQA| with integer
truncation). Unlike the notebook, the RNG is seeded and seed-set questions
leave the buckets, so a draw always adds a new question.
random / longest / diverse (uniform domain, uniform question) / full: Table 6.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter, defaultdict

from s1.curate.funnel import StepResult
from s1.runtime import ConfigError

log = logging.getLogger("s1.curate")
METHODS = ("s1", "notebook", "random", "longest", "diverse", "full")


def source_matches(rec: dict, needles) -> bool:
    st = f"{rec.get('source_type', '')} {rec.get('source', '')}".lower()
    return any(n.lower() in st for n in needles)


def seed_set(pool: list[dict], cfg) -> list[dict]:
    """Paper: 384 (notebook: 393) high-quality questions that always enter s1K: the teacher answered correctly
    (both branches, as the released notebook: isgeminicorrect) and it is a GPQA/AIME question, or a MATH question
    whose trace is longer than seed_min_length tokens."""
    exact = getattr(cfg, "seed_source_match", "substring") == "exact"   # filter.ipynb: source_type in [...]

    def seed_source(r):
        return str(r.get("source_type")) in set(cfg.seed_sources) if exact else source_matches(r, cfg.seed_sources)

    return [r for r in pool if r.get("teacher_correct")
            and (seed_source(r)
                 or (source_matches(r, cfg.seed_long_sources) and r.get("thinking_length", 0) > cfg.seed_min_length))]


def draw_rank(rng: random.Random, n: int) -> int:
    """A rank in [0, n) with P(k) ∝ 2^-k, by inverting the truncated geometric CDF (O(1) per draw)."""
    u = rng.random() * (1.0 - 2.0 ** -n)
    return min(n - 1, int(-math.log2(1.0 - u)))


def benchmark_domain_weights(pool: list[dict]) -> dict[str, float]:
    """Notebook step 6: domains of the pool's GPQA and AIME questions, GPQA scaled to half of AIME."""
    gpqa = Counter(r["domain"] for r in pool if source_matches(r, ["gpqa"]))
    aime = Counter(r["domain"] for r in pool if source_matches(r, ["aime"]))
    n_gpqa, n_aime = sum(gpqa.values()), sum(aime.values())
    scale = 0.5 * n_aime / n_gpqa if n_gpqa else 0.0
    weights = Counter({d: int(c * scale) for d, c in gpqa.items()})  # int(): small domains vanish, as released
    weights.update(aime)
    total = sum(weights.values())
    return {d: w / total for d, w in weights.items() if w > 0} if total else {}


SEED_MATCHES = ("substring", "exact")


def sample_diverse(pool: list[dict], cfg) -> StepResult:
    if cfg.method not in METHODS:
        raise ConfigError("curate.diversity.method", cfg.method, f"use one of {METHODS}")
    if getattr(cfg, "seed_source_match", "substring") not in SEED_MATCHES:
        raise ConfigError("curate.diversity.seed_source_match", cfg.seed_source_match, f"use one of {SEED_MATCHES}")
    rng = random.Random(cfg.seed)
    n = cfg.num_samples
    pool = sorted(pool, key=lambda r: r["id"])  # input order must not change the draw
    if cfg.method == "full" or n >= len(pool):
        chosen = list(pool)
    elif cfg.method == "random":
        chosen = rng.sample(pool, n)
    elif cfg.method == "longest":
        chosen = sorted(pool, key=lambda r: (-r.get("thinking_length", 0), r["id"]))[:n]
    else:
        warn_if_degenerate(pool)
        chosen = algorithm_1(pool, cfg, rng)
    ids = {r["id"] for r in chosen}
    return StepResult(chosen, [(r, "not_sampled") for r in pool if r["id"] not in ids])


DEGENERATE_FRACTION = 0.5   # one domain holding more than half the pool: the uniform draw over domains is moot


def warn_if_degenerate(pool: list[dict]) -> None:
    """Algorithm 1 never runs on a degenerate domain set without saying so."""
    counts = Counter(r.get("domain") for r in pool)
    top, n_top = counts.most_common(1)[0] if counts else (None, 0)
    if len(counts) < 2 or n_top > DEGENERATE_FRACTION * len(pool) or counts.get("Unassigned", 0) > 0.1 * len(pool):
        log.warning("!!! diversity: degenerate domain set for Algorithm 1: %d domains, largest %r holds %d of %d "
                    "(Unassigned %d): the domain-uniform draw becomes a draw by length. Fix the domains step "
                    "(curate.domains.method=llm or fallback=llm|embeddings).", len(counts), top, n_top, len(pool),
                    counts.get("Unassigned", 0))


def algorithm_1(pool: list[dict], cfg, rng: random.Random) -> list[dict]:
    n = cfg.num_samples
    chosen: list[dict] = []
    if cfg.method in ("s1", "notebook") and cfg.seed_set:
        seeds = seed_set(pool, cfg)
        chosen = rng.sample(seeds, n) if len(seeds) > n else seeds
    taken = {r["id"] for r in chosen}
    buckets: dict[str, list[dict]] = defaultdict(list)
    for r in pool:
        if r["id"] not in taken:
            buckets[r["domain"]].append(r)
    for qs in buckets.values():  # rank 0 = longest trace
        qs.sort(key=lambda r: (-r.get("thinking_length", 0), r["id"]))
    weights = benchmark_domain_weights(pool) if cfg.method == "notebook" else {}
    while len(chosen) < n and buckets:
        domains = sorted(buckets)
        if cfg.method == "notebook" and len(chosen) >= cfg.switch_after and any(d in weights for d in domains):
            domain = rng.choices(domains, [weights.get(d, 0.0) for d in domains])[0]  # renormalised over the left
        else:
            domain = rng.choice(domains)
        qs = buckets[domain]
        i = draw_rank(rng, len(qs)) if cfg.method in ("s1", "notebook") else rng.randrange(len(qs))
        chosen.append(qs.pop(i))
        if not qs:
            del buckets[domain]
    return chosen
