"""The local OpenAI-compatible server refuses requests whose length it cannot trust (no model needed: these are
answered before any generation)."""

from __future__ import annotations

import http.client
import json

import pytest

from s1.infer.server import serve_in_thread


@pytest.mark.parametrize("length", ["-1", "-5000", "twelve", None])
def test_bad_content_length_is_refused_not_read_to_the_end(length):
    """A negative length once meant "read until the client closes": the client waited for an answer forever."""
    server, url = serve_in_thread(None, "tiny")
    try:
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)  # the connection stays open
        conn.putrequest("POST", "/v1/completions")
        if length is not None:
            conn.putheader("Content-Length", length)
        conn.endheaders(b'{"prompt": "x", "max_tokens": 1}')
        reply = conn.getresponse()  # socket timeout here = the server is still reading the body
        assert reply.status == 400
        assert "Content-Length must be" in json.loads(reply.read())["error"]["message"]
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_chat_reply_forces_the_answer_as_budget_forcing_does(chatty_model_dir):
    """A thinking reply cut at its cap gets the release's "\\n<|im_start|>answer\\nFinal Answer:"; the reply's
    content is the answer section ("Final Answer: ..."), the thinking goes to reasoning_content."""
    from s1.infer import load_engine
    from s1.infer.server import chat

    engine = load_engine("transformers", str(chatty_model_dir), max_context=4096)
    seen = []
    real = engine.continue_batch
    engine.continue_batch = lambda reqs: (seen.extend(reqs), real(reqs))[1]
    # a question on which the chatty model thinks past the 6-token cap (on "add 4, 5 times" it ends after 4 tokens)
    body = {"messages": [{"role": "user", "content": "Start at 7, add 9, 12 times. Last digit?"}], "max_tokens": 64}
    msg = chat(engine, "tiny", body, "field", think_tokens=6, answer_tokens=3)["choices"][0]["message"]
    think, answer = seen
    assert answer.text == think.text + msg["reasoning_content"] + (
        "" if msg["reasoning_content"].endswith("\n") else "\n") + "<|im_start|>answer\nFinal Answer:"
    assert msg["content"].startswith("Final Answer:")
