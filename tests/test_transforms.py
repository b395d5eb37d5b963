"""Token- and step-conditional training sets (paper Table 3's control models) from s1K-shaped records, on the tiny
model's tokenizer: the countdown markers are exact, the budget is stated, and the label mask still covers them."""

from __future__ import annotations

import re

import pytest

from s1.infer.prompts import STEP_OVERRUN
from s1.train.format import build_examples
from s1.train.transforms import apply_transform, split_steps

TRACE = "12:7+9=6\n6:6+9=5\n5:5+9=4\nWait 4:4+9=3\n3:3+9=2"
RECORDS = [{"id": "r1", "question": "Start at 7, add 9 five times; last digit?", "thinking_trajectories": [TRACE],
            "attempt": "\\boxed{2}"},
           {"id": "r2", "question": "Two paragraphs.", "thinking_trajectories": ["First idea.\n\nSecond idea, longer."],
            "attempt": "\\boxed{1}"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_split_steps_uses_paragraphs_else_lines():
    assert split_steps(TRACE) == TRACE.splitlines()
    assert split_steps("a\nb\n\nc") == ["a\nb", "c"]


def test_step_conditional_counts_down_to_one_and_states_the_steps(tokenizer):
    out = apply_transform(RECORDS, "step_conditional", tokenizer)
    thinking = out[0]["thinking_trajectories"][0]
    assert re.findall(r"<\|im_start\|>(\d+) steps left\n", thinking) == ["5", "4", "3", "2", "1"]
    assert out[0]["question"].endswith("Think for up to 5 steps.") and out[0]["stated_steps"] == 5
    assert STEP_OVERRUN not in thinking                      # the model learns to stop before "0 steps left"
    assert [s for s in re.split(r"<\|im_start\|>\d+ steps left\n", thinking) if s] == \
        [s + "\n" for s in TRACE.splitlines()[:-1]] + [TRACE.splitlines()[-1]]  # the trace itself is untouched
    assert out[1]["stated_steps"] == 2


def test_token_conditional_states_a_power_of_two_and_counts_tokens_left(tokenizer):
    out = apply_transform(RECORDS, "token_conditional", tokenizer)
    rec = out[0]
    steps = TRACE.splitlines()
    counts = [len(tokenizer(s + "\n", add_special_tokens=False)["input_ids"]) for s in steps]
    budget = rec["stated_tokens"]
    assert budget >= sum(counts) > budget // 2 and budget & (budget - 1) == 0
    left = [int(x) for x in re.findall(r"<\|im_start\|>(\d+) tokens left\n", rec["thinking_trajectories"][0])]
    assert left == [budget - sum(counts[:i]) for i in range(len(steps))]
    assert rec["question"].endswith(f"Think for up to {budget} tokens.")


@pytest.mark.parametrize("name", ["step_conditional", "token_conditional"])
def test_transformed_records_train_with_the_markers_in_the_loss(tokenizer, name):
    examples, report = build_examples(apply_transform(RECORDS, name, tokenizer), tokenizer, block_size=512)
    assert report["kept"] == 2
    unit = "steps" if name == "step_conditional" else "tokens"
    assert f" {unit} left\n" in examples[0]["completion"] and f" {unit} left" not in examples[0]["prompt"]
    assert "Think for up to" in examples[0]["prompt"]


def test_unknown_transform_names_the_key(tokenizer):
    from s1.runtime import ConfigError

    with pytest.raises(ConfigError, match="train.transform"):
        apply_transform(RECORDS, "beam", tokenizer)
    assert apply_transform(RECORDS, None, tokenizer) is RECORDS


@pytest.mark.slow
def test_make_train_selects_the_transform_and_eval_runs_the_model(tiny_model_dir, tmp_path):
    """train.transform=step_conditional trains on the countdown set; the result runs as step_conditional_bf."""
    import json

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from s1.data.synthetic import generate_pool, write_jsonl
    from s1.runtime import CONFIG_DIR
    from s1.train.sft import train

    data = write_jsonl(generate_pool(16, seed=3, flaws=False), tmp_path / "s1k.jsonl")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=[
            f"model.name_or_path={tiny_model_dir}", f"train.dataset={data}", f"train.output_dir={tmp_path}/train",
            "train.max_steps=2", "train.global_batch_size=4", "train.micro_batch_size=4", "train.block_size=256",
            "train.bf16=false", "train.gradient_checkpointing=false", "train.wandb_mode=off",
            "train.transform=step_conditional"])
    OmegaConf.resolve(cfg)
    final = train(cfg)
    report = json.loads((tmp_path / "train" / "train_data.json").read_text())
    assert report["transform"] == "step_conditional" and report["kept"] == 16

    from test_eval_settings import _cfg, _generate

    ecfg = _cfg(tmp_path, tiny_model_dir, "eval.methods=[step_conditional_bf]", f"eval.step_conditional_model={final}",
                "eval.tokens_per_step=4")
    path = tmp_path / "g.jsonl"
    assert _generate(ecfg, path) == 1
    rec = json.loads(path.read_text())
    assert rec["method"] == "step_conditional_bf" and rec["model"].startswith("step_model:")
