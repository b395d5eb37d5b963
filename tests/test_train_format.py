"""The s1 chat format and the label mask, checked on a batch collated by TRL itself."""

from __future__ import annotations

import json

import pytest

from s1.data.schema import make_record
from s1.data.synthetic import generate_pool
from s1.runtime import ConfigError
from s1.tiny_model import QWEN_SYSTEM_PROMPT
from s1.train.format import build_examples, completion_text, load_records


def s1k_records(n: int = 6) -> list[dict]:
    recs = list(generate_pool(n, seed=3, flaws=False))
    recs.append(make_record(
        "Find $x$ if $2x + 3 = 11$.", source="MATH", answer="4", solution="$x=4$",
        thinking_trajectories=["Subtract 3: $2x = 8$.\nDivide by 2: $x = 4$.", "an unused second trace"],
        attempt="Subtracting 3 and halving gives $\\boxed{4}$.",
    ))
    return recs


def test_sequence_is_the_papers_format(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rec = s1k_records()[-1]
    [ex], _ = build_examples([rec], tok, block_size=1024)
    expected = (
        f"<|im_start|>system\n{QWEN_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n{rec['question']}<|im_end|>\n"
        f"<|im_start|>assistant\n<|im_start|>think\n{rec['thinking_trajectories'][0]}\n"
        f"<|im_start|>answer\nAnswer: {rec['attempt']}<|im_end|>"
    )
    assert ex["prompt"] + ex["completion"] == expected


def test_training_text_follows_the_releases_tokenization_on_an_s1k_1_1_record(tiny_model_dir):
    """data/tokenization.py (simplescaling/s1@77272c6): "Answer: " + attempt only when the attempt has no "Answer:",
    thinking and answer stripped. On a released s1K-1.1 record (fixture) whose attempt ends "Final Answer: The final
    answer is $\\boxed{373}$", the release writes the attempt as it is; the old text (always_label) wrote
    "Answer: 373..." before it, so the sequence said Answer twice."""
    import pyarrow.parquet as pq
    from conftest import REPO
    from transformers import AutoTokenizer

    rec = pq.read_table(REPO / "data" / "fixtures" / "s1k_1.1_sample.parquet").to_pylist()[0]
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    cols = ("deepseek_thinking_trajectory", "deepseek_attempt")
    [new], _ = build_examples([rec], tok, 8192, *cols)
    [old], _ = build_examples([rec], tok, 8192, *cols, text_format="always_label")
    think, attempt = rec[cols[0]], rec[cols[1]]
    assert "Answer:" in attempt
    assert new["completion"] == ("<|im_start|>think\n" + think.strip() + "\n<|im_start|>answer\n" + attempt.strip()
                                 + "<|im_end|>")                                   # tokenization.py's assistant text
    assert old["completion"].endswith("<|im_start|>answer\nAnswer: " + attempt + "<|im_end|>")
    # a bare attempt gets the label, then the whole answer is stripped (as the release: "Answer: " + " 4 " keeps the
    # inner space)
    assert completion_text(" x ", " 4 ").endswith("think\nx\n<|im_start|>answer\nAnswer:  4<|im_end|>")


def test_collated_labels_are_exactly_the_assistant_turn(tiny_model_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    records = s1k_records()
    examples, _ = build_examples(records, tok, block_size=1024)
    args = SFTConfig(output_dir=str(tmp_path), max_length=1024, completion_only_loss=True, eos_token="<|im_end|>",
                     per_device_train_batch_size=4, report_to=[], use_cpu=True)
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args, processing_class=tok,
                         train_dataset=Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]}
                                                          for e in examples]))
    rows = [trainer.train_dataset[i] for i in range(len(examples))]
    batch = trainer.data_collator(rows)  # padded like a real training batch
    for i, (rec, ex) in enumerate(zip(records, examples)):
        ids, labels, attn = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        trained = tok.decode(ids[labels != -100])
        assert trained == completion_text(rec["thinking_trajectories"][0], rec["attempt"])
        label = "" if "Answer:" in rec["attempt"] else "Answer: "   # the release labels only unlabelled attempts
        assert trained.endswith("<|im_start|>answer\n" + label + rec["attempt"] + "<|im_end|>")
        assert tok.decode(ids[(labels == -100) & (attn == 1)]) == ex["prompt"]  # everything else is the prompt
        assert (labels[attn == 0] == -100).all()  # padding never trains


def test_truncation_is_counted_and_prompt_only_samples_are_reported(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    records = s1k_records(20)
    records.append(make_record("word " * 300, source="MATH", answer="1", thinking_trajectories=["t"], attempt="1"))
    _, report = build_examples(records, tok, block_size=100)  # prompts are ~60 tokens
    assert report["kept"] + report["dropped_no_trainable_tokens"] == report["records"] == len(records)
    assert report["dropped_no_trainable_tokens"] == 1 and report["dropped"][0]["id"] == records[-1]["id"]
    assert 0 < report["truncated_at_block_size"] <= report["kept"]
    assert report["max_tokens"] == 100
    assert report["trainable_tokens"] > 0


def test_empty_trace_is_an_error_naming_the_record(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    bad = make_record("What is 1+1?", source="MATH", answer="2", thinking_trajectories=[""], attempt="2")
    with pytest.raises(ConfigError) as e:
        build_examples(s1k_records(2) + [bad], tok, block_size=256)
    assert f"record 3 (id={bad['id']})" in str(e.value) and "thinking_trajectories[0] is empty" in str(e.value)


def test_missing_or_broken_dataset_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"train.dataset=.*make curate"):
        load_records(tmp_path / "nope.jsonl")
    path = tmp_path / "s1k.jsonl"
    path.write_text(json.dumps(s1k_records(1)[0]) + "\n{broken\n")
    with pytest.raises(ConfigError, match=r"s1k.jsonl:2.*not valid JSON"):
        load_records(path)


def test_save_to_disk_folder_loads_like_jsonl(tmp_path):
    from datasets import Dataset

    records = s1k_records(3)
    Dataset.from_list(records).save_to_disk(str(tmp_path / "s1k"))
    assert load_records(tmp_path / "s1k") == records
