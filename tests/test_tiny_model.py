"""The offline stand-in for Qwen2.5: tokenizer round-trips through save/reload, chat template marks the assistant."""

from __future__ import annotations

from transformers import AutoModelForCausalLM, AutoTokenizer

from s1.tiny_model import QWEN_SYSTEM_PROMPT, build_tokenizer

TEXTS = [
    "Start at 7, add 9, 5 times. Last digit?",
    "<|im_start|>think\n7+9=6\n6+9=5\nWait 6+9=5\n<|im_start|>answer\nAnswer: \\boxed{5}<|im_end|>",
    "Let $x^2 + \\frac{1}{2}y = 016$; find  the   answer.\n\nÉtienne's café — naïve ∑ 123456",
]


def test_tokenizer_encodes_identically_after_reload(tiny_model_dir):
    reloaded = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert type(reloaded).__name__ == "Qwen2Tokenizer"
    fresh = build_tokenizer(seed=0)
    for text in TEXTS:
        assert reloaded.encode(text) == fresh.encode(text)
        assert reloaded.decode(reloaded.encode(text)) == text


def test_special_tokens_are_single_tokens(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tok.encode(t)) == 1
    assert tok.eos_token == "<|im_end|>"


def test_chat_template_is_qwens_and_masks_only_the_assistant(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = [{"role": "user", "content": "Start at 1, add 2, 3 times. Last digit?"},
            {"role": "assistant", "content": "<|im_start|>think\n1+2=3\n<|im_start|>answer\nAnswer: 7"}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text.startswith(f"<|im_start|>system\n{QWEN_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
    out = tok.apply_chat_template(msgs, return_assistant_tokens_mask=True, return_dict=True)
    kept = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(kept) == msgs[1]["content"] + "<|im_end|>"


def test_model_loads_and_generates(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen2"
    ids = tok("Start at 1", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 5 or out[0, -1].item() in model.generation_config.eos_token_id
