"""The memory planner against references we did not write: the six Qwen2.5 models' published parameter counts,
DeepSpeed's own ZeRO estimators (installed with deepspeed) for model states on the GPU and offloaded states on the
host, and the peaks bench/peak_memory.py measured on this project's CPU (docs/gpus.md, "Calibration")."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import REPO

from s1.train.memory import (
    GIB,
    GPU_MARGIN,
    HOST_RESERVE_GIB,
    QWEN25,
    MemoryPlan,
    ModelShape,
    Setup,
    cpu_estimate_gib,
    estimate_gib,
    host_gib,
    model_shape,
    shape_from_config,
    what_fits,
)

# Total parameters of Qwen/Qwen2.5-*-Instruct as the hub's safetensors metadata counts them (the model pages'
# "Model size"; the model cards round them: 0.49B, 1.54B, 3.09B, 7.61B, 14.7B, 32.5B).
PUBLISHED = {"0.5B": 494_032_768, "1.5B": 1_543_714_304, "3B": 3_085_938_688, "7B": 7_615_616_512,
             "14B": 14_770_033_664, "32B": 32_763_876_352}
STATES = ("weights", "gradients", "optimizer (fp32 master + Adam)", "gathered layers (ZeRO-3)")


def meta_model(shape: ModelShape):
    """The Hugging Face model of this shape on the meta device (no memory): what DeepSpeed's estimators count."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(hidden_size=shape.hidden, num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                      num_key_value_heads=shape.kv_heads, intermediate_size=shape.intermediate, vocab_size=shape.vocab,
                      tie_word_embeddings=shape.tied)
    with torch.device("meta"):
        return Qwen2ForCausalLM(cfg)


@pytest.fixture(scope="module")
def ds_counts():
    """(total, largest layer) parameters per size, counted on the real module tree the way DeepSpeed's
    estimate_zero3_model_states_mem_needs_all_live does (model_to_params; meta tensors share data_ptr 0, so the
    total is counted by identity)."""
    from deepspeed.runtime.zero.stage3 import model_to_params

    out = {}
    for size, shape in QWEN25.items():
        model = meta_model(shape)
        out[size] = (sum(p.numel() for p in model.parameters()), model_to_params(model)[1])
    return out


def z3(shape: ModelShape, gpus: int, **kw) -> Setup:
    return replace(Setup(32768, 1, gpus, 3, False, False, True, True, "DeepSpeed ZeRO-3"), **kw)


def test_the_six_sizes_have_their_published_parameter_counts(ds_counts):
    for size, shape in QWEN25.items():
        assert shape.params == PUBLISHED[size] == ds_counts[size][0], size


@pytest.mark.parametrize("gpus", [1, 8, 16])
@pytest.mark.parametrize("offload", ["none", "optimizer", "all"])
def test_model_states_and_host_memory_are_at_least_deepspeeds_estimate(ds_counts, gpus, offload):
    """DeepSpeed's ZeRO-3 estimator, zero.Init (sft.py builds the DeepSpeed TrainingArguments before from_pretrained,
    so the weights load partitioned): per GPU and per node, for all six sizes."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    for size, shape in QWEN25.items():
        total, largest = ds_counts[size]
        s = z3(shape, gpus, offload_optimizer=offload != "none", offload_params=offload == "all")
        cpu, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, num_gpus_per_node=gpus, num_nodes=1,
                                                            cpu_offload=offload != "none",
                                                            cpu_offload_params=offload == "all", zero_init=True)
        parts = estimate_gib(shape, s)
        assert sum(parts[k] for k in STATES) >= gpu / GIB, (size, offload)
        assert host_gib(shape, s, gpus) >= cpu / GIB, (size, offload)


@pytest.mark.parametrize("gpus", [1, 8])
def test_zero2_model_states_are_at_least_deepspeeds_estimate(gpus):
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    for size, shape in QWEN25.items():
        _, gpu = estimate_zero2_model_states_mem_needs(shape.params, gpus, 1, cpu_offload=False)
        parts = estimate_gib(shape, z3(shape, gpus, zero_stage=2))
        assert sum(parts[k] for k in STATES) >= gpu / GIB, size


def test_32b_offload_on_8x40_with_512_gib_of_ram_does_not_fit_the_host(ds_counts):
    """The issue's cell: DeepSpeed puts 32B's offloaded states at ~824 GiB per node, over a 512 GiB node."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    from s1.train.fit import choose, option, paper_setup

    shape = QWEN25["32B"]
    cpu, _, _ = estimate_zero3_model_states_mem_needs(*ds_counts["32B"], num_gpus_per_node=8, num_nodes=1)
    assert 800 < cpu / GIB < 850
    offload_all = option(shape, replace(paper_setup(8, 32768), offload_optimizer=True, offload_params=True), 40, 8, 512)
    assert offload_all.host_gib >= cpu / GIB and not offload_all.fits
    chosen, _ = choose(shape, paper_setup(8, 32768), 40, 8, 512)
    assert not chosen.setup.offload_optimizer and chosen.total <= (1 - GPU_MARGIN) * 40


