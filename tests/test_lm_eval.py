"""`--model s1` inside lm-evaluation-harness: the same generations and accuracy as `make eval`, the release's
gen_kwargs, generation-only errors, seeded sampling. One `make eval` run and one harness CLI run (subprocesses);
the other settings run in this process through lm_eval.simple_evaluate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO, run_script

# LIMIT: the first AIME24 questions; with the chatty tiny model of tiny_model.BUILD_VERSION 7 the 7th is the first
# where it ends its thinking on its own, which the Wait test needs (a rebuilt tokenizer changes which ones do)
LIMIT, CAP, MAX_GEN, BATCH = 8, 48, 200, 2
THINK = "<|im_start|>think\n"


@pytest.fixture(scope="module")
def make_eval(tmp_path_factory, chatty_model_dir):
    """make eval on the first AIME24 questions: thinking cap CAP with one Wait, and Wait x1 with no cap (greedy)."""
    runs = tmp_path_factory.mktemp("runs")
    run_script("eval.py", "model=tiny", f"model.name_or_path={chatty_model_dir}", f"eval.model_path={chatty_model_dir}",
               f"paths.runs_dir={runs}", "run.name=lm", "eval.benchmarks=[aime24]", f"eval.limit={LIMIT}",
               "eval.methods=[bf,wait]", f"eval.budgets=[{CAP}]", "eval.wait_counts=[1]",
               "eval.budget_forcing.num_waits=1", "eval.include_base_model=false", f"eval.max_new_tokens={MAX_GEN}",
               f"eval.batch_size={BATCH}")
    recs = [json.loads(x) for x in (runs / "lm" / "eval" / "generations.jsonl").read_text().splitlines() if x.strip()]
    return {(r["method"], r["question_id"]): r for r in recs}


@pytest.fixture(scope="module")
def harness_cli(tmp_path_factory, chatty_model_dir):
    """The issue's command through `python -m s1.lm_eval`: cap CAP, Wait x1, results and samples files."""
    out = tmp_path_factory.mktemp("lm_eval_out")
    cmd = [sys.executable, "-m", "s1.lm_eval", "--model", "s1", "--model_args",
           f"pretrained={chatty_model_dir},backend=transformers", "--tasks", "aime24_nofigures",
           "--include_path", str(REPO / "s1" / "lm_eval" / "tasks"), "--apply_chat_template", "--limit", str(LIMIT),
           "--batch_size", str(BATCH), "--gen_kwargs",
           f"max_gen_toks={MAX_GEN},max_tokens_thinking={CAP},thinking_n_ignore=1,thinking_n_ignore_str=Wait",
           "--output_path", str(out), "--log_samples"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    [results] = out.rglob("results_*.json")
    [samples] = out.rglob("samples_aime24_nofigures_*.jsonl")
    return json.loads(results.read_text()), [json.loads(x) for x in samples.read_text().splitlines()]


@pytest.fixture(scope="module")
def chatty_lm(chatty_model_dir):
    from s1.lm_eval import S1LM

    return S1LM(pretrained=str(chatty_model_dir), backend="transformers", batch_size=BATCH)


def _evaluate(lm, gen_kwargs, tasks=("aime24_nofigures",), include=None, limit=LIMIT):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from s1.lm_eval import TASKS_DIR

    manager = TaskManager(include_path=[TASKS_DIR, *([str(include)] if include else [])])
    return lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, apply_chat_template=True,
                                   limit=limit, gen_kwargs=gen_kwargs, log_samples=True)


def _same_as_make_eval(samples, records, method):
    assert len(samples) == LIMIT
    for s in samples:
        rec = records[(method, s["doc"]["id"])]
        assert s["resps"][0][0] == THINK + rec["text"]                    # the same generation, token for token
        assert s["exact_match"] == int(rec["correct"])
        assert s["extracted_answers"] == [rec["extracted"]]


@pytest.mark.slow
def test_cli_writes_results_and_samples_equal_to_make_eval(harness_cli, make_eval):
    results, samples = harness_cli
    _same_as_make_eval(samples, make_eval, "bf")
    accuracy = sum(make_eval[("bf", s["doc"]["id"])]["correct"] for s in samples) / LIMIT
    assert results["results"]["aime24_nofigures"]["exact_match,none"] == accuracy
    assert results["config"]["model"] == "s1"


