#!/usr/bin/env bash
# GPU check for `make train` (issue 3): a random-initialised Qwen2.5-1.5B-shaped model (built from its config,
# no download) trains a few steps with DeepSpeed ZeRO-3 on one GPU at 12K tokens per sequence through the real
# scripts/train.py. Prints tokens/s, MFU and peak memory (reserved, allocated, device) against the planner's estimate.
# Last line: train_mfu=<fraction> planner_error=<fraction>   (planner_error = estimate / peak reserved - 1, from
# train_summary.json's peak_memory_gb: the CUDA allocator's reserved peak, which counts fragmentation)
# Then QLoRA (train.peft=qlora: 4-bit NF4 base through bitsandbytes' CUDA kernels, merged at the end) on the same
# model and data, 3 steps: the GPU check of what a CPU without 4-bit kernels refuses.
# Last lines also: qlora_peak_reserved=<GiB> qlora_planner=<GiB> qlora_merged=<1|0>
# Fits in ~8 minutes on one H100/H200 (model build ~30 s, 6 + 3 steps, DeepSpeed start-up, the merge).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-$(mktemp -d /tmp/s1_gpu_train.XXXX)}
SEQ=${SEQ:-12288}
export HF_HUB_OFFLINE=1 WANDB_MODE=offline TOKENIZERS_PARALLELISM=false

$PY - "$WORK" "$SEQ" <<'PY'
import json, sys
from pathlib import Path
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from s1.tiny_model import build_tokenizer
from s1.train.memory import KNOWN_MODELS

work, seq = Path(sys.argv[1]), int(sys.argv[2])
shape = KNOWN_MODELS["Qwen/Qwen2.5-1.5B-Instruct"]
tok = build_tokenizer()
cfg = Qwen2Config(vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                  tie_word_embeddings=shape.tied, max_position_embeddings=32768,
                  eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
with torch.device("cuda"):
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
model.save_pretrained(work / "model")
tok.save_pretrained(work / "model")
del model
torch.cuda.empty_cache()
# Records whose trace fills about `seq` tokens (the tiny BPE: ~6 tokens per step line).
line = "7+9=6\n"
with open(work / "s1k.jsonl", "w") as f:
    for i in range(64):
        trace = line * (seq // 6)
        f.write(json.dumps({"id": str(i), "question": f"Start at {i % 10}, add 9. Last digit?",
                            "thinking_trajectories": [trace], "attempt": "\\boxed{6}"}) + "\n")
PY

$PY scripts/train.py model.name_or_path="$WORK/model" model.build_tiny=null model.max_context=32768 \
  train.dataset="$WORK/s1k.jsonl" train.output_dir="$WORK/train" paths.runs_dir="$WORK/runs" \
  train.deepspeed=configs/deepspeed/zero3.json train.block_size="$SEQ" train.max_steps=6 train.save_steps=1000 \
  train.global_batch_size=1 train.micro_batch_size=1 train.bf16=true train.gradient_checkpointing=true \
  cluster.gpus_per_node=1 cluster.gpu_memory_gib=80 train.wandb_mode=off train.logging_steps=1

$PY - "$WORK" "$SEQ" <<'PY'
import json, sys
from pathlib import Path
from omegaconf import OmegaConf
from s1.train.memory import plan_memory

work, seq = Path(sys.argv[1]), int(sys.argv[2])
rows = [json.loads(l) for l in (work / "train" / "train_log.jsonl").read_text().splitlines()]
summary = json.loads((work / "train" / "train_summary.json").read_text())
steady = rows[2:] or rows
tps = sum(r["tokens_per_s"] or 0 for r in steady) / len(steady)
mfu = sum(r["mfu"] or 0 for r in steady) / len(steady)
plan = plan_memory(OmegaConf.load(work / "train" / "config.yaml"))
# The planner estimates what a GPU must hold: compare with what the CUDA allocator reserved (allocations plus
# fragmentation), and show the device's own figure (reserved + CUDA context, at the end of training).
reserved, allocated = summary["peak_memory_gb"], summary["peak_memory_allocated_gb"]
device = summary["device_used_gb_at_end"]
print(plan.table())
print(f"tokens/s={tps:.0f} mfu={mfu:.3f} peak_reserved={reserved:.1f} GiB peak_allocated={allocated:.1f} GiB "
      f"device_used_at_end={device:.1f} GiB planner={plan.per_gpu_gib:.1f} GiB "
      f"planner_error_vs_device={plan.per_gpu_gib / device - 1:.4f}")
print(f"train_mfu={mfu:.4f} planner_error={plan.per_gpu_gib / reserved - 1:.4f}")
PY

$PY scripts/train.py model.name_or_path="$WORK/model" model.build_tiny=null model.max_context=32768 \
  train.dataset="$WORK/s1k.jsonl" train.output_dir="$WORK/train_qlora" paths.runs_dir="$WORK/runs" \
  train.peft=qlora train.deepspeed=null train.block_size="$SEQ" train.max_steps=3 train.save_steps=0 \
  train.global_batch_size=1 train.micro_batch_size=1 train.bf16=true train.gradient_checkpointing=true \
  cluster.gpus_per_node=1 cluster.gpu_memory_gib=80 train.wandb_mode=off train.logging_steps=1

$PY - "$WORK" <<'PY'
import json, sys
from pathlib import Path
from omegaconf import OmegaConf
from s1.train.memory import plan_memory

work = Path(sys.argv[1])
summary = json.loads((work / "train_qlora" / "train_summary.json").read_text())
plan = plan_memory(OmegaConf.load(work / "train_qlora" / "config.yaml"))
print(plan.table())
merged = int((work / "train_qlora" / "final" / "config.json").is_file())
print(f"qlora_peak_reserved={summary['peak_memory_gb']:.1f} qlora_planner={plan.per_gpu_gib:.1f} "
      f"qlora_trainable={summary['trainable_parameters']} qlora_merged={merged}")
PY
