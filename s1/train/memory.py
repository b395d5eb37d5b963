"""Per-GPU memory of an SFT run, estimated before anything is launched: does this plan fit, with a margin?

Per GPU, for N parameters over W GPUs, sequences of s tokens (the block size: the worst case),
hidden size h, L layers (the ZeRO paper's accounting, mixed precision), all in GiB (2**30 bytes):
  model states   bf16 weights 2N + fp32 gradients 4N (bf16 gradients are reduced into fp32 partitions for the
                 optimizer) + fp32 master, Adam m, v 12N = 18N, DeepSpeed's own per-parameter count
                 (estimate_zero3_model_states_mem_needs); ZeRO-1/2/3 shard optimizer + fp32 gradients / + the bf16
                 gradient buffer (kept whole by ZeRO-1/2) / + weights over W; CPU offload moves the optimizer and
                 fp32 gradients (and the weights) to the host
  gathered       ZeRO-3 gathers a block at a time (two with prefetch) plus the largest single layer (the vocab ×
                 hidden embedding / LM head) twice: at least DeepSpeed's 4 bytes × largest layer
  activations    checkpointing keeps each block's input, L·s·h, plus one block recomputed in backward: both norms
                 (fp32 input and output: Qwen2RMSNorm computes in fp32), q, k, v, the rotated q and k, attention
                 output, o_proj, residual, the MLP's intermediates, down_proj
  loss           TRL's fused LM head (trl/kernels/chunked_logprob.py; SFTTrainer always takes it for our config):
                 4,096-token × 32,768-vocab fp32 tiles, the fp32 gradient of the hidden states and, when the LM
                 head trains (full fine-tune), the fp32 gradient of the whole vocab × hidden weight
  overhead       CUDA context and communication buffers (3 GiB) and allocator fragmentation (10%)
Host memory per node (host_gib): what ZeRO-3 offload keeps there, DeepSpeed's estimate with zero.Init (sft.py builds
the DeepSpeed TrainingArguments before loading the model): 18N (weights + optimizer) or 16N (optimizer) per node ×
1.5 (its additional_buffer_factor: pinned staging buffers), or without offload 4 bytes × largest layer per process
× 1.5; plus HOST_RESERVE_GIB per process (Python, torch, the CUDA runtime, tokenizer and data).
A setup fits only with a margin: its total at most (1 - GPU_MARGIN) of the GPU and (1 - HOST_MARGIN) of the host.
LoRA (train.peft=lora): the base is frozen (weights only, sharded like the full model's; no gradients, no Adam)
and A adapter parameters (r · (in + out) per targeted linear layer) carry weights + gradients + master + Adam,
16 bytes each in bf16 (TRL keeps them in the base dtype). QLoRA: the blocks' linear weights in 4-bit NF4
(0.5 byte + double-quantized constants, 0.127 bit per weight), embeddings / norms / biases in bf16, plus one
block's largest matrix dequantized for its matmul. Memory savers: paged 8-bit AdamW keeps m, v in 1 byte each;
Liger's SwiGLU keeps 2 of the MLP's 4 intermediate tensors; eager attention materialises the s×s scores and
probabilities of each head (sdpa / FlashAttention-2 never do); padding-free batches change nothing at micro
batch 1 (the planner's worst case is a full block per sequence).
The model states and host memory are at least DeepSpeed's estimator's (tests/test_train_memory.py); the total is
checked against measured CPU peaks (bench/peak_memory.py --peft) and, when a GPU is lent, bench/gpu_check.sh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from omegaconf import DictConfig

from s1.runtime import ConfigError
from s1.train.batch import world_size
from s1.train.hardware import cpu_bf16_decision, detect

GIB = 2**30
CONTEXT_GIB = 3.0          # CUDA context + NCCL buffers
FRAGMENTATION = 0.10       # allocator slack on top of live tensors
LOSS_TILE_GIB = 0.5        # TRL fused LM head: 4,096-token × 32,768-vocab tiles, fp32
GPU_MARGIN = 0.10          # a setup fits when its estimate is at most 90% of the GPU
HOST_MARGIN = 0.10         # ... and its host memory at most 90% of the node's RAM
HOST_BUFFER = 1.5          # DeepSpeed's additional_buffer_factor on offloaded states (pinned staging buffers)
HOST_RESERVE_GIB = 4.0     # host RAM per training process: Python, torch, CUDA runtime, tokenizer, data
NF4_BYTES = 0.5 + 0.127 / 8  # 4-bit weight + double-quantized absmax (8 bit per 64 weights, fp32 per 256 blocks)
OPTIM_BYTES = {("adamw_torch", True): 12, ("adamw_torch", False): 8,  # (optim, bf16): fp32 master (bf16 only) + m, v
               ("paged_adamw_8bit", True): 6, ("paged_adamw_8bit", False): 2}


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool

    @property
    def layer_params(self) -> int:
        kv = self.hidden // self.heads * self.kv_heads
        attn = 2 * self.hidden * self.hidden + 2 * self.hidden * kv + self.hidden + 2 * kv  # q, o, k, v + biases
        return attn + 3 * self.hidden * self.intermediate + 2 * self.hidden  # gate/up/down + 2 norms

    @property
    def layer_linear_params(self) -> int:
        """Weights of the 7 linear layers of one block (what QLoRA quantizes; biases and norms stay)."""
        kv = self.hidden // self.heads * self.kv_heads
        return 2 * self.hidden * self.hidden + 2 * self.hidden * kv + 3 * self.hidden * self.intermediate

    @property
    def params(self) -> int:
        embed = self.vocab * self.hidden
        return embed * (1 if self.tied else 2) + self.layers * self.layer_params + self.hidden

    def flops_per_token(self, seq_len: float) -> float:
        """Training FLOPs per token: 6 × matmul parameters + causal attention (6·L·h·s); recompute not counted."""
        matmul = self.params - (0 if self.tied else self.vocab * self.hidden)  # input embedding is a lookup
        return 6 * matmul + 6 * self.layers * self.hidden * seq_len


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# Shapes of the models the configs name (from their config.json), so planning needs no download.
# (hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, intermediate_size, vocab_size,
# tie_word_embeddings) of Qwen/Qwen2.5-*-Instruct; data/README.md cites them.
QWEN25_32B = ModelShape(5120, 64, 40, 8, 27648, 152064, tied=False)
QWEN25 = {
    "0.5B": ModelShape(896, 24, 14, 2, 4864, 151936, tied=True),
    "1.5B": ModelShape(1536, 28, 12, 2, 8960, 151936, tied=True),
    "3B": ModelShape(2048, 36, 16, 2, 11008, 151936, tied=True),
    "7B": ModelShape(3584, 28, 28, 4, 18944, 152064, tied=False),
    "14B": ModelShape(5120, 48, 40, 8, 13824, 152064, tied=False),
    "32B": QWEN25_32B,
}
KNOWN_MODELS = {f"Qwen/Qwen2.5-{size}-Instruct": shape for size, shape in QWEN25.items()} | {
    "simplescaling/s1-32B": QWEN25_32B,
    "simplescaling/s1.1-32B": QWEN25_32B,
}


def lora_parameters(m: ModelShape, r: int, targets: tuple[str, ...] | list[str] = LORA_TARGETS) -> int:
    """Adapter parameters: r · (in + out) for each targeted linear layer of each block."""
    kv = m.hidden // m.heads * m.kv_heads
    sizes = {"q_proj": (m.hidden, m.hidden), "k_proj": (m.hidden, kv), "v_proj": (m.hidden, kv),
             "o_proj": (m.hidden, m.hidden), "gate_proj": (m.hidden, m.intermediate),
             "up_proj": (m.hidden, m.intermediate), "down_proj": (m.intermediate, m.hidden)}
    return m.layers * sum(r * sum(sizes[t]) for t in targets)


def shape_from_config(c: dict) -> ModelShape:
    return ModelShape(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
                      c.get("num_key_value_heads") or c["num_attention_heads"], c["intermediate_size"],
                      c["vocab_size"], bool(c.get("tie_word_embeddings", False)))


def shape_of(cfg: DictConfig) -> ModelShape:
    """model.shape from the model file, else model_shape(model.name_or_path)."""
    shape = cfg.model.get("shape")
    return shape_from_config(dict(shape)) if shape else model_shape(cfg.model.name_or_path)


def model_shape(name_or_path: str) -> ModelShape:
    """From a local config.json, the table above, or the hub's config.json."""
    local = Path(name_or_path) / "config.json"
    if local.is_file():
        return shape_from_config(json.loads(local.read_text()))
    if name_or_path in KNOWN_MODELS:
        return KNOWN_MODELS[name_or_path]
    try:
        from transformers import AutoConfig

        return shape_from_config(AutoConfig.from_pretrained(name_or_path).to_dict())
    except Exception as e:  # noqa: BLE001  (offline, unknown name, not a decoder config)
        raise ConfigError("model.name_or_path", name_or_path,
                          f"the memory planner needs its config.json ({type(e).__name__}): download the model "
                          "folder, or add its shape to KNOWN_MODELS in s1/train/memory.py") from None


