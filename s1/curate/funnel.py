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
from typing import Any, Callable

log = logging.getLogger("s1.curate")
Record = dict[str, Any]
# what to look at when a step keeps nothing (the config keys that decide it)
EMPTY_STEP_HINTS = {
    "load": "check curate.sources (paths, hub name, split, size)",
    "validate": "see quarantine.jsonl for each record's reason",
    "quality": "see dropped.jsonl; curate.quality.* switches each rule (require_traces=false for pools "
               "without traces)",
    "decontam": "every question matched a benchmark: check curate.decontam.benchmarks",
    "dedup": "see dropped.jsonl",
    "difficulty": "every question was solved or could not be graded: check the grader (curate.difficulty.grader) "
                  "and, for llm_judge, the endpoint (curate.traces.base_url); ungraded questions are retried on a rerun",
    "domains": "curate.domains.drop_unassigned=true dropped everything: set it false or use method=llm",
    "diversity": "see curate.diversity.*",
}


class EmptyStepError(RuntimeError):
    """A curation step kept no record: names the step, its drop reasons per source, and where to look."""


@dataclass
class StepResult:
    kept: list[Record]
    dropped: list[tuple[Record, str]] = field(default_factory=list)  # (record, reason)
    notes: dict[str, Any] = field(default_factory=dict)  # step-specific tables for the report (e.g. coverage)


def keep_unless(pool: list[Record], reason: Callable[[Record], str | None]) -> StepResult:
    """Split a pool by a rule: a record is dropped with the reason the rule gives, kept when it gives None."""
    kept, dropped = [], []
    for rec in pool:
        why = reason(rec)
        if why is None:
            kept.append(rec)
        else:
            dropped.append((rec, why))
    return StepResult(kept, dropped)


def by_source(records) -> dict[str, int]:
    return dict(Counter(str(r.get("source")) for r in records))


class Funnel:
    """Per-step counts for funnel.json / funnel.md; writes dropped records as it goes."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.steps: list[dict[str, Any]] = []
        self.notes: dict[str, Any] = {}
        self.quarantine_path = self.out_dir / "quarantine.jsonl"
        self.dropped_path = self.out_dir / "dropped.jsonl"
        for p in (self.quarantine_path, self.dropped_path):
            p.write_text("")

    def start(self, name: str, pool: list[Record]) -> list[Record]:
        if not pool:
            raise EmptyStepError(f"curate step '{name}' produced 0 records: {EMPTY_STEP_HINTS.get(name, '')}")
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
                           "dropped_by_reason_source": {k: dict(v) for k, v in per.items()},
                           **({"notes": result.notes} if result.notes else {})})
        detail = ", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none"
        log.info("%-12s %6d → %6d  dropped: %s", name, n_in, n_kept, detail)
        if n_in and not n_kept:
            self.write_partial()
            why = "; ".join(f"{reason} {n} ({', '.join(f'{s} {c}' for s, c in sorted(per[reason].items()))})"
                            for reason, n in reasons.most_common())
            raise EmptyStepError(f"curate step '{name}' kept 0 of {n_in} records. Dropped: {why}. "
                                 f"{EMPTY_STEP_HINTS.get(name, 'see dropped.jsonl')} (funnel so far: "
                                 f"{self.out_dir / 'funnel.json'})")
        return result.kept

    def note(self, name: str, table: dict[str, Any]) -> None:
        """A table for the report that is not a filtering step (e.g. how gold answers were found)."""
        self.notes[name] = table

    def write_partial(self) -> None:
        """funnel.json with the steps so far, so a stopped run still shows where records went."""
        (self.out_dir / "funnel.json").write_text(json.dumps({"steps": self.steps, "notes": self.notes,
                                                              "stopped": True}, indent=2, default=str))

    def sources(self) -> list[str]:
        return sorted(self.steps[0]["kept_by_source"]) if self.steps else []
