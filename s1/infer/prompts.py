"""The s1 prompt: Qwen chat format, then the opening of the thinking segment."""

from __future__ import annotations

THINK_PREFIX = "<|im_start|>think\n"
# the released evaluation's control prompts (lm-eval fork: PROMPTTOKEN / PROMPTSTEP / PROMPTSHORT / PROMPTLONG)
TOKEN_PROMPT = "Think for up to {n} tokens."
STEP_PROMPT = "Think for up to {n} steps."
CLASS_PROMPTS = {
    "short": "Answer after a short amount of thinking. Do not spend excessive time double-checking your work.",
    "long": ("Answer after a long amount of thinking. If you feel like you are finished early, spend the extra time "
             "trying to double-check your work until you are absolutely sure that you have the correct answer."),
}
# countdown markers in the conditional-control training traces (s1/train/transforms.py) and the stops that read them
STEP_MARKER = "<|im_start|>{n} steps left\n"
TOKEN_MARKER = "<|im_start|>{n} tokens left\n"
CONDITIONAL_END = "<|im_start|>answer"            # the model ends thinking itself (markers also start <|im_start|>)
STEP_OVERRUN = "<|im_start|>0 steps left"          # step-conditional + BF: thinking stops when no step is left


def build_prompt(tokenizer, question: str, *, system: str | None = None, think: bool = True,
                 think_prefix: str = THINK_PREFIX) -> str:
    """System (Qwen's default when None), user turn, "<|im_start|>assistant\\n", plus the think prefix.

    This is the training sequence cut where the model starts writing:
    `<|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n<|im_start|>think\\n`.
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt + think_prefix if think else prompt
