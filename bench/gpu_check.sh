#!/usr/bin/env bash
# The whole GPU check, for the lent GPU machine (one H200; python3 3.12 with torch, transformers, peft and accelerate;
# no package registry). Prepare here with `make gpu-kit` (.gpu-kit/, carried with the call), then there:
#   bash bench/gpu_check.sh                 # everything, within BUDGET seconds (default 470: 8 minutes)
#   bash bench/gpu_check.sh --install-only  # the install step alone (also tested on a CPU: tests/test_gpu_kit.py)
# Parts, each with its own time limit inside the budget, each guarded (a failed part prints part_<name>=rcN and the
# rest still run):
#   install  pip install --no-index --no-deps --target $SITE .gpu-kit/*.whl; PYTHONPATH=repo:$SITE; imports
#   build    random-initialised Qwen2.5 shapes (0.5B, 1.5B, 3B; config from s1.train.memory.QWEN25) saved in bf16
#   bf       budget forcing on the transformers engine on the GPU (0.5B shape): every thinking phase stops at its cap
#   zero3_*  scripts/train.py, full fine-tune, DeepSpeed ZeRO-3, 3 steps, at the longest block (≤ 16,384 tokens) the
#            planner fits in this GPU; peak reserved beside the planner: planner_error_<size>=planner / peak - 1
#   qlora    train.peft=qlora (bitsandbytes 4-bit on CUDA) on the 1.5B shape, 3 steps, merged: qlora_planner_error
# Figures are key=value lines; the whole log is also written to $OUT/gpu_check.log (or $WORK).
set -u
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PY:-python3}
KIT=${KIT:-$REPO/.gpu-kit}
SITE=${SITE:-/tmp/s1_gpu_site}
WORK=${WORK:-$(mktemp -d /tmp/s1_gpu_check.XXXX)}
BUDGET=${BUDGET:-470}
START=$(date +%s)
LOG=${OUT:-$WORK}/gpu_check.log
mkdir -p "$WORK" "$(dirname "$LOG")"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export PYTHONPATH="$REPO:$SITE" S1_CACHE="$WORK/cache" TORCH_EXTENSIONS_DIR="$WORK/torch_extensions"

left() { echo $(( BUDGET - ($(date +%s) - START) )); }

# part NAME LIMIT_S COMMAND...: runs it within min(LIMIT, what is left of the budget); never stops the script.
part() {
  local name=$1 limit=$2 t0 rc
  shift 2
  local room; room=$(left)
  (( room < limit )) && limit=$room
  if (( limit < 15 )); then echo "part_$name=skipped reason=budget"; return 0; fi
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@"   # the part's function, exported below, in a child bash
  rc=$?
  echo "part_$name=$([ $rc = 0 ] && echo ok || echo "rc$rc") part_${name}_s=$(( $(date +%s) - t0 ))"
  return 0
}

