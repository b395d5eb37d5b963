"""Adaptive extrapolation: peek at the answer before each "Wait", stop once two consecutive peeks agree."""

from __future__ import annotations

import pytest
from fake_engine import ScriptedEngine

from s1.cluster.pipeline import compose_stage
from s1.data.benchmarks import benchmark_name, load_benchmark
from s1.eval.methods import plan_runs
from s1.eval.runner import run_all, sweep_groups
from s1.infer import build_prompt, generate
from s1.infer.budget_forcing import DEFAULTS, bf_options
from s1.infer.engine import Continuation

QUESTION = "Start at 3, add 4, 5 times. Last digit?"


def scripted_engine(tokenizer, answers) -> ScriptedEngine:
    """Thinking writes one line per round and stops; an answer depends on the Waits so far. After the bare marker the
    model writes its answer line (5 tokens); after a forced "Final Answer:" only the boxed answer (3 tokens)."""
    def script(r, i):
        ans = answers[min(r.text.count("Wait"), len(answers) - 1)]
        if r.text.endswith("<|im_start|>answer"):   # the model ended thinking: only the marker is forced
            return Continuation(f"\nAnswer: \\boxed{{{ans}}}", 5, "eos")
        if r.text.endswith("Final Answer:"):
            return Continuation(f" \\boxed{{{ans}}}", 3, "eos")
        return Continuation("3+4=7\n", 6, "stop", "<|im_start|>")

    return ScriptedEngine(tokenizer, script)


def _run(answers, **bf):
    from transformers import AutoTokenizer

    from s1.tiny_model import build_tokenizer

    tok = build_tokenizer()
    assert not isinstance(tok, AutoTokenizer)
    prompt = build_prompt(tok, QUESTION)
    se = scripted_engine(tok, answers)
    [r] = generate(se, [prompt], dict(DEFAULTS, **bf), max_new_tokens=1000, progress=False)
    return r, se.requests


def test_stops_forcing_once_two_peeks_agree_and_keeps_the_peek_as_answer():
    """A peek forces the cap's "Final Answer:" (the default): the thinking is Wait x2's, the answer the kept peek."""
    r, reqs = _run(["0", "7", "7", "5"], num_waits=4, adaptive_waits=True)
    fixed, _ = _run(["0", "7", "7", "5"], num_waits=2)
    assert r.waits_used == 2 and r.outcome == "answered"
    assert r.thinking == fixed.thinking and r.thinking_tokens == fixed.thinking_tokens == 18
    assert r.text == fixed.text[:-len("<|im_start|>answer") - len(fixed.answer)] + \
        "<|im_start|>answer\nFinal Answer: \\boxed{7}" and r.answer == " \\boxed{7}"
    assert r.peek_tokens == 6 and r.answer_tokens == 3                           # 2 peeks discarded, the 3rd kept
    peeks = [q for q in reqs if q.text.endswith("Final Answer:")]
    assert len(peeks) == 3 and all(q.key.endswith("/peek") and q.fork_from == reqs[0].key for q in peeks)
    assert "\\boxed{0}" not in r.text                                          # a peek never enters the sequence


def test_marker_peeks_equal_wait_with_as_many_waits_answer_included():
    """adaptive_peek=marker: a peek is what the answer phase would write, so the result is Wait x2's, at a higher cost."""
    r, reqs = _run(["0", "7", "7", "5"], num_waits=4, adaptive_waits=True, adaptive_peek="marker")
    fixed, _ = _run(["0", "7", "7", "5"], num_waits=2)
    assert r.waits_used == 2 and r.outcome == "answered"
    assert r.text == fixed.text and r.answer == fixed.answer == "\nAnswer: \\boxed{7}"
    assert r.thinking_tokens == fixed.thinking_tokens == 18
    assert r.peek_tokens == 10 and r.answer_tokens == 5
    assert len([q for q in reqs if q.key.endswith("/peek") and q.text.endswith("<|im_start|>answer")]) == 3


def test_changing_answers_use_every_wait_then_answer_as_usual():
    r, reqs = _run(["1", "2", "3", "4", "5"], num_waits=3, adaptive_waits=True)
    fixed, _ = _run(["1", "2", "3", "4", "5"], num_waits=3)
    assert r.waits_used == 3 and r.text == fixed.text and r.answer == "\nAnswer: \\boxed{4}"
    assert r.peek_tokens == 9 and len([q for q in reqs if q.key.endswith("/peek")]) == 3


def test_unknown_peek_is_a_config_error():
    with pytest.raises(ValueError, match=r"adaptive_peek='answer'.*final_answer"):
        bf_options({"adaptive_waits": True, "adaptive_peek": "answer"})


def test_no_waits_means_no_peeks():
    r, reqs = _run(["1", "1"], num_waits=0, adaptive_waits=True)
    assert r.waits_used == 0 and r.peek_tokens == 0 and not any(q.key.endswith("/peek") for q in reqs)


