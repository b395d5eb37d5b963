"""The one record schema every stage shares: the s1K columns plus pipeline fields.

s1K (hub simplescaling/s1K) has: question, solution, cot_type, source_type,
metadata, thinking_trajectories (list of str), attempt. The pipeline adds
`id` (first 16 hex digits of sha256(question), as the released notebook keys
questions), `source` (the pool the record came from) and `answer` (the
reference final answer, used for grading).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
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


def parse_metadata(meta: Any) -> dict[str, Any] | None:
    """A metadata value as a dict: the hub's Python-literal string (single quotes, None, True) or JSON.

    None when it is a string neither parser reads as a dict (the caller decides what to keep).
    """
    if isinstance(meta, dict):
        return meta
    if meta is None or (isinstance(meta, str) and not meta.strip()):
        return {}
    if not isinstance(meta, str):
        return None
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(meta)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def record_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """Parsed `metadata` of a record: JSON or a Python literal ({} when absent or unreadable)."""
    meta = record.get("metadata")
    if isinstance(meta, dict):
        return meta
    parsed = parse_metadata(meta)
    return parsed if parsed is not None else {}


BARE_ANSWER_MAX_CHARS = 100   # a `solution` this short with no line break is the answer itself (AIME, TheoremQA)
METADATA_ANSWER_KEYS = ("answer", "Answer", "final_answer", "Correct Answer")  # MATH/Omni, TheoremQA, OlympiadBench, GPQA
GOLD_SOURCES = ("answer_column", "boxed", "bare_solution", "metadata", "none")


def last_boxed(text: str) -> str | None:
    """Content of the last non-empty \\boxed{...} / \\fbox{...} (braces balanced), else None."""
    for m in reversed(list(re.finditer(r"\\(?:boxed|fbox)\s*\{", text))):
        depth, start = 1, m.end()
        for k in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[k], 0)
            if depth == 0:
                if text[start:k].strip():
                    return text[start:k].strip()
                break
    return None


def gold_answer(record: dict[str, Any]) -> tuple[str | None, str]:
    """(gold answer, how it was found), in the order the released data sets carry them (simplescaling/s1K, data_ablation_full59K):
    the last \\boxed{} of `solution`, the solution itself when it is a bare answer, else the metadata's answer.
    ("none": only an LLM judge reading the solution can grade this record.)"""
    solution = record.get("solution")
    if isinstance(solution, str) and solution.strip():
        boxed = last_boxed(solution)
        if boxed:
            return boxed, "boxed"
        bare = solution.strip()
        if len(bare) <= BARE_ANSWER_MAX_CHARS and "\n" not in bare:
            return bare, "bare_solution"
    meta = record_metadata(record)
    for key in METADATA_ANSWER_KEYS:
        value = meta.get(key)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value is not None and str(value).strip() and re.sub(r"\s", "", str(value)).lower() not in ("none", "nan"):
            return str(value).strip(), "metadata"
    return None, "none"


def source_family(record: dict[str, Any]) -> str:
    """The dataset a record came from, for per-source tables: source_type's first two parts
    ("qfq/openaimath/Algebra" → "qfq/openaimath", "AI-MO/NuminaMath-CoT/olympiads" → "AI-MO/NuminaMath-CoT")."""
    st = str(record.get("source_type") or record.get("source") or "")
    return "/".join(st.split("/")[:2]) if "/" in st else st


def first_trace(record: dict[str, Any]) -> str:
    """The first thinking trajectory ('' when there is none); s1 trains on the first."""
    traces = record.get("thinking_trajectories") or []
    return traces[0] if traces and isinstance(traces[0], str) else ""