@pytest.mark.slow
def test_wait_without_cap_equals_make_eval_and_ignores_one_end_of_thinking(chatty_lm, make_eval):
    out = _evaluate(chatty_lm, "max_gen_toks=%d,thinking_n_ignore=1,thinking_n_ignore_str=Wait" % MAX_GEN)
    _same_as_make_eval(out["samples"]["aime24_nofigures"], make_eval, "wait")
    results = chatty_lm.last_results
    assert all(r.waits_used <= 1 for r in results) and any(r.waits_used == 1 for r in results)
    assert all(("\nWait" in r.thinking) == (r.waits_used == 1) for r in results)


@pytest.mark.slow
def test_auto_thinking_budget_is_the_release_formula(tiny_model_dir):
    """max_tokens_thinking=auto: max_gen_toks - longest prompt - think-start tokens - tokens of
    "<|im_start|>answer\\nFinal Answer:" - 100 (the fork, per batch of requests with the same gen_kwargs)."""
    from s1.lm_eval import S1LM

    lm = S1LM(pretrained=str(tiny_model_dir), backend="transformers", batch_size=BATCH)
    enc = lambda s: lm.tokenizer.encode(s, add_special_tokens=False)
    from s1.data.benchmarks import load_benchmark
    from s1.infer import build_prompt

    rows = load_benchmark("aime24", REPO / "data" / "benchmarks")[:2]
    longest = max(len(enc(build_prompt(lm.tokenizer, r["problem"], think=False))) for r in rows)
    max_gen = longest + 200
    expect = max_gen - longest - len(enc(THINK)) - len(enc("<|im_start|>answer\nFinal Answer:")) - 100
    out = _evaluate(lm, f"max_gen_toks={max_gen},max_tokens_thinking=auto", limit=2)
    assert 0 < expect < max_gen // 2           # the controller's answer reserve (half the total here) does not bind
    # the tiny model never ends thinking itself: every sequence thinks exactly the auto budget, then answers
    assert [r.thinking_tokens for r in lm.last_results] == [expect, expect]
    assert all(s["resps"][0][0].startswith(THINK) for s in out["samples"]["aime24_nofigures"])
    with pytest.raises(ValueError, match="max_tokens_thinking=auto leaves"):
        _evaluate(lm, f"max_gen_toks={longest},max_tokens_thinking=auto", limit=2)


LOGLIK_TASK = """task: s1_test_loglik
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
"""

SAMPLED_TASK = """include: {tasks}/aime24_nofigures_r1.yaml
task: {name}
repeats: 3
generation_kwargs:
  until: []
  do_sample: true
  temperature: {temperature}
  top_p: 0.95
  max_gen_toks: 24
  {thinking}
filter_list:
  - name: all
    filter:
      - function: take_first_k
        k: 3
metric_list:
{metrics}"""


@pytest.mark.slow
def test_loglikelihood_task_fails_with_the_message(chatty_lm, tmp_path):
    data = tmp_path / "mc.jsonl"
    data.write_text(json.dumps({"q": "1+1=", "choices": ["2", "3"], "label": 0}) + "\n")
    (tmp_path / "loglik.yaml").write_text(LOGLIK_TASK.format(data=data))
    with pytest.raises(NotImplementedError, match="generation tasks only.*s1_test_loglik"):
        _evaluate(chatty_lm, None, tasks=("s1_test_loglik",), include=tmp_path)


def _sampled_task(name: str, temperature: float, thinking: str) -> str:
    from s1.lm_eval import TASKS_DIR

    metrics = "".join(f"  - metric: \"{m}\"\n    aggregation: {'bypass' if m == 'extracted_answers' else 'mean'}\n"
                      f"    higher_is_better: true\n" for m in
                      ("exact_match", "avg@3", "cons@3", "pass@1", "pass@2", "pass@3", "extracted_answers"))
    return SAMPLED_TASK.format(tasks=TASKS_DIR, name=name, temperature=temperature, thinking=thinking, metrics=metrics)


@pytest.mark.slow
def test_n_samples_with_top_p_reproduce_under_a_seed(chatty_lm, tmp_path):
    (tmp_path / "sampled.yaml").write_text(_sampled_task("s1_test_sampled", 1.0, "max_tokens_thinking: 12"))
    first = _evaluate(chatty_lm, None, tasks=("s1_test_sampled",), include=tmp_path, limit=2)
    again = _evaluate(chatty_lm, None, tasks=("s1_test_sampled",), include=tmp_path, limit=2)
    resps = [s["resps"][0] for s in first["samples"]["s1_test_sampled"]]
    assert resps == [s["resps"][0] for s in again["samples"]["s1_test_sampled"]]   # same seed, same samples
    assert all(len(r) == 3 and len(set(r)) == 3 for r in resps)                    # three different samples each
    assert chatty_lm.engine.top_p == 0.95
    got = first["results"]["s1_test_sampled"]
    for m in ("avg@3", "cons@3", "pass@1", "pass@2", "pass@3"):
        assert 0.0 <= got[f"{m},all"] <= 1.0
    assert got["pass@1,all"] == pytest.approx(got["avg@3,all"])
    assert got["pass@1,all"] <= got["pass@2,all"] <= got["pass@3,all"]


