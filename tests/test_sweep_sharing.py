"""A shared budget sweep writes exactly the records of the same sweep run one setting at a time (greedy)."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from collections import Counter

import torch
from conftest import require_or_skip

from s1.cache import GenerationCache
from s1.cluster.pipeline import compose_stage
from s1.data.benchmarks import benchmark_name, load_benchmark
from s1.eval.methods import plan_runs
from s1.eval.runner import run_all


def _word_it_writes(model_dir, questions, new_tokens: int = 40) -> str:
    """A whole-word token (" word") the model writes greedily in most of these questions' thinking: used as the end
    of thinking, so the sweep's Waits really fire whatever random weights the tokenizer version gives."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from s1.infer import build_prompt

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    seen = Counter()
    for q in questions:
        ids = tok(build_prompt(tok, q), return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=new_tokens, do_sample=False)[0, ids.shape[1]:]
        seen.update({w for w in (tok.decode([t]) for t in out.tolist())
                     if w.startswith(" ") and w[1:].isalpha() and len(w) > 3})
    word, count = seen.most_common(1)[0]
    assert count >= 2, seen
    return word


def _records(tmp_path, model_dir, name, *extra):
    """The demo's sweep shape (4 caps + no cap, Wait x1/x2/x4, Table 4's strings x2) on 5 synthetic questions;
    returns the cache records."""
    cfg = compose_stage("eval", [
        "model=tiny", "model.build_tiny=null", f"model.name_or_path={model_dir}", f"eval.model_path={model_dir}",
        f"paths.runs_dir={tmp_path}", f"run.name={name}", "eval.benchmarks=[synthetic]", "eval.limit=5",
        "eval.methods=[no_bf,bf,wait,extrapolation_strings]", "eval.budgets=[6,12,20,33,null]",
        "eval.wait_counts=[1,2,4]", "eval.extrapolation_strings=[Wait,Hmm,'']", "eval.extrapolation_waits=2",
        "eval.include_base_model=false", "eval.max_new_tokens=70", "eval.batch_size=3",
        "eval.budget_forcing.answer_max_tokens=5", *extra])
    e = cfg.eval
    benches = {benchmark_name(b): load_benchmark(b, cfg.paths.benchmarks_dir, e.aime_text, e.limit)
               for b in e.benchmarks}
    cache = GenerationCache(tmp_path / f"{name}.jsonl")
    made = run_all(plan_runs(cfg), benches, cache, cfg)
    cache.close()
    assert made == len(cache.records) == 5 * 12     # 11 shared settings (bf at null = auto) + no_bf, plain, alone
    return cache.records


def test_shared_sweep_writes_the_one_by_one_records(tmp_path, chatty_model_dir, caplog):
    questions = [r["problem"] for r in load_benchmark("synthetic", "", limit=5)]
    end = f"eval.budget_forcing.end_of_thinking='{_word_it_writes(chatty_model_dir, questions)}'"
    with caplog.at_level(logging.INFO, logger="s1.eval"):
        shared = _records(tmp_path, chatty_model_dir, "shared", end)
    assert "one shared sweep of 11 settings" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="s1.eval"):
        alone = _records(tmp_path, chatty_model_dir, "alone", end, "eval.sweep_sharing=false")
    assert "shared sweep" not in caplog.text
    assert shared.keys() == alone.keys()
    for key in alone:   # everything but the wall time
        assert {**shared[key], "seconds": 0} == {**alone[key], "seconds": 0}, key
    assert any(r["waits_used"] for r in alone.values() if r["method"] == "wait"), "waits should really happen"
    strings = [r for r in alone.values() if r["method"] == "extrapolation_strings" and r["waits_used"]]
    assert {r["budget"] for r in strings} >= {"Wait", "Hmm"}, "each string should really be forced"
    assert any(" Hmm" in r["text"] or "Hmm" in r["text"] for r in strings if r["budget"] == "Hmm")
    assert len({r["text"] for r in alone.values()}) > 20, "settings should differ"


def test_shared_sweep_on_vllm_equals_one_setting_at_a_time(tiny_model_dir, tmp_path, monkeypatch):
    """The same equivalence on vLLM (prefix caching instead of forked KV caches), where vLLM is installed."""
    if importlib.util.find_spec("vllm") is None:
        require_or_skip("vllm", "vLLM is not installed in this environment (it lives in the vLLM one): run `make test-vllm`")
    from transformers import AutoConfig, AutoModelForCausalLM

    from s1.infer import build_prompt, generate, load_engine
    from s1.infer.budget_forcing import DEFAULTS, generate_sweep
    from s1.infer.engine import Request

    for k, v in {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1",
                 "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "hd32"
    shutil.copytree(tiny_model_dir, out)
    config = AutoConfig.from_pretrained(out)
    config.num_attention_heads, config.num_key_value_heads = 2, 1          # head_dim 32: vLLM's CPU attention needs >= 32
    config.head_dim = config.hidden_size // 2
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.5)
    model.save_pretrained(out)
    engine = load_engine("vllm", str(out), dtype="float32", max_context=512, enforce_eager=True,
                         distributed_executor_backend="uni", bf_mode="rounds")   # sharing is the rounds
    prompts = [build_prompt(engine.tokenizer, f"Start at {i}, add 4, {i + 3} times. Last digit?") for i in range(4)]
    settings = [{"max_thinking_tokens": c} for c in (6, 12, 20, 33)] + \
        [{"max_thinking_tokens": None, "num_waits": w} for w in (1, 2, 4)]
    free = engine.continue_batch([Request(prompts[0], 60, [])])[0].text     # a stop this model writes often
    stop = Counter(free[i:i + 2] for i in range(len(free) - 1) if free[i:i + 2].isalpha()).most_common(1)[0][0]
    bf = dict(DEFAULTS, end_of_thinking=stop, answer_max_tokens=5)
    alone = [generate(engine, prompts, dict(bf, **st), max_new_tokens=70, batch_size=4, progress=False)
             for st in settings]
    shared = generate_sweep(engine, prompts, settings, bf, max_new_tokens=70, batch_size=4, progress=False)
    assert shared == alone
