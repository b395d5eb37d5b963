"""Generate what the cache lacks, grade each generation as it finishes, and append it to the cache.

Cache keys name every setting that can change a generation (`generation_settings`):
the model's weights and tokenizer files, dtype, backend, every budget-forcing
string and cap, sampling temperature and seed, the rendered question (so the
AIME text variant, the GPQA option order and any control instruction are in
it) and the system prompt. A rerun with any of them changed generates anew;
an identical rerun re-scores from the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from s1.cache import GenerationCache, content_key, record_key
from s1.eval.methods import RunSpec, method_of
from s1.eval.sampling import samples_for
from s1.grading import extract_answer, extract_choice, grade_many, is_correct
from s1.infer import build_prompt, generate, load_engine
from s1.infer.budget_forcing import DEFAULTS as BF_DEFAULTS
from s1.infer.budget_forcing import METHOD_KEYS as BF_METHOD_KEYS
from s1.infer.budget_forcing import generate_sweep
from s1.infer.engine_settings import engine_args, hub_revision

log = logging.getLogger("s1.eval")
INTEGER_ANSWER_BENCHMARKS = ("aime24", "aime25")   # AIME: answers are integers 0-999, "016" == "16"
NOT_GENERATION_SETTINGS = ("request_timeout_s",)   # wall-clock safeguard: a timeout is recorded as an outcome
# budget-forcing keys added after caches existed: in the key only when changed, so those caches stay valid
# budget-forcing keys that enter the cache key only when they differ from their default (added after caches existed)
KEYED_UNLESS_DEFAULT = {"answer_reserve": 1024, "wait_on_new_line": True,
                        **{k: BF_DEFAULTS[k] for k in BF_METHOD_KEYS}}   # the post-s1 methods (issue 32)
MODEL_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.json", "vocab.json",
               "merges.txt", "chat_template.jinja", "special_tokens_map.json", "added_tokens.json", "tokenizer.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
EDGE_BYTES = 1 << 20      # weights fingerprint: size + first and last MiB of each file (a full hash of 64 GB is minutes)


def model_id(spec: RunSpec) -> str:
    """The cache's model field: the role and the checkpoint (the base and trained model may be one folder)."""
    return f"{spec.model}:{spec.model_path}"


@lru_cache(maxsize=32)
def model_fingerprint(path: str) -> str:
    """Identity of a model's weights and tokenizer: a local folder's files, or a hub name and the commit it resolves to."""
    folder = Path(path)
    if not folder.is_dir():
        return f"hub:{path}@{hub_revision(path)}"
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.name in MODEL_FILES:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        elif f.suffix in WEIGHT_SUFFIXES and f.is_file():
            size = f.stat().st_size
            h.update(f"{f.name}\0{size}\0".encode())
            with open(f, "rb") as fh:
                h.update(fh.read(EDGE_BYTES))
                if size > EDGE_BYTES:
                    fh.seek(max(EDGE_BYTES, size - EDGE_BYTES))
                    h.update(fh.read())
    return h.hexdigest()[:16]


def generation_settings(spec: RunSpec, cfg) -> dict[str, Any]:
    """Every setting of this run that can change what the model writes (the question text is added per row)."""
    e = cfg.eval
    bf = {k: v for k, v in spec.bf(dict(e.budget_forcing)).items() if k not in NOT_GENERATION_SETTINGS
          and not (k in KEYED_UNLESS_DEFAULT and v == KEYED_UNLESS_DEFAULT[k])}
    if not bf.get("adaptive_waits"):
        bf.pop("adaptive_peek", None)   # only adaptive peeks force it; with them it is always keyed (its default changed)
    return {
        "weights": model_fingerprint(spec.model_path), "dtype": eval_dtype(cfg), "backend": e.backend,
        "max_context": eval_max_context(cfg), "system_prompt": e.system_prompt, "think": spec.think,
        "instruction": spec.instruction, "budget_forcing": bf, "max_new_tokens": int(e.max_new_tokens),
        "temperature": spec.temperature, "seed": int(e.seed) if spec.temperature > 0 else None,
        **({"top_p": float(e.get("top_p", 1.0))} if spec.temperature > 0 and float(e.get("top_p", 1.0)) < 1 else {}),
        "accept_max_thinking": spec.accept_max_thinking,
        "max_tries": int(e.rejection_max_tries) if spec.accept_max_thinking is not None else 1,
        **({"engine_kwargs": dict(e.engine_kwargs)} if e.engine_kwargs else {}),   # e.g. quantization
        **({"trust_remote_code": True} if cfg.model.trust_remote_code else {}),    # the model's own code runs
        **({"chat_template_kwargs": dict(cfg.model.chat_template_kwargs)}        # e.g. Qwen3's enable_thinking
           if cfg.model.get("chat_template_kwargs") else {}),
        **({"base_url": e.base_url} if e.backend == "openai" else {}),             # the server that generates
        # the model's own tokens held across rounds, forced strings encoded alone (records before it re-encoded
        # the whole text each round: a Wait after "." differed), so older cached records are not reused
        **({"tokens": "held"} if e.backend != "openai" else {}),
    }   # eval.aime_text and the GPQA option order reach the key through the question text (settings_key)


