"""LLM judge, the paper's grader: a model compares an answer with the reference `solution` (Yes/No).

The paper asked Claude 3.5 Sonnet whether a reference model's answer was correct given the dataset's
solution; the released grading.ipynb does the same. A call that fails after the endpoint's retries, or a
reply that is neither Yes nor No, gives no verdict (None): never cached as "unsolved", counted "ungraded".
"""

from __future__ import annotations

import logging

log = logging.getLogger("s1.curate")
RESPONSE_TAIL_CHARS = 4000   # the answer is at the end; long traces would only cost judge tokens
SOLUTION_MAX_CHARS = 8000
JUDGE_PROMPT = ("You are grading an attempt at a problem against the reference solution. Reply with Yes or No "
                "only.\n\nProblem:\n{question}\n\nReference solution:\n{solution}\n{gold}\nAttempt:\n{response}\n\n"
                "Is the attempt's final answer correct, i.e. equivalent to the reference solution's final answer?")


def judge_prompt(record: dict, response: str) -> str:
    solution = (record.get("solution") or "").strip()[:SOLUTION_MAX_CHARS]
    gold = f"\nReference final answer: {record['answer']}\n" if record.get("answer") else ""
    return JUDGE_PROMPT.format(question=record["question"], solution=solution or "(none)", gold=gold,
                               response=response[-RESPONSE_TAIL_CHARS:])


def parse_verdict(reply: str) -> bool | None:
    word = reply.strip().lstrip("*#>` ").lower()
    if word.startswith("yes"):
        return True
    if word.startswith("no"):
        return False
    return None


def llm_judge(endpoint, responses: list[str], records: list[dict]) -> list[bool | None]:
    """One verdict per (response, record): True / False, or None when the judge gave none."""
    verdicts: list[bool | None] = [None] * len(records)
    unreadable = 0

    def save(i, reply, error):
        nonlocal unreadable
        if reply is None:
            return  # failed after retries: stays None (ungraded), asked again on the next run
        verdicts[i] = parse_verdict(reply["content"])
        unreadable += verdicts[i] is None

    failures = endpoint.chat_many([[{"role": "user", "content": judge_prompt(r, resp)}]
                                   for resp, r in zip(responses, records)], on_result=save, desc="judge")
    if failures or unreadable:
        log.warning("judge: %d of %d calls failed after retries, %d replies neither Yes nor No: ungraded, "
                    "retried on the next run", failures, len(records), unreadable)
    return verdicts
