"""The curation LLM's prompts and reply parsers, in one place: the release's (the default, experiment=paper_s1) and
short ones for small local judges (curate.judge.prompt / curate.domains.prompt = release | short).

The release's texts follow simplescaling/s1 at commit 77272c6e925d610257a50b520bad15330b513389:
- judge: data/grading.txt (system prompt, verbatim) with the user turn of data/featurization.py
  `_process_example_grading` ("## Problem / ## Attempt / ## Correct answer", the full attempt, the reference
  `solution`); the verdict is the reply's last line when it is exactly "Yes" or "No" (`completion.split('\\n')[-1]`).
- MSC classifier: data/featurization.py `do_domain_classification` (system prompt verbatim; user turn
  "## Question / ## Classification rubrics" with every msc.json node's "prompt", joined by blank lines); the code is
  the reply's last two characters when both are digits (`completion[-2:].isdigit()`).
The release retries an unreadable reply forever (sleeping 60 s); here it is "ungraded" / Unassigned, counted and
asked again on the next run.
"""

from __future__ import annotations

import re

RELEASE = "simplescaling/s1@77272c6e925d610257a50b520bad15330b513389"
PROMPTS = ("release", "short")

# data/grading.txt (no trailing newline in the file)
RELEASE_JUDGE_SYSTEM = (
    "You are an AI assistant for grading a science problem.\n"
    "The user will provide you with the question itself, an attempt made by a student and the correct answer to the "
    "problem.\n"
    "Your job is to judge whether the attempt is correct by comparing it with the correct answer. \n"  # sic: the space
    "If the expected solution concludes with a number or choice, there should be no ambiguity.\n"
    "If the expected solution involves going through the entire reasoning process, you should judge the attempt based "
    "on whether the reasoning process is correct with correct answer if helpful.\n\n"
    "The user will provide the attempt and the correct answer in the following format:\n\n"
    "# Problem\n{problem}\n\n## Attempt\n{attempt}\n\n## Correct answer\n{solution}\n\n"
    "Explain your reasoning, and end your response on a new line with only \"Yes\" or \"No\" (without quotes).")
RELEASE_JUDGE_USER = "## Problem\n{question}\n\n## Attempt\n{attempt}\n\n## Correct answer\n{solution}"

RELEASE_MSC_SYSTEM = (
    "You are a helpful assistant that classifies questions into different subjects based on the provided "
    "classification rubrics. "
    "You will be given a question and a list of subjects. "
    "You need to classify the question into one of the subjects. "
    "If the question has multiple subjects, you should classify the question into the most relevant subject. "
    "Explain your reasoning, and end your response on a new line with two-digit code of the subject that the "
    "question belongs to.")
RELEASE_MSC_USER = "## Question\n{question}\n\n## Classification rubrics\n{rubrics}"

# short prompts: one user turn, a one-word / one-code reply (small local judges, few tokens)
SHORT_JUDGE_RESPONSE_TAIL_CHARS = 4000   # the answer is at the end; long traces would only cost judge tokens
SHORT_JUDGE_SOLUTION_MAX_CHARS = 8000
SHORT_JUDGE = ("You are grading an attempt at a problem against the reference solution. Reply with Yes or No "
               "only.\n\nProblem:\n{question}\n\nReference solution:\n{solution}\n{gold}\nAttempt:\n{response}\n\n"
               "Is the attempt's final answer correct, i.e. equivalent to the reference solution's final answer?")
SHORT_MSC = ("Classify the question into one Mathematics Subject Classification (MSC 2020) top-level code "
             "from the list below. Reply with the two-digit code only, e.g. \"Code: 11\".\n\n{codes}\n\n"
             "Question:\n{question}")
_SHORT_CODE = re.compile(r"\b(\d{2})\b")


def judge_messages(record: dict, response: str, prompt: str = "release") -> list[dict] | None:
    """The judge's conversation for one attempt, or None when there is nothing to judge against (the release
    grades a record without a solution None, with no call)."""
    solution = (record.get("solution") or "").strip()
    if prompt == "release":
        if not solution:
            return None
        return [{"role": "system", "content": RELEASE_JUDGE_SYSTEM},
                {"role": "user", "content": RELEASE_JUDGE_USER.format(question=record["question"], attempt=response,
                                                                      solution=record.get("solution"))}]
    gold = f"\nReference final answer: {record['answer']}\n" if record.get("answer") else ""
    text = SHORT_JUDGE.format(question=record["question"], solution=solution[:SHORT_JUDGE_SOLUTION_MAX_CHARS] or "(none)",
                              gold=gold, response=response[-SHORT_JUDGE_RESPONSE_TAIL_CHARS:])
    return [{"role": "user", "content": text}]


def parse_verdict(reply: str, prompt: str = "release") -> bool | None:
    """True / False, or None (ungraded) when the reply gives no verdict. release: its last line is exactly "Yes" or
    "No" (featurization.py); short: the reply starts with yes / no."""
    if prompt == "release":
        last = reply.split("\n")[-1]
        return {"Yes": True, "No": False}.get(last)
    word = reply.strip().lstrip("*#>` ").lower()
    if word.startswith("yes"):
        return True
    if word.startswith("no"):
        return False
    return None


def msc_rubrics(rows: list[dict]) -> str:
    """The release's rubric block: every msc.json node's "prompt" (title, code, full descriptions), blank-line joined."""
    return "\n\n".join(node["prompt"] for node in rows)


def msc_messages(question: str, rows: list[dict], prompt: str = "release") -> list[dict]:
    if prompt == "release":
        return [{"role": "system", "content": RELEASE_MSC_SYSTEM},
                {"role": "user", "content": RELEASE_MSC_USER.format(question=question, rubrics=msc_rubrics(rows))}]
    codes = "\n".join(f"{r['code']}: {r['title']}" for r in rows)
    return [{"role": "user", "content": SHORT_MSC.format(codes=codes, question=question)}]


def parse_msc_code(reply: str, codes, prompt: str = "release") -> str | None:
    """The MSC code of a classifier's reply, or None. release: the reply's last two characters when both are digits
    (featurization.py; a code msc.json lacks is None, as its upload_domain's failed lookup); short: the first
    two-digit code from the list anywhere in the reply."""
    if prompt == "release":
        tail = reply[-2:]
        return tail if len(tail) == 2 and tail.isdigit() and tail in codes else None
    for m in _SHORT_CODE.finditer(reply):
        if m.group(1) in codes:
            return m.group(1)
    return None
