"""Batch arithmetic, config checks and the torchrun command the Slurm template and cluster=local share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, run_script
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from s1.runtime import CONFIG_DIR, ConfigError
from s1.train.launch import (
    build_launch_command,
    check_train_config,
    gradient_accumulation,
    launch_env,
    needs_launcher,
    render_command,
)


def train_cfg(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=[f"paths.repo={REPO}", *overrides])
    OmegaConf.resolve(cfg)
    return cfg


def test_accumulation_keeps_the_global_batch():
    paper = ["experiment=paper_s1"]
    assert gradient_accumulation(train_cfg(*paper, "cluster.nodes=2")) == 1       # 16 GPUs × 1 = 16
    assert gradient_accumulation(train_cfg(*paper, "cluster.nodes=1")) == 2       # 8 GPUs × 1 × 2 = 16
    assert gradient_accumulation(train_cfg(*paper, "cluster.nodes=1", "cluster.gpus_per_node=4")) == 4
    with pytest.raises(ConfigError) as e:
        gradient_accumulation(train_cfg(*paper, "cluster.nodes=3"))             # 24 GPUs do not divide 16
    assert e.value.key == "train.global_batch_size" and "multiple of micro_batch_size (1) × processes (24" in str(e.value)


def test_launch_command_expands_slurm_variables_per_node(tmp_path):
    out = tmp_path / "run with space" / "train"
    cfg = train_cfg("experiment=paper_s1", "cluster.nodes=2", f"train.output_dir={out}")
    cmd = build_launch_command(cfg, nnodes=2, nproc_per_node=8)
    assert (out / "config.yaml").is_file()  # every node reads the same resolved config
    assert cmd[1:4] == ["-m", "torch.distributed.run", "--nnodes=2"] and cmd[-3:-1] == ["-m", "s1.train.sft"]
    line = render_command(cmd)
    env = {**os.environ, "SLURM_NODEID": "1", "MASTER_ADDR": "gpu-node-07"}
    printed = subprocess.run(["bash", "-c", f"printf '%s\\n' {line}"], env=env, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert "--node_rank=1" in printed and "--master_addr=gpu-node-07" in printed and "--master_port=29500" in printed
    assert printed[-1] == str(out / "config.yaml")  # the path with a space stays one argument


def test_fsdp_composes_and_renders_but_is_refused_on_cpu(tmp_path):
    fsdp = ["experiment=paper_s1", "train.deepspeed=null", "train.offload_optimizer=false", f"train.fsdp={REPO}/configs/deepspeed/fsdp.json",
            "cluster.nodes=2", f"train.output_dir={tmp_path}"]
    cfg = train_cfg(*fsdp)
    check_train_config(cfg)  # slurm, 2 × 8 GPUs: valid
    assert needs_launcher(cfg) and "s1.train.sft" in render_command(
        build_launch_command(cfg, nnodes=2, nproc_per_node=8))
    from s1.train.sft import sft_config

    args = sft_config(train_cfg(*fsdp, "train.bf16=false"), tmp_path, [])  # bf16 TrainingArguments need a GPU
    assert args.fsdp and args.fsdp_config["reshard_after_forward"] is True  # full_shard
    assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["Qwen2DecoderLayer"]
    assert args.fsdp_config["activation_checkpointing"] and not args.activation_checkpointing
    assert args.gradient_accumulation_steps == 1 and args.learning_rate == 1e-5
    with pytest.raises(ConfigError, match="FSDP needs GPUs"):
        check_train_config(train_cfg(*fsdp, "cluster=local", "cluster.nodes=1", "cluster.gpus_per_node=0",
                                     "train.nproc_per_node=2", "train.global_batch_size=16"))
    with pytest.raises(ConfigError, match="pick one of DeepSpeed and FSDP"):
        check_train_config(train_cfg(*fsdp, f"train.deepspeed={REPO}/configs/deepspeed/zero3.json"))


def test_paper_config_has_the_papers_hyperparameters(tmp_path):
    cfg = train_cfg("experiment=paper_s1", "cluster.nodes=2", f"train.output_dir={tmp_path}")
    assert cfg.train.bf16 and cfg.model.name_or_path == "Qwen/Qwen2.5-32B-Instruct"
    from s1.train.sft import sft_config

    cfg.train.bf16 = False  # bf16 TrainingArguments need a GPU; everything else as the paper
    a = sft_config(cfg, tmp_path, [])
    assert (a.num_train_epochs, a.learning_rate, a.adam_beta1, a.adam_beta2, a.weight_decay) == (5, 1e-5, 0.9, 0.95, 1e-4)
    assert a.lr_scheduler_type == "cosine" and a.warmup_steps == 0.05 and a.max_length == 32768
    assert a.activation_checkpointing and a.completion_only_loss and not a.packing
    # zero3.json with the optimizer offloaded: the paper's 16 GPUs at full 32K blocks do not fit without (docs/gpus.md)
    zero = a.deepspeed["zero_optimization"]
    assert zero["stage"] == 3 and zero["offload_optimizer"]["device"] == "cpu" and "offload_param" not in zero
    assert train_cfg("experiment=s1_1").train.block_size == 20000


@pytest.mark.parametrize("overrides, key, fix", [
    (["train.block_size=8192"], "train.block_size", "longer than the model's context (4096"),
    (["train.dataset=/nonexistent/s1k.jsonl"], "train.dataset", "make curate"),
    (["train.deepspeed=/nonexistent.json"], "train.deepspeed", "no such file"),
    (["train.resume=/nonexistent/checkpoint-5"], "train.resume", "existing checkpoint folder"),
    (["train.wandb_mode=loud"], "train.wandb_mode", "offline"),
    (["train.save_steps=-1"], "train.save_steps", "0 for none"),
])
def test_bad_values_fail_before_any_work(overrides, key, fix, tmp_path):
    data = tmp_path / "s1k.jsonl"
    data.write_text("{}\n")
    cfg = train_cfg(f"train.dataset={data}", "train.block_size=1024", *overrides)
    with pytest.raises(ConfigError) as e:
        check_train_config(cfg)
    assert e.value.key == key and fix in str(e.value)


def test_make_train_refuses_an_oom_plan_and_prints_the_plan(tmp_path):
    common = ["experiment=paper_s1", f"paths.runs_dir={tmp_path}"]
    proc = run_script("train.py", *common, "cluster.nodes=1", "train.offload_optimizer=false", check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]  # a config error: exit 2 before any work
    assert "DOES NOT FIT" in proc.stderr and "config error: cluster.gpus_per_node=8" in proc.stderr
    assert "cluster.nodes=4" in proc.stderr and "zero3_offload.json" in proc.stderr
    assert not (Path(tmp_path) / "paper_s1" / "train").exists()  # nothing launched, nothing submitted
    proc = run_script("train.py", *common, "cluster.nodes=2", "train.plan_only=true")
    assert "margin; fits)" in proc.stdout and "16 GPUs × 80 GiB" in proc.stdout   # the paper's, optimizer offloaded


def test_cpu_launch_hands_freed_memory_back_unless_the_user_set_malloc(monkeypatch):
    """The 2-process ZeRO-3 rehearsal was OOM-killed with glibc's default malloc (README, Rehearsal)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    env = launch_env(2)
    assert env["DS_ACCELERATOR"] == "cpu" and env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    assert env["MALLOC_ARENA_MAX"] == "2" and env["MALLOC_MMAP_THRESHOLD_"] == "262144"
    assert env["MALLOC_TRIM_THRESHOLD_"] == "1"  # the user's own setting wins
