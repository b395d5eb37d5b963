"""generations.jsonl: an append-only cache of finished generations, one JSON line each.

A line is keyed by (model, benchmark, question id, method, budget, sample
index). Each line is flushed and fsynced as it is written, so a killed run
loses at most the line being written; a torn last line is ignored on load.
A rerun skips every key already present and re-scores from the file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("s1.eval")
KEY_FIELDS = ("model", "benchmark", "question_id", "method", "budget", "sample")


def record_key(rec: dict[str, Any]) -> str:
    return json.dumps([rec[k] for k in KEY_FIELDS])


class GenerationCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            torn = 0
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        torn += 1          # a line cut by a kill mid-write: regenerated
                        continue
                    self.records[record_key(rec)] = rec
            if torn:
                log.warning("%s: %d torn line(s) ignored; those generations will be redone", self.path, torn)
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
