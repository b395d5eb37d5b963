"""What to generate, one registry record per method (REGISTRY): the base model, the trained model with and without budget forcing, and the paper's baselines.

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

Adding a method is one `Method` record in REGISTRY plus the function that makes its RunSpecs;
plan_runs, the sweep grouping (runner.sweep_groups), the metrics, the tables and the plots
(s1/eval/report.py, s1/eval/tables.py) read the record (docs/architecture.md, "Adding an eval method").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from s1.infer.prompts import CLASS_PROMPTS, CONDITIONAL_END, STEP_OVERRUN, STEP_PROMPT, TOKEN_PROMPT
from s1.runtime import ConfigError


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


@dataclass(frozen=True)
class Plan:
    """What every method's function reads, worked out once from the config (budget lists checked)."""
    e: Any                        # cfg.eval
    trained: str                  # eval.model_path
    base: str                     # model.name_or_path
    greedy: float                 # eval.temperature
    samples: int                  # eval.num_samples
    waits: int                    # eval.budget_forcing.num_waits
    budget_lists: dict            # budget list key ("budgets", "token_budgets", ...) -> sorted positive ints


# What a method's RunSpec.budget means (its Control range in report.run_budget follows from it):
# cap: thinking cap T (tokens); tokens / steps: a budget stated in the prompt; class: a class prompt's name;
# waits: a number of "Wait"s; string: an extrapolation string; votes: k samples voted; none: no budget.
BUDGET_KINDS = ("cap", "tokens", "steps", "class", "waits", "string", "votes", "none")


@dataclass(frozen=True)
class Method:
    name: str
    model: str                    # the model it runs: base | trained | token_model | step_model | majority_model
    knobs: tuple[str, ...]        # the eval.* keys it reads besides the shared ones (temperature, num_samples)
    budget_forcing: bool          # budget forcing applies (its min_thinking_tokens is the run's a_min)
    budget: str                   # what its RunSpec.budget means: one of BUDGET_KINDS
    runs: Callable[[Plan], list[RunSpec]]   # its RunSpecs, one per budget
    budget_list: str | None = None  # the budget list it runs over (Plan.budget_lists key); empty is an error
    curve: str | None = None      # the scaling curve its rows join (Table 3, scaling.png); None: single points
    tables: tuple[int, ...] = ()  # the paper tables its rows appear in as rows (1, 4); curves are Table 3's
    paper_row: str | None = None  # the paper's Table 3 row (AIME24) for its curve; None: the paper has none
    shares_sweep: bool = True     # its greedy runs may share one sweep with others of the same prompt
    rejects: bool = False         # keeps a sample only when it fits (no-fit questions listed under Table 3)
    label: Callable[[Any], str] = str          # its budget in the results table
    setting: Callable[[Any], str] | None = None  # Table 1's setting name after the model (needs 1 in tables)


BF_CURVE = "bf"   # the paper's budget-forcing curve (Fig. 4a, Table 3): caps plus auto and Wait extrapolation


def finite_budgets(budgets) -> list[int]:
    return sorted(int(b) for b in budgets if b is not None)


