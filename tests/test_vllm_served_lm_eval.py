"""lm-evaluation-harness's own `local-completions` against the budget-forcing server (`python -m s1.infer.vllm_serve`)
gives the samples of `--model s1 --model_args backend=vllm`. Under `make test-vllm`; a file of its own so that its
pytest process holds no other in-process vLLM engines (vLLM on a CPU refuses to start a server whose KV cache does not
fit in the node's free memory)."""

from __future__ import annotations

import json

import pytest
from conftest import requires
from test_vllm import QUESTIONS, REAL_MODEL, _serving, needs_vllm

pytestmark = [needs_vllm, pytest.mark.slow]


SIMPLE_TASK = """# three short questions (the real 0.5B ends its thinking on them before the cap, so a Wait acts)
task: {task}
custom_dataset: !function simple_utils.load
output_type: generate_until
test_split: test
doc_to_text: !function simple_utils.{text}
doc_to_target: answer
process_results: !function simple_utils.process_results
generation_kwargs:
  until: []
  do_sample: false
  temperature: 0
  max_gen_toks: {max_gen}
{xargs}metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
  - metric: extracted_answers
    aggregation: bypass
    higher_is_better: true
"""
SIMPLE_UTILS = """import json, pathlib
import datasets
from s1.lm_eval.tasks import utils as base
HERE = pathlib.Path(__file__).parent
HEAD, TAIL = json.loads((HERE / "chat.json").read_text())
def load(**_):
    return {"test": datasets.Dataset.from_list(json.loads((HERE / "docs.json").read_text()))}
def question(doc):
    return doc["problem"]
def served_prompt(doc):          # what --model s1 sends: the chat template, the question, the think prefix
    return HEAD + doc["problem"] + TAIL
def process_results(doc, results):
    return base.process_results_math(doc, results)
"""


@requires("real-model", None if (REAL_MODEL / "s1_real_model.json").exists()
          else f"the real Qwen2.5 0.5B is not at {REAL_MODEL}: run `make real-model`")
def test_lm_eval_local_completions_against_the_server_equals_the_s1_model(tmp_path):
    """lm-evaluation-harness's own `local-completions` pointed at `python -m s1.infer.vllm_serve`, budget forcing
    asked by the task's generation_kwargs (`vllm_xargs`), gives the samples of `--model s1 --model_args
    backend=vllm` with the release's gen_kwargs: the same prompt, text (the think prefix ends the served prompt),
    extracted answer and score. The real 0.5B ends its thinking at end of turn on these questions, so the Wait acts."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    from test_lm_eval import THINK, _evaluate

    from s1.lm_eval import S1LM, TASKS_DIR

    cap, max_gen = 24, 48
    lm = S1LM(pretrained=str(REAL_MODEL), backend="vllm", dtype="float32", max_model_len=2048, batch_size=3)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    docs = [{"id": f"q{i}", "problem": q, "answer": a, "multiple_choice": False}
            for i, (q, a) in enumerate(zip(QUESTIONS, ("5", "51", "No")))]
    (tasks / "docs.json").write_text(json.dumps(docs))
    marker = "\x00QUESTION\x00"
    head, tail = lm.apply_chat_template([{"role": "user", "content": marker}]).split(marker)
    (tasks / "chat.json").write_text(json.dumps([head, tail + THINK]))
    (tasks / "simple_utils.py").write_text(SIMPLE_UTILS)
    xargs = f"  vllm_xargs: {{max_thinking_tokens: {cap}, num_waits: 1, wait_string: Wait}}\n"
    (tasks / "simple.yaml").write_text(SIMPLE_TASK.format(task="simple", text="question", max_gen=max_gen, xargs=""))
    (tasks / "simple_served.yaml").write_text(
        SIMPLE_TASK.format(task="simple_served", text="served_prompt", max_gen=max_gen, xargs=xargs))
    ours = _evaluate(lm, f"max_gen_toks={max_gen},max_tokens_thinking={cap},thinking_n_ignore=1,"
                         "thinking_n_ignore_str=Wait", tasks=("simple",), include=tasks, limit=None)
    assert 1 in {r.waits_used for r in lm.last_results}, "the Wait never acted: the comparison would show too little"
    with _serving(REAL_MODEL, "real") as port:
        served = lm_eval.simple_evaluate(
            model="local-completions", tasks=["simple_served"], log_samples=True,
            task_manager=TaskManager(include_path=[TASKS_DIR, str(tasks)]),
            model_args=f"base_url=http://127.0.0.1:{port}/v1/completions,model=real,tokenizer_backend=huggingface,"
                       f"tokenizer={REAL_MODEL},num_concurrent=1,max_retries=1")
    a, b = ours["samples"]["simple"], served["samples"]["simple_served"]
    assert [s["doc"]["id"] for s in a] == [s["doc"]["id"] for s in b] == ["q0", "q1", "q2"]
    for x, y in zip(a, b):
        assert x["arguments"][0][0] + THINK == y["arguments"][0][0]                 # the same prompt
        assert x["resps"][0][0] == THINK + y["resps"][0][0]
        assert (x["exact_match"], x["extracted_answers"]) == (y["exact_match"], y["extracted_answers"])
