"""The SFT runner every training process executes: s1K → TRL SFTTrainer → ${train.output_dir}/final.

Started in-process for a single plain process, or by torchrun (`python -m s1.train.sft config.yaml`)
for several processes, DeepSpeed or FSDP: see s1/train/launch.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from s1.run_inputs import changed_inputs, record_inputs
from s1.train.batch import gradient_accumulation, world_size
from s1.train.format import build_examples, load_records
from s1.train.hardware import check_switches, detect, resolve_bf16
from s1.train.lora import merge_adapter, parameter_counts, peft_config, quantization_config
from s1.train.memory import model_shape
from s1.train.transforms import apply_transform

log = logging.getLogger("s1")
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense bf16
CPU_TFLOPS_PER_THREAD = 0.1  # nominal fp32 peak per core (AVX-512 FMA: 32 FLOP/cycle at ~3 GHz); CPU MFU is indicative


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def peak_tflops(cfg: DictConfig) -> float:
    """Per-device peak for MFU: the config's value, else by GPU name, else the CPU's threads."""
    import torch

    if cfg.train.peak_tflops:
        return float(cfg.train.peak_tflops)
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        return next((v for k, v in PEAK_TFLOPS.items() if k in name), 989.0)
    return CPU_TFLOPS_PER_THREAD * torch.get_num_threads()


def peak_memory_gib() -> float | None:
    """Peak GPU memory of this process so far (None on CPU)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def peak_memory() -> dict:
    """What this process used at its peak. GPU: the caching allocator's reserved bytes (what the planner's
    estimate must cover: allocations + fragmentation), the allocated part, and the device's own figure
    (used = total - free, CUDA context included) at the end. CPU: the process's peak resident set."""
    import resource

    import torch

    out = {"peak_memory_gb": None, "peak_memory_allocated_gb": None, "device_used_gb_at_end": None,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # ru_maxrss: KiB on Linux
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        out |= {"peak_memory_gb": torch.cuda.max_memory_reserved() / 2**30,
                "peak_memory_allocated_gb": torch.cuda.max_memory_allocated() / 2**30,
                "device_used_gb_at_end": (total - free) / 2**30}
    return out


def distributed_facts(trainer) -> dict:
    """How training really ran, from torch.distributed and the DeepSpeed engine (not from the config)."""
    import torch.distributed as dist

    on = dist.is_available() and dist.is_initialized()
    engine = getattr(trainer, "deepspeed", None)
    return {"world_size": dist.get_world_size() if on else 1, "backend": dist.get_backend() if on else None,
            "deepspeed_zero_stage": engine.zero_optimization_stage() if engine is not None else None}


class TrainLog(TrainerCallback):
    """Per logging step: loss, lr, grad norm, tokens/s and MFU into train_log.jsonl (main process only)."""

    def __init__(self, path: Path, flops_per_token: float, peak_flops: float):
        self.path, self.flops_per_token, self.peak_flops = path, flops_per_token, peak_flops
        self.last_time, self.last_tokens = None, 0.0

    def on_train_begin(self, args, state, control, **kw):
        self.last_time = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now, tokens = time.perf_counter(), float(logs.get("num_tokens", 0.0))  # TRL: tokens seen, all ranks
        rate = (tokens - self.last_tokens) / max(now - self.last_time, 1e-9) if self.last_tokens else None
        self.last_time, self.last_tokens = now, tokens
        row = {"step": state.global_step, "epoch": logs.get("epoch"), "loss": logs["loss"],
               "lr": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"), "tokens": tokens,
               "tokens_per_s": rate, "mfu": rate * self.flops_per_token / self.peak_flops if rate else None,
               "token_accuracy": logs.get("mean_token_accuracy"), "peak_gib": peak_memory_gib()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if rate:
            logs["tokens_per_s"], logs["mfu"] = rate, row["mfu"]  # also to wandb


def set_up_wandb(cfg: DictConfig, out: Path) -> list[str]:
    """wandb offline in the run dir unless configured; the key is read by wandb from the env, never logged."""
    mode = cfg.train.wandb_mode
    if mode == "off":
        return []
    os.environ["WANDB_MODE"] = mode
    os.environ.setdefault("WANDB_DIR", str(out))
    os.environ.setdefault("WANDB_PROJECT", cfg.train.wandb_project or "s1")
    return ["wandb"]


def resume_checkpoint(cfg: DictConfig, ckpt_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if cfg.train.resume == "never":
        return None
    if cfg.train.resume != "auto":
        return cfg.train.resume
    return get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None


def checkpointing_arg(on: bool) -> dict:
    """transformers ≥ 5.2x renamed gradient_checkpointing to activation_checkpointing."""
    from trl import SFTConfig

    names = {f.name for f in dataclasses.fields(SFTConfig)}
    return {"activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing": on}


def deepspeed_config(cfg: DictConfig) -> str | dict | None:
    """train.deepspeed as a path, or as a dict with train.offload_optimizer / offload_params switched in."""
    t = cfg.train
    if not t.deepspeed or not (t.offload_optimizer or t.offload_params):
        return t.deepspeed
    ds = json.loads(Path(t.deepspeed).read_text())
    zero = ds.setdefault("zero_optimization", {})
    if t.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if t.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return ds


def sft_config(cfg: DictConfig, out: Path, report_to: list[str], bf16: bool | None = None):
    import torch
    from trl import SFTConfig

    t = cfg.train
    if bf16 is None:
        bf16 = resolve_bf16(t.bf16, detect())[0]
    fsdp = json.loads(Path(t.fsdp).read_text()) if t.fsdp else None  # full_shard = FSDP2 reshard_after_forward
    if fsdp is not None:  # FSDP checkpoints layers itself (the Trainer's own would all-gather twice)
        fsdp["activation_checkpointing"] = bool(t.gradient_checkpointing)
    return SFTConfig(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=gradient_accumulation(cfg),
        learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a fraction of the steps
        adam_beta1=t.adam_beta1, adam_beta2=t.adam_beta2, weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        bf16=bf16, **checkpointing_arg(t.gradient_checkpointing and not t.fsdp),
        deepspeed=deepspeed_config(cfg), fsdp=fsdp is not None, fsdp_config=fsdp,
        optim=t.optim, padding_free=t.padding_free, use_liger_kernel=t.liger,
        max_length=t.block_size, completion_only_loss=True, packing=False, eos_token="<|im_end|>",
        logging_steps=t.logging_steps, logging_first_step=True,
        save_strategy="steps" if t.save_steps > 0 else "no", save_steps=max(1, t.save_steps),
        save_total_limit=t.save_total_limit,
        seed=cfg.run.seed, data_seed=cfg.run.seed, report_to=report_to, run_name=cfg.run.name,
        dataloader_num_workers=0, dataloader_pin_memory=False,
        use_cpu=not torch.cuda.is_available(),  # CPU: gloo process group sized by torchrun (DeepSpeed too)
    )


def train(cfg: DictConfig, callbacks: list | tuple = ()) -> Path:
    """Train (or resume) and save the final model; a finished run is skipped."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    out = Path(cfg.train.output_dir)
    final = out / "final"
    changed = changed_inputs(cfg, "train")  # None: never finished here; []: finished with these very inputs
    t = cfg.train
    saved = final / "config.json" if t.peft == "none" or t.lora.merge else out / "adapter" / "adapter_config.json"
    if changed == [] and (out / "train_summary.json").exists() and saved.exists():
        log.info("already trained: %s (delete %s to train again)", saved.parent, out)
        return saved.parent
    if changed:  # the data, model or settings differ from the finished run: its model and checkpoints are stale
        log.warning("train: inputs changed since %s was trained (%s): training again from the start",
                    out, ", ".join(changed))
        if is_main_process():
            for stale in ("train_summary.json", "train_log.jsonl", "inputs.json"):
                (out / stale).unlink(missing_ok=True)
            shutil.rmtree(final, ignore_errors=True)
            shutil.rmtree(out / "adapter", ignore_errors=True)
    hw = detect(probe_4bit=t.peft == "qlora")
    check_switches(cfg, hw)                  # before any model or data: a switch this machine cannot use
    bf16, why = resolve_bf16(t.bf16, hw)
    log.info("precision: %s", why)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model.tokenizer or cfg.model.name_or_path,
                                              trust_remote_code=cfg.model.trust_remote_code)
    records = load_records(t.dataset, split=t.dataset_split, revision=t.dataset_revision)  # file, folder or hub id
    records = apply_transform(records, t.get("transform"), tokenizer, t.trace_column)  # Table 3 control sets
    examples, data_report = build_examples(records, tokenizer, t.block_size, t.trace_column, t.attempt_column,
                                           t.get("text_format", "release"))
    data_report["transform"] = t.get("transform") or "none"
    if is_main_process():
        (out / "train_data.json").write_text(json.dumps(data_report, indent=2))
        log.info("training data: %d of %d records, %d truncated at %d tokens, %d dropped (prompt fills the block)",
                 data_report["kept"], data_report["records"], data_report["truncated_at_block_size"],
                 data_report["block_size"], data_report["dropped_no_trainable_tokens"])

    if cfg.train.deepspeed:
        import deepspeed

        deepspeed.init_distributed()  # before the arguments fill DeepSpeed's batch sizes and zero.Init runs
    args = sft_config(cfg, out, set_up_wandb(cfg, out), bf16)
    dtype = "auto" if cfg.model.dtype == "auto" else getattr(torch, cfg.model.dtype)
    extra = {"attn_implementation": cfg.model.attn_implementation} if cfg.model.get("attn_implementation") else {}
    quant = quantization_config(cfg, bf16)
    if quant is not None:
        extra["quantization_config"] = quant
        dtype = quant.bnb_4bit_compute_dtype  # the unquantized rest (embeddings, norms) in the compute dtype
    model = AutoModelForCausalLM.from_pretrained(cfg.model.name_or_path, dtype=dtype,
                                                 trust_remote_code=cfg.model.trust_remote_code, **extra)
    shape = model_shape(cfg.model.name_or_path)
    flops = shape.flops_per_token(data_report["mean_tokens"])
    logger = TrainLog(out / "train_log.jsonl", flops, peak_tflops(cfg) * 1e12 * world_size(cfg))
    trainer = SFTTrainer(
        model=model, args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples]),
        callbacks=[logger, *callbacks], peft_config=peft_config(cfg),
    )
    params = parameter_counts(trainer.model)
    log.info("parameters: %s trainable of %s", f"{params['trainable_parameters']:,}",
             f"{params['total_parameters']:,}")
    checkpoint = None if changed else resume_checkpoint(cfg, out / "checkpoints")
    if checkpoint:
        log.info("resuming from %s", checkpoint)
        if is_main_process():
            trim_log(out / "train_log.jsonl", int(Path(checkpoint).name.rsplit("-", 1)[-1]))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    saved_dir = final if t.peft == "none" or t.lora.merge else out / "adapter"  # what eval / the hub get
    if t.peft == "none":
        trainer.save_model(str(final))  # safetensors + tokenizer + chat template; ZeRO-3 gathers the weights
    else:
        trainer.save_model(str(out / "adapter"))  # adapter_model.safetensors + adapter_config.json
    if is_main_process():
        if t.peft != "none" and t.lora.merge:
            merge_adapter(cfg, out / "adapter", final, model.config)
        tokenizer.save_pretrained(str(saved_dir))
        model.generation_config.save_pretrained(str(saved_dir))
        from s1.train.plots import plot_loss

        plot_loss(out / "train_log.jsonl", out / "loss.png")
        summary = {"final": str(final) if saved_dir == final else None, "adapter": None if t.peft == "none"
                   else str(out / "adapter"), "peft": t.peft, "precision": "bf16" if bf16 else "float32",
                   **params, "train_loss": result.training_loss, "steps": result.global_step,
                   "resumed_from": checkpoint, "wall_s": time.perf_counter() - started,
                   "world_size": world_size(cfg), "gradient_accumulation": gradient_accumulation(cfg),
                   "distributed": distributed_facts(trainer), **peak_memory(),
                   "data": {k: v for k, v in data_report.items() if k != "dropped"}}
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
        if t.push_to_hub:
            from s1.train.hub import push_model

            summary["hub"] = push_model(saved_dir, t.hub_model_id, private=t.hub_private)
            (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
        record_inputs(cfg, "train")  # last: finished with these inputs
    return saved_dir


def trim_log(path: Path, step: int) -> None:
    """Drop log rows past the checkpoint we resume from: those steps run again."""
    if path.exists():
        rows = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(r + "\n" for r in rows))


def main(argv: list[str]) -> None:
    """torchrun entry: python -m s1.train.sft <output_dir>/config.yaml"""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train(OmegaConf.load(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
