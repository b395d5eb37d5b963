"""A tiny Qwen2-architecture model and byte-level BPE tokenizer, built offline.

Tests and the demo stand in this model for Qwen2.5-32B-Instruct: same
architecture class, same special tokens, same chat template (with
`{% generation %}` markers so TRL's assistant-only loss works), same
pre-tokenisation as Qwen2Tokenizer, so every code path is the real one.
Weights are random (seeded); nothing is downloaded and nothing is committed.

The "think" size stands in for a thinking model (Qwen3, DeepSeek-R1-distills): the same tokenizer plus `<think>` and
`</think>` as single added tokens, and a Qwen3-style chat template (no default system turn; the generation prompt
honours `enable_thinking`). ensure_think_model trains it briefly on synthetic traces in that format, so it writes
its own `</think>`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from s1.data.synthetic import generate_pool

QWEN_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen2's pre-tokenizer split: digits one by one, letters in runs, punctuation runs, whitespace.
QWEN_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2.5's default template (tools omitted), with generation markers around the assistant turn.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>system\\n" + QWEN_SYSTEM_PROMPT + "<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{% generation %}{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# A template modelled on Qwen3's (tools and multi-turn reasoning left out): no default system turn, an
# assistant message's `reasoning_content` rendered as a <think> block, and enable_thinking=false closing the block
# in the generation prompt, as Qwen3's does. Generation markers as above.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
THINK_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{% generation %}"
    "{%- if message['reasoning_content'] is defined -%}"
    "{{- '<think>\\n' + message['reasoning_content'].strip('\\n') + '\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{{- message['content'] + '<|im_end|>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}"
    "{%- endif -%}"
)

# Sizes: "tiny" for unit tests (~0.3M parameters), "demo" learns the synthetic task in minutes,
# "tiny_hd32" is "tiny" with 2 heads of 32 so vLLM on CPU runs it.
SIZES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "demo": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2),
    # head_dim 32: the smallest head size vLLM's CPU attention supports (tests/test_vllm.py)
    "tiny_hd32": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1),
    # "tiny" with <think> tags and the Qwen3-style template (THINK_SIZES)
    "think": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2),
}
THINK_SIZES = {"think"}   # sizes built with the <think> tokens and THINK_CHAT_TEMPLATE
VOCAB_SIZE = 1024  # BPE merges over bytes; small so the embedding does not dominate
BUILD_VERSION = 7  # bump when the recipe (sizes, corpus, template) changes: cached builds are rebuilt
THINK_BUILD_VERSION = 2  # the same for the think sizes only (their stamp carries it; the others' stamps do not)


def _tokenizer_corpus(seed: int) -> list[str]:
    """Text the BPE is trained on: synthetic questions/traces, the shipped benchmarks, the chat frame."""
    texts = []
    for rec in generate_pool(3000, seed=seed, flaws=True):
        texts += [rec["question"] or "", rec["solution"], *rec["thinking_trajectories"], rec["attempt"] or ""]
    bench_dir = Path(__file__).resolve().parent.parent / "data" / "benchmarks"
    for path in sorted(bench_dir.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                texts += [row.get("problem", ""), row.get("solution", "")]
    texts += [QWEN_SYSTEM_PROMPT, "system user assistant think answer Answer: Final Answer: Wait Hmm"] * 50
    return texts


def _train_bpe(tok, texts: list[str], vocab_size: int, specials: list[str], alphabet) -> tuple[dict, list]:
    """Byte-level BPE merges learned from texts with tok's normalizer and pre-tokenizer, deterministically: the most
    frequent adjacent pair is merged first, ties go to the smallest pair. Returns (vocab, merges) for models.BPE:
    the special tokens, the sorted byte alphabet, then one token per merge."""
    import heapq

    counts = Counter(piece for text in texts
                     for piece, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)))
    words = [list(w) for w in counts]
    freq = list(counts.values())
    vocab = {t: i for i, t in enumerate([*specials, *sorted(set(alphabet))])}
    pairs: Counter = Counter()
    where: dict[tuple, set] = defaultdict(set)
    for i, w in enumerate(words):
        for pair in zip(w, w[1:]):
            pairs[pair] += freq[i]
            where[pair].add(i)
    heap = [(-c, pair) for pair, c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(vocab) < vocab_size and heap:
        neg, pair = heapq.heappop(heap)
        if pairs.get(pair, 0) != -neg or -neg <= 0:
            continue                                   # a stale entry: the pair's count changed since
        merged = pair[0] + pair[1]
        merges.append(pair)
        vocab.setdefault(merged, len(vocab))
        changed = set()
        for i in sorted(where.pop(pair)):
            w, f = words[i], freq[i]
            for p in zip(w, w[1:]):
                pairs[p] -= f
                changed.add(p)
            out, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and (w[j], w[j + 1]) == pair:
                    out.append(merged)
                    j += 2
                else:
                    out.append(w[j])
                    j += 1
            words[i] = out
            for p in zip(out, out[1:]):
                pairs[p] += f
                where[p].add(i)
                changed.add(p)
        for p in changed:
            if pairs[p] > 0:
                heapq.heappush(heap, (-pairs[p], p))
    return vocab, merges


def build_tokenizer(seed: int = 0, think: bool = False):
    """A byte-level BPE with exactly Qwen2Tokenizer's pipeline, wrapped as a transformers tokenizer.

    think: also `<think>` and `</think>` as added tokens (not special, as in Qwen3: decoding keeps them) and the
    Qwen3-style template; the BPE itself is the same, so other text encodes to the same ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # our own BPE training, not tokenizers' BpeTrainer: that one breaks ties between equally frequent merges in a
    # per-process hash order, so two builds differed in most merges and a cached model disagreed with a fresh build
    vocab, merges = _train_bpe(tok, _tokenizer_corpus(seed), VOCAB_SIZE, SPECIAL_TOKENS,
                               pre_tokenizers.ByteLevel.alphabet())
    tok.model = models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False)
    tok.add_special_tokens(SPECIAL_TOKENS)
    if think:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK_OPEN, THINK_CLOSE)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=4096,
    )
    fast.chat_template = THINK_CHAT_TEMPLATE if think else CHAT_TEMPLATE
    return fast


