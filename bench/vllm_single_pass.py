"""Budget forcing inside vLLM (one request per sequence) vs the rounds vs plain decoding (a benchmark, not a test).

  .venv-vllm/bin/python bench/vllm_single_pass.py [--models tiny real] [--questions 4] [--repeats 3] [--cap 96]

For each model (the tiny head_dim-32 Qwen2 with random weights; the real Qwen2.5 0.5B from `make real-model`) and
each setting (thinking caps; Wait x1 / x2 / x4 under a cap), the same prompts run three ways, side by side in one
process, each `--repeats` times in turn (the least wall time of the repeats, `--stat min`: on a shared machine noise
only adds time (docs/engine.md shows how much); `--stat median` takes the median):
  single pass  generate() on an engine with bf_mode=auto: one vLLM request per sequence, forced by the processor;
  rounds       generate() on an engine with bf_mode=rounds: a request per round, the whole text re-submitted;
  plain        the single pass's token count per sequence, decoded greedily without budget forcing (ignore_eos),
               with the single pass's work around the model: a request's sampling parameters built, the text
               prompts encoded, no per-step output, the tokens decoded at the end.
The two engines hold the same weights (two in-process vLLMs). The rounds and the single pass must give the same
records (both hold the model's own tokens and each forced string's own); the bench stops otherwise. Goals: single pass within 1.05x of plain, and faster than the rounds.
Last line: single_pass_vs_plain=<x> single_pass_vs_rounds=<y> (wall-time ratios over every model and setting).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from s1.infer import build_prompt, generate, load_engine  # noqa: E402  (after the path set-up)

QUESTIONS = ["What is 17 * 3?", "Is 91 a prime number?", "Start at 3, add 4, 5 times. Last digit?",
             "How many positive divisors does 36 have?", "What is the sum of the first 10 odd numbers?",
             "Solve 2x + 6 = 20.", "What is 2^10?", "Is 221 prime?", "What is 144 / 12?",
             "How many minutes are in 3.5 hours?", "What is the least common multiple of 4 and 6?",
             "A square has perimeter 20. What is its area?", "What is 15% of 80?", "Is 57 prime?",
             "What is the remainder of 100 divided by 7?", "How many edges does a cube have?"]


def settings(cap: int) -> list[tuple[str, dict]]:
    """Thinking caps (a third of the cap, the cap) and Wait x1 / x2 / x4 under the cap."""
    out = [(f"cap {cap // 3}", dict(max_thinking_tokens=cap // 3, answer_max_tokens=16)),
           (f"cap {cap}", dict(max_thinking_tokens=cap, answer_max_tokens=16))]
    return out + [(f"Wait x{n}", dict(max_thinking_tokens=cap, num_waits=n, answer_max_tokens=16)) for n in (1, 2, 4)]


SETTINGS = settings(96)


def _cache() -> Path:
    return Path(os.environ.get("S1_CACHE", REPO / ".cache")).resolve()


def model_dir(name: str) -> Path:
    if name == "real":
        d = _cache() / "models" / "qwen2.5-0.5b-local"
        if not (d / "s1_real_model.json").exists():
            raise SystemExit(f"the real Qwen2.5 0.5B is not at {d}: run `make real-model`")
        return d
    from s1.tiny_model import ensure_tiny_model

    return ensure_tiny_model(_cache() / "models" / "tiny-qwen2-hd32", size="tiny_hd32")


def _counts(r):
    return (r.outcome, r.thinking_tokens, r.answer_tokens, r.waits_used, r.rounds)


def compare(single, rounds, prompts: list[str], settings, *, max_new_tokens: int, batch_size: int, repeats: int,
            label: str = "", stat: str = "min") -> tuple[float, float, float]:
    """Wall times (single pass, rounds, plain; the least or the median of the repeats) summed over the settings;
    prints one line per setting."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    generate(single, prompts[:2], settings[0][1], max_new_tokens=max_new_tokens, progress=False)   # warm-up
    generate(rounds, prompts[:2], settings[0][1], max_new_tokens=max_new_tokens, progress=False)
    totals = [0.0, 0.0, 0.0]
    for name, bf in settings:
        times: list[list[float]] = [[], [], []]
        for _ in range(repeats):
            before = single.stats["generated_tokens"]
            gc.collect()                   # each timed call starts from a collected heap
            t = time.perf_counter()
            a = generate(single, prompts, bf, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False)
            times[0].append(time.perf_counter() - t)
            out_tokens = single.stats["generated_tokens"] - before
            gc.collect()
            t = time.perf_counter()
            b = generate(rounds, prompts, bf, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=False)
            times[1].append(time.perf_counter() - t)
            if [r.text for r in a] != [r.text for r in b] or [_counts(r) for r in a] != [_counts(r) for r in b]:
                raise SystemExit(f"{label} {name}: single pass and rounds differ; the comparison is void")
            # plain: as many tokens per sequence as the single pass emitted (forced strings included), doing what
            # the single pass does around the model: build the requests' parameters, encode the text prompts, no
            # per-step output, decode at the end
            counts = [len(single.encode(r.text)) + 1 for r in a]
            scale = out_tokens / max(1, sum(counts))
            lengths = [max(1, round(c * scale)) for c in counts]
            gc.collect()
            t = time.perf_counter()
            params = [SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True, detokenize=False,
                                     output_kind=RequestOutputKind.FINAL_ONLY) for n in lengths]
            ids = [{"prompt_token_ids": single.encode(p)} for p in prompts]
            outs = single.llm.generate(ids, params, use_tqdm=False)
            [single.decode(list(o.outputs[0].token_ids)) for o in outs]
            times[2].append(time.perf_counter() - t)
        med = [min(x) if stat == "min" else statistics.median(x) for x in times]
        totals = [s + m for s, m in zip(totals, med)]
        print(f"{label} {name}: tokens {out_tokens}, waits {sum(r.waits_used for r in a)}, "
              f"single pass {med[0]:.2f} s, rounds {med[1]:.2f} s, plain {med[2]:.2f} s "
              f"({stat} of {repeats}; same records)",
              flush=True)
    return totals[0], totals[1], totals[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["tiny", "real"], choices=["tiny", "real"])
    ap.add_argument("--questions", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--cap", type=int, default=96, help="thinking cap of the Wait settings; a third of it too")
    ap.add_argument("--stat", choices=["min", "median"], default="min", help="each setting's time over the repeats")
    args = ap.parse_args()
    grand = [0.0, 0.0, 0.0]
    for name in args.models:
        d = model_dir(name)
        single = load_engine("vllm", str(d), dtype="float32", max_context=2048)
        rounds = load_engine("vllm", str(d), dtype="float32", max_context=2048, bf_mode="rounds")
        prompts = [build_prompt(single.tokenizer, QUESTIONS[i % len(QUESTIONS)]) for i in range(args.questions)]
        t = compare(single, rounds, prompts, settings(args.cap), max_new_tokens=args.max_new_tokens,
                    batch_size=len(prompts), repeats=args.repeats, label=name, stat=args.stat)
        print(f"model={name} single_pass_vs_plain={t[0] / t[2]:.3f} single_pass_vs_rounds={t[0] / t[1]:.3f}",
              flush=True)
        grand = [g + x for g, x in zip(grand, t)]
    print(f"single_pass_vs_plain={grand[0] / grand[2]:.3f} single_pass_vs_rounds={grand[0] / grand[1]:.3f}")


if __name__ == "__main__":
    main()
