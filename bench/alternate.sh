# Sourced by run_op_bench.sh, run_model_bench.sh and run_stage_bench.sh (run from the repository
# root).

# Sets PYTHON, unless it is set, to the interpreter whose torch the benches compare with: the
# python3 on PATH if it imports torch, else Debian's /usr/bin/python3 (python3-torch).
choose_python() {
  if [ -z "${PYTHON:-}" ]; then
    if python3 -c "import torch" 2>/dev/null; then PYTHON=python3; else PYTHON=/usr/bin/python3; fi
  fi
}

# load_cases PROGRAM FILTER: sets the array `cases` to the names of build/PROGRAM's cases that
# FILTER selects (PROGRAM --list FILTER), building PROGRAM first when it is missing; exits with 2
# when no case matches.
load_cases() {
  local program=$1 only=$2
  [ -x "build/$program" ] || { cmake -S . -B build -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null &&
    cmake --build build -j"$(nproc)" --target "$program"; }
  mapfile -t cases < <("./build/$program" --list "$only")
  [ ${#cases[@]} -gt 0 ] || { echo "no case matches '$only'" >&2; exit 2; }
}

# print_results OUT_DIR THREADS [WHAT IS TIMED]: the table of OUT_DIR's two JSON-lines files
# (bench/print_table.py), then OUT_DIR is removed.
print_results() {
  local out=$1 threads=$2 torch_version
  torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)")
  "$PYTHON" bench/print_table.py "$out/evit.jsonl" "$out/torch.jsonl" "$threads" "$torch_version" "${@:3}"
  rm -rf "$out"
}

# run_alternating EVIT_PROGRAM TORCH_SCRIPT THREADS ROUNDS OUT_DIR CASE...
# runs each case in its own process, evit's then PyTorch's (with $PYTHON), round after round,
# appending their JSON lines to OUT_DIR/evit.jsonl and OUT_DIR/torch.jsonl: the two sides of a
# case see the same machine state, and no case's figures depend on an earlier case in the process.
run_alternating() {
  local evit=$1 torch_script=$2 threads=$3 rounds=$4 out=$5
  shift 5
  local round c
  for round in $(seq "$rounds"); do
    for c in "$@"; do
      echo "round $round/$rounds: $c" >&2
      EVIT_NUM_THREADS=$threads "$evit" "$c" >> "$out/evit.jsonl"
      # Fair PyTorch settings (docs/performance.md): OpenMP threads = ours, no extra OpenBLAS
      # threads, and glibc keeping freed memory (PyTorch has no caching CPU allocator).
      OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=$threads \
      MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=268435456 \
        "$PYTHON" "$torch_script" "$threads" "$c" >> "$out/torch.jsonl"
    done
  done
}
