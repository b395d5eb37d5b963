"""NoWait (s1/infer/nowait.py): a banned string never appears in what the tiny model generates."""

from collections import Counter

import torch

from s1.infer.nowait import BanWords, banned_ids, completes_banned

PROMPT = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n<|im_start|>think\n"


def test_text_rule_catches_words_spelled_across_tokens():
    assert completes_banned("so W", "ait", ["Wait"])
    assert not completes_banned("Wait", " no", ["Wait"])        # already there, not completed by the new token
    assert completes_banned("", "Hmm,", ["Hmm"])
    assert banned_ids("x W", ["ai", "ait", "aitress", ""], ["Wait"]) == [1, 2]


def _sample(model, tok, processors, seed, n=60):
    ids = tok(PROMPT, return_tensors="pt").input_ids
    torch.manual_seed(seed)
    out = model.generate(ids, max_new_tokens=n, do_sample=True, temperature=1.5, top_k=0,
                         logits_processor=processors, pad_token_id=tok.eos_token_id or 0)
    return tok.decode(out[0][ids.shape[1]:], skip_special_tokens=False)


def test_banned_strings_never_appear_on_the_tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    plain = [_sample(model, tok, LogitsProcessorList(), s) for s in range(4)]
    # ban the two most frequent 2-character strings the model writes unbanned (the tiny model writes no "Wait")
    grams = Counter(t[i:i + 2] for t in plain for i in range(len(t) - 1) if t[i:i + 2].strip())
    words = [g for g, _ in grams.most_common(2)]
    assert any(w in t for w in words for t in plain)   # the test can fail: they do appear without the ban
    prompt_len = tok(PROMPT, return_tensors="pt").input_ids.shape[1]
    for s in range(4):
        text = _sample(model, tok, LogitsProcessorList([BanWords(tok, prompt_len, words)]), s)
        assert not any(w in text for w in words), (words, text)
