#!/usr/bin/env bash
# Ping and UDP between the kernel and ustack through the impairing bridge:
# loss, reordering, duplication and delay. Everything that arrives must be
# intact; what is lost is retried.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
netns_setup_bridge ki --loss 0.05 --reorder 0.1 --dup 0.02 --delay 2 --jitter 2 --seed 7 --stats || exit 1
. "$(dirname "$0")/../lib/ustack.sh"
UDPCHECK="ip netns exec $NETNS_LEFT $UDPCHECK"
log=$NETNS_TMP/ust.log
ust_start "$NETNS_RIGHT" "$log" --dev "afpacket:$NETNS_RIGHT_IF" --ip "$NETNS_RIGHT_IP/24" || exit 1
run_kernel_checks "$NETNS_LEFT" "$NETNS_RIGHT_IP" "$NETNS_LEFT_IF" "$NETNS_RIGHT_MAC" lossy || { cat "$log"; exit 1; }
ust_stop "$log" || exit 1
netns_impair_stop
cat "$NETNS_IMPAIR_LOG"
echo "kernel through impairing bridge: OK"
