"""Export: s1k.jsonl and s1k/ (datasets save_to_disk) in the s1K columns plus pipeline fields."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from s1.data.schema import RECORD_FIELDS

log = logging.getLogger("s1.curate")
EXPORT_FIELDS = RECORD_FIELDS + ("domain", "thinking_length")


def export_row(rec: dict) -> dict:
    row = {k: rec.get(k) for k in EXPORT_FIELDS}
    if not isinstance(row["metadata"], str):
        row["metadata"] = json.dumps(row["metadata"] or {}, sort_keys=True, default=str)
    row["thinking_trajectories"] = list(row["thinking_trajectories"] or [])
    return row


def export(s1k: list[dict], out_dir: Path, push_to_hub: str | None = None) -> Path:
    import datasets

    rows = [export_row(r) for r in sorted(s1k, key=lambda r: r["id"])]
    path = Path(out_dir) / "s1k.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    tmp.replace(path)
    features = datasets.Features({
        **{k: datasets.Value("string") for k in EXPORT_FIELDS},
        "thinking_trajectories": datasets.Sequence(datasets.Value("string")),
        "thinking_length": datasets.Value("int64"),
    })
    ds = datasets.Dataset.from_list(rows, features=features)
    ds.save_to_disk(str(Path(out_dir) / "s1k"))
    log.info("export: %d records → %s and %s/", len(rows), path, Path(out_dir) / "s1k")
    if push_to_hub:
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            log.warning("push_to_hub=%s skipped: run.offline=true", push_to_hub)
        else:
            ds.push_to_hub(push_to_hub, private=True)  # token from HF_TOKEN / huggingface-cli login
    return path
