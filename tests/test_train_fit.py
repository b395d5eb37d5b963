"""train.fit=auto's choice on rigs whose outcome follows from DeepSpeed's per-parameter counts, the LoRA / QLoRA and
memory-saver terms' direction, and every switch the hardware cannot use refused with its message (the terms
themselves are checked against DeepSpeed's estimators in tests/test_train_memory.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import REPO, run_script
from omegaconf import OmegaConf

from s1.runtime import ConfigError
from s1.train.fit import BLOCK_STEP, candidates, choose, fit_table
from s1.train.hardware import GPU_RIG, Hardware, check_switches, cpu_bf16_decision, read_cpu_flags, resolve_bf16
from s1.train.memory import GIB, QWEN25, Setup, estimate_gib

S = 32768  # the recipe's block


def z3(gpus: int, **kw) -> Setup:
    return replace(Setup(S, 1, gpus, 3, False, False, True, True, "DeepSpeed ZeRO-3"), **kw)


def test_lora_and_qlora_need_less_than_full_and_drop_its_gradients_and_optimizer():
    shape = QWEN25["32B"]
    full, lora, qlora = (estimate_gib(shape, z3(8, peft=p)) for p in ("none", "lora", "qlora"))
    assert lora["gradients"] == lora["optimizer (fp32 master + Adam)"] == 0
    assert qlora["weights"] < lora["weights"] == full["weights"]   # 4-bit base vs the same bf16 base
    assert lora["activations"] == full["activations"]
    assert sum(qlora.values()) < sum(lora.values()) < sum(full.values())


def test_memory_savers_each_move_their_term():
    shape = QWEN25["14B"]
    base = estimate_gib(shape, z3(8))
    paged = estimate_gib(shape, z3(8, optim="paged_adamw_8bit"))
    assert paged["optimizer (fp32 master + Adam)"] < base["optimizer (fp32 master + Adam)"]
    assert estimate_gib(shape, z3(8, liger=True))["activations"] < base["activations"]
    eager = estimate_gib(shape, z3(8, attention="eager"))
    # at least the attention probabilities eager keeps: 40 heads × S × S in bf16
    assert eager["activations"] - base["activations"] >= 40 * S * S * 2 / GIB


# Each expected choice follows from a reference, not from the planner's output: DeepSpeed's 18 bytes per parameter
# (ZeRO-3 states 18N/W) and its host estimate for offload (16N × 1.5 per node for the optimizer).
@pytest.mark.parametrize("size,rig,host,chosen,short", [
    ("1.5B", (4, 24), None, "full, DeepSpeed ZeRO-3", False),            # 18 × 1.54B / 4 = 6.5 GiB of states
    ("14B", (8, 80), None, "full, DeepSpeed ZeRO-3", False),             # 18 × 14.8B / 8 = 31 GiB of states
    ("32B", (8, 80), 1024, "full, DeepSpeed ZeRO-3 + offload optimizer", False),  # 18N/8 = 69 GiB: offload; 732 GiB host
    ("32B", (8, 80), 256, "LoRA r=16, DeepSpeed ZeRO-3", False),         # offload's 732 GiB do not fit 256
    ("7B", (1, 80), 64, "LoRA r=16, DeepSpeed ZeRO-3", False),           # offload's 170 GiB do not fit 64
    ("14B", (4, 24), 128, "QLoRA r=16, DeepSpeed ZeRO-3", True),         # 14.8B in bf16 / 4 = 6.9 GiB before the rest
])
def test_fit_auto_takes_the_first_rung_that_fits(size, rig, host, chosen, short):
    gpus, gpu_gib = rig
    option, considered = choose(QWEN25[size], z3(gpus), gpu_gib, gpus, host)
    assert option.setup.describe() == chosen and (option.setup.seq_len < S) == short
    before = considered[:considered.index(option)]
    assert before or option.setup.peft == "none" and not option.setup.offload_optimizer
    assert not any(o.fits for o in before)                              # nothing earlier on the ladder fit
    if short:   # every rung at the next longer block fails, and the rungs before the chosen one at its block
        longer = [option_at(size, s, gpu_gib, gpus, host) for s in candidates(z3(gpus, seq_len=option.setup.seq_len
                                                                                 + BLOCK_STEP))]
        same = [option_at(size, s, gpu_gib, gpus, host) for s in candidates(z3(gpus, seq_len=option.setup.seq_len))]
        same = same[:[o.setup for o in same].index(option.setup)]
        assert len(longer) == 5 and not any(o.fits for o in longer + same)
    table = fit_table(size, gpus, gpu_gib, considered, option)
    assert "**chosen**" in table and ("Warning: block" in table) == (option.setup.seq_len < 20_000)
    assert option.total <= 0.9 * gpu_gib and (host is None or option.host_gib <= 0.9 * host)


def option_at(size, s, gpu_gib, gpus, host):
    from s1.train.fit import option

    return option(QWEN25[size], s, gpu_gib, gpus, host)


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
    grid = rig_grid().splitlines()
    assert "(short)" in grid[-1]   # 32B on 4 × 24 GiB: the short-block warning reaches the grid
    assert "offload" not in grid[-1].split(" | ")[3]   # 32B on 8 × 40 GiB with 512 GiB RAM: offload fits no host
