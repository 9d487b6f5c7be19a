#!/usr/bin/env bash
# ust-echo --workers 2 on AF_XDP (--dev afxdp) over a veth with 2 queues
# each way, in native and in generic XDP mode. Worker I binds an AF_XDP
# socket to receive queue I; one XDP program (ustack_xdp) serves both,
# redirecting ustack's frames to the socket of the queue they arrived on.
#   - the kernel opens CONNS connections (tcppeer.py), every byte must come
#     back, each worker must have accepted some, no connection errors;
#   - while ustack serves, the kernel still answers its own address on the
#     same interface (ping, TCP), as in afxdp_kernel.sh;
#   - after SIGTERM no XDP program is left on the interface.
# Printed per mode: per-worker accepted connections, frames received from
# the device (dev_rx), frames handed over to the other worker (steer_tx
# minus the ARP copies) and taken over (steer_rx), drops; in native mode
# also the veth's own per-queue count of frames the program redirected.
#
# Which queue a frame arrives on (Linux 6.18, measured here): a veth's
# "RSS" is the sender's choice of TX queue. The kernel peer picks one per
# socket (skb_tx_hash of a random per-socket hash; no XPS, noqueue qdisc),
# and the veth delivers on its peer's receive queue of the same number.
#   - native XDP: the program runs in that queue's NAPI context, so flows do
#     spread over both queues (typically 45-55 % each: per-worker dev_rx and
#     the veth's rx_queue_N_xdp_redirect agree). The kernel's hash is not
#     ustack's, so about half of the TCP frames reach the worker that does
#     not own the flow and are handed over through the worker rings (some
#     ten thousand per run at 150 x 256 KiB).
#   - generic XDP: every frame arrives on queue 0 (worker 1's dev_rx is 0).
#     The veth has no NAPI then (no native program, GRO off) and passes the
#     skb to the backlog; generic XDP takes the queue from the skb's
#     recorded RX queue, which a veth does not set up (TX queue 0 reads as
#     "none", TX queue 1 as queue 0). Worker 0 receives everything and hands
#     worker 1's flows over; worker 1 still serves its share.
#   Checked once by pinning the kernel peer to one TX queue with XPS
#   (queues/tx-N/xps_cpus): TX queue 1 -> native: only worker 1's dev_rx
#   counts, generic: only worker 0's; TX queue 0 -> worker 0 in both.
# So neither mode can deliver by ustack's hash and the test requires the
# handover to work, not to be absent (workers_veth.sh, whose cBPF fanout
# does compute ustack's hash, requires the opposite).
#
# Drops that TCP repairs are expected on 2 cores and are only printed:
# dev_kernel_drops (the kernel found the fill ring empty while a worker
# was busy) and steer_drop (handoffs beyond the ring to a busy worker).
# Pass conditions are counts only, never timings.
#
# WORKERS_CONNS (default 150) sets the number of connections; XDPW_KEEP=PATH
# keeps each mode's ust-echo log (counters) as PATH.MODE.log.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
[ -x "$TCP_BIN/ust-echo" ] || { echo "SKIP: $TCP_BIN/ust-echo not built"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }
command -v socat >/dev/null || { echo "SKIP: socat missing"; exit 77; }
TCP_PCAP=0

netns_setup_mq_pair xw
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIF=$NETNS_IF_A UIF=$NETNS_IF_B
KIP=10.83.0.1 UIP=10.83.0.2 OWNIP=10.83.0.3   # OWNIP: the kernel's, on ustack's veth
ip -n "$KNS" addr add "$KIP/24" dev "$KIF" || exit 1
ip -n "$UNS" addr add "$OWNIP/24" dev "$UIF" || exit 1

# The afxdp kind must be built in (libxdp present at build time).
probe=$(ip netns exec "$UNS" "$TCP_BIN/ust-echo" --dev "afxdp:$UIF,mode=bogus" --ip "$UIP/24" 2>&1 </dev/null)
if echo "$probe" | grep -q "built without libxdp\|unknown device kind"; then
    echo "SKIP: ustack built without the afxdp backend: $probe"
    exit 77
