#!/usr/bin/env bash
# Where a segmentation model's inference goes, part by part (input stem, each backbone stage, the
# head), in evit and in PyTorch on this machine, same threads: the table of medians and ratios.
# Each case runs in its own process, evit's and PyTorch's in turn, for ROUNDS rounds (default 3),
# as bench/run_model_bench.sh does.
# Usage: bash bench/run_stage_bench.sh [threads] [case: "seg-b0", "seg-b1" or an exact name]
#        (PYTHON=... picks the torch)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/alternate.sh
threads=${1:-$(nproc)}
only=${2:-seg-b0}
rounds=${ROUNDS:-3}
choose_python
load_cases bench_stages "$only"
out=$(mktemp -d)
run_alternating ./build/bench_stages bench/stages_torch.py "$threads" "$rounds" "$out" "${cases[@]}"
print_results "$out" "$threads" \
  "inference, eval, no grad, parts timed inside one pass"
