"""Grading: pull the final answer out of a response and decide if it equals the reference.

Extraction follows the release's task code: cut the response to its answer
section (after the last "<|im_start|>answer"; the whole text when there is
none), then the last \\boxed{...} (or \\fbox{...}), else the text after the
last "Answer:" in any case (docs/grading.md). Equivalence is math-verify's (LaTeX / sympy),
plus AIME's integer rule ("016" equals "16") and letter matching for multiple
choice. math-verify times out with signal.alarm, which only works in a main
thread, so every check runs in a worker process of a small pool that lives
for one call: a worker that overruns its time limit is killed and the answer
counts as wrong, and nothing is left running when the call returns. Inside a
daemonic process (which may not start processes) the checks run in-process.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from s1.data.benchmarks import choice_letter
from s1.format import ANSWER_MARKER, END, answer_section

log = logging.getLogger("s1.grading")

MAX_ANSWER_CHARS = 1000         # longer "answers" are junk; math-verify on them only burns time
MAX_RESPONSE_CHARS = 2_000_000  # responses are scanned at most this far from their end
BOX_COMMANDS = ("\\boxed", "\\fbox")
_ANSWER_LABEL = re.compile(r"answer\s*:", re.IGNORECASE)     # "Answer:", "Final Answer:", "answer :"
_ANSWER_IS = re.compile(r"(?i:answer is)\s*:?\s*\**\s*\(?([A-D])\b")   # "The answer is (B)", "the answer is **B**"
_LETTER = re.compile(r"^\(?\s*([A-J])\s*\)?\.?$")


def extract_answer(text: str, *, answer_marker: str = ANSWER_MARKER) -> str | None:
    """The final answer of a response: in its answer section (the text after the last answer marker, or the
    whole text when there is none), the last \\boxed{...}/\\fbox{...} content (braces balanced), else the text
    after the last "Answer:" / "Final Answer:" in any case (its first paragraph). A boxed guess inside the
    thinking never decides."""
    if not text:
        return None
    section = answer_section(text[-MAX_RESPONSE_CHARS:], answer_marker)
    boxed = _last_boxed(section)
    if boxed is not None:
        return boxed
    labels = list(_ANSWER_LABEL.finditer(section))
    if labels:
        return _labelled_answer(section, labels[-1])
    # the release's rules found nothing: the answer lines real models write (docs/grading.md, "Answer lines")
    heading = list(_ANSWER_HEADING.finditer(section))
    if heading:                                   # "### Final Answer" (no colon): the next paragraph
        return _paragraph_answer(section[heading[-1].end():], heading=True)
    said = list(_THE_ANSWER_IS.finditer(section))
    if said:                                      # "The answer is: X" (MetaMath), a closing "the answer is X."
        return _clean(said[-1].group(1))
    return None


def _labelled_answer(section: str, label: re.Match) -> str | None:
    """The text after an "Answer:" label: its paragraph; a label alone on its line (a "### Answer:" heading,
    "**Answer:**", "\\[Answer:") reads the next paragraph, and a sentence there gives its last math."""
    rest = section[label.end():]
    line = rest.split("\n", 1)[0]
    alone = re.fullmatch(r"[\s*:}#]*", line) is not None and "\n" in rest
    return _paragraph_answer(rest.split("\n", 1)[1] if alone else rest, heading=alone)


def _paragraph_answer(rest: str, heading: bool) -> str | None:
    ans = rest.strip()
    ans = ans.split("\n\n")[0].strip()           # the answer paragraph, not a trailing chat turn
    ans = ans.split(END)[0].strip()
    ans = _clean(ans)
    if heading and ans:
        ans = _math_of_sentence(ans)
    return ans or None


_DISPLAY_CLOSE = re.compile(r"\s*(?:\\\]|\\\)|\$\$)\s*$")          # "\]", "\)", "$$" closing a display
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.S)
_ANSWER_HEADING = re.compile(r"(?im)^[ \t]*(?:#{1,6}[ \t]*|\*\*[ \t]*)(?:final[ \t]+)?answer[ \t]*(?:\*\*)?[ \t]*$")
_THE_ANSWER_IS = re.compile(r"(?i)\bthe\s+(?:final\s+)?answer\s+is\s*:?[ \t]*([^\n]+)")


def _clean(ans: str) -> str:
    """An answer line without its wrappers: "**", a final period, "$...$", and the display-math or \\text{}
    brackets around a label ("\\[Answer: 42\\]", "\\text{Answer: } 42")."""
    ans = ans.strip()
    ans = re.sub(r"^\}\s*", "", ans)               # "\text{Answer: } 42": the label's closing brace
    ans = re.sub(r"^(?:\\\[|\\\(|\$\$)\s*", "", ans)    # a display opened after the label
    ans = _DISPLAY_CLOSE.sub("", ans)
    ans = re.sub(r"^\*+\s*|\s*\*+$", "", ans)      # "**Final Answer:** 42" / "Answer: **B**"
    ans = _DISPLAY_CLOSE.sub("", ans.rstrip(".").strip())
    return _strip_dollars(ans.rstrip(".").strip())


def _math_of_sentence(ans: str) -> str:
    """A sentence around math ("The total is $42$.") gives its last math span; math or a bare answer stays."""
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN.finditer(ans)]
    words = re.findall(r"[A-Za-z]{2,}", _MATH_SPAN.sub(" ", ans))
    return spans[-1].strip() if spans and len(words) >= 2 else ans


def extract_choice(text: str, *, answer_marker: str = ANSWER_MARKER) -> str | None:
    """The option letter (A-D) a multiple-choice response chose, read from its answer section as extract_answer
    reads it: "(B)", "B)", "B) 7", "**B**", "\\boxed{B}", "Answer: B", else the last "the answer is B"."""
    ans = extract_answer(text, answer_marker=answer_marker)
    letter = choice_letter(ans)
    if letter is None:
        said = _ANSWER_IS.findall(answer_section((ans or text or "")[-MAX_RESPONSE_CHARS:], answer_marker))
        letter = said[-1].upper() if said else None
    return letter


def _last_boxed(text: str) -> str | None:
    start = max(text.rfind(cmd) for cmd in BOX_COMMANDS)
    while start >= 0:
        cmd = next(c for c in BOX_COMMANDS if text.startswith(c, start))
        j = start + len(cmd)
        if j < len(text) and text[j] == "{":
            depth = 0
            for k in range(j, len(text)):
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        return text[j + 1:k].strip()
        elif j < len(text) and text[j] == " ":       # "\boxed 5": one token after a space
            m = re.match(r"\s*([^\s$]+)", text[j:])
            if m:
                return m.group(1).rstrip(".")
        # unbalanced or empty: look at the previous \boxed
        start = max(text.rfind(cmd, 0, start) for cmd in BOX_COMMANDS)
    return None


def _strip_dollars(s: str) -> str:
    s = s.strip()
    while len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s[1:-1].strip()
    return s


def _normalize(s: str) -> str:
    s = _strip_dollars(s)
    s = re.sub(r"\\text\{\s*([^{}]*?)\s*\}", r"\1", s)
    s = re.sub(r"\\(?:left|right|!|,|;|:|displaystyle)", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\?%$", "", s.strip())          # MATH: "50\%" and "50" are the same answer
    return re.sub(r"\s+", "", s).rstrip(".").lower()


def as_integer(s: str) -> int | None:
    """AIME-style integer from an answer string: '016' -> 16, '$1{,}000$' -> 1000; None if not an integer."""
    s = _normalize(s)
    s = s.replace("{,}", ",")
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+", s):   # thousands separators only: "2,1" is a list, not 21
        s = s.replace(",", "")
    s = re.sub(r"\^\{?\\circ\}?$", "", s)
    if re.fullmatch(r"[-+]?\d{1,30}", s):
        return int(s)
    return None


def _letter(s: str) -> str | None:
    m = _LETTER.match(_normalize(s).upper())
    return m.group(1) if m else None


def quick_verdict(answer: str | None, reference: str, integer_answer: bool = False) -> bool | None:
    """Decide without math-verify when the strings settle it; None means 'ask math-verify'."""
    if answer is None:
        return False
    if len(answer) > MAX_ANSWER_CHARS:
        return False
    ref_int = as_integer(reference)
    ans_int = as_integer(answer)
    if integer_answer and ref_int is not None:
        if ans_int is not None:
            return ans_int == ref_int
    elif ref_int is not None and ans_int is not None:
        return ans_int == ref_int
    ref_letter = _letter(reference)
    if ref_letter is not None and _letter(answer) is not None:   # multiple choice: (B) == B
        return _letter(answer) == ref_letter
    if _normalize(answer) == _normalize(reference):
        return True
    if _states_text_gold(answer, reference):
        return True
    return None


_TEXT_GOLD = re.compile(r"^\\text\{([^{}]+)\}$")
_NEGATION = re.compile(r"(?i)\b(?:not|no|neither|nor|never|cannot)\b|n't")


def _states_text_gold(answer: str, reference: str) -> bool:
    """A statement in \\boxed{} ("\\text{The function is odd}") against a \\text{} gold ("\\text{odd}"): right when
    the statement ends with the gold's words and negates nothing ("neither even nor odd" is not "odd")."""
    m = _TEXT_GOLD.match(_strip_dollars(reference))
    if not m:
        return False
    words = lambda t: re.findall(r"[a-z0-9]+", t.lower())   # noqa: E731
    gold = words(m.group(1))
    said = words(re.sub(r"\\text\{([^{}]*)\}", r"\1", answer))
    return bool(gold) and len(said) > len(gold) and said[-len(gold):] == gold and not _NEGATION.search(answer)


