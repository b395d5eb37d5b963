"""Each stage's own checks before submission, and the launch line of a stage that runs on every node.

The one module between the stage table (s1/stages.py) and the stages' code: the cluster layer calls these by
stage name and so never imports train/ or eval/ itself. A stage's check(cfg, upstream) raises ConfigError on a
bad value and returns notes to print; `upstream` names the stages submitted before it in the same chain.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from s1.errors import ConfigError
from s1.eval.checks import check_eval_config
from s1.eval.methods import expand_methods
from s1.stages import Upstream
from s1.train.batch import nproc_per_node
from s1.train.format import is_hub_id
from s1.train.launch import build_launch_command, check_train_config, render_command
from s1.train.memory import GPU_MARGIN, KNOWN_MODELS, gpu_limit, plan_memory


def check_curate(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    return []   # its sources are read and validated when it starts (s1/curate/sources.py)


def check_train(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    check_train_config(cfg)  # global batch = micro x processes x accumulation, block <= context, paths
    return check_memory(cfg)


def check_memory(cfg: DictConfig) -> list[str]:
    """The training engineer's memory planner must say the plan fits the GPUs asked for."""
    if int(cfg.cluster.gpus_per_node) == 0:
        return ["memory plan: skipped (cluster.gpus_per_node=0, CPU job)"]
    plan = plan_memory(cfg)
    if not plan.fits:
        raise ConfigError("cluster.gpus_per_node", cfg.cluster.gpus_per_node,
                          f"the training plan needs {plan.per_gpu_gib:.0f} GiB per GPU, more than the "
                          f"{gpu_limit(cfg.cluster.gpu_memory_gib):.1f} GiB it may use ({cfg.cluster.gpu_memory_gib:g} "
                          f"less the {GPU_MARGIN:.0%} margin): {'; or '.join(plan.suggestions)}\n{plan.table()}")
    return [f"memory plan: {plan.per_gpu_gib:.1f} of {cfg.cluster.gpu_memory_gib:g} GiB per GPU"]


