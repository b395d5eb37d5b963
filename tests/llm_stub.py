"""A stand-in for the paper's remote LLM (Claude): a real OpenAI-compatible HTTP server on 127.0.0.1.

The remote API is the one true seam of the judge and MSC-classification paths, so tests put this server
there: it judges an attempt Yes when the reference final answer appears at the attempt's end, classifies a
question into MSC by keywords, and fails on purpose: questions whose hash is divisible by `fail_every` get
HTTP 500 on every call (they stay ungraded), others get one 503 first when `flaky` (the client retries).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYWORDS = [  # first match wins: (regex on the lower-cased question, MSC code)
    (r"probabilit|random|expected", "60"),
    (r"triangle|circle|angle|polygon|square|rectangle|perimeter|area|hexagon|radius", "51"),
    (r"prime|divisib|remainder|gcd|digit|integer", "11"),
    (r"polynomial|roots?\b|quadratic", "12"),
    (r"ways|arrange|choose|committee|subsets?|permutation|coloring", "05"),
    (r"sequence|series|\\sum|a_\{?n", "40"),
    (r"matri|vector", "15"),
    (r"\\sin|\\cos|\\tan|\\log|f\(x\)|function|\\int", "26"),
    (r"complex|\bi\^", "30"),
    (r"current|voltage|force|velocity|energy|mass", "70"),
]


def qhash(question: str) -> int:
    return int(hashlib.sha256(question.encode("utf-8")).hexdigest()[:16], 16)


def classify(question: str) -> str:
    q = question.lower()
    return next((code for pattern, code in KEYWORDS if re.search(pattern, q)), "97")


RELEASE_JUDGE = re.compile(r"^## Problem\n(.*)\n\n## Attempt\n(.*)\n\n## Correct answer\n(.*)$", re.S)
RELEASE_MSC = re.compile(r"^## Question\n(.*)\n\n## Classification rubrics\n", re.S)


def judge(prompt: str) -> str:
    """Short prompt: "Yes" / "No". Release prompt (s1.curate.prompts): some reasoning, then "Yes" / "No" on the last
    line; the gold is the solution's last \\boxed{} (else the whole solution when it is short)."""
    if m := RELEASE_JUDGE.match(prompt):
        attempt, solution = m.group(2), m.group(3).strip()
        from s1.grading import _last_boxed

        gold = _last_boxed(solution) or (solution if len(solution) < 40 else "")
        ok = bool(gold) and gold in attempt[-300:]
        return f"Comparing the attempt's final answer with the correct answer {gold!r}.\n{'Yes' if ok else 'No'}"
    gold = re.search(r"\nReference final answer: (.*)\n", prompt)
    attempt = prompt.split("\nAttempt:\n", 1)[-1].rsplit("\n\nIs the attempt", 1)[0]
    return "Yes" if gold and gold.group(1).strip() and gold.group(1).strip() in attempt[-300:] else "No"


def is_judge(prompt: str) -> bool:
    return "\nAttempt:\n" in prompt or bool(RELEASE_JUDGE.match(prompt))


def question_of(prompt: str) -> str:
    if m := RELEASE_JUDGE.match(prompt):
        return m.group(1)
    if m := RELEASE_MSC.match(prompt):
        return m.group(1)
    if "\nAttempt:\n" in prompt:  # judge prompt: "Problem:\n{q}\n\nReference solution:"
        return prompt.split("Problem:\n", 1)[1].rsplit("\n\nReference solution:\n", 1)[0]
    return prompt.split("\n\nQuestion:\n", 1)[1]


class StubLLM:
    def __init__(self, fail_every: int = 0, flaky: bool = True):
        self.fail_every, self.flaky = fail_every, flaky
        self.stats: Counter = Counter()
        self.refused: set[str] = set()     # questions whose calls always fail
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code, reply = stub.answer(body["messages"][-1]["content"])
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]} if code == 200
                                  else {"error": "stub failure"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, prompt: str) -> tuple[int, str]:
        kind = "judge" if is_judge(prompt) else "domains"
        question = question_of(prompt)
        with self._lock:
            self.stats[f"{kind}_requests"] += 1
            if self.fail_every and qhash(question) % self.fail_every == 0:
                self.stats[f"{kind}_failed"] += 1
                self.refused.add(question)
                return 500, ""
            key = f"{kind}:{prompt}"
            if self.flaky and key not in self._seen:
                self._seen.add(key)
                self.stats[f"{kind}_failed"] += 1
                return 503, ""
            self.stats[f"{kind}_served"] += 1
        if kind == "judge":
            return 200, judge(prompt)
        if RELEASE_MSC.match(prompt):   # the release's prompt: reasoning, then the code on the last line
            return 200, f"The question is about this subject.\n{classify(question)}"
        return 200, f"Code: {classify(question)}"

    def __enter__(self) -> "StubLLM":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
