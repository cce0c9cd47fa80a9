#!/usr/bin/env bash
# Times forward+backward of EfficientViT's hot ops in evit and PyTorch on this machine, same
# threads, and prints the table of medians and ratios (evit / PyTorch).
# Each case runs in its own process, evit's and PyTorch's in turn, for ROUNDS rounds (default 3),
# so the machine's drift moves both sides alike; a time is the median over the rounds, a ratio
# the median of the rounds' ratios (bench/print_table.py).
# Usage: bash bench/run_op_bench.sh [threads] [case: exact name or substring]
#        (PYTHON=... picks the interpreter with torch; ROUNDS=1 for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/alternate.sh
threads=${1:-$(nproc)}
only=${2:-}
rounds=${ROUNDS:-3}
choose_python
load_cases bench_ops "$only"
out=$(mktemp -d)
run_alternating ./build/bench_ops bench/ops_torch.py "$threads" "$rounds" "$out" "${cases[@]}"
print_results "$out" "$threads"
