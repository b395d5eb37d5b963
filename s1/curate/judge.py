"""LLM judge (the paper graded reference answers with Claude 3.5 Sonnet: Yes/No against the solution)."""

from __future__ import annotations

JUDGE_PROMPT = ("You are grading a student's answer to a math problem. Reply with Yes or No only.\n\n"
                "Problem:\n{question}\n\nReference answer:\n{answer}\n\nStudent's answer:\n{response}\n\n"
                "Is the student's final answer equivalent to the reference answer?")


def llm_judge(endpoint, responses: list[str], records: list[dict]) -> list[bool]:
    verdicts = [False] * len(records)

    def save(i, reply, error):
        verdicts[i] = bool(reply) and reply["content"].strip().lower().startswith("yes")

    endpoint.chat_many([[{"role": "user", "content": JUDGE_PROMPT.format(
        question=r["question"], answer=r["answer"], response=resp[-4000:])}] for resp, r in zip(responses, records)],
        on_result=save, desc="judge")
    return verdicts
