#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, builds evit with CUDA for that GPU, runs every
# [cuda] test (each CUDA kernel against the CPU kernel), and benchmarks EfficientViT training
# steps and segmentation inference against PyTorch eager on the same GPU, in f32 and with mixed
# precision. Prints a short table last; the full log goes to gpu_check.log (or $1).
#
#   bash tools/gpu_check.sh [LOG]
#
# Needs nvcc, CMake, a C++20 host compiler and a python3 with CUDA PyTorch. The libraries evit
# links (OpenBLAS, libpng, libjpeg, and the header-only JSON/CLI/Catch2) come from the system, or,
# on a machine without them and without network, from the .deb files tools/gpu_deps.sh put in
# .gpu_deps/, unpacked into a private prefix. Designed to finish in under 8 minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
log=${1:-gpu_check.log}
exec > >(tee "$log") 2>&1
start=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }
status=0

stage "GPU"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv || { echo "no GPU"; exit 1; }
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
nvcc --version | tail -1

stage "dependencies"
prefix_args=()
if ls .gpu_deps/*.deb >/dev/null 2>&1; then
  deps=/tmp/evit-deps
  mkdir -p "$deps"
  for f in .gpu_deps/*.deb; do dpkg-deb -x "$f" "$deps" 2>/dev/null || dpkg -x "$f" "$deps"; done
  libdir=$deps/usr/lib/x86_64-linux-gnu
  # Debian points libopenblas.so at the pthread variant through alternatives; do it by hand.
  ln -sf openblas-pthread/libopenblas.so "$libdir/libopenblas.so"
  ln -sf openblas-pthread/libopenblas.so.0 "$libdir/libopenblas.so.0"
  export LD_LIBRARY_PATH=$libdir:$libdir/openblas-pthread:${LD_LIBRARY_PATH:-}
  prefix_args=(-DCMAKE_PREFIX_PATH="$deps/usr" -DCMAKE_INCLUDE_PATH="$deps/usr/include")
  echo "using the unpacked packages in $deps"
else
  echo "using the system's libraries"
fi

stage "build (CUDA arch $arch)"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEVIT_CUDA=ON -DEVIT_CUDA_ARCHS="$arch" \
  "${prefix_args[@]}" > build-gpu.configure.log 2>&1 || { cat build-gpu.configure.log; exit 1; }
grep -E "CUDA backend" build-gpu.configure.log
# An old binary must never stand in for a failed build: remove them first, and fail on the
# build's own exit status.
rm -f build-gpu/evit_tests build-gpu/bench_models build-gpu/evit
cmake --build build-gpu -j"$(nproc)" --target evit_tests bench_models evit > build-gpu.build.log 2>&1
build_rc=$?
grep -E "error|warning: .*cu|Error" build-gpu.build.log | head -50
if [ $build_rc -ne 0 ] || [ ! -x build-gpu/evit_tests ] || [ ! -x build-gpu/bench_models ]; then
  tail -30 build-gpu.build.log
  echo "gpu_check: FAILED: the CUDA build failed (exit $build_rc; full log build-gpu.build.log)"
  exit 1
fi

stage "CUDA tests"
timeout 300 ./build-gpu/evit_tests "[cuda]" --durations yes > cuda_tests.log 2>&1
tests_rc=$?
grep -E "^[0-9.]+ s: " cuda_tests.log | sort -rn | head -5
grep -E -B3 -A12 "FAILED|REQUIRE|CHECK\(" cuda_tests.log | head -150
tail -3 cuda_tests.log
[ $tests_rc -eq 0 ] || status=1
timeout 120 ./build-gpu/evit_tests "[cuda_backend],[half],[autocast]" | tail -2 || status=1

stage "data-parallel training on the GPU: 1, 2 and 4 ranks bitwise (MPI, host-staged gradients)"
if command -v mpirun >/dev/null && grep -q "distributed training over MPI ON" build-gpu.configure.log; then
  DIST_DEVICE=cuda DIST_QUICK=1 timeout 180 bash tests/dist/dist_checks.sh build-gpu/evit build-gpu/evit_tests \
    "$(command -v mpirun)" /tmp/evit_dist_gpu > dist_gpu.log 2>&1 || status=1
  grep -E "FAIL|bitwise|passed" dist_gpu.log || tail -20 dist_gpu.log
else
  echo "no MPI on this machine (mpirun and libopenmpi-dev): data-parallel GPU check NOT run"
fi

stage "benchmarks: evit vs PyTorch eager"
py=python3
$py -c "import torch; assert torch.cuda.is_available()" || { echo "no CUDA PyTorch: benchmarks skipped"; exit 1; }
torch_version=$($py -c "import torch; print(torch.__version__)")
tables=()
for amp in off f16; do
  e=bench_evit_$amp.jsonl
  t=bench_torch_$amp.jsonl
  timeout 240 ./build-gpu/bench_models --device cuda --amp $amp > "$e" || status=1
  timeout 240 $py bench/models_torch.py "$(nproc)" --device cuda --amp $amp > "$t" || status=1
  tables+=("$($py bench/print_table.py "$e" "$t" "gpu" "$torch_version" \
              "CUDA, amp=$amp; training: forward + cross-entropy + backward + AdamW")")
done

stage "summary"
echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); CUDA tests: $(tail -2 cuda_tests.log | head -1)"
for t in "${tables[@]}"; do echo; echo "$t"; done
echo
echo "gpu_check: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s; full log: $log"
exit $status
