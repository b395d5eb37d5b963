"""A small OpenAI-compatible server over an inference engine (tests, demos, laptops, local teachers).

    python -m s1.infer.server --model .cache/models/tiny-qwen2 --port 8000

Binds to 127.0.0.1 only, generates one request at a time, caps request size
and max_tokens. Routes:
- POST /v1/completions (prompt: str or list of str, max_tokens, stop,
  temperature, seed): what budget forcing needs. Like vLLM it reports the
  matched stop string in `stop_reason` (None at end of text).
- POST /v1/chat/completions: a reasoning model's reply, thinking after
  "<|im_start|>think\n" until "<|im_start|>", then the answer, forced as budget
  forcing forces it (s1.format: the release's strings per case). reasoning="field"
  returns the thinking in message.reasoning_content (as DeepSeek / vLLM
  reasoning parsers do), "tags" returns "<think>…</think>answer" in content.
- GET /v1/models.
fail_first=N answers the first N POSTs with HTTP 429 (a rate-limited
provider), so clients' retries can be tested; server.stats counts requests.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from s1.format import END, END_OF_THINKING, THINK, answer_section, build_prompt, forced_answer
from s1.infer.engine import Request

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_TOKENS_CAP = 4096
MAX_PROMPTS = 256


def make_server(engine, model_name: str, *, port: int = 0, api_key: str | None = None, reasoning: str = "field",
                fail_first: int = 0, think_tokens: int = 4096, answer_tokens: int = 1024) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:port (0 = any free port) answering with `engine`; see the module doc."""
    lock = threading.Lock()  # the engine generates one request at a time
    stats = {"requests": 0, "served": 0, "failed": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet; requests may carry keys in headers
            pass

        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._send(401, {"error": {"message": "invalid API key"}})
                return False
            return True

        def do_GET(self):
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models":
                return self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self):
            with lock:
                stats["requests"] += 1
                n = stats["requests"]
            if not self._authorized():
                return
            route = self.path.rstrip("/")
            if route not in ("/v1/completions", "/v1/chat/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            try:  # a negative or missing length would make rfile.read wait for the client to close
                size = int(self.headers.get("Content-Length") or "")
            except ValueError:
                size = -1
            if size < 0:
                return self._send(400, {"error": {"message": "Content-Length must be a byte count >= 0, got "
                                                  f"{self.headers.get('Content-Length')!r}"}})
            if size > MAX_BODY_BYTES:
                return self._send(413, {"error": {"message": f"body over {MAX_BODY_BYTES} bytes"}})
            if n <= fail_first:
                with lock:
                    stats["failed"] += 1
                return self._send(429, {"error": {"message": "rate limited"}})
            try:
                body = json.loads(self.rfile.read(size))
                with lock:
                    if route == "/v1/completions":
                        reply = complete(engine, model_name, body)
                    else:
                        reply = chat(engine, model_name, body, reasoning, think_tokens, answer_tokens)
                    stats["served"] += 1
                self._send(200, reply)
            except (ValueError, KeyError, TypeError, StopIteration) as e:
                self._send(400, {"error": {"message": str(e)}})

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.stats = stats
    return server


def complete(engine, model_name: str, body: dict) -> dict:
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    if not prompts or len(prompts) > MAX_PROMPTS or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompt: give a string or a list of 1..{MAX_PROMPTS} strings")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else list(stop)
    max_tokens = min(int(body.get("max_tokens") or 16), MAX_TOKENS_CAP)
    reqs = [Request(text=p, max_new_tokens=max_tokens, stop=stop, temperature=float(body.get("temperature") or 0.0),
                    seed=body.get("seed")) for p in prompts]
    conts = engine.continue_batch(reqs)
    choices = [{"index": i, "text": c.text, "finish_reason": "length" if c.stop_reason in ("length", "timeout")
                else "stop", "stop_reason": c.matched_stop, "logprobs": None} for i, c in enumerate(conts)]
    n = sum(c.num_tokens for c in conts)
    return {"id": f"cmpl-{time.time_ns()}", "object": "text_completion", "created": int(time.time()),
            "model": model_name, "choices": choices, "usage": {"completion_tokens": n}}


def chat(engine, model_name: str, body: dict, reasoning: str, think_tokens: int, answer_tokens: int) -> dict:
    """A reasoning model's chat reply: think until "<|im_start|>" (or the cap), then answer.

    think_tokens=0: an instruct model's plain reply, the messages through its own chat template."""
    if think_tokens <= 0:
        prompt = engine.tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        cap = min(answer_tokens, int(body.get("max_tokens") or MAX_TOKENS_CAP), MAX_TOKENS_CAP)
        temp, seed = float(body.get("temperature") or 0.0), int(body.get("seed") or 0)
        ans = engine.continue_batch([Request(prompt, cap, stop=[END], temperature=temp, seed=seed)])[0]
        return {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name, "choices": [{"index": 0, "message": {"role": "assistant", "content": ans.text},
                                                  "finish_reason": "length" if ans.stop_reason == "length" else "stop"}],
                "usage": {"completion_tokens": ans.num_tokens}}
    question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    prompt = build_prompt(engine.tokenizer, question, think_prefix=THINK)
    temp, seed = float(body.get("temperature") or 0.0), int(body.get("seed") or 0)
    cap = min(think_tokens, int(body.get("max_tokens") or MAX_TOKENS_CAP), MAX_TOKENS_CAP)
    think = engine.continue_batch([Request(prompt, cap, stop=[END_OF_THINKING, END], temperature=temp, seed=seed)])[0]
    forced = forced_answer(prompt + think.text, at_cap=think.stop_reason not in ("stop", "eos"))
    ans = engine.continue_batch([Request(prompt + think.text + forced, min(answer_tokens, MAX_TOKENS_CAP),
                                         stop=[END_OF_THINKING, END], temperature=temp, seed=seed)])[0]
    reply = answer_section(forced + ans.text).lstrip("\n")   # "Answer: 42" / "Final Answer: 42"
    msg = {"role": "assistant", "content": reply}
    if reasoning == "field":
        msg["reasoning_content"] = think.text
    else:
        msg["content"] = f"<think>{think.text}</think>{reply}"
    return {"id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": model_name, "choices": [{"index": 0, "message": msg, "finish_reason": "stop"}],
            "usage": {"completion_tokens": think.num_tokens + ans.num_tokens}}


def serve_in_thread(engine, model_name: str, **kw):
    """Start the server on a daemon thread; returns (server, base_url). Stop with server.shutdown()."""
    server = make_server(engine, model_name, **kw)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="local HF model folder")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--api-key-env", default=None, help="environment variable holding the key clients must send")
    args = ap.parse_args()
    import os

    from s1.infer.transformers_backend import TransformersEngine

    key = os.environ[args.api_key_env] if args.api_key_env else None
    server = make_server(TransformersEngine(args.model), args.model, port=args.port, api_key=key)
    print(f"serving {args.model} on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
