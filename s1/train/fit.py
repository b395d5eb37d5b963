"""train.fit=auto: the first setup that fits the rig, in the order a user would accept, and the table of what was
considered (each memory term per GPU, s1/train/memory.py).

Order: full fine-tune ZeRO-3 → + CPU offload of the optimizer (ZeRO-Offload) → LoRA → QLoRA → full with the
weights offloaded too (last: every layer then crosses PCIe three times a step), all at the recipe's block size;
only when none fits, the same order at shorter blocks (1,024 tokens at a time). An option fits with a margin: at
most 90% of the GPU (memory.GPU_MARGIN) and, with cluster.host_memory_gib set, at most 90% of the node's RAM
(HOST_MARGIN) for DeepSpeed's estimate of the offloaded states plus each process's host reserve. Short
blocks cut long traces: the s1 maintainers found ~20K tokens the least that keeps accuracy (12K "pretty bad").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

from omegaconf import DictConfig

from s1.runtime import ConfigError
from s1.train.memory import (
    GPU_MARGIN,
    HOST_MARGIN,
    QWEN25,
    ModelShape,
    Setup,
    estimate_gib,
    gpu_limit,
    host_gib,
    setup_from_config,
    shape_of,
)

SHORT_BLOCK = 20_000  # tokens: below this the s1 maintainers saw accuracy drop (12K: "pretty bad")
BLOCK_STEP = 1024


@dataclass(frozen=True)
class Option:
    setup: Setup
    parts: dict[str, float]
    gpu_memory_gib: float
    host_gib: float = 0.0                 # one node's host memory for this option (host_gib), GiB
    host_memory_gib: float | None = None  # the node's RAM, GiB; None = not checked

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def gpu_free(self) -> float:
        """The GPU's share left free, 0-1 (the margin asks for GPU_MARGIN)."""
        return 1 - self.total / self.gpu_memory_gib

    @property
    def fits(self) -> bool:
        host_ok = self.host_memory_gib is None or self.host_gib <= (1 - HOST_MARGIN) * self.host_memory_gib
        return self.total <= gpu_limit(self.gpu_memory_gib) and host_ok


def candidates(base: Setup) -> list[Setup]:
    """The ladder: full ZeRO-3, + offload optimizer, LoRA, QLoRA, full with optimizer and weights offloaded."""
    z3 = replace(base, zero_stage=3, strategy="DeepSpeed ZeRO-3", offload_optimizer=False, offload_params=False)
    return [replace(z3, peft="none"), replace(z3, peft="none", offload_optimizer=True),
            replace(z3, peft="lora"), replace(z3, peft="qlora"),
            replace(z3, peft="none", offload_optimizer=True, offload_params=True)]


def option(shape: ModelShape, s: Setup, gpu_gib: float, per_node: int, host_memory_gib: float | None) -> Option:
    return Option(s, estimate_gib(shape, s), gpu_gib, host_gib(shape, s, per_node), host_memory_gib)


def choose(shape: ModelShape, base: Setup, gpu_gib: float, per_node: int = 1,
           host_memory_gib: float | None = None) -> tuple[Option | None, list[Option]]:
    """(the chosen option or None, every option considered, in order)."""
    considered = [option(shape, s, gpu_gib, per_node, host_memory_gib) for s in candidates(base)]
    for o in considered:
        if o.fits:
            return o, considered
    for block in range(base.seq_len - BLOCK_STEP, BLOCK_STEP - 1, -BLOCK_STEP):
        for s in candidates(replace(base, seq_len=block)):
            o = option(shape, s, gpu_gib, per_node, host_memory_gib)
            if o.fits:
                considered.append(o)
                return o, considered
    return None, considered


SHORT_NAMES = {"weights": "weights", "gradients": "grads", "optimizer (fp32 master + Adam)": "optimizer",
               "adapter (weights + grads + Adam)": "adapter", "dequantized matrix (QLoRA)": "dequant",
               "gathered layers (ZeRO-3)": "gathered", "activations": "activations",
               "loss (fused LM head)": "loss", "overhead (context, fragmentation)": "overhead"}


