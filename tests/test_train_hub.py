"""train.push_to_hub against a local stand-in of the hub's HTTP API (a true seam: huggingface_hub talks to
HF_ENDPOINT=http://127.0.0.1:<port>): the repo is created private, every file of final/ arrives byte for byte,
the token goes only into the Authorization header and never into logs or files."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import REPO

from s1.data.synthetic import generate_pool, write_jsonl

TOKEN = "hf_standin_secret_0123456789"


class Hub(BaseHTTPRequestHandler):
    """The three calls an upload makes: create the repo, ask how to upload each file, commit (files inline)."""
    requests: list[dict] = []
    files: dict[str, bytes] = {}

    def log_message(self, *args):  # quiet
        pass

    def reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        Hub.requests.append({"method": "GET", "path": self.path, "auth": self.headers.get("authorization")})
        self.reply(404, {"error": "not in the stand-in"})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        Hub.requests.append({"method": "POST", "path": self.path, "auth": self.headers.get("authorization"),
                             "body": raw})
        path = self.path.split("?")[0]
        if path == "/api/repos/create":
            body = json.loads(raw)
            return self.reply(200, {"url": f"http://{self.headers['host']}/{body.get('organization')}/{body['name']}"})
        if "/preupload/" in path:
            files = json.loads(raw)["files"]
            return self.reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                              for f in files]})
        if "/commit/" in path:
            for line in raw.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    Hub.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            repo = path.split("/api/models/", 1)[1].split("/commit/", 1)[0]
            return self.reply(200, {"commitUrl": f"http://{self.headers['host']}/{repo}/commit/{'0' * 40}",
                                    "commitOid": "0" * 40, "success": True})
        self.reply(404, {"error": "not in the stand-in"})


@pytest.fixture
def hub():
    Hub.requests, Hub.files = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.slow
def test_push_to_hub_uploads_final_privately_and_never_logs_the_token(hub, tiny_model_dir, tmp_path):
    data = write_jsonl(generate_pool(16, seed=3, flaws=False), tmp_path / "s1k.jsonl")
    env = dict(os.environ, HF_ENDPOINT=hub, HF_TOKEN=TOKEN, HF_HUB_OFFLINE="0", PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(REPO / "scripts" / "train.py"), f"model.name_or_path={tiny_model_dir}",
           f"paths.runs_dir={tmp_path / 'runs'}", "run.name=hub", "run.offline=false", f"train.dataset={data}",
           "train.max_steps=1", "train.global_batch_size=4", "train.micro_batch_size=4", "train.block_size=256",
           "train.bf16=false", "train.gradient_checkpointing=false", "train.save_steps=0", "train.wandb_mode=off",
           "train.push_to_hub=true", "train.hub_model_id=someone/s1-tiny"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    create = next(r for r in Hub.requests if r["path"] == "/api/repos/create")
    body = json.loads(create["body"])
    assert body.get("visibility") == "private" or body.get("private") is True  # huggingface_hub 2.x: visibility
    assert json.loads(create["body"])["name"] == "s1-tiny"
    uploads = [r for r in Hub.requests if r["method"] == "POST"]  # create, preupload, commit
    assert len(uploads) == 3 and all(r["auth"] == f"Bearer {TOKEN}" for r in uploads)  # the token goes only here
    final = tmp_path / "runs" / "hub" / "train" / "final"
    sent = {p.relative_to(final).as_posix(): p.read_bytes() for p in final.rglob("*") if p.is_file()}
    assert "model.safetensors" in sent and Hub.files == sent
    summary = json.loads((final.parent / "train_summary.json").read_text())
    assert summary["hub"] == {"repo": "someone/s1-tiny", "url": f"{hub}/someone/s1-tiny", "private": True,
                              "commit": "0" * 40}
    written = "".join(p.read_text(errors="ignore") for p in (tmp_path / "runs").rglob("*")
                      if p.is_file() and p.suffix in (".json", ".jsonl", ".yaml", ".log", ".txt"))
    for text in (proc.stdout, proc.stderr, written):
        assert TOKEN not in text


def test_push_needs_a_token_and_the_network_before_any_work(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("HF_TOKEN", None)
    base = [sys.executable, str(REPO / "scripts" / "train.py"), f"paths.runs_dir={tmp_path}",
            "train.dataset=simplescaling/s1K", "train.block_size=256", "train.push_to_hub=true",
            "train.hub_model_id=someone/s1"]
    offline = subprocess.run(base, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert offline.returncode == 2 and "run.offline=false" in offline.stderr
    no_token = subprocess.run([*base, "run.offline=false"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
    assert no_token.returncode == 2 and "export HF_TOKEN" in no_token.stderr
    assert not (tmp_path / "demo").exists()