def _verify_worker(answer: str, reference: str, timeout_s: float | None) -> bool:
    """math-verify on one pair. timeout_s needs a main thread (math-verify's signal.alarm); None: no limit here."""
    from math_verify import parse, verify

    t = None if timeout_s is None else max(1, round(timeout_s))
    try:
        gold = parse(f"${reference}$", parsing_timeout=t)
        pred = parse(f"$\\boxed{{{answer}}}$", parsing_timeout=t)
        if not gold or not pred:
            return False
        return bool(verify(gold, pred, timeout_seconds=t))
    except Exception:  # noqa: BLE001 - any parser failure means "not shown equal"
        return False


_PARENT_WARM = False


def _warm_parent() -> None:
    """Pay math-verify's import and first-parse cost once in this process (main thread: its alarms work there),
    so forked workers start warm; elsewhere only import it."""
    global _PARENT_WARM
    if _PARENT_WARM:
        return
    _PARENT_WARM = True
    try:
        if threading.current_thread() is threading.main_thread():
            _verify_worker("1", "1", 5.0)
        else:
            import math_verify  # noqa: F401
    except Exception:  # noqa: BLE001 - e.g. math-verify missing: the real checks raise it in the worker
        pass


def _worker_start() -> None:
    """Keep the cyclic GC off the objects inherited from the parent (walking them copies every page torch's fork
    shares)."""
    gc.freeze()