def fit_table(model: str, gpus: int, gpu_gib: float, considered: list[Option], chosen: Option | None) -> str:
    """Markdown: one row per option, each memory term per GPU in GiB, the total, the GPU left free and the verdict."""
    head = (f"Fit plan: {model} on {gpus} GPU{'s' if gpus > 1 else ''} × {gpu_gib:g} GiB (per GPU, GiB; fits at "
            f"most {gpu_limit(gpu_gib):.1f} GiB: a {GPU_MARGIN:.0%} margin)")
    cols = list(SHORT_NAMES)
    rows = [head, "", "| setup | block | " + " | ".join(SHORT_NAMES[c] for c in cols) + " | total | free | host/node | |",
            "|---|---:|" + "---:|" * len(cols) + "---:|---:|---:|---|"]
    for o in considered:
        verdict = "**chosen**" if o is chosen else ("fits" if o.fits else "does not fit")
        rows.append(f"| {o.setup.describe()} | {o.setup.seq_len:,} | "
                    + " | ".join(f"{o.parts[c]:.1f}" if c in o.parts else "-" for c in cols)
                    + f" | {o.total:.1f} | {max(o.gpu_free, 0):.0%} | {o.host_gib:.0f} | {verdict} |")
    host = considered[0].host_memory_gib
    rows += ["", "free: the GPU's share left free. host/node: one node's RAM (GiB) for DeepSpeed's estimate of the "
             "offloaded states (× 1.5 buffers) and each process's reserve, "
             + (f"checked against 90% of cluster.host_memory_gib={host:g}" if host is not None
                else "not checked: set cluster.host_memory_gib")]
    if chosen is None:
        rows += ["", "Nothing fits, not even at a 1,024-token block: more GPUs, larger GPUs or a smaller model."]
    elif chosen.setup.seq_len < SHORT_BLOCK:
        rows += ["", f"Warning: block {chosen.setup.seq_len:,} tokens. Traces longer than the block are cut; the s1 "
                 "maintainers found ~20K tokens the least that keeps accuracy (12K was \"pretty bad\")."]
    return "\n".join(rows)


def fit_config(cfg: DictConfig) -> tuple[DictConfig, str]:
    """train.fit=auto: the config with the chosen setup switched in, and the table to print."""
    if not cfg.cluster.gpus_per_node:
        raise ConfigError("train.fit", "auto", "plans GPUs: set cluster.gpus_per_node, cluster.nodes and "
                          "cluster.gpu_memory_gib for the rig (on a CPU, train without train.fit)")
    shape = shape_of(cfg)
    gpu_gib = float(cfg.cluster.gpu_memory_gib)
    base = setup_from_config(cfg)
    host = cfg.cluster.get("host_memory_gib")
    chosen, considered = choose(shape, base, gpu_gib, cfg.cluster.gpus_per_node, None if host is None else float(host))
    table = fit_table(cfg.model.name_or_path, base.gpus, gpu_gib, considered, chosen)
    if chosen is None:
        raise ConfigError("train.fit", "auto", f"nothing fits {base.gpus} × {gpu_gib:g} GiB:\n{table}")
    out = copy.deepcopy(cfg)
    s, t = chosen.setup, out.train
    t.peft, t.block_size = s.peft, s.seq_len
    t.offload_optimizer, t.offload_params = s.offload_optimizer, s.offload_params
    if not t.deepspeed:  # every option is ZeRO-3
        t.deepspeed, t.fsdp = f"{cfg.paths.repo}/configs/deepspeed/zero3.json", None
    return out, table


RIGS = [(1, 24, 64), (4, 24, 128), (8, 40, 512), (1, 80, 128), (8, 80, 1024), (8, 80, 256)]  # GPUs, GiB each, RAM GiB


def paper_setup(gpus: int, block: int) -> Setup:
    """The paper's training setup on `gpus` GPUs: full fine-tune, ZeRO-3, micro batch 1, bf16, checkpointing."""
    return Setup(block, 1, gpus, 3, False, False, True, True, "DeepSpeed ZeRO-3")


