"""Thinking models with <think> tags (issue 32, item 7): the model presets, the tiny <think> model, and budget
forcing run with the presets' strings through s1.infer.generate on the transformers engine.

The tiny <think> model (s1.tiny_model.ensure_think_model) is trained for 35-76 s (2 shared cores) on synthetic traces in the Qwen3 /
R1 format, so it ends its own thinking with </think> and answers "Answer: \\boxed{d}"; it is cached in S1_CACHE.
To run another method with it, add its budget-forcing overrides to BF_OVERRIDES (or AFTER_RULES, below).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import CACHE, run_script
from hydra import compose, initialize_config_dir
from transformers import AutoTokenizer

from s1.eval.methods import SELECTOR_SAMPLES
from s1.grading import extract_answer
from s1.infer import build_prompt, generate, load_engine
from s1.infer.budget_forcing import DEFAULTS
from s1.infer.no_thinking import FILLER, prefill
from s1.runtime import CONFIG_DIR
from s1.tiny_model import THINK_CLOSE, THINK_OPEN, build_tokenizer, ensure_think_model

THINK_PRESETS = ["qwen3-0.6b", "r1-distill-qwen-1.5b", "tiny-think"]
STRING_KEYS = ("think_prefix", "end_of_thinking", "answer_prefix", "answer_prefix_after_end")
QUESTIONS = ["From 1, go up 1, 3 times. Last digit?", "Start at 7, add 9, 5 times. Last digit?",
             "Units digit of 4 plus 2 repeated 3 times?", "From 2, go up 3, 4 times. Last digit?",
             "Start at 5, add 8, 6 times. Last digit?", "Units digit of 9 plus 4 repeated 2 times?"]
MAX_NEW = 200            # tokens; the tiny model's traces close within ~100
ANSWER_CAP = 16          # tokens; "\n\nAnswer: \boxed{d}" is ~10

# Budget-forcing overrides every one of which must keep the <think> format intact (test_every_setting_keeps_...).
BF_OVERRIDES = [
    {},
    {"max_thinking_tokens": 8},
    {"min_thinking_tokens": 60},
    {"num_waits": 2},
    {"num_waits": 2, "adaptive_waits": True},
    {"plain_generation": True},
]
# Issue 32's methods: their BudgetForcingConfig keys (ban_words, cap_ending, alpha, deer_threshold, no_thinking,
# record_confidence) come with helper RULES's branch. Until it is merged each is skipped, naming the missing key;
# after the merge they run with no change here.
AFTER_RULES = [
    {"ban_words": ["Wait"]},                # + a string the model writes unbanned (the test adds it): work for the ban
    {"cap_ending": "stop_sentence", "max_thinking_tokens": 8},
    {"cap_ending": "finish_window", "max_thinking_tokens": 16},
    {"alpha": 0.5, "max_thinking_tokens": 64},
    {"deer_threshold": 0.5},
    {"no_thinking": True},
    {"record_confidence": True},
]


def _known(overrides: dict):
    missing = sorted(set(overrides) - set(DEFAULTS))
    reason = f"budget_forcing has no {missing} yet (issue 32 §1, helper RULES)"
    return pytest.param(overrides, marks=pytest.mark.skip(reason=reason) if missing else ())


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name="eval", overrides=list(overrides))


@pytest.fixture(scope="module")
def preset():
    """The tiny <think> model's preset as the eval config composes it: budget forcing, system prompt, template."""
    cfg = _compose("model=tiny-think")
    return {"bf": {k: cfg.eval.budget_forcing[k] for k in STRING_KEYS}, "system": cfg.eval.system_prompt,
            "template": dict(cfg.model.chat_template_kwargs)}


@pytest.fixture(scope="module")
def think_model_dir() -> Path:
    return ensure_think_model(CACHE / "models" / "tiny-think-trained")


@pytest.fixture(scope="module")
def engine(think_model_dir):
    return load_engine("transformers", str(think_model_dir), dtype="float32", max_context=4096)


def _prompts(engine, preset) -> list[str]:
    return [build_prompt(engine.tokenizer, q, system=preset["system"], think_prefix=preset["bf"]["think_prefix"],
                         chat_template_kwargs=preset["template"]) for q in QUESTIONS]


def _run(engine, preset, prompts=None, **overrides):
    bf = {**preset["bf"], "answer_max_tokens": ANSWER_CAP, **overrides}
    return generate(engine, prompts or _prompts(engine, preset), bf, max_new_tokens=MAX_NEW, progress=False)


