#!/usr/bin/env bash
# Data-parallel training across two machines, run by ctest when evit is built with MPI:
#   tests/dist/two_machines_check.sh EVIT EVIT_TESTS MPIRUN WORK_DIR
# The two machines are network namespaces of this one, joined by a virtual Ethernet cable
# (tests/dist/machines.sh); mpirun runs on the first with a hostfile that lists both with 2 slots.
# Ranks on one machine talk over shared memory, ranks on different machines over TCP across the
# cable, as on a cluster.
# 1. 4 ranks land 2 per machine, and the [mpi] collective test passes there: each machine numbers
#    its ranks from 0, as the launcher does (a rank trains on cuda:<local rank>);
# 2. EfficientViT-B0 (the model, data and config of dist_checks.sh) on 4 ranks, 2 per machine:
#    weights, EMA, optimizer state and logs byte for byte those of one process, and every step's
#    gradients crossed the cable;
# 3. the cable cut in the middle of a run (a machine lost to the others, with no process exiting
#    to say so): the job ends within seconds with Open MPI's message naming the lost machine, no
#    process is left on either machine, and once the cable is back the last checkpoint resumes.
# Making namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2: without them this
# says why and exits 77, which ctest reports as a skipped test.
set -euo pipefail
evit=$1 tests=$2 mpirun=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/common.sh"
source "$(dirname "$0")/machines.sh"

make_two_machines || { echo "SKIPPED: $machines_unavailable"; exit 77; }
on_two_machines() {  # on_two_machines LOG PROGRAM ARGUMENTS...: 4 ranks, 2 per machine, which must succeed
  local log=$1
  shift
  mpirun_on_two_machines 2 "$@" > "$log" 2>&1 || { cat "$log"; fail "$(basename "$1") $2 on 4 ranks over two machines failed"; }
}

step "4 ranks on two machines, 2 on each: where they land, and the collectives"
on_two_machines "$work/hosts.log" hostname
[ "$(sort "$work/hosts.log" | uniq -c | awk '{print $1 " " $2}' | tr '\n' ' ')" = "2 node1 2 node2 " ] ||
  { cat "$work/hosts.log"; fail "the 4 ranks did not land 2 on node1 and 2 on node2"; }
on_two_machines "$work/mpi.log" "$tests" "[mpi]"
echo "2 ranks on each machine; collectives and local ranks right"

step "EfficientViT-B0, 3 steps: 1 process, then 4 ranks on two machines"
write_b0_config
"$evit" train "$work/config.json" --set output_dir="$work/w1" > "$work/w1.log" 2>&1 ||
  { cat "$work/w1.log"; fail "the single-process run failed"; }
before=$(cable_bytes_sent)
on_two_machines "$work/w4.log" "$evit" train "$work/config.json" --set output_dir="$work/w4"
sent=$(($(cable_bytes_sent) - before))
grep -q "data-parallel: MPI rank 0 of 4" "$work/w4.log" || { cat "$work/w4.log"; fail "the run did not say it had 4 ranks"; }
same_state "$work/w1" "$work/w4"
cmp "$work/w1/metrics.jsonl" "$work/w4/metrics.jsonl" || fail "the logs (losses, evaluation) differ on two machines"
# Each step's summed gradients (4 bytes per parameter) must cross between the machines at least once.
parameters=$(grep -o '[0-9]* parameters' "$work/w1.log" | head -1 | grep -o '[0-9]*')
[ -n "$parameters" ] || { cat "$work/w1.log"; fail "the training log gave no parameter count"; }
least=$((3 * 4 * parameters))
[ "$sent" -ge "$least" ] || fail "only $sent bytes crossed the cable, fewer than 3 steps of $parameters gradients ($least)"
echo "weights, EMA, optimizer state and logs bitwise equal to one process; $((sent / 1000000)) MB crossed the cable"
step "the cable cut mid-run: the job ends, and resumes from its last checkpoint"
# Open MPI's daemons notice a silent machine through TCP keepalive probes on their connections:
# after 300 s without traffic, 9 probes 20 s apart, by default. Shortened here to 2 s and 2 probes
# 1 s apart.
keepalive=(--mca oob_tcp_keepalive_time 2 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 2)
cut="$work/cut"
mpirun_on_two_machines 2 "${keepalive[@]}" "$evit" train "$work/config.json" --set output_dir="$cut" \
  --set train.steps=100000 > "$cut.log" 2>&1 &
launcher=$!
wait_for_checkpoint "$cut"
ip -n "$ns1" link set "$end1" down
wait_for_job 120
[ "$code" -ne 0 ] || fail "the job exited with status 0 after the cable was cut"
grep -q "lost communication with a remote daemon" "$cut.log" || { cat "$cut.log"; fail "no message named the lost machine"; }
for _ in $(seq 100); do  # the cut-off machine's daemon stops its ranks once it has lost mpirun
  [ -z "$(ip netns pids "$ns1")$(ip netns pids "$ns2")" ] && break
  sleep 0.2
done
[ -z "$(ip netns pids "$ns1")$(ip netns pids "$ns2")" ] ||
  { ps -o pid,args -p "$( (ip netns pids "$ns1"; ip netns pids "$ns2") | paste -sd,)"; fail "processes outlived the job"; }
echo "job ended ${elapsed} s after the cut with status $code, no process left on either machine:"
grep -A 3 "lost communication with a remote daemon" "$cut.log"
ip -n "$ns1" link set "$end1" up
done_steps=$(last_checkpoint_step "$cut")
on_two_machines "$cut.resume.log" "$evit" train "$work/config.json" --set output_dir="$cut" \
  --set train.steps=$((done_steps + 1)) --resume "$cut/checkpoint"
echo "the last checkpoint (step $done_steps) resumed on the two machines"
echo
echo "two_machines_check: all passed"