def _stamp(size: str, seed: int) -> dict:
    """What a build records in s1_tiny.json; a cached build with another stamp is rebuilt."""
    stamp = {"size": size, "seed": seed, "version": BUILD_VERSION}
    if size in THINK_SIZES:
        stamp["think_version"] = THINK_BUILD_VERSION
    return stamp


def build_tiny_model(out_dir: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Build the model + tokenizer into out_dir (atomically: a half-built dir never appears)."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    if size not in SIZES:
        raise ValueError(f"model size {size!r} is not one of {sorted(SIZES)}")
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(seed, think=size in THINK_SIZES)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        **SIZES[size],
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]], pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    # Load as Qwen2Tokenizer, like the real model, so the reload test checks the real class.
    cfg_path = tmp / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_path.read_text())
    tok_cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg_path.write_text(json.dumps(tok_cfg, indent=2))
    (tmp / "s1_tiny.json").write_text(json.dumps(_stamp(size, seed)))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def ensure_tiny_model(path: str | Path, size: str = "tiny", seed: int = 0) -> Path:
    """Build the tiny model at `path` unless it is already there."""
    import fcntl

    path = Path(path)
    want = _stamp(size, seed)
    stamp = path / "s1_tiny.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # tests and stage subprocesses may ask at once: build once
        if not stamp.exists() or json.loads(stamp.read_text()) != want:
            build_tiny_model(path, size=size, seed=seed)
    return path


def think_completion(thinking: str, attempt: str) -> str:
    """The assistant turn of a thinking model (Qwen3 / DeepSeek-R1 format): the <think> block, then the answer."""
    attempt = attempt.strip()
    label = "" if "Answer:" in attempt else "Answer: "   # as s1.format: an attempt that says "Final Answer:" keeps it alone
    return f"{THINK_OPEN}\n{thinking.strip()}\n{THINK_CLOSE}\n\n{label}{attempt}<|im_end|>"


def train_think_model(path: str | Path, *, steps: int = 300, batch_size: int = 32, lr: float = 3e-3,
                      seed: int = 0) -> dict:
    """Train the think-size model at `path` in place on synthetic traces in the <think> format (loss on the
    assistant turn only), so it closes its own thinking with </think> and answers. A plain AdamW loop: the
    format, not accuracy, is what its tests need. Returns the first and last steps' losses."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    rows = []
    for rec in generate_pool(steps * batch_size // 4 + batch_size, seed=seed + 1, flaws=False):
        prompt = tok.apply_chat_template([{"role": "user", "content": rec["question"]}], tokenize=False,
                                         add_generation_prompt=True, enable_thinking=True)
        p_ids = tok.encode(prompt, add_special_tokens=False)
        c_ids = tok.encode(think_completion(rec["thinking_trajectories"][0], rec["attempt"]), add_special_tokens=False)
        rows.append((p_ids + c_ids, len(p_ids)))
    pad = tok.pad_token_id
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        batch = [rows[i] for i in torch.randint(len(rows), (batch_size,), generator=gen).tolist()]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.full((batch_size, width), pad)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for b, (row, n_prompt) in enumerate(batch):
            ids[b, :len(row)] = torch.tensor(row)
            labels[b, n_prompt:len(row)] = torch.tensor(row[n_prompt:])
            mask[b, :len(row)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    model.save_pretrained(path)
    return {"first_loss": losses[0], "last_loss": losses[-1], "steps": steps}


def ensure_think_model(path: str | Path, *, steps: int = 300, seed: int = 0) -> Path:
    """The think-size model at `path`, trained by train_think_model, unless a build with the same recipe is there
    (its stamp adds the training steps and losses)."""
    import fcntl

    path = Path(path)
    want = {**_stamp("think", seed), "trained_steps": steps}
    stamp = path / "s1_tiny.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = json.loads(stamp.read_text()) if stamp.exists() else {}
        if {k: have.get(k) for k in want} != want:
            tmp = Path(tempfile.mkdtemp(prefix=path.name + ".train.", dir=path.parent)) / "model"
            build_tiny_model(tmp, size="think", seed=seed)
            losses = train_think_model(tmp, steps=steps, seed=seed)
            (tmp / "s1_tiny.json").write_text(json.dumps({**want, **losses}))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
            shutil.rmtree(tmp.parent, ignore_errors=True)
    return path
