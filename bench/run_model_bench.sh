#!/usr/bin/env bash
# Times EfficientViT inference and training steps in evit and in PyTorch (the reference models of
# tools/reference/efficientvit_ref.py) on this machine, same threads, and prints the table of
# medians and ratios (evit / PyTorch).
# Each case runs in its own process, evit's and PyTorch's in turn, for ROUNDS rounds (default 3):
# the two sides see the same machine state within a round, so the machine's drift (a shared
# machine's speed moves 10-30% in minutes) moves both, and a case's memory figure is never
# lowered by an earlier case's cached blocks. A time is the median over the rounds of each
# process's median; a ratio the median of the rounds' ratios.
# Usage: bash bench/run_model_bench.sh [threads] [case: exact name or substring]
#        (PYTHON=... picks the torch; ROUNDS=1 for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/alternate.sh
threads=${1:-$(nproc)}
only=${2:-}
rounds=${ROUNDS:-3}
choose_python
load_cases bench_models "$only"
# The GEMM peak case always runs (seconds): the table's "% of peak" columns come from it.
mapfile -t peak < <(./build/bench_models --list "gemm peak")
[[ " ${cases[*]} " == *" ${peak[0]} "* ]] || cases+=("${peak[@]}")
out=$(mktemp -d)
run_alternating ./build/bench_models bench/models_torch.py "$threads" "$rounds" "$out" "${cases[@]}"
print_results "$out" "$threads" \
  "inference: eval, no grad; training step: forward + cross-entropy + backward + AdamW; SAM: the image encoder alone, distill step = MSE to a random embedding + backward + AdamW"