# ---- presets --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", THINK_PRESETS)
def test_preset_sets_the_think_tag_strings_in_the_eval_config(name):
    preset_file = yaml.safe_load((Path(CONFIG_DIR) / "model" / f"{name}.yaml").read_text())
    cfg = _compose(f"model={name}")
    bf = cfg.eval.budget_forcing
    assert {k: bf[k] for k in STRING_KEYS} == preset_file["eval"]["budget_forcing"]
    assert bf.think_prefix == THINK_OPEN + "\n" and bf.end_of_thinking == bf.answer_prefix_after_end == THINK_CLOSE
    assert bf.answer_prefix.startswith(THINK_CLOSE + "\n\n")        # Qwen3 / R1: "\n</think>\n\n" before the answer
    assert cfg.model.name_or_path.endswith(preset_file["model"]["name_or_path"].split("}")[-1])
    assert cfg.eval.system_prompt == ""
    # the tiny model stands in for the real ones: the same strings; only Qwen3 has a thinking switch
    qwen3 = _compose("model=qwen3-0.6b").eval.budget_forcing
    assert {k: bf[k] for k in STRING_KEYS} == {k: qwen3[k] for k in STRING_KEYS}
    switch = dict(cfg.model.chat_template_kwargs)
    assert switch == ({} if name.startswith("r1") else {"enable_thinking": True})


def test_an_experiment_and_the_command_line_still_override_the_preset():
    cfg = _compose("model=qwen3-0.6b", "eval.budget_forcing.answer_prefix='</think> Answer:'")
    assert cfg.eval.budget_forcing.answer_prefix == "</think> Answer:"
    demo = _compose("model=qwen3-0.6b", "experiment=demo")     # the demo's answer cap, the preset's strings
    assert demo.eval.budget_forcing.answer_max_tokens == 16 and demo.eval.budget_forcing.end_of_thinking == THINK_CLOSE
    assert cfg.eval.budget_forcing.end_of_thinking == THINK_CLOSE
    plain = _compose()                                   # the default model keeps the s1 strings
    assert plain.eval.budget_forcing.end_of_thinking == DEFAULTS["end_of_thinking"]
    assert dict(plain.model.chat_template_kwargs) == {}


def test_the_thinking_switch_reaches_the_cache_key_and_the_runners_prompt():
    """model.chat_template_kwargs changes what the model reads, so it is in the cache key (absent when empty: the
    keys of models without a switch stay as they were), and the runner renders its prompts with it."""
    import inspect

    from s1.eval import runner
    from s1.eval.methods import plan_runs

    on = _compose("model=qwen3-0.6b", "eval.methods=[bf]")
    off = _compose("model=qwen3-0.6b", "eval.methods=[bf]", "model.chat_template_kwargs.enable_thinking=false")
    spec = next(s for s in plan_runs(on) if s.method == "bf")
    s_on, s_off = runner.generation_settings(spec, on), runner.generation_settings(spec, off)
    assert s_on["chat_template_kwargs"] == {"enable_thinking": True}
    assert s_off["chat_template_kwargs"] == {"enable_thinking": False}
    assert runner.spec_settings_hash(spec, on) != runner.spec_settings_hash(spec, off)
    assert "chat_template_kwargs" not in runner.generation_settings(spec, _compose("eval.methods=[bf]"))
    for fn in (runner.run_spec, runner.run_sweep):   # both prompt builders pass the switch on
        assert "chat_template_kwargs=cfg.model.get(\"chat_template_kwargs\")" in inspect.getsource(fn)


# ---- the tiny <think> model -----------------------------------------------------------------------------------

def test_think_tokenizer_has_single_think_tokens_and_the_same_bpe(think_model_dir, preset):
    tok = AutoTokenizer.from_pretrained(think_model_dir)
    plain = build_tokenizer(seed=0)
    for t in (THINK_OPEN, THINK_CLOSE):
        assert len(tok.encode(t, add_special_tokens=False)) == 1
    text = "<think>\n1+2=3\nWait 3+4=7\n</think>\n\nAnswer: \\boxed{7}"
    assert tok.decode(tok.encode(text), skip_special_tokens=True) == text    # not special: decoding keeps them
    assert tok.encode("1+2=3\nWait 3+4=7") == plain.encode("1+2=3\nWait 3+4=7")
    stamp = json.loads((think_model_dir / "s1_tiny.json").read_text())
    assert stamp["last_loss"] < stamp["first_loss"] / 3                      # it trained


