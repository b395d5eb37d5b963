"""What this machine can run, and the train switches it refuses: checked before any model or data is loaded.

A switch the hardware cannot use is a ConfigError naming it, never a silent no-op. The checks take a
`Hardware` description, so the rules are tested on flag sets, not only on the machine the tests run on.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from s1.runtime import ConfigError

log = logging.getLogger("s1")
PEFT_METHODS = ("none", "lora", "qlora")
OPTIMIZERS = ("adamw_torch", "paged_adamw_8bit")
ATTENTION = (None, "sdpa", "flash_attention_2", "eager")
FIT_MODES = ("off", "auto")


@dataclass(frozen=True)
class Hardware:
    cuda: bool                      # a CUDA GPU is visible
    cpu_flags: frozenset[str]       # /proc/cpuinfo flags
    gpu_bf16: bool = False          # the GPU computes bf16 (Ampere and later)
    bnb_4bit: bool = False          # bitsandbytes 4-bit NF4 runs forward + backward on this device
    bnb_4bit_error: str | None = None  # why not, when the probe ran: not installed, or the probe's exception
    liger: bool = False             # liger-kernel is installed
    flash_attn: bool = False        # flash-attn is installed


# A GPU node with every optional package: for plans (train.plan_only) and for jobs submitted elsewhere.
GPU_RIG = Hardware(cuda=True, cpu_flags=frozenset(), gpu_bf16=True, bnb_4bit=True, liger=True, flash_attn=True)


def read_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags line of /proc/cpuinfo (first CPU; all cores of one machine share it)."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_bf16_decision(flags: frozenset[str]) -> tuple[bool, str]:
    """Train in bf16 on this CPU? Only with AMX: its tile unit multiplies bf16 at several times the fp32 rate.

    AVX512-BF16 alone (vdpbf16ps, e.g. AMD EPYC Zen 4, or a VM that hides AMX) gives PyTorch no speed-up for bf16
    matmuls; an issue measured 684 s per optimizer step for the rehearsal's bf16 ZeRO-3 on an EPYC without AMX.
    Without either, bf16 is emulated.
    """
    if "amx_bf16" in flags and "amx_tile" in flags:
        return True, "bf16: this CPU has AMX (amx_bf16), which computes bf16 matmuls natively"
    if "avx512_bf16" in flags:
        return False, ("float32: this CPU has AVX512-BF16 but no AMX; bf16 training is no faster there than float32 "
                       "(measured 684 s per optimizer step for the rehearsal on such an EPYC)")
    return False, "float32: this CPU computes no bf16 natively (neither AMX nor AVX512-BF16)"


def four_bit_runs(device: str) -> tuple[bool, str | None]:
    """bitsandbytes NF4: quantize a small layer and run forward + backward on `device` (the real kernels).
    (runs, None) or (False, why): bitsandbytes missing, or the exception the probe raised (logged as a warning)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "bitsandbytes is not installed"
    try:
        import bitsandbytes as bnb
        import torch

        layer = bnb.nn.Linear4bit(64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(torch.randn(64, 64), requires_grad=False, quant_type="nf4")
        layer = layer.to(device)
        x = torch.randn(2, 64, device=device, requires_grad=True)
        layer(x).sum().backward()
        if x.grad is None or layer.weight.quant_state is None:
            return False, "the 4-bit layer ran but left no gradient or no quantization state"
        return True, None
    except Exception as e:  # noqa: BLE001  (no kernels for this device / build): reported, not swallowed
        why = f"{type(e).__name__}: {e}"
        log.warning("bitsandbytes 4-bit does not run on %s: %s", device, why)
        return False, why


@functools.lru_cache(maxsize=1)
def detect(probe_4bit: bool = False) -> Hardware:
    import torch

    cuda = torch.cuda.is_available()
    cpuinfo = Path("/proc/cpuinfo")
    flags = read_cpu_flags(cpuinfo.read_text()) if cpuinfo.is_file() else frozenset()
    found = lambda name: importlib.util.find_spec(name) is not None
    bnb_4bit, why = four_bit_runs("cuda" if cuda else "cpu") if probe_4bit else (False, None)
    return Hardware(cuda=cuda, cpu_flags=flags, gpu_bf16=cuda and torch.cuda.is_bf16_supported(),
                    bnb_4bit=bnb_4bit, bnb_4bit_error=why, liger=found("liger_kernel"), flash_attn=found("flash_attn"))


def resolve_bf16(setting: bool | None, hw: Hardware) -> tuple[bool, str]:
    """train.bf16 as it will run, and why. None: by the hardware."""
    if hw.cuda:
        if setting and not hw.gpu_bf16:
            raise ConfigError("train.bf16", setting, "this GPU computes no bf16 (pre-Ampere): use train.bf16=false")
        on = hw.gpu_bf16 if setting is None else bool(setting)
        return on, f"{'bf16' if on else 'float32'} on the GPU"
    native, why = cpu_bf16_decision(hw.cpu_flags)
    if setting is None or bool(setting) == native:
        return native, why
    # bf16 runs on any CPU (emulated where it is not native): as set, with the reason it may be slow
    return bool(setting), (f"{'bf16' if setting else 'float32'} as set (train.bf16={setting}); by the machine it "
                           f"would be {why}; train.bf16=null picks by the machine")


def check_switches(cfg: DictConfig, hw: Hardware) -> None:
    """Every memory saver / PEFT switch against this hardware; the first one it cannot use is an error."""
    t, m = cfg.train, cfg.model
    if t.peft not in PEFT_METHODS:
        raise ConfigError("train.peft", t.peft, f"use one of {PEFT_METHODS}")
    if t.optim not in OPTIMIZERS:
        raise ConfigError("train.optim", t.optim, f"use one of {OPTIMIZERS}")
    if m.get("attn_implementation") not in ATTENTION:
        raise ConfigError("model.attn_implementation", m.attn_implementation, f"use one of {ATTENTION[1:]} or null")
    if t.fit not in FIT_MODES:
        raise ConfigError("train.fit", t.fit, f"use one of {FIT_MODES}")
    if t.peft != "none":
        lora = t.lora
        if lora.r < 1 or lora.alpha <= 0 or not 0 <= lora.dropout < 1 or not lora.target_modules:
            raise ConfigError("train.lora", dict(lora), "use r ≥ 1, alpha > 0, 0 ≤ dropout < 1 and at least one "
                              "target module (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)")
        if importlib.util.find_spec("peft") is None:
            raise ConfigError("train.peft", t.peft, "needs the peft package: pip install peft")
    if t.peft == "qlora" and not hw.bnb_4bit:
        raise ConfigError("train.peft", "qlora", "4-bit NF4 kernels (bitsandbytes) cannot run on this "
                          f"{'GPU' if hw.cuda else 'CPU'}{f' ({hw.bnb_4bit_error})' if hw.bnb_4bit_error else ''}; "
                          "use train.peft=lora, or run QLoRA on a GPU (bench/gpu_check.sh checks it there)")
    if t.peft == "qlora" and t.fsdp:
        raise ConfigError("train.fsdp", t.fsdp, "QLoRA trains with DeepSpeed or plain data parallel here: "
                          "set train.fsdp=null")
    if t.liger and not (hw.cuda and hw.liger):
        raise ConfigError("train.liger", True, "Liger kernels are Triton GPU kernels: they need a CUDA GPU and "
                          "`pip install liger-kernel`" + ("" if hw.cuda else " (this machine has no GPU)")
                          + "; set train.liger=false")
    if m.get("attn_implementation") == "flash_attention_2" and not (hw.cuda and hw.flash_attn):
        raise ConfigError("model.attn_implementation", "flash_attention_2", "FlashAttention-2 needs a CUDA GPU "
                          "(Ampere or later) and `pip install flash-attn`"
                          + ("" if hw.cuda else " (this machine has no GPU)") + "; use sdpa")
    if t.optim == "paged_adamw_8bit" and not hw.cuda:
        raise ConfigError("train.optim", t.optim, "paged 8-bit AdamW pages optimizer states through CUDA unified "
                          "memory: it needs a GPU; use adamw_torch on this machine")
    if t.padding_free and m.get("attn_implementation") != "flash_attention_2":
        raise ConfigError("train.padding_free", True, "padding-free batches need attention that reads sequence "
                          "boundaries from position ids: set model.attn_implementation=flash_attention_2 (GPU), or "
                          "train.padding_free=false")
    for key in ("offload_optimizer", "offload_params"):
        if t[key] and not hw.cuda:
            raise ConfigError(f"train.{key}", True, "CPU offload moves GPU memory to the host: on a machine without "
                              "a GPU everything is already in host memory; set it false")
        if t[key] and not t.deepspeed:
            raise ConfigError(f"train.{key}", True, "offload is a DeepSpeed ZeRO-3 feature: set "
                              "train.deepspeed=configs/deepspeed/zero3.json")
    if t.offload_params and not t.offload_optimizer:
        raise ConfigError("train.offload_params", True, "ZeRO-3 offloads weights only with the optimizer: also set "
                          "train.offload_optimizer=true")
    if t.push_to_hub:
        if not t.hub_model_id or "/" not in t.hub_model_id:
            raise ConfigError("train.hub_model_id", t.hub_model_id, "name the hub repo to push to as owner/name")
        if cfg.run.offline:
            raise ConfigError("train.push_to_hub", True, "run.offline=true blocks the hub: set run.offline=false")
        import os

        if not os.environ.get("HF_TOKEN"):
            raise ConfigError("train.push_to_hub", True, "export HF_TOKEN (a write token) first; it is read from "
                              "the environment and never logged")