def settings_key(spec_settings: str, row: dict, spec: RunSpec) -> str:
    return content_key(spec_settings, _question(row, spec))


def spec_settings_hash(spec: RunSpec, cfg) -> str:
    return content_key(json.dumps(generation_settings(spec, cfg), sort_keys=True, default=str))


def eval_dtype(cfg) -> str:
    """eval.engine.dtype, else eval.dtype, else model.dtype: what the engine loads the weights as."""
    engine = cfg.eval.get("engine") or {}
    return str(engine.get("dtype") or cfg.eval.get("dtype") or cfg.model.dtype)


def eval_max_context(cfg) -> int:
    engine = cfg.eval.get("engine") or {}
    return int(engine.get("max_model_len") or cfg.model.max_context)


def cached_method(spec: RunSpec) -> str:
    """The method name a run's samples are cached under: spec.samples_of where runs share one set (the parallel
    selectors), else its own."""
    return spec.samples_of or spec.method


def key_of(spec: RunSpec, bench: str, row: dict, sample: int, settings: str) -> str:
    return record_key({"model": model_id(spec), "benchmark": bench, "question_id": row["id"], "method": cached_method(spec),
                       "budget": spec.budget, "sample": sample, "settings": settings_key(settings, row, spec)})


def expected_records(spec: RunSpec, benches: dict[str, list[dict]], records: dict[str, dict], cfg):
    """(bench, row, sample, cached record or None) for every generation this run needs, under today's settings."""
    settings = spec_settings_hash(spec, cfg)
    return [(b, row, k, records.get(key_of(spec, b, row, k, settings)))
            for b, rows in benches.items() for row in rows for k in range(samples_for(spec, b, cfg))]


def run_all(runs: list[RunSpec], benches: dict[str, list[dict]], cache: GenerationCache, cfg) -> int:
    """Generate every missing (run, benchmark, question, sample); one engine per model, loaded only if needed."""
    made = 0
    by_model: dict[str, list[RunSpec]] = {}
    for s in runs:
        by_model.setdefault(s.model_path, []).append(s)
    for model_path, specs in by_model.items():
        expected = {s: expected_records(s, benches, cache.records, cfg) for s in specs}
        todo = {s: [(b, row, k) for b, row, k, rec in expected[s] if rec is None] for s in specs}
        skipped = sum(map(len, expected.values())) - sum(map(len, todo.values()))
        if skipped:
            log.info("%s: %d generations already cached, skipped", model_path, skipped)
        if not any(todo.values()):
            continue
        e = cfg.eval
        kw = {**engine_args(e.backend, e.engine, cfg.model, key="eval.engine", default_dtype=eval_dtype(cfg)),
              **dict(e.engine_kwargs), "top_p": float(e.get("top_p", 1.0))}
        engine = load_engine(e.backend, model_path, base_url=e.base_url, api_key_env=e.api_key_env, **kw)
        for group in sweep_groups(specs, bool(e.sweep_sharing)):
            if len(group) > 1 and any(todo[s] for s in group):
                made += run_sweep(engine, group, todo, cache, cfg)
                continue
            for spec in group:
                todo[spec] = not_cached(spec, todo[spec], cache, cfg)   # an earlier run of its sample set made them
                if todo[spec]:
                    log.info("generating %s / %s / budget=%s: %d samples", spec.model, spec.method, spec.budget,
                             len(todo[spec]))
                    made += run_spec(engine, spec, todo[spec], cache, cfg)
        del engine
    return made


def not_cached(spec: RunSpec, items: list[tuple[str, dict, int]], cache: GenerationCache, cfg) -> list:
    """The items the cache still lacks: runs that share one sample set (RunSpec.samples_of) generate it once."""
    settings = spec_settings_hash(spec, cfg)
    return [(b, row, k) for b, row, k in items if key_of(spec, b, row, k, settings) not in cache]


