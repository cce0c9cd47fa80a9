#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU, builds evit with CUDA for that GPU (or uses
# binaries built from this very tree by `tools/gpu_check.sh --prebuild`), runs every [cuda] test
# (each CUDA kernel against the CPU kernel) as its own process under a time limit, benchmarks
# EfficientViT training steps, segmentation and SAM-encoder inference against PyTorch eager on
# the same GPU in f32 and bf16 autocast with a kernel profile of each evit case, and trains the
# demo segmentation config on the GPU. Prints a short summary last.
#
#   bash tools/gpu_check.sh [LOG_DIR]        the check (logs: LOG_DIR, default gpu_check_logs)
#   bash tools/gpu_check.sh --prebuild       here, without a GPU: build the binaries into .gpu_bin/
#
# Needs nvcc, CMake, a C++20 host compiler and a python3 with CUDA PyTorch. The libraries evit
# links (OpenBLAS, libpng, libjpeg, and the header-only JSON/CLI/Catch2) come from the system, or,
# on a machine without them and without network, from the .deb files tools/gpu_deps.sh put in
# .gpu_deps/, unpacked into a private prefix. GPU_CHECK_BUDGET (seconds, default 480) bounds the
# whole run: a stage that would start past it is skipped and reported as skipped.
# GPU_CHECK_STAGES (default "tests dist bench train") picks the stages after the build.
set -uo pipefail
cd "$(dirname "$0")/.."

# A fingerprint of every source file the binaries are built from: prebuilt binaries are used
# only when it matches, so a stale build can never stand in for the tree under test.
source_fingerprint() {
  find CMakeLists.txt cmake core autograd ops nn zoo optim data train tools bench tests \
    -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.txt' -o -name '*.cmake' -o -name '*.in' \) \
    | LC_ALL=C sort | xargs sha1sum | sha1sum | cut -d' ' -f1
}
# MPI when the machine has it (the data-parallel GPU check); no oneDNN or ONNX: the GPU machine
# has neither, and neither changes the GPU's work.
configure_args=(-DCMAKE_BUILD_TYPE=Release -DEVIT_CUDA=ON -DEVIT_DIST=AUTO -DEVIT_ONEDNN=OFF -DEVIT_ONNX=OFF)
targets=(evit_tests bench_models evit)

if [ "${1:-}" = "--prebuild" ]; then
  # Hopper (H100/H200) by default; GPU_ARCH=80 for an A100.
  set -e
  grep -qx '/.gpu_bin/' .git/info/exclude 2>/dev/null || echo '/.gpu_bin/' >> .git/info/exclude
  cmake -S . -B build-gpu "${configure_args[@]}" -DEVIT_CUDA_ARCHS="${GPU_ARCH:-90}" >/dev/null
  cmake --build build-gpu -j"$(nproc)" --target "${targets[@]}"
  # Stripped and compressed: the GPU machine gets the working tree and these within a size limit.
  rm -rf .gpu_bin && mkdir -p .gpu_bin/stage
  for t in "${targets[@]}"; do strip -o ".gpu_bin/stage/$t" "build-gpu/$t"; done
  tar -C .gpu_bin/stage -cJf .gpu_bin/binaries.tar.xz "${targets[@]}"
  rm -rf .gpu_bin/stage
  echo "${GPU_ARCH:-90} $(source_fingerprint)" > .gpu_bin/SOURCE
  du -sh .gpu_bin
  exit 0
fi

logs=${1:-gpu_check_logs}
mkdir -p "$logs"
exec > >(tee "$logs/gpu_check.log") 2>&1
start=$(date +%s)
budget=${GPU_CHECK_BUDGET:-480}
elapsed() { echo $(( $(date +%s) - start )); }
stage() { echo; echo "=== $* ($(elapsed) s)"; }
# True when `need` seconds still fit in the budget; says so when they do not.
fits() {
  if [ $(( $(elapsed) + $1 )) -gt "$budget" ]; then echo "SKIPPED: $2 (would pass the ${budget} s budget)"; return 1; fi
}
status=0
summary=()
stages=" ${GPU_CHECK_STAGES:-tests dist bench train} "
wanted() { [[ $stages == *" $1 "* ]] || { echo "(stage '$1' not asked for: GPU_CHECK_STAGES=$stages)"; return 1; }; }

stage "GPU"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv || { echo "no GPU"; exit 1; }
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')
nvcc --version | tail -1
grep -E "^(PRETTY_NAME)" /etc/os-release; ldd --version | head -1

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
# The CUDA runtime and cuBLAS: the toolkit's, else the ones PyTorch's wheels ship.
for d in /usr/local/cuda/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c "import nvidia, os; print(' '.join(os.path.join(p, q, 'lib') for p in nvidia.__path__ for q in ('cu13', 'cublas')))" 2>/dev/null); do
  [ -e "$d/libcublas.so.13" ] && { export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d; echo "CUDA libraries from $d"; break; }
