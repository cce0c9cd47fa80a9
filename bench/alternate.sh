# Sourced by run_op_bench.sh and run_model_bench.sh.
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
