"""Difficulty (paper §2): reference models answer every question; any correct answer drops it.

Paper: Qwen2.5-7B-Instruct and -32B-Instruct answer through vLLM
(temperature 0.05, up to 32,768 tokens); answers are graded against the
reference answer (paper: a Claude judge; here math-verify through the eval
grader, or an LLM judge through an endpoint). The released notebook calls the
verdicts isqwen7bcorrect / isqwen32bcorrect; pools carrying those columns skip
the model work. Every answer is cached per (model, question), so a killed run
resumes where it stopped. The teacher's own attempt is graded too
(isgeminicorrect): the diversity step's seed set needs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from s1.cache import JsonlCache, content_key, slug, start_progress
from s1.curate.funnel import StepResult
from s1.curate.lengths import TokenCounter, check_length_tokenizer, count_tokens
from s1.data.schema import record_metadata
from s1.format import END
from s1.grading import grade_many
from s1.infer import Request, load_engine
from s1.infer.engine_settings import engine_args
from s1.runtime import ConfigError

log = logging.getLogger("s1.curate")


def column(rec: dict, name: str):
    """A precomputed column: top-level field, else metadata key; None when absent."""
    if name in rec:
        return rec[name]
    return record_metadata(rec).get(name)


def as_verdict(value) -> bool | None:
    """A precomputed verdict column: bools, 0/1, or the notebook's "Yes"/"No" strings."""
    if isinstance(value, str):
        return {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}.get(value.strip().lower())
    return bool(value)


def integer_answer(rec: dict) -> bool:
    return "aime" in str(rec.get("source_type", "")).lower()  # AIME rule: "016" == "16"


def reference_models(cfg, model_cfg) -> list[str]:
    return list(cfg.reference_models) or [model_cfg.name_or_path]


def add_reference_answers(pool: list[dict], cfg, model_cfg, cache_dir: Path, *, seed: int = 0,
                          judge=None) -> list[dict]:
    """Sets rec["reference_correct"] = {model: True/False/None (ungraded)}; precomputed columns win when configured."""
    todo = pool
    if cfg.use_existing_columns and cfg.existing_columns:
        todo = []
        for rec in pool:
            verdicts = {c: column(rec, c) for c in cfg.existing_columns}
            if all(v is not None for v in verdicts.values()):
                rec["reference_correct"] = {c: as_verdict(v) for c, v in verdicts.items()}
            else:
                todo.append(rec)
        if len(todo) < len(pool):
            log.info("difficulty: %d records carry %s, %d need reference answers",
                     len(pool) - len(todo), list(cfg.existing_columns), len(todo))
    if not todo:
        return pool
    if not cfg.enabled:
        for rec in todo:
            rec["reference_correct"] = {}
        return pool
    for model in reference_models(cfg, model_cfg):
        verdicts = answer_and_grade(todo, model, cfg, model_cfg, cache_dir, seed=seed, judge=judge)
        for rec in todo:
            rec.setdefault("reference_correct", {})[model] = verdicts[rec["id"]]
    return pool


def answer_and_grade(records: list[dict], model: str, cfg, model_cfg, cache_dir: Path, *, seed: int,
                     judge=None) -> dict[str, bool | None]:
    """{id: correct} for one reference model; generation and verdicts come from the cache when there."""
    cache = JsonlCache(Path(cache_dir) / f"{slug(model)}-T{cfg.temperature}-max{cfg.max_new_tokens}.jsonl")
    missing = [r for r in records if r["id"] not in cache]
    log.info("difficulty: %s answers %d questions (%d cached)", model, len(missing), len(records) - len(missing))
    start_progress(f"reference answers {Path(model).name}", len(records), len(records) - len(missing))
    if missing:
        engine = load_engine(cfg.backend, model,
                             **engine_args(cfg.backend, cfg.engine, model_cfg, key="curate.difficulty.engine"))
        tok = engine.tokenizer
        bar = tqdm(total=len(missing), desc=f"reference answers ({Path(model).name})", unit="q")
        for i in range(0, len(missing), cfg.batch_size):
            batch = missing[i:i + cfg.batch_size]
            prompts = [tok.apply_chat_template([{"role": "user", "content": r["question"]}], tokenize=False,
                                               add_generation_prompt=True) for r in batch]
            reqs = [Request(text=p, max_new_tokens=cfg.max_new_tokens, stop=[END],
                            temperature=cfg.temperature, seed=seed) for p in prompts]
            outs = engine.continue_batch(reqs)
            cache.put_many({r["id"]: {"response": o.text, "num_tokens": o.num_tokens, "stop_reason": o.stop_reason}
                            for r, o in zip(batch, outs)})
            bar.update(len(batch))
        bar.close()
    return grade_cached(records, cache, cfg, judge=judge)