done
# NCCL (the data-parallel GPU transport): the toolkit's, else the one PyTorch's wheels ship, which
# a build here is pointed at too (it has no unversioned libnccl.so for CMake to find by name).
nccl_args=()
for d in /usr/local/cuda/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c "import nvidia, os; print(' '.join(os.path.join(p, 'nccl', 'lib') for p in nvidia.__path__))" 2>/dev/null); do
  if [ -e "$d/libnccl.so.2" ]; then
    [[ ":$LD_LIBRARY_PATH:" == *":$d:"* ]] || export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d
    [ -e "$d/../include/nccl.h" ] && nccl_args=(-DNCCL_INCLUDE_DIR="$d/../include" -DNCCL_LIBRARY="$d/libnccl.so.2")
    echo "NCCL from $d"
    break
  fi
done

bin=build-gpu
prebuilt=/tmp/evit-bin
if [ -f .gpu_bin/SOURCE ] && [ "$(cat .gpu_bin/SOURCE)" = "$arch $(source_fingerprint)" ]; then
  rm -rf $prebuilt && mkdir -p $prebuilt
  tar -C $prebuilt -xJf .gpu_bin/binaries.tar.xz 2>/dev/null ||
    python3 -c "import tarfile; tarfile.open('.gpu_bin/binaries.tar.xz').extractall('$prebuilt')"
fi
# (Catch2's list commands exit with the number listed: look at their output, not their status.)
runs() { local out; out=$("$@" 2>&1); [[ $out == *CUDA* || $out == *Usage* ]]; }
if [ -x $prebuilt/evit_tests ] && runs $prebuilt/evit_tests --list-test-names-only "[cuda]" &&
   runs $prebuilt/evit --help && ! ldd $prebuilt/bench_models | grep -q "not found"; then
  bin=$prebuilt
  stage "build: using the binaries prebuilt from this tree for arch $arch (.gpu_bin/SOURCE matches)"
else
  [ -x $prebuilt/evit_tests ] && { echo "prebuilt binaries do not run here:"; ldd $prebuilt/evit_tests | grep "not found"; }
  stage "build (CUDA arch $arch)"
  cmake -S . -B build-gpu "${configure_args[@]}" -DEVIT_CUDA_ARCHS="$arch" "${prefix_args[@]}" "${nccl_args[@]}" \
    > build-gpu.configure.log 2>&1 || { cat build-gpu.configure.log; exit 1; }
  grep -E "CUDA backend|NCCL transport" build-gpu.configure.log
  # An old binary must never stand in for a failed build: remove them first, and fail on the
  # build's own exit status.
  for t in "${targets[@]}"; do rm -f "build-gpu/$t"; done
  cmake --build build-gpu -j"$(nproc)" --target "${targets[@]}" > build-gpu.build.log 2>&1
  build_rc=$?
  grep -E "error|warning: .*cu|Error" build-gpu.build.log | head -50
  if [ $build_rc -ne 0 ] || [ ! -x build-gpu/evit_tests ] || [ ! -x build-gpu/bench_models ]; then
    tail -30 build-gpu.build.log
    echo "gpu_check: FAILED: the CUDA build failed (exit $build_rc)"
    exit 1
  fi
fi

stage "CUDA tests: every [cuda] test case in its own process, 240 s each, 6 at a time"
if wanted tests; then
# Catch2 reads ',' '[' ']' '\' in a name as test-spec syntax: escape them.
"$bin/evit_tests" --list-test-names-only "[cuda]" | sed '/^$/d' > /tmp/cuda_test_names
n_tests=$(wc -l < /tmp/cuda_test_names)
rm -rf /tmp/cuda_tests && mkdir -p /tmp/cuda_tests
nl -ba -w1 -s'|' /tmp/cuda_test_names | while IFS='|' read -r i name; do
  printf '%s\0%s\0' "$i" "$(printf '%s' "$name" | sed 's/[],[\\]/\\&/g')"
done | xargs -0 -n2 -P6 sh -c '
  s=$(date +%s%N); EVIT_NUM_THREADS=3 timeout 240 "'"$bin"'/evit_tests" "$1" > "/tmp/cuda_tests/$0.log" 2>&1; rc=$?
  echo "$rc $(( ($(date +%s%N) - s) / 1000000 ))ms" > "/tmp/cuda_tests/$0.rc"'
passed=0; failed=()
: > "$logs/cuda_tests.log"
while IFS='|' read -r i name; do
  i=$(echo "$i" | tr -d ' ')
  read -r rc secs < "/tmp/cuda_tests/$i.rc" || { rc=missing; secs=?; }
  if [ "$rc" = 0 ] && grep -q "All tests passed" "/tmp/cuda_tests/$i.log"; then
    passed=$((passed + 1)); echo "ok    $secs  $name" >> "$logs/cuda_tests.log"
  else
    [ "$rc" = 124 ] && why="timed out" || why="exit $rc"
    failed+=("$name ($why)")
    { echo "FAIL  $secs  $name ($why)"; sed 's/^/    /' "/tmp/cuda_tests/$i.log" | tail -60; } >> "$logs/cuda_tests.log"
  fi
