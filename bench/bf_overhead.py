"""Budget-forcing overhead, batching speedup and grading speed (a benchmark, not a test).

  .venv/bin/python bench/bf_overhead.py

1. bf_overhead_ratio: the median over 5 side-by-side runs (with min and max) of the wall time of budget forcing with 2 forced "Wait" continuations divided by plain greedy
   decoding of the same number of tokens (goal <= 1.10). The tiny random model writes runs of newlines, so the
   end-of-thinking string is set to 48 newlines and the wait string to "Wait\n": the model really
   "ends thinking" (~50 tokens a round) and is really forced on, twice per sequence: the bench stops with an
   error unless every sequence got >= 2 forced waits and plain decoding generated exactly the same token counts.
2. batch8_speedup: tokens/s decoding 8 sequences in one batch vs one at a time (goal >= 3).
3. grade_500_s: grading 500 MATH500-style responses (half right, half wrong), pool start included (goal <= 5).
Last line: bf_overhead_ratio=<x> bf_overhead_min=<a> bf_overhead_max=<b> batch8_speedup=<y> grade_500_s=<s>
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from s1.infer import build_prompt, generate, load_engine  # noqa: E402  (after the path set-up)
from s1.infer.budget_forcing import DEFAULTS  # noqa: E402
from s1.infer.engine import Request  # noqa: E402
from s1.tiny_model import ensure_tiny_model  # noqa: E402

STOP = "\n" * 48
MIN_WAITS = 2  # forced "Wait" continuations every sequence must get, else the run stops with an error
REPEATS = 5    # budget forcing vs plain, side by side, this many times: the median with min / max


def forcing_problems(results, plain_tokens: list[int], min_waits: int) -> list[str]:
    """Why a BF-vs-plain comparison would be void: too few forced waits, or unequal token counts."""
    problems = [f"sequence {i}: {r.waits_used} forced waits, fewer than {min_waits}"
                for i, r in enumerate(results) if r.waits_used < min_waits]
    bf_tokens = [r.thinking_tokens + r.answer_tokens for r in results]
    if bf_tokens != plain_tokens:
        problems.append(f"token counts differ: budget forcing {bf_tokens}, plain {plain_tokens}")
    return problems


def best_of(n, fn):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    model = ensure_tiny_model(REPO / ".cache" / "models" / "tiny-qwen2", size="tiny")
    engine = load_engine("transformers", str(model))
    prompts = [build_prompt(engine.tokenizer, f"Start at {i}, add 3, {i + 2} times. Last digit?") for i in range(8)]
    bf = dict(DEFAULTS, end_of_thinking=STOP, wait_string="Wait\n", num_waits=2, answer_max_tokens=16)
    generate(engine, prompts[:2], bf, max_new_tokens=128, progress=False)    # warm-up

    ratios = []    # one ratio per repeat, budget forcing then plain side by side (one run moved 0.99-1.24 alone)
    for _ in range(REPEATS):
        t_bf, results = best_of(1, lambda: generate(engine, prompts, bf, max_new_tokens=256, batch_size=8,
                                                    progress=False))
        waits = min(r.waits_used for r in results)
        tokens = [r.thinking_tokens + r.answer_tokens for r in results]
        plain = [Request(p, n, []) for p, n in zip(prompts, tokens)]
        t_plain, conts = best_of(1, lambda plain=plain: engine.continue_batch(plain))
        problems = forcing_problems(results, [c.num_tokens for c in conts], MIN_WAITS)
        if problems:  # without forced waits the ratio is ~1 by construction and measures nothing
            raise SystemExit("bf_overhead: the comparison is not what it claims:\n  " + "\n  ".join(problems))
        ratios.append(t_bf / t_plain)
        print(f"budget forcing: {sum(tokens)} tokens, >= {waits} waits per sequence, {t_bf:.3f} s; "
              f"plain: {t_plain:.3f} s; ratio {ratios[-1]:.3f}")
    ratio = statistics.median(ratios)
    print(f"bf_overhead_ratio over {REPEATS} runs: median {ratio:.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}")

    reqs = [Request(p, 128, []) for p in prompts]
    t_batch, _ = best_of(3, lambda: engine.continue_batch(reqs))
    t_single, _ = best_of(3, lambda: [engine.continue_batch([r]) for r in reqs])
    speedup = t_single / t_batch
    print(f"8 x 128 tokens: batch {t_batch:.3f} s, one at a time {t_single:.3f} s")

    from s1.grading import grade_many

    rows = [json.loads(x) for x in (REPO / "data" / "benchmarks" / "math500.jsonl").read_text().splitlines()]
    responses = [f"Let me think.\n<|im_start|>answer\nAnswer: The result is $\\boxed{{{r['answer']}}}$"
                 if i % 2 == 0 else f"Answer: $\\boxed{{{r['answer']}+1}}$" for i, r in enumerate(rows[:500])]
    t = time.perf_counter()
    verdicts = grade_many(responses, [r["answer"] for r in rows[:500]], timeout_s=5.0, workers=2)
    grade_s = time.perf_counter() - t
    print(f"grading 500: {grade_s:.2f} s, {sum(verdicts)} judged right (250 are right by construction)")
    print(f"bf_overhead_ratio={ratio:.3f} bf_overhead_min={min(ratios):.3f} bf_overhead_max={max(ratios):.3f} "
          f"batch8_speedup={speedup:.2f} grade_500_s={grade_s:.2f}")


if __name__ == "__main__":
    main()
