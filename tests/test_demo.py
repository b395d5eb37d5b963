"""make demo end to end on CPU: curate → train → eval with budget forcing; the tiny model really learns."""

from __future__ import annotations

import json


def _rows(run):
    return json.loads((run / "eval" / "metrics.json").read_text())["rows"]


def test_curation_made_s1k_and_a_funnel(demo_run):
    s1k = [json.loads(line) for line in open(demo_run / "curate" / "s1k.jsonl")]
    assert len(s1k) == 1000
    funnel = json.loads((demo_run / "curate" / "funnel.json").read_text())
    import yaml

    pool_size = yaml.safe_load((demo_run / "curate" / "config.yaml").read_text())["curate"]["sources"][0]["size"]
    assert funnel["steps"][0]["kept"] == pool_size and funnel["steps"][-1]["kept"] == 1000
    assert (demo_run / "curate" / "funnel.md").exists() and (demo_run / "curate" / "funnel.png").exists()


def test_training_lowered_the_loss(demo_run):
    log = [json.loads(line) for line in open(demo_run / "train" / "train_log.jsonl")]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.3 * losses[0], losses
    assert (demo_run / "train" / "final" / "model.safetensors").exists()


def test_trained_model_beats_the_untrained_one_on_held_out_questions(demo_run):
    rows = _rows(demo_run)
    base = next(r for r in rows if r["model"] == "base")
    trained = next(r for r in rows if r["model"] == "trained" and r["method"] == "no_bf")
    assert base["questions"] == trained["questions"] == 300
    # the seed studies in docs/demo.md (bench/wait_seeds.py) give the spread over training seeds; 40 is far below it
    assert trained["accuracy"] > base["accuracy"] + 30, (base["accuracy"], trained["accuracy"])
    assert trained["accuracy"] > 40, trained["accuracy"]


def test_accuracy_grows_with_the_thinking_budget(demo_run):
    """The paper's Figure 1 on the toy: every larger cap scores at least as well, and the caps span the model's own
    thinking lengths (the largest beats the smallest by 30 points and reaches the uncapped accuracy)."""
    rows = _rows(demo_run)
    bf = sorted((r for r in rows if r["method"] == "bf" and r["budget"] is not None), key=lambda r: r["budget"])
    assert len(bf) >= 4
    for r in bf:  # budget forcing keeps thinking within the cap
        assert r["avg_thinking_tokens"] <= r["budget"] + 1e-9
    acc = [r["accuracy"] for r in bf]
    assert acc == sorted(acc) and acc[-1] >= acc[0] + 30, acc
    no_cap = next(r for r in rows if r["method"] == "bf" and r["budget"] is None)
    assert acc[-1] >= no_cap["accuracy"] - 1, (acc, no_cap["accuracy"])
    assert (demo_run / "eval" / "scaling.png").exists() and (demo_run / "eval" / "results.md").exists()


def test_one_forced_wait_beats_no_wait(demo_run):
    """Figure 4a's extrapolation: one forced Wait scores at least 3 points over the uncapped model left alone (the
    issue's goal is 5 on every seed; 3 leaves a margin for the one run here; docs/demo.md has the seed study)."""
    trained = {(r["method"], r["budget"]): r for r in _rows(demo_run) if r["model"] == "trained"}
    assert trained[("wait", 1)]["accuracy"] >= trained[("bf", None)]["accuracy"] + 3, \
        (trained[("wait", 1)]["accuracy"], trained[("bf", None)]["accuracy"])


def _trace_pool(size=4000):
    from s1.data.schema import record_metadata
    from s1.data.synthetic import generate_pool

    return [(rec, record_metadata(rec), rec["thinking_trajectories"][0].splitlines())
            for rec in generate_pool(size, seed=0, flaws=False)]


def test_traces_conclude_too_early_at_a_zero_near_the_end_at_about_the_configured_rate():
    from s1.data.synthetic import PREMATURE_LINES, PREMATURE_STOP

    decisions = stops = 0
    for rec, meta, lines in _trace_pool():
        if meta["mistake_fixed"]:
            continue     # a wrong digit and its inline fix: test_synthetic
        steps = [ln for ln in lines if ln[0].isdigit()]
        near_end_zeros = [ln for ln in steps if ln.endswith("=0") and int(ln.split(":")[0]) in PREMATURE_LINES]
        decisions += len(near_end_zeros)
        if meta["premature_stop"]:
            stops += 1
            assert lines[-1] == near_end_zeros[-1] and rec["attempt"].endswith("\\boxed{0}")   # ends at that 0
            assert len(steps) < meta["steps"]
    assert abs(stops / decisions - PREMATURE_STOP) < 0.05, (stops, decisions)


