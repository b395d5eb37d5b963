"""LLM judge, the paper's grader: a model compares an answer with the reference `solution` (Yes/No).

The paper asked Claude 3.5 Sonnet whether a reference model's answer was correct given the dataset's solution.
The prompt and the verdict parser are s1.curate.prompts' (curate.judge.prompt: release = data/grading.txt and
featurization.py's user turn, the model reasons and ends on Yes / No; short = one word). A call that fails after the
endpoint's retries, or a reply with no verdict, gives None: never cached as "unsolved", counted "ungraded".
"""

from __future__ import annotations

import logging

from s1.curate.prompts import PROMPTS, judge_messages, parse_verdict
from s1.runtime import ConfigError

log = logging.getLogger("s1.curate")


def llm_judge(endpoint, responses: list[str], records: list[dict], prompt: str = "release",
              max_tokens: int | None = None, stats: dict | None = None) -> list[bool | None]:
    """One verdict per (response, record): True / False, or None when the judge gave none. stats (if given) gets
    the counts: judged, failed calls, replies with no verdict, records with no solution to judge against."""
    if prompt not in PROMPTS:
        raise ConfigError("curate.judge.prompt", prompt, f"use one of {PROMPTS}")
    verdicts: list[bool | None] = [None] * len(records)
    conversations = [judge_messages(r, resp, prompt) for resp, r in zip(responses, records)]
    asked = [i for i, c in enumerate(conversations) if c is not None]
    unreadable = 0

    def save(j, reply, error):
        nonlocal unreadable
        if reply is None:
            return  # failed after retries: stays None (ungraded), asked again on the next run
        i = asked[j]
        verdicts[i] = parse_verdict(reply["content"], prompt)
        unreadable += verdicts[i] is None

    failures = endpoint.chat_many([conversations[i] for i in asked], on_result=save, desc="judge",
                                  max_tokens=max_tokens) if asked else 0
    counts = {"judged": len(asked), "failed": failures, "no_verdict": unreadable,
              "no_solution": len(records) - len(asked)}
    if stats is not None:
        for k, v in counts.items():
            stats[k] = stats.get(k, 0) + v
    if failures or unreadable or counts["no_solution"]:
        log.warning("judge (%s prompt): of %d attempts, %d calls failed after retries, %d replies gave no verdict, "
                    "%d had no solution to judge against: ungraded, retried on the next run", prompt, len(records),
                    failures, unreadable, counts["no_solution"])
    return verdicts