def reference_tokens(pool: list[dict], cfg, model_cfg, cache_dir: Path) -> dict[str, dict[str, int]]:
    """Per reference model: answers generated for these questions, their tokens, and how many hit max_new_tokens
    (the funnel's note "reference_tokens": what sizing a larger run starts from, see docs/scale-out.md)."""
    if not cfg.enabled:
        return {}
    out = {}
    for model in reference_models(cfg, model_cfg):
        path = Path(cache_dir) / f"{slug(model)}-T{cfg.temperature}-max{cfg.max_new_tokens}.jsonl"
        cache = JsonlCache(path)
        hits = [cache.data[r["id"]] for r in pool if r["id"] in cache.data]
        out[Path(model).name] = {"answers": len(hits), "tokens": sum(int(h.get("num_tokens") or 0) for h in hits),
                                 "at_max_new_tokens": sum(int(h.get("num_tokens") or 0) >= cfg.max_new_tokens
                                                          for h in hits)}
    return out


def graded_against(rec: dict, cfg, judge=None) -> str:
    """What a cached verdict was graded against: a verdict is reused while this is unchanged (the judge's prompt
    included: release and short verdicts differ)."""
    if cfg.grader == "llm_judge":
        return f"judge:{getattr(judge, 'prompt', '')}:" + content_key(rec.get("solution") or "", rec.get("answer") or "")
    return str(rec.get("answer"))


def grade_cached(records: list[dict], cache: JsonlCache, cfg, judge=None) -> dict[str, bool | None]:
    """Verdicts for cached responses (None = ungraded: judge failed or no gold answer; never cached)."""
    todo = [r for r in records if cache.data[r["id"]].get("graded_against") != graded_against(r, cfg, judge)]
    if todo:
        responses = [cache.data[r["id"]]["response"] for r in todo]
        verdicts = grade(responses, todo, cfg, judge=judge)
        cache.put_many({r["id"]: {**cache.data[r["id"]], "correct": v, "graded_against": graded_against(r, cfg, judge)}
                        for r, v in zip(todo, verdicts) if v is not None})
        fresh = {r["id"]: v for r, v in zip(todo, verdicts)}
    else:
        fresh = {}
    return {r["id"]: fresh[r["id"]] if r["id"] in fresh else cache.data[r["id"]]["correct"] for r in records}


def grade(responses: list[str], records: list[dict], cfg, judge=None) -> list[bool | None]:
    """True / False per response; None when it cannot be graded (judge failure, or no gold for math_verify)."""
    if cfg.grader == "llm_judge":
        if judge is None:
            raise ConfigError("curate.difficulty.grader", "llm_judge",
                              "the LLM judge needs an endpoint: set curate.traces.base_url and curate.traces.model")
        return judge(responses, records)

    out: list[bool | None] = [None] * len(records)
    for as_int in (False, True):  # grade_many takes one integer rule per call
        idx = [i for i, r in enumerate(records) if integer_answer(r) == as_int and r.get("answer") is not None]
        if idx:
            got = grade_many([responses[i] for i in idx], [records[i]["answer"] for i in idx], integer_answer=as_int)
            for i, v in zip(idx, got):
                out[i] = v
    return out


