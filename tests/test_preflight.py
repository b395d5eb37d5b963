"""The preflight (s1/cluster/preflight.py): what the paper's jobs need from the machines, checked before anything is
queued. The job interpreter is probed for real (this venv: CPU torch, no vLLM) or replaced by a fake interpreter
that answers the probe; the LLM endpoint and the hub are a stub HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import huggingface_hub.constants
import pytest

import s1.cluster.slurm as slurm
from s1.cluster import pipeline
from s1.cluster.preflight import PreflightFailed
from s1.cluster.submit import submit_stage


@pytest.fixture
def stub():
    """An OpenAI-compatible chat endpoint (POST) that is also a hub (GET /api/...: 401 without a token)."""
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            calls.append(("POST", self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.reply(200, {"choices": [{"message": {"role": "assistant", "content": "Yes"}}]})

        def do_GET(self):
            calls.append(("GET", self.path, None))
            self.reply(401, {"error": "no token"})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()


def fake_python(path, probe: dict):
    """A fake job interpreter: answers the probe with `probe`."""
    path.write_text(f"#!/bin/bash\necho 'S1_PROBE {json.dumps(probe)}'\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def gpu_python(tmp_path):
    return fake_python(tmp_path / "gpu-python", {"torch": "2.14.0+cu130", "cuda": "13.0", "vllm": "0.33.0",
                                                 "deepspeed": "0.19.8"})


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """No token anywhere, an empty hub cache, the hub's address unanswered, and the hub allowed (not offline)."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # discard port: refused at once
    return tmp_path / "hf" / "hub"


def dry_run(tmp_path, capsys, *overrides) -> tuple[int, list[str]]:
    rc = pipeline.main([f"paths.runs_dir={tmp_path / 'runs'}", "experiment=paper_s1", "cluster.dry_run=true", *overrides])
    captured = capsys.readouterr()
    return rc, [x for x in captured.err.splitlines() if x.startswith("preflight:")]


def test_paper_dry_run_lists_each_missing_prerequisite_until_none_is_left(tmp_path, capsys, monkeypatch, stub,
                                                                         gpu_python, no_hub):
    url, calls = stub
    # This venv as the jobs' interpreter: CPU torch, no vLLM. Every missing prerequisite is one line.
    rc, lines = dry_run(tmp_path, capsys, f"cluster.python={sys.executable}")
    assert rc == 2
    keys = [x.split("=")[0].removeprefix("preflight: ") for x in lines]
    assert keys[:2] == ["cluster.python", "cluster.python"], lines
    assert "built without CUDA" in lines[0] and "cannot import vllm" in lines[1] and "make gpu-env" in lines[0]
    assert sum("curate.traces.base_url=None" in x and "curate.difficulty.grader" in x for x in lines) == 1
    assert sum("'Idavidrein/gpqa'" in x and "HF_TOKEN" in x for x in lines) == 2   # curate decontam, eval benchmark
    hub = [x for x in lines if "does not answer" in x]
    assert len(hub) == 1 and "simplescaling/data_ablation_full59K" in hub[0] and "make prefetch" in hub[0]
    assert len(lines) == 6, lines

    fixes = [f"cluster.python={gpu_python}",                                            # the CUDA interpreter
             f"curate.traces.base_url={url}/v1", "curate.traces.model=judge"]           # the judge
    rc, lines = dry_run(tmp_path, capsys, *fixes)
    assert rc == 2 and not [x for x in lines if x.startswith("preflight: cluster.python")]
    assert not [x for x in lines if "curate.traces" in x], lines
    assert [c for c in calls if c[0] == "POST" and c[1] == "/v1/chat/completions" and c[2]["max_tokens"] == 1]
    assert len(lines) == 3, lines                                                       # token x 2, hub

    monkeypatch.setenv("HF_TOKEN", "hf_test")                                            # the gated set's token
    rc, lines = dry_run(tmp_path, capsys, *fixes)
    assert rc == 2 and len(lines) == 1 and "does not answer" in lines[0]

    monkeypatch.setenv("HF_ENDPOINT", url)                                               # the hub answers here
    rc, lines = dry_run(tmp_path, capsys, *fixes)
    assert (rc, lines) == (0, [])
    assert ("GET", "/api/whoami-v2", None) in calls


