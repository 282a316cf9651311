#!/usr/bin/env bash
# Build sdist + wheel, install the wheel into a fresh virtualenv and run the smoke tests
# against the INSTALLED package (not the source tree), so a broken package layout
# (missing extension, data file or subpackage) fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PY" -m venv "$WORK/build-env"
"$WORK/build-env/bin/python" -m pip install -q --upgrade pip build
"$WORK/build-env/bin/python" -m build --sdist --wheel --outdir "$WORK/dist" "$ROOT"
ls -l "$WORK/dist"

# The wheel must be built from the sdist's content too: check the sdist carries csrc/.
tar -tzf "$WORK"/dist/*.tar.gz > "$WORK/sdist.txt"
grep -q "csrc/lsap.h" "$WORK/sdist.txt" || { echo "sdist lacks csrc/"; exit 1; }

"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q --upgrade pip
"$VPY" -m pip install -q "$(ls "$WORK"/dist/*.whl)[test]"
# Copy only the tests, run from an empty folder: 'import mapose' must hit site-packages.
cp -r "$ROOT/tests" "$WORK/tests"
cp "$ROOT/pyproject.toml" "$WORK/pyproject.toml"  # pytest config (markers, strictness) only
cd "$WORK"
"$VPY" - <<'PY'
import mapose, pathlib
p = pathlib.Path(mapose.__file__)
assert "site-packages" in str(p), f"tests would run against the source tree: {p}"
print("installed mapose at", p.parent)
PY
MAPOSE_SHARED_DATA="${MAPOSE_SHARED_DATA:-$ROOT/../shared/data}" \
    "$VPY" -m pytest -m smoke -p no:cacheprovider -q "$WORK/tests"