def test_registering_s1_keeps_the_harness_models():
    """After `import s1.lm_eval` the harness still finds its own models (`python -m s1.lm_eval --model hf` or
    `local-completions`): a fresh process, since the harness fills its registry once."""
    code = ("import s1.lm_eval; from lm_eval.api.registry import get_model; "
            "print(get_model('local-completions').__name__, get_model('hf').__name__, get_model('s1').__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["LocalCompletionsAPI", "HFLM", "S1LM"], out.stderr[-2000:]


def test_release_gen_kwargs_map_onto_the_controller():
    from s1.infer.budget_forcing import DEFAULTS
    from s1.lm_eval.gen_kwargs import plan_generation

    p = plan_generation({"until": [], "do_sample": False, "temperature": 0, "max_gen_toks": 32768,
                         "max_tokens_thinking": 4000, "thinking_n_ignore": 2, "thinking_n_ignore_str": "Hmm"}, 256)
    assert p.think and p.max_new_tokens == 32768 and p.temperature == 0.0 and p.stops == []
    assert (p.bf["max_thinking_tokens"], p.bf["num_waits"], p.bf["wait_string"]) == (4000, 2, "Hmm")
    ignore_only = plan_generation({"max_tokens_thinking": "auto", "thinking_n_ignore": 2}, 256)
    assert ignore_only.auto_thinking and ignore_only.bf["wait_string"] == ""       # the fork appends nothing
    assert ignore_only.max_new_tokens == 256
    custom = plan_generation({"thinking_start": "<|im_start|>think", "thinking_end": "<|im_start|>final",
                              "until_thinking": "<|im_start|>", "min_tokens_thinking": 100,
                              "until": ["Question:", "<|im_end|>"]}, 256)
    assert custom.bf["think_prefix"] == "<|im_start|>think" and custom.bf["min_thinking_tokens"] == 100
    assert custom.bf["answer_prefix"].startswith("<|im_start|>final") and custom.stops == ["Question:"]
    plain = plan_generation({"until": [], "max_gen_toks": 2048, "do_sample": True}, 256)
    assert not plain.think and plain.temperature == 1.0 and plain.bf["max_thinking_tokens"] is None
    assert plan_generation({}, 256).bf["think_prefix"] == DEFAULTS["think_prefix"]


@pytest.mark.parametrize("kwargs, message", [
    ({"max_tokens_thinking": "lots"}, "max_tokens_thinking='lots': use an integer >= 1 or auto"),
    ({"thinking_n_ignore": -1}, "thinking_n_ignore=-1: use an integer >= 0"),
    ({"rejection_sample": True}, "rejection_sample=True: not supported by --model s1"),
    ({"top_k": 20}, "top_k=20: unknown to --model s1"),
    ({"top_p": 0}, "top_p=0: use a probability mass in (0, 1]"),
])
def test_bad_gen_kwargs_name_the_key_and_fix(kwargs, message):
    from s1.lm_eval.gen_kwargs import plan_generation

    with pytest.raises(ValueError) as err:
        plan_generation(kwargs, 256)
    assert message in str(err.value)


@pytest.mark.slow
def test_task_until_strings_stop_thinking_as_in_the_fork(chatty_lm):
    import re

    from s1.infer import build_prompt, generate
    from s1.lm_eval.stops import with_stops

    engine = chatty_lm.engine
    prompt = build_prompt(engine.tokenizer, "What is 2+3?")
    bf = {"max_thinking_tokens": 40}
    [free] = generate(engine, [prompt], bf, max_new_tokens=80, progress=False)
    stop = re.findall(r"[A-Za-z]{3}", free.thinking[8:])[0]          # a word the model writes mid-thinking
    [cut] = generate(with_stops(engine, [stop]), [prompt], bf, max_new_tokens=80, progress=False)
    assert cut.thinking == free.thinking[:free.thinking.index(stop)]  # thinking ends where the stop string starts
    assert cut.outcome != "forced" and cut.thinking_tokens < free.thinking_tokens   # read as the model's own end
    assert with_stops(engine, []) is engine


@pytest.mark.slow
def test_r1_protocol_in_make_eval_and_the_harness_draws_the_same_samples(tmp_path, chatty_model_dir, chatty_lm):
    """make eval at temperature 0.6 / top_p 0.95 with 3 samples per AIME question (eval.samples_per_benchmark):
    avg@3 / cons@3 / pass@k in metrics.json and results.md; the harness, same seed, draws the very same samples."""
    run_script("eval.py", "model=tiny", f"model.name_or_path={chatty_model_dir}", f"eval.model_path={chatty_model_dir}",
               f"paths.runs_dir={tmp_path}", "run.name=r1", "eval.benchmarks=[aime24]", "eval.limit=2",
               "eval.methods=[auto]", "eval.include_base_model=false", "eval.temperature=0.6", "eval.top_p=0.95",
               "+eval.samples_per_benchmark.aime24=3", "eval.max_new_tokens=24", f"eval.batch_size={BATCH}")
    out = tmp_path / "r1" / "eval"
    recs = [json.loads(x) for x in (out / "generations.jsonl").read_text().splitlines() if x.strip()]
    by_key = {(r["question_id"], r["sample"]): r for r in recs}
    assert len(recs) == len(by_key) == 6
    [row] = json.loads((out / "metrics.json").read_text())["rows"]
    assert row["n"] == 3 and {"avg@3", "avg@3_stderr", "cons@3", "pass@1", "pass@2", "pass@3"} <= set(row)
    assert "| trained | auto | auto | aime24 | 3 |" in (out / "results.md").read_text()   # thinking control, no cap
    (tmp_path / "r1.yaml").write_text(_sampled_task("s1_test_r1", 0.6, "thinking_n_ignore: 0"))
    samples = _evaluate(chatty_lm, None, tasks=("s1_test_r1",), include=tmp_path, limit=2)["samples"]["s1_test_r1"]
    for s in samples:
        assert s["resps"][0] == [THINK + by_key[(s["doc"]["id"], k)]["text"] for k in range(3)]


def test_sampled_metrics_through_the_harness_equal_hand_computed_values(tiny_model_dir, tmp_path):
    """A scripted engine answers the gold on known samples, so the harness's avg@3, cons@3 and pass@k cannot pass
    by all being 0. AIME24 I-1 (gold 204): samples gold, gold, wrong; I-2 (gold 25): wrong, wrong, gold.
    Hand-computed: avg@3 = (2/3 + 1/3) / 2 = 0.5; cons@3 = (1 + 0) / 2 = 0.5; pass@k = 1 - C(n-c, k) / C(n, k):
    pass@1 = (2/3 + 1/3) / 2 = 0.5, pass@2 = (1 + (1 - 1/3)) / 2 = 5/6, pass@3 = 1; exact_match (first sample) 0.5."""
    from fake_engine import ScriptedEngine

    from s1.infer.engine import Continuation
    from s1.lm_eval import S1LM

    plan = {"Aya goes for": ["204", "204", "7"], "log_x": ["3", "3", "25"]}
    seen: dict[str, int] = {}

    def script(r, _):
        doc = next(k for k in plan if k in r.text)
        if "sample#" not in r.text:                  # a new sample: which one, and its answer
            seen[doc] = seen.get(doc, -1) + 1
            return Continuation(f"sample#{seen[doc]} \\boxed{{{plan[doc][seen[doc]]}}}", 4, "eos")
        j = int(r.text.split("sample#")[1].split()[0])   # an answer phase the controller forces, if any
        return Continuation(f" \\boxed{{{plan[doc][j]}}}", 3, "eos")

    lm = S1LM(pretrained=str(tiny_model_dir), backend="transformers", batch_size=BATCH)
    lm.engine = ScriptedEngine(lm.tokenizer, script)
    (tmp_path / "sampled.yaml").write_text(_sampled_task("s1_test_gold", 1.0, ""))
    out = _evaluate(lm, None, tasks=("s1_test_gold",), include=tmp_path, limit=2)
    got = out["results"]["s1_test_gold"]
    want = {"avg@3": 0.5, "cons@3": 0.5, "pass@1": 0.5, "pass@2": 5 / 6, "pass@3": 1.0, "exact_match": 0.5}
    assert {m: got[f"{m},all"] for m in want} == pytest.approx(want)
    answers = sorted(sorted(s["extracted_answers"]) for s in out["samples"]["s1_test_gold"])
    assert answers == [["204", "204", "7"], ["25", "3", "3"]]