def _can_have_children() -> bool:
    """Daemonic processes (multiprocessing.Pool or datasets.map(num_proc=...) workers) may not start processes."""
    return not multiprocessing.current_process().daemon


def _stop_pool(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shut the pool down and wait for its workers; kill them first when one is stuck in a check."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    if kill:
        for p in procs:
            p.kill()
    pool.shutdown(wait=True, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)


def _verify_in_pool(pairs: list[tuple[str, str]], timeout_s: float, workers: int) -> list[bool]:
    """math-verify in worker processes that live for this call only: a check that overruns its time limit is
    killed and counts as wrong; when this returns, no worker is left."""
    verdicts: list[bool | None] = [None] * len(pairs)
    todo = list(range(len(pairs)))
    while todo:
        # fork: workers start in milliseconds and only run sympy, never torch
        pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(todo))), initializer=_worker_start,
                                   mp_context=multiprocessing.get_context("fork"))
        hung = False
        try:
            futures = {i: pool.submit(_verify_worker, *pairs[i], timeout_s) for i in todo}
            for i in todo:
                try:
                    # queued futures wait behind at most `workers` running ones, each bounded by timeout_s
                    verdicts[i] = futures[i].result(timeout=timeout_s * 2 + 2)
                except FutureTimeout:
                    log.warning("grading timed out after %.0f s (answer %r...): counted wrong", timeout_s,
                                pairs[i][0][:60])
                    verdicts[i], hung = False, True
                    break
                except BrokenProcessPool:
                    verdicts[i], hung = False, True
                    break
        finally:
            _stop_pool(pool, kill=hung)  # a stuck worker never returns: kill it, regrade the rest on a fresh pool
        todo = [i for i in todo if verdicts[i] is None]
    return [bool(v) for v in verdicts]


