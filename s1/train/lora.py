"""LoRA / QLoRA through PEFT, the way TRL takes it (SFTTrainer(peft_config=...)), and the merge into a full model.

train.peft=lora: frozen base in its dtype, adapters B·A on every linear layer of the Qwen2 blocks (train.lora).
train.peft=qlora: the frozen base loaded as 4-bit NF4 (bitsandbytes, double quantization), same adapters.
At the end the adapter is saved to ${train.output_dir}/adapter and, with train.lora.merge=true, merged into the
unquantized base: W' = W + B·A·(alpha/r), a plain model directory at ${train.output_dir}/final that eval loads.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

log = logging.getLogger("s1")


def peft_config(cfg: DictConfig):
    """PEFT's LoraConfig for train.peft=lora|qlora; None for a full fine-tune."""
    t = cfg.train
    if t.peft == "none":
        return None
    from peft import LoraConfig

    return LoraConfig(r=t.lora.r, lora_alpha=t.lora.alpha, lora_dropout=t.lora.dropout,
                      target_modules=list(t.lora.target_modules), bias="none", task_type="CAUSAL_LM")


def quantization_config(cfg: DictConfig, bf16: bool):
    """QLoRA's 4-bit NF4 base (double-quantized constants; matmuls in bf16, or float32 where bf16 is off)."""
    if cfg.train.peft != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if bf16 else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, bnb_4bit_quant_storage=compute)


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters as PEFT counts them (a 4-bit packed weight counts its real size)."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        total = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in model.parameters())
        trainable = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel()
                        for p in model.parameters() if p.requires_grad)
    return {"trainable_parameters": int(trainable), "total_parameters": int(total)}


def merge_adapter(cfg: DictConfig, adapter_dir: Path, final: Path, trained_config=None) -> Path:
    """Base (unquantized, model.dtype) + adapter → merge_and_unload → a full model directory at `final`; the special
    token ids as training set them (TRL's eos <|im_end|>) from `trained_config`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = "auto" if cfg.model.dtype == "auto" else getattr(torch, cfg.model.dtype)
    base = AutoModelForCausalLM.from_pretrained(cfg.model.name_or_path, dtype=dtype,
                                                trust_remote_code=cfg.model.trust_remote_code)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    for key in ("eos_token_id", "pad_token_id", "bos_token_id"):
        if trained_config is not None and getattr(trained_config, key, None) is not None:
            setattr(merged.config, key, getattr(trained_config, key))
    merged.save_pretrained(str(final))
    log.info("merged the adapter %s into %s", adapter_dir, final)
    return final
