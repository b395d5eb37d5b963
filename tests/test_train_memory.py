"""The memory planner on known sizes: Qwen2.5-32B at 32K tokens on 8 and 16 × 80 GB GPUs."""

from __future__ import annotations

import pytest

from s1.train.memory import GIB, KNOWN_MODELS, MemoryPlan, Setup, estimate_gib, model_shape, what_fits

QWEN32 = KNOWN_MODELS["Qwen/Qwen2.5-32B-Instruct"]


def plan_32b(gpus: int, **kw) -> MemoryPlan:
    s = Setup(seq_len=kw.pop("seq_len", 32768), micro_batch=1, gpus=gpus, zero_stage=3, offload_optimizer=False,
              offload_params=False, bf16=True, checkpointing=True, strategy="DeepSpeed ZeRO-3")
    from dataclasses import replace

    s = replace(s, **kw)
    plan = MemoryPlan("Qwen/Qwen2.5-32B-Instruct", QWEN32.params / 1e9, s, estimate_gib(QWEN32, s), 80.0)
    if not plan.fits:
        plan.suggestions = what_fits(QWEN32, s, 80.0, 8)
    return plan


def test_qwen32b_parameter_count():
    assert QWEN32.params / 1e9 == pytest.approx(32.76, abs=0.01)  # Qwen2.5-32B: 32.76B parameters


def test_32b_at_32k_does_not_fit_8_gpus_and_says_what_would():
    plan = plan_32b(8)
    # 16 bytes per parameter (bf16 weights + grads, fp32 master + Adam) over 8 GPUs: 61 GiB before any activation
    states = sum(v for k, v in plan.parts.items() if k in ("weights", "gradients", "optimizer (fp32 master + Adam)"))
    assert states == pytest.approx(16 * QWEN32.params / 8 / GIB, rel=1e-6)
    assert not plan.fits and plan.per_gpu_gb > 90
    text = "\n".join(plan.suggestions)
    assert "cluster.nodes=2" in text and "zero3_offload.json" in text and "train.block_size=" in text
    assert "DOES NOT FIT" in plan.table()


def test_32b_at_32k_fits_16_gpus_like_the_paper():
    plan = plan_32b(16)
    assert plan.fits and 60 < plan.per_gpu_gb < 80
    # checkpointed activations: 64 layers × 32,768 tokens × 5,120 hidden × 2 bytes = 20 GiB
    assert plan.parts["activations"] > 64 * 32768 * 5120 * 2 / GIB
    assert "| **total** |" in plan.table() and "(fits)" in plan.table()


def test_offload_and_shorter_blocks_need_less():
    assert plan_32b(8, offload_optimizer=True, offload_params=True).fits
    assert plan_32b(8, seq_len=4096).per_gpu_gb < plan_32b(8).per_gpu_gb
    no_ckpt = plan_32b(16, checkpointing=False)
    assert not no_ckpt.fits and no_ckpt.parts["activations"] > 4 * plan_32b(16).parts["activations"]


def test_shape_from_a_local_model_counts_its_real_parameters(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model_shape(str(tiny_model_dir)).params == model.num_parameters()


@pytest.mark.parametrize("gpus,figures", [
    # the README's table (Training, Memory plan), term by term: weights, gradients, optimizer, gathered,
    # activations, loss, overhead, total
    (8, (7.6, 7.6, 45.8, 3.3, 28.1, 1.1, 12.4, 105.9)),
    (16, (3.8, 3.8, 22.9, 3.3, 28.1, 1.1, 9.3, 72.3)),
])
def test_the_readme_figures_term_by_term(gpus, figures):
    plan = plan_32b(gpus)
    assert len(plan.parts) == 7
    for (key, got), want in zip(plan.parts.items(), figures[:-1]):
        assert got == pytest.approx(want, abs=0.1), key
    assert plan.per_gpu_gb == pytest.approx(figures[-1], abs=0.1)
