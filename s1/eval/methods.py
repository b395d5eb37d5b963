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

The post-s1 methods (issue 32, docs/methods.md) set budget-forcing settings through RunSpec.bf_overrides:
`nowait` (reflection words banned, eval.nowait.words; over eval.budgets caps), `alphaone` (scheduled Waits up
to alpha x the cap, eval.alphaone.*; finite caps), `deer` (confident early exit, one run per
eval.deer.thresholds), `cap_stop_sentence` / `cap_finish_window` (how thinking ends at each finite cap:
eval.cap_sentence, eval.cap_window). The parallel ones sample k answers per question at
eval.sampling_temperature and vote, one metrics row per k: `no_thinking` (thinking closed at once, majority;
eval.no_thinking.k), and the selectors `shortest_majority`, `short_m_at_k`, `confidence_filter`
(s1/eval/selectors.py; eval.selectors.*), which read ONE shared sample set (RunSpec.samples_of = "selectors":
the cache keys their samples by that name, so the three never generate twice) generated with confidences
(record_confidence). `all` = every registered method whose model needs no other checkpoint (all but
token_conditional[_bf] and step_conditional[_bf]).

Adding a method is one `Method` record in REGISTRY plus the function that makes its RunSpecs;
plan_runs, the sweep grouping (runner.sweep_groups), the metrics, the tables and the plots
(s1/eval/report.py, s1/eval/tables.py) read the record (docs/architecture.md, "Adding an eval method").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from s1.eval import selectors
from s1.infer.alphaone import SCHEDULES
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
    samples_of: str | None = None   # the name its samples are cached under (runner.key_of) when several runs share
                                    # one set (the parallel selectors: SELECTOR_SAMPLES); None = its own method name

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
    methods: tuple[str, ...] = ()  # eval.methods with `all` expanded (expand_methods)


# What a method's RunSpec.budget means (its Control range in report.run_budget follows from it):
# cap: thinking cap T (tokens); tokens / steps: a budget stated in the prompt; class: a class prompt's name;
# waits: a number of "Wait"s; string: an extrapolation string; votes: k samples voted; threshold: an exit
# threshold (DEER: given the total, like none); none: no budget.
BUDGET_KINDS = ("cap", "tokens", "steps", "class", "waits", "string", "votes", "threshold", "none")


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
    ks: str | None = None         # votes: the eval key listing k (e.g. "majority_k"); a metrics row per k
    select: Callable[[list, Any], Any] | None = None  # votes: (a question's k selectors.Samples, cfg.eval) ->
                                  # selectors.Selection; None: majority by metrics.majority_correct (maj@k)
    needs_confidence: bool = False  # its rows need every sample's confidence (log-probabilities); else the row says why


BF_CURVE = "bf"   # the paper's budget-forcing curve (Fig. 4a, Table 3): caps plus auto and Wait extrapolation


def finite_budgets(budgets) -> list[int]:
    return sorted(int(b) for b in budgets if b is not None)


ALL = "all"   # eval.methods=[all]: every method runnable on the configured models (all_methods())
OTHER_CHECKPOINTS = ("token_model", "step_model")   # models a method needs besides eval.model_path / the base


def all_methods() -> list[str]:
    """What `all` expands to: every registered method but those evaluating another checkpoint
    (token_conditional[_bf], step_conditional[_bf]: eval.token_conditional_model / step_conditional_model)."""
    return [name for name, m in REGISTRY.items() if m.model not in OTHER_CHECKPOINTS]


def expand_methods(names) -> list[str]:
    """eval.methods with `all` replaced by all_methods(), each name once, in order."""
    out: list[str] = []
    for name in names:
        for m in all_methods() if name == ALL else [str(name)]:
            if m not in out:
                out.append(m)
    return out


