"""Teacher traces for records that have none (paper: Gemini Flash Thinking; s1.1: DeepSeek-R1).

Each question goes to an OpenAI-compatible chat endpoint; the reply is split
into thinking and attempt: a separate reasoning field (reasoning_content /
reasoning, as DeepSeek and vLLM's reasoning parsers return it) or
<think>...</think> tags in the content. Replies are cached per question, so a
killed run resumes without paying twice; a request that still fails after its
retries leaves the error text as the trace, and the quality step drops it as
an API error (what the paper's first funnel step removes).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from s1.cache import JsonlCache, slug, start_progress
from s1.curate.endpoint import ChatEndpoint
from s1.data.schema import first_trace

log = logging.getLogger("s1.curate")
THINK = re.compile(r"<think>(.*?)(?:</think>|$)(.*)", re.DOTALL)


def split_reply(reply: dict) -> tuple[str, str]:
    """(thinking, attempt) of a chat reply."""
    content = reply.get("content") or ""
    if reply.get("reasoning"):
        return reply["reasoning"].strip(), content.strip()
    m = THINK.search(content)
    if m:
        return m.group(1).strip(), m.group(2).strip()
    return "", content.strip()


def generate_traces(pool: list[dict], cfg, cache_dir: Path, endpoint=None) -> list[dict]:
    """Fill thinking_trajectories + attempt of records without a trace (when traces.enabled)."""
    need = [r for r in pool if not first_trace(r)]
    if not cfg.enabled or not need:
        if need:
            log.info("traces: %d records have no trace (curate.traces.enabled=false)", len(need))
        return pool
    endpoint = endpoint or ChatEndpoint(cfg)
    cache = JsonlCache(Path(cache_dir) / f"traces-{slug(cfg.model)}.jsonl")
    todo = [r for r in need if r["id"] not in cache or cache.data[r["id"]].get("error")]
    log.info("traces: %d records need a trace, %d cached, asking %s for %d", len(need), len(need) - len(todo),
             cfg.model, len(todo))
    start_progress("teacher traces", len(need), len(need) - len(todo))

    def save(i, reply, error):
        if reply is None:
            cache.put_many({todo[i]["id"]: {"error": error}})
        else:
            thinking, attempt = split_reply(reply)
            cache.put_many({todo[i]["id"]: {"thinking": thinking, "attempt": attempt}})

    if todo:
        failures = endpoint.chat_many([[{"role": "user", "content": r["question"]}] for r in todo], on_result=save,
                                      desc=f"traces ({cfg.model})")
        if failures:
            log.warning("traces: %d requests failed after retries (kept as API errors; rerun to retry)", failures)
    for rec in need:
        got = cache.data.get(rec["id"], {})
        if got.get("error"):
            rec["thinking_trajectories"], rec["attempt"] = [f"Error code: 599 - {got['error']}"], None
        else:
            rec["thinking_trajectories"], rec["attempt"] = [got.get("thinking", "")], got.get("attempt", "")
    return pool
