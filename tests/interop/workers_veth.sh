#!/usr/bin/env bash
# ust-echo --workers 2 on AF_PACKET over a veth with 2 queues each way: the
# kernel opens 200 connections, every byte must come back, and each worker
# must have served some of them (per-worker counters, "wN " prefix). The
# fanout's cBPF steering must agree with ustack's own hash: a frame the
# kernel gave to the wrong worker is handed over and counted (steer_tx);
# for TCP flows that count must stay 0 (ARP copies are expected).
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
[ -x "$TCP_BIN/ust-echo" ] || { echo "SKIP: $TCP_BIN/ust-echo not built"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }
TCP_PCAP=0

netns_setup_mq_pair wk
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIF=$NETNS_IF_A UIF=$NETNS_IF_B
KIP=10.79.0.1 UIP=10.79.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$KIF" || exit 1

CONNS=${WORKERS_CONNS:-200}
BYTES=$(tcp_bytes 0.25)
rc=0
tcp_echo_start "$UNS" workers --dev "afpacket:$UIF" --ip "$UIP/24" --workers 2 || exit 1
grep -q "2 workers" "$TCP_ECHO_LOG" || { echo "ust-echo did not start 2 workers" >&2; rc=1; }
ip netns exec "$KNS" timeout 300 $TCPPEER client "$UIP" 7 --bytes "$BYTES" --conns "$CONNS" \
    --timeout "$TCP_TIMEOUT" 2>&1 | tail -n 5 | sed "s/^/[workers] /"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "[workers] kernel client failed" >&2; rc=1; }

# Stop; the per-worker counters come out with a wN prefix.
kill -TERM "$TCP_ECHO_PID" 2>/dev/null
timeout 10 tail --pid="$TCP_ECHO_PID" -f /dev/null || { echo "ust-echo did not exit" >&2; rc=1; }
wait "$TCP_ECHO_PID" || { echo "ust-echo exited non-zero" >&2; rc=1; }
netns_untrack_pid "$TCP_ECHO_PID"
LOG=$TCP_ECHO_LOG
grep -E "^w[01] (echo_accepted|echo_bytes|echo_errors|steer_[a-z_]+|dev_rx) " "$LOG" | sed "s/^/[workers] /"

ctr() { awk -v k="$1 $2" '$1" "$2 == k { print $3; f=1 } END { if (!f) print 0 }' "$LOG"; }
total=0 bytes=0
for w in w0 w1; do
    acc=$(ctr "$w" echo_accepted)
    total=$((total + acc))
    bytes=$((bytes + $(ctr "$w" echo_bytes)))
    [ "$acc" -gt 0 ] || { echo "[workers] $w served no connection" >&2; rc=1; }
    [ "$(ctr "$w" echo_errors)" -eq 0 ] || { echo "[workers] $w counted errors" >&2; rc=1; }
done
[ "$total" -eq "$CONNS" ] || { echo "[workers] accepted $total of $CONNS" >&2; rc=1; }
[ "$bytes" -eq $((CONNS * BYTES)) ] || { echo "[workers] echoed $bytes bytes, want $((CONNS * BYTES))" >&2; rc=1; }
# TCP frames the kernel steered to the wrong worker: handed over minus the
# ARP copies must be 0 when the cBPF program computes ustack's hash.
for w in w0 w1; do
    mis=$(( $(ctr "$w" steer_tx) - $(ctr "$w" steer_arp_copies) ))
    echo "[workers] $w frames handed over (not ARP): $mis"
    [ "$mis" -le 2 ] || { echo "[workers] $w: kernel steering disagrees with ustack's hash" >&2; rc=1; }
done
[ "$rc" -eq 0 ] || { echo "--- ust-echo log" >&2; tail -n 60 "$LOG" >&2; }
[ "$rc" -eq 0 ] && echo "PASS workers_veth" || echo "FAIL workers_veth"
exit "$rc"