def run_spec(engine, spec: RunSpec, items: list[tuple[str, dict, int]], cache: GenerationCache, cfg) -> int:
    e = cfg.eval
    bf = spec.bf(dict(e.budget_forcing))
    settings = spec_settings_hash(spec, cfg)
    made = 0
    tries = int(e.rejection_max_tries) if spec.accept_max_thinking is not None else 1
    for attempt in range(tries):
        if not items:
            break
        prompts = [build_prompt(engine.tokenizer, _question(row, spec), system=e.system_prompt, think=spec.think,
                                think_prefix=bf["think_prefix"],
                                chat_template_kwargs=cfg.model.get("chat_template_kwargs")) for _, row, _ in items]
        # one seed per (question, sample, attempt), so a resumed run samples exactly what it would have
        seeds = [hash_seed(e.seed, row["id"], k, attempt) for _, row, k in items]
        rejected = []

        def on_result(i: int, res, items=items, rejected=rejected, attempt=attempt) -> None:
            nonlocal made
            bench, row, k = items[i]
            fits = spec.accept_max_thinking is None or res.thinking_tokens <= spec.accept_max_thinking
            if not fits and attempt < tries - 1:
                rejected.append(items[i])
                return
            # the try limit ran out: the last sample is kept for the record but marked, scored wrong and counted
            rec = make_record(spec, bench, row, k, res, settings=settings_key(settings, row, spec),
                              tries=attempt + 1, accepted=fits, timeout_s=e.grading_timeout_s)
            cache.append({**rec, "method": cached_method(spec)})   # the cache keys a record by its fields
            made += 1

        generate(engine, prompts, bf, max_new_tokens=e.max_new_tokens, temperature=spec.temperature,
                 batch_size=e.batch_size, seeds=seeds, on_result=on_result, progress=True)
        items = rejected
    return made


def sweep_groups(specs: list[RunSpec], sharing: bool) -> list[list[RunSpec]]:
    """Specs that one shared sweep generates together: greedy, same prompt and samples, differing only in thinking
    cap and waits (no_bf, bf at every cap, wait at every count). Sampled specs and those of a method whose
    record says shares_sweep=False stay alone, as with sharing off (eval.sweep_sharing=false)."""
    groups: dict[tuple, list[RunSpec]] = {}
    for i, s in enumerate(specs):
        # the method's record says whether it may share (adaptive peeks, rejection keeps only some samples)
        shareable = sharing and s.temperature == 0 and method_of(s.method).shares_sweep
        # a sweep branches per setting on the cap, the waits and the wait string (Table 4); any other override
        # (stops, think prefix) would change the shared text, so such specs share only with their equals
        others = tuple(sorted((k, str(v)) for k, v in dict(s.bf_overrides).items() if k != "wait_string"))
        key = (s.model, s.think, s.instruction, s.samples, others) if shareable else ("alone", i)
        groups.setdefault(key, []).append(s)
    return list(groups.values())


def run_sweep(engine, specs: list[RunSpec], todo: dict, cache: GenerationCache, cfg) -> int:
    """Generate several greedy specs as one shared sweep (s1.infer.generate_sweep): each question's common thinking
    is generated once, each spec branches off for its own forced "Wait"s and answer. Writes exactly the records
    run_spec would write (same keys and fields), only those the cache lacks."""
    e = cfg.eval
    bf = specs[0].bf(dict(e.budget_forcing))   # one group shares every setting but the cap, waits, wait string
    items, seen = [], set()
    for s in specs:                       # questions any spec still needs, in a stable order
        for bench, row, k in todo[s]:
            if (bench, row["id"], k) not in seen:
                seen.add((bench, row["id"], k))
                items.append((bench, row, k))
    log.info("generating %s as one shared sweep of %d settings (%s): %d samples", specs[0].model, len(specs),
             ", ".join(f"{s.method}={s.budget}" for s in specs), len(items))
    first = specs[0]
    prompts = [build_prompt(engine.tokenizer, _question(row, first), system=e.system_prompt, think=first.think,
                            think_prefix=bf["think_prefix"],
                            chat_template_kwargs=cfg.model.get("chat_template_kwargs")) for _, row, _ in items]
    settings = [{"max_thinking_tokens": s.max_thinking_tokens, "num_waits": s.num_waits, **dict(s.bf_overrides)}
                for s in specs]      # bf_overrides: e.g. each extrapolation string of Table 4
    hashes = [spec_settings_hash(s, cfg) for s in specs]
    made = 0

    def on_result(j: int, i: int, res) -> None:
        nonlocal made
        bench, row, k = items[i]
        if key_of(specs[j], bench, row, k, hashes[j]) not in cache:
            cache.append(make_record(specs[j], bench, row, k, res, settings=settings_key(hashes[j], row, specs[j]),
                                     timeout_s=e.grading_timeout_s))
            made += 1

    generate_sweep(engine, prompts, settings, bf, max_new_tokens=e.max_new_tokens, batch_size=e.batch_size,
                   on_result=on_result)
    return made


