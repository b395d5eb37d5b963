"""What to generate: the base model, the trained model with and without budget forcing, and the paper's baselines.

Each method becomes one or more RunSpecs (one per budget). `budget` is the
method's own knob: thinking-token cap (bf, *_bf, rejection_sampling), stated
budget (token/step-conditional), number of "Wait"s (wait), class name
(class_conditional) or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s1.runtime import ConfigError

METHODS = ("no_bf", "bf", "wait", "token_conditional", "token_conditional_bf", "step_conditional",
           "step_conditional_bf", "class_conditional", "rejection_sampling", "majority")
CLASS_PROMPTS = {   # class-conditional control (paper Table 3): a short or long thinking request
    "short": "Think briefly before you answer.",
    "long": "Think for a long time and check your work before you answer.",
}


@dataclass(frozen=True)
class RunSpec:
    model: str                    # label in tables: "base" | "trained"
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


def finite_budgets(budgets) -> list[int]:
    return sorted(int(b) for b in budgets if b is not None)


def plan_runs(cfg) -> list[RunSpec]:
    e = cfg.eval
    unknown = [m for m in e.methods if m not in METHODS]
    if unknown:
        raise ConfigError("eval.methods", list(e.methods), f"unknown {unknown}; use any of {list(METHODS)}")
    budgets = finite_budgets(e.budgets)
    needs_budgets = {"token_conditional", "token_conditional_bf", "step_conditional", "step_conditional_bf",
                     "rejection_sampling"} & set(e.methods)
    if needs_budgets and not budgets:
        raise ConfigError("eval.budgets", list(e.budgets), f"methods {sorted(needs_budgets)} need numeric budgets, "
                          "e.g. eval.budgets=[500,1000,2000]")
    trained = str(e.model_path)
    greedy, n = float(e.temperature), int(e.num_samples)
    waits = int(e.budget_forcing.num_waits)
    runs = []
    if e.include_base_model:
        runs.append(RunSpec("base", str(cfg.model.name_or_path), "no_bf", think=False, temperature=greedy, samples=n))
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
        elif m.startswith("token_conditional"):
            runs += [RunSpec("trained", trained, m, b, instruction=f"Think for up to {b} tokens.",
                             max_thinking_tokens=b if m.endswith("_bf") else None, temperature=greedy, samples=n)
                     for b in budgets]
        elif m.startswith("step_conditional"):
            runs += [RunSpec("trained", trained, m, b,
                             instruction=f"Think for up to {max(1, b // int(e.tokens_per_step))} steps.",
                             max_thinking_tokens=b if m.endswith("_bf") else None, temperature=greedy, samples=n)
                     for b in budgets]
        elif m == "class_conditional":
            runs += [RunSpec("trained", trained, m, c, instruction=text, temperature=greedy, samples=n)
                     for c, text in CLASS_PROMPTS.items()]
        elif m == "rejection_sampling":
            runs += [RunSpec("trained", trained, m, b, temperature=float(e.sampling_temperature), samples=n,
                             accept_max_thinking=b) for b in budgets]
        elif m == "majority":
            runs.append(RunSpec("trained", trained, m, None, temperature=float(e.sampling_temperature),
                                samples=max(int(k) for k in e.majority_k)))
    return runs


def method_label(spec_or_row: dict | RunSpec) -> str:
    """How a run is named in tables: 'trained · bf' etc."""
    d = spec_or_row if isinstance(spec_or_row, dict) else spec_or_row.__dict__
    return f"{d['model']} · {d['method']}"
