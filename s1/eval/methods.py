"""What to generate: the base model, the trained model with and without budget forcing, and the paper's baselines.

Each method becomes one or more RunSpecs (one per budget). `budget` is the
method's own knob: thinking-token cap (bf, *_bf, rejection_sampling), stated
budget (token/step-conditional), number of "Wait"s (wait), extrapolation
string (extrapolation_strings, paper Table 4), most "Wait"s (adaptive), class name (class_conditional),
k (majority) or None.

Token- and step-conditional control were separately fine-tuned models in the
paper (trained on s1K with budget / steps-left markers: s1/train/transforms.py,
`train.transform`); `token_conditional*` / `step_conditional*` evaluate such a
model (eval.token_conditional_model / eval.step_conditional_model). The
`*_prompt*` methods state the same budget in the prompt of the s1 model, which
was never trained to follow it (prompt-only variants, not the paper's method).

`adaptive` (beyond the paper) is Wait extrapolation that stops forcing once the
answer is stable: before each "Wait" it peeks at the answer the model would
give, and stops when two consecutive peeks agree (at most
eval.adaptive_max_waits Waits; peek tokens count in its thinking-token cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from s1.infer.prompts import CLASS_PROMPTS, CONDITIONAL_END, STEP_OVERRUN, STEP_PROMPT, TOKEN_PROMPT
from s1.runtime import ConfigError

METHODS = ("no_bf", "bf", "wait", "extrapolation_strings", "adaptive", "token_conditional", "token_conditional_bf",
           "step_conditional", "step_conditional_bf", "token_conditional_prompt", "token_conditional_prompt_bf",
           "step_conditional_prompt", "step_conditional_prompt_bf", "class_conditional", "rejection_sampling",
           "majority")


@dataclass(frozen=True)
class RunSpec:
    model: str                    # label in tables: "base" | "trained" | "token_model" | "step_model"
    model_path: str
    method: str
    budget: Any = None            # the method's knob (see module doc); part of the cache key
    think: bool = True            # s1 prompt (thinking segment) vs plain chat
    instruction: str = ""         # control prompt added to the question
    max_thinking_tokens: int | None = None
    num_waits: int = 0
    temperature: float = 0.0
    samples: int = 1
    accept_max_thinking: int | None = None  # rejection sampling: keep a sample only if it thought at most this
    bf_overrides: tuple = field(default_factory=tuple)  # (key, value) pairs over eval.budget_forcing (stops, wait string)

    def bf(self, base: dict) -> dict:
        out = dict(base)
        out.update(max_thinking_tokens=self.max_thinking_tokens, num_waits=self.num_waits)
        out.update(dict(self.bf_overrides))
        return out


def finite_budgets(budgets) -> list[int]:
    return sorted(int(b) for b in budgets if b is not None)


def plan_runs(cfg) -> list[RunSpec]:
    e = cfg.eval
    unknown = [m for m in e.methods if m not in METHODS]
    if unknown:
        raise ConfigError("eval.methods", list(e.methods), f"unknown {unknown}; use any of {list(METHODS)}")
    budgets = finite_budgets(e.budgets)
    needs_budgets = {m for m in e.methods if "conditional" in m and m != "class_conditional"}
    needs_budgets |= {"rejection_sampling"} & set(e.methods)
    if needs_budgets and not budgets:
        raise ConfigError("eval.budgets", list(e.budgets), f"methods {sorted(needs_budgets)} need numeric budgets, "
                          "e.g. eval.budgets=[500,1000,2000]")
    trained = str(e.model_path)
    base = str(cfg.model.name_or_path)
    greedy, n = float(e.temperature), int(e.num_samples)
    waits = int(e.budget_forcing.num_waits)
    per_step = int(e.tokens_per_step)
    runs = []
    if e.include_base_model:
        runs.append(RunSpec("base", base, "no_bf", think=False, temperature=greedy, samples=n))
    for m in e.methods:
        if m == "no_bf":
            runs.append(RunSpec("trained", trained, m, temperature=greedy, samples=n))
        elif m == "bf":
            caps = list(budgets) + ([None] if None in e.budgets and "no_bf" not in e.methods else [])
            runs += [RunSpec("trained", trained, m, b, max_thinking_tokens=b, num_waits=waits, temperature=greedy,
                             samples=n) for b in caps]
        elif m == "wait":
            runs += [RunSpec("trained", trained, m, int(w), num_waits=int(w), temperature=greedy, samples=n)
                     for w in e.wait_counts]
        elif m == "extrapolation_strings":   # paper Table 4: each string, 2 suppressed ends of thinking
            runs += [RunSpec("trained", trained, m, s or "none", num_waits=int(e.extrapolation_waits),
                             temperature=greedy, samples=n, bf_overrides=(("wait_string", s),))
                     for s in e.extrapolation_strings]
        elif m == "adaptive":
            w = int(e.adaptive_max_waits)
            runs.append(RunSpec("trained", trained, m, w, num_waits=w, temperature=greedy, samples=n,
                                bf_overrides=(("adaptive_waits", True),)))
        elif m.endswith("_prompt") or m.endswith("_prompt_bf"):
            template = TOKEN_PROMPT if m.startswith("token") else STEP_PROMPT
            runs += [RunSpec("trained", trained, m, b,
                             instruction=template.format(n=b if m.startswith("token") else max(1, b // per_step)),
                             max_thinking_tokens=b if m.endswith("_bf") else None, temperature=greedy, samples=n)
                     for b in budgets]
        elif m.startswith("token_conditional"):
            path = _conditional_model(e, "token_conditional_model", "token_conditional")
            runs += [RunSpec("token_model", path, m, b, instruction=TOKEN_PROMPT.format(n=b),
                             max_thinking_tokens=b if m.endswith("_bf") else None, temperature=greedy, samples=n,
                             bf_overrides=(("end_of_thinking", CONDITIONAL_END),)) for b in budgets]
        elif m.startswith("step_conditional"):
            path = _conditional_model(e, "step_conditional_model", "step_conditional")
            bf = m.endswith("_bf")
            runs += [RunSpec("step_model", path, m, b, instruction=STEP_PROMPT.format(n=max(1, b // per_step)),
                             max_thinking_tokens=b if bf else None, temperature=greedy, samples=n,
                             bf_overrides=(("end_of_thinking", STEP_OVERRUN if bf else CONDITIONAL_END),))
                     for b in budgets]
        elif m == "class_conditional":
            runs += [RunSpec("trained", trained, m, c, instruction=text, temperature=greedy, samples=n)
                     for c, text in CLASS_PROMPTS.items()]
        elif m == "rejection_sampling":
            runs += [RunSpec("trained", trained, m, b, temperature=float(e.sampling_temperature), samples=n,
                             accept_max_thinking=b) for b in budgets]
        elif m == "majority":   # parallel scaling (paper Fig. 4): majority vote over samples of the base model
            on_base = e.majority_model == "base"
            runs.append(RunSpec("base" if on_base else "trained", base if on_base else trained, m, None,
                                think=not on_base, temperature=float(e.sampling_temperature),
                                samples=max(int(k) for k in e.majority_k)))
    return runs


def _conditional_model(e, key: str, transform: str) -> str:
    path = e.get(key)
    if not path:
        raise ConfigError(f"eval.{key}", path, f"method {transform}[_bf] evaluates a model fine-tuned on the "
                          f"{transform} training set: `make train ARGS=\"train.transform={transform} ...\"`, then "
                          f"eval.{key}=<its final/ folder>; or use {transform}_prompt[_bf] (prompt only, s1 model)")
    return str(path)


def method_label(spec_or_row: dict | RunSpec) -> str:
    """How a run is named in tables: 'trained · bf' etc."""
    d = spec_or_row if isinstance(spec_or_row, dict) else spec_or_row.__dict__
    return f"{d['model']} · {d['method']}"