def test_fits_leaves_the_margin():
    shape = QWEN25["7B"]
    s = z3(shape, 8)
    total = sum(estimate_gib(shape, s).values())
    just_over = MemoryPlan("7B", 7.6, s, estimate_gib(shape, s), total * 1.05)   # 5% free: under the margin
    assert not just_over.fits and "DOES NOT FIT" in just_over.table()
    assert MemoryPlan("7B", 7.6, s, estimate_gib(shape, s), total / (1 - GPU_MARGIN)).fits


def test_32b_at_32k_does_not_fit_8_gpus_and_says_what_would():
    shape = QWEN25["32B"]
    s = z3(shape, 8)
    plan = MemoryPlan("Qwen/Qwen2.5-32B-Instruct", shape.params / 1e9, s, estimate_gib(shape, s), 80.0)
    # DeepSpeed's 18 bytes per parameter over 8 GPUs alone: 68.7 GiB of 80, before any activation
    assert not plan.fits and plan.per_gpu_gib > 18 * shape.params / 8 / GIB
    text = "\n".join(what_fits(shape, s, 80.0, 8))
    assert "cluster.nodes=4" in text and "zero3_offload.json" in text   # no shorter block fits: the states alone
    assert "DOES NOT FIT" in plan.table()


def test_offload_and_shorter_blocks_need_less():
    shape = QWEN25["32B"]
    per_gpu = lambda **kw: sum(estimate_gib(shape, z3(shape, 8, **kw)).values())
    assert per_gpu(offload_optimizer=True, offload_params=True) < per_gpu(offload_optimizer=True) < per_gpu()
    assert per_gpu(seq_len=4096) < per_gpu()
    # without checkpointing every layer keeps all its activations: at least the 64 layer inputs × 4
    no_ckpt = estimate_gib(shape, z3(shape, 8, checkpointing=False))["activations"]
    assert no_ckpt > 4 * 64 * 32768 * 5120 * 2 / GIB


def test_shape_from_a_local_model_counts_its_real_parameters(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model_shape(str(tiny_model_dir)).params == model.num_parameters()


# --- calibration: the planner's CPU estimate against measured peaks ----------------------------------------------

CALIBRATION = REPO / "bench" / "peak_memory_calibration.json"
BAND = (1.0, 1.5)   # planner / measured peak: never below what was measured, at most 50% above


def test_the_cpu_estimate_is_within_the_band_of_the_measured_peaks():
    """bench/peak_memory.py --peft measured the real 0.5B's peak resident memory (full and LoRA, 2 steps, one process);
    the planner's estimate for the same setup stays within BAND of each (the command and CPU are in the file)."""
    rec = json.loads(CALIBRATION.read_text())
    shape = shape_from_config(rec["model_config"])
    assert shape.params == rec["parameters"]
    for run in rec["runs"]:
        s = Setup(run["block_size"], 1, 1, 0, False, False, run["bf16"], run["gradient_checkpointing"], "DDP",
                  peft=run["peft"], lora_r=run["lora_r"], lora_targets=tuple(run["lora_targets"]))
        ratio = cpu_estimate_gib(shape, s) / run["peak_gib"]
        assert BAND[0] <= ratio <= BAND[1], (run["peft"], round(ratio, 3))
    assert HOST_RESERVE_GIB > 0