fi

CONNS=${WORKERS_CONNS:-150}
BYTES=$(tcp_bytes 0.25)

# xdp_attached: is an XDP program on ustack's interface?
xdp_attached() { ip -n "$UNS" link show "$UIF" | grep -q "prog/xdp"; }

# kernel_keeps_own MODE: ping and TCP to the kernel's own address on UIF.
kernel_keeps_own() {
    local mode=$1 rc=0 out lpid got
    out=$(ip netns exec "$KNS" timeout 20 ping -n -c 3 -i 0.1 -W 1 "$OWNIP" 2>&1)
    echo "$out" | grep -q " 3 received" || { echo "[$mode] ping to the kernel's $OWNIP failed: $out" >&2; rc=1; }
    ip netns exec "$UNS" timeout 20 socat -u TCP-LISTEN:5001,reuseaddr OPEN:"$NETNS_TMP/own.$mode",creat,trunc &
    lpid=$!
    netns_track_pid "$lpid"
    # Bounded wait for the listener instead of a fixed sleep.
    for _ in $(seq 1 50); do
        ip netns exec "$UNS" ss -ltn 2>/dev/null | grep -q ":5001 " && break
        sleep 0.05
    done
    echo "kernel-owned $mode" | ip netns exec "$KNS" timeout 10 socat -u - "TCP:$OWNIP:5001" || rc=1
    wait "$lpid" || rc=1
    netns_untrack_pid "$lpid"
    got=$(cat "$NETNS_TMP/own.$mode" 2>/dev/null)
    [ "$got" = "kernel-owned $mode" ] || { echo "[$mode] TCP to the kernel's own $OWNIP failed" >&2; rc=1; }
    [ "$rc" -eq 0 ] && echo "[$mode] kernel still answers $OWNIP on $UIF (ping, TCP) while ustack serves"
    return "$rc"
}

# ctr LOG WORKER NAME: a per-worker counter from ust-echo's --stats output.
ctr() { awk -v k="$2 $3" '$1" "$2 == k { print $3; f=1 } END { if (!f) print 0 }' "$1"; }

# check_counters MODE LOG: every connection, every byte, both workers.
check_counters() {
    local mode=$1 log=$2 rc=0 total=0 bytes=0 w acc
    for w in w0 w1; do
        acc=$(ctr "$log" "$w" echo_accepted)
        total=$((total + acc))
        bytes=$((bytes + $(ctr "$log" "$w" echo_bytes)))
        echo "[$mode] $w: accepted $acc, dev_rx $(ctr "$log" "$w" dev_rx)," \
             "handed over $(( $(ctr "$log" "$w" steer_tx) - $(ctr "$log" "$w" steer_arp_copies) ))" \
             "(+$(ctr "$log" "$w" steer_arp_copies) ARP copies), taken over $(ctr "$log" "$w" steer_rx)," \
             "steer_drop $(ctr "$log" "$w" steer_drop); dev_tx_drop $(ctr "$log" "$w" dev_tx_drop)," \
             "dev_kernel_drops $(ctr "$log" "$w" dev_kernel_drops), pool_empty $(ctr "$log" "$w" pool_empty)," \
             "tcp_retransmits $(ctr "$log" "$w" tcp_retransmits)"
        [ "$acc" -gt 0 ] || { echo "[$mode] $w accepted no connection" >&2; rc=1; }
        [ "$(ctr "$log" "$w" echo_errors)" -eq 0 ] || { echo "[$mode] $w counted connection errors" >&2; rc=1; }
    done
    [ "$total" -eq "$CONNS" ] || { echo "[$mode] accepted $total of $CONNS" >&2; rc=1; }
    [ "$bytes" -eq $((CONNS * BYTES)) ] || { echo "[$mode] echoed $bytes bytes, want $((CONNS * BYTES))" >&2; rc=1; }
    [ -z "${XDPW_KEEP:-}" ] || cp "$log" "$XDPW_KEEP.$mode.log"
    return "$rc"
}