@dataclass(frozen=True)
class Setup:
    """What the estimate depends on besides the model."""
    seq_len: int
    micro_batch: int
    gpus: int
    zero_stage: int              # 0 = plain data parallel; FSDP full_shard counts as 3
    offload_optimizer: bool
    offload_params: bool
    bf16: bool
    checkpointing: bool
    strategy: str                # for the table: "DeepSpeed ZeRO-3", "FSDP full_shard", "DDP"
    peft: str = "none"           # none | lora | qlora
    lora_r: int = 16
    lora_targets: tuple[str, ...] = LORA_TARGETS
    optim: str = "adamw_torch"   # adamw_torch | paged_adamw_8bit
    liger: bool = False
    attention: str = "sdpa"      # sdpa | flash_attention_2 | eager

    def describe(self) -> str:
        """One label: method, sharding, offload."""
        method = {"none": "full", "lora": f"LoRA r={self.lora_r}", "qlora": f"QLoRA r={self.lora_r}"}[self.peft]
        off = " + offload " + ("optimizer + weights" if self.offload_params else "optimizer") \
            if self.offload_optimizer or self.offload_params else ""
        return f"{method}, {self.strategy}{off}"


def largest_layer_params(m: ModelShape) -> int:
    """The largest single module's parameters (as DeepSpeed counts a "layer"): the embedding, or an MLP matrix."""
    return max(m.vocab * m.hidden, m.hidden * m.intermediate)


