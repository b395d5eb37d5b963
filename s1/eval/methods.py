"""What to generate: the base model, the trained model with and without budget forcing, and the paper's baselines.

Each method becomes one or more RunSpecs (one per budget). `no_bf` is a plain
generation to the total (eval.max_new_tokens), no thinking control and no
forced answer: the release's "without budget forcing" row (max_gen_toks only).
`auto` is the release's max_tokens_thinking=auto: thinking capped only by the
total less the answer's reserve, then the answer forced.
`budget` is the method's own knob: thinking-token cap (bf, token_conditional*_bf,
rejection_sampling: eval.rejection_budgets), stated budget (token-conditional:
eval.token_budgets tokens; step-conditional: eval.step_budgets steps), number of "Wait"s (wait), extrapolation
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

METHODS = ("no_bf", "auto", "bf", "wait", "extrapolation_strings", "adaptive", "token_conditional", "token_conditional_bf",
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
    per_step = int(e.tokens_per_step)
    token_budgets = _own_budgets(e, "token_budgets", budgets)
    step_budgets = _own_budgets(e, "step_budgets", sorted({max(1, b // per_step) for b in budgets}))
    rejection_budgets = _own_budgets(e, "rejection_budgets", budgets)
    for key, own, users in (("token_budgets", token_budgets, [m for m in e.methods if m.startswith("token_cond")]),
                            ("step_budgets", step_budgets, [m for m in e.methods if m.startswith("step_cond")]),
                            ("rejection_budgets", rejection_budgets, [m for m in e.methods if m == "rejection_sampling"])):
        if users and not own:
            raise ConfigError("eval.budgets", list(e.budgets), f"methods {sorted(users)} need numeric budgets: "
                              f"eval.{key}=[...] or eval.budgets=[500,1000,2000]")
    trained = str(e.model_path)
    base = str(cfg.model.name_or_path)
    greedy, n = float(e.temperature), int(e.num_samples)
    waits = int(e.budget_forcing.num_waits)
    runs = []
    if e.include_base_model:
        runs.append(RunSpec("base", base, "no_bf", think=False, temperature=greedy, samples=n))
    for m in e.methods:
        if m == "no_bf":
            runs.append(RunSpec("trained", trained, m, temperature=greedy, samples=n, bf_overrides=PLAIN))
        elif m == "auto":
            runs.append(RunSpec("trained", trained, m, "auto", num_waits=waits, temperature=greedy, samples=n))
        elif m == "bf":
            caps = list(budgets) + ([None] if None in e.budgets and "auto" not in e.methods else [])
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
        elif m.startswith("token_conditional_prompt"):    # budget = tokens stated; _bf caps thinking there too
            runs += [RunSpec("trained", trained, m, b, instruction=TOKEN_PROMPT.format(n=b),
                             max_thinking_tokens=b if m.endswith("_bf") else None, temperature=greedy, samples=n)
                     for b in token_budgets]
        elif m.startswith("step_conditional_prompt"):     # budget = steps stated; _bf caps at steps x tokens_per_step
            runs += [RunSpec("trained", trained, m, b, instruction=STEP_PROMPT.format(n=b),
                             max_thinking_tokens=b * per_step if m.endswith("_bf") else None, temperature=greedy,
                             samples=n) for b in step_budgets]
        elif m.startswith("token_conditional"):           # the release: _bf caps thinking at the stated tokens
            path = _conditional_model(e, "token_conditional_model", "token_conditional")
            runs += [RunSpec("token_model", path, m, b, instruction=TOKEN_PROMPT.format(n=b),
                             max_thinking_tokens=b if m.endswith("_bf") else None, temperature=greedy, samples=n,
                             bf_overrides=(("end_of_thinking", CONDITIONAL_END),)) for b in token_budgets]
        elif m.startswith("step_conditional"):            # the release: _bf stops thinking at "0 steps left", no cap
            path = _conditional_model(e, "step_conditional_model", "step_conditional")
            bf = m.endswith("_bf")
            runs += [RunSpec("step_model", path, m, b, instruction=STEP_PROMPT.format(n=b), temperature=greedy,
                             samples=n, bf_overrides=(("end_of_thinking", STEP_OVERRUN if bf else CONDITIONAL_END),))
                     for b in step_budgets]
        elif m == "class_conditional":
            runs += [RunSpec("trained", trained, m, c, instruction=text, temperature=greedy, samples=n)
                     for c, text in CLASS_PROMPTS.items()]
        elif m == "rejection_sampling":    # the release: thinking capped at T + 1, kept when it used at most T
            runs += [RunSpec("trained", trained, m, b, max_thinking_tokens=b + 1,
                             temperature=float(e.sampling_temperature), samples=n, accept_max_thinking=b)
                     for b in rejection_budgets]
        elif m == "majority":   # parallel scaling (paper Fig. 4): majority vote over samples of the base model
            on_base = e.majority_model == "base"
            runs.append(RunSpec("base" if on_base else "trained", base if on_base else trained, m, None,
                                think=not on_base, temperature=float(e.sampling_temperature),
                                samples=max(int(k) for k in e.majority_k)))
    return runs


PLAIN = (("plain_generation", True),)   # no_bf: no thinking control, no forced answer


def _own_budgets(e, key: str, fallback: list[int]) -> list[int]:
    """A method's own budget list (eval.<key>), else the fallback derived from eval.budgets; positive integers."""
    own = list(e.get(key) or [])
    for b in own:
        if not isinstance(b, int) or b <= 0:
            raise ConfigError(f"eval.{key}", own, "use positive integers, e.g. [2048,4096]")
    return sorted(own) if own else list(fallback)


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
