"""The curate stage: s1K out of a question pool, the funnel of the paper's §2 (quality → difficulty → diversity).

run_funnel() is the list of steps; each takes records in and gives records out, and the funnel counts what it
dropped and why. scripts/curate.py is the entry point (make curate).

Writes to ${curate.output_dir}: s1k.jsonl + s1k/ (datasets), funnel.json / funnel.md / funnel.png,
domains.png, lengths.png, quarantine.jsonl (invalid records, in full), dropped.jsonl (every other drop
with its step and reason), decontam_matches.jsonl, config.yaml, cache/ (per-question model work:
a rerun skips everything already paid for).

Order: decontamination runs before the model steps (the released code decontaminates while collecting
the pool), so no model time is spent on benchmark copies and the sampler draws exactly num_samples.
"""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf

from s1 import shards
from s1.cache import Shard
from s1.curate.decontam import build_index, cross_source, decontaminate, dedup
from s1.curate.difficulty import (
    add_reference_answers,
    add_thinking_lengths,
    grade_teacher_attempts,
    keep_if_unsolved,
    reference_tokens,
)
from s1.curate.diversity import sample_diverse
from s1.curate.domains import assign_domains
from s1.curate.endpoint import ChatEndpoint
from s1.curate.export import export
from s1.curate.funnel import EmptyStepError, Funnel
from s1.curate.judge import llm_judge
from s1.curate.lengths import check_length_tokenizer
from s1.curate.quality import apply_quality_rules
from s1.curate.report import write_funnel_report
from s1.curate.sources import add_gold_answers, load_pool
from s1.curate.traces import generate_traces
from s1.curate.validate import quarantine_invalid
from s1.infer import load_engine
from s1.infer.engine_settings import engine_args
from s1.infer.server import serve_in_thread
from s1.run_inputs import record_inputs
from s1.runtime import ConfigError

log = logging.getLogger("s1")


def run_stage_here(cfg: DictConfig, shard: Shard | None) -> None:
    """The stage in this process (after prepare, shards.begin and dispatch): a shard's share, or the whole funnel.
    An empty step is a clear stop (exit 1), not a traceback; a shard with nothing left has finished its share."""
    try:
        summary = curate(cfg)
    except EmptyStepError as e:
        if shard is not None:    # no question of this shard got this far: its share is done
            shards.mark_done(cfg, "curate", shard, 0)
            log.info("curate shard %d: %s", shard.index, str(e).splitlines()[0])
            return
        print(f"curate stopped: {e}", file=sys.stderr)
        sys.exit(1)
    if shard is not None:
        log.info("curate shard %d of %d: %d questions through domains; the merge samples s1K", shard.index,
                 shard.count, summary["kept"])
        return
    last = summary["steps"][-1]
    log.info("s1K: %d questions, %d domains → %s", last["kept"], summary["num_domains"], cfg.curate.output_dir)


def curate(cfg: DictConfig) -> dict:
    """The run folder (a shard's own), the chat endpoint when a step needs one (teacher traces, LLM judge, LLM
    domains; curate.traces.serve_model serves one here), then the funnel. Returns the funnel report."""
    c = cfg.curate
    if not c.sources:
        raise ConfigError("curate.sources", [], "list at least one source (see configs/data/ and experiment=demo); "
                          "experiment=s1_1 curates nothing: it trains on s1K-1.1 as released (make train "
                          "ARGS=experiment=s1_1)")
    if cfg.run.offline:   # fail before any model work, not at the length step with a transformers traceback
        check_length_tokenizer(c.difficulty.length_tokenizer or cfg.model.tokenizer or cfg.model.name_or_path)
    run = shards.run_dir(cfg, c.output_dir, shards.this_shard(cfg))  # a shard: its own folder, the shared caches
    funnel = Funnel(run.path)
    endpoint, server = None, None
    check_ablation(c)
    judge_needed = c.difficulty.grader == "llm_judge" and c.difficulty.enabled and c.ablation == "none"
    domains_needed = c.domains.method == "llm" and c.ablation in ("none", "diverse")
    if c.traces.enabled or domains_needed or judge_needed:
        traces_cfg = c.traces
        if c.traces.serve_model:                   # serve a local model here; the endpoint paths run for real
            server, traces_cfg = serve_teacher(cfg, c.traces)
        endpoint = ChatEndpoint(traces_cfg)
    try:
        return run_funnel(cfg, run, funnel, endpoint)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def serve_teacher(cfg: DictConfig, traces: DictConfig):
    """Start s1.infer.server on 127.0.0.1 with curate.traces.serve_model; returns (server, traces config using it)."""
    engine = load_engine(traces.serve_backend, traces.serve_model,
                         **engine_args(traces.serve_backend, traces.engine, cfg.model, key="curate.traces.engine"))
    name = traces.model or "served"
    think = traces.max_tokens if traces.serve_thinking else 0
    server, url = serve_in_thread(engine, name, think_tokens=think, answer_tokens=traces.max_tokens)
    served = OmegaConf.merge(traces, {"base_url": url, "model": name, "api_key_env": None})
    log.info("serving %s (%s) for traces / judge / domains at %s", traces.serve_model, traces.serve_backend,
             served.base_url)
    return server, served


