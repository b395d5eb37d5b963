"""Budget forcing inside vLLM (s1.infer.vllm_bf): one request per sequence against the rounds, in process and served.

Runs under `make test-vllm` (skipped where vLLM is not importable). Both paths hold the model's own tokens and each
forced string's own tokens (the release's way), so their records are equal token for token: on the tiny head_dim-32
model, whose random tokens the tokenizer would spell otherwise, and on the real 0.5B, where a Wait after "?" or "."
would be spelled "?\n", "Wait" by encoding the text whole.
"""

from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.request

import pytest
from conftest import requires
from test_vllm import QUESTIONS, REAL_MODEL, _serving, hd32_dir, needs_vllm  # noqa: F401  (hd32_dir: fixture)

from s1.infer import build_prompt, generate, load_engine

pytestmark = [needs_vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def engines(hd32_dir):  # noqa: F811
    single = load_engine("vllm", str(hd32_dir), dtype="float32", max_context=2048)
    rounds = load_engine("vllm", str(hd32_dir), dtype="float32", max_context=2048, bf_mode="rounds")
    return single, rounds


def _decided(results):
    """What budget forcing decides, per sequence."""
    return [(r.thinking, r.thinking_tokens, r.waits_used, r.outcome, r.answer_tokens, r.rounds) for r in results]


def _full(results):
    return [(r.text, r.outcome, r.thinking_tokens, r.answer_tokens, r.waits_used, r.rounds) for r in results]


def _end_token(engine, results) -> str:
    """A token the tiny model writes mid-thinking whose text never shows up inside another token: the rounds match
    end_of_thinking as text, the single pass as a token; with this one both see the same ends."""
    texts = [r.thinking for r in results]
    ids = [engine.encode(x) for x in texts]
    counts = collections.Counter(t for x in ids for t in x)
    spread = {t: sum(t in x for x in ids) for t in counts}
    for tok in sorted(counts, key=lambda t: (-spread[t], -counts[t], t))[:60]:   # in most sequences first
        s = engine.tokenizer.decode([tok])
        if s.strip() and "\ufffd" not in s and len(engine.encode(s)) == 1 and \
                sum(x.count(s) for x in texts) == sum(x.count(tok) for x in ids):
            return s
    pytest.fail("no single-token end of thinking found in the tiny model's text")


def test_single_pass_equals_the_rounds_tiny(engines):
    """Every record equal, text included: caps (one that cuts a word, an end of thinking exactly at the cap, an
    answer cap of one token), Wait x1 / x2 / x4 with Table 4's strings, a minimum. The tiny model's random tokens are
    not the tokenizer's spelling of their text, so a path that re-encoded the text would part from the other."""
    single, rounds = engines
    prompts = [build_prompt(single.tokenizer, q) for q in QUESTIONS]
    free = generate(rounds, prompts, dict(answer_max_tokens=8), max_new_tokens=96, progress=False)
    assert any(single.encode(r.text) != single.encode(r.thinking) + single.encode(r.text[len(r.thinking):])
               or len(single.encode(r.thinking)) != r.thinking_tokens for r in free), \
        "the tiny model wrote only the tokenizer's own spelling: this test would not see a re-encoded text"
    stop = _end_token(single, free)
    ended = generate(rounds, prompts, dict(end_of_thinking=stop, answer_max_tokens=8), max_new_tokens=96,
                     progress=False)
    at = min(r.thinking_tokens for r in ended)
    assert at < 88, "the tiny model never ended its thinking itself"     # 88: 96 less the answer's 8
    passes = single.stats["forward_passes"]
    for bf in (dict(max_thinking_tokens=12, answer_max_tokens=8),                       # the cap cuts a word
               dict(max_thinking_tokens=at, end_of_thinking=stop, answer_max_tokens=8),  # the end exactly at the cap
               dict(max_thinking_tokens=5, answer_max_tokens=1)):                       # an answer cap of one token
        a = generate(single, prompts, bf, max_new_tokens=96, progress=False)
        assert _full(a) == _full(generate(rounds, prompts, bf, max_new_tokens=96, progress=False)), bf
    exact = generate(single, prompts, dict(max_thinking_tokens=at, end_of_thinking=stop, answer_max_tokens=8),
                     max_new_tokens=96, progress=False)
    assert any(r.thinking_tokens == at and not r.text[len(r.thinking):].startswith("\n") for r in exact), \
        "no sequence ended its thinking itself at the cap"
    waits = []
    for n, w, least in ((1, "Wait", 0), (2, "Hmm", 0), (4, "Alternatively", 0), (0, "Wait", 40)):  # Table 4's
        bf = dict(max_thinking_tokens=70, end_of_thinking=stop, num_waits=n, wait_string=w, min_thinking_tokens=least,
                  answer_max_tokens=8)
        a = generate(single, prompts, bf, max_new_tokens=96, progress=False)
        assert _full(a) == _full(generate(rounds, prompts, bf, max_new_tokens=96, progress=False)), bf
        for x in a:
            assert x.thinking_tokens <= 70 and x.waits_used <= max(n, 70) and x.thinking.count("\n" + w) == x.waits_used
            if least:
                assert x.thinking_tokens >= least or x.outcome == "forced"
        waits.append(max(r.waits_used for r in a))
    assert min(waits) >= 1, f"the Wait path did not run: {waits}"
    assert single.stats["forward_passes"] > passes
    from s1.infer import vllm_bf

    assert not vllm_bf.PROMPTS, "a prompt handed to the processor was never taken (its request got no state)"


def test_single_pass_timeout_stops_mid_generation(engines):
    single, _ = engines
    prompt = build_prompt(single.tokenizer, QUESTIONS[0])
    start = time.monotonic()
    [r] = generate(single, [prompt], dict(max_thinking_tokens=None, request_timeout_s=0.3, answer_max_tokens=8),
                   max_new_tokens=1900, progress=False)
    assert r.outcome == "timeout" and 0 < r.thinking_tokens < 1800 and time.monotonic() - start < 10


def test_requests_without_arguments_are_untouched_in_a_mixed_batch(engines):
    """One vLLM batch: budget-forced requests beside plain ones; the plain ones get what they get alone."""
    from vllm import SamplingParams

    single, _ = engines
    prompts = [{"prompt_token_ids": single.encode(build_prompt(single.tokenizer, q))} for q in QUESTIONS]
    plain = SamplingParams(temperature=0.0, max_tokens=24, skip_special_tokens=False)
    forced = SamplingParams(temperature=0.0, max_tokens=200, skip_special_tokens=False,
                            extra_args={"max_thinking_tokens": 6, "answer_max_tokens": 4})
    alone = [o.outputs[0].token_ids for o in single.llm.generate(prompts, plain, use_tqdm=False)]
    mixed = single.llm.generate(prompts + prompts, [plain] * 3 + [forced] * 3, use_tqdm=False)
    assert [o.outputs[0].token_ids for o in mixed[:3]] == alone
    assert all("<|im_start|>answer\nFinal Answer:" in o.outputs[0].text for o in mixed[3:])
    assert all(len(o.outputs[0].token_ids) < 24 for o in mixed[3:])


def test_batch_argmax_is_the_first_maximum_as_torchs():
    """The processor's batch argmax (numpy's on a CPU float32 batch: several times faster than torch's) picks what
    torch's argmax and vLLM's greedy sampler pick, ties included (the first maximum); other dtypes and layouts take
    torch's own."""
    import torch

    from s1.infer.vllm_bf import _argmax

    x = torch.randn(6, 1024, generator=torch.Generator().manual_seed(0))
    x[1, 10] = x[1, 900] = x[1].max() + 1           # a tie: the first wins
    x[2] = 0.0                                      # all equal
    x[3] = float("-inf")                            # a row another processor masked whole
    x[3, 700] = 0.0                                 # ...but for one forced token
    x[4, 17] = float("inf")
    assert _argmax(x) == x.argmax(dim=-1).tolist()
    assert [_argmax(x)[i] for i in (1, 2, 3, 4)] == [10, 0, 700, 17]
    for y in (x.to(torch.bfloat16), x.t().contiguous().t(), x[:, :512]):   # torch's path: same answers
        assert _argmax(y) == y.argmax(dim=-1).tolist()


def test_sampling_draws_from_the_rows_distribution():
    """With temperature > 0 the processor draws the token itself (seed, position): the frequencies are softmax's,
    within top_p; the same seed and position give the same token."""
    import torch

    from s1.infer.vllm_bf import draw

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -30.0])
    want = torch.softmax(logits / 0.7, 0)
    n = 4000
    got = collections.Counter(draw(logits, 0.7, 1.0, 0, seed, 0) for seed in range(n))
    for tok in range(5):
        assert abs(got[tok] / n - float(want[tok])) < 0.03, (tok, got)
    nucleus = collections.Counter(draw(logits, 1.0, 0.8, 0, seed, 3) for seed in range(1000))
    assert set(nucleus) <= {0, 1}          # softmax(logits): 0.64 + 0.24 reach 0.8 with two tokens
    assert draw(logits, 1.0, 1.0, 0, 7, 5) == draw(logits, 1.0, 1.0, 0, 7, 5)


