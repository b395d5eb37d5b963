"""Validation: records that cannot enter the pipeline go to quarantine.jsonl with their reason.

Reasons: invalid_json, not_utf8, not_an_object (from the loader), missing_question,
non_string_question, empty_question, field_too_large:<field>, duplicate_id
(the id is sha256 of the question, so this is the exact same question text).
"""

from __future__ import annotations

import json

from s1.curate.funnel import StepResult, keep_unless

CHECKED_FIELDS = ("question", "solution", "attempt", "answer", "metadata")


def quarantine_invalid(pool: list[dict], max_field_chars: int) -> StepResult:
    seen: set[str] = set()

    def reason(rec: dict) -> str | None:
        why = invalid_reason(rec, max_field_chars)
        if why is None and rec["id"] in seen:
            return "duplicate_id"
        if why is None:
            seen.add(rec["id"])
        return why

    return keep_unless(pool, reason)


def invalid_reason(rec: dict, max_field_chars: int) -> str | None:
    if "_invalid" in rec:
        return rec["_invalid"]
    q = rec.get("question")
    if q is None:
        return "missing_question"
    if not isinstance(q, str):
        return "non_string_question"
    if not q.strip():
        return "empty_question"
    for f in CHECKED_FIELDS:
        v = rec.get(f)
        if isinstance(v, str) and len(v) > max_field_chars:
            return f"field_too_large:{f}"
    for t in rec.get("thinking_trajectories") or []:
        if not isinstance(t, str):
            return "non_string_trace"
        if len(t) > max_field_chars:
            return "field_too_large:thinking_trajectories"
    try:  # lone surrogates ("\ud800" in JSON) cannot be written back as UTF-8
        json.dumps([q, rec.get("solution"), rec.get("attempt")], ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "not_utf8"
    return None
