"""Engine settings (tensor parallel size, dtype, max model length, GPU memory share) reach every model that runs."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from s1.config import DifficultyConfig, EngineConfig, ModelConfig
from s1.infer.engine_settings import engine_args
from s1.runtime import CONFIG_DIR, ConfigError, check_engines


def _compose(stage, overrides=()):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base=None):
        return compose(config_name=stage, overrides=list(overrides))


def _model(**kw):
    return OmegaConf.structured(ModelConfig(name_or_path="m", dtype="bfloat16", max_context=4096, **kw))


def test_engine_args_fall_back_to_the_model_and_pass_vllm_only_settings_to_vllm():
    eng = OmegaConf.structured(EngineConfig(tensor_parallel_size=4, gpu_memory_utilization=0.5))
    assert engine_args("vllm", eng, _model(), key="k") == dict(
        dtype="bfloat16", max_context=4096, trust_remote_code=False, tensor_parallel_size=4, gpu_memory_utilization=0.5,
        bf_mode="auto")
    eng = OmegaConf.structured(EngineConfig(dtype="float32", max_model_len=512))
    assert engine_args("transformers", eng, _model(), key="k") == dict(dtype="float32", max_context=512,
                                                                     trust_remote_code=False)


@pytest.mark.parametrize("field,value,backend", [("tensor_parallel_size", 2, "transformers"),
                                                  ("tensor_parallel_size", 0, "vllm"),
                                                  ("gpu_memory_utilization", 1.5, "vllm"),
                                                  ("dtype", "fp8", "vllm"),
                                                  ("bf_mode", "fast", "vllm")])
def test_bad_engine_settings_name_the_key_value_and_fix(field, value, backend):
    eng = OmegaConf.structured(EngineConfig(**{field: value}))
    with pytest.raises(ConfigError) as e:
        engine_args(backend, eng, _model(), key="eval.engine")
    assert e.value.key == f"eval.engine.{field}" and e.value.value == value and e.value.fix


def test_every_stage_checks_every_engine_block_before_work():
    cfg = _compose("eval", ["eval.backend=transformers", "eval.engine.tensor_parallel_size=8"])
    OmegaConf.resolve(cfg)
    with pytest.raises(ConfigError, match=r"eval\.engine\.tensor_parallel_size.*backend=vllm"):
        check_engines(cfg)
    cfg = _compose("curate", ["curate.difficulty.engine.gpu_memory_utilization=0"])
    OmegaConf.resolve(cfg)
    with pytest.raises(ConfigError, match=r"curate\.difficulty\.engine\.gpu_memory_utilization"):
        check_engines(cfg)


def test_paper_experiment_sets_the_public_eval_engine():
    cfg = _compose("eval", ["experiment=paper_s1"])
    e = cfg.eval.engine
    assert (cfg.eval.backend, e.tensor_parallel_size, e.dtype, e.max_model_len) == ("vllm", 8, "float32", 32768)
    d = cfg.curate.difficulty
    assert (d.backend, d.engine.tensor_parallel_size, d.engine.dtype) == ("vllm", 4, "bfloat16")   # TP 4: 28 and 40 heads
    check_engines(cfg)


@pytest.mark.slow
def test_difficulty_reference_models_get_the_engine_settings(tiny_model_dir, tmp_path):
    """max_model_len from curate.difficulty.engine caps the reference model's context: answers stop early."""
    from s1.curate.difficulty import add_reference_answers
    from s1.data.synthetic import generate_pool

    pool = list({r["id"]: r for r in generate_pool(4, seed=5, flaws=False)}.values())[:2]
    model = OmegaConf.structured(ModelConfig(name_or_path=str(tiny_model_dir), dtype="float32", max_context=4096))
    lengths = {}
    for name, max_len in (("wide", None), ("narrow", 1)):
        cfg = OmegaConf.structured(DifficultyConfig(max_new_tokens=8, batch_size=2, temperature=0.0,
                                                    engine=EngineConfig(max_model_len=max_len)))
        if max_len:   # room for the longest prompt + 3 tokens
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tiny_model_dir)
            longest = max(len(tok.apply_chat_template([{"role": "user", "content": r["question"]}], tokenize=True,
                                                      add_generation_prompt=True)) for r in pool)
            cfg.engine.max_model_len = longest + 3
        add_reference_answers([dict(r) for r in pool], cfg, model, tmp_path / name)
        rows = [json.loads(line) for f in (tmp_path / name).glob("*.jsonl") for line in f.open()]
        lengths[name] = [row["value"]["num_tokens"] if "value" in row else row["num_tokens"] for row in rows]
    assert max(lengths["narrow"]) <= 3 < max(lengths["wide"])


@pytest.mark.slow
def test_served_instruct_model_replies_through_its_chat_template(tiny_model_dir):
    """curate.traces.serve_model with serve_thinking=false: the server answers with the plain chat template."""
    import urllib.request

    from s1.infer import load_engine
    from s1.infer.engine import Request
    from s1.infer.server import serve_in_thread

    engine = load_engine("transformers", str(tiny_model_dir), dtype="float32", max_context=1024)
    server, url = serve_in_thread(engine, "m", think_tokens=0, answer_tokens=6)
    try:
        messages = [{"role": "user", "content": "Is 7 prime? Reply Yes or No."}]
        body = json.dumps({"model": "m", "messages": messages, "max_tokens": 6}).encode()
        req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.loads(resp.read())
    finally:
        server.shutdown()
        server.server_close()
    prompt = engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    want = engine.continue_batch([Request(prompt, 6, stop=["<|im_end|>"])])[0]
    assert reply["choices"][0]["message"]["content"] == want.text and "<|im_start|>think" not in want.text
    assert reply["usage"]["completion_tokens"] == want.num_tokens


def test_eval_cache_key_follows_the_engine_dtype_and_length():
    """Generations made under other engine settings are not reused: the settings hash reads eval.engine."""
    from s1.eval.methods import RunSpec
    from s1.eval.runner import eval_dtype, eval_max_context, spec_settings_hash

    spec = RunSpec("trained", "m", "bf", 8, max_thinking_tokens=8)

    def settings(*overrides):
        cfg = _compose("eval", list(overrides))
        OmegaConf.resolve(cfg)
        return eval_dtype(cfg), eval_max_context(cfg), spec_settings_hash(spec, cfg)

    default = settings()
    assert default[:2] == ("float32", 4096)                         # configs/model/tiny.yaml, no engine override
    assert settings("eval.engine.dtype=float16", "eval.engine.max_model_len=1024")[:2] == ("float16", 1024)
    assert settings("eval.engine.dtype=float16")[2] != default[2]
    assert settings("eval.engine.max_model_len=1024")[2] != default[2]
    assert settings("eval.engine.dtype=float32", "eval.engine.max_model_len=4096")[2] == default[2]   # same settings
    assert settings("eval.dtype=bfloat16")[2] != default[2]
    assert settings("eval.dtype=bfloat16", "eval.engine.dtype=float32")[2] == default[2]   # the engine's dtype wins
