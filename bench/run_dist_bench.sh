#!/usr/bin/env bash
# Data-parallel scaling on this machine: one global batch of EfficientViT training per step, timed
# as (a) the plain single-process step, (b) the same batch in K micro-batches on one rank, and
# (c) on W ranks under mpirun, one thread per rank, with gradient buckets sent while backward runs
# (the default) and only after it (--no-overlap), all alternating round after round so
# that the machine's drift hits them alike. Prints the median over rounds of each one's median
# step time, the reduction's share, the speed-up over (a) and the scaling efficiency. When a python
# with torch is at hand (PYTHON=...), PyTorch's single process and DistributedDataParallel (gloo,
# the same ranks and threads) run in the same rounds, for the same comparison on its side.
# Usage: bash bench/run_dist_bench.sh [rounds=3] [ranks=2] [batch=16] [size=224] [micro=4] [model=efficientvit-b1]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} ranks=${2:-2} batch=${3:-16} size=${4:-224} micro=${5:-4} model=${6:-efficientvit-b1}
[ -x build/bench_dist ] || { cmake -S . -B build -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null && cmake --build build -j"$(nproc)" --target bench_dist; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_pml=ob1
args=(--model "$model" --batch "$batch" --size "$size" --micro "$micro" --threads 1)
out=$(mktemp)
py=${PYTHON:-python3}
torch_rows=0
"$py" -c "import torch" 2>/dev/null && torch_rows=1
[ "$torch_rows" = 1 ] || echo "no torch for $py: the PyTorch rows are left out (set PYTHON=...)" >&2
for r in $(seq "$rounds"); do
  echo "round $r of $rounds" >&2
  ./build/bench_dist "${args[@]}" --plain | sed 's/^{/{"setup": "plain, 1 process",/' >> "$out"
  ./build/bench_dist "${args[@]}" | sed 's/^{/{"setup": "micro-batches, 1 rank",/' >> "$out"
  mpirun -n "$ranks" --bind-to core --mca btl self,vader ./build/bench_dist "${args[@]}" |
    sed "s/^{/{\"setup\": \"micro-batches, $ranks ranks\",/" >> "$out"
  mpirun -n "$ranks" --bind-to core --mca btl self,vader ./build/bench_dist "${args[@]}" --no-overlap |
    sed "s/^{/{\"setup\": \"$ranks ranks, no overlap\",/" >> "$out"
  if [ "$torch_rows" = 1 ]; then
    targs=(--model "$model" --batch "$batch" --size "$size")
    OMP_NUM_THREADS=1 "$py" bench/dist_torch.py 1 "${targs[@]}" |
      sed 's/^{/{"setup": "PyTorch, 1 process", "reduce_ms": 0, "micro_batches": 1,/' >> "$out"
    OMP_NUM_THREADS=1 "$py" bench/dist_torch.py "$ranks" "${targs[@]}" |
      sed "s/^{/{\"setup\": \"PyTorch DDP, $ranks ranks\", \"reduce_ms\": 0, \"micro_batches\": 1,/" >> "$out"
  fi
done
python3 - "$out" "$ranks" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ranks = int(sys.argv[2])
by = {}
for r in rows:
    by.setdefault(r["setup"], []).append(r)
first = rows[0]
print(f"{first['batch']} images of {first['size']} px per step, {first['micro_batches'] if first['micro_batches'] > 1 else rows[1]['micro_batches']} micro-batches, 1 thread per rank, {len(by['plain, 1 process'])} rounds")
print("speed-up and efficiency: against the same side's single process; reduce ms: evit's finish_step, the cross-rank sums still left once the last micro-batch is taken")
print(f"{'setup':28s} {'step ms':>9s} {'reduce ms':>10s} {'images/s':>9s} {'speed-up':>9s} {'efficiency':>11s}")
for name, rs in by.items():
    base_name = "PyTorch, 1 process" if name.startswith("PyTorch") else "plain, 1 process"
    base = statistics.median(r["median_ms"] for r in by[base_name])
    t = statistics.median(r["median_ms"] for r in rs)
    red = statistics.median(r["reduce_ms"] for r in rs)
    w = rs[0]["ranks"]
    print(f"{name:28s} {t:9.1f} {red:10.1f} {1000 * rs[0]['batch'] / t:9.2f} {base / t:9.2f} {base / t / w:11.2f}")
PY
rm -f "$out"
