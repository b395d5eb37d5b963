"""s1.infer.backend_codec: the Rust backend's ids and text are transformers' own, whatever state the shared
tokenizer was left in; a tokenizer class with its own decode is called as is."""

from __future__ import annotations

import random

from conftest import CACHE, require_or_skip

from s1.format import END, THINK


def _tokenizers(tiny_model_dir):
    from transformers import AutoTokenizer

    yield AutoTokenizer.from_pretrained(tiny_model_dir)
    real = CACHE / "models" / "qwen2.5-0.5b-local"
    if (real / "s1_real_model.json").exists():
        yield AutoTokenizer.from_pretrained(real)
    else:
        require_or_skip("real-model", f"the real model is not built at {real}: run `make real-model`")


def test_the_codec_gives_transformers_ids_and_text(tiny_model_dir):
    """Random ids (special tokens, cut multi-byte characters) and their texts: decode and encode equal
    transformers' encode(add_special_tokens=False) / decode(skip_special_tokens=False, no clean-up)."""
    from s1.infer.backend_codec import BackendCodec

    texts = ["", "Let me add 3 and 4.\n\nWait", f"{THINK}so 7 = 3 + 4 {END}", "Кот  ...  ok?\n\n 7²", "a" * 300]
    for tok in _tokenizers(tiny_model_dir):
        codec = BackendCodec(tok)
        assert codec.backend is not None          # the fast path is the one under test
        rng = random.Random(0)
        for _ in range(500):
            ids = [rng.randrange(len(tok)) for _ in range(rng.randrange(60))]
            texts.append(tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
            assert codec.decode(ids) == texts[-1]
        for text in texts:
            assert codec.encode(text) == tok.encode(text, add_special_tokens=False), text


def test_the_codec_ignores_truncation_left_on_the_shared_tokenizer(tiny_model_dir):
    """transformers sets truncation on its backend for a call and leaves it there; the codec's copy is not cut."""
    from transformers import AutoTokenizer

    from s1.infer.backend_codec import BackendCodec

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    before = BackendCodec(tok)
    text = "Let me add 3 and 4, then check the sum twice. " * 4
    tok(text, truncation=True, max_length=3)
    assert tok.backend_tokenizer.truncation is not None    # the state the codec must not see
    after = BackendCodec(tok)                              # copied while truncation is on
    for codec in (before, after):
        assert len(codec.encode(text)) > 3
        assert codec.encode(text) == tok.encode(text, add_special_tokens=False, truncation=False)


def test_a_tokenizer_with_its_own_decode_is_called_as_is(tiny_model_dir):
    from transformers import AutoTokenizer

    from s1.infer.backend_codec import BackendCodec

    base = type(AutoTokenizer.from_pretrained(tiny_model_dir))

    class Shouting(base):
        def _decode(self, token_ids, **kwargs):
            return super()._decode(token_ids, **kwargs).upper()

    tok = Shouting.from_pretrained(tiny_model_dir)
    codec = BackendCodec(tok)
    assert codec.backend is None
    ids = tok.encode("so the sum is 7", add_special_tokens=False)
    assert codec.decode(ids) == "SO THE SUM IS 7"
    assert codec.encode("so the sum is 7") == ids


def test_split_special_tokens_is_left_to_transformers(tiny_model_dir):
    from transformers import AutoTokenizer

    from s1.infer.backend_codec import BackendCodec

    tok = AutoTokenizer.from_pretrained(tiny_model_dir, split_special_tokens=True)
    codec = BackendCodec(tok)
    assert codec.backend is None
    assert codec.encode(END) == tok.encode(END, add_special_tokens=False)
    assert len(codec.encode(END)) > 1      # spelled as text, as transformers does with that setting