def test_build_prompt_renders_the_template_with_the_thinking_switch(think_model_dir, preset):
    tok = AutoTokenizer.from_pretrained(think_model_dir)
    on = build_prompt(tok, "Q?", system="", think_prefix="<think>\n", chat_template_kwargs=preset["template"])
    assert on == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    off = build_prompt(tok, "Q?", system="", think=False, chat_template_kwargs={"enable_thinking": False})
    assert off == "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert build_prompt(tok, "Q?", think=False).startswith("<|im_start|>system\nYou are Qwen")  # None: the default
    # a template that opens thinking itself (DeepSeek-R1-distills' ends with "<think>\n") gets no second prefix
    tok.chat_template = tok.chat_template.replace("'<|im_start|>assistant\\n' -}}{%- if enable",
                                                  "'<|im_start|>assistant\\n<think>\\n' -}}{%- if enable")
    r1 = build_prompt(tok, "Q?", system="", think_prefix="<think>\n")
    assert r1.endswith("assistant\n<think>\n") and r1.count(THINK_OPEN) == 1


def test_grading_reads_the_answer_after_the_close_tag():
    """A <think> text has no s1 answer marker: its answer is after the last </think>, as the s1 one's is after the
    marker (a boxed guess in the thinking does not decide; a text with neither is read whole)."""
    assert extract_answer("1+2=3 so \\boxed{3}\n</think>\n\nFinal Answer: 5") == "5"
    assert extract_answer("\\boxed{3}\n</think>\n\nI am not sure.") is None
    assert extract_answer("\\boxed{3}\n</think>\n\n\\boxed{4}") == "4"
    assert extract_answer("no tags, Answer: 9") == "9"


# ---- budget forcing with the preset's strings -----------------------------------------------------------------

def test_cap_ends_thinking_with_the_answer_prefix_and_one_close_tag(engine, preset):
    cap = 8
    free = _run(engine, preset)
    capped = _run(engine, preset, max_thinking_tokens=cap)
    assert any(r.thinking_tokens > cap for r in free)            # else the cap would cut nothing
    for f, r in zip(free, capped):
        assert r.thinking_tokens <= cap
        assert r.text.count(THINK_CLOSE) == 1 and THINK_CLOSE not in r.thinking + r.answer
        if f.thinking_tokens > cap:                               # the cap, not the model, ended thinking
            assert r.outcome in ("forced", "no_answer")
            forced = r.text[len(r.thinking):len(r.text) - len(r.answer)]
            assert forced == "\n" * (not r.thinking.endswith("\n")) + preset["bf"]["answer_prefix"]
            assert (r.prompt + r.text).count("\n</think>\n\nFinal Answer:") == 1    # Qwen3's frame, s1's lead


def test_min_thinking_tokens_forces_waits_until_the_minimum(engine, preset):
    low = 60
    free = _run(engine, preset)
    forced = _run(engine, preset, min_thinking_tokens=low)
    early = [i for i, r in enumerate(free) if r.outcome == "answered" and r.thinking_tokens < low]
    assert early                                                 # else no early end to suppress
    for i in early:
        r = forced[i]
        assert r.waits_used >= 1 and r.thinking.count("Wait") >= r.waits_used
        assert r.thinking_tokens >= low or r.outcome != "answered"
        assert r.text.count(THINK_CLOSE) == 1 and THINK_CLOSE not in r.thinking
        assert r.text[len(r.thinking):].lstrip("\n").startswith(THINK_CLOSE)   # its own end, or the cap's prefix
    assert all(free[i].waits_used == 0 for i in early)


def test_the_model_ending_thinking_gets_its_close_tag_back_and_answers(engine, preset):
    results = _run(engine, preset)
    ended = [r for r in results if r.outcome == "answered"]
    assert ended
    for r in ended:
        assert r.text == r.thinking + THINK_CLOSE + r.answer      # its </think>, dropped as the stop, put back
        assert extract_answer(r.text) is not None


