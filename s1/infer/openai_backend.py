"""OpenAI-compatible completions backend: budget forcing against any server (vLLM serve, s1.infer.server, ...).

Uses the plain /v1/completions endpoint (raw text in, raw text out), so the
controller can append "Wait" or the answer prefix itself. The API key comes
from the environment variable named by api_key_env and is never logged.

The post-s1 methods (issue 32): a request that asks for log-probabilities (DEER's trial answers, record_confidence)
sends `logprobs: 1` and reads `choices[0].logprobs.token_logprobs`; a server that returns none gives None (DEER then
stops with an error, confidence is None). NoWait is refused: a server takes only per-token `logit_bias`, which
cannot express a text rule (a word spelled by several tokens). AlphaOne, DEER and the finish window stop thinking at
more than one string: they need a server that says which one matched (vLLM's `stop_reason`), else the request fails.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from s1.infer.engine import Continuation, Request


class OpenAIEngine:
    def __init__(self, model_path: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 max_context: int = 32768, trust_remote_code: bool = False, served_model: str | None = None,
                 tokenizer_path: str | None = None, concurrency: int = 8, timeout_s: float = 600.0,
                 top_p: float = 1.0):
        from transformers import AutoTokenizer

        if not base_url:
            raise ValueError("backend=openai needs base_url, e.g. http://127.0.0.1:8000/v1")
        self.base_url = base_url.rstrip("/")
        self._api_key = None
        if api_key_env:
            if api_key_env not in os.environ:
                raise ValueError(f"api_key_env={api_key_env!r}: that environment variable is not set; "
                                 f"export {api_key_env}=... (keys are read from the environment only)")
            self._api_key = os.environ[api_key_env]
        self.model = served_model or model_path
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model_path,
                                                       trust_remote_code=trust_remote_code)
        self.max_context = max_context
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.top_p = top_p                 # nucleus sampling for sampled requests; 1.0 = off (not sent)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r})"

    def continue_batch(self, requests: list[Request]) -> list[Continuation]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(requests)))) as ex:
            return list(ex.map(self._one, requests))

    def _one(self, r: Request) -> Continuation:
        if r.ban_words:
            raise ValueError(f"budget_forcing.ban_words={list(r.ban_words)}: NoWait does not run on the OpenAI engine "
                             "(a server takes only per-token logit_bias, which cannot ban a word spelled by several "
                             "tokens); use the transformers or vLLM engine, or ban_words=[]")
        if r.max_new_tokens <= 0:
            return Continuation(text="", num_tokens=0, stop_reason="length", logprobs=[] if r.logprobs else None)
        body = {"model": self.model, "prompt": r.text, "max_tokens": r.max_new_tokens, "stop": r.stop or None,
                "temperature": r.temperature, "skip_special_tokens": False,
                "spaces_between_special_tokens": False}
        if r.seed is not None:
            body["seed"] = r.seed
        if r.temperature > 0 and self.top_p < 1.0:
            body["top_p"] = self.top_p
        if r.logprobs:
            body["logprobs"] = 1
        timeout = self.timeout_s if r.deadline is None else max(1.0, r.deadline - time.monotonic())
        data = self._post("/completions", body, timeout)
        choice = data["choices"][0]
        text = choice.get("text") or ""
        usage = data.get("usage") or {}
        n = usage.get("completion_tokens")
        if n is None:
            n = len(self.tokenizer.encode(text, add_special_tokens=False))
        lps = (choice.get("logprobs") or {}).get("token_logprobs") if r.logprobs else None
        lps = None if lps is None else [float(x) for x in lps if x is not None]
        if choice.get("finish_reason") == "length":
            return Continuation(text, n, "length", logprobs=lps)
        matched = choice.get("stop_reason")   # vLLM's extension: the matched stop string, None at end of text
        if isinstance(matched, str):
            return Continuation(text, n, "stop", matched, logprobs=lps)
        if "stop_reason" in choice:
            return Continuation(text, n, "eos", logprobs=lps)
        if len(r.stop) > 2:    # thinking's end and the end of turn mean the same; a step boundary or "\n" does not
            raise RuntimeError(f"{self.base_url}: the server does not say which stop string matched (vLLM's "
                               f"stop_reason) and this request stops at {r.stop}: AlphaOne, DEER and the finish "
                               "window need it; use a vLLM server or another engine")
        return Continuation(text, n, "stop", logprobs=lps)      # plain OpenAI servers do not say which stop matched

    def _post(self, path: str, body: dict, timeout: float) -> dict:
        req = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        if self._api_key:
            req.add_header("Authorization", f"Bearer {self._api_key}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode(errors="replace")
            raise RuntimeError(f"{self.base_url}{path}: HTTP {e.code}: {detail}") from None
