#!/usr/bin/env bash
# Installs missing dependencies, builds evit (Release) and runs the whole test suite.
# Usage: bash tools/run_tests.sh            (build directory: build/)
# The build is the CPU configuration unless EVIT_CUDA=ON (or AUTO) is set in the environment;
# CUDA's own checks are tools/cuda_build_check.sh (no GPU needed) and tools/gpu_check.sh.
# EVIT_WERROR=ON (as CI sets it) turns compiler warnings into errors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEVIT_CUDA="${EVIT_CUDA:-OFF}" -DEVIT_WERROR="${EVIT_WERROR:-OFF}"
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
