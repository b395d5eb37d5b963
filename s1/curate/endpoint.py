"""A client for OpenAI-compatible chat endpoints (teacher traces, LLM domains, LLM judge).

Concurrency (threads), a shared rate limit on request starts, retries with
exponential backoff on 429 / 5xx / connection errors. The API key is read
from the environment variable named in the config and only ever placed in the
Authorization header: never logged, never in errors, never in caches.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm import tqdm

from s1.runtime import ConfigError

log = logging.getLogger("s1.curate")
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    pass


class ChatEndpoint:
    def __init__(self, cfg):
        if not cfg.base_url:
            raise ConfigError("curate.traces.base_url", cfg.base_url, "give the endpoint, e.g. http://127.0.0.1:8000/v1")
        if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
            raise ConfigError("curate.traces.api_key_env", cfg.api_key_env,
                              f"export {cfg.api_key_env}=<key> (the key is read from the environment only)")
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self._key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        self._lock = threading.Lock()
        self._next_start = 0.0
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"ChatEndpoint({self.url!r}, model={self.cfg.model!r})"  # no key

    def _wait_for_rate_limit(self) -> None:
        if self.cfg.rate_limit_per_s <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.cfg.rate_limit_per_s
        time.sleep(max(0.0, start - now))

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
            return json.loads(resp.read())

    def chat(self, messages: list[dict], max_tokens: int | None = None) -> dict:
        """{"content", "reasoning"} of the first choice; retries transient failures, then raises EndpointError.
        max_tokens: this call's completion limit (None: curate.traces.max_tokens)."""
        body = {"model": self.cfg.model, "messages": messages, "max_tokens": int(max_tokens or self.cfg.max_tokens),
                "temperature": self.cfg.temperature}
        for attempt in range(self.cfg.max_retries + 1):
            self._wait_for_rate_limit()
            try:
                with self._lock:
                    self.requests_sent += 1
                out = self._post(body)
                msg = out["choices"][0]["message"]
                return {"content": msg.get("content") or "",
                        "reasoning": msg.get("reasoning_content") or msg.get("reasoning") or ""}
            except urllib.error.HTTPError as e:
                err, retry = f"HTTP {e.code}", e.code in RETRY_STATUS
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                err, retry = f"connection error ({type(e).__name__})", True
            except (KeyError, IndexError, ValueError) as e:
                err, retry = f"malformed response ({type(e).__name__})", False
            if not retry or attempt == self.cfg.max_retries:
                raise EndpointError(f"{self.url}: {err} after {attempt + 1} attempts")
            delay = self.cfg.backoff_s * 2 ** attempt * (1 + 0.1 * random.random())
            log.debug("%s: %s, retry %d in %.1f s", self.url, err, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def chat_many(self, conversations: list[list[dict]], on_result, desc: str = "requests",
                  max_tokens: int | None = None) -> int:
        """Run all with `concurrency` threads; on_result(i, reply or None, error or None) as each finishes.

        Returns the number of failures (their on_result gets reply None and the error text).
        """
        failures = 0
        with ThreadPoolExecutor(max_workers=max(1, self.cfg.concurrency)) as pool:
            futures = {pool.submit(self.chat, msgs, max_tokens): i for i, msgs in enumerate(conversations)}
            for fut in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="req"):
                i = futures[fut]
                try:
                    on_result(i, fut.result(), None)
                except EndpointError as e:
                    failures += 1
                    on_result(i, None, str(e))
        return failures