def _verify_here(pairs: list[tuple[str, str]], timeout_s: float) -> list[bool]:
    """Where no process may be started (a daemonic worker): in this process. In its main thread math-verify's
    own signal.alarm limits hold (timeout_s per parse and per verify); in another thread each check runs in a
    daemon thread that is abandoned, counted wrong, after timeout_s * 2 + 2 seconds."""
    if threading.current_thread() is threading.main_thread():
        return [_verify_worker(a, r, timeout_s) for a, r in pairs]
    verdicts = []
    for a, r in pairs:
        box: list[bool] = []
        t = threading.Thread(target=lambda a=a, r=r, box=box: box.append(_verify_worker(a, r, None)), daemon=True)
        t.start()
        t.join(timeout_s * 2 + 2)
        if not box:
            log.warning("grading timed out after %.0f s (answer %r...): counted wrong", timeout_s, a[:60])
        verdicts.append(bool(box and box[0]))
    return verdicts


def grade_many(responses: list[str], references: list[str], *, integer_answer: bool = False,
               timeout_s: float = 5.0, workers: int = 2) -> list[bool]:
    """is_correct for many pairs; each math-verify check has `timeout_s` seconds, then it counts as wrong.

    Callable from any process (a multiprocessing child, a daemonic pool worker, a thread): worker processes
    are started for this call and gone when it returns."""
    if len(responses) != len(references):
        raise ValueError(f"grade_many: {len(responses)} responses but {len(references)} references")
    verdicts: list[bool | None] = []
    answers = []
    for resp, ref in zip(responses, references):
        ans = extract_answer(resp)
        answers.append(ans)
        verdicts.append(quick_verdict(ans, str(ref), integer_answer))
    todo = [i for i, v in enumerate(verdicts) if v is None]
    if todo:
        _warm_parent()
        pairs = [(answers[i], str(references[i])) for i in todo]
        if _can_have_children():
            got = _verify_in_pool(pairs, timeout_s, workers)
        else:
            got = _verify_here(pairs, timeout_s)
        for i, ok in zip(todo, got):
            verdicts[i] = ok
    return [bool(v) for v in verdicts]


def is_correct(response: str, reference: str, *, integer_answer: bool = False, timeout_s: float = 5.0) -> bool:
    """Is the final answer in `response` equal to `reference`? integer_answer: AIME rule ('016' == '16')."""
    return grade_many([response], [reference], integer_answer=integer_answer, timeout_s=timeout_s, workers=1)[0]


def canonical_answer(text_or_answer: str | None) -> str | None:
    """A key that equal answers share, for majority voting: the option letter ("(B)", "B) 7", "**B**" -> "B"), the
    integer ("016" -> "16"), else math-verify's parse in a canonical sympy form ("\\frac12", "0.5", "1/2" -> "1/2";
    "2,1" and "\\{1,2\\}" -> one set), else the normalised text. A whole response (it has an answer section, a box or
    an "Answer:") is extracted first; None when it holds no answer."""
    if not text_or_answer:
        return None
    text = str(text_or_answer)
    looks_like_response = (ANSWER_MARKER in text or any(c in text for c in BOX_COMMANDS)
                           or _ANSWER_LABEL.search(text) is not None or len(text) > MAX_ANSWER_CHARS)
    ans = extract_answer(text) if looks_like_response else text.strip()
    if not ans or len(ans) > MAX_ANSWER_CHARS:
        return None

    letter = _letter(ans) or choice_letter(ans)
    if letter is not None:
        return letter
    n = as_integer(ans)
    if n is not None:
        return str(n)
    return _math_key(ans) or _normalize(ans)


def _math_key(answer: str) -> str | None:
    """math-verify's parse of one answer as a canonical string (floats made rational, then simplified); None when it
    does not parse. Parsing has math-verify's time limit in a main thread, none elsewhere (answers are short)."""
    try:
        import sympy
        from math_verify import parse

        main = threading.current_thread() is threading.main_thread()
        parsed = parse(f"$\\boxed{{{answer}}}$", parsing_timeout=5 if main else None)
        expr = next((p for p in parsed if not isinstance(p, str)), None)
        if expr is None:
            return None
        if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol):   # "x=3" answers 3
            expr = expr.rhs
        if isinstance(expr, sympy.Basic) and not isinstance(expr, sympy.Set) and len(str(expr)) < 200:
            expr = sympy.nsimplify(expr, rational=True) if expr.has(sympy.Float) else expr
            expr = sympy.simplify(expr)
        n = as_integer(str(expr))
        return str(n) if n is not None else str(expr)
    except Exception:  # noqa: BLE001 - an answer math-verify cannot read keeps its text key
        return None
