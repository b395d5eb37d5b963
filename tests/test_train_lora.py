"""LoRA / QLoRA on the tiny model, for real on the CPU: the loss falls, only adapter weights change, the merged model
is base + B·A·(alpha/r), and the merged directory generates in the transformers engine like any trained model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import test_train_run as tiny_run
import torch
from conftest import CACHE, REPO, require_or_skip
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from safetensors.torch import load_file
from transformers import AutoTokenizer

from s1.runtime import CONFIG_DIR, ConfigError
from s1.train.memory import lora_parameters, model_shape

pytestmark = pytest.mark.slow
R, ALPHA = 8, 16
STEPS = tiny_run.STEPS
data = tiny_run.data  # the same module fixture: 96 synthetic records


def lora_cfg(tiny_model_dir, data: Path, out: Path, *overrides: str):
    """test_train_run's tiny setup with LoRA on every linear layer, no checkpoints, a LoRA-sized learning rate."""
    return tiny_run.tiny_cfg(tiny_model_dir, data, out, "train.save_steps=0", "train.learning_rate=1e-2", "train.wandb_mode=off",
                    "train.peft=lora", f"train.lora.r={R}", f"train.lora.alpha={ALPHA}", "train.lora.dropout=0.0",
                    *overrides)


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, data, tmp_path_factory) -> Path:
    from s1.train.sft import train

    out = tmp_path_factory.mktemp("lora") / "train"
    assert train(lora_cfg(tiny_model_dir, data, out)) == out / "final"
    return out


def losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_lora_loss_falls_and_summary_counts_parameters(lora_run, tiny_model_dir):
    loss = losses(lora_run)
    assert len(loss) == STEPS and loss[-1] < loss[0] - 0.15  # measured: 6.90 → 6.65 in 8 steps
    summary = json.loads((lora_run / "train_summary.json").read_text())
    shape = model_shape(str(tiny_model_dir))
    # r · (in + out) for q, k, v, o, gate, up, down in every block: the planner's count is the real one
    assert summary["trainable_parameters"] == lora_parameters(shape, R) > 0
    assert summary["total_parameters"] == shape.params + summary["trainable_parameters"]
    assert summary["peft"] == "lora" and summary["final"] == str(lora_run / "final")


def assert_merged_is_base_plus_scaled_BA(base_dir: Path, run: Path, atol: float) -> None:
    """merged = base + B·A·(alpha/r) on the 7 linear layers of every block, everything else unchanged."""
    base = load_file(base_dir / "model.safetensors")
    merged = load_file(run / "final" / "model.safetensors")
    adapter = load_file(run / "adapter" / "adapter_model.safetensors")
    assert adapter and all(".lora_A." in k or ".lora_B." in k for k in adapter)  # nothing else was saved as trained
    assert set(merged) == set(base)
    targets = set()
    for key_a, a in adapter.items():
        if ".lora_A." not in key_a:
            continue
        b = adapter[key_a.replace(".lora_A.", ".lora_B.")]
        assert b.abs().max() > 0  # B starts at zero: it moved
        name = key_a.replace("base_model.model.", "").replace(".lora_A.weight", ".weight")
        expected = base[name].float() + (b.float() @ a.float()) * (ALPHA / R)
        assert torch.allclose(merged[name].float(), expected, atol=atol, rtol=0), name
        targets.add(name)
    assert len(targets) == 7 * model_shape(str(base_dir)).layers
    for name in set(base) - targets:  # embeddings, norms, biases: frozen
        assert torch.equal(merged[name], base[name]), name


def test_only_adapters_train_and_merge_is_base_plus_scaled_BA(lora_run, tiny_model_dir):
    assert_merged_is_base_plus_scaled_BA(tiny_model_dir, lora_run, atol=1e-6)


def test_merged_model_generates_in_the_transformers_engine(lora_run):
    from transformers import AutoConfig

    from s1.infer import build_prompt, generate, load_engine

    config, tok = AutoConfig.from_pretrained(lora_run / "final"), AutoTokenizer.from_pretrained(lora_run / "final")
    assert config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>") and "{% generation %}" in tok.chat_template

    engine = load_engine("transformers", str(lora_run / "final"), max_context=4096)
    prompt = build_prompt(engine.tokenizer, "What is 2+3?")
    [r] = generate(engine, [prompt], None, max_new_tokens=16, progress=False)
    assert r.thinking_tokens + r.answer_tokens > 0