def run_funnel(cfg: DictConfig, run, funnel, endpoint) -> dict:
    """§2 in order: load → validate → quality → decontaminate → difficulty (reference models) → domains; a shard
    stops here, the whole run goes on to diversity (Algorithm 1) → export → the funnel report."""
    c = cfg.curate
    tokenizer = c.difficulty.length_tokenizer or cfg.model.tokenizer or cfg.model.name_or_path

    pool = funnel.start("load", load_pool(c.sources, cfg.paths.benchmarks_dir))        # one schema, any source
    shard = shards.this_shard(cfg)
    pool = shards.owned(pool, lambda r: str(r["id"]), shard)                            # a shard's questions
    pool = funnel.add("validate", pool, quarantine_invalid(pool, c.quality.max_field_chars))
    funnel.note("gold_answers", add_gold_answers(pool))                                 # boxed / bare / metadata / none
    pool = generate_traces(pool, c.traces, run.cache("traces"), endpoint)               # teacher, if asked
    pool = funnel.add("quality", pool, apply_quality_rules(pool, c.quality))            # API errors, images, [asy], ...
    index = build_index(c.decontam.benchmarks, cfg.paths.benchmarks_dir, c.decontam.ngram, cfg.paths.shared_pool_dir)
    pool = funnel.add("decontam", pool, decontaminate(pool, index, run.path / "decontam_matches.jsonl"))
    if c.decontam.cross_source:                                                          # later source vs earlier ones
        pool = funnel.add("cross_source", pool, cross_source(pool, c.decontam.ngram, run.path / "cross_source.jsonl"))
    if c.decontam.dedup:
        pool = funnel.add("dedup", pool, dedup(pool))                                   # exact normalised text
    ablation = c.ablation != "none"        # paper Table 6: no difficulty filter, no reference models
    if not ablation:
        pool = add_reference_answers(pool, c.difficulty, cfg.model, run.cache("reference"), seed=cfg.run.seed,
                                     judge=judge_with(endpoint, c.judge, funnel))
        funnel.note("reference_tokens", reference_tokens(pool, c.difficulty, cfg.model, run.cache("reference")))
        pool = funnel.add("difficulty", pool, keep_if_unsolved(pool))                   # any reference right → drop
    pool = add_thinking_lengths(pool, c.difficulty, tokenizer, run.cache("lengths"))     # tokens of the trace
    if not ablation:
        pool = grade_teacher_attempts(pool, c.difficulty, run.cache("teacher"),        # the seed set's grades
                                      judge=judge_with(endpoint, c.judge, funnel))
    if c.ablation in ("none", "diverse"):   # random / longest / full ignore domains
        pool = funnel.add("domains", pool, assign_domains(pool, c.domains, cache_dir=run.cache("domains"),
                                                          endpoint=endpoint))
    if shard is not None:                                   # diversity needs every question: the merge's work
        shards.mark_done(cfg, "curate", shard, len(pool))
        return {"shard": shard.index, "kept": len(pool)}
    sampling = OmegaConf.merge(c.diversity, {"method": c.ablation}) if ablation else c.diversity
    s1k = funnel.add(f"ablation: {c.ablation}" if ablation else "diversity", pool, sample_diverse(pool, sampling))
    export(s1k, run.path, c.push_to_hub)
    report = write_funnel_report(funnel, s1k, [r["thinking_length"] for r in pool], run.path,
                                 extra={"decontam_benchmarks": index.sizes, "tokenizer": tokenizer,
                                        "ablation": c.ablation})
    record_inputs(cfg, "curate")                                                        # finished with these inputs
    return report


ABLATIONS = ("none", "random", "longest", "diverse", "full")


def check_ablation(c) -> None:
    if c.ablation not in ABLATIONS:
        raise ConfigError("curate.ablation", c.ablation, f"use one of {ABLATIONS} (none: the s1 funnel)")


def judge_with(endpoint, judge_cfg, funnel):
    """The LLM judge for grader=llm_judge, its counts (judged, failed, no verdict, no solution) in the funnel's
    notes under "judge"."""
    if endpoint is None:
        return None
    stats = funnel.notes.setdefault("judge", {"prompt": judge_cfg.prompt})

    def judge(responses, records):
        return llm_judge(endpoint, responses, records, prompt=judge_cfg.prompt, max_tokens=judge_cfg.max_tokens,
                         stats=stats)

    judge.prompt = judge_cfg.prompt   # part of a cached verdict's key (difficulty.graded_against)
    return judge