def _question(row: dict, spec: RunSpec) -> str:
    return f"{row['problem']}\n\n{spec.instruction}" if spec.instruction else row["problem"]


def hash_seed(seed: int, qid: str, sample: int, attempt: int) -> int:
    import zlib

    return (int(seed) * 1_000_003 + zlib.crc32(f"{qid}/{sample}/{attempt}".encode())) % (2**31)


def grade(text: str, row_or_reference, bench: str, timeout_s: float = 5.0, multiple_choice: bool | None = None) -> bool:
    """Multiple choice (GPQA): the chosen letter against the reference letter; else the math grader. Both read the
    answer section only (s1.grading.extract_answer)."""
    reference = row_or_reference["answer"] if isinstance(row_or_reference, dict) else row_or_reference
    if multiple_choice is None:
        multiple_choice = bool(isinstance(row_or_reference, dict) and row_or_reference.get("multiple_choice"))
    if multiple_choice:
        return extract_choice(text) == reference
    return is_correct(text, reference, integer_answer=bench in INTEGER_ANSWER_BENCHMARKS, timeout_s=timeout_s)


def extracted(text: str, multiple_choice: bool) -> str | None:
    """What a record keeps as its answer (majority voting reads it): the chosen letter, or the extracted answer."""
    return extract_choice(text) if multiple_choice else extract_answer(text)


def make_record(spec: RunSpec, bench: str, row: dict, sample: int, res, *, settings: str = "", tries: int = 1,
                accepted: bool = True, timeout_s: float = 5.0) -> dict[str, Any]:
    mc = bool(row.get("multiple_choice"))
    return {
        "model": model_id(spec), "benchmark": bench, "question_id": row["id"], "method": spec.method,
        "budget": spec.budget, "sample": sample, "settings": settings, "model_label": spec.model,
        "reference": row["answer"], "multiple_choice": mc, "extracted": extracted(res.text, mc),
        "unread": mc and extract_choice(res.text) is None,   # no letter: eval.gpqa.unread decides (apply_unread)
        "correct": accepted and grade(res.text, row, bench, timeout_s),
        "outcome": res.outcome, "thinking_tokens": res.thinking_tokens + res.peek_tokens,
        "answer_tokens": res.answer_tokens,
        "waits_used": res.waits_used, "rounds": res.rounds, "tries": tries, "accepted": accepted,
        "peek_tokens": res.peek_tokens,   # adaptive extrapolation's peeks, already counted in thinking_tokens (cost)
        "seconds": getattr(res, "seconds", 0.0),   # wall time from the sequence's first request to its result
        **({"confidence": res.confidence} if getattr(res, "confidence", None) is not None else {}),
        "text": res.text,
    }


UNREAD_POLICIES = ("wrong", "A")


def apply_unread(records: list[dict], policy: str) -> list[dict]:
    """Multiple-choice records with no readable letter under eval.gpqa.unread: "wrong" (as graded) or "A" (the
    release's process_results defaults to "A": right when the reference is A). The records keep the facts; this
    applies the policy when scoring, so changing it needs no regeneration."""
    if policy not in UNREAD_POLICIES:
        from s1.runtime import ConfigError

        raise ConfigError("eval.gpqa.unread", policy, f"use one of {UNREAD_POLICIES}")
    if policy == "wrong":
        return records
    return [{**r, "extracted": "A", "correct": r.get("accepted", True) and r["reference"] == "A"}
            if r.get("multiple_choice") and r.get("unread") else r for r in records]


def regrade(cache: GenerationCache, timeout_s: float, workers: int) -> None:
    """Grade every cached generation again (grader changed): no generation is redone."""
    for bench in sorted({r["benchmark"] for r in cache.records.values()}):
        recs = [r for r in cache.records.values() if r["benchmark"] == bench]
        mc = [r for r in recs if r.get("multiple_choice")]
        rest = [r for r in recs if not r.get("multiple_choice")]
        verdicts = grade_many([r["text"] for r in rest], [r["reference"] for r in rest], timeout_s=timeout_s,
                              integer_answer=bench in INTEGER_ANSWER_BENCHMARKS, workers=workers)
        for r, ok in zip(rest, verdicts):
            r["correct"], r["extracted"] = ok and r.get("accepted", True), extracted(r["text"], False)
        for r in mc:
            r["correct"] = r.get("accepted", True) and grade(r["text"], r["reference"], bench, multiple_choice=True)
            r["extracted"] = extracted(r["text"], True)
            r["unread"] = r["extracted"] is None
    cache.rewrite()
