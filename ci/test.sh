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
# DLC pins pandas < 3: a small side interpreter with pandas 2 lets the suite check that
# files mapose writes (under pandas 3) load there.
PD2="${VENV}-pandas2"
[ -x "$PD2/bin/python" ] || "$PY" -m venv "$PD2"
"$PD2/bin/python" -m pip install -q "pandas>=2,<3" tables numpy
export MAPOSE_PANDAS2_PYTHON="$(cd "$PD2" && pwd)/bin/python"
# pytest's own exit code is the script's exit code: 5 ("no tests ran") fails CI too.
exec "$VPY" -m pytest "$@"