# Strings the chatty tiny model writes often; which one ends its thinking early enough for two peeks to agree
# depends on the tokenizer build and the CPU, so the test tries them in order until one exercises that path.
END_OF_THINKING_CANDIDATES = (" two", "ince", " later", " by", "cal")


def test_adaptive_on_the_tiny_model_equals_wait_with_as_many_waits(tmp_path, chatty_model_dir):
    """Through the eval runner on the transformers backend (peeks fork the KV cache): each adaptive generation
    thinks as the Wait xN generation with N its own Waits, plus the cost of its discarded peeks."""
    from s1.cache import GenerationCache

    stopped_early = []
    for i, end in enumerate(END_OF_THINKING_CANDIDATES):
        cfg = compose_stage("eval", [
            "model=tiny", "model.build_tiny=null", f"model.name_or_path={chatty_model_dir}",
            f"eval.model_path={chatty_model_dir}", f"paths.runs_dir={tmp_path}", f"run.name=adaptive{i}",
            "eval.benchmarks=[synthetic]", "eval.limit=6", "eval.methods=[auto,wait,adaptive]",
            "eval.wait_counts=[1,2,3]", "eval.adaptive_max_waits=3", "eval.include_base_model=false",
            "eval.max_new_tokens=70", "eval.batch_size=3", "eval.budget_forcing.answer_max_tokens=3",
            f"eval.budget_forcing.end_of_thinking='{end}'"])
        runs = plan_runs(cfg)
        adaptive = [s for s in runs if s.method == "adaptive"]
        assert len(adaptive) == 1 and dict(adaptive[0].bf_overrides)["adaptive_waits"] is True
        assert [adaptive[0]] in sweep_groups(runs, True)                 # peeks keep it out of the shared sweep
        e = cfg.eval
        benches = {benchmark_name(b): load_benchmark(b, cfg.paths.benchmarks_dir, e.aime_text, e.limit)
                   for b in e.benchmarks}
        cache = GenerationCache(tmp_path / f"gen{i}.jsonl")
        run_all(runs, benches, cache, cfg)
        cache.close()
        recs = list(cache.records.values())
        wait = {(r["question_id"], 0 if r["method"] == "auto" else r["budget"]): r for r in recs
                if r["method"] in ("auto", "wait")}   # auto: budget forcing with no Wait (no_bf is plain generation)
        ada = [r for r in recs if r["method"] == "adaptive"]
        assert len(ada) == 6 and len(wait) == 24
        for r in ada:
            w = wait[(r["question_id"], r["waits_used"])]
            if r["waits_used"] == 3:   # the peeks never agreed: every Wait, then the answer phase as usual
                assert r["text"] == w["text"] and r["correct"] == w["correct"], end
            else:                      # the same thinking, then the kept peek after the cap's "Final Answer:"
                thinking, forced = w["text"][:w["text"].rfind("<|im_start|>answer")], "<|im_start|>answer\nFinal Answer:"
                assert r["text"].startswith(thinking + ("" if thinking.endswith("\n") else "\n") + forced), end
            assert r["thinking_tokens"] - r["peek_tokens"] == w["thinking_tokens"], end
            assert (r["peek_tokens"] > 0) == (r["waits_used"] > 0), end
        if any(0 < r["waits_used"] < 3 for r in ada):
            stopped_early.append(end)
            break
    assert stopped_early, f"with none of {END_OF_THINKING_CANDIDATES} did a question stop early: the agreeing-peeks path is untested"


def test_peeks_agree_on_equal_answers_in_different_spellings():
    """Peeks compare canonical answers (s1.grading.canonical_answer): 1/2 then 0.5 is the same answer."""
    r, _ = _run(["0", "\\frac12", "0.5", "3"], num_waits=4, adaptive_waits=True)
    assert r.waits_used == 2 and r.outcome == "answered" and r.answer == " \\boxed{0.5}"


def test_only_adaptive_runs_key_the_peek(tmp_path, tiny_model_dir):
    """The peek changed what adaptive runs write, so their cache key names it; the other runs' keys are as before."""
    from test_eval_settings import _cfg

    from s1.eval.runner import generation_settings

    cfg = _cfg(tmp_path, tiny_model_dir, "eval.methods=[bf,wait,adaptive]")
    keyed = {s.method: generation_settings(s, cfg)["budget_forcing"].get("adaptive_peek") for s in plan_runs(cfg)}
    assert keyed == {"bf": None, "wait": None, "adaptive": "final_answer"}
    marker = _cfg(tmp_path, tiny_model_dir, "eval.methods=[adaptive]", "eval.budget_forcing.adaptive_peek=marker")
    assert [generation_settings(s, marker)["budget_forcing"]["adaptive_peek"] for s in plan_runs(marker)] == ["marker"]
