#!/usr/bin/env bash
# The same checks over TAP: ustack owns the "wire" behind a tap interface
# that carries the kernel's address inside a namespace the test made.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
netns_install_trap
netns_tmpdir
NS="kt$$"
netns_add "$NS" || exit 1
. "$(dirname "$0")/../lib/ustack.sh"
UDPCHECK="ip netns exec $NS $UDPCHECK"
TAP="tp$$"
log=$NETNS_TMP/ust.log
ust_start "$NS" "$log" --dev "tap:$TAP" --ip 10.78.0.2/24 --mac 02:00:00:78:00:02 || exit 1
ip -n "$NS" addr add 10.78.0.1/24 dev "$TAP"
ip -n "$NS" link set "$TAP" up
run_kernel_checks "$NS" 10.78.0.2 "$TAP" 02:00:00:78:00:02 || { cat "$log"; exit 1; }
ust_stop "$log" || exit 1
echo "kernel over tap: OK"
