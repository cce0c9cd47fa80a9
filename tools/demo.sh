#!/usr/bin/env bash
# The main job. Until the trainer lands it builds evit and runs the op benchmark against PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target bench_ops
bash bench/run_op_bench.sh "$(nproc)"
