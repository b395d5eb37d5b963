"""Generate what the cache lacks, grade each generation as it finishes, and append it to the cache."""

from __future__ import annotations

import logging
from itertools import groupby
from typing import Any

from s1.eval.cache import GenerationCache, record_key
from s1.grading import extract_answer, is_correct
from s1.eval.methods import RunSpec
from s1.infer import build_prompt, generate, load_engine
from s1.infer.engine_settings import engine_args

log = logging.getLogger("s1.eval")
INTEGER_ANSWER_BENCHMARKS = ("aime24",)   # AIME: answers are integers 0-999, "016" == "16"


def model_id(spec: RunSpec) -> str:
    """The cache's model field: the role and the checkpoint (the base and trained model may be one folder)."""
    return f"{spec.model}:{spec.model_path}"


def key_of(spec: RunSpec, bench: str, qid: str, sample: int) -> str:
    return record_key({"model": model_id(spec), "benchmark": bench, "question_id": qid, "method": spec.method,
                       "budget": spec.budget, "sample": sample})


def missing(spec: RunSpec, benches: dict[str, list[dict]], cache: GenerationCache) -> list[tuple[str, dict, int]]:
    return [(b, row, k) for b, rows in benches.items() for row in rows for k in range(spec.samples)
            if key_of(spec, b, row["id"], k) not in cache]


def run_all(runs: list[RunSpec], benches: dict[str, list[dict]], cache: GenerationCache, cfg) -> int:
    """Generate every missing (run, benchmark, question, sample); one engine per model, loaded only if needed."""
    made = 0
    for model_path, specs in groupby(runs, key=lambda s: s.model_path):
        specs = list(specs)
        todo = {s: missing(s, benches, cache) for s in specs}
        skipped = sum(s.samples * sum(len(r) for r in benches.values()) for s in specs) - sum(map(len, todo.values()))
        if skipped:
            log.info("%s: %d generations already cached, skipped", model_path, skipped)
        if not any(todo.values()):
            continue
        e = cfg.eval
        kw = {**engine_args(e.backend, e.engine, cfg.model, key="eval.engine"), **dict(e.engine_kwargs)}
        engine = load_engine(e.backend, model_path, base_url=e.base_url, api_key_env=e.api_key_env, **kw)
        for spec in specs:
            if todo[spec]:
                log.info("generating %s / %s / budget=%s: %d samples", spec.model, spec.method, spec.budget,
                         len(todo[spec]))
                made += run_spec(engine, spec, todo[spec], cache, cfg)
        del engine
    return made


def run_spec(engine, spec: RunSpec, items: list[tuple[str, dict, int]], cache: GenerationCache, cfg) -> int:
    e = cfg.eval
    bf = dict(e.budget_forcing)
    bf.update(max_thinking_tokens=spec.max_thinking_tokens, num_waits=spec.num_waits)
    made = 0
    tries = e.rejection_max_tries if spec.accept_max_thinking is not None else 1
    for attempt in range(tries):
        if not items:
            break
        prompts = [build_prompt(engine.tokenizer, _question(row, spec), system=e.system_prompt, think=spec.think,
                                think_prefix=bf["think_prefix"]) for _, row, _ in items]
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
            cache.append(make_record(spec, bench, row, k, res, tries=attempt + 1, accepted=fits,
                                     timeout_s=e.grading_timeout_s))
            made += 1

        generate(engine, prompts, bf, max_new_tokens=e.max_new_tokens, temperature=spec.temperature,
                 batch_size=e.batch_size, seeds=seeds, on_result=on_result, progress=True)
        items = rejected
    return made


def _question(row: dict, spec: RunSpec) -> str:
    return f"{row['problem']}\n\n{spec.instruction}" if spec.instruction else row["problem"]


def hash_seed(seed: int, qid: str, sample: int, attempt: int) -> int:
    import zlib

    return (int(seed) * 1_000_003 + zlib.crc32(f"{qid}/{sample}/{attempt}".encode())) % (2**31)


def make_record(spec: RunSpec, bench: str, row: dict, sample: int, res, *, tries: int = 1, accepted: bool = True,
                timeout_s: float = 5.0) -> dict[str, Any]:
    integer = bench in INTEGER_ANSWER_BENCHMARKS
    return {
        "model": model_id(spec), "benchmark": bench, "question_id": row["id"], "method": spec.method,
        "budget": spec.budget, "sample": sample, "model_label": spec.model,
        "reference": row["answer"], "extracted": extract_answer(res.text),
        "correct": is_correct(res.text, row["answer"], integer_answer=integer, timeout_s=timeout_s),
        "outcome": res.outcome, "thinking_tokens": res.thinking_tokens, "answer_tokens": res.answer_tokens,
        "waits_used": res.waits_used, "rounds": res.rounds, "tries": tries, "accepted": accepted,
        "text": res.text,
    }


def regrade(cache: GenerationCache, timeout_s: float, workers: int) -> None:
    """Grade every cached generation again (grader changed): no generation is redone."""
    from s1.grading import grade_many

    for bench in sorted({r["benchmark"] for r in cache.records.values()}):
        recs = [r for r in cache.records.values() if r["benchmark"] == bench]
        verdicts = grade_many([r["text"] for r in recs], [r["reference"] for r in recs], timeout_s=timeout_s,
                              integer_answer=bench in INTEGER_ANSWER_BENCHMARKS, workers=workers)
        for r, ok in zip(recs, verdicts):
            r["correct"], r["extracted"] = ok, extract_answer(r["text"])
    cache.rewrite()
