"""Eval correctness: the cache key holds every generation setting, torn lines, paper Control, Table 1 pairing,
GPQA loading and letter grading, and rejection sampling's try limit (tiny model / scripted engine at the seam)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import REPO
from fake_engine import ScriptedEngine

from s1.cache import GenerationCache, JsonlCache
from s1.eval.metrics import scaling_metrics
from s1.infer.engine import Continuation

GPQA_CSV = REPO / "tests" / "data" / "gpqa_sample.csv"


def _cfg(tmp_path, model_dir, *overrides):
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose("eval", overrides=[
            "model=tiny", f"model.name_or_path={model_dir}", f"eval.model_path={model_dir}",
            f"paths.runs_dir={tmp_path}", "eval.benchmarks=[synthetic]", "eval.limit=1", "eval.budgets=[8]",
            "eval.methods=[bf]", "eval.include_base_model=false", "eval.max_new_tokens=16",
            "eval.budget_forcing.answer_max_tokens=4", "eval.budget_forcing.num_waits=1", "eval.batch_size=4",
            *overrides])


def _benches(cfg):
    from s1.data.benchmarks import benchmark_name, load_benchmark

    return {benchmark_name(b): load_benchmark(b, cfg.paths.benchmarks_dir, cfg.eval.aime_text, cfg.eval.limit)
            for b in cfg.eval.benchmarks}


def _generate(cfg, cache_path) -> int:
    from s1.eval.methods import plan_runs
    from s1.eval.runner import run_all

    cache = GenerationCache(cache_path)
    try:
        return run_all(plan_runs(cfg), _benches(cfg), cache, cfg)
    finally:
        cache.close()


# ---- torn last line -------------------------------------------------------------------------------------------

def test_generation_cache_keeps_the_record_after_a_torn_line(tmp_path):
    path = tmp_path / "generations.jsonl"
    cache = GenerationCache(path)
    cache.append({"model": "m", "benchmark": "b", "question_id": "q1", "method": "bf", "budget": 8, "sample": 0,
                  "settings": "s"})
    cache.close()
    with open(path, "a", encoding="utf-8") as f:      # a kill mid-write: half a line, no newline
        f.write('{"model": "m", "benchmark": "b", "question_id": "q2", "met')
    cache = GenerationCache(path)
    assert cache.torn == 1 and len(cache.records) == 1
    cache.append({"model": "m", "benchmark": "b", "question_id": "q3", "method": "bf", "budget": 8, "sample": 0,
                  "settings": "s"})
    cache.close()
    again = GenerationCache(path)
    again.close()
    assert sorted(r["question_id"] for r in again.records.values()) == ["q1", "q3"]   # q3 is not lost


def test_jsonl_cache_keeps_the_record_after_a_torn_line(tmp_path):
    path = tmp_path / "c.jsonl"
    JsonlCache(path).put_many({"a": {"v": 1}})
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "b", "v"')
    JsonlCache(path).put_many({"c": {"v": 3}})
    assert JsonlCache(path).data == {"a": {"v": 1}, "c": {"v": 3}}


# ---- the cache key holds every generation setting --------------------------------------------------------------

SETTING_CHANGES = [
    "eval.budget_forcing.wait_string=Hmm",
    "eval.budget_forcing.num_waits=2",
    "eval.budget_forcing.answer_prefix='Final Answer:'",
    "eval.budget_forcing.end_of_thinking='<|im_end|>'",
    "eval.budget_forcing.answer_max_tokens=3",
    "eval.temperature=0.7",
    "eval.max_new_tokens=15",
    "eval.system_prompt='You are terse.'",
    "eval.dtype=bfloat16",
    "eval.budget_forcing.think_prefix='<|im_start|>think '",
    "eval.budget_forcing.min_thinking_tokens=4",
    "eval.budget_forcing.adaptive_waits=true",
    "eval.budget_forcing.answer_reserve=2",
    "eval.budget_forcing.wait_on_new_line=false",
    "eval.budgets=[9]",                                   # max_thinking_tokens
    "eval.engine.max_model_len=2048",
]


@pytest.mark.slow
def test_changing_any_generation_setting_generates_anew(tmp_path, tiny_model_dir):
    path = tmp_path / "generations.jsonl"
    assert _generate(_cfg(tmp_path, tiny_model_dir), path) == 1
    assert _generate(_cfg(tmp_path, tiny_model_dir), path) == 0          # same settings: from the cache
    for change in SETTING_CHANGES:
        assert _generate(_cfg(tmp_path, tiny_model_dir, change), path) == 1, change
    # model weights: a copy with one changed byte near the end of the weights file is another model
    other = tmp_path / "other-model"
    shutil.copytree(tiny_model_dir, other)
    weights = next(other.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    from s1.eval.runner import model_fingerprint

    assert model_fingerprint(str(other)) != model_fingerprint(str(tiny_model_dir))
    assert _generate(_cfg(tmp_path, other), path) == 1
    # tokenizer files: the same weights with another tokenizer config or chat template are another model
    for name, edit in (("tokenizer_config.json", lambda t: t.replace("{", '{"model_max_length": 77, ', 1)),
                       ("chat_template.jinja", lambda t: t.replace("<|im_start|>", "<|im_start|> ", 1))):
        retok = tmp_path / f"retok-{name}"
        shutil.copytree(tiny_model_dir, retok)
        (retok / name).write_text(edit((retok / name).read_text()))
        assert model_fingerprint(str(retok)) != model_fingerprint(str(tiny_model_dir)), name
        assert _generate(_cfg(tmp_path, retok), path) == 1, name
    # seed: a new generation when sampling, the cached one when greedy (greedy decoding reads no seed)
    assert _generate(_cfg(tmp_path, tiny_model_dir, "eval.temperature=0.7", "eval.seed=1"), path) == 1
    assert _generate(_cfg(tmp_path, tiny_model_dir, "eval.temperature=0.7", "eval.seed=2"), path) == 1
    assert _generate(_cfg(tmp_path, tiny_model_dir, "eval.seed=2"), path) == 0
    # AIME text variant: the question text is in the key (first AIME24 problem whose two texts differ)
    from s1.data.benchmarks import load_benchmark

    rows = load_benchmark("aime24", REPO / "data" / "benchmarks", "problem_nofigures")
    i = next(i for i, r in enumerate(rows) if r["problem"] != r["problem_original"])
    aime = ["eval.benchmarks=[aime24]", f"eval.limit={i + 1}", "eval.max_new_tokens=8"]
    first = _generate(_cfg(tmp_path, tiny_model_dir, *aime, "eval.aime_text=problem_nofigures"), path)
    assert first == i + 1
    assert _generate(_cfg(tmp_path, tiny_model_dir, *aime, "eval.aime_text=problem"), path) >= 1
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len({r["settings"] for r in lines}) == len(lines)    # every generation under its own settings


# Settings that a generation here cannot show (another backend, a server, a method's own knob): the run's settings
# hash changes. (base overrides, the change)
HASH_CHANGES = [
    ((), "eval.backend=vllm"),
    ((), "+eval.engine_kwargs.quantization=fp8"),
    ((), "model.trust_remote_code=true"),
    (("eval.backend=openai", "eval.base_url=http://127.0.0.1:8000/v1"), "eval.base_url=http://127.0.0.1:8001/v1"),
    (("eval.methods=[rejection_sampling]",), "eval.rejection_max_tries=3"),
    (("eval.methods=[rejection_sampling]",), "eval.sampling_temperature=0.5"),
    (("eval.methods=[rejection_sampling]",), "eval.seed=12345"),
    (("eval.methods=[step_conditional_prompt_bf]", "eval.step_budgets=[2]"), "eval.tokens_per_step=2"),  # its cap
    (("eval.methods=[extrapolation_strings]",), "eval.extrapolation_waits=1"),
    (("eval.temperature=0.6",), "eval.top_p=0.95"),                 # nucleus sampling (R1-style protocol)
    ((), "eval.budget_forcing.answer_prefix_after_end='<|im_start|>answer:'"),   # forced after the model's own end
    ((), "eval.budget_forcing.plain_generation=true"),              # no_bf: no thinking control at all
    # the post-s1 methods' keys reach the key through their runs' budget-forcing overrides (docs/methods.md)
    (("eval.methods=[nowait]",), "eval.nowait.words=[Hmm]"),
    (("eval.methods=[alphaone]",), "eval.alphaone.p0=0.2"),
    (("eval.methods=[deer]", "eval.deer.thresholds=[0.9]"), "eval.deer.trial_answer_tokens=8"),
    (("eval.methods=[cap_stop_sentence]",), "eval.cap_sentence='Time is up.'"),
    (("eval.methods=[cap_finish_window]",), "eval.cap_window=0.3"),
    # the post-s1 methods (issue 32): each changes what is generated or recorded (record_confidence: confidence)
    ((), "eval.budget_forcing.ban_words=[Wait]"),
    ((), "eval.budget_forcing.cap_ending=stop_sentence"),
    ((), "eval.budget_forcing.cap_sentence='Stop now.'"),
    ((), "eval.budget_forcing.cap_window=0.2"),
    ((), "eval.budget_forcing.alpha=0.5"),
    ((), "eval.budget_forcing.alpha_p0=0.5"),
    ((), "eval.budget_forcing.alpha_schedule=constant"),
    ((), "eval.budget_forcing.step_boundary=Step"),
    ((), "eval.budget_forcing.deer_threshold=0.9"),
    ((), "eval.budget_forcing.trial_answer_tokens=8"),
    ((), "eval.budget_forcing.no_thinking=true"),
    ((), "eval.budget_forcing.record_confidence=true"),
]
# Not generation settings: the same hash (timeouts, batching, which questions / runs, grading, GPU memory share).
HASH_SAME = ["eval.seed=12345", "eval.batch_size=1", "eval.limit=2", "eval.budget_forcing.request_timeout_s=1",
             "eval.grading_timeout_s=1", "eval.engine.gpu_memory_utilization=0.5", "eval.sweep_sharing=false",
             # a post-s1 setting at its default: caches made before the setting existed stay valid
             "eval.budget_forcing.ban_words=[]", "eval.budget_forcing.cap_ending=hard",
             "eval.budget_forcing.alpha=null", "eval.budget_forcing.record_confidence=false"]


def _hashes(tmp_path, model_dir, *overrides) -> dict:
    from s1.eval.methods import plan_runs
    from s1.eval.runner import spec_settings_hash

    cfg = _cfg(tmp_path, model_dir, *overrides)
    return {(s.model, s.method, s.budget): spec_settings_hash(s, cfg) for s in plan_runs(cfg)}


@pytest.mark.parametrize("base,change", HASH_CHANGES)
def test_settings_hash_changes_with_each_setting_a_generation_cannot_show_here(tmp_path, tiny_model_dir, base, change):
    before, after = _hashes(tmp_path, tiny_model_dir, *base), _hashes(tmp_path, tiny_model_dir, *base, change)
    assert before.keys() == after.keys() and all(before[k] != after[k] for k in before), change


def test_settings_hash_ignores_what_does_not_change_a_generation(tmp_path, tiny_model_dir):
    base = _hashes(tmp_path, tiny_model_dir)
    for change in HASH_SAME:
        assert _hashes(tmp_path, tiny_model_dir, change) == base, change


def test_a_hub_model_is_keyed_by_the_commit_its_name_resolves_to(tmp_path, monkeypatch):
    """The weights of a hub name are the files of its resolved commit: a new commit on main is another model."""
    from huggingface_hub import constants

    from s1.eval.runner import model_fingerprint

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)     # the local hub cache, no HTTP
    ref = tmp_path / "models--org--model" / "refs" / "main"
    ref.parent.mkdir(parents=True)
    seen = set()
    for commit in ("a" * 40, "b" * 40):
        ref.write_text(commit)
        model_fingerprint.cache_clear()
        seen.add(model_fingerprint("org/model"))
    model_fingerprint.cache_clear()
    assert seen == {f"hub:org/model@{'a' * 40}", f"hub:org/model@{'b' * 40}"}


def test_every_eval_setting_is_a_tested_generation_setting_or_named_as_not_one():
    """A new eval key is either tested above as changing generations, or listed here with why it does not."""
    from dataclasses import fields

    from s1.config import BudgetForcingConfig, EvalConfig

    def eval_key(override: str) -> str:   # "+eval.engine_kwargs.x=1" -> engine_kwargs; budget_forcing.<key> kept
        parts = override.split("=")[0].lstrip("+").split(".")
        return ".".join(parts[1:3]) if parts[1] == "budget_forcing" else parts[1]

    tested = {eval_key(c) for c in SETTING_CHANGES + [c for _, c in HASH_CHANGES] if c.startswith(("eval.", "+eval."))}
    tested |= {"model_path", "aime_text", "budget_forcing.max_thinking_tokens"}   # other model, AIME text, budgets
    not_generation = {   # why each reaches the cache key another way, or cannot change what the model writes
        "benchmarks", "limit",                            # which questions: the question is in the key
        "num_samples", "majority_k", "samples_per_benchmark",   # how many samples: the sample index is in the key
        "methods", "include_base_model", "wait_counts", "extrapolation_strings", "adaptive_max_waits",
        "majority_model", "token_conditional_model", "step_conditional_model",   # which runs: model, method, budget
        "budgets", "token_budgets", "step_budgets", "rejection_budgets",   # the budget is in the key
        "class_ranges", "paper_model",                    # reporting only: Control ranges, paper numbers
        "gpqa",     # option order: in the question text (test_gpqa_release_option_order...); unread: scoring only
        "batch_size", "sweep_sharing",                    # batching (test_sweep_sharing: same records)
        "budget_forcing.request_timeout_s",               # wall clock: a timeout is recorded as an outcome
        "budget_forcing.adaptive_peek",   # keyed with adaptive_waits only (test_adaptive.py::test_only_adaptive_runs_key_the_peek)
        "output_dir", "grading_timeout_s", "grading_workers", "regrade", "api_key_env",
        "engine",                                         # dtype / max_model_len above; TP and memory share: numerics
        "no_thinking",     # k: how many samples (the sample index is in the key)
        "selectors",       # k: how many samples; m, keep: how the samples are voted (scoring only)
    }
    keys = {f.name for f in fields(EvalConfig)} | {f"budget_forcing.{f.name}" for f in fields(BudgetForcingConfig)}
    keys.discard("budget_forcing")
    unclassified = keys - tested - not_generation
    assert not unclassified, (f"{sorted(unclassified)}: add each to s1/eval/runner.py generation_settings and a change "
                              "to SETTING_CHANGES / HASH_CHANGES, or name it in not_generation with the reason")


# ---- Control as the paper defines it ---------------------------------------------------------------------------

def test_control_uses_a_minimum_only_when_one_is_set():
    pts = [(10.0, 20.0), (30.0, 40.0), (60.0, 50.0), (120.0, 55.0)]   # budgets 16/32/64/128, all under their caps
    assert scaling_metrics(pts, a_min=0, a_max=128)["control"] == 100.0
    assert scaling_metrics(pts, a_min=16, a_max=128)["control"] == 75.0  # the old [a_1, a_k] reading
    assert scaling_metrics(pts, a_min=0, a_max=None)["control"] is None


def _row(model, method, budget, acc, bench="aime24"):
    return {"model": model, "method": method, "budget": budget, "benchmark": bench, "accuracy": acc, "stderr": 0.0,
            "avg_thinking_tokens": 10.0, "questions": 30, "samples_per_question": 1}


def test_table1_puts_paper_numbers_beside_the_matching_setting_only():
    from s1.eval.report import table1

    metrics = {"rows": [_row("base", "no_bf", None, 20.0), _row("trained", "no_bf", None, 40.0),
                        _row("trained", "bf", 500, 30.0), _row("trained", "wait", 2, 45.0)]}
    lines = {ln.split(" | ")[0].strip("| "): ln for ln in table1(metrics).splitlines()[2:]}
    assert "26.7" in lines["base model without budget forcing"]
    assert "50.0" in lines["trained without budget forcing"]
    assert lines["trained with budget forcing (T=500)"].endswith("| – | – |")      # a cap is not Table 1's BF row
    assert "56.7" in lines["trained with budget forcing (2× Wait)"]                # the sweep's peak here


# ---- GPQA Diamond: loader and letter grading ------------------------------------------------------------------

def test_gpqa_csv_loads_with_fixed_shuffled_options_and_letter_answers():
    from s1.data.benchmarks import load_benchmark

    rows = load_benchmark(str(GPQA_CSV), REPO / "data" / "benchmarks")
    again = load_benchmark(str(GPQA_CSV), REPO / "data" / "benchmarks")
    assert rows == again and len(rows) == 4
    import csv

    raw = {r["Record ID"]: r for r in csv.DictReader(open(GPQA_CSV, encoding="utf-8"))}
    for r in rows:
        assert r["answer"] in "ABCD" and r["multiple_choice"]
        assert r["choices"]["ABCD".index(r["answer"])] == raw[r["id"]]["Correct Answer"]
        assert sorted(r["choices"]) == sorted(raw[r["id"]][c] for c in ("Correct Answer", "Incorrect Answer 1",
                                                                        "Incorrect Answer 2", "Incorrect Answer 3"))
        for k, letter in enumerate("ABCD"):
            assert f"\n{letter}) {r['choices'][k]}" in r["problem"]
    assert len({r["answer"] for r in rows}) > 1      # shuffled: the correct option is not always A


def test_gpqa_grading_is_by_letter():
    from s1.eval.runner import grade

    assert grade("thinking...\nAnswer: C", "C", "gpqa_sample", multiple_choice=True)
    assert grade("so \\boxed{(B)}", "B", "gpqa_sample", multiple_choice=True)
    assert grade("Answer: **D) 250 eV**", "D", "gpqa_sample", multiple_choice=True)
    assert not grade("Answer: B", "C", "gpqa_sample", multiple_choice=True)
    assert not grade("Answer: 2", "A", "gpqa_sample", multiple_choice=True)   # an option's text is not its letter
    assert grade("Answer: the answer is (C), since ...", "C", "gpqa_sample", multiple_choice=True)
    assert not grade("Answer: (B) or (C)", "C", "gpqa_sample", multiple_choice=True)   # two letters: no choice


def _release_process_docs(rows: list[dict], seed: int) -> list[str]:
    """The fork's gpqa/openai/utils.py process_docs (simplescaling/s1@77272c6, eval/lm-evaluation-harness), after
    lm-evaluation-harness's random.seed(random_seed): the correct answer's letter per question."""
    import random

    random.seed(seed)
    letters = []
    for doc in rows:
        choices = [doc["Incorrect Answer 1"], doc["Incorrect Answer 2"], doc["Incorrect Answer 3"],
                   doc["Correct Answer"]]
        random.shuffle(choices)
        letters.append(f"{chr(65 + choices.index(doc['Correct Answer']))}")
    return letters


def test_gpqa_release_option_order_reproduces_the_releases_letters():
    import csv

    from s1.data.benchmarks import load_benchmark

    with open(GPQA_CSV, encoding="utf-8", newline="") as f:
        raw = list(csv.DictReader(f))
    for seed in (0, 7):
        rows = load_benchmark(str(GPQA_CSV), "", gpqa_order="release", gpqa_seed=seed)
        assert [r["answer"] for r in rows] == _release_process_docs(raw, seed)
        assert rows[0]["problem"].startswith(raw[0]["Question"] + "\n\nA) ")
    seeded = load_benchmark(str(GPQA_CSV), "")
    assert [r["answer"] for r in seeded] != _release_process_docs(raw, 0) or len(raw) < 3


def test_gpqa_unread_answers_score_as_A_under_the_release_and_are_counted():
    from s1.eval.metrics import summarize
    from s1.eval.runner import apply_unread

    recs = [{"question_id": str(i), "sample": 0, "multiple_choice": True, "reference": ref, "unread": unread,
             "extracted": None if unread else ref, "correct": not unread, "outcome": "answered",
             "thinking_tokens": 1, "answer_tokens": 1} for i, (ref, unread) in
            enumerate([("A", True), ("B", True), ("C", False), ("D", False)])]
    wrong, as_a = summarize(apply_unread(recs, "wrong")), summarize(apply_unread(recs, "A"))
    assert wrong["accuracy"] == 50.0 and as_a["accuracy"] == 75.0        # the unread "A" question is a free point
    assert wrong["unread_choices"] == as_a["unread_choices"] == 2          # counted either way


def test_gpqa_missing_gives_the_fix(tmp_path):
    from s1.data.benchmarks import load_benchmark

    with pytest.raises(FileNotFoundError, match="HF_TOKEN|gpqa_diamond.csv"):
        load_benchmark("gpqa_diamond", tmp_path)


@pytest.mark.slow
def test_gpqa_is_evaluated_and_graded_on_the_tiny_model(tmp_path, tiny_model_dir):
    cfg = _cfg(tmp_path, tiny_model_dir, f"eval.benchmarks=[{GPQA_CSV}]", "eval.limit=2")
    path = tmp_path / "g.jsonl"
    assert _generate(cfg, path) == 2
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    assert all(r["multiple_choice"] and r["reference"] in "ABCD" and r["benchmark"] == "gpqa_sample" for r in recs)


# ---- rejection sampling: the try limit is reported, never silently a non-fitting sample ------------------------

def thinking_engine(tokenizer, lengths: list[int]) -> ScriptedEngine:
    """Thinks `lengths[attempt]` tokens (in request order), then ends thinking; answers "Answer: 4"."""
    def script(r, i):
        if r.text.rstrip().endswith(("Answer:", "<|im_start|>answer")):   # forced at the cap / after its own end
            return Continuation(" \\boxed{4}", 3, "eos")
        n = lengths.pop(0)
        return Continuation("x " * n, n, "stop", "<|im_start|>")

    return ScriptedEngine(tokenizer, script)


def test_rejection_sampling_stops_at_the_try_limit_and_counts_it(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from s1.eval.methods import RunSpec
    from s1.eval.metrics import summarize
    from s1.eval.runner import run_spec

    cfg = _cfg(tmp_path, tiny_model_dir, "eval.rejection_max_tries=3", "eval.max_new_tokens=400",
               "eval.budget_forcing.answer_max_tokens=8")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    spec = RunSpec("trained", str(tiny_model_dir), "rejection_sampling", 50, temperature=1.0, accept_max_thinking=50)
    rows = [{"id": "fits-2nd", "problem": "2+2?", "answer": "4"}, {"id": "never", "problem": "2+2?", "answer": "4"}]
    cache = GenerationCache(tmp_path / "r.jsonl")
    # attempt 1: both think too long; attempt 2: the first fits; attempt 3 (the last): the second still does not
    engine = thinking_engine(tok, [80, 90, 30, 95, 99])
    assert run_spec(engine, spec, [("t", rows[0], 0), ("t", rows[1], 0)], cache, cfg) == 2
    recs = {r["question_id"]: r for r in cache.records.values()}
    assert recs["fits-2nd"]["accepted"] and recs["fits-2nd"]["tries"] == 2 and recs["fits-2nd"]["correct"]
    assert not recs["never"]["accepted"] and recs["never"]["tries"] == 3
    assert not recs["never"]["correct"]                   # scored wrong although its answer is right
    s = summarize(list(recs.values()))
    assert s["no_fit_within_tries"] == 1 and s["accuracy"] == 50.0


def test_rejection_sampling_resamples_until_a_sample_fits_as_the_release(tmp_path, tiny_model_dir):
    """The release resamples until a sample fits: under the default safety limit a question that fits on its 10th
    try is resampled to it (scored by that sample), not given up."""
    from transformers import AutoTokenizer

    from s1.eval.methods import RunSpec
    from s1.eval.runner import run_spec

    cfg = _cfg(tmp_path, tiny_model_dir, "eval.max_new_tokens=400", "eval.budget_forcing.answer_max_tokens=8")
    assert cfg.eval.rejection_max_tries >= 100                 # a safety limit far above the release's usual tries
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    spec = RunSpec("trained", str(tiny_model_dir), "rejection_sampling", 50, temperature=1.0, accept_max_thinking=50)
    cache = GenerationCache(tmp_path / "r.jsonl")
    engine = thinking_engine(tok, [80 + i for i in range(9)] + [40])        # tries 1-9 too long, the 10th fits
    assert run_spec(engine, spec, [("t", {"id": "q", "problem": "2+2?", "answer": "4"}, 0)], cache, cfg) == 1
    (rec,) = cache.records.values()
    assert rec["accepted"] and rec["tries"] == 10 and rec["correct"] and rec["thinking_tokens"] <= 50


# ---- conditional-control models: the paper's prompts and stops ------------------------------------------------

def test_conditional_methods_need_their_trained_model(tmp_path, tiny_model_dir):
    from s1.eval.methods import plan_runs
    from s1.runtime import ConfigError

    cfg = _cfg(tmp_path, tiny_model_dir, "eval.methods=[step_conditional_bf]")
    with pytest.raises(ConfigError, match="eval.step_conditional_model.*train.transform=step_conditional"):
        plan_runs(cfg)


@pytest.mark.slow
def test_conditional_models_run_with_the_papers_prompts_and_stops(tmp_path, tiny_model_dir):
    from s1.eval.methods import plan_runs
    from s1.infer.prompts import CONDITIONAL_END, STEP_OVERRUN

    cfg = _cfg(tmp_path, tiny_model_dir, "eval.methods=[step_conditional_bf,token_conditional,class_conditional]",
               f"eval.step_conditional_model={tiny_model_dir}", f"eval.token_conditional_model={tiny_model_dir}",
               "eval.tokens_per_step=4")
    runs = {(r.method if r.method != "class_conditional" else r.budget): r for r in plan_runs(cfg)}
    assert runs["step_conditional_bf"].instruction == "Think for up to 2 steps."       # 8 tokens / 4 per step
    assert runs["step_conditional_bf"].bf({})["end_of_thinking"] == STEP_OVERRUN
    assert runs["token_conditional"].instruction == "Think for up to 8 tokens."
    assert runs["token_conditional"].bf({})["end_of_thinking"] == CONDITIONAL_END
    assert runs["token_conditional"].max_thinking_tokens is None                     # no forcing without _bf
    assert runs["short"].instruction.startswith("Answer after a short amount of thinking.")
    assert runs["long"].instruction.startswith("Answer after a long amount of thinking.")
    path = tmp_path / "c.jsonl"
    assert _generate(cfg, path) == 4                     # 1 question × (1 + 1 + 2 classes)


def test_paper_s1_plans_every_method_on_the_three_benchmarks(tmp_path):
    from hydra import compose, initialize_config_dir

    from s1.eval.checks import check_eval_config
    from s1.eval.methods import plan_runs
    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("eval", overrides=["experiment=paper_s1", "eval.model_path=simplescaling/s1-32B",
                                         f"paths.runs_dir={tmp_path}"])
    check_eval_config(cfg)
    e = cfg.eval
    assert list(e.benchmarks) == ["aime24", "math500", "gpqa_diamond"] and e.dtype == "float32"
    assert {"aime24", "aime_2022_2023", "math500", "gpqa_diamond", "livecodebench"} <= set(cfg.curate.decontam.benchmarks)
    runs = plan_runs(cfg)
    by = {}
    for r in runs:
        by.setdefault((r.model, r.method), []).append(r)
    assert [r.budget for r in by[("trained", "extrapolation_strings")]] == ["Wait", "Hmm", "Alternatively", "none"]
    assert all(r.num_waits == 2 for r in by[("trained", "extrapolation_strings")])
    assert [r.num_waits for r in by[("trained", "wait")]] == [1, 2, 4, 6]
    [maj] = by[("base", "majority")]
    assert maj.model_path == "Qwen/Qwen2.5-32B-Instruct" and maj.samples == 64 and maj.temperature == 1.0
    assert [r.budget for r in by[("trained", "bf")]] == [500, 1000, 2000, 4000, 8000, 16000]
    assert {("trained", m) for m in ("class_conditional", "rejection_sampling", "token_conditional_prompt",
                                     "step_conditional_prompt_bf")} <= set(by)


def test_table3_pairs_the_papers_numbers_with_its_own_methods_only():
    from s1.eval.report import table3

    scaling = [{"model": m, "method": meth, "benchmark": b, "budgets": 4, "control_range": [0, 16000],
                "control": 100.0, "scaling": 1.0, "performance": 50.0}
               for m, meth, b in [("trained", "bf", "aime24"), ("trained", "bf", "math500"),
                                  ("trained", "token_conditional_prompt", "aime24"),
                                  ("token_model", "token_conditional", "aime24")]]
    lines = table3({"scaling": scaling, "rows": []}).splitlines()[2:]
    assert lines[0].endswith("| 100% / 15 / 56.7 |")          # budget forcing on AIME24
    assert lines[1].endswith("| – |")                          # the paper's Table 3 is AIME24 only
    assert lines[2].endswith("| – |")                          # prompt-only is not the paper's method
    assert lines[3].endswith("| 40% / -24 / 40.0 |")
