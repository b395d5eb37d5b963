"""Quality rules of the paper (§2) as the released notebook (data/filter.ipynb) writes them.

Each rule is a named function of one record; a record is dropped for the first
rule it fails. Order and defaults follow the paper's funnel: API errors and
missing fields first (59,029 → 54,116), then formatting (→ 51,581).
Notebook quirk kept: a question with [asy] from an AIME source is kept even
when another formatting rule would drop it.
"""

from __future__ import annotations

import re

from s1.curate.funnel import StepResult, keep_unless
from s1.data.schema import first_trace, record_metadata

# error text a teacher API returned in place of a trace (checked only on short texts)
API_ERROR = re.compile(
    r"Error code: \d{3}|Resource has been exhausted|RESOURCE_EXHAUSTED|model is overloaded|"
    r"internal error has occurred|Rate limit|Request timed out|Service Unavailable|Traceback \(most recent",
    re.IGNORECASE)
API_ERROR_MAX_CHARS = 600   # a real trace mentioning "rate limit" is long; error payloads are short
NA_VALUES = {"", "na", "n/a", "nan", "none", "null"}
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(|<img\b", re.IGNORECASE)
MULTI_PART = re.compile(r"p[1-9]\d{0,2}\.")          # "p1." … "p999." (notebook)
BOLD_DIGITS = re.compile(r"\*\*(?=.*\d)[^\s\]]*\*\*")  # notebook's formatting regex, verbatim


def is_na(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NA_VALUES)


def api_error(rec) -> bool:
    texts = [first_trace(rec), rec.get("attempt") or ""]
    return any(t and len(t) <= API_ERROR_MAX_CHARS and API_ERROR.search(t) for t in texts)


def missing_answer(rec) -> bool:
    """No gold answer and no reference solution: nothing to grade against (an LLM judge reads the solution)."""
    return is_na(rec.get("answer")) and is_na(rec.get("solution"))


def missing_trace(rec) -> bool:
    return not first_trace(rec).strip() or is_na(rec.get("attempt"))


def has_image_notebook(rec) -> bool:
    return "![Image]" in rec["question"]                  # filter.ipynb cell 7, verbatim


def is_aime_notebook(rec) -> bool:
    return "AIME" in str(rec.get("source_type", ""))     # filter.ipynb: 'AIME' in example['source_type']


def has_image(rec) -> bool:
    meta = record_metadata(rec)
    # TheoremQA's has_picture / Picture: the question refers to a figure the pool does not carry
    return bool(MARKDOWN_IMAGE.search(rec["question"]) or "![Image]" in rec["question"]
                or meta.get("has_picture") is True or meta.get("Picture"))


def has_asy(rec) -> bool:
    return "[asy]" in rec["question"]


def is_aime(rec) -> bool:
    return "aime" in str(rec.get("source_type", "")).lower()


def multi_part(rec) -> bool:
    return bool(MULTI_PART.search(rec["question"]))


def bold_digits(rec) -> bool:
    return bool(BOLD_DIGITS.search(rec["question"]))


def active_rules(cfg) -> tuple[list, list]:
    """(field rules, format rules) as (reason, test) pairs, in the order they are applied."""
    fields = []
    if cfg.drop_api_errors:
        fields += [("api_error", api_error), ("missing_answer", missing_answer)]
        if cfg.require_traces:
            fields.append(("missing_trace", missing_trace))
    fmt = []
    if cfg.drop_images:
        fmt.append(("image", has_image_notebook if getattr(cfg, "notebook_exact", False) else has_image))
    if cfg.drop_asy_unless_aime:
        fmt.append(("asy", has_asy))
    if cfg.drop_multi_part:
        fmt.append(("multi_part", multi_part))
    if cfg.drop_bold_digits:
        fmt.append(("bold_digits", bold_digits))
    return fields, fmt


def failed_rule(rec, fields, fmt, aime=is_aime) -> str | None:
    for reason, test in fields:
        if test(rec):
            return reason
    if has_asy(rec) and aime(rec):
        return None  # notebook: [asy] from AIME is kept, whatever the other format rules say
    for reason, test in fmt:
        if test(rec):
            return reason
    return None


def apply_quality_rules(pool: list[dict], cfg) -> StepResult:
    fields, fmt = active_rules(cfg)
    aime = is_aime_notebook if getattr(cfg, "notebook_exact", False) else is_aime
    return keep_unless(pool, lambda rec: failed_rule(rec, fields, fmt, aime))
