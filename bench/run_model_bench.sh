#!/usr/bin/env bash
# Times EfficientViT inference and training steps in evit and in PyTorch (the reference models of
# tools/reference/efficientvit_ref.py) on this machine, same threads, one run, and prints the
# table of medians and ratios (evit / PyTorch).
# Usage: bash bench/run_model_bench.sh [threads] [case substring]   (PYTHON=... picks the torch)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
only=${2:-}
if [ -z "${PYTHON:-}" ]; then
  if python3 -c "import torch" 2>/dev/null; then PYTHON=python3; else PYTHON=/usr/bin/python3; fi
fi
[ -x build/bench_models ] || { cmake -S . -B build -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null && cmake --build build -j"$(nproc)" --target bench_models; }
out=$(mktemp -d)
EVIT_NUM_THREADS=$threads ./build/bench_models "$only" > "$out/evit.jsonl"
OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=$threads \
MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456 \
  "$PYTHON" bench/models_torch.py "$threads" $only > "$out/torch.jsonl"
torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)")
"$PYTHON" bench/print_table.py "$out/evit.jsonl" "$out/torch.jsonl" "$threads" "$torch_version" \
  "inference: eval, no grad; training step: forward + cross-entropy + backward + AdamW; SAM: the image encoder alone, distill step = MSE to a random embedding + backward + AdamW"
rm -rf "$out"