def plan_runs(cfg) -> list[RunSpec]:
    e = cfg.eval
    unknown = [m for m in e.methods if m not in REGISTRY]
    if unknown:
        raise ConfigError("eval.methods", list(e.methods), f"unknown {unknown}; use any of {list(REGISTRY)}")
    budgets = finite_budgets(e.budgets)
    per_step = int(e.tokens_per_step)
    lists = {"budgets": budgets,
             "token_budgets": _own_budgets(e, "token_budgets", budgets),
             "step_budgets": _own_budgets(e, "step_budgets", sorted({max(1, b // per_step) for b in budgets})),
             "rejection_budgets": _own_budgets(e, "rejection_budgets", budgets)}
    for key in ("token_budgets", "step_budgets", "rejection_budgets"):
        users = [m for m in e.methods if REGISTRY[m].budget_list == key]
        if users and not lists[key]:
            raise ConfigError("eval.budgets", list(e.budgets), f"methods {sorted(users)} need numeric budgets: "
                              f"eval.{key}=[...] or eval.budgets=[500,1000,2000]")
    p = Plan(e, str(e.model_path), str(cfg.model.name_or_path), float(e.temperature), int(e.num_samples),
             int(e.budget_forcing.num_waits), lists)
    runs = []
    if e.include_base_model:
        runs.append(RunSpec("base", p.base, "no_bf", think=False, temperature=p.greedy, samples=p.samples))
    for m in e.methods:
        runs += REGISTRY[m].runs(p)
    return runs


PLAIN = (("plain_generation", True),)   # no_bf: no thinking control, no forced answer


def _no_bf(p: Plan) -> list[RunSpec]:
    return [RunSpec("trained", p.trained, "no_bf", temperature=p.greedy, samples=p.samples, bf_overrides=PLAIN)]


def _auto(p: Plan) -> list[RunSpec]:
    return [RunSpec("trained", p.trained, "auto", "auto", num_waits=p.waits, temperature=p.greedy, samples=p.samples)]


def _bf(p: Plan) -> list[RunSpec]:
    caps = list(p.budget_lists["budgets"]) + ([None] if None in p.e.budgets and "auto" not in p.e.methods else [])
    return [RunSpec("trained", p.trained, "bf", b, max_thinking_tokens=b, num_waits=p.waits, temperature=p.greedy,
                    samples=p.samples) for b in caps]


def _wait(p: Plan) -> list[RunSpec]:
    return [RunSpec("trained", p.trained, "wait", int(w), num_waits=int(w), temperature=p.greedy, samples=p.samples)
            for w in p.e.wait_counts]


def _extrapolation_strings(p: Plan) -> list[RunSpec]:   # paper Table 4: each string, 2 suppressed ends of thinking
    return [RunSpec("trained", p.trained, "extrapolation_strings", s or "none", num_waits=int(p.e.extrapolation_waits),
                    temperature=p.greedy, samples=p.samples, bf_overrides=(("wait_string", s),))
            for s in p.e.extrapolation_strings]


def _adaptive(p: Plan) -> list[RunSpec]:
    w = int(p.e.adaptive_max_waits)
    return [RunSpec("trained", p.trained, "adaptive", w, num_waits=w, temperature=p.greedy, samples=p.samples,
                    bf_overrides=(("adaptive_waits", True),))]


def _token_prompt(name: str) -> Callable[[Plan], list[RunSpec]]:
    """Budget = tokens stated to the s1 model; _bf caps thinking there too."""
    return lambda p: [RunSpec("trained", p.trained, name, b, instruction=TOKEN_PROMPT.format(n=b),
                              max_thinking_tokens=b if name.endswith("_bf") else None, temperature=p.greedy,
                              samples=p.samples) for b in p.budget_lists["token_budgets"]]


def _step_prompt(name: str) -> Callable[[Plan], list[RunSpec]]:
    """Budget = steps stated to the s1 model; _bf caps thinking at steps x tokens_per_step."""
    per_step = lambda p: int(p.e.tokens_per_step)
    return lambda p: [RunSpec("trained", p.trained, name, b, instruction=STEP_PROMPT.format(n=b),
                              max_thinking_tokens=b * per_step(p) if name.endswith("_bf") else None,
                              temperature=p.greedy, samples=p.samples) for b in p.budget_lists["step_budgets"]]


def _token_model(name: str) -> Callable[[Plan], list[RunSpec]]:
    """The release: the token-conditional model; _bf caps thinking at the stated tokens."""
    def runs(p: Plan) -> list[RunSpec]:
        path = _conditional_model(p.e, "token_conditional_model", "token_conditional")
        return [RunSpec("token_model", path, name, b, instruction=TOKEN_PROMPT.format(n=b),
                        max_thinking_tokens=b if name.endswith("_bf") else None, temperature=p.greedy,
                        samples=p.samples, bf_overrides=(("end_of_thinking", CONDITIONAL_END),))
                for b in p.budget_lists["token_budgets"]]
    return runs


def _step_model(name: str) -> Callable[[Plan], list[RunSpec]]:
    """The release: the step-conditional model; _bf stops thinking at "0 steps left", no cap."""
    def runs(p: Plan) -> list[RunSpec]:
        path = _conditional_model(p.e, "step_conditional_model", "step_conditional")
        end = STEP_OVERRUN if name.endswith("_bf") else CONDITIONAL_END
        return [RunSpec("step_model", path, name, b, instruction=STEP_PROMPT.format(n=b), temperature=p.greedy,
                        samples=p.samples, bf_overrides=(("end_of_thinking", end),))
                for b in p.budget_lists["step_budgets"]]
    return runs


def _class_conditional(p: Plan) -> list[RunSpec]:
    return [RunSpec("trained", p.trained, "class_conditional", c, instruction=text, temperature=p.greedy,
                    samples=p.samples) for c, text in CLASS_PROMPTS.items()]


def _rejection_sampling(p: Plan) -> list[RunSpec]:   # the release: thinking capped at T + 1, kept when it used <= T
    return [RunSpec("trained", p.trained, "rejection_sampling", b, max_thinking_tokens=b + 1,
                    temperature=float(p.e.sampling_temperature), samples=p.samples, accept_max_thinking=b)
            for b in p.budget_lists["rejection_budgets"]]


def _majority(p: Plan) -> list[RunSpec]:   # parallel scaling (paper Fig. 4): majority vote over samples
    on_base = p.e.majority_model == "base"
    return [RunSpec("base" if on_base else "trained", p.base if on_base else p.trained, "majority", None,
                    think=not on_base, temperature=float(p.e.sampling_temperature),
                    samples=max(int(k) for k in p.e.majority_k))]


def _auto_setting(b) -> str:
    return "with budget forcing (auto: no cap)"


def _conditional(name: str, kind: str, runs, model: str, paper_row: str | None) -> Method:
    """The token-/step-conditional family: each a curve over its stated budgets; _bf adds budget forcing."""
    return Method(name, model, (f"{kind}_budgets", "tokens_per_step") + ((f"{kind}_conditional_model",)
                  if model != "trained" else ()), budget_forcing=name.endswith("_bf"), budget=kind + "s",
                  runs=runs(name), budget_list=f"{kind}_budgets", curve=name, paper_row=paper_row)


_METHODS = [
    Method("no_bf", "trained", ("max_new_tokens",), False, "none", _no_bf, tables=(1,),
           label=lambda b: "plain (no forcing)", setting=lambda b: "without budget forcing"),
    Method("auto", "trained", ("max_new_tokens", "budget_forcing"), True, "none", _auto, curve=BF_CURVE, tables=(1, 4),
           label=lambda b: "auto (no cap)", setting=_auto_setting),
    Method("bf", "trained", ("budgets", "budget_forcing"), True, "cap", _bf, budget_list="budgets", curve=BF_CURVE,
           tables=(1,), paper_row="budget forcing", label=lambda b: "auto (no cap)" if b is None else str(b),
           setting=lambda b: _auto_setting(b) if b is None else f"with budget forcing (T={b})"),
    Method("wait", "trained", ("wait_counts", "budget_forcing"), True, "waits", _wait, curve=BF_CURVE, tables=(1,),
           label=lambda b: f"{b}× Wait", setting=lambda b: f"with budget forcing ({b}× Wait)"),
    Method("extrapolation_strings", "trained", ("extrapolation_strings", "extrapolation_waits"), True, "string",
           _extrapolation_strings, tables=(4,)),
    Method("adaptive", "trained", ("adaptive_max_waits",), True, "waits", _adaptive, tables=(1,), shares_sweep=False,
           label=lambda b: f"≤{b}× Wait, adaptive", setting=lambda b: f"with adaptive Wait (≤{b}×, peeks counted)"),
    _conditional("token_conditional", "token", _token_model, "token_model", "token-conditional control"),
    _conditional("token_conditional_bf", "token", _token_model, "token_model", "token-conditional + budget forcing"),
    _conditional("step_conditional", "step", _step_model, "step_model", "step-conditional control"),
    _conditional("step_conditional_bf", "step", _step_model, "step_model", "step-conditional + budget forcing"),
    _conditional("token_conditional_prompt", "token", _token_prompt, "trained", None),
    _conditional("token_conditional_prompt_bf", "token", _token_prompt, "trained", None),
    _conditional("step_conditional_prompt", "step", _step_prompt, "trained", None),
    _conditional("step_conditional_prompt_bf", "step", _step_prompt, "trained", None),
    Method("class_conditional", "trained", ("class_ranges",), False, "class", _class_conditional,
           curve="class_conditional", paper_row="class-conditional control"),
    Method("rejection_sampling", "trained", ("rejection_budgets", "sampling_temperature", "rejection_max_tries"), False, "cap",
           _rejection_sampling, budget_list="rejection_budgets", curve="rejection_sampling",
           paper_row="rejection sampling", shares_sweep=False, rejects=True),
    Method("majority", "majority_model", ("majority_k", "majority_model", "sampling_temperature"), False, "votes",
           _majority, curve="majority", shares_sweep=False, label=lambda b: f"k={b}"),
]
REGISTRY: dict[str, Method] = {m.name: m for m in _METHODS}   # eval.methods names -> their record


def method_of(name: str) -> Method:
    """A run's or row's method record (every RunSpec.method is a REGISTRY key: plan_runs checks eval.methods)."""
    return REGISTRY[name]


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
