#!/usr/bin/env bash
# Installs missing dependencies, builds evit (Release) and runs the whole test suite.
# Usage: bash tools/run_tests.sh            (build directory: build/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