def estimate_gib(m: ModelShape, s: Setup, context_gib: float = CONTEXT_GIB) -> dict[str, float]:
    """Per-GPU memory by component, GiB (the PEFT rows only for train.peft=lora|qlora). context_gib: the device's
    fixed cost (the CUDA context; a CPU run passes HOST_RESERVE_GIB, the process's own)."""
    n, w = m.params, s.gpus
    wbytes = 2 if s.bf16 else 4
    quantized = m.layers * m.layer_linear_params if s.peft == "qlora" else 0
    weights = quantized * NF4_BYTES + (n - quantized) * wbytes
    full = s.peft == "none"
    optim = OPTIM_BYTES[s.optim, s.bf16] * n if full else 0
    if not full:
        grads = 0
    elif s.zero_stage == 0:
        grads = wbytes * n
    else:  # fp32 partitions, sharded; ZeRO-1/2 also keep the whole bf16 gradient buffer
        grads = 4 * n / w + (wbytes * n if s.bf16 and s.zero_stage < 3 else 0)
    if s.zero_stage >= 1:
        optim /= w
    if s.zero_stage >= 3:
        weights /= w
    if s.offload_optimizer:
        optim = 0
        grads = 0 if s.zero_stage >= 3 else grads
    if s.offload_params:
        weights = 0
    layer_bytes = m.layer_linear_params * NF4_BYTES + (m.layer_params - m.layer_linear_params) * wbytes \
        if s.peft == "qlora" else m.layer_params * wbytes
    gathered = 2 * layer_bytes + 2 * largest_layer_params(m) * wbytes if s.zero_stage >= 3 else 0
    tokens = s.micro_batch * s.seq_len
    kv = m.hidden // m.heads * m.kv_heads
    mlp = 2 if s.liger else 4  # gate, up (+ act(gate), product unless Liger's SwiGLU recomputes them)
    # norm out, q, rotated q, attention out, o_proj, residual, post-norm out, down_proj; k, v, rotated k; MLP;
    # the two RMSNorms' fp32 input and output
    one_layer = tokens * ((8 * m.hidden + 3 * kv + mlp * m.intermediate) * wbytes + 2 * 2 * m.hidden * 4)
    if s.attention == "eager":  # scores + probabilities, every head, s × s
        one_layer += 2 * s.micro_batch * m.heads * s.seq_len ** 2 * wbytes
    acts = (m.layers * tokens * m.hidden * wbytes + one_layer) if s.checkpointing else m.layers * one_layer
    # fp32 tiles + fp32 gradient of the hidden states (+ of the LM head weight when it trains)
    loss = LOSS_TILE_GIB * GIB + tokens * m.hidden * 4 + (m.vocab * m.hidden * 4 if full else 0)
    parts = {"weights": weights, "gradients": grads, "optimizer (fp32 master + Adam)": optim}
    if not full:
        adapter = lora_parameters(m, s.lora_r, s.lora_targets)
        parts["adapter (weights + grads + Adam)"] = adapter * (2 * wbytes + OPTIM_BYTES[s.optim, s.bf16])
    if s.peft == "qlora":  # one block's largest matrix dequantized for its matmul
        parts["dequantized matrix (QLoRA)"] = m.hidden * m.intermediate * wbytes
    parts |= {"gathered layers (ZeRO-3)": gathered, "activations": acts, "loss (fused LM head)": loss}
    parts = {k: v / GIB for k, v in parts.items()}
    parts["overhead (context, fragmentation)"] = context_gib + FRAGMENTATION * sum(parts.values())
    return parts


