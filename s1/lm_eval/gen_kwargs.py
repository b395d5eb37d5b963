"""The s1 release's lm-evaluation-harness gen_kwargs, read as budget-forcing settings of the project's controller.

The release's fork (simplescaling/lm-evaluation-harness, branch s1, lm_eval/models/vllm_causallms.py) turns on a
thinking phase when any gen_kwargs key contains "thinking", and reads:

| release gen_kwarg       | release meaning                                               | controller key (s1.config.BudgetForcingConfig) |
|-------------------------|---------------------------------------------------------------|------------------------------------------------|
| max_tokens_thinking     | thinking-token cap; `auto`: see auto_thinking_cap              | max_thinking_tokens                            |
| thinking_n_ignore       | times an end of thinking is ignored                           | num_waits                                      |
| thinking_n_ignore_str   | appended at each ignored end (absent: nothing appended)       | wait_string (absent: "")                       |
| min_tokens_thinking     | no end of thinking before this many tokens                    | min_thinking_tokens                            |
| thinking_start          | opens thinking (default "<|im_start|>think")                  | think_prefix (absent: the project's, with "\\n") |
| thinking_end            | closes thinking (default "<|im_start|>answer")                | answer_prefix's "<|im_start|>answer" part      |
| until_thinking          | stop string that ends thinking (default "<|im_start|>")       | end_of_thinking                                |

max_gen_toks is the controller's max_new_tokens (thinking + answer, as eval.max_new_tokens), temperature / do_sample
/ top_p the sampling, and the task's `until` strings stop thinking and answer alike (as in the fork). Any other key
is an error that names it, so nothing is silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from s1.infer.budget_forcing import DEFAULTS, END_OF_TEXT

RELEASE_THINKING_START = "<|im_start|>think"     # the fork's defaults
RELEASE_THINKING_END = "<|im_start|>answer"
RELEASE_AT_CAP = "\nFinal Answer:"               # the fork appends thinking_end + this when the cap cut thinking
AUTO_ANSWER_ROOM = 100                           # tokens `auto` leaves for the answer (the fork: "Leave 100 tokens")

CONTROLLER_KEY = {"max_tokens_thinking": "max_thinking_tokens", "thinking_n_ignore": "num_waits",
                  "thinking_n_ignore_str": "wait_string", "min_tokens_thinking": "min_thinking_tokens",
                  "thinking_start": "think_prefix", "thinking_end": "answer_prefix", "until_thinking": "end_of_thinking"}
HARNESS_KEYS = ("until", "max_gen_toks", "do_sample", "temperature", "top_p")
NOT_SUPPORTED = {
    "rejection_sample": "use `make eval` with eval.methods=[rejection_sampling]",
    "until_thinking_2": "give one stop string in until_thinking",
    "temperature_thinking": "give one temperature for thinking and answer",
}


@dataclass
class GenerationPlan:
    think: bool                   # a thinking phase (any *thinking* key given, the fork's rule)
    bf: dict                      # budget-forcing settings (BudgetForcingConfig keys)
    max_new_tokens: int           # thinking + answer tokens (max_gen_toks)
    temperature: float = 0.0
    top_p: float = 1.0
    stops: list[str] = field(default_factory=list)  # the task's `until` beyond the controller's own stops
    auto_thinking: bool = False   # max_tokens_thinking=auto: the cap is set from the prompts (auto_thinking_cap)
    thinking_end: str = RELEASE_THINKING_END        # for the `auto` formula


def plan_generation(gen_kwargs: dict, default_max_gen_toks: int, eos: str | None = None) -> GenerationPlan:
    """Check one request group's gen_kwargs and map them onto the controller. Errors name the key, value and fix."""
    kw = dict(gen_kwargs)
    for key in kw:
        if key in NOT_SUPPORTED:
            raise ValueError(f"gen_kwargs {key}={kw[key]!r}: not supported by --model s1; {NOT_SUPPORTED[key]}")
        if key not in CONTROLLER_KEY and key not in HARNESS_KEYS:
            raise ValueError(f"gen_kwargs {key}={kw[key]!r}: unknown to --model s1; it reads "
                             f"{sorted(CONTROLLER_KEY) + list(HARNESS_KEYS)}")
    think = any("thinking" in k for k in kw)
    bf = dict(DEFAULTS)
    bf["wait_string"] = _text(kw, "thinking_n_ignore_str", "")          # the fork appends nothing by default
    bf["num_waits"] = _count(kw, "thinking_n_ignore", 0, low=0)
    bf["min_thinking_tokens"] = _count(kw, "min_tokens_thinking", 0, low=0)
    bf["think_prefix"] = _text(kw, "thinking_start", DEFAULTS["think_prefix"])
    bf["end_of_thinking"] = _text(kw, "until_thinking", DEFAULTS["end_of_thinking"])
    thinking_end = _text(kw, "thinking_end", RELEASE_THINKING_END)
    if "thinking_end" in kw:     # keep what the controller forces after "<|im_start|>answer"
        bf["answer_prefix"] = thinking_end + DEFAULTS["answer_prefix"].removeprefix(RELEASE_THINKING_END)
        bf["answer_prefix_after_end"] = thinking_end   # the fork forces thinking_end alone when the model stops
    cap = kw.get("max_tokens_thinking")
    auto = cap == "auto"
    bf["max_thinking_tokens"] = None if cap is None or auto else _count(kw, "max_tokens_thinking", None, low=1)
    if auto:                     # the fork's auto leaves the answer 100 tokens, not the controller's default reserve
        bf["answer_reserve"] = AUTO_ANSWER_ROOM
    max_new = _count(kw, "max_gen_toks", default_max_gen_toks, low=1)
    temperature = kw.get("temperature", 1.0 if kw.get("do_sample") else 0.0)   # as the fork's vLLM model reads them
    if not isinstance(temperature, int | float) or temperature < 0:
        raise ValueError(f"gen_kwargs temperature={temperature!r}: use 0 (greedy) or a positive number")
    top_p = kw.get("top_p", 1.0)
    if not isinstance(top_p, int | float) or not 0 < top_p <= 1:
        raise ValueError(f"gen_kwargs top_p={top_p!r}: use a probability mass in (0, 1], e.g. 0.95")
    until = kw.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    own = {bf["end_of_thinking"], END_OF_TEXT, eos}
    stops = [s for s in until if isinstance(s, str) and s and s not in own]
    return GenerationPlan(think, bf, max_new, float(temperature), float(top_p), stops, auto, thinking_end)


