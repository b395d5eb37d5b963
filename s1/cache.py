"""Append-only JSON Lines caches: model work is written as it finishes, so a killed run resumes and pays nothing twice.

Two shapes share one file discipline:
- `JsonlCache` (curate): {"key": ..., **value} per line; the last line for a key wins.
- `GenerationCache` (eval): one finished generation per line, keyed by `record_key` (KEY_FIELDS).

A kill mid-write leaves a torn last line without its newline. Opening a cache
ends that line first (`end_torn_line`), so the next append starts on a line
of its own; the torn line itself is skipped (and counted) when the file is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("s1.cache")
KEY_FIELDS = ("model", "benchmark", "question_id", "method", "budget", "sample", "settings")


def content_key(*parts: str | None) -> str:
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(b"\x00" if p is None else p.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[-80:] or "model"


def end_torn_line(path: Path) -> bool:
    """Newline-terminate a torn last line (a kill mid-write); True when one was found."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return False
        f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())
    return True


def read_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(records, torn lines skipped) of a JSON Lines file."""
    rows, torn = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
    return rows, torn


class JsonlCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            end_torn_line(self.path)
            rows, torn = read_lines(self.path)
            for row in rows:
                self.data[row.pop("key")] = row
            if torn:
                log.warning("%s: %d torn line(s) skipped; that work will be redone", self.path, torn)
        self.hits = 0

    def get(self, key: str) -> dict[str, Any] | None:
        v = self.data.get(key)
        if v is not None:
            self.hits += 1
        return v

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def put_many(self, items: dict[str, dict[str, Any]]) -> None:
        if not items:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.writelines(json.dumps({"key": k, **v}, ensure_ascii=False) + "\n" for k, v in items.items())
            f.flush()
        self.data.update(items)


def record_key(rec: dict[str, Any]) -> str:
    return json.dumps([rec.get(k) for k in KEY_FIELDS])


class GenerationCache:
    """generations.jsonl: each line flushed and fsynced as written; a rerun skips every key present."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self.torn = 0
        if self.path.exists():
            end_torn_line(self.path)
            rows, self.torn = read_lines(self.path)
            for rec in rows:
                self.records[record_key(rec)] = rec
            if self.torn:
                log.warning("%s: %d torn line(s) ignored; those generations will be redone", self.path, self.torn)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open: one flushed line per write

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def append(self, rec: dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.records[record_key(rec)] = rec

    def rewrite(self) -> None:
        """Rewrite the file from memory (after re-grading), atomically."""
        self._f.close()
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in self.records.values())
        tmp.replace(self.path)
        self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open: one flushed line per write

    def close(self) -> None:
        self._f.close()
