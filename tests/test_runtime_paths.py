"""One rule each: which names are local folders (train, curate, eval agree), and how launch lines are quoted."""

from __future__ import annotations

import os
import subprocess

import pytest

import s1.cluster.render
import s1.eval.checks
import s1.train.format
from s1.runtime import is_hub_id, looks_local
from s1.train.launch import render_command


@pytest.mark.parametrize("name,local", [
    ("Qwen/Qwen2.5-32B-Instruct", False), ("simplescaling/s1-32B", False), ("gpt2", False),
    ("./model", True), ("/abs/model", True), ("~/model", True), ("runs/demo/train/final", True),
    ("runs/final", True), (".cache/models/tiny-qwen2", True), ("a/b/c", True),
])
def test_one_rule_for_local_model_paths(name, local):
    assert looks_local(name) is local
    # eval used to have a rule of its own ("gpt2" was a missing folder there, a hub name in train)
    assert not hasattr(s1.eval.checks, "_looks_local") and s1.eval.checks.looks_local is looks_local
    # train's dataset rule is the same rule: a hub id is owner/name that looks_local does not claim
    assert s1.train.format.is_hub_id is is_hub_id
    assert is_hub_id(name) is (not local and name.count("/") == 1)


def test_one_quoting_rule_keeps_only_the_node_variables(tmp_path):
    assert not hasattr(s1.cluster.render, "quote_launch_arg")  # the Slurm renderer uses render_command too
    cmd = ["python", "--node_rank=$SLURM_NODEID", "--master_addr=$MASTER_ADDR", "--x=$HOME", f"{tmp_path}/a b",
           "$(touch PWNED)", "--master_port=$MASTER_PORT"]
    env = {**os.environ, "SLURM_NODEID": "3", "MASTER_ADDR": "node-1", "MASTER_PORT": "29511", "HOME": "/home/me"}
    printed = subprocess.run(["bash", "-c", f"printf '%s\\n' {render_command(cmd)}"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert printed == ["python", "--node_rank=3", "--master_addr=node-1", "--x=$HOME", f"{tmp_path}/a b",
                       "$(touch PWNED)", "--master_port=29511"]
    assert not (tmp_path / "PWNED").exists()
