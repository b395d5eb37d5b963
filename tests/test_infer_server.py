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
