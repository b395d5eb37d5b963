"""Every primary config composes with every experiment; bad overrides fail early with key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_script
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from s1.runtime import CONFIG_DIR, ConfigError, check_overrides, prepare

STAGES = ["curate", "train", "eval"]
EXPERIMENTS = [None] + sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml"))


def _compose(stage, overrides=()):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name=stage, overrides=list(overrides))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_config_composes_and_resolves(stage, experiment):
    cfg = _compose(stage, [f"experiment={experiment}"] if experiment else [])
    OmegaConf.resolve(cfg)  # every interpolation resolves
    assert cfg.stage == stage
    assert cfg.model.name_or_path
    if experiment:
        assert cfg.run.name == experiment


@pytest.mark.parametrize("model", MODELS)
def test_every_model_preset_composes_and_resolves(model):
    """A preset is package `model` or, to set eval keys too (the <think> presets), `_global_` with a model: block."""
    cfg = _compose("eval", [f"model={model}"])
    OmegaConf.resolve(cfg)
    assert cfg.model.name_or_path and cfg.stage == "eval"


def test_paper_experiment_carries_the_papers_hyperparameters():
    cfg = _compose("train", ["experiment=paper_s1"])
    t = cfg.train
    assert (t.epochs, t.learning_rate, t.warmup_ratio) == (5, 1e-5, 0.05)
    assert (t.adam_beta1, t.adam_beta2, t.weight_decay) == (0.9, 0.95, 1e-4)
    assert (t.global_batch_size, t.block_size, t.bf16) == (16, 32768, True)
    assert cfg.model.name_or_path == "Qwen/Qwen2.5-32B-Instruct"
    assert _compose("train", ["experiment=s1_1"]).train.block_size == 20000


def test_misspelled_key_names_the_key_and_the_fix():
    with pytest.raises(ConfigError) as e:
        check_overrides(["train.learning_rte=1e-4"])
    msg = str(e.value)
    assert "train.learning_rte" in msg and "1e-4" in msg and "did you mean train.learning_rate" in msg


def test_wrong_type_names_the_key_value_and_type():
    with pytest.raises(ConfigError) as e:
        check_overrides(["train.epochs=five"])
    msg = str(e.value)
    assert "train.epochs" in msg and "five" in msg and "type" in msg


def test_good_overrides_pass():
    check_overrides(["train.epochs=3", "experiment=demo", "model=tiny", "eval.budgets=[8,16]", "+extra.note=x"])


def test_missing_model_path_fails_before_work(tmp_path):
    cfg = _compose("train", [f"model.name_or_path={tmp_path}/nope", "model.build_tiny=null"])
    with pytest.raises(ConfigError) as e:
        prepare(cfg, "train")
    assert "model.name_or_path" in str(e.value) and "no such folder" in str(e.value)


def test_bad_override_on_the_command_line_exits_before_work(tmp_path):
    proc = run_script("train.py", "experiment=demo", "train.learning_rte=1", f"paths.runs_dir={tmp_path}", check=False)
    assert proc.returncode == 2
    assert "train.learning_rte" in proc.stderr and "did you mean train.learning_rate" in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing was written