def keep_if_unsolved(pool: list[dict]) -> StepResult:
    """Drop a question any reference model answered correctly (paper: either Qwen2.5-7B or -32B).

    A question some model's answer could not be graded for (judge call failed, no gold answer) is dropped as
    "ungraded" unless another model solved it: unjudged questions never enter s1K; a rerun grades them again.
    """
    kept, dropped = [], []
    for rec in pool:
        verdicts = rec.get("reference_correct") or {}
        solved = [m for m, ok in verdicts.items() if ok]
        if solved:
            dropped.append((rec, f"solved_by:{Path(solved[0]).name}"))
        elif any(ok is None for ok in verdicts.values()):
            dropped.append((rec, "ungraded"))
        else:
            kept.append(rec)
    return StepResult(kept, dropped)


def grade_teacher_attempts(pool: list[dict], cfg, cache_dir: Path, judge=None) -> list[dict]:
    """rec["teacher_correct"]: the trace's attempt vs the reference (notebook's isgeminicorrect); None = no grade."""
    cache = JsonlCache(Path(cache_dir) / "teacher.jsonl")
    if cfg.grader == "llm_judge" and judge is None and not cfg.enabled:   # difficulty off: no judge was set up
        log.warning("difficulty disabled with grader=llm_judge: teacher attempts without a precomputed %s column "
                    "stay ungraded (they cannot seed Algorithm 1)", cfg.teacher_column)
        judge = lambda responses, records: [None] * len(records)   # noqa: E731 - "no grade", as the notebook
    todo = []
    for rec in pool:
        pre = column(rec, cfg.teacher_column) if cfg.use_existing_columns else None
        if pre is not None:
            rec["teacher_correct"] = bool(pre)
        elif not rec.get("attempt") or (rec.get("answer") is None and cfg.grader != "llm_judge"):
            rec["teacher_correct"] = None  # no attempt or no reference: no grade (as the notebook)
        else:
            key = content_key(rec["attempt"], graded_against(rec, cfg, judge))
            hit = cache.get(key)
            if hit is None:
                todo.append((rec, key))
            else:
                rec["teacher_correct"] = hit["correct"]
    if todo:
        verdicts = grade([r["attempt"] for r, _ in todo], [r for r, _ in todo], cfg, judge=judge)
        cache.put_many({k: {"correct": v} for (_, k), v in zip(todo, verdicts) if v is not None})
        for (rec, _), v in zip(todo, verdicts):
            rec["teacher_correct"] = v
    return pool


def add_thinking_lengths(pool: list[dict], cfg, tokenizer: str, cache_dir: Path, workers: int = 2) -> list[dict]:
    """rec["thinking_length"]: tokens of the first trace (notebook's gemini_length), cached by content hash.

    Records without a trace count their solution instead when length_fallback=solution
    (rec["length_source"] says which text was counted).
    """
    cache = JsonlCache(Path(cache_dir) / f"lengths-{slug(tokenizer)}.jsonl")
    todo: dict[str, str] = {}
    keyed = []
    for rec in pool:
        pre = column(rec, cfg.length_column) if cfg.use_existing_columns else None
        if isinstance(pre, (int, float)) and not isinstance(pre, bool):
            rec["thinking_length"], rec["length_source"] = int(pre), cfg.length_column
            continue
        traces = rec.get("thinking_trajectories") or []
        text, src = (traces[0], "trace") if traces and traces[0] else (
            (rec.get("solution") or "", "solution") if cfg.length_fallback == "solution" else ("", "none"))
        key = content_key(text)
        keyed.append((rec, key, src))
        if key not in cache.data:
            todo[key] = text
    if todo:
        counter = TokenCounter(check_length_tokenizer(tokenizer))
        log.info("thinking length: counting %d texts (%.1f MB) with %s%s", len(todo),
                 sum(map(len, todo.values())) / 1e6, tokenizer, " (fast exact path)" if counter.exact_fast_path else "")
        counts = count_tokens(list(todo.values()), counter, workers=workers)
        cache.put_many({k: {"n": n} for k, n in zip(todo, counts)})
    for rec, key, src in keyed:
        rec["thinking_length"], rec["length_source"] = cache.data[key]["n"], src
    return pool
