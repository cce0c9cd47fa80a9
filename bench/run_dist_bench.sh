#!/usr/bin/env bash
# Data-parallel scaling on this machine: one global batch of EfficientViT training per step, timed
# as (a) the plain single-process step, (b) the same batch in K micro-batches on one rank, and
# (c) on W ranks under mpirun, one thread per rank, with gradient buckets sent while backward runs
# (the default) and only after it (--no-overlap), all alternating round after round so
# that the machine's drift hits them alike. Prints the median over rounds of each one's median
# step time, the reduction's share, the speed-up over (a) and the scaling efficiency. When a python
# with torch is at hand (PYTHON=...), PyTorch's single process and DistributedDataParallel (gloo,
# the same ranks and threads) run in the same rounds, for the same comparison on its side.
# CABLE=RATE (tc's units: 1gbit, 100mbit; needs root) puts the W ranks on two machines made of
# network namespaces (tests/dist/machines.sh), W/2 on each, joined by a cable limited to RATE each
# way: the sums across machines then wait on a network, as on a cluster, which is where sending
# buckets during backward pays. PyTorch's DDP ranks go on the same machines and cable.
# BUCKET_MB sets the MiB per gradient bucket sent during backward (train.bucket_mb, default 16).
# Usage: bash bench/run_dist_bench.sh [rounds=3] [ranks=2] [batch=16] [size=224] [micro=4] [model=efficientvit-b1]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} ranks=${2:-2} batch=${3:-16} size=${4:-224} micro=${5:-4} model=${6:-efficientvit-b1}
[ -x build/bench_dist ] || { cmake -S . -B build -DEVIT_CUDA="${EVIT_CUDA:-OFF}" >/dev/null && cmake --build build -j"$(nproc)" --target bench_dist; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_pml=ob1
args=(--model "$model" --batch "$batch" --size "$size" --micro "$micro" --threads 1 --bucket-mb "${BUCKET_MB:-16}")
targs=(--model "$model" --batch "$batch" --size "$size")
if [ -n "${CABLE:-}" ]; then
  [ $((ranks % 2)) = 0 ] || { echo "run_dist_bench: CABLE needs an even number of ranks" >&2; exit 1; }
  mpirun=mpirun
  source tests/dist/machines.sh
  make_two_machines || { echo "run_dist_bench: CABLE: $machines_unavailable" >&2; exit 1; }
  limit_cable "$CABLE"
  where="$ranks ranks, 2 machines, $CABLE"
  on_ranks() { mpirun_on_two_machines $((ranks / 2)) "$@"; }
  ddp() {  # one process per rank, each started on its machine; they meet on node1 (port $1)
    local r machine end
    for r in $(seq 0 $((ranks - 1))); do
      machine=$((1 + r / (ranks / 2))) end=$end1
      [ "$machine" = 2 ] && end=$end2
      on_machine "$machine" env GLOO_SOCKET_IFNAME="$end" OMP_NUM_THREADS=1 "$py" bench/dist_torch.py "$ranks" "${targs[@]}" \
        --rank "$r" --init "tcp://10.77.0.1:$1" &
    done
    wait
  }
else
  where="$ranks ranks"
  on_ranks() { mpirun -n "$ranks" --bind-to core --mca btl self,vader "$@"; }
  ddp() { OMP_NUM_THREADS=1 "$py" bench/dist_torch.py "$ranks" "${targs[@]}"; }
fi
out=$(mktemp)
py=${PYTHON:-python3}
torch_rows=0
"$py" -c "import torch" 2>/dev/null && torch_rows=1
[ "$torch_rows" = 1 ] || echo "no torch for $py: the PyTorch rows are left out (set PYTHON=...)" >&2
for r in $(seq "$rounds"); do
  echo "round $r of $rounds" >&2
  ./build/bench_dist "${args[@]}" --plain | sed 's/^{/{"setup": "plain, 1 process",/' >> "$out"
  ./build/bench_dist "${args[@]}" | sed 's/^{/{"setup": "micro-batches, 1 rank",/' >> "$out"
  on_ranks ./build/bench_dist "${args[@]}" | sed "s/^{/{\"setup\": \"micro-batches, $where\",/" >> "$out"
  on_ranks ./build/bench_dist "${args[@]}" --no-overlap | sed "s/^{/{\"setup\": \"$where, no overlap\",/" >> "$out"
  if [ "$torch_rows" = 1 ]; then
    OMP_NUM_THREADS=1 "$py" bench/dist_torch.py 1 "${targs[@]}" |
      sed 's/^{/{"setup": "PyTorch, 1 process", "reduce_ms": 0, "micro_batches": 1,/' >> "$out"
    ddp $((29500 + r)) | sed "s/^{/{\"setup\": \"PyTorch DDP, $where\", \"reduce_ms\": 0, \"micro_batches\": 1,/" >> "$out"
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
print(f"{'setup':40s} {'step ms':>9s} {'reduce ms':>10s} {'images/s':>9s} {'speed-up':>9s} {'efficiency':>11s}")
for name, rs in by.items():
    base_name = "PyTorch, 1 process" if name.startswith("PyTorch") else "plain, 1 process"
    base = statistics.median(r["median_ms"] for r in by[base_name])
    t = statistics.median(r["median_ms"] for r in rs)
    red = statistics.median(r["reduce_ms"] for r in rs)
    w = rs[0]["ranks"]
    print(f"{name:40s} {t:9.1f} {red:10.1f} {1000 * rs[0]['batch'] / t:9.2f} {base / t:9.2f} {base / t / w:11.2f}")
PY
rm -f "$out"
