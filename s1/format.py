"""The s1 text format: one place for the strings that training, budget forcing, the server and the grader share.

Training sequence (the paper, arXiv:2501.19393; the release's train/sft.py):
  <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n
  <|im_start|>think\\n{thinking}\\n<|im_start|>answer\\nAnswer: {attempt}<|im_end|>

Budget forcing appends what the release's lm-evaluation-harness fork (eval/lm-evaluation-harness/lm_eval/models/
vllm_causallms.py) appends, per case:
- the thinking cap ran out: "\\n<|im_start|>answer\\nFinal Answer:" (no "\\n" first when the thinking already ends
  in one) -- FORCED_AT_CAP;
- the model ended its thinking itself (it wrote "<|im_start|>", the stop): only "<|im_start|>answer", and the model
  writes "\\nAnswer: ..." on as it was trained -- FORCED_AFTER_END.
The release opens thinking with "<|im_start|>think" (the model writes the newline); the training text, and so this
project's default prompt, ends with "<|im_start|>think\\n". Every string is a config key
(eval.budget_forcing.*); these are the defaults, and configs/experiment/paper_s1.yaml spells the release's.
Thinking models (Qwen3, DeepSeek-R1-distills) write "<think>\\n{thinking}\\n</think>\\n\\n{answer}" instead; their
presets (configs/model/qwen3-0.6b.yaml, r1-distill-qwen-1.5b.yaml) set the strings for it (docs/methods.md).
"""

from __future__ import annotations

from s1.tiny_model import QWEN_SYSTEM_PROMPT, THINK_CLOSE

SYSTEM_PROMPT = QWEN_SYSTEM_PROMPT        # Qwen2.5's default system turn: the training format's
THINK = "<|im_start|>think\n"             # opens the thinking segment (training; the default prompt ends with it)
RELEASE_THINK = "<|im_start|>think"       # the release's thinking_start: the model writes the newline
ANSWER_MARKER = "<|im_start|>answer"      # opens the answer segment; the grader reads the text after its last one
ANSWER = ANSWER_MARKER + "\n"
ANSWER_LABEL = "Answer:"                  # training: "Answer: {attempt}"
END_OF_THINKING = "<|im_start|>"          # stop string: any new segment ends thinking
END = "<|im_end|>"                        # end of the assistant turn
FORCED_AT_CAP = ANSWER + "Final Answer:"  # the release's thinking_end + "\nFinal Answer:" (after a newline)
FORCED_AFTER_END = ANSWER_MARKER          # the release's thinking_end: the model writes "\nAnswer: ..." itself

# conditional control (paper Table 3): the release's prompts (lm-eval fork: PROMPTTOKEN / PROMPTSTEP) and the
# countdown markers that training writes into the traces (s1/train/transforms.py) and evaluation stops on
TOKEN_PROMPT = "Think for up to {n} tokens."
STEP_PROMPT = "Think for up to {n} steps."
STEP_MARKER = END_OF_THINKING + "{n} steps left\n"
TOKEN_MARKER = END_OF_THINKING + "{n} tokens left\n"


TEXT_FORMATS = ("release", "always_label")


def completion_text(thinking: str, attempt: str, style: str = "release") -> str:
    """The assistant turn the model learns: think segment, answer segment, end of turn.

    release (train.text_format, the release's data/tokenization.py): "Answer: " only when the attempt has no
    "Answer:" of its own, thinking and answer stripped; always_label: "Answer: " before every attempt, nothing
    stripped (this project before issue 29: s1K's attempts, which already say "Answer:", got it twice)."""
    if style == "always_label":
        return f"{THINK}{thinking}\n{ANSWER}{ANSWER_LABEL} {attempt}{END}"
    answer = attempt if ANSWER_LABEL in attempt else f"{ANSWER_LABEL} {attempt}"
    return f"{THINK}{thinking.strip()}\n{ANSWER}{answer.strip()}{END}"


def build_prompt(tokenizer, question: str, *, system: str | None = None, think: bool = True,
                 think_prefix: str = THINK, chat_template_kwargs: dict | None = None) -> str:
    """System (Qwen's default when None; none when ""), user turn and the opened assistant turn from the
    tokenizer's chat template, plus the think prefix when `think`: the training sequence cut where the model starts
    writing. chat_template_kwargs go to the template (model.chat_template_kwargs, e.g. Qwen3's enable_thinking).

    A template whose generation prompt already opens thinking (DeepSeek-R1-distills' ends with "<think>\n") gets
    no second think prefix. Training's prompt is this with think=False (the think prefix is the completion's
    first text)."""
    messages = [{"role": "user", "content": question}]
    if system != "":       # "": no system turn (thinking models' recommendation); the template may add its own
        messages.insert(0, {"role": "system", "content": system or SYSTEM_PROMPT})
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                           **dict(chat_template_kwargs or {}))
    if not think or (think_prefix and prompt.endswith(think_prefix)):
        return prompt
    return prompt + think_prefix


def forced_answer(text_so_far: str, *, at_cap: bool, at_cap_string: str = FORCED_AT_CAP,
                  after_end_string: str = FORCED_AFTER_END) -> str:
    """What budget forcing appends to end thinking: at the cap the answer prefix on a new line; after the model's
    own end of thinking the bare answer marker (the release's two cases)."""
    if not at_cap:
        return after_end_string
    return at_cap_string if not text_so_far or text_so_far.endswith("\n") else "\n" + at_cap_string


def answer_section(text: str, marker: str = ANSWER_MARKER) -> str:
    """The text after the last answer marker; in a thinking model's text (Qwen3, DeepSeek-R1: no marker) the text
    after its last "</think>", so a boxed guess in the thinking does not decide; the whole text when neither is
    there."""
    i = text.rfind(marker) if marker else -1
    if i >= 0:
        return text[i + len(marker):]
    j = text.rfind(THINK_CLOSE)
    return text if j < 0 else text[j + len(THINK_CLOSE):]