kit_install() {
  rm -rf "$SITE"
  ls "$KIT"/*.whl >/dev/null 2>&1 || { echo "install_error=no wheels in $KIT (make gpu-kit here, carry .gpu-kit)"; return 1; }
  # the machine's python3 is 3.12; naming it lets a CPU with another Python check the same install (binary wheels only)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 "$KIT"/*.whl || return 1
  echo "install_wheels=$(ls "$KIT"/*.whl | wc -l) install_mib=$(du -sm "$SITE" | cut -f1)"
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    echo "install_imports=not checked (this python is not 3.12, the machine's)"; return 0
  fi
  "$PY" - "$SITE" <<'PY'
import importlib, sys
site = sys.argv[1]
bad = []
for name in ("deepspeed", "trl", "hydra", "omegaconf", "datasets", "bitsandbytes", "math_verify", "pydantic"):
    try:
        mod = importlib.import_module(name)
        print(f"installed_{name}={getattr(mod, '__version__', '?')} from_kit={int(mod.__file__.startswith(site))}")
    except Exception as e:  # noqa: BLE001
        bad.append(name)
        print(f"install_import_error_{name}={type(e).__name__}: {e}")
import torch, transformers
print(f"torch={torch.__version__} transformers={transformers.__version__} cuda={int(torch.cuda.is_available())}")
import s1.train.sft  # noqa: F401  the training path imports
print(f"install_ok={int(not bad)}")
sys.exit(1 if bad else 0)
PY
}

if [ "${1:-}" = "--install-only" ]; then
  kit_install
  rc=$?
  echo "install_rc=$rc"
  exit $rc
fi


build() {
  "$PY" - "$WORK" <<'PY'
import json, sys
from pathlib import Path
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM
from s1.tiny_model import build_tokenizer
from s1.train.memory import QWEN25

work = Path(sys.argv[1])
# records whose trace fills 16,384 tokens (the tiny BPE: ~6 tokens per step line); blocks cut them
with open(work / "s1k.jsonl", "w") as f:
    for i in range(32):
        f.write(json.dumps({"id": str(i), "question": f"Start at {i % 10}, add 9. Last digit?",
                            "thinking_trajectories": ["7+9=6\n" * 2800], "attempt": "\\boxed{6}"}) + "\n")
tok = build_tokenizer()
for size in ("0.5B", "1.5B", "3B"):
    m = QWEN25[size]
    cfg = Qwen2Config(vocab_size=m.vocab, hidden_size=m.hidden, intermediate_size=m.intermediate,
                      num_hidden_layers=m.layers, num_attention_heads=m.heads, num_key_value_heads=m.kv_heads,
                      tie_word_embeddings=m.tied, max_position_embeddings=32768,
                      eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(work / f"model_{size}")
    tok.save_pretrained(work / f"model_{size}")
    del model
    torch.cuda.empty_cache()
    print(f"built_{size}={m.params}")
PY
}
main() {
  part install 150 kit_install
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu=/'
  part build 120 build
  part bf 90 bf
  part zero3_05b 100 train 0.5B none zero3_05b
  part qlora 110 train 1.5B qlora qlora
  part zero3_15b 100 train 1.5B none zero3_15b
  part zero3_3b 110 train 3B none zero3_3b
  echo "gpu_check_s=$(( $(date +%s) - START )) log=$LOG"
}

bf() {
  "$PY" - "$WORK" <<'PY'
import sys, time
from s1.infer import build_prompt, generate, load_engine
from s1.infer.budget_forcing import DEFAULTS

engine = load_engine("transformers", f"{sys.argv[1]}/model_0.5B", dtype="bfloat16", max_context=4096)
prompts = [build_prompt(engine.tokenizer, f"Start at {i % 10}, add {i % 9 + 1}. Last digit?") for i in range(16)]
cap = 64   # random weights never end thinking themselves: every sequence must stop at the cap, then answer
bf = dict(DEFAULTS, max_thinking_tokens=cap, num_waits=1, answer_max_tokens=16)
t = time.perf_counter()
res = generate(engine, prompts, bf, max_new_tokens=512, batch_size=16, progress=False)
dt = time.perf_counter() - t
tokens = sum(r.thinking_tokens + r.answer_tokens for r in res)
print(f"bf_sequences={len(res)} bf_thinking_max={max(r.thinking_tokens for r in res)} bf_cap={cap} "
      f"bf_capped={int(all(r.thinking_tokens <= cap for r in res))} bf_answered={int(all(r.answer_tokens > 0 for r in res))} "
      f"bf_tokens_per_s={tokens / dt:.0f}")
PY
}
# the longest block ≤ 16,384 (a multiple of 1,024) at which the planner fits `peft` on this GPU, or 0
block_for() {
  "$PY" - "$1" "$2" <<'PY'
import sys
from dataclasses import replace
import torch
from s1.train.fit import largest_block, paper_setup
from s1.train.memory import QWEN25
gib = torch.cuda.get_device_properties(0).total_memory / 2**30
o = largest_block(QWEN25[sys.argv[1]], replace(paper_setup(1, 16384), peft=sys.argv[2],
                  zero_stage=3 if sys.argv[2] == "none" else 0), gib, 16384)
print(o.setup.seq_len if o else 0)
PY
}

# train SIZE PEFT NAME: 3 steps through scripts/train.py, then the planner beside the measured peak
train() {
  local size=$1 peft=$2 name=$3 block gib ds
  block=$(block_for "$size" "$peft") || return 1
  [ "$block" -gt 0 ] || { echo "${name}_skipped=planner: nothing fits"; return 0; }
  gib=$("$PY" -c "import torch; print(torch.cuda.get_device_properties(0).total_memory / 2**30)")
  ds=configs/deepspeed/zero3.json; [ "$peft" = none ] || ds=null
  "$PY" scripts/train.py model.name_or_path="$WORK/model_$size" model.build_tiny=null model.max_context=32768 \
    train.dataset="$WORK/s1k.jsonl" train.output_dir="$WORK/$name" paths.runs_dir="$WORK/runs" \
    train.deepspeed=$ds train.peft="$peft" train.block_size="$block" train.max_steps=3 train.save_steps=1000 \
    train.global_batch_size=1 train.micro_batch_size=1 train.bf16=true train.gradient_checkpointing=true \
    cluster.gpus_per_node=1 cluster.gpu_memory_gib="$gib" train.wandb_mode=off train.logging_steps=1 || return 1
  "$PY" - "$WORK/$name" "$name" "$size" <<'PY'
import json, sys
from pathlib import Path
from omegaconf import OmegaConf
from s1.train.memory import plan_memory
out, name, size = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
summary = json.loads((out / "train_summary.json").read_text())
cfg = OmegaConf.load(out / "config.yaml")
plan = plan_memory(cfg)
print(plan.table())
peak = summary.get("peak_memory_gb") or float("nan")   # torch.cuda.max_memory_reserved, GiB (None on a CPU)
rows = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
print(f"{name}_size={size} {name}_block={cfg.train.block_size} {name}_peak_reserved_gib={peak:.2f} "
      f"{name}_peak_allocated_gib={summary.get('peak_memory_allocated_gb') or float('nan'):.2f} {name}_planner_gib={plan.per_gpu_gib:.2f} "
      f"{name}_tokens_per_s={rows[-1].get('tokens_per_s') or 0:.0f} {name}_mfu={rows[-1].get('mfu') or 0:.3f}")
key = f"planner_error_{size}" if name.startswith("zero3") else f"{name}_planner_error"
print(f"{key}={plan.per_gpu_gib / peak - 1:.4f}")
if name == "qlora":
    print(f"qlora_merged={int((out / 'final' / 'config.json').is_file())} "
          f"qlora_trainable={summary['trainable_parameters']}")
PY
}

export PY KIT SITE WORK REPO
export -f kit_install build bf block_for train
main 2>&1 | tee -a "$LOG"