def auto_thinking_cap(plan: GenerationPlan, prompt_tokens: list[int], encode) -> int:
    """max_tokens_thinking=auto as the fork computes it for a batch: max_gen_toks minus the longest prompt, the
    thinking-start and "thinking_end + '\\nFinal Answer:'" tokens, and 100 tokens left for the answer."""
    cap = (plan.max_new_tokens - max(prompt_tokens) - len(encode(plan.bf["think_prefix"]))
           - len(encode(plan.thinking_end + RELEASE_AT_CAP)) - AUTO_ANSWER_ROOM)
    if cap < 1:
        raise ValueError(f"gen_kwargs max_tokens_thinking=auto leaves {cap} thinking tokens: max_gen_toks="
                         f"{plan.max_new_tokens} minus the longest prompt ({max(prompt_tokens)} tokens) and "
                         f"{AUTO_ANSWER_ROOM} for the answer; raise max_gen_toks or give a number")
    return cap


def _count(kw: dict, key: str, default, low: int):
    v = kw.get(key, default)
    if v is default:
        return v
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        extra = " or auto" if key == "max_tokens_thinking" else ""
        raise ValueError(f"gen_kwargs {key}={v!r}: use an integer >= {low}{extra}")
    return v


def _text(kw: dict, key: str, default: str) -> str:
    v = kw.get(key, default)
    if not isinstance(v, str):
        raise ValueError(f"gen_kwargs {key}={v!r}: use a string, e.g. {key}={default!r}")
    return v
