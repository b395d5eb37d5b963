"""A slice of `make rehearsal` (experiment=rehearsal): the real Qwen2.5 0.5B through every stage, small.

The same config and stage scripts as `make rehearsal`, cut to 8 pool rows, a s1K of 2, 2 training steps at block
size 128 in one process without DeepSpeed, in bf16 as the rehearsal (ZeRO-3 over 2 processes: `make rehearsal`
runs it, ~14 GiB; tests/test_train_run.py checks ZeRO-3 on the tiny model), and 2 AIME24 +
2 MATH500 questions. Skipped where the real model is not built
(`make real-model`). In the vLLM venv (`make test-vllm`) the model runs on vLLM, as in the rehearsal; in the main
venv (`make test`) the same stages run on the transformers engine (the only override).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CACHE, REPO, require_or_skip, run_script

REAL_MODEL = CACHE / "models" / "qwen2.5-0.5b-local"

try:
    import vllm  # noqa: F401
    ENGINE = "vllm"
except Exception:  # not installed here, or a CUDA-built extra that fails to load
    ENGINE = "transformers"

SLICE = ["curate.sources.0.size=8", "curate.diversity.num_samples=2", "curate.difficulty.max_new_tokens=24",
         "curate.difficulty.batch_size=8", "curate.traces.max_tokens=4",
         "train.max_steps=2", "train.block_size=128", "train.nproc_per_node=1", "train.deepspeed=null",
         "train.save_steps=0",      # no checkpoint: the final model alone is 1.2 GB of disk
         "eval.limit=2", "eval.budgets=[null,16]", "eval.wait_counts=[1]", "eval.max_new_tokens=48",
         "eval.budget_forcing.answer_max_tokens=16"]
ON_TRANSFORMERS = ["curate.difficulty.backend=transformers", "curate.traces.serve_backend=transformers",
                   "eval.backend=transformers"]


@pytest.mark.slow
def test_rehearsal_slice_runs_every_stage_on_the_real_model(tmp_path):
    if not (REAL_MODEL / "config.json").exists():
        require_or_skip("real-model", f"the real model is not built at {REAL_MODEL}: run `make real-model`")
    args = ["experiment=rehearsal", f"paths.runs_dir={tmp_path}", "run.name=slice", *SLICE]
    if ENGINE == "transformers":
        args += ON_TRANSFORMERS
    for script in ("curate.py", "train.py", "eval.py"):
        run_script(script, *args, timeout=1200)
    run = tmp_path / "slice"
    subprocess.run([sys.executable, str(REPO / "scripts" / "report.py"), str(run)], cwd=REPO, check=True,
                   capture_output=True, timeout=300)

    # curate: a real funnel (every step's input is the previous step's output; drops add up) down to the s1K
    steps = json.loads((run / "curate" / "funnel.json").read_text())["steps"]
    assert steps[0]["step"] == "load" and steps[0]["kept"] == 8
    for before, step in zip(steps, steps[1:]):
        assert step["in"] == before["kept"], step["step"]
        assert step["in"] - step["kept"] == sum(step["dropped"].values()), step["step"]
    s1k = [json.loads(line) for line in (run / "curate" / "s1k.jsonl").read_text().splitlines()]
    assert len(s1k) == steps[-1]["kept"] == 2
    references = [json.loads(line) for f in (run / "curate" / "cache").rglob("*.jsonl")
                  for line in f.read_text().splitlines()]
    assert references, "the real model should have answered the pool questions (reference cache)"

    # train: 2 real steps, a finite loss at each, a model dir with the real template
    summary = json.loads((run / "train" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["data"]["kept"] == 2
    losses = [json.loads(line)["loss"] for line in (run / "train" / "train_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 2 and all(math.isfinite(x) and x > 0 for x in losses)
    final = Path(summary["final"]) if Path(summary["final"]).is_absolute() else REPO / summary["final"]
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(final).chat_template
    assert "<|im_start|>" in template, "the trained model dir should carry the real ChatML template"

    # eval: the trained real model, no cap, a thinking cap and one forced "Wait", on both benchmarks
    rows = json.loads((run / "eval" / "metrics.json").read_text())["rows"]
    seen = {(r["benchmark"], r["method"], r["budget"]) for r in rows if r["model"] == "trained"}
    for bench in ("aime24", "math500"):
        assert {(bench, "no_bf", None), (bench, "bf", 16)} <= seen, seen
        assert any(b == bench and m == "wait" for b, m, _ in seen), seen
    assert all(r["questions"] == 2 for r in rows)
    report = (run / "report.md").read_text()
    for section in ("### Funnel", "## Training", "### Table 1 layout"):
        assert section in report
    assert not list((run / "train").rglob("checkpoint-*")), "train.save_steps=0 should write no checkpoint"
    shutil.rmtree(final)    # 2.5 GB