def test_sampled_single_pass_is_reproducible_and_forced(engines):
    single, _ = engines
    prompts = [build_prompt(single.tokenizer, q) for q in QUESTIONS]
    bf = dict(max_thinking_tokens=10, answer_max_tokens=6)
    a = generate(single, prompts, bf, max_new_tokens=64, temperature=1.0, seed=3, progress=False)
    b = generate(single, prompts, bf, max_new_tokens=64, temperature=1.0, seed=3, progress=False)
    assert _full(a) == _full(b)
    assert all(r.thinking_tokens == 10 and "Final Answer:" in r.text for r in a)
    assert len({r.thinking for r in a}) == 3


def test_adaptive_waits_fall_back_to_rounds(engines, caplog):
    single, rounds = engines
    prompts = [build_prompt(single.tokenizer, QUESTIONS[0])]
    bf = dict(max_thinking_tokens=12, adaptive_waits=True, num_waits=1, answer_max_tokens=4)
    with caplog.at_level("INFO", logger="s1.infer"):
        a = generate(single, prompts, bf, max_new_tokens=48, progress=False)
    assert "in rounds (adaptive" in caplog.text
    assert _full(a) == _full(generate(rounds, prompts, bf, max_new_tokens=48, progress=False))


@requires("real-model", None if (REAL_MODEL / "s1_real_model.json").exists()
          else f"the real Qwen2.5 0.5B is not at {REAL_MODEL}: run `make real-model`")
