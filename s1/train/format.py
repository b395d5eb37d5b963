"""s1K records → TRL prompt/completion examples in the paper's chat format (s1.format), with token counts.

The prompt is everything up to and including "<|im_start|>assistant\\n", rendered by the tokenizer's own
chat template; the completion is the rest. TRL's `completion_only_loss` then masks the prompt, so the loss
covers exactly the assistant turn. This works with the real Qwen2.5 template, which has no
`{% generation %}` markers (TRL's `assistant_only_loss` would need them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from s1.format import TEXT_FORMATS, build_prompt, completion_text
from s1.runtime import ConfigError, is_hub_id  # is_hub_id: the one hub-or-local rule (s1.runtime.looks_local)

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


def check_dataset(dataset: str) -> None:
    """Before anything launches: an existing jsonl/parquet file or folder, or a hub id."""
    p = Path(dataset)
    if is_hub_id(dataset):
        return
    if not p.exists():
        raise ConfigError("train.dataset", str(dataset),
                          "no such file or folder; run `make curate` first, or give a hub id "
                          "(simplescaling/s1K, simplescaling/s1K-1.1) or a local jsonl / parquet / save_to_disk copy")
    if p.is_file() and p.suffix not in DATA_SUFFIXES:
        raise ConfigError("train.dataset", str(dataset), f"give a {' / '.join(DATA_SUFFIXES)} file, a save_to_disk "
                          "folder, a folder of parquet files (a hub download), or a hub id")


def load_records(path: str | Path, *, split: str = "train", revision: str | None = None) -> list[dict[str, Any]]:
    """Training records from a jsonl / parquet file, a save_to_disk folder, a folder of parquet files, or a hub id."""
    check_dataset(str(path))
    if is_hub_id(str(path)):
        import datasets

        ds = datasets.load_dataset(str(path), split=split, revision=revision)
        return [dict(r) for r in ds]
    path = Path(path)
    if path.is_dir():
        import datasets

        if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
            return [dict(r) for r in ds]
        files = sorted(str(f) for f in path.rglob("*.parquet"))
        if not files:
            raise ConfigError("train.dataset", str(path), "the folder is neither a save_to_disk folder nor holds "
                              "parquet files (a hub snapshot); point at one of those")
        return [dict(r) for r in datasets.Dataset.from_parquet(files)]
    if path.suffix == ".parquet":
        import datasets

        records = [dict(r) for r in datasets.Dataset.from_parquet(str(path))]
    else:
        records = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ConfigError("train.dataset", f"{path}:{lineno}",
                                      f"not valid JSON ({e.msg}); fix or remove the line") from None
    if not records:
        raise ConfigError("train.dataset", str(path), "the file holds no records; check the curate stage's output")
    return records


def column_text(record: dict[str, Any], column: str) -> str:
    """A text column: a string, or a list of strings whose first item is used (s1K's thinking_trajectories).

    "thinking_trajectories[0]" names the first item explicitly; a bare list column means the same.
    """
    m = re.fullmatch(r"(.+)\[(\d+)\]", column)
    name, index = (m.group(1), int(m.group(2))) if m else (column, 0)
    value = record.get(name)
    if isinstance(value, (list, tuple)):
        value = value[index] if len(value) > index else None
    return value if isinstance(value, str) else ""


def check_columns(records: list[dict[str, Any]], trace_column: str, attempt_column: str) -> None:
    """The configured columns exist: the error lists the columns the data has and the known layouts."""
    have = sorted(records[0]) if records else []
    for key, column in (("train.trace_column", trace_column), ("train.attempt_column", attempt_column)):
        name = re.sub(r"\[\d+\]$", "", column)
        if records and not any(name in r for r in records):
            raise ConfigError(key, column, f"the dataset has no such column (it has {have}); s1K: "
                              "thinking_trajectories / attempt; s1K-1.1: deepseek_thinking_trajectory / "
                              "deepseek_attempt (or gemini_thinking_trajectory / gemini_attempt)")


def to_example(record: dict[str, Any], index: int, tokenizer, trace_column: str = "thinking_trajectories",
               attempt_column: str = "attempt", text_format: str = "release") -> dict[str, str]:
    """One record → {"id", "prompt", "completion"}; a record missing question, trace or attempt is an error."""
    rid = record.get("id") or f"#{index}"
    trace, attempt = column_text(record, trace_column), column_text(record, attempt_column)
    trace_name = f"{trace_column}[0]" if isinstance(record.get(trace_column), (list, tuple)) else trace_column
    for name, value in (("question", record.get("question")), (trace_name, trace), (attempt_column, attempt)):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("train.dataset", f"record {index} (id={rid})",
                              f"{name} is empty; s1 trains on the first trace and the attempt, so every record "
                              "needs both: re-run curate (its quality filter drops these) or remove the record")
    return {"id": str(rid), "prompt": build_prompt(tokenizer, record["question"], think=False),
            "completion": completion_text(trace, attempt, text_format)}


def build_examples(records: list[dict[str, Any]], tokenizer, block_size: int, trace_column: str = "thinking_trajectories",
                   attempt_column: str = "attempt", text_format: str = "release") -> tuple[list[dict], dict[str, Any]]:
    """Examples that keep at least one trainable token at `block_size`, and a report whose counts add up.

    Sequences longer than the block are truncated at the end (counted); a prompt that fills the whole
    block leaves nothing to learn, so that example is dropped and listed by id (TRL would drop it silently).
    """
    check_columns(records, trace_column, attempt_column)
    if text_format not in TEXT_FORMATS:
        raise ConfigError("train.text_format", text_format, f"use one of {TEXT_FORMATS}")
    examples = [to_example(r, i, tokenizer, trace_column, attempt_column, text_format) for i, r in enumerate(records)]
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
