"""s1K records → TRL prompt/completion examples in the paper's chat format, with token counts.

Sequence (S1_REFERENCE.md, Training):
  <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n
  <|im_start|>think\\n{thinking}\\n<|im_start|>answer\\nAnswer: {attempt}<|im_end|>
The prompt is everything up to and including "<|im_start|>assistant\\n", rendered by the tokenizer's own
chat template; the completion is the rest. TRL's `completion_only_loss` then masks the prompt, so the loss
covers exactly the assistant turn. This works with the real Qwen2.5 template, which has no
`{% generation %}` markers (TRL's `assistant_only_loss` would need them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from s1.data.schema import first_trace
from s1.runtime import ConfigError
from s1.tiny_model import QWEN_SYSTEM_PROMPT

THINK = "<|im_start|>think\n"
ANSWER = "<|im_start|>answer\n"
END = "<|im_end|>"


def completion_text(thinking: str, attempt: str) -> str:
    """The assistant turn the model learns: think segment, answer segment, end of turn."""
    return f"{THINK}{thinking}\n{ANSWER}Answer: {attempt}{END}"


def prompt_text(tokenizer, question: str, system: str = QWEN_SYSTEM_PROMPT) -> str:
    """System + user turns and the opened assistant turn, from the tokenizer's chat template."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Curated records from a jsonl file or a `datasets.save_to_disk` folder."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("train.dataset", str(path),
                          "no such file or folder; run `make curate` first or point train.dataset at s1k.jsonl")
    if path.is_dir():
        import datasets

        return [dict(r) for r in datasets.load_from_disk(str(path))]
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ConfigError("train.dataset", f"{path}:{lineno}", f"not valid JSON ({e.msg}); fix or remove the line") from None
    if not records:
        raise ConfigError("train.dataset", str(path), "the file holds no records; check the curate stage's output")
    return records


def to_example(record: dict[str, Any], index: int, tokenizer) -> dict[str, str]:
    """One record → {"id", "prompt", "completion"}; a record missing question, trace or attempt is an error."""
    rid = record.get("id") or f"#{index}"
    for name, value in (("question", record.get("question")), ("thinking_trajectories[0]", first_trace(record)),
                        ("attempt", record.get("attempt"))):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("train.dataset", f"record {index} (id={rid})",
                              f"{name} is empty; s1 trains on the first trace and the attempt, so every record "
                              "needs both: re-run curate (its quality filter drops these) or remove the record")
    return {"id": str(rid), "prompt": prompt_text(tokenizer, record["question"]),
            "completion": completion_text(first_trace(record), record["attempt"])}


def build_examples(records: list[dict[str, Any]], tokenizer, block_size: int) -> tuple[list[dict], dict[str, Any]]:
    """Examples that keep at least one trainable token at `block_size`, and a report whose counts add up.

    Sequences longer than the block are truncated at the end (counted); a prompt that fills the whole
    block leaves nothing to learn, so that example is dropped and listed by id (TRL would drop it silently).
    """
    examples = [to_example(r, i, tokenizer) for i, r in enumerate(records)]
    kept, dropped, truncated, lengths, trainable = [], [], 0, [], 0
    for ex in examples:
        n_prompt = len(tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"])
        n_total = len(tokenizer(ex["prompt"] + ex["completion"], add_special_tokens=False)["input_ids"])
        if n_prompt >= block_size:
            dropped.append({"id": ex["id"], "prompt_tokens": n_prompt, "reason": "prompt fills the block"})
            continue
        truncated += n_total > block_size
        lengths.append(min(n_total, block_size))
        trainable += min(n_total, block_size) - n_prompt
        kept.append(ex)
    report = {
        "records": len(records), "kept": len(kept), "dropped_no_trainable_tokens": len(dropped),
        "truncated_at_block_size": truncated, "block_size": block_size,
        "tokens": sum(lengths), "trainable_tokens": trainable,
        "max_tokens": max(lengths, default=0), "mean_tokens": sum(lengths) / max(len(lengths), 1),
        "dropped": dropped,
    }
    return kept, report
