#!/usr/bin/env bash
# TCP between the kernel and ustack through the impairing bridge (ustack on
# AF_PACKET in a namespace with no IP address). Each scenario moves data
# both ways, kernel -> ust-echo (byte-exact echo) and ust-tcpclient ->
# kernel sink (SHA-256 compare), under loss, reordering, duplication,
# delay, corruption and a blackout. Every transfer is bounded by a
# no-progress timeout: a stalled connection fails the scenario.
# TCP_SIZE_SCALE shrinks or grows every size; TCP_SCENARIOS="loss1 mixed
# rtt50 corrupt blackout" runs only those.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
tcp_require_tools
netns_setup_bridge ti --stats || exit 1
KNS=$NETNS_LEFT KIP=$NETNS_LEFT_IP UNS=$NETNS_RIGHT UIF=$NETNS_RIGHT_IF UIP=$NETNS_RIGHT_IP

# impair NAME ARGS...: restart the bridge with these impairments.
impair() {
    local name=$1
    shift
    echo "== $name: ust-impair $*"
    netns_impair_restart --seed 11 --stats "$@" || { tcp_result "$name" 1; tcp_finish; }
}

# impair_report NAME: stop the bridge and show what it did.
impair_report() {
    netns_impair_stop
    grep -E "drop_|corrupt|dup|reorder" "$NETNS_IMPAIR_LOG" | sed "s/^/[$1 bridge] /"
}

# want NAME: whether scenario NAME runs (TCP_SCENARIOS="loss1 mixed ..." picks some).
want() { [ -z "${TCP_SCENARIOS:-}" ] || [[ " $TCP_SCENARIOS " == *" $1 "* ]]; }

# both_ways NAME MIB: kernel client -> ust-echo, then ust-tcpclient -> kernel sink.
both_ways() {
    local name=$1 bytes
    bytes=$(tcp_bytes "$2")
    tcp_kernel_echo "${name}_kernel_echo" "$KNS" "$UNS" "$UIF" "$UIP" "$bytes" 1
    tcp_ustack_upload "${name}_ustack_upload" "$KNS" "$KIP" "$UNS" "$UIF" "$UIP" "$bytes"
}

if want loss1; then
    impair loss1 --loss 0.01
    both_ways loss1 64
    impair_report loss1
fi

if want mixed; then
    impair mixed --loss 0.05 --reorder 0.25 --dup 0.01
    both_ways mixed 8
    impair_report mixed
fi

if want rtt50; then
    impair rtt50 --delay 25 --loss 0.02
    both_ways rtt50 4
    impair_report rtt50
fi

if want corrupt; then
    impair corrupt --corrupt 0.001
    both_ways corrupt 16
    impair_report corrupt
fi

# A 1 s blackout (ust-impair --blackout 0:1000) once 1 MiB has moved: see
# tcp_blackout in tests/lib/tcp.sh.
if want blackout; then
    impair blackout
    echo "== blackout: 1 s blackout once 1 MiB has moved, kernel echo then ustack upload"
    tcp_blackout blackout_kernel_echo tcp_kernel_echo blackout_kernel_echo "$KNS" "$UNS" "$UIF" "$UIP" \
        "$(tcp_bytes 16)" 1
    tcp_blackout blackout_ustack_upload tcp_ustack_upload blackout_ustack_upload "$KNS" "$KIP" "$UNS" "$UIF" "$UIP" \
        "$(tcp_bytes 16)"
fi
tcp_finish
