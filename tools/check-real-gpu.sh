#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: read it through the NVML engine (and the DCGM engine when DCGM's bindings
# and a hostengine are installed) and compare every reading with nvidia-smi. Prints a dated Markdown table;
# append it to docs/real-gpu.md:   tools/check-real-gpu.sh | tee -a docs/real-gpu.md
# Needs nvidia-smi and nvidia-ml-py (installed into .venv if missing). DCGM: set DCGM_PYTHON_BINDINGS and,
# for a running nv-hostengine, DCGM_REMOTE_HOSTENGINE_INFO=localhost:5555 (else an embedded hostengine).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "check-real-gpu: nvidia-smi not found: run this on a machine with an NVIDIA GPU and its driver" >&2
    exit 2
fi
if [ ! -x "$PY" ]; then
    make .venv/.run-installed >/dev/null
fi
if ! "$PY" -c "import pynvml" 2>/dev/null; then
    "$PY" -m pip install --quiet 'nvidia-ml-py>=12.535'
fi
exec "$PY" tools/check_real_gpu.py "$@"