def test_no_thinking_prefill_closes_the_block_with_the_presets_strings(engine, preset):
    bf = preset["bf"]
    prompts = [prefill(p, think_open=bf["think_prefix"], think_close=bf["answer_prefix_after_end"])
               for p in _prompts(engine, preset)]
    for p in prompts:
        assert p.endswith(f"<|im_start|>assistant\n<think>\n{FILLER}\n</think>") and p.count(THINK_OPEN) == 1
    results = _run(engine, preset, prompts=prompts)
    for p, r in zip(prompts, results):
        assert r.thinking_tokens == 0 and r.thinking == ""         # no thinking phase at all
        assert (p + r.text).count(THINK_CLOSE) == 1                 # the prefill's, none from the model
    assert sum(extract_answer(r.text) is not None for r in results) >= len(results) // 2


@pytest.mark.parametrize("overrides", [_known(o) for o in BF_OVERRIDES + AFTER_RULES], ids=repr)
def test_every_setting_keeps_the_think_format(engine, preset, overrides):
    """Whatever a setting does to thinking, the sequence keeps one closed <think> block: exactly one </think> in
    prompt + text (the prompt's own, for a prefilled one), none in the thinking, and caps hold; a method's defining
    property is checked too where it has one here."""
    banned = overrides.get("ban_words", [])
    if banned:   # the trained model's text differs between CPUs: also ban a string it writes here, unbanned
        plain = _run(engine, preset)
        counts = Counter(r.thinking[i:i + 3] for r in plain for i in range(len(r.thinking) - 2))
        # a rare one (written twice or more, no space or tag character): a frequent one derails the tiny model
        rare = min((w for w, n in counts.items() if n >= 2 and not set(w) & set(" \n<>/")), key=lambda w: (counts[w], w))
        banned = [*banned, rare]
        overrides = {**overrides, "ban_words": banned}
        assert any(w in r.thinking for r in plain for w in banned)   # else the ban below could not fail
    results = _run(engine, preset, **overrides)
    cap = overrides.get("max_thinking_tokens")
    if overrides.get("cap_ending") == "finish_window":
        cap = None                                                   # it may finish a line past the cap
    for r in results:
        assert r.outcome != "timeout"
        assert (r.prompt + r.text).count(THINK_CLOSE) == 1, (overrides, r.text)
        assert THINK_CLOSE not in r.thinking and THINK_OPEN not in r.text
        assert cap is None or r.thinking_tokens <= cap
        assert not any(w in r.thinking for w in banned)
        if overrides.get("no_thinking"):
            assert r.thinking_tokens == 0
        if overrides.get("record_confidence"):
            assert getattr(r, "confidence", None) is not None       # transformers returns log-probabilities


# ---- the eval stage with the preset ------------------------------------------------------------------------------

# eval.methods run end to end with model=tiny-think; after REGISTRY's records are merged, add theirs (or "all").
EVAL_METHODS = ["no_bf", "bf", "wait", "adaptive", "nowait", "alphaone", "deer", "cap_stop_sentence", "cap_finish_window",
                "no_thinking", "shortest_majority"]


def test_eval_stage_runs_the_methods_in_the_think_format(think_model_dir, tmp_path):
    """scripts/eval.py with model=tiny-think: the runner takes the preset's strings and system prompt, so every
    record is one closed <think> block, and the capped ones end thinking with the preset's answer prefix."""
    run_script("eval.py", "model=tiny-think", f"eval.model_path={think_model_dir}", f"paths.runs_dir={tmp_path}",
               "run.name=think", "eval.benchmarks=[synthetic]", "eval.limit=4", f"eval.methods=[{','.join(EVAL_METHODS)}]",
               "eval.budgets=[8,null]", "eval.wait_counts=[1]", "eval.adaptive_max_waits=2",
               f"eval.max_new_tokens={MAX_NEW}", f"eval.budget_forcing.answer_max_tokens={ANSWER_CAP}",
               "eval.include_base_model=false", "eval.no_thinking.k=[2]", "eval.selectors.k=[2]",
               "eval.deer.thresholds=[0.5]")
    records = [json.loads(line) for line in open(tmp_path / "think" / "eval" / "generations.jsonl")]
    # the selectors read one shared sample set (its records carry that set's name)
    assert {r["method"] for r in records} == set(EVAL_METHODS) - {"shortest_majority"} | {SELECTOR_SAMPLES}
    for r in records:
        assert r["text"].count(THINK_CLOSE) == 1 and THINK_OPEN not in r["text"], r
    capped = [r for r in records if r["method"] == "bf" and r["budget"] == 8]
    assert capped and all(r["thinking_tokens"] <= 8 for r in capped)
    assert any("\n</think>\n\nFinal Answer:" in r["text"] for r in capped)