def test_single_pass_equals_the_rounds_on_the_real_model():
    """Token for token (the text): two Waits (the model ends its thinking at end of turn) then the cap, a minimum
    with Table 4's "Hmm", answer caps."""
    single = load_engine("vllm", str(REAL_MODEL), dtype="float32", max_context=2048)
    rounds = load_engine("vllm", str(REAL_MODEL), dtype="float32", max_context=2048, bf_mode="rounds")
    prompts = [build_prompt(single.tokenizer, q) for q in QUESTIONS[1:]]
    cases = (dict(max_thinking_tokens=24, num_waits=2, answer_max_tokens=8),     # two Waits, then the cap
             dict(max_thinking_tokens=30, min_thinking_tokens=20, wait_string="Hmm", answer_max_tokens=6))
    got = []
    for bf in cases:
        a = generate(single, prompts, bf, max_new_tokens=48, progress=False)
        assert _full(a) == _full(generate(rounds, prompts, bf, max_new_tokens=48, progress=False)), bf
        got.append(a)
    assert max(r.waits_used for r in got[0]) == 2 and max(r.waits_used for r in got[1]) >= 1
    assert any(r.outcome == "forced" for r in got[0])
    # a cap after "by ": the text encoded whole would spell " " + "\n<|im_start|>..." as " \n" (the answers then
    # differ: 19 against 13); both paths hold " " and force "\n" as the release does
    prompt = [build_prompt(single.tokenizer, QUESTIONS[0])]
    bf = dict(max_thinking_tokens=32, answer_max_tokens=16)
    [a] = generate(single, prompt, bf, max_new_tokens=160, progress=False)
    assert _full([a]) == _full(generate(rounds, prompt, bf, max_new_tokens=160, progress=False))
    assert a.thinking.endswith(" ") and a.outcome == "forced" and a.thinking_tokens == 32
    # Waits after the model's own end of thinking behind "?" and ".": encoded whole, "?\nWait" is "?\n", "Wait"
    # (the records differed in 4 of 16 questions at 2 and 4 Waits); held, "?", "\n", "Wait"
    prompts = [build_prompt(single.tokenizer, q) for q in ("What is 2^10?", "Is 221 prime?", "What is 144 / 12?")]
    assert single.encode("?\nWait")[0] != single.encode("?")[0]
    for n in (2, 4):
        bf = dict(max_thinking_tokens=96, num_waits=n, answer_max_tokens=16)
        a = generate(single, prompts, bf, max_new_tokens=160, progress=False)
        assert _full(a) == _full(generate(rounds, prompts, bf, max_new_tokens=160, progress=False)), bf
        assert sum(r.thinking.count("?\nWait") + r.thinking.count(".\nWait") for r in a) >= n


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

def test_served_budget_forcing(hd32_dir, engines):  # noqa: F811
    """`python -m s1.infer.vllm_serve` on 127.0.0.1: the openai package gets the in-process single pass's text and
    thinking-token count; bad arguments get HTTP 400 naming the key, and the server keeps serving."""
    from openai import OpenAI

    single, _ = engines
    with _serving(hd32_dir, "tiny") as port:
        prompt = build_prompt(single.tokenizer, QUESTIONS[1])
        xargs = {"max_thinking_tokens": 12, "answer_max_tokens": 6, "max_new_tokens": 96}
        [local] = generate(single, [prompt], xargs, max_new_tokens=96, progress=False)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none")
        out = client.completions.create(model="tiny", prompt=prompt, max_tokens=400, temperature=0,
                                        extra_body={"vllm_xargs": xargs})
        # the server's detokeniser holds back a trailing partial UTF-8 character, whose bytes the engine shows as \ufffd
        assert out.choices[0].text == local.text.rstrip("\ufffd")
        s1 = out.model_extra["s1"]
        assert (s1["thinking_tokens"], s1["answer_tokens"], s1["outcome"]) == \
            (local.thinking_tokens, local.answer_tokens, local.outcome)
        url = f"http://127.0.0.1:{port}/v1/completions"
        for bad, key in (({"max_thinking_tokenz": 5}, "max_thinking_tokenz"), ({"max_thinking_tokens": -3},
                                                                                 "max_thinking_tokens"),
                         ({"wait_string": "", "num_waits": 1}, "wait_string")):
            code, body = _post(url, {"model": "tiny", "prompt": prompt, "max_tokens": 8, "vllm_xargs": bad})
            assert code == 400 and key in json.dumps(body), (bad, code, body)
        code, body = _post(url, {"model": "tiny", "prompt": prompt, "max_tokens": 400, "temperature": 0,
                                 "vllm_xargs": xargs})
        assert code == 200 and body["choices"][0]["text"] == local.text.rstrip("\ufffd")