# echo_stop: SIGTERM, bounded wait, clean exit with per-worker counters
# ("wN name value": tcp_echo_stop expects the one-stack format).
echo_stop() {
    local rc=0
    kill -TERM "$TCP_ECHO_PID" 2>/dev/null
    timeout 10 tail --pid="$TCP_ECHO_PID" -f /dev/null || {
        echo "ust-echo did not exit on SIGTERM" >&2; kill -KILL "$TCP_ECHO_PID" 2>/dev/null; rc=1; }
    wait "$TCP_ECHO_PID" || { echo "ust-echo exited non-zero" >&2; rc=1; }
    netns_untrack_pid "$TCP_ECHO_PID"
    grep -q "^w1 echo_accepted" "$TCP_ECHO_LOG" || { echo "ust-echo printed no per-worker counters" >&2; rc=1; }
    return "$rc"
}

# queue_redirects: frames the native XDP program redirected per receive
# queue of UIF, "q0 q1" (veth's own counters; generic XDP does not count).
queue_redirects() {
    ip netns exec "$UNS" ethtool -S "$UIF" 2>/dev/null |
        awk '$1 == "rx_queue_0_xdp_redirect:" { a = $2 } $1 == "rx_queue_1_xdp_redirect:" { b = $2 }
             END { print a + 0, b + 0 }'
}

# wait_ready MODE: ust-echo prints "serving" once worker 0 is set up, before
# worker 1 has bound queue 1; a frame the kernel puts on queue 1 until then
# goes to the kernel, which drops it. Ping ustack's address until it
# answers (bounded) so the checks below start with both workers up.
wait_ready() {
    for _ in 1 2 3 4 5; do
        ip netns exec "$KNS" ping -n -c 1 -W 1 "$UIP" >/dev/null 2>&1 && return 0
    done
    echo "[$1] ustack's $UIP does not answer ping" >&2
    return 1
}

run_mode() {
    local mode=$1 name=xdpw_$1 rc=0
    tcp_echo_start "$UNS" "$name" --dev "afxdp:$UIF,mode=$mode" --ip "$UIP/24" --workers 2 ||
        { tcp_result "$name" 1; return 1; }
    grep -q "2 workers" "$TCP_ECHO_LOG" || { echo "[$mode] ust-echo did not start 2 workers" >&2; rc=1; }
    xdp_attached || { echo "[$mode] no XDP program attached" >&2; rc=1; }
    wait_ready "$mode" || rc=1
    kernel_keeps_own "$mode" || rc=1
    local q0 q1 r0 r1
    read -r q0 q1 < <(queue_redirects)
    ip netns exec "$KNS" timeout 120 $TCPPEER client "$UIP" 7 --bytes "$BYTES" --conns "$CONNS" \
        --timeout "$TCP_TIMEOUT" 2>&1 | tail -n 3 | sed "s/^/[$mode] /"
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "[$mode] kernel client failed" >&2; rc=1; }
    read -r r0 r1 < <(queue_redirects)
    [ "$mode" = native ] && echo "[$mode] veth rx queue 0 / 1 redirected by XDP: $((r0 - q0)) / $((r1 - q1))"
    echo_stop || rc=1
    check_counters "$mode" "$TCP_ECHO_LOG" || rc=1
    ! xdp_attached || { echo "[$mode] XDP program left attached after exit" >&2; rc=1; }
    [ "$rc" -eq 0 ] || { echo "--- ust-echo log ($mode)" >&2; grep -Ev '^w[01] ' "$TCP_ECHO_LOG" | tail -n 20 >&2;
                         tcp_diag "$name" "$TCP_ECHO_LOG"; }
    tcp_result "$name" "$rc"
    return "$rc"
}

for mode in native generic; do
    run_mode "$mode"
done
tcp_finish
