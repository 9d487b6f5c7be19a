#!/usr/bin/env bash
# memif with several queues, no privileges needed: ust-echo --workers 2 as the
# memif server (one connection, one ring pair per worker), ust-tcpclient with
# one worker as the client offering queues=2 (one device serving both ring
# pairs, each frame sent on the ring of its flow's steering hash). 64
# connections echo their bytes; both server workers must have served some,
# and no TCP frame may have needed a handoff between server workers (the
# client already put every flow on its owner's ring).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${UST_BUILD:-$ROOT/build}
for x in "$B/bin/ust-echo" "$B/tests/bin/ust-tcpclient"; do
    [ -x "$x" ] || { echo "SKIP: $x not built"; exit 77; }
done
TMP=$(mktemp -d /tmp/workers_memif.XXXXXX)
SOCK=$TMP/memif.sock
CONNS=${WORKERS_CONNS:-64}
BYTES=${WORKERS_BYTES:-100000}
ECHO_PID=
cleanup() {
    [ -n "$ECHO_PID" ] && kill "$ECHO_PID" 2>/dev/null && wait "$ECHO_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- ust-echo:"; cat "$TMP/echo.out"; exit 1; }

"$B/bin/ust-echo" --dev "memif:$SOCK,role=server" --ip 10.62.0.1/24 --workers 2 --stats \
    >"$TMP/echo.out" 2>&1 &
ECHO_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "no memif socket"

timeout 120 "$B/tests/bin/ust-tcpclient" --dev "memif:$SOCK,queues=2" --ip 10.62.0.2/24 \
    --connect 10.62.0.1:7 --mode echo --send-bytes "$BYTES" --conns "$CONNS" --stats \
    >"$TMP/client.out" 2>&1
crc=$?
tail -n 3 "$TMP/client.out"
[ $crc -eq 0 ] || { cat "$TMP/client.out"; fail "ust-tcpclient exit $crc"; }

kill -TERM "$ECHO_PID"
timeout 10 tail --pid="$ECHO_PID" -f /dev/null || fail "echo server did not exit"
wait "$ECHO_PID"; rc=$?
ECHO_PID=
[ $rc -eq 0 ] || fail "echo server exit $rc"
[ -e "$SOCK" ] && fail "socket file left behind"

LOG=$TMP/echo.out
grep -E "^w[01] (echo_accepted|echo_bytes|echo_errors|steer_tx|steer_arp_copies|dev_rx|dev_tx) " "$LOG"
ctr() { awk -v k="$1 $2" '$1" "$2 == k { print $3; f=1 } END { if (!f) print 0 }' "$LOG"; }
total=0 bytes=0
for w in w0 w1; do
    acc=$(ctr "$w" echo_accepted)
    total=$((total + acc))
    bytes=$((bytes + $(ctr "$w" echo_bytes)))
    [ "$acc" -gt 0 ] || fail "$w served no connection"
    [ "$(ctr "$w" echo_errors)" -eq 0 ] || fail "$w counted errors"
    [ "$(ctr "$w" dev_rx)" -gt 0 ] || fail "$w received nothing on its own ring"
    mis=$(( $(ctr "$w" steer_tx) - $(ctr "$w" steer_arp_copies) ))
    [ "$mis" -eq 0 ] || fail "$w handed $mis frames to the other worker"
done
[ "$total" -eq "$CONNS" ] || fail "accepted $total of $CONNS"
[ "$bytes" -eq $((CONNS * BYTES)) ] || fail "echoed $bytes bytes, want $((CONNS * BYTES))"
echo "PASS: ust-echo --workers 2 over one memif connection with 2 queue pairs"