def test_adapter_only_when_merge_is_off(tiny_model_dir, data, tmp_path):
    from s1.train.sft import train

    out = tmp_path / "train"
    saved = train(lora_cfg(tiny_model_dir, data, out, "train.max_steps=1", "train.lora.merge=false"))
    assert saved == out / "adapter" and (saved / "adapter_config.json").is_file() and not (out / "final").exists()
    assert json.loads((out / "train_summary.json").read_text())["final"] is None


def test_the_4bit_probe_runs_where_bitsandbytes_is_installed():
    """CI has bitsandbytes (the dev extra): its probe must say yes there, so QLoRA's test below cannot skip."""
    import importlib.util

    from s1.train.hardware import four_bit_runs

    runs, why = four_bit_runs("cpu")
    if importlib.util.find_spec("bitsandbytes") is None:
        assert (runs, why) == (False, "bitsandbytes is not installed")
    else:
        assert runs and why is None, why


def test_a_broken_4bit_probe_reports_its_error(monkeypatch):
    import bitsandbytes as bnb

    from s1.train.hardware import four_bit_runs

    def broken(*a, **kw):
        raise RuntimeError("no kernel image for this device")

    monkeypatch.setattr(bnb.nn, "Linear4bit", broken)
    assert four_bit_runs("cpu") == (False, "RuntimeError: no kernel image for this device")


def test_qlora_trains_a_4bit_base_and_merges_into_base_plus_scaled_BA(tiny_model_dir, data, tmp_path):
    """Trained against the 4-bit NF4 base, merged into the unquantized base: merged = base + B·A·(alpha/r). The
    merge loads the base unquantized, so the tolerance is the float rounding of the sum (the NF4 rounding of the
    base is in the adapter's training, not in the merge)."""
    import importlib.util

    from s1.train.sft import train

    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed (pip install -e '.[dev]' has it)")
    out = tmp_path / "train"
    train(lora_cfg(tiny_model_dir, data, out, "train.peft=qlora", "train.max_steps=3"))
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["peft"] == "qlora" and summary["trainable_parameters"] == lora_parameters(
        model_shape(str(tiny_model_dir)), R)
    merged = load_file(out / "final" / "model.safetensors")
    assert all(v.dtype == torch.float32 for v in merged.values())  # merged into the unquantized base
    assert_merged_is_base_plus_scaled_BA(tiny_model_dir, out, atol=1e-5)


def test_a_bad_lora_setting_is_refused_before_any_work(tiny_model_dir, data, tmp_path):
    from s1.train.sft import train

    with pytest.raises(ConfigError, match="train.lora"):
        train(lora_cfg(tiny_model_dir, data, tmp_path / "t", "train.lora.r=0"))
    assert not (tmp_path / "t").exists()


def test_lora_on_the_real_05b_for_two_steps(tmp_path):
    """The rehearsal's config (real Qwen2.5 0.5B, precision by the machine) with train.peft=lora: 2 steps, merged."""
    from s1.train.sft import train

    real = CACHE / "models" / "qwen2.5-0.5b-local"
    if not (real / "config.json").exists():
        require_or_skip("real-model", f"the real model is not built at {real}: run `make real-model`")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=[
            f"paths.repo={REPO}", f"paths.cache_dir={CACHE}", "experiment=rehearsal", f"paths.runs_dir={tmp_path}",
            "train.dataset=${paths.repo}/data/fixtures/s1k_sample.parquet", "train.max_steps=2",
            "train.block_size=128", "train.nproc_per_node=1", "train.deepspeed=null", "train.save_steps=0",
            "train.wandb_mode=off", "train.peft=lora"])
    OmegaConf.resolve(cfg)
    final = train(cfg)
    out = final.parent
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and all(math.isfinite(x) and x > 0 for x in losses(out))
    assert summary["trainable_parameters"] == lora_parameters(model_shape(str(real)), 16)  # 8.8M of 630M (untied)
    assert summary["total_parameters"] == model_shape(str(real)).params + summary["trainable_parameters"]
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(final).num_hidden_layers == 24 and (final / "model.safetensors").is_file()
    assert "<|im_start|>" in AutoTokenizer.from_pretrained(final).chat_template
