"""lm-evaluation-harness with the project's budget forcing: importing this registers the harness model `s1`.

    import s1.lm_eval, lm_eval
    lm_eval.simple_evaluate(model="s1", model_args="pretrained=DIR,backend=transformers", tasks=["aime24_nofigures"],
                            task_manager=lm_eval.tasks.TaskManager(include_path=s1.lm_eval.TASKS_DIR), ...)

    python -m s1.lm_eval --model s1 --model_args pretrained=DIR --tasks aime24_nofigures \
        --include_path s1/lm_eval/tasks --apply_chat_template --gen_kwargs max_gen_toks=32768,max_tokens_thinking=auto

See docs/lm-eval.md.
"""

from __future__ import annotations

from pathlib import Path

# The harness fills its model registry from this module only while the registry is empty: registering `s1` first
# would leave `s1` the only model (`--model hf` or `local-completions` then "not found" in the same process).
import lm_eval.models  # noqa: F401

from s1.lm_eval.model import S1LM

TASKS_DIR = str(Path(__file__).resolve().parent / "tasks")   # offline task YAMLs for --include_path

__all__ = ["S1LM", "TASKS_DIR"]
