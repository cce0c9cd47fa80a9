#!/usr/bin/env bash
# Times forward+backward of EfficientViT's hot ops in evit and PyTorch on this machine, same
# threads, one run, and prints the table of medians and ratios (evit / PyTorch).
# Usage: bash bench/run_op_bench.sh [threads]   (PYTHON=... picks the interpreter with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
if [ -z "${PYTHON:-}" ]; then
  if python3 -c "import torch" 2>/dev/null; then PYTHON=python3; else PYTHON=/usr/bin/python3; fi
fi
[ -x build/bench_ops ] || { cmake -S . -B build -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null && cmake --build build -j"$(nproc)" --target bench_ops; }
out=$(mktemp -d)
EVIT_NUM_THREADS=$threads ./build/bench_ops > "$out/evit.jsonl"
# Fair PyTorch settings (docs/performance.md): OpenMP threads = ours, no extra OpenBLAS threads,
# and glibc keeping freed memory (PyTorch has no caching CPU allocator).
OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=$threads \
MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456 \
  "$PYTHON" bench/ops_torch.py "$threads" > "$out/torch.jsonl"
torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)")
"$PYTHON" bench/print_table.py "$out/evit.jsonl" "$out/torch.jsonl" "$threads" "$torch_version"
rm -rf "$out"
