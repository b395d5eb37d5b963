"""A small OpenAI-compatible completions server over the transformers backend (tests, demos, laptops).

    python -m s1.infer.server --model .cache/models/tiny-qwen2 --port 8000

Binds to 127.0.0.1 only, serves one request at a time, caps request size and
max_tokens. Answers POST /v1/completions (prompt: str or list of str,
max_tokens, stop, temperature, seed) and GET /v1/models. Like vLLM it
reports the matched stop string in `stop_reason` (None at end of text).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from s1.infer.engine import Request

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_TOKENS_CAP = 4096
MAX_PROMPTS = 256


def make_server(engine, model_name: str, *, port: int = 0, api_key: str | None = None) -> HTTPServer:
    """An HTTPServer on 127.0.0.1:port (0 = any free port) answering with `engine`."""

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
            if not self._authorized():
                return
            if self.path.rstrip("/") != "/v1/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            size = int(self.headers.get("Content-Length") or 0)
            if size > MAX_BODY_BYTES:
                return self._send(413, {"error": {"message": f"body over {MAX_BODY_BYTES} bytes"}})
            try:
                body = json.loads(self.rfile.read(size))
                self._send(200, complete(engine, model_name, body))
            except (ValueError, KeyError, TypeError) as e:
                self._send(400, {"error": {"message": str(e)}})

    return HTTPServer(("127.0.0.1", port), Handler)


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


def serve_in_thread(engine, model_name: str, *, port: int = 0, api_key: str | None = None):
    """Start the server on a daemon thread; returns (server, base_url). Stop with server.shutdown()."""
    server = make_server(engine, model_name, port=port, api_key=api_key)
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
