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
if [ -z "${PYTHON:-}" ]; then
  if python3 -c "import torch" 2>/dev/null; then PYTHON=python3; else PYTHON=/usr/bin/python3; fi
fi
[ -x build/bench_ops ] || { cmake -S . -B build -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null && cmake --build build -j"$(nproc)" --target bench_ops; }
mapfile -t cases < <(./build/bench_ops --list "$only")
[ ${#cases[@]} -gt 0 ] || { echo "no case matches '$only'" >&2; exit 2; }
out=$(mktemp -d)
run_alternating ./build/bench_ops bench/ops_torch.py "$threads" "$rounds" "$out" "${cases[@]}"
torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)")
"$PYTHON" bench/print_table.py "$out/evit.jsonl" "$out/torch.jsonl" "$threads" "$torch_version"
rm -rf "$out"
