"""The eval stage: accuracy with and without budget forcing, thinking-budget sweeps, test-time-scaling metrics.

evaluate() is the list of steps; scripts/eval.py is the entry point (make eval).

Writes to ${eval.output_dir}: generations.jsonl (append-only cache: rerun resumes, re-scores for free),
metrics.json, results.md (Tables 1, 3, 4 layouts), scaling.png (accuracy vs thinking tokens), figure4.png,
pareto.png (accuracy vs generated tokens, every method; pareto_<benchmark>.png each where there are several).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig

from s1 import shards
from s1.cache import GenerationCache, cache_files, start_progress
from s1.data.benchmarks import benchmark_name, load_benchmark
from s1.eval.methods import plan_runs
from s1.eval.report import compute_metrics, plot_figure4, plot_pareto, plot_scaling, results_table, write_results_md
from s1.eval.runner import expected_records, regrade, run_all
from s1.run_inputs import changed_inputs, record_inputs
from s1.runtime import RunDir

log = logging.getLogger("s1")


def evaluate(cfg: DictConfig) -> dict:
    e = cfg.eval
    shard = shards.this_shard(cfg)
    if shards.shard_count(cfg) == 1:                        # with shards: before they start (main)
        set_aside_stale_generations(cfg)                    # the model at eval.model_path changed since the cache
    run = RunDir.create(cfg, e.output_dir) if shard is None else RunDir(Path(e.output_dir))
    benches = {benchmark_name(b): load_benchmark(b, cfg.paths.benchmarks_dir, e.aime_text, e.limit,
                                                 gpqa_order=e.gpqa.option_order, gpqa_seed=e.gpqa.seed)
               for b in e.benchmarks}                       # AIME24 (no-figures text), MATH500, synthetic, jsonl
    runs = plan_runs(cfg)                                    # base model; trained without / with BF per budget; baselines
    cache = GenerationCache(run.path / "generations.jsonl")  # finished generations: a rerun skips them
    mine = {b: shards.owned(rows, lambda r, b=b: f"{b}/{r['id']}", shard) for b, rows in benches.items()}
    todo = [rec for spec in runs for *_, rec in expected_records(spec, mine, cache.records, cfg)]
    start_progress("generations", len(todo), sum(rec is not None for rec in todo))
    made = run_all(runs, mine, cache, cfg)                  # budget forcing through the engine; graded as they finish
    if shard is not None:                                   # metrics need every question: the merge's work
        cache.close()
        shards.mark_done(cfg, "eval", shard, sum(map(len, mine.values())))
        log.info("eval shard %d of %d: %d new generations", shard.index, shard.count, made)
        return {"generated_this_run": made}
    if e.regrade:
        regrade(cache, e.grading_timeout_s, e.grading_workers)
    cache.close()
    metrics = compute_metrics(cache.records, runs, benches, cfg)  # pass@1 ± stderr, maj@k; Control/Scaling/Performance
    metrics["generated_this_run"] = made
    run.write_json("metrics.json", metrics)
    write_results_md(metrics, run.path / "results.md")       # Tables 1, 3 and 4 layouts
    plot_scaling(metrics, run.path / "scaling.png")          # accuracy vs average thinking tokens
    plot_figure4(metrics, run.path / "figure4.png")          # sequential vs parallel scaling (paper Fig. 4)
    plot_pareto(metrics, run.path)                           # pareto.png (+ pareto_<benchmark>.png): accuracy vs tokens
    print(results_table(metrics))
    log.info("eval: %d new generations; results in %s", made, run.path)
    record_inputs(cfg, "eval")                               # finished with these inputs
    return metrics


def set_aside_stale_generations(cfg: DictConfig) -> None:
    """Generations are keyed by the model's path: a model retrained in place makes them stale; keep them aside."""
    cache = Path(cfg.eval.output_dir) / "generations.jsonl"
    changed = changed_inputs(cfg, "eval") or []
    if cache_files(cache) and "eval.model_path (file)" in changed:
        stamp = time.strftime('%Y%m%d-%H%M%S')
        for f in cache_files(cache):    # with its shard files
            aside = f.with_name(f.name.replace("generations", f"generations.stale-{stamp}", 1))
            f.rename(aside)
            log.warning("eval: the model in %s changed since the cached generations; moved them to %s",
                        cfg.eval.model_path, aside)