def plan_runs(cfg) -> list[RunSpec]:
    e = cfg.eval
    names = expand_methods(e.methods)
    unknown = [m for m in names if m not in REGISTRY]
    if unknown:
        raise ConfigError("eval.methods", list(e.methods), f"unknown {unknown}; use any of {[ALL, *REGISTRY]}")
    check_method_config(e)
    budgets = finite_budgets(e.budgets)
    per_step = int(e.tokens_per_step)
    lists = {"budgets": budgets, "caps": budgets,   # caps: methods that need a finite thinking cap
             "token_budgets": _own_budgets(e, "token_budgets", budgets),
             "step_budgets": _own_budgets(e, "step_budgets", sorted({max(1, b // per_step) for b in budgets})),
             "rejection_budgets": _own_budgets(e, "rejection_budgets", budgets)}
    for key in ("caps", "token_budgets", "step_budgets", "rejection_budgets"):
        users = [m for m in names if REGISTRY[m].budget_list == key]
        if users and not lists[key]:
            own = "eval.budgets=[...]" if key == "caps" else f"eval.{key}=[...] or eval.budgets=[500,1000,2000]"
            raise ConfigError("eval.budgets", list(e.budgets), f"methods {sorted(users)} need numeric budgets: {own}")
    p = Plan(e, str(e.model_path), str(cfg.model.name_or_path), float(e.temperature), int(e.num_samples),
             int(e.budget_forcing.num_waits), lists, tuple(names))
    runs = []
    if e.include_base_model:
        runs.append(RunSpec("base", p.base, "no_bf", think=False, temperature=p.greedy, samples=p.samples))
    for m in names:
        runs += REGISTRY[m].runs(p)
    return runs


def check_method_config(e) -> None:
    """The post-s1 methods' eval.* keys (eval.nowait, alphaone, deer, no_thinking, selectors, cap_sentence,
    cap_window): a bad value raises ConfigError naming the key, the value and the fix. Checked whatever the
    methods, so a typo is caught before it is used."""
    words = list(e.nowait.words)
    if not words or not all(isinstance(w, str) and w for w in words):
        raise ConfigError("eval.nowait.words", words, "give non-empty strings to ban, e.g. [Wait,Hmm,Alternatively]")
    a = e.alphaone
    if not 0 < float(a.alpha) <= 1:
        raise ConfigError("eval.alphaone.alpha", a.alpha, "give the slow-thinking share of the cap in (0, 1], e.g. 0.6")
    if not 0 <= float(a.p0) <= 1:
        raise ConfigError("eval.alphaone.p0", a.p0, "give a probability in [0, 1], e.g. 0.4")
    if a.schedule not in SCHEDULES:
        raise ConfigError("eval.alphaone.schedule", a.schedule, f"give one of {list(SCHEDULES)}")
    for key, boundary in (("eval.alphaone.step_boundary", a.step_boundary), ("eval.deer.step_boundary", e.deer.step_boundary)):
        if not isinstance(boundary, str) or not boundary:
            raise ConfigError(key, boundary, "give the non-empty text that ends a thinking step, e.g. a blank line \"\\n\\n\"")
    thresholds = list(e.deer.thresholds)
    if not thresholds or not all(isinstance(t, (int, float)) and 0 < t <= 1 for t in thresholds):
        raise ConfigError("eval.deer.thresholds", thresholds, "give mean token probabilities in (0, 1], e.g. [0.9,0.95]")
    if not isinstance(e.deer.trial_answer_tokens, int) or e.deer.trial_answer_tokens < 1:
        raise ConfigError("eval.deer.trial_answer_tokens", e.deer.trial_answer_tokens, "give a token count >= 1, e.g. 16")
    for key, ks in (("eval.no_thinking.k", e.no_thinking.k), ("eval.selectors.k", e.selectors.k)):
        if not ks or not all(isinstance(k, int) and k >= 1 for k in ks):
            raise ConfigError(key, list(ks), "give samples per question, integers >= 1, e.g. [1,2,4,8]")
    if not isinstance(e.selectors.m, int) or e.selectors.m < 1:
        raise ConfigError("eval.selectors.m", e.selectors.m, "give how many first finishers vote, an integer >= 1, e.g. 3")
    if not 0 < float(e.selectors.keep) <= 1:
        raise ConfigError("eval.selectors.keep", e.selectors.keep, "give the kept share in (0, 1], e.g. 0.5 (DeepConf: 0.1 or 0.9)")
    if not str(e.cap_sentence).strip():
        raise ConfigError("eval.cap_sentence", e.cap_sentence, "give the sentence written at the cap (Qwen3's: "
                          "'Considering the limited time, ...')")
    if not 0 < float(e.cap_window) <= 1:
        raise ConfigError("eval.cap_window", e.cap_window, "give the extra share of the cap in (0, 1], e.g. 0.1")


PLAIN = (("plain_generation", True),)   # no_bf: no thinking control, no forced answer


def _no_bf(p: Plan) -> list[RunSpec]:
    return [RunSpec("trained", p.trained, "no_bf", temperature=p.greedy, samples=p.samples, bf_overrides=PLAIN)]


def _auto(p: Plan) -> list[RunSpec]:
    return [RunSpec("trained", p.trained, "auto", "auto", num_waits=p.waits, temperature=p.greedy, samples=p.samples)]


def _bf(p: Plan) -> list[RunSpec]:
    caps = list(p.budget_lists["budgets"]) + ([None] if None in p.e.budgets and "auto" not in p.methods else [])
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


def _nowait(p: Plan) -> list[RunSpec]:   # no forced Wait: it would write a banned word into the thinking
    caps = list(p.budget_lists["budgets"]) + ([None] if None in p.e.budgets else [])
    words = tuple(str(w) for w in p.e.nowait.words)
    return [RunSpec("trained", p.trained, "nowait", b, max_thinking_tokens=b, temperature=p.greedy, samples=p.samples,
                    bf_overrides=(("ban_words", words),)) for b in caps]


def _alphaone(p: Plan) -> list[RunSpec]:   # its Waits come from the schedule, none forced at the end of thinking
    a = p.e.alphaone
    over = (("alpha", float(a.alpha)), ("alpha_p0", float(a.p0)), ("alpha_schedule", str(a.schedule)),
            ("step_boundary", str(a.step_boundary)))
    return [RunSpec("trained", p.trained, "alphaone", b, max_thinking_tokens=b, temperature=p.greedy,
                    samples=p.samples, bf_overrides=over) for b in p.budget_lists["caps"]]


def _deer(p: Plan) -> list[RunSpec]:   # no cap: thinking ends at a confident peek, or at the total
    n = int(p.e.deer.trial_answer_tokens)
    return [RunSpec("trained", p.trained, "deer", float(t), temperature=p.greedy, samples=p.samples,
                    bf_overrides=(("deer_threshold", float(t)), ("trial_answer_tokens", n),
                                  ("step_boundary", str(p.e.deer.step_boundary))))
            for t in sorted(float(t) for t in p.e.deer.thresholds)]


def _cap_ending(name: str, ending: str, key: str) -> Callable[[Plan], list[RunSpec]]:
    """Budget forcing at each finite cap (Waits as bf), thinking ended there by `ending`; eval.<key> is the
    budget-forcing key of the same name (cap_sentence, cap_window)."""
    return lambda p: [RunSpec("trained", p.trained, name, b, max_thinking_tokens=b, num_waits=p.waits,
                              temperature=p.greedy, samples=p.samples,
                              bf_overrides=(("cap_ending", ending), (key, p.e[key])))
                      for b in p.budget_lists["caps"]]


def _no_thinking(p: Plan) -> list[RunSpec]:   # k samples of the answer alone, voted (metrics: a row per k)
    return [RunSpec("trained", p.trained, "no_thinking", None, temperature=float(p.e.sampling_temperature),
                    samples=max(int(k) for k in p.e.no_thinking.k), bf_overrides=(("no_thinking", True),))]


SELECTOR_SAMPLES = "selectors"   # the cache name of the one sample set the parallel selectors share


def _selector(name: str) -> Callable[[Plan], list[RunSpec]]:
    """max(eval.selectors.k) samples per question with confidences, cached once under SELECTOR_SAMPLES: every
    selector's run has the same generation settings, so each reads what the first generated."""
    return lambda p: [RunSpec("trained", p.trained, name, None, temperature=float(p.e.sampling_temperature),
                              samples=max(int(k) for k in p.e.selectors.k), samples_of=SELECTOR_SAMPLES,
                              bf_overrides=(("record_confidence", True),))]


def _parallel(name: str, ks: str, select, label=lambda b: f"k={b}", needs_confidence: bool = False) -> Method:
    """A parallel method: k samples per question at eval.sampling_temperature, one row per k of eval.<ks>."""
    runs = _no_thinking if name == "no_thinking" else _selector(name)
    return Method(name, "trained", (ks, "sampling_temperature"), False, "votes", runs, curve=name, shares_sweep=False,
                  label=label, ks=ks, select=select, needs_confidence=needs_confidence)


def _cap_label(b) -> str:
    return "no cap" if b is None else f"T={b}"


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
           _majority, curve="majority", shares_sweep=False, label=lambda b: f"k={b}", ks="majority_k"),
    # post-s1 methods (issue 32, docs/methods.md): sequential ones form curves over their budgets
    Method("nowait", "trained", ("budgets", "nowait.words"), True, "cap", _nowait, budget_list="budgets",
           curve="nowait", shares_sweep=False, label=_cap_label),
    Method("alphaone", "trained", ("budgets", "alphaone"), True, "cap", _alphaone, budget_list="caps",
           curve="alphaone", shares_sweep=False, label=_cap_label),
    Method("deer", "trained", ("deer",), True, "threshold", _deer, curve="deer", shares_sweep=False,
           label=lambda b: f"p≥{b:g}"),
    Method("cap_stop_sentence", "trained", ("budgets", "cap_sentence", "budget_forcing"), True, "cap",
           _cap_ending("cap_stop_sentence", "stop_sentence", "cap_sentence"), budget_list="caps",
           curve="cap_stop_sentence", shares_sweep=False, label=_cap_label),
    Method("cap_finish_window", "trained", ("budgets", "cap_window", "budget_forcing"), True, "cap",
           _cap_ending("cap_finish_window", "finish_window", "cap_window"), budget_list="caps",
           curve="cap_finish_window", shares_sweep=False, label=_cap_label),
    _parallel("no_thinking", "no_thinking.k", lambda q, e: selectors.majority(q)),
    _parallel("shortest_majority", "selectors.k", lambda q, e: selectors.shortest_majority(q)),
    _parallel("short_m_at_k", "selectors.k", lambda q, e: selectors.short_m_at_k(q, min(int(e.selectors.m), len(q)))),
    _parallel("confidence_filter", "selectors.k",
              lambda q, e: selectors.confidence_filter(q, float(e.selectors.keep)), needs_confidence=True),
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
