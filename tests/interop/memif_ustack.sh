#!/usr/bin/env bash
# Two ustack processes over memif, no privileges needed: ust-udpecho as the
# memif server, ust-udpping as the client, datagrams of 64, 1400 and 8000
# bytes (fragmented and reassembled on both sides) byte-exact. The echo
# server must also exit cleanly on SIGTERM and remove its socket file.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${UST_BUILD:-$ROOT/build}/bin
TMP=$(mktemp -d /tmp/memif_ustack.XXXXXX)
SOCK=$TMP/memif.sock
ECHO_PID=
cleanup() {
    [ -n "$ECHO_PID" ] && kill "$ECHO_PID" 2>/dev/null && wait "$ECHO_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
"$BIN/ust-udpecho" --dev "memif:$SOCK,role=server" --ip 10.61.0.1/24 --stats >"$TMP/echo.out" 2>&1 &
ECHO_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "FAIL: no memif socket"; cat "$TMP/echo.out"; exit 1; }
ping_run() {   # size count
    timeout 60 "$BIN/ust-udpping" --dev "memif:$SOCK" --ip 10.61.0.2/24 --to 10.61.0.1:7 \
        --size "$1" --count "$2" >"$TMP/ping.out" 2>&1
    local rc=$?
    cat "$TMP/ping.out"
    [ $rc -eq 0 ] || { echo "FAIL: ust-udpping --size $1"; cat "$TMP/echo.out"; exit 1; }
}
ping_run 64 20000
ping_run 1400 2000
ping_run 8000 500
kill -TERM "$ECHO_PID"
timeout 10 tail --pid="$ECHO_PID" -f /dev/null || { echo "FAIL: echo server did not exit"; exit 1; }
wait "$ECHO_PID"; rc=$?
ECHO_PID=
[ $rc -eq 0 ] || { echo "FAIL: echo server exit $rc"; exit 1; }
[ -e "$SOCK" ] && { echo "FAIL: socket file left behind"; exit 1; }
grep -E "^(udp_rx|ip_frag_reassembled) " "$TMP/echo.out"
echo "PASS: ustack <-> ustack over memif"
