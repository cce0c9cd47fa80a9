#!/usr/bin/env bash
# Compiles the CUDA backend (every .cu file, linked into the library, the tests, the CLI and the
# benchmarks) so the kernels cannot rot on machines without a GPU, then runs the tests of that
# build that need no GPU: 16-bit conversions, autocast, the error a GPU-less machine gives, and
# that every declared CUDA kernel slot is filled. The [cuda] tests themselves need a GPU
# (tools/gpu_check.sh).
#   bash tools/cuda_build_check.sh [ARCHS]      (default 90: H100/H200)
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${1:-90}
nvcc_bin=$(command -v nvcc || true)
[ -z "$nvcc_bin" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc_bin=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc_bin" ]; then
  echo "cuda_build_check: no CUDA toolkit (nvcc) on this machine; the CUDA build was NOT checked"
  exit 1
fi
echo "cuda_build_check: $("$nvcc_bin" --version | tail -1), archs $archs"
cmake -S . -B build-cuda -DEVIT_CUDA=ON -DEVIT_CUDA_ARCHS="$archs" -DCMAKE_CUDA_COMPILER="$nvcc_bin" >/dev/null
cmake --build build-cuda -j"$(nproc)"
./build-cuda/evit_tests "[cuda_backend],[half],[autocast]"
