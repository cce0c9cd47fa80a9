# shellcheck shell=bash
# Two machines made on this one, for the multi-machine test (tests/dist/two_machines_check.sh) and
# benchmark (CABLE=... bench/run_dist_bench.sh); sourced, not run. Each machine is a network
# namespace, named node1 and node2 to the programs inside, and a virtual Ethernet cable joins
# them (10.77.0.1 and 10.77.0.2). mpirun runs on node1 and starts its daemon on node2 through
# tests/dist/netns_login.sh, where a cluster would use ssh. Needs root (CAP_NET_ADMIN for the
# namespaces, CAP_SYS_ADMIN for the host names) and iproute2. Expects $mpirun to be set.

machines_login="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/netns_login.sh"

# Makes the two machines and removes them when the calling script exits. Sets ns1, ns2 (the
# namespaces) and end1, end2 (the cable's ends, on node1 and node2). Returns 1 with the reason in
# $machines_unavailable when this machine cannot make them.
make_two_machines() {
  machines_unavailable=""
  if ! command -v ip > /dev/null; then
    machines_unavailable="no 'ip' command to make the machines (Debian: apt-get install iproute2)"
    return 1
  fi
  # Names unique to this run; the cable's ends are named in this machine's namespace first (15
  # characters at most).
  ns1=evit-$$-1 ns2=evit-$$-2 end1=evit$$a end2=evit$$b
  machines_dir=$(mktemp -d)
  trap remove_two_machines EXIT
  if ! ip netns add "$ns1" 2> "$machines_dir/err"; then
    machines_unavailable="cannot make a network namespace ($(cat "$machines_dir/err")): this needs root with CAP_NET_ADMIN"
    return 1
  fi
  if ! ip netns exec "$ns1" unshare --uts true 2> "$machines_dir/err"; then
    machines_unavailable="cannot give a namespace a host name of its own ($(cat "$machines_dir/err")): this needs CAP_SYS_ADMIN"
    return 1
  fi
  ip netns add "$ns2"
  ip link add "$end1" type veth peer name "$end2"
  ip link set "$end1" netns "$ns1"
  ip link set "$end2" netns "$ns2"
  ip -n "$ns1" addr add 10.77.0.1/24 dev "$end1"
  ip -n "$ns2" addr add 10.77.0.2/24 dev "$end2"
  ip -n "$ns1" link set lo up
  ip -n "$ns2" link set lo up
  ip -n "$ns1" link set "$end1" up
  ip -n "$ns2" link set "$end2" up
  export EVIT_TEST_MACHINES="10.77.0.1:$ns1:node1 10.77.0.2:$ns2:node2"
}

# Stops whatever still runs on the machines and removes them.
remove_two_machines() {
  for ns in "$ns1" "$ns2"; do
    # shellcheck disable=SC2046  # one pid per word
    kill -9 $(ip netns pids "$ns" 2> /dev/null) 2> /dev/null || true
    ip netns del "$ns" 2> /dev/null || true
  done
  rm -rf "$machines_dir"
}

# Limits the cable to RATE each way (tc's units: 1gbit, 100mbit), as a slower network would, with a
# queue of $CABLE_QUEUE (default 2ms) at each end, like a switch port's buffer: a longer queue
# delays every small message (MPI's handshakes) behind the bulk of the gradients.
limit_cable() {
  ip netns exec "$ns1" tc qdisc replace dev "$end1" root tbf rate "$1" burst 256kb latency "${CABLE_QUEUE:-2ms}"
  ip netns exec "$ns2" tc qdisc replace dev "$end2" root tbf rate "$1" burst 256kb latency "${CABLE_QUEUE:-2ms}"
}

# on_machine N COMMAND...: runs COMMAND on node N (1 or 2).
on_machine() {
  local ns=$ns1
  [ "$1" = 2 ] && ns=$ns2
  ip netns exec "$ns" unshare --uts sh -c "hostname node$1"' && exec "$@"' sh "${@:2}"
}

# mpirun_on_two_machines SLOTS [MPIRUN OPTIONS] PROGRAM ARGUMENTS...: 2 x SLOTS ranks, SLOTS on each
# machine (ranks 0 .. SLOTS-1 on node1). Ranks of one machine talk over shared memory, the
# machines over TCP across the cable.
mpirun_on_two_machines() {
  local slots=$1
  shift
  printf '10.77.0.1 slots=%s\n10.77.0.2 slots=%s\n' "$slots" "$slots" > "$machines_dir/hostfile"
  on_machine 1 "$mpirun" -n $((2 * slots)) --hostfile "$machines_dir/hostfile" --bind-to none \
    --mca plm_rsh_agent "$machines_login" --mca btl self,vader,tcp --mca btl_tcp_if_include 10.77.0.0/24 \
    --mca oob_tcp_if_include 10.77.0.0/24 "$@"
}

# The bytes node1 has sent down the cable so far.
cable_bytes_sent() {
  ip netns exec "$ns1" cat "/sys/class/net/$end1/statistics/tx_bytes"
}
