#!/bin/sh
# Stands in for ssh when mpirun starts its daemons on the "machines" of two_machines_check.sh:
# Open MPI runs `AGENT [options] HOST COMMAND...` (its plm_rsh_agent) as it would run
# `ssh HOST COMMAND...`. This enters HOST's network namespace under a host name of its own and
# runs COMMAND through a shell, as sshd would.
# EVIT_TEST_MACHINES lists the machines as "ADDRESS:NAMESPACE:HOSTNAME ...".
while [ $# -gt 0 ]; do
  case "$1" in
    -*) shift ;;  # ssh options Open MPI may pass (-x: no X11 forwarding)
    *) break ;;
  esac
done
host=$1
shift
for machine in $EVIT_TEST_MACHINES; do
  address=${machine%%:*}
  rest=${machine#*:}
  namespace=${rest%%:*}
  name=${rest#*:}
  if [ "$host" = "$address" ] || [ "$host" = "$name" ]; then
    exec ip netns exec "$namespace" unshare --uts sh -c "hostname $name && $*"
  fi
done
echo "netns_login.sh: no machine '$host' in EVIT_TEST_MACHINES ($EVIT_TEST_MACHINES)" >&2
exit 255
