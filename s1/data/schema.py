"""The one record schema every stage shares: the s1K columns plus pipeline fields.

s1K (hub simplescaling/s1K) has: question, solution, cot_type, source_type,
metadata, thinking_trajectories (list of str), attempt. The pipeline adds
`id` (first 16 hex digits of sha256(question), as the released notebook keys
questions), `source` (the pool the record came from) and `answer` (the
reference final answer, used for grading).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

S1K_COLUMNS = (
    "question",
    "solution",
    "cot_type",
    "source_type",
    "metadata",
    "thinking_trajectories",
    "attempt",
)
PIPELINE_FIELDS = ("id", "source", "answer")
RECORD_FIELDS = PIPELINE_FIELDS + S1K_COLUMNS


def question_id(question: str) -> str:
    """16 hex digits of sha256(question): the released notebook's question key."""
    return hashlib.sha256(question.encode("utf-8")).hexdigest()[:16]


def make_record(
    question: str,
    *,
    source: str,
    answer: str | None,
    solution: str = "",
    cot_type: str = "math",
    source_type: str = "",
    metadata: dict[str, Any] | str | None = None,
    thinking_trajectories: list[str] | None = None,
    attempt: str | None = "",
) -> dict[str, Any]:
    """A record in the s1K schema; `metadata` is stored as a JSON string like s1K's."""
    if not isinstance(metadata, str):
        metadata = json.dumps(metadata or {}, sort_keys=True)
    return {
        "id": question_id(question) if isinstance(question, str) else None,
        "source": source,
        "answer": answer,
        "question": question,
        "solution": solution,
        "cot_type": cot_type,
        "source_type": source_type or source,
        "metadata": metadata,
        "thinking_trajectories": list(thinking_trajectories or []),
        "attempt": attempt,
    }


def record_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """Parsed `metadata` of a record ({} when absent or not JSON)."""
    meta = record.get("metadata")
    if isinstance(meta, dict):
        return meta
    try:
        parsed = json.loads(meta) if meta else {}
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def first_trace(record: dict[str, Any]) -> str:
    """The first thinking trajectory ('' when there is none); s1 trains on the first."""
    traces = record.get("thinking_trajectories") or []
    return traces[0] if traces and isinstance(traces[0], str) else ""
