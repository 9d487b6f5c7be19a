#!/usr/bin/env bash
# ust-stat reads a running stack's counters and TCP connections from shared
# memory. Two ustack processes over memif (no root needed): ust-echo as the
# memif server, ust-tcpclient holding 8 connections busy with echo traffic.
# Checks: the listener and 8 ESTAB rows on both sides; tcp_passive_opens 8 /
# tcp_active_opens 8; default output has no zero counters, -a has all; 50
# snapshots taken under load are each consistent (dev_rx >= eth_rx >= ip_rx
# >= tcp_rx, which a torn copy would break) and never go backwards; the shm
# objects disappear when the programs exit on SIGTERM.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${UST_BUILD:-$ROOT/build}
BIN=$B/bin
TBIN=$B/tests/bin
TMP=$(mktemp -d /tmp/ust_stat.XXXXXX)
SOCK=$TMP/memif.sock
EP= CP=
cleanup() {
    for p in $CP $EP; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$TMP/echo.out" ] && tail -5 "$TMP/echo.out"; exit 1; }
for b in "$BIN/ust-stat" "$BIN/ust-echo" "$TBIN/ust-tcpclient"; do [ -x "$b" ] || fail "$b not built"; done
[ -d /dev/shm ] || { echo "SKIP: no /dev/shm"; exit 77; }

"$BIN/ust-stat" --help | grep -q "usage: ust-stat" || fail "--help"
"$BIN/ust-stat" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no PID must be a usage error (2)"

"$BIN/ust-echo" --dev "memif:$SOCK,role=server" --ip 10.64.0.1/24 >"$TMP/echo.out" 2>&1 &
EP=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && [ -e "/dev/shm/ustack.$EP" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "no memif socket"
[ -e "/dev/shm/ustack.$EP" ] || fail "ust-echo exports no /dev/shm/ustack.$EP"

# Idle: just the listener; -a prints every counter, zeros included.
timeout 10 "$BIN/ust-stat" -t "$EP" >"$TMP/idle.t" || fail "ust-stat -t (idle)"
cat "$TMP/idle.t"
grep -Eq '^LISTEN +0 +4096 +0\.0\.0\.0:7 +0\.0\.0\.0:\*' "$TMP/idle.t" || fail "listener not shown"
[ "$(grep -c ESTAB "$TMP/idle.t")" -eq 0 ] || fail "connections before any client"
timeout 10 "$BIN/ust-stat" -a -c "$EP" >"$TMP/idle.a" || fail "ust-stat -a -c"
grep -Eq '^tcp_passive_opens +0$' "$TMP/idle.a" || fail "-a does not print zero counters"

"$TBIN/ust-tcpclient" --dev "memif:$SOCK" --ip 10.64.0.2/24 --connect 10.64.0.1:7 --conns 8 \
    --send-bytes 20000000000 --timeout 30 >"$TMP/client.out" 2>&1 &
CP=$!
ok=
for _ in $(seq 100); do
    timeout 10 "$BIN/ust-stat" -t "$EP" >"$TMP/busy.t" 2>&1 || fail "ust-stat -t (busy)"
    [ "$(grep -c '^ESTAB .* 10\.64\.0\.1:7 .*10\.64\.0\.2:' "$TMP/busy.t")" -eq 8 ] && { ok=1; break; }
    sleep 0.1
done
cat "$TMP/busy.t"
[ -n "$ok" ] || { cat "$TMP/client.out"; fail "8 ESTAB connections not listed on the server"; }
grep -q '^LISTEN ' "$TMP/busy.t" || fail "listener missing while busy"

timeout 10 "$BIN/ust-stat" -c "$EP" >"$TMP/busy.c" || fail "ust-stat -c"
grep -Eq '^tcp_passive_opens +8$' "$TMP/busy.c" || { cat "$TMP/busy.c"; fail "tcp_passive_opens != 8"; }
grep -Eq ' 0$' "$TMP/busy.c" && fail "zero counters printed without -a"
grep -q '^State' "$TMP/busy.c" && fail "-c printed connections"

timeout 10 "$BIN/ust-stat" "$CP" >"$TMP/client.stat" || fail "ust-stat on the client"
grep -Eq '^tcp_active_opens +8$' "$TMP/client.stat" || fail "client: tcp_active_opens != 8"
[ "$(grep -Ec '^ESTAB .* 10\.64\.0\.2:[0-9]+ +10\.64\.0\.1:7$' "$TMP/client.stat")" -eq 8 ] ||
    { cat "$TMP/client.stat"; fail "client: 8 ESTAB connections not listed"; }

# Snapshots under load: each internally consistent, never going backwards.
last=0
for i in $(seq 50); do
    timeout 10 "$BIN/ust-stat" -c "$EP" >"$TMP/snap" || fail "snapshot $i"
    read -r dev eth ip tcp < <(awk '{v[$1]=$2} END {print v["dev_rx"]+0, v["eth_rx"]+0, v["ip_rx"]+0, v["tcp_rx"]+0}' "$TMP/snap")
    [ "$dev" -ge "$eth" ] && [ "$eth" -ge "$ip" ] && [ "$ip" -ge "$tcp" ] ||
        fail "snapshot $i torn: dev_rx $dev eth_rx $eth ip_rx $ip tcp_rx $tcp"
    [ "$dev" -ge "$last" ] || fail "snapshot $i: dev_rx went back from $last to $dev"
    last=$dev
done
[ "$last" -gt 100000 ] || fail "too little traffic to mean anything ($last frames)"
echo "50 snapshots under load consistent; dev_rx reached $last"

kill -TERM "$CP"; wait "$CP"; client=$CP; CP=
[ -e "/dev/shm/ustack.$client" ] && fail "client left /dev/shm/ustack.$client"
kill -TERM "$EP"
timeout 10 tail --pid="$EP" -f /dev/null || fail "ust-echo did not exit"
wait "$EP"; rc=$?
dead=$EP; EP=
[ $rc -eq 0 ] || fail "ust-echo exit $rc"
[ -e "/dev/shm/ustack.$dead" ] && fail "ust-echo left /dev/shm/ustack.$dead"
"$BIN/ust-stat" "$dead" >/dev/null 2>"$TMP/gone.err"; [ $? -eq 1 ] || fail "ust-stat on a gone pid must fail"
grep -q "no such process" "$TMP/gone.err" || fail "ust-stat does not say the process is gone"
echo "PASS: ust-stat counters and connections over shared memory"