def host_gib(m: ModelShape, s: Setup, per_node: int) -> float:
    """Host RAM one node needs, GiB: DeepSpeed's ZeRO-3 estimate (zero.Init) of what offload keeps there, or of the
    staging of the largest layer without offload, and HOST_RESERVE_GIB per process."""
    nodes = max(1, s.gpus // max(per_node, 1))
    wbytes = 2 if s.bf16 else 4
    per_param = 0
    if s.offload_optimizer and s.peft == "none":
        per_param += OPTIM_BYTES[s.optim, s.bf16] + 4        # optimizer + fp32 gradient partitions
    if s.offload_params:
        per_param += wbytes
    states = m.params * per_param / nodes if per_param else largest_layer_params(m) * 4 * per_node
    return states * HOST_BUFFER / GIB + HOST_RESERVE_GIB * per_node


def cpu_estimate_gib(m: ModelShape, s: Setup) -> float:
    """A CPU training process's peak resident memory: the same terms, with the process's host reserve in place of
    the CUDA context (what bench/peak_memory.py --peft measures)."""
    return sum(estimate_gib(m, s, context_gib=HOST_RESERVE_GIB).values())


def gpu_limit(gpu_gib: float) -> float:
    """What a plan may use of a GPU of gpu_gib: the rest is the margin."""
    return (1 - GPU_MARGIN) * gpu_gib


@dataclass
class MemoryPlan:
    model: str
    params_b: float
    setup: Setup
    parts: dict[str, float]
    gpu_memory_gib: float
    suggestions: list[str] = field(default_factory=list)

    @property
    def per_gpu_gib(self) -> float:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        return self.per_gpu_gib <= gpu_limit(self.gpu_memory_gib)

    def table(self) -> str:
        s = self.setup
        head = (f"Memory plan: {self.model} ({self.params_b:.1f}B parameters), {s.seq_len:,} tokens × micro batch "
                f"{s.micro_batch}, {s.gpus} GPUs × {self.gpu_memory_gib:g} GiB, {s.describe()}, "
                f"{'bf16' if s.bf16 else 'fp32'}, gradient checkpointing {'on' if s.checkpointing else 'off'}, "
                f"{s.optim}, attention {s.attention}{', Liger' if s.liger else ''}")
        rows = [head, "", "| per GPU | GiB |", "|---|---:|"]
        rows += [f"| {k} | {v:.1f} |" for k, v in self.parts.items()]
        verdict = "fits" if self.fits else "DOES NOT FIT"
        rows.append(f"| **total** | **{self.per_gpu_gib:.1f}** of {gpu_limit(self.gpu_memory_gib):.1f} "
                    f"({self.gpu_memory_gib:g} less the {GPU_MARGIN:.0%} margin; {verdict}) |")
        if self.suggestions:
            rows += ["", "What would fit:"] + [f"- {x}" for x in self.suggestions]
        return "\n".join(rows)


def setup_from_config(cfg: DictConfig) -> Setup:
    t = cfg.train
    stage, off_opt, off_par, strategy = 0, False, False, "DDP"
    if t.deepspeed:
        ds = json.loads(Path(t.deepspeed).read_text()).get("zero_optimization", {})
        stage = int(ds.get("stage", 0))
        off_opt = ds.get("offload_optimizer", {}).get("device", "none") == "cpu" or bool(t.offload_optimizer)
        off_par = ds.get("offload_param", {}).get("device", "none") == "cpu" or bool(t.offload_params)
        strategy = f"DeepSpeed ZeRO-{stage}"
    elif t.fsdp:
        stage, strategy = 3, "FSDP full_shard"
    return Setup(t.block_size, t.micro_batch_size, world_size(cfg), stage, off_opt, off_par, planned_bf16(cfg),
                 bool(t.gradient_checkpointing), strategy, peft=t.peft, lora_r=t.lora.r,
                 lora_targets=tuple(t.lora.target_modules), optim=t.optim, liger=bool(t.liger),
                 attention=cfg.model.get("attn_implementation") or "sdpa")


def planned_bf16(cfg: DictConfig) -> bool:
    """train.bf16, or by the hardware (null): GPUs plan in bf16, a CPU as s1.train.hardware decides."""
    if cfg.train.bf16 is not None:
        return bool(cfg.train.bf16)
    if cfg.cluster.gpus_per_node:
        return True

    return cpu_bf16_decision(detect().cpu_flags)[0]


def plan_memory(cfg: DictConfig) -> MemoryPlan:
    """The plan for this config, with what would fit instead when it does not."""
    shape = shape_of(cfg)
    setup = setup_from_config(cfg)
    gpu_gib = float(cfg.cluster.gpu_memory_gib)
    plan = MemoryPlan(cfg.model.name_or_path, shape.params / 1e9, setup, estimate_gib(shape, setup), gpu_gib)
    if not plan.fits:
        plan.suggestions = what_fits(shape, setup, gpu_gib, max(cfg.cluster.gpus_per_node, 1))
    return plan


def what_fits(shape: ModelShape, setup: Setup, gpu_gib: float, per_node: int) -> list[str]:
    limit = gpu_limit(gpu_gib)

    def total(s: Setup) -> float:
        return sum(estimate_gib(shape, s).values())

    out = []
    for nodes in range(1, 65):
        gpus = nodes * per_node
        if gpus > setup.gpus and total(replace(setup, gpus=gpus, zero_stage=max(setup.zero_stage, 3))) <= limit:
            out.append(f"{gpus} GPUs ({nodes} nodes × {per_node}) with ZeRO-3: cluster.nodes={nodes}; "
                       "the global batch must stay a multiple of the GPU count")
            break
    offload = replace(setup, zero_stage=3, offload_optimizer=True, offload_params=True)
    if not (setup.offload_optimizer and setup.offload_params) and total(offload) <= limit:
        out.append(f"CPU offload of optimizer and weights ({total(offload):.0f} GiB per GPU, slower): "
                   "train.deepspeed=configs/deepspeed/zero3_offload.json")
    for block in range(setup.seq_len - 1024, 1023, -1024):
        if total(replace(setup, seq_len=block)) <= limit:
            out.append(f"a shorter block: train.block_size={block} (longer samples are truncated)")
            break
    if not setup.checkpointing and total(replace(setup, checkpointing=True)) <= limit:
        out.append("gradient checkpointing: train.gradient_checkpointing=true")
    return out or ["nothing simple: more GPUs with more memory, or a smaller model"]
