"""The curation LLM's prompts are the release's (simplescaling/s1 at 77272c6e925d610257a50b520bad15330b513389:
data/grading.txt, data/featurization.py), and their replies are read as the release reads them."""

from __future__ import annotations

import json
from pathlib import Path

from s1.curate import prompts

REPO = Path(__file__).resolve().parents[1]

# simplescaling/s1 @ 77272c6, data/grading.txt, verbatim (the file has no trailing newline)
GRADING_TXT = (
    "You are an AI assistant for grading a science problem.\n"
    "The user will provide you with the question itself, an attempt made by a student and the correct answer to the "
    "problem.\n"
    "Your job is to judge whether the attempt is correct by comparing it with the correct answer. \n"
    "If the expected solution concludes with a number or choice, there should be no ambiguity.\n"
    "If the expected solution involves going through the entire reasoning process, you should judge the attempt "
    "based on whether the reasoning process is correct with correct answer if helpful.\n\n"
    "The user will provide the attempt and the correct answer in the following format:\n\n"
    "# Problem\n{problem}\n\n## Attempt\n{attempt}\n\n## Correct answer\n{solution}\n\n"
    "Explain your reasoning, and end your response on a new line with only \"Yes\" or \"No\" (without quotes).")
# ... data/featurization.py, _process_example_grading: the user turn
GRADING_USER = "## Problem\nQ?\n\n## Attempt\nA long attempt.\n\n## Correct answer\nThe solution."
# ... data/featurization.py, do_domain_classification: the system prompt
MSC_SYSTEM = ("You are a helpful assistant that classifies questions into different subjects based on the provided "
              "classification rubrics. You will be given a question and a list of subjects. You need to classify the "
              "question into one of the subjects. If the question has multiple subjects, you should classify the "
              "question into the most relevant subject. Explain your reasoning, and end your response on a new line "
              "with two-digit code of the subject that the question belongs to.")


def test_judge_prompt_is_the_releases():
    attempt = "x" * 10_000 + " A long attempt."
    msgs = prompts.judge_messages({"question": "Q?", "solution": "The solution.", "answer": "7"}, attempt)
    assert msgs[0] == {"role": "system", "content": GRADING_TXT}
    assert msgs[1]["content"] == GRADING_USER.replace("A long attempt.", attempt)   # the full attempt, no gold line
    assert prompts.judge_messages({"question": "Q?", "solution": None}, "a") is None   # release: no solution, no call


def test_judge_parser_reads_a_reasoning_reply_as_the_release():
    assert prompts.parse_verdict("The attempt gets 7, the answer is 7.\nYes") is True
    assert prompts.parse_verdict("The attempt says 5 but the answer is 7.\nNo") is False
    assert prompts.parse_verdict("Yes, it is correct.") is None        # no verdict line at the end: ungraded
    assert prompts.parse_verdict("Reasoning...\nYes.") is None          # the release wants exactly Yes / No
    assert prompts.parse_verdict("Yes, correct", "short") is True       # the short prompt's one-word reply


def test_msc_prompt_is_the_releases_with_full_descriptions():
    rows = json.loads((REPO / "data" / "msc.json").read_text())
    msgs = prompts.msc_messages("What is 2+2?", rows)
    assert msgs[0]["content"] == MSC_SYSTEM
    user = msgs[1]["content"]
    assert user.startswith("## Question\nWhat is 2+2?\n\n## Classification rubrics\n### Mathematical logic and "
                           "foundations\n* Code: 03\n* Description: Philosophical aspects of logic and foundations;")
    assert user.count("\n\n### ") == len(rows) - 1 and "Nonstandard models" in user


def test_msc_parser_reads_the_code_at_the_end_as_the_release():
    codes = {"11": "Number theory", "60": "Probability"}
    assert prompts.parse_msc_code("It is about primes, subject 60 is not it.\n11", codes) == "11"
    assert prompts.parse_msc_code("Number theory (11).", codes) is None      # release: last two characters only
    assert prompts.parse_msc_code("Subject:\n99", codes) is None             # not an MSC code
    assert prompts.parse_msc_code("Code: 11 (number theory)", codes, "short") == "11"


def test_unreadable_judge_replies_are_ungraded_and_counted():
    from s1.curate.judge import llm_judge

    class Endpoint:   # the seam: the remote LLM
        def chat_many(self, conversations, on_result, desc="", max_tokens=None):
            assert max_tokens == 4096 and conversations[0][0]["content"] == GRADING_TXT
            for i, reply in enumerate(["Fine.\nYes", "I think it's right", "Wrong.\nNo"]):
                on_result(i, {"content": reply}, None)
            return 0

    recs = [{"question": "Q", "solution": "S"}] * 3 + [{"question": "Q", "solution": ""}]
    stats: dict = {}
    assert llm_judge(Endpoint(), ["a"] * 4, recs, max_tokens=4096, stats=stats) == [True, None, False, None]
    assert stats == {"judged": 3, "failed": 0, "no_verdict": 1, "no_solution": 1}


def test_paper_s1_uses_the_release_prompts():
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("curate", overrides=["experiment=paper_s1"])
    assert cfg.curate.judge.prompt == "release" and cfg.curate.domains.prompt == "release"
    assert cfg.curate.judge.max_tokens >= 1024


def test_a_cached_verdict_is_regraded_when_the_judge_prompt_changes(tmp_path):
    """Verdicts of the short prompt are not reused under the release's (difficulty.graded_against keys the prompt)."""
    from types import SimpleNamespace

    from s1.cache import JsonlCache
    from s1.curate.difficulty import grade_cached

    cfg = SimpleNamespace(grader="llm_judge")
    recs = [{"id": "q1", "solution": "\\boxed{3}", "answer": "3"}]
    cache = JsonlCache(tmp_path / "ref.jsonl")
    cache.put_many({"q1": {"response": "Answer: 3"}})
    calls = []

    def judge_for(prompt, verdict):
        def judge(responses, records):
            calls.append(prompt)
            return [verdict] * len(records)
        judge.prompt = prompt
        return judge

    assert grade_cached(recs, cache, cfg, judge=judge_for("short", True)) == {"q1": True}
    assert grade_cached(recs, cache, cfg, judge=judge_for("short", False)) == {"q1": True}     # cached
    assert grade_cached(recs, cache, cfg, judge=judge_for("release", False)) == {"q1": False}  # regraded
    assert calls == ["short", "release"]