done < <(nl -ba -w1 -s'|' /tmp/cuda_test_names)
echo "slowest:"; grep -E "^(ok|FAIL)" "$logs/cuda_tests.log" | sort -k2 -rn | head -5
for f in "${failed[@]}"; do echo "FAILED: $f"; done
grep -E -A25 "^FAIL" "$logs/cuda_tests.log" | head -200
summary+=("CUDA tests: $passed of $n_tests test cases passed")
[ ${#failed[@]} -eq 0 ] && [ "$n_tests" -gt 0 ] || status=1
timeout 120 "$bin/evit_tests" "[cuda_backend],[half],[autocast]" | tail -2 || status=1
fi

stage "data-parallel training on the GPU: 1, 2 and 4 ranks bitwise (MPI, host-staged gradients), 1 rank on NCCL"
if ! wanted dist; then
  :
elif command -v mpirun >/dev/null && ldd "$bin/evit" | grep -q libmpi; then
  DIST_DEVICE=cuda DIST_QUICK=1 timeout 180 bash tests/dist/dist_checks.sh "$bin/evit" "$bin/evit_tests" \
    "$(command -v mpirun)" /tmp/evit_dist_gpu > "$logs/dist_gpu.log" 2>&1 || status=1
  grep -E "FAIL|bitwise|passed|NOT RUN" "$logs/dist_gpu.log" || tail -20 "$logs/dist_gpu.log"
  nccl=$(grep -q "NCCL transport: .*bitwise" "$logs/dist_gpu.log" && echo "NCCL bitwise too" || echo "NCCL not checked")
  summary+=("data-parallel GPU check (1, 2, 4 ranks on cuda): $(grep -qE "quick checks passed" "$logs/dist_gpu.log" && echo passed || echo FAILED) ($nccl)")
else
  echo "NOT RUN: this machine has no MPI (mpirun, libopenmpi) or this build was made without it"
  summary+=("data-parallel GPU check: not run (no MPI here)")
fi

stage "benchmarks: evit vs PyTorch eager"
py=python3
tables=()
if ! wanted bench; then
  :
elif $py -c "import torch; assert torch.cuda.is_available()"; then
  torch_version=$($py -c "import torch; print(torch.__version__)")
  for amp in off bf16; do
    fits 100 "benchmarks with amp=$amp" || { status=1; summary+=("benchmarks amp=$amp: skipped (time)"); continue; }
    mkdir -p /tmp/evit_bench  # the JSON lines are echoed into the log; fewer files come back
    e=/tmp/evit_bench/evit_$amp.jsonl
    t=/tmp/evit_bench/torch_$amp.jsonl
    echo "-- evit, amp=$amp (profiles in bench_profiles.log)"
    timeout 150 "$bin/bench_models" --device cuda --amp $amp --profile > "$e" 2>> "$logs/bench_profiles.log" || status=1
    cat "$e"
    echo "-- PyTorch $torch_version, amp=$amp"
    timeout 150 $py bench/models_torch.py 4 --device cuda --amp $amp > "$t" 2>> "$logs/bench_profiles.log" || status=1
    cat "$t"
    tables+=("$($py bench/print_table.py "$e" "$t" "gpu" "$torch_version" \
                "CUDA, amp=$amp; training: forward + cross-entropy + backward + AdamW; peak MiB: device memory allocated at the peak")")
  done
else
  echo "no CUDA PyTorch: benchmarks NOT run"; status=1
fi

stage "evit train --device cuda on the demo segmentation config"
if wanted train && fits 120 "the demo segmentation training"; then
  rm -rf /tmp/evit_demo
  "$bin/evit" make-demo-data /tmp/evit_demo > /dev/null 2>&1 || echo "make-demo-data failed"
  timeout 120 "$bin/evit" train configs/demo_seg.json --device cuda --set data.root=/tmp/evit_demo/cityscapes \
    --set output_dir=/tmp/evit_demo/seg --set data.workers=${GPU_CHECK_WORKERS:-8} > "$logs/train_seg.log" 2>&1
  train_rc=$?
  grep -vE "^\s*$" "$logs/train_seg.log" | tail -15
  [ $train_rc -eq 0 ] || { echo "demo training FAILED (exit $train_rc)"; status=1; }
  summary+=("demo seg training on cuda: exit $train_rc")
fi

stage "summary"
echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); binaries: $bin"
for s in "${summary[@]}"; do echo "$s"; done
for t in "${tables[@]}"; do echo; echo "$t"; done
echo
echo "gpu_check: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(elapsed) s; logs in $logs/"
exit $status