def test_offline_jobs_need_everything_in_the_hub_cache(tmp_path, capsys, monkeypatch, gpu_python, no_hub):
    """run.offline=true (after make prefetch): nothing may be missing from the hub cache; the hub is not asked."""
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    args = [f"cluster.python={gpu_python}", "curate.difficulty.grader=math_verify", "curate.domains.method=labels",
            "run.offline=true"]
    rc, lines = dry_run(tmp_path, capsys, *args)
    missing = sorted(x.split("'")[1] for x in lines)
    assert rc == 2 and missing == ["AI-MO/aimo-validation-aime", "Idavidrein/gpqa", "Qwen/Qwen2.5-32B-Instruct",
                                   "Qwen/Qwen2.5-7B-Instruct", "livecodebench/code_generation_lite",
                                   "simplescaling/data_ablation_full59K"], lines
    for line in lines:
        kind = "model" if "Qwen/" in line else "dataset"
        (no_hub / f"{kind}s--{line.split(chr(39))[1].replace('/', '--')}" / "snapshots" / "abc").mkdir(parents=True)
    assert dry_run(tmp_path, capsys, *args) == (0, [])


def test_a_real_submission_refuses_unless_preflight_warn(tmp_path, capsys, monkeypatch, no_hub):
    """Nothing reaches sbatch while a check fails; cluster.preflight=warn submits and prints the failures."""
    submitted = []
    monkeypatch.setattr(slurm, "sbatch", lambda script, dependency=None: submitted.append(script) or "42")
    monkeypatch.setattr("s1.cluster.checks.check_slurm_here", lambda cfg: None)
    args = [f"paths.runs_dir={tmp_path / 'runs'}", "experiment=paper_s1", "curate.difficulty.grader=math_verify",
            "curate.domains.method=labels", "curate.decontam.benchmarks=[aime24]",
            f"cluster.python={fake_python(tmp_path / 'cpu-python', {'torch': '2.14.0+cpu', 'cuda': None})}"]
    cfg = pipeline.compose_stage("curate", args)
    with pytest.raises(PreflightFailed, match="built without CUDA"):
        submit_stage(cfg, "curate", args)
    assert submitted == []
    cfg = pipeline.compose_stage("curate", [*args, "cluster.preflight=warn"])
    assert submit_stage(cfg, "curate", args) == "42" and len(submitted) == 1
    assert "preflight (cluster.preflight=warn, submitting anyway): cluster.python=" in capsys.readouterr().out


def test_time_limit_below_the_estimate_warns(tmp_path, capsys, gpu_python, no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    rc = pipeline.main([f"paths.runs_dir={tmp_path / 'runs'}", "experiment=paper_s1", "cluster.dry_run=true",
                        "cluster.stage_time.eval=01:00:00", "cluster.preflight=warn", f"cluster.python={gpu_python}"])
    out = capsys.readouterr().out
    warning = [x for x in out.splitlines() if x.startswith("preflight warning: cluster.stage_time.eval='01:00:00'")]
    assert rc == 2 and len(warning) == 1 and "728 questions" in warning[0], out[-2000:]


def test_setup_lines_run_before_the_probe(gpu_python):
    """cluster.setup (module load, conda activate) runs first under set -e, as in the job: a failing line fails."""
    from s1.cluster.preflight import probe_python

    assert probe_python(str(gpu_python), ["export X=1"], {})["cuda"] == "13.0"
    assert probe_python(str(gpu_python), ["echo setting up >&2; false"], {})["error"].startswith("exit 1: setting up")