def test_text_after_wait_repairs_or_rechecks_never_invents_steps():
    """After a "Wait" on its own line: the next step of the chain (after a 0 near the end) or the last line again
    (a re-check after the end)."""
    from s1.data.synthetic import PREMATURE_LINES, solve

    seen = {"continues": 0, "rechecks": 0}
    for rec, meta, lines in _trace_pool(2000):
        if meta["mistake_fixed"]:
            continue     # the inline "Wait k:x+a=y" correction format is checked in test_synthetic
        digit, steps = solve(*_question_numbers(rec["question"]))
        for i, ln in enumerate(lines):
            if ln != "Wait":
                continue
            before, after = lines[i - 1], lines[i + 1:]
            if before.startswith("1:"):
                assert after[0] == steps[-1]
                seen["rechecks"] += 1
            else:
                k = int(before.split(":")[0])
                assert before.endswith("=0") and k in PREMATURE_LINES and after[0].startswith(f"{k - 1}:0")
                seen["continues"] += 1
        if not meta["premature_stop"]:
            assert [ln for ln in lines if ln != "Wait"][:len(steps)] == steps and str(digit) == rec["answer"]
    assert seen["continues"] > 20 and seen["rechecks"] > 100, seen


def _question_numbers(q: str):
    import re

    from s1.data.synthetic import TEMPLATES

    for template, op, _ in TEMPLATES:
        pattern = re.escape(template).replace(r"\{s\}", r"(?P<s>\d+)").replace(r"\{a\}", r"(?P<a>\d+)") \
            .replace(r"\{n\}", r"(?P<n>\d+)")
        m = re.fullmatch(pattern, q)
        if m:
            return int(m["s"]), int(m["a"]), int(m["n"]), op
    raise AssertionError(q)


def _generations(run):
    return [json.loads(line) for line in open(run / "eval" / "generations.jsonl")]


def test_forced_wait_table4_and_adaptive_are_measured_with_their_costs(demo_run):
    trained = {(r["method"], r["budget"]): r for r in _rows(demo_run) if r["model"] == "trained"}
    for key in [("wait", 1), ("wait", 2), ("wait", 4), ("adaptive", 4)] + \
               [("extrapolation_strings", s) for s in ("Wait", "Hmm", "Alternatively", "none")]:
        assert key in trained and trained[key]["questions"] == 300, key
    tokens = [trained[k]["avg_thinking_tokens"] for k in [("no_bf", None), ("wait", 1), ("wait", 2), ("wait", 4)]]
    assert tokens == sorted(tokens), tokens           # every forced Wait makes it think more
    # adaptive Wait stops forcing once its answer holds: it thinks less than Wait x2, peeks included (every run of
    # docs/demo.md's seed studies, on two CPUs: 2.1 to 6.6 tokens less)
    assert trained[("adaptive", 4)]["avg_thinking_tokens"] < trained[("wait", 2)]["avg_thinking_tokens"], \
        (trained[("adaptive", 4)]["avg_thinking_tokens"], trained[("wait", 2)]["avg_thinking_tokens"])
    adaptive = [g for g in _generations(demo_run) if g["method"] == "adaptive"]
    assert len(adaptive) == 300 and any(g["peek_tokens"] > 0 for g in adaptive)
    assert all(g["thinking_tokens"] >= g["peek_tokens"] for g in adaptive)   # its cost includes its peeks
    md = (demo_run / "eval" / "results.md").read_text()
    assert '| 2× "Hmm" |' in md and "adaptive" in md


def test_forced_wait_repairs_premature_conclusions(demo_run):
    """Where the trained model, left alone, concludes at an early 0 (a line k:x+a=0 with k > 1), one forced Wait
    makes it carry on, and it mostly reaches the right answer."""
    import re

    gens = {(g["question_id"], g["method"], g["budget"]): g for g in _generations(demo_run) if g["model"].startswith("trained")}
    early = re.compile(r"(?:^|\n)(\d+):\d\+\d=0\n<\|im_start\|>answer")
    premature = [q for (q, m, b), g in gens.items() if m == "no_bf" and (hit := early.search(g["text"]))
                 and hit.group(1) != "1"]
    assert len(premature) >= 15, len(premature)
    assert sum(gens[(q, "no_bf", None)]["correct"] for q in premature) < 0.2 * len(premature)
    repaired = sum(gens[(q, "wait", 1)]["correct"] for q in premature)
    assert repaired > 0.5 * len(premature), (repaired, len(premature))
