#!/usr/bin/env bash
# 10,000 concurrent kernel TCP connections held open against one ust-echo
# (ustack on AF_PACKET, its namespace without an IP address). Four client
# processes (tests/tools/tcphold.py) open 2,500 connections each, verify an
# echo on every one, and hold them all until told to close. While all are
# held, ust-stat must list 10,000 ESTAB connections on the server; at exit
# ust-echo's counters must show 10,000 accepted, 10,000 at once
# (echo_max_active), every byte echoed, no error.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
[ -x "$TCP_BIN/ust-echo" ] && [ -x "$TCP_BIN/ust-stat" ] || { echo "SKIP: ust-echo/ust-stat not built"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }

PROCS=${TCP_10K_PROCS:-4}
WORKERS=${TCP_10K_WORKERS:-1}   # ust-echo --workers
PER=${TCP_10K_PER:-2500}
CONNS=$((PROCS * PER))
MSG_LEN=32   # tcphold.py's message
# Each client holds PER sockets; the limit is per process (this shell's
# children inherit it).
ulimit -n $((PER + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((PER + 100)) ]; then
    echo "SKIP: cannot raise the open file limit to $((PER + 100)) (have $(ulimit -n))"
    exit 77
fi
TCP_PCAP=0   # 10,000 connections: a capture would only cost time
netns_setup_pair t10k || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIP=10.81.0.1 UIP=10.81.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1
ip netns exec "$KNS" sysctl -qw net.ipv4.ip_local_port_range="20000 60000"

fail() { echo "[10k] $*" >&2; echo "FAIL tcp_10k"; exit 1; }

t0=$(date +%s)
tcp_echo_start "$UNS" t10k --dev "afpacket:$NETNS_IF_B" --ip "$UIP/24" --workers "$WORKERS" || exit 1
RELEASE=$NETNS_TMP/release
CPIDS=()
for i in $(seq 1 "$PROCS"); do
    # At most 64 handshakes in flight per process: the sum stays within
    # ustack's SYN backlog, so this test measures holding, not SYN cookies.
    ip netns exec "$KNS" timeout 120 /usr/bin/python3 "$NETNS_ROOT/tests/tools/tcphold.py" "$UIP" 7 \
        --conns "$PER" --tag "p$i" --release "$RELEASE" --inflight 64 --timeout 30 \
        >"$NETNS_TMP/client$i.log" 2>&1 &
    CPIDS+=("$!")
    netns_track_pid "$!"
done

# Wait (bounded) until every client holds all of its connections.
held=0
for _ in $(seq 1 900); do
    held=$(cat "$NETNS_TMP"/client*.log 2>/dev/null | grep -c "^held $PER$")
    [ "$held" -eq "$PROCS" ] && break
    for p in "${CPIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || { cat "$NETNS_TMP"/client*.log >&2; fail "a client exited early"; }
    done
    sleep 0.1
done
[ "$held" -eq "$PROCS" ] || { tail -n 3 "$NETNS_TMP"/client*.log >&2; fail "only $held of $PROCS clients hold their connections"; }
echo "[10k] $CONNS connections open and verified after $(($(date +%s) - t0)) s"

# The server's own view, while every connection is held.
estab=0
for _ in $(seq 1 20); do   # the exported table is refreshed every 50 ms at most
    timeout 20 "$TCP_BIN/ust-stat" -t "$TCP_ECHO_PID" >"$NETNS_TMP/stat.t" 2>&1 || fail "ust-stat -t failed"
    estab=$(grep -c "^ESTAB .* $UIP:7 " "$NETNS_TMP/stat.t")
    [ "$estab" -eq "$CONNS" ] && break
    sleep 0.2
done
echo "[10k] ust-stat lists $estab ESTAB connections on port 7"
[ "$estab" -eq "$CONNS" ] || fail "want $CONNS ESTAB"

touch "$RELEASE"
for p in "${CPIDS[@]}"; do
    wait "$p" || { cat "$NETNS_TMP"/client*.log >&2; fail "client $p failed"; }
    netns_untrack_pid "$p"
done
grep -h "^closed" "$NETNS_TMP"/client*.log | sed "s/^/[10k] /"
kill -TERM "$TCP_ECHO_PID"
timeout 20 tail --pid="$TCP_ECHO_PID" -f /dev/null || fail "ust-echo did not exit on SIGTERM"
wait "$TCP_ECHO_PID" || fail "ust-echo exited non-zero"
netns_untrack_pid "$TCP_ECHO_PID"

# With several workers, every worker prints its own "wN " lines: sum them.
ctr() { awk -v k="$1" '$1 == k { s += $2 } $2 == k && $1 ~ /^w[0-9]+$/ { s += $3 } END { print s + 0 }' "$TCP_ECHO_LOG"; }
for k in echo_accepted echo_closed echo_max_active echo_errors echo_bytes; do echo "[10k] $k $(ctr $k)"; done
[ "$(ctr echo_accepted)" -eq "$CONNS" ] || fail "accepted $(ctr echo_accepted), want $CONNS"
# Per worker this is the most it held at once; all were held together
# (the clients waited for each other), so the sum is the total at once.
[ "$(ctr echo_max_active)" -eq "$CONNS" ] || fail "at most $(ctr echo_max_active) at once, want $CONNS"
[ "$(ctr echo_closed)" -eq "$CONNS" ] || fail "closed $(ctr echo_closed), want $CONNS"
[ "$(ctr echo_errors)" -eq 0 ] || fail "errors $(ctr echo_errors)"
[ "$(ctr echo_bytes)" -eq $((CONNS * MSG_LEN)) ] || fail "echoed $(ctr echo_bytes) bytes, want $((CONNS * MSG_LEN))"
echo "[10k] total $(($(date +%s) - t0)) s"
echo "PASS tcp_10k"
