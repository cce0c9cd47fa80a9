#!/usr/bin/env bash
# Runs every graph of the ONNX tests in ONNX Runtime and compares it with evit's forward
# (tools/reference/check_onnx.py --check), from a throwaway virtual environment with onnxruntime
# and numpy from PyPI. Where PyPI cannot be reached, or the build has no ONNX export, it says so
# and checks nothing; the C++ tests still compare evit with the committed ONNX Runtime goldens.
#   bash tools/onnx_runtime_check.sh [BUILD_DIR]     (default build/, already built)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
# (Catch exits with the number of tests listed.)
tests=$("$build/evit_tests" --list-test-names-only "[onnx]" || true)
if [[ "$tests" != *"ONNX Runtime running"* ]]; then
  echo "onnx_runtime_check: $build has no ONNX export (libonnx-dev missing at configure time); nothing to run"
  exit 0
fi
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
if ! timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check onnxruntime numpy >"$venv/pip.log" 2>&1; then
  echo "onnx_runtime_check: could not install onnxruntime from PyPI (offline?); ONNX Runtime not run:"
  tail -n 3 "$venv/pip.log"
  exit 0
fi
"$venv/bin/python" tools/reference/check_onnx.py --check "$build"
