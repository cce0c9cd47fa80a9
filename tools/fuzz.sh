#!/usr/bin/env bash
# Builds evit's libFuzzer targets (clang, AddressSanitizer + UndefinedBehaviorSanitizer) and runs
# one of them for a while.
#
#   bash tools/fuzz.sh TARGET SECONDS     TARGET: safetensors, png, jpeg, npy, config, label
#                                       or instances
#
# The corpus grows in build-fuzz/corpus/TARGET (kept between runs), seeded from the test files
# (tests/fuzz/seeds, tests/golden, configs/, and ../shared/data's small samples when present).
# A crash, leak or undefined behaviour stops the run and leaves the input in
# build-fuzz/crashes/TARGET-*: turn it into a regression test before fixing it.
# Images are decoded under a 512 x 512 pixel limit (EVIT_MAX_IMAGE_PIXELS), so that inputs claiming
# huge sizes are refused cheaply instead of slowing every execution.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: bash tools/fuzz.sh TARGET SECONDS (TARGET: safetensors, png, jpeg, npy, config, label, instances)" >&2
  exit 2
fi
target=$1
seconds=$2
build=build-fuzz
# Inputs are capped at max_len bytes: small inputs keep every execution fast (a million of them
# per target is the bar), and the seeds show every structure at that size.
case "$target" in
  safetensors) seeds=(tests/fuzz/seeds/safetensors/* tests/golden/optim.safetensors); max_len=4096 ;;
  png | label) seeds=(tests/fuzz/seeds/png/*); max_len=4096 ;;
  jpeg) seeds=(tests/fuzz/seeds/jpeg/*); max_len=4096 ;;
  npy) seeds=(tests/golden/npy/*); max_len=2048 ;;
  config) seeds=(configs/*.json); max_len=4096 ;;
  instances) seeds=(tests/fuzz/seeds/instances/*); max_len=4096 ;;
  *) echo "fuzz.sh: unknown target '$target' (safetensors, png, jpeg, npy, config, label, instances)" >&2; exit 2 ;;
esac
if [ -d ../shared/data ]; then
  case "$target" in
    png | label) mapfile -t -O "${#seeds[@]}" seeds < <(find ../shared/data -name '*.png' -size -4k) ;;
    jpeg) mapfile -t -O "${#seeds[@]}" seeds < <(find ../shared/data -name '*.jpg' -size -4k) ;;
  esac
fi

command -v clang++ > /dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 1; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DEVIT_FUZZ=ON -DEVIT_CUDA=OFF -DEVIT_BUILD_TESTS=OFF -DEVIT_BUILD_BENCH=OFF > /dev/null
cmake --build "$build" -j"$(nproc)" --target "fuzz_$target"

corpus="$build/corpus/$target"
mkdir -p "$corpus" "$build/crashes"
for f in "${seeds[@]}"; do
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -le "$max_len" ] && cp -n "$f" "$corpus/" || true
done
echo "fuzz.sh: fuzz_$target for $seconds s, corpus $corpus ($(ls "$corpus" | wc -l) inputs)"
log="$build/fuzz_$target.log"
set +e
EVIT_MAX_IMAGE_PIXELS=262144 OPENBLAS_NUM_THREADS=1 "$build/fuzz_$target" "$corpus" \
  -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$build/crashes/$target-" > "$log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  tail -n 60 "$log"
  echo "fuzz.sh: fuzz_$target FOUND A PROBLEM (exit $rc); the input is in $build/crashes/" >&2
  exit $rc
fi
grep -E "INITED|DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$log"
echo "fuzz.sh: fuzz_$target: no finding in $(grep -oP 'stat::number_of_executed_units: \K[0-9]+' "$log") executions"
