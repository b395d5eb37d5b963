"""The fit planner against hand-computed figures: 1.5B / 14B / 32B on 1×24, 4×24, 8×40 and 8×80 GB, LoRA and QLoRA
terms, train.fit=auto's choice, and every switch the hardware cannot use refused with its message."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import REPO, run_script
from omegaconf import OmegaConf

from s1.runtime import ConfigError
from s1.train.fit import choose, fit_table
from s1.train.hardware import GPU_RIG, Hardware, check_switches, cpu_bf16_decision, read_cpu_flags, resolve_bf16
from s1.train.memory import GIB, QWEN25, Setup, estimate_gib

S = 32768  # the recipe's block
# Hand-computed from each config.json (data/README.md): N total parameters (= the models' published counts),
# LAYER = one block's parameters: 2h² (q, o) + 2h·kv (k, v) + h + 2kv (qkv biases) + 3h·I (MLP) + 2h (norms).
MODELS = {
    #        N               L   h     kv    I      V       LAYER
    "1.5B": (1_543_714_304, 28, 1536, 256, 8960, 151936, 2*1536**2 + 2*1536*256 + 1536 + 512 + 3*1536*8960 + 3072),
    "14B": (14_770_033_664, 48, 5120, 1024, 13824, 152064, 2*5120**2 + 2*5120*1024 + 5120 + 2048 + 3*5120*13824 + 10240),
    "32B": (32_763_876_352, 64, 5120, 1024, 27648, 152064, 2*5120**2 + 2*5120*1024 + 5120 + 2048 + 3*5120*27648 + 10240),
}
RIGS = [(1, 24), (4, 24), (8, 40), (8, 80)]


def z3(gpus: int, **kw) -> Setup:
    return replace(Setup(S, 1, gpus, 3, False, False, True, True, "DeepSpeed ZeRO-3"), **kw)


def hand_full_zero3(size: str, w: int) -> dict[str, float]:
    n, L, h, kv, i, v, layer = MODELS[size]
    parts = {"weights": 2 * n / w, "gradients": 2 * n / w, "optimizer (fp32 master + Adam)": 12 * n / w,
             "gathered layers (ZeRO-3)": (2 * layer + v * h) * 2,
             "activations": L * S * h * 2 + S * (4 * h + 2 * kv + 4 * i) * 2,
             "loss (fused LM head)": S * h * 4 + 0.5 * GIB}
    parts = {k: x / GIB for k, x in parts.items()}
    parts["overhead (context, fragmentation)"] = 3 + 0.1 * sum(parts.values())
    return parts


@pytest.mark.parametrize("size", list(MODELS))
@pytest.mark.parametrize("gpus,gpu_gb", RIGS)
def test_full_zero3_terms_match_the_hand_computation(size, gpus, gpu_gb):
    got = estimate_gib(QWEN25[size], z3(gpus))
    want = hand_full_zero3(size, gpus)
    assert list(got) == list(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=0.1), key
    assert (sum(got.values()) <= gpu_gb) == (sum(want.values()) <= gpu_gb)


def test_lora_and_qlora_terms_for_32b_on_8_gpus():
    n, L, h, kv, i, v, layer = MODELS["32B"]
    adapter = 16 * L * (9 * h + 2 * kv + 3 * i)  # r=16: r·(in+out) over q k v o gate up down = 134,217,728
    assert adapter == 134_217_728
    lora = estimate_gib(QWEN25["32B"], z3(8, peft="lora"))
    assert lora["weights"] == pytest.approx(2 * n / 8 / GIB, abs=0.1)   # frozen bf16, sharded: 7.6
    assert lora["gradients"] == lora["optimizer (fp32 master + Adam)"] == 0
    assert lora["adapter (weights + grads + Adam)"] == pytest.approx(16 * adapter / GIB, abs=0.1)  # 2.0
    assert lora["activations"] == pytest.approx(hand_full_zero3("32B", 8)["activations"], abs=0.1)
    linear = L * (2 * h * h + 2 * h * kv + 3 * h * i)  # what NF4 quantizes: 31,205,621,760
    qlora = estimate_gib(QWEN25["32B"], z3(8, peft="qlora"))
    nf4 = linear * (0.5 + 0.127 / 8) + (n - linear) * 2  # 4-bit + double-quantized constants; the rest bf16
    assert qlora["weights"] == pytest.approx(nf4 / 8 / GIB, abs=0.1)  # 2.2
    assert qlora["dequantized matrix (QLoRA)"] == pytest.approx(h * i * 2 / GIB, abs=0.1)
    total = sum(lora.values()), sum(qlora.values())
    assert total[1] < total[0] < sum(hand_full_zero3("32B", 8).values())


def test_memory_savers_each_move_their_term():
    base = estimate_gib(QWEN25["14B"], z3(8))
    n, L, h, kv, i, v, layer = MODELS["14B"]
    paged = estimate_gib(QWEN25["14B"], z3(8, optim="paged_adamw_8bit"))
    assert paged["optimizer (fp32 master + Adam)"] == pytest.approx(6 * n / 8 / GIB, abs=0.1)  # master 4 + m, v 1
    liger = estimate_gib(QWEN25["14B"], z3(8, liger=True))
    assert base["activations"] - liger["activations"] == pytest.approx(S * 2 * i * 2 / GIB, abs=0.01)
    eager = estimate_gib(QWEN25["14B"], z3(8, attention="eager"))
    assert eager["activations"] - base["activations"] == pytest.approx(2 * 40 * S * S * 2 / GIB, abs=0.1)  # 160 GiB


@pytest.mark.parametrize("size,rig,host,chosen,block", [
    ("1.5B", (1, 24), None, "full, DeepSpeed ZeRO-3 + offload optimizer", S),
    ("1.5B", (4, 24), None, "full, DeepSpeed ZeRO-3", S),
    ("14B", (8, 80), None, "full, DeepSpeed ZeRO-3", S),
    ("14B", (4, 24), 128, "QLoRA r=16, DeepSpeed ZeRO-3", 21504),
    ("32B", (8, 80), 1024, "full, DeepSpeed ZeRO-3 + offload optimizer", S),
    ("32B", (8, 80), 256, "LoRA r=16, DeepSpeed ZeRO-3", S),   # the optimizer's 427 GiB do not fit the host
    ("7B", (1, 80), 64, "LoRA r=16, DeepSpeed ZeRO-3", S),
])
def test_fit_auto_takes_the_first_rung_that_fits(size, rig, host, chosen, block):
    gpus, gpu_gb = rig
    option, considered = choose(QWEN25[size], z3(gpus), gpu_gb, gpus, host)
    assert option.setup.describe() == chosen and option.setup.seq_len == block
    before = considered[:considered.index(option)]
    assert all(not o.fits for o in before if o.setup.seq_len == block)  # nothing earlier on the ladder fit
    table = fit_table(size, gpus, gpu_gb, considered, option)
    assert "**chosen**" in table and ("Warning: block" in table) == (block < 20_000)


def test_32b_on_one_24gb_gpu_fits_nothing_and_says_so():
    option, considered = choose(QWEN25["32B"], z3(1), 24, 1, 64)
    assert option is None and "Nothing fits" in fit_table("32B", 1, 24, considered, None)


def test_make_train_fit_auto_chooses_lora_and_prints_the_table(tmp_path):
    proc = run_script("train.py", "model=qwen2.5-7b-instruct", f"paths.runs_dir={tmp_path}", "cluster.gpus_per_node=1",
                      "cluster.gpu_memory_gib=80", "cluster.host_memory_gib=64", "train.fit=auto", "train.plan_only=true")
    lines = proc.stdout.splitlines()
    assert any("LoRA r=16, DeepSpeed ZeRO-3 | 32,768" in x and "**chosen**" in x for x in lines)
    assert any(x.startswith("| full, DeepSpeed ZeRO-3 | 32,768") and "does not fit" in x for x in lines)
    assert "LoRA r=16, DeepSpeed ZeRO-3, bf16" in proc.stdout  # the plan of the chosen config follows


# --- switches the hardware cannot use -------------------------------------------------------------------------

CPU = Hardware(cuda=False, cpu_flags=frozenset({"avx512f", "avx512_bf16"}))


def cfg(**train):
    t = {"peft": "none", "optim": "adamw_torch", "fit": "off", "liger": False, "padding_free": False,
         "offload_optimizer": False, "offload_params": False, "push_to_hub": False, "hub_model_id": None,
         "deepspeed": None, "fsdp": None, "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj"]}}
    model = {"attn_implementation": train.pop("attn", None)}
    return OmegaConf.create({"train": t | train, "model": model, "run": {"offline": train.pop("offline", True)}})


@pytest.mark.parametrize("overrides,hw,key,message", [
    ({"liger": True}, CPU, "train.liger", "need a CUDA GPU"),
    ({"liger": True}, replace(GPU_RIG, liger=False), "train.liger", "pip install liger-kernel"),
    ({"attn": "flash_attention_2"}, CPU, "model.attn_implementation", "FlashAttention-2 needs a CUDA GPU"),
    ({"optim": "paged_adamw_8bit"}, CPU, "train.optim", "needs a GPU"),
    ({"padding_free": True}, GPU_RIG, "train.padding_free", "flash_attention_2"),
    ({"offload_optimizer": True, "deepspeed": "z.json"}, CPU, "train.offload_optimizer", "without a GPU"),
    ({"offload_optimizer": True}, GPU_RIG, "train.offload_optimizer", "train.deepspeed="),
    ({"offload_params": True, "deepspeed": "z.json"}, GPU_RIG, "train.offload_params", "offload_optimizer=true"),
    ({"peft": "qlora"}, CPU, "train.peft", "4-bit NF4 kernels (bitsandbytes) cannot run on this CPU"),
    ({"peft": "dora"}, GPU_RIG, "train.peft", "one of"),
    ({"optim": "sgd"}, GPU_RIG, "train.optim", "one of"),
    ({"attn": "flash"}, GPU_RIG, "model.attn_implementation", "one of"),
    ({"push_to_hub": True, "hub_model_id": "noslash"}, GPU_RIG, "train.hub_model_id", "owner/name"),
    ({"push_to_hub": True, "hub_model_id": "me/s1"}, GPU_RIG, "train.push_to_hub", "run.offline=false"),
])
def test_each_switch_the_hardware_cannot_use_is_refused(overrides, hw, key, message):
    with pytest.raises(ConfigError) as e:
        check_switches(cfg(**overrides), hw)
    assert e.value.key == key and message in str(e.value)


def test_the_same_switches_pass_where_the_hardware_has_them():
    check_switches(cfg(liger=True, attn="flash_attention_2", padding_free=True, optim="paged_adamw_8bit",
                       peft="qlora", offload_optimizer=True, offload_params=True, deepspeed="z.json"), GPU_RIG)


def test_make_train_refuses_liger_on_this_cpu_before_any_work(tmp_path, tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU machine may have liger-kernel")
    proc = run_script("train.py", "experiment=demo", f"paths.runs_dir={tmp_path}", "train.liger=true", check=False)
    assert proc.returncode == 2 and "config error: train.liger=True" in proc.stderr
    assert not (tmp_path / "demo" / "train").exists()


# --- precision by the machine -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,bf16,why", [
    ({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}, True, "AMX"),           # Sapphire Rapids and later
    ({"avx512f", "avx512_bf16"}, False, "AVX512-BF16 but no AMX"),                # EPYC Zen 4, this dev VM
    ({"avx2", "fma"}, False, "neither AMX nor AVX512-BF16"),                      # older CPUs
])
def test_cpu_precision_follows_the_flags(flags, bf16, why):
    on, reason = cpu_bf16_decision(frozenset(flags))
    assert on is bf16 and why in reason and reason.startswith("bf16" if bf16 else "float32")


def test_explicit_bf16_on_a_cpu_runs_as_set_with_the_reason_and_null_picks_by_the_machine():
    plain = Hardware(cuda=False, cpu_flags=frozenset({"avx2"}))
    on, why = resolve_bf16(True, plain)
    assert on is True and "as set" in why and "neither AMX nor AVX512-BF16" in why and "train.bf16=null" in why
    assert resolve_bf16(None, plain)[0] is False and resolve_bf16(None, CPU)[0] is False
    assert resolve_bf16(False, CPU) == (False, cpu_bf16_decision(CPU.cpu_flags)[1])
    assert resolve_bf16(None, GPU_RIG) == (True, "bf16 on the GPU")
    with pytest.raises(ConfigError, match="pre-Ampere"):
        resolve_bf16(True, replace(GPU_RIG, gpu_bf16=False))


def test_cpu_flags_are_read_from_cpuinfo():
    text = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\nbogomips\t: 1\n"
    assert read_cpu_flags(text) == frozenset({"fpu", "avx512f", "avx512_bf16", "amx_tile"})


# --- the experiment= recipes: each is what train.fit=auto picks for its rig ------------------------------------

RECIPES = sorted(p.stem for p in (REPO / "configs" / "experiment").glob("s1_*b_*.yaml"))


def compose_recipe(name: str, *overrides: str):
    from hydra import compose, initialize_config_dir

    from s1.runtime import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        cfg = compose("train", overrides=[f"paths.repo={REPO}", f"experiment={name}", *overrides])
    OmegaConf.resolve(cfg)
    return cfg


def test_the_recipes_cover_the_qwen25_sizes_and_the_issue_rigs():
    assert {"s1_7b_1x80gb", "s1_32b_8x80gb_lora", "s1_14b_4x24gb_qlora"} <= set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_is_what_fit_auto_picks_for_its_rig(name):
    from s1.train.fit import fit_config
    from s1.train.memory import plan_memory

    recipe = compose_recipe(name)
    plan = plan_memory(recipe)
    assert plan.fits and not plan.suggestions
    # from the paper's starting point (full fine-tune, 32K tokens), the planner lands on the recipe
    start = compose_recipe(name, "train.peft=none", "train.block_size=32768", "train.offload_optimizer=false",
                           "train.offload_params=false", "train.fit=auto")
    chosen, table = fit_config(start)
    for key in ("peft", "block_size", "offload_optimizer", "offload_params"):
        assert chosen.train[key] == recipe.train[key], (key, table)
    assert ("Warning: block" in table) == (recipe.train.block_size < 20_000)
    assert recipe.model.name_or_path.startswith("Qwen/Qwen2.5-") and recipe.model.shape.hidden_size > 0


def test_model_files_carry_the_shapes_the_planner_knows():
    from s1.train.memory import KNOWN_MODELS, shape_from_config

    for path in sorted((REPO / "configs" / "model").glob("qwen2.5-*-instruct.yaml")):
        m = OmegaConf.load(path)
        assert shape_from_config(dict(m.shape)) == KNOWN_MODELS[m.name_or_path], path.name
    assert len(list((REPO / "configs" / "model").glob("qwen2.5-*-instruct.yaml"))) == 6


def test_the_fit_tables_in_the_docs_are_the_planners_output():
    """README's grid and docs/gpus.md's tables are printed by `python -m s1.train.fit`: a planner change that is not
    pasted into them fails here."""
    from s1.train.fit import method_table, rig_grid, rig_table

    readme, gpus = (REPO / "README.md").read_text(), (REPO / "docs" / "gpus.md").read_text()
    assert rig_grid() in readme, "paste `python -m s1.train.fit`'s first table into README.md"
    assert rig_table() in gpus and method_table() in gpus, "paste `python -m s1.train.fit`'s tables into docs/gpus.md"
    assert "QLoRA, 11K (short), 23.9 GiB" in rig_grid()   # 32B on 4 × 24 GB: the short-block warning reaches the grid