def rig_choices(rigs, block: int):
    """(size, rig, train.fit=auto's option or None) for each Qwen2.5 size on each rig, from paper_setup."""
    for size, shape in QWEN25.items():
        for gpus, gb, host in rigs:
            yield size, (gpus, gb, host), choose(shape, paper_setup(gpus, block), gb, gpus, host)[0]


def rig_table(rigs=RIGS, block: int = 32768) -> str:
    """docs/gpus.md's "What fits" table: each Qwen2.5 size on each rig, train.fit=auto's choice from a full fine-tune
    at `block` tokens (python -m s1.train.fit prints it)."""
    rows = ["| model | GPUs × GiB (RAM GiB) | chosen | block | per GPU GiB | GPU free | host RAM GiB | RAM free |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    for size, (gpus, gb, host), o in rig_choices(rigs, block):
        rows.append(f"| {size} | {gpus} × {gb} ({host}) | " + (
            f"{o.setup.describe().replace(', DeepSpeed ZeRO-3', '')} | {o.setup.seq_len:,}"
            f"{' (short)' if o.setup.seq_len < SHORT_BLOCK else ''} | {o.total:.1f} | {o.gpu_free:.0%} | "
            f"{o.host_gib:.0f} | {1 - o.host_gib / host:.0%} |" if o else "nothing fits | - | - | - | - | - |"))
    return "\n".join(rows)


def short_method(s: Setup) -> str:
    if s.peft != "none":
        return {"lora": "LoRA", "qlora": "QLoRA"}[s.peft]
    return "full" + (" + offload all" if s.offload_params else " + offload opt." if s.offload_optimizer else "")


def rig_grid(rigs=RIGS, block: int = 32768) -> str:
    """The README's "What fits" table: a row per Qwen2.5 size, a column per rig; each cell is train.fit=auto's choice
    from a full fine-tune at `block` tokens (method, block in K = 1,024 tokens, per-GPU GiB and the share of the GPU
    left free), as in rig_table."""
    cells: dict[str, list[str]] = {}
    for size, _, o in rig_choices(rigs, block):
        cells.setdefault(size, []).append(f"{short_method(o.setup)}, {o.setup.seq_len // 1024}K"
                                          f"{' (short)' if o.setup.seq_len < SHORT_BLOCK else ''}, {o.total:.1f} GiB "
                                          f"({o.gpu_free:.0%} free)" if o else "nothing fits")
    head = ["| model | " + " | ".join(f"{g} × {gb} GiB ({host} GiB RAM)" for g, gb, host in rigs) + " |",
            "|---|" + "---|" * len(rigs)]
    return "\n".join(head + [f"| {size} | " + " | ".join(c) + " |" for size, c in cells.items()])


def largest_block(shape: ModelShape, s: Setup, gpu_gib: float, block: int = 32768) -> Option | None:
    """The option at the longest block (a multiple of 1,024 up to `block`) that fits, or None."""
    for b in range(block, BLOCK_STEP - 1, -BLOCK_STEP):
        o = Option(replace(s, seq_len=b), estimate_gib(shape, replace(s, seq_len=b)), gpu_gib)
        if o.fits:
            return o
    return None


def method_table(rigs=RIGS, block: int = 32768) -> str:
    """Per rig and size: the longest block each of full (ZeRO-3, nothing offloaded), LoRA and QLoRA affords."""
    rows = ["| model | GPUs × GiB | full (ZeRO-3) | LoRA r=16 | QLoRA r=16 |", "|---|---|---|---|---|"]
    seen = set()
    for size, shape in QWEN25.items():
        for gpus, gb, _ in rigs:
            if (size, gpus, gb) in seen:
                continue
            seen.add((size, gpus, gb))
            base = paper_setup(gpus, block)
            cells = []
            for peft in ("none", "lora", "qlora"):
                o = largest_block(shape, replace(base, peft=peft), gb, block)
                cells.append(f"{o.setup.seq_len:,} tokens, {o.total:.1f} GiB" + (" (short)" if o.setup.seq_len
                             < SHORT_BLOCK else "") if o else "does not fit")
            rows.append(f"| {size} | {gpus} × {gb} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(rig_grid())
    print()
    print(rig_table())
    print()
    print(method_table())
