"""Append-only jsonl caches for per-question model work (killed runs resume; nothing is paid twice).

Each line is {"key": ..., **value}; the last line for a key wins. A torn last
line (the process was killed mid-write) is skipped on reading.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any


def content_key(*parts: str | None) -> str:
    h = hashlib.blake2b(digest_size=12)
    for p in parts:
        h.update(b"\x00" if p is None else p.encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[-80:] or "model"


class JsonlCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            with open(self.path, "rb+") as f:  # end a torn last line so the next append starts clean
                f.seek(0, 2)
                if f.tell() and (f.seek(-1, 2), f.read(1))[1] != b"\n":
                    f.write(b"\n")
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # torn write from a killed run
                    self.data[row.pop("key")] = row
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
