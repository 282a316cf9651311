#!/usr/bin/env bash
# Set up a virtual environment from the project's own files and run the test suite.
# This is the README's test command; .ci/run calls it.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${MAPOSE_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
"$VPY" -m pip install -q --upgrade pip
# CPU build of torch (an unpinned 'torch' would pull a multi-GB CUDA build).
"$VPY" -m pip install -q "torch==2.13.0"
"$VPY" -m pip install -q -e ".[test,onnx,gui,dask,eval]"
# pytest's own exit code is the script's exit code: 5 ("no tests ran") fails CI too.
exec "$VPY" -m pytest "$@"