def check_eval(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> list[str]:
    try:  # backend, budgets, benchmarks; the model may be the train job's, not there yet
        check_eval_config(cfg)
    except ConfigError as e:
        if not (e.key == "eval.model_path" and "train" in upstream):
            raise
    return []


def train_launch(cfg: DictConfig, python: str) -> str:
    """The per-node launch line on Slurm: torchrun running s1.train.sft on the resolved config that
    build_launch_command writes to ${train.output_dir}/config.yaml (the same command cluster=local runs)."""
    cmd = build_launch_command(cfg, nnodes=int(cfg.cluster.nodes), nproc_per_node=nproc_per_node(cfg),
                               node_rank="$SLURM_NODEID", master_addr="$MASTER_ADDR", master_port="$MASTER_PORT")
    if cmd and cmd[0] == sys.executable:  # cluster.python: the interpreter the job's setup lines provide
        cmd = [python, *cmd[1:]]
    return render_command(cmd)


def is_remote(upstream: Upstream, value: str) -> bool:
    """The upstream value names no local path (a hub id where the stage accepts one)."""
    return upstream.hub_ok and is_hub_id(value)


CHECKS: dict[str, Callable[[DictConfig, tuple[str, ...]], list[str]]] = {
    "curate": check_curate, "train": check_train, "eval": check_eval}
LAUNCH: dict[str, Callable[[DictConfig, str], str]] = {"train": train_launch}   # stages with Stage.launched


# ---- What a stage needs from the machines it runs on (read by the preflight, s1/cluster/preflight.py) ----

GPQA_HUB = "Idavidrein/gpqa"                        # gated: accept its terms on the hub, then HF_TOKEN
HUB_DATASETS = {"livecodebench": "livecodebench/code_generation_lite", "aime_2022_2023": "AI-MO/aimo-validation-aime",
                "gpqa_diamond": GPQA_HUB, "gpqa": GPQA_HUB}   # decontam / eval sets read from the hub
HUB_LOAD_ARGS = {GPQA_HUB: {"name": "gpqa_diamond", "split": "train"},      # as s1/data/benchmarks.py, decontam.py
                 "livecodebench/code_generation_lite": {"data_files": ["test.jsonl", "test2.jsonl", "test3.jsonl",
                                                                       "test4.jsonl"], "split": "train"}}
POOL_59K = ("simplescaling/data_ablation_full59K", 51_581)    # (hub id, questions left after the quality filter, paper)
BENCHMARK_SIZES = {"aime24": 30, "math500": 500, "gpqa_diamond": 198, "gpqa": 198}
# vLLM generation throughput per GPU (prompt + output tokens/s, batched, bfloat16) for a 32B dense Qwen on an A100
# (docs/scale-out.md, source (A)); other sizes scale by parameters, float32 halves it. An estimate, not a measurement.
TOKENS_PER_S_32B = 1731.0
ASSUMED_ANSWER_TOKENS = 1500                        # mean reference answer / sampled answer (docs/scale-out.md)
PAPER_TRAIN = (26 * 60, 16, 5.0, 1000)              # paper: 26 min on 16 H100, 5 epochs of 1,000 samples, 32B


@dataclass
class Needs:
    """What one stage's job needs besides its config: checked before anything is queued."""

    cuda: bool = False                                            # the job's torch must be a CUDA build
    modules: list[tuple[str, str]] = field(default_factory=list)  # (config key that asks for it, module): vllm, deepspeed
    endpoints: list[tuple[str, str]] = field(default_factory=list)  # (config prefix of the endpoint, key that uses it)
    gated: list[tuple[str, str]] = field(default_factory=list)    # (config key, gated hub dataset) read with a token
    hub: list[tuple[str, str, str]] = field(default_factory=list)  # (config key, hub id, "model" | "dataset")
    load_args: dict[str, dict] = field(default_factory=dict)      # hub data set -> the load_dataset arguments the stage uses
    estimate: tuple[float, str] | None = None                     # (seconds for the job, how it was derived)


def _hub_model(needs: Needs, key: str, name: str | None) -> None:
    if name and is_hub_id(name) and not Path(name).exists():
        needs.hub.append((key, str(name), "model"))


def _benchmark_sets(needs: Needs, key: str, names, benchmarks_dir: str) -> None:
    for name in names:
        hub = HUB_DATASETS.get(name)
        if hub == GPQA_HUB and (Path(benchmarks_dir) / "gpqa_diamond.csv").is_file():
            continue   # the local CSV is read instead (s1/data/benchmarks.py)
        if hub:
            needs.hub.append((key, hub, "dataset"))
            needs.load_args[hub] = HUB_LOAD_ARGS.get(hub, {"split": "train"})
            if hub == GPQA_HUB:
                needs.gated.append((key, GPQA_HUB))


def _params(name: str) -> int | None:
    shape = KNOWN_MODELS.get(name)
    return shape.params if shape else None


def _rate(params: int, dtype: str | None) -> float:
    """Tokens/s per GPU for a model of `params` parameters (see TOKENS_PER_S_32B)."""
    rate = TOKENS_PER_S_32B * KNOWN_MODELS["Qwen/Qwen2.5-32B-Instruct"].params / params
    return rate / 2 if dtype == "float32" else rate


def needs_curate(cfg: DictConfig) -> Needs:
    c, d = cfg.curate, cfg.curate.difficulty
    needs = Needs(cuda=int(cfg.cluster.gpus_per_node) > 0 and d.enabled and d.backend != "openai")
    if d.enabled and d.backend == "vllm":
        needs.modules.append(("curate.difficulty.backend", "vllm"))
    if c.traces.serve_model and c.traces.serve_backend == "vllm":
        needs.modules.append(("curate.traces.serve_backend", "vllm"))
    uses = [key for key, on in (("curate.difficulty.grader", d.enabled and d.grader == "llm_judge"),
                                ("curate.domains.method", c.domains.method == "llm"),
                                ("curate.domains.fallback", c.domains.fallback == "llm"),
                                ("curate.traces.enabled", c.traces.enabled)) if on]
    if uses and not c.traces.serve_model:   # serve_model: the job serves its own endpoint
        needs.endpoints += [("curate.traces", key) for key in uses]
    for i, src in enumerate(c.sources):
        if src.kind == "hub":
            needs.hub.append((f"curate.sources.{i}.name", str(src.name), "dataset"))
            needs.load_args[str(src.name)] = {"split": src.split, "name": src.subset, "revision": src.revision}
    if d.enabled and d.backend != "openai":
        for i, m in enumerate(d.reference_models or [cfg.model.name_or_path]):
            _hub_model(needs, f"curate.difficulty.reference_models.{i}", m)
    _benchmark_sets(needs, "curate.decontam.benchmarks", c.decontam.benchmarks, cfg.paths.benchmarks_dir)
    questions = [POOL_59K[1] if s.kind == "hub" and s.name == POOL_59K[0] and not s.size else s.size for s in c.sources]
    params = [_params(m) for m in d.reference_models]
    gpus = int(d.engine.tensor_parallel_size) * max(1, int(cfg.cluster.shards))   # a job's share: one shard's GPUs
    if needs.cuda and d.backend == "vllm" and questions and all(questions) and params and all(params) and gpus:
        n = sum(questions)
        seconds = sum(n * ASSUMED_ANSWER_TOKENS / _rate(p, d.engine.dtype) for p in params) / gpus
        needs.estimate = (seconds, f"{n:,} questions x {ASSUMED_ANSWER_TOKENS:,} tokens per answer x "
                          f"{len(params)} reference models at docs/scale-out.md's vLLM rate (A), over {gpus} GPUs; "
                          "judge calls not counted")
    return needs


def needs_train(cfg: DictConfig) -> Needs:
    gpus = int(cfg.cluster.gpus_per_node) * int(cfg.cluster.nodes)
    needs = Needs(cuda=gpus > 0)
    if cfg.train.deepspeed:
        needs.modules.append(("train.deepspeed", "deepspeed"))
    _hub_model(needs, "model.name_or_path", cfg.model.name_or_path)
    if is_hub_id(cfg.train.dataset) and not Path(cfg.train.dataset).exists():
        needs.hub.append(("train.dataset", str(cfg.train.dataset), "dataset"))
        needs.load_args[str(cfg.train.dataset)] = {"split": cfg.train.dataset_split, "revision": cfg.train.dataset_revision}
    params = _params(cfg.model.name_or_path)
    if gpus and params:
        seconds, paper_gpus, paper_epochs, paper_samples = PAPER_TRAIN
        samples = int(cfg.curate.diversity.num_samples)
        seconds *= (paper_gpus / gpus) * (float(cfg.train.epochs) / paper_epochs) * (samples / paper_samples) \
            * params / KNOWN_MODELS["Qwen/Qwen2.5-32B-Instruct"].params
        needs.estimate = (seconds, f"the paper's 26 min on 16 H100s for 5 epochs of 1,000 samples of the 32B, scaled "
                          f"to {gpus} GPUs, {cfg.train.epochs:g} epochs, {samples} samples and the model's size; "
                          "checkpoint writes not counted")
    return needs


def needs_eval(cfg: DictConfig, upstream: tuple[str, ...] = ()) -> Needs:
    e = cfg.eval
    needs = Needs(cuda=int(cfg.cluster.gpus_per_node) > 0 and e.backend != "openai")
    if e.backend == "vllm":
        needs.modules.append(("eval.backend", "vllm"))
    if e.backend == "openai":
        needs.endpoints.append(("eval", "eval.backend"))
    _hub_model(needs, "eval.model_path", e.model_path)   # a hub id (simplescaling/s1-32B); the train job's dir is none
    if e.include_base_model or e.majority_model == "base":
        _hub_model(needs, "model.name_or_path", cfg.model.name_or_path)
    _benchmark_sets(needs, "eval.benchmarks", e.benchmarks, cfg.paths.benchmarks_dir)
    sizes = [BENCHMARK_SIZES.get(b) for b in e.benchmarks]
    params = _params(cfg.model.name_or_path)
    gpus = int(e.engine.tensor_parallel_size) * max(1, int(cfg.cluster.shards))   # a job's share: one shard's GPUs
    if needs.cuda and e.backend == "vllm" and all(sizes) and params and gpus:
        q = sum(min(s, e.limit) if e.limit else s for s in sizes)
        per_q = {"no_bf": e.max_new_tokens, "auto": e.max_new_tokens, "bf": sum(b or e.max_new_tokens for b in e.budgets),
                 "wait": len(e.wait_counts) * e.max_new_tokens,
                 "majority": max(e.majority_k, default=0) * ASSUMED_ANSWER_TOKENS}
        counted = [m for m in expand_methods(e.methods) if m in per_q]   # `all` expanded
        base = e.max_new_tokens if e.include_base_model else 0   # the base model's plain row (Table 1)
        tokens = q * (sum(per_q[m] for m in counted) + base)
        seconds = tokens / _rate(params, e.dtype or cfg.model.dtype) / gpus
        needs.estimate = (seconds, f"an upper bound: {q} questions x the caps of {', '.join(counted)}"
                          f"{' and the base model' if base else ''} "
                          f"({tokens / 1e6:.0f}M tokens) at docs/scale-out.md's vLLM rate (A), over {gpus} GPUs; "
                          "other methods not counted")
    return needs


NEEDS: dict[str, Callable[..., Needs]] = {"curate": needs_curate, "train": needs_train, "eval": needs_eval}


def stage_needs(cfg: DictConfig, stage: str, upstream: tuple[str, ...] = ()) -> Needs:
    """What the stage's job needs from the machines; a stage with no NEEDS entry needs nothing checked."""
    if stage == "eval":
        return needs_eval(cfg, upstream)
    return NEEDS[stage](cfg) if stage in NEEDS else Needs()
