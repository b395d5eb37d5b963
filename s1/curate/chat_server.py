"""A small OpenAI-compatible *chat* server over an inference engine (tests of teacher traces, local teachers).

POST /v1/chat/completions: the engine thinks after "<|im_start|>think\n" until
"<|im_start|>" (or think_tokens), then answers after "<|im_start|>answer\n".
reasoning="field" returns the thinking in message.reasoning_content (as
DeepSeek / vLLM reasoning parsers do); reasoning="tags" returns
"<think>…</think>answer" in content. fail_first=N answers the first N
requests with HTTP 429 (a rate-limited provider), to exercise retries.
Binds to 127.0.0.1 only; one generation at a time.
(s1/infer/server.py serves /v1/completions; this one adds the chat route the
teacher client needs.)
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from s1.infer import Request, build_prompt

MAX_BODY_BYTES = 4 * 1024 * 1024


def serve_chat(engine, model_name: str, *, api_key: str | None = None, reasoning: str = "field",
               fail_first: int = 0, think_tokens: int = 24, answer_tokens: int = 8):
    """Start on a daemon thread; returns (server, base_url). server.stats counts requests."""
    lock = threading.Lock()
    stats = {"requests": 0, "served": 0, "failed": 0, "auth_headers": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            with lock:
                stats["requests"] += 1
                n = stats["requests"]
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                return self._send(401, {"error": {"message": "invalid API key"}})
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            size = int(self.headers.get("Content-Length") or 0)
            if size > MAX_BODY_BYTES:
                return self._send(413, {"error": {"message": "request too large"}})
            body = json.loads(self.rfile.read(size))
            if n <= fail_first:
                with lock:
                    stats["failed"] += 1
                return self._send(429, {"error": {"message": "rate limited"}})
            question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
            with lock:  # one generation at a time
                prompt = build_prompt(engine.tokenizer, question, think=True)
                temp, seed = float(body.get("temperature") or 0.0), int(body.get("seed") or 0)
                think = engine.continue_batch([Request(prompt, min(think_tokens, body.get("max_tokens") or 10**9),
                                                       stop=["<|im_start|>"], temperature=temp, seed=seed)])[0]
                ans_prompt = prompt + think.text + "<|im_start|>answer\n"
                ans = engine.continue_batch([Request(ans_prompt, answer_tokens, stop=["<|im_end|>"],
                                                     temperature=temp, seed=seed)])[0]
                stats["served"] += 1
            msg = {"role": "assistant", "content": ans.text}
            if reasoning == "field":
                msg["reasoning_content"] = think.text
            else:
                msg["content"] = f"<think>{think.text}</think>{ans.text}"
            self._send(200, {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "model": model_name,
                             "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
                             "usage": {"completion_tokens": think.num_tokens + ans.num_tokens}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.stats = stats
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
