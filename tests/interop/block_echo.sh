#!/usr/bin/env bash
# ust-block-echo (blocking calls, one coroutine per connection, one thread)
# serving 1,000 concurrent kernel TCP connections over AF_PACKET, its
# namespace without an IP address; tcppeer.py (one selector loop) sends
# each its own data and checks every byte back. Then a clean exit on
# SIGTERM with counters: every connection accepted, none in error.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
BLOCK_ECHO=$TCP_BIN/ust-block-echo
[ -x "$BLOCK_ECHO" ] || { echo "SKIP: $BLOCK_ECHO not built (make all)"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 1100 ]; then
    echo "SKIP: cannot raise the open file limit to 1100 (have $(ulimit -n))"
    exit 77
fi
netns_setup_pair be || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B UIF=$NETNS_IF_B KIP=10.81.0.1 UIP=10.81.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1
ip netns exec "$KNS" sysctl -qw net.ipv4.ip_local_port_range="20000 60000"

CONNS=${BLOCK_ECHO_CONNS:-1000}
BYTES=$(tcp_bytes 0.0625)
LOG=$NETNS_TMP/block_echo.log
# shellcheck disable=SC2046
ip netns exec "$UNS" "$BLOCK_ECHO" --dev "afpacket:$UIF" --ip "$UIP/24" --stats $(tcp_pcap_args block_echo) \
    >"$LOG" 2>&1 &
PID=$!
netns_track_pid "$PID"
for _ in $(seq 1 50); do
    grep -q "serving" "$LOG" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
grep -q "serving" "$LOG" || { echo "FAIL: ust-block-echo did not start"; cat "$LOG"; exit 1; }

rc=0
ip netns exec "$KNS" timeout 600 $TCPPEER client "$UIP" 7 --bytes "$BYTES" --conns "$CONNS" \
    --timeout "$TCP_TIMEOUT" 2>&1 | tail -n 15 | sed "s/^/[block_echo] /"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAIL: kernel clients did not all get their bytes back"; rc=1; }

kill -TERM "$PID"
timeout 10 tail --pid="$PID" -f /dev/null || { echo "FAIL: ust-block-echo did not exit on SIGTERM"; rc=1; }
wait "$PID"; erc=$?
netns_untrack_pid "$PID"
[ "$erc" -eq 0 ] || { echo "FAIL: ust-block-echo exited with $erc"; rc=1; }
val() { sed -n "s/^$1 //p" "$LOG"; }
grep -E "^echo_" "$LOG" | sed "s/^/[block_echo] /"
[ "$(val echo_accepted)" = "$CONNS" ] || { echo "FAIL: accepted $(val echo_accepted), want $CONNS"; rc=1; }
[ "$(val echo_closed)" = "$CONNS" ] || { echo "FAIL: closed $(val echo_closed), want $CONNS"; rc=1; }
[ "$(val echo_errors)" = 0 ] || { echo "FAIL: $(val echo_errors) connection errors"; rc=1; }
[ "$(val echo_bytes)" = "$((CONNS * BYTES))" ] || { echo "FAIL: echoed $(val echo_bytes) bytes, want $((CONNS * BYTES))"; rc=1; }
max=$(val echo_max_active)
echo "ust-block-echo held at most $max connections at once"
# Concurrency, not one client after another: tcppeer opens them all at once.
[ "${max:-0}" -ge $((CONNS / 2)) ] || { echo "FAIL: at most $max connections at once"; rc=1; }
if [ "$rc" -ne 0 ]; then
    tcp_diag block_echo "$LOG"
    exit 1
fi
echo "PASS: ust-block-echo served $CONNS concurrent kernel connections"
