"""Append-only JSON Lines caches: model work is written as it finishes, so a killed run resumes and pays nothing twice.

Two shapes share one file discipline:
- `JsonlCache` (curate): {"key": ..., **value} per line; the last line for a key wins.
- `GenerationCache` (eval): one finished generation per line, keyed by `record_key` (KEY_FIELDS).

A kill mid-write leaves a torn last line without its newline. Opening a cache
ends that line first (`end_torn_line`), so the next append starts on a line
of its own; the torn line itself is skipped (and counted) when the file is read.

Shards (cluster.shards=K): shard i writes only `<name>.shard-<i>.jsonl` next to the cache file and an
unsharded run (the merge) writes `<name>.jsonl`; every cache reads all of them, so a key done by any shard is
never done again, whatever K was. A key found in two files must carry the same value in both
(ShardConflictError names it otherwise); within one file the last line for a key wins.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
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


def stable_hash(key: str) -> int:
    """The same integer for the same key in every process and run (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class Shard:
    """This process is shard `index` of `count`: it does the work whose shard key hashes to it."""

    index: int
    count: int

    def owns(self, key: str) -> bool:
        return stable_hash(key) % self.count == self.index


class ShardConflictError(RuntimeError):
    """One key with two different results in two cache files (shards that both did it, differently)."""


@dataclass
class Progress:
    """Keys this process must do in its current step, and how many are done (for `make status`)."""

    step: str
    total: int
    done: int
    started: float
    done_at_start: int
    path: Path | None = None
    written: float = 0.0

    def add(self, n: int) -> None:
        self.done = min(self.total, self.done + n)  # keys of a cache outside the step (e.g. lengths) do not count
        if self.path is not None and (time.time() - self.written > 2.0 or self.done >= self.total):
            self.write()

    def write(self) -> None:
        self.written = time.time()
        rec = {"step": self.step, "total": self.total, "done": self.done, "started": self.started,
               "done_at_start": self.done_at_start, "updated": self.written, "pid": os.getpid()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(self.path)


_shard: Shard | None = None
_progress: Progress | None = None
_progress_file: Path | None = None


def set_shard(shard: Shard | None, progress_file: Path | None = None) -> None:
    """Make every cache opened from now on write its shard file (None: the unsharded / merge file);
    `progress_file`: where start_progress reports this process's step, keys total and done."""
    global _shard, _progress_file
    _shard, _progress_file = shard, progress_file


def current_shard() -> Shard | None:
    return _shard


def start_progress(step: str, total: int, done: int) -> Progress:
    """A model step begins: `total` keys, `done` of them cached. New keys the caches write count towards it; the
    progress file set by set_shard is rewritten every few seconds (`make status` reads it)."""
    global _progress
    _progress = Progress(step, total, done, time.time(), done, _progress_file)
    if _progress_file is not None:
        _progress_file.parent.mkdir(parents=True, exist_ok=True)
        _progress.write()
    return _progress


def _count_done(n: int) -> None:
    if _progress is not None:
        _progress.add(n)


def shard_path(path: Path, index: int) -> Path:
    return path.with_name(f"{path.stem}.shard-{index}{path.suffix}")


def cache_files(path: Path) -> list[Path]:
    """The cache file and every shard file of it that exists."""
    shards = sorted(Path(p) for p in glob.glob(glob.escape(str(path.with_suffix(""))) + ".shard-*" + path.suffix))
    return ([path] if path.exists() else []) + [p for p in shards if re.fullmatch(r".*\.shard-\d+", p.stem)]


def own_file(path: Path) -> Path:
    """The one file this process appends to: its shard's, or the cache file itself when unsharded."""
    return shard_path(path, _shard.index) if _shard is not None else path


def read_merged(path: Path, key_of) -> tuple[dict[str, dict[str, Any]], dict[str, Path], int]:
    """(value per key, file per key, torn lines) over the cache file and its shard files; a key whose files
    disagree raises ShardConflictError."""
    values: dict[str, dict[str, Any]] = {}
    where: dict[str, Path] = {}
    torn = 0
    for f in cache_files(path):
        rows, t = read_lines(f)
        torn += t
        mine: dict[str, dict[str, Any]] = {}
        for row in rows:  # within one file the last line for a key wins (a re-graded entry)
            mine[key_of(row)] = row
        for key, row in mine.items():
            if key in values and values[key] != row:
                raise ShardConflictError(
                    f"cache key {key} has two different results, in {where[key]} and in {f}: two shards produced it "
                    "differently (sampling without a fixed seed, or files from another run). Delete that key's line "
                    "from one of the two files (or the whole wrong file) and run again; that work is then redone or kept.")
            values[key], where[key] = row, where.get(key, f)
    return values, where, torn


class JsonlCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.write_path = own_file(self.path)
        end_torn_line(self.write_path)  # only our own file: another shard may be writing its own right now
        rows, self.where, torn = read_merged(self.path, lambda row: row["key"])
        self.data: dict[str, dict[str, Any]] = {k: {f: v for f, v in row.items() if f != "key"} for k, row in rows.items()}
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
        """Append new keys to this process's file; an update of a key goes to the file that holds it."""
        if not items:
            return
        by_file: dict[Path, list[str]] = {}
        for k in items:
            by_file.setdefault(self.where.get(k, self.write_path), []).append(k)
        for path, keys in by_file.items():
            with open(path, "a", encoding="utf-8") as f:
                f.writelines(json.dumps({"key": k, **items[k]}, ensure_ascii=False) + "\n" for k in keys)
                f.flush()
            self.where.update(dict.fromkeys(keys, path))
        _count_done(sum(k not in self.data for k in items))
        self.data.update(items)


def record_key(rec: dict[str, Any]) -> str:
    return json.dumps([rec.get(k) for k in KEY_FIELDS])


class GenerationCache:
    """generations.jsonl: each line flushed and fsynced as written; a rerun skips every key present."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.write_path = own_file(self.path)
        end_torn_line(self.write_path)  # only our own file: another shard may be writing its own right now
        self.records, self.where, self.torn = read_merged(self.path, record_key)
        if self.torn:
            log.warning("%s: %d torn line(s) ignored; those generations will be redone", self.path, self.torn)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.write_path, "a", encoding="utf-8")  # noqa: SIM115 - held open: one flushed line per write

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def append(self, rec: dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        key = record_key(rec)
        _count_done(key not in self.records)
        self.records[key], self.where[key] = rec, self.write_path

    def rewrite(self) -> None:
        """Rewrite our file from memory (after re-grading), atomically. Unsharded (the merge), every record goes
        into the cache file and the shard files are removed; a shard rewrites only its own records."""
        self._f.close()
        tmp = self.write_path.with_suffix(".jsonl.tmp")
        mine = {k: r for k, r in self.records.items() if _shard is None or self.where.get(k) == self.write_path}
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in mine.values())
        tmp.replace(self.write_path)
        if _shard is None:
            for other in cache_files(self.path)[1:]:
                other.unlink()
            self.where = dict.fromkeys(self.records, self.path)
        self._f = open(self.write_path, "a", encoding="utf-8")  # noqa: SIM115 - held open: one flushed line per write

    def close(self) -> None:
        self._f.close()
