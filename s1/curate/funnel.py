"""Counting every step: kept and dropped per reason and per source, adding up exactly.

A filtering step returns StepResult(kept, dropped=[(record, reason), ...]);
Funnel.add checks that nothing vanished, logs the counts, appends what was
dropped to dropped.jsonl (invalid records go in full to quarantine.jsonl) and
hands the kept records to the next step.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("s1.curate")
Record = dict[str, Any]


@dataclass
class StepResult:
    kept: list[Record]
    dropped: list[tuple[Record, str]] = field(default_factory=list)  # (record, reason)


def by_source(records) -> dict[str, int]:
    return dict(Counter(str(r.get("source")) for r in records))


class Funnel:
    """Per-step counts for funnel.json / funnel.md; writes dropped records as it goes."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.steps: list[dict[str, Any]] = []
        self.quarantine_path = self.out_dir / "quarantine.jsonl"
        self.dropped_path = self.out_dir / "dropped.jsonl"
        for p in (self.quarantine_path, self.dropped_path):
            p.write_text("")

    def start(self, name: str, pool: list[Record]) -> list[Record]:
        self.steps.append({"step": name, "in": len(pool), "kept": len(pool), "dropped": {},
                           "kept_by_source": by_source(pool), "dropped_by_reason_source": {}})
        log.info("%-12s %6d records from %d sources", name, len(pool), len(by_source(pool)))
        return pool

    def add(self, name: str, pool_in: list[Record], result: StepResult) -> list[Record]:
        n_in, n_kept, n_drop = len(pool_in), len(result.kept), len(result.dropped)
        if n_in != n_kept + n_drop:
            raise RuntimeError(f"step {name}: {n_in} records in but {n_kept} kept + {n_drop} dropped")
        reasons: Counter = Counter()
        per: dict[str, Counter] = defaultdict(Counter)
        quarantine = name == "validate"
        path = self.quarantine_path if quarantine else self.dropped_path
        with open(path, "a", encoding="utf-8") as f:
            for rec, reason in result.dropped:
                reasons[reason] += 1
                per[reason][str(rec.get("source"))] += 1
                row = rec if quarantine else {"id": rec.get("id"), "source": rec.get("source"),
                                              "question": str(rec.get("question"))[:300]}
                f.write(json.dumps({"step": name, "reason": reason, **row}, ensure_ascii=False, default=str) + "\n")
        self.steps.append({"step": name, "in": n_in, "kept": n_kept, "dropped": dict(reasons),
                           "kept_by_source": by_source(result.kept),
                           "dropped_by_reason_source": {k: dict(v) for k, v in per.items()}})
        detail = ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none"
        log.info("%-12s %6d → %6d  dropped: %s", name, n_in, n_kept, detail)
        return result.kept

    def sources(self) -> list[str]:
        return sorted(self.steps[0]["kept_by_source"]) if self.steps else []
