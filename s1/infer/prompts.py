"""The s1 prompt: Qwen chat format, then the opening of the thinking segment."""

from __future__ import annotations

THINK_PREFIX = "<|im_start|>think\n"


def build_prompt(tokenizer, question: str, *, system: str | None = None, think: bool = True,
                 think_prefix: str = THINK_PREFIX) -> str:
    """System (Qwen's default when None), user turn, "<|im_start|>assistant\\n", plus the think prefix.

    This is the training sequence cut where the model starts writing:
    `<|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n<|im_start|>think\\n`.
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt + think_prefix if think else prompt
