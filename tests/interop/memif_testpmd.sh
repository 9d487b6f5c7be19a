#!/bin/bash
# The memif backend against a real DPDK application: dpdk-testpmd with a
# net_memif server port in 5tswap mode (swaps MACs, IPv4 addresses and L4
# ports of every frame and sends it back). tests/tools/memif-probe connects as
# memif client, sends numbered UDP frames and checks each reply is its frame
# swapped, with valid checksums, in order, none lost:
#   1. 100000 60-byte frames (interrupts on: testpmd kicks our eventfd)
#   2. 20000 1000-byte frames with irq=0 (polling), reconnecting to the same
#      testpmd after run 1 disconnected
#   3. 2000 full-size 1514-byte frames
# No network namespaces: memif is a unix socket and shared memory in $TMP.
# testpmd runs with --no-huge; if it cannot start and we are not root the
# test is skipped. Env: B (build dir, default build), MEMIF_PROBE (binary).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BDIR=${B:-build}
case $BDIR in /*) ;; *) BDIR=$ROOT/$BDIR ;; esac
PROBE=${MEMIF_PROBE:-$BDIR/tests/bin/memif-probe}

command -v dpdk-testpmd >/dev/null || { echo "SKIP: dpdk-testpmd not installed"; exit 77; }
command -v timeout >/dev/null || { echo "SKIP: timeout not available"; exit 77; }
[ -x "$PROBE" ] || { echo "FAIL: $PROBE not built (make tests)"; exit 1; }

TMP=$(mktemp -d /tmp/memif_testpmd.XXXXXX)
SOCK=$TMP/memif.sock
PREFIX=ustmemif$$
TP_PID=
testpmd_stop() {
    if [ -n "$TP_PID" ]; then
        kill -INT "$TP_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$TP_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$TP_PID" 2>/dev/null
        wait "$TP_PID" 2>/dev/null
    fi
    TP_PID=
}
cleanup() {
    testpmd_stop
    rm -rf "$TMP"
    # DPDK's runtime directory for our --file-prefix (root / non-root place).
    rm -rf "/var/run/dpdk/$PREFIX" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$PREFIX"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for f in "$TMP"/*.out; do [ -f "$f" ] && tail -n 40 "$f" | sed "s|^|  $(basename "$f"): |"; done
    exit 1
}

# --stats-period keeps a non-interactive testpmd running until SIGINT.
testpmd_start() {
    timeout 120 dpdk-testpmd --no-huge -m 256 --no-pci -l 0-1 --file-prefix="$PREFIX" \
        --vdev="net_memif0,role=server,id=0,socket=$SOCK,socket-abstract=no" -- \
        --forward-mode=5tswap --auto-start --stats-period 1 --total-num-mbufs=16384 \
        </dev/null >"$TMP/testpmd.out" 2>&1 &
    TP_PID=$!

    for _ in $(seq 100); do
        [ -S "$SOCK" ] && grep -q "forwards packets" "$TMP/testpmd.out" && break
        kill -0 "$TP_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! [ -S "$SOCK" ] || ! kill -0 "$TP_PID" 2>/dev/null; then
        if [ "$(id -u)" != 0 ]; then
            echo "SKIP: dpdk-testpmd did not start without root"; exit 77
        fi
        fail "dpdk-testpmd did not start"
    fi
}
testpmd_start

run_probe() {   # name, probe args...
    local name=$1
    shift
    timeout 60 "$PROBE" "$@" >"$TMP/$name.out" 2>&1
    local rc=$?
    [ $rc -eq 0 ] || fail "$name: memif-probe exited $rc"
    grep -q " bad 0 lost 0 reordered 0 " "$TMP/$name.out" || fail "$name: bad, lost or reordered replies"
    echo "$name: $(head -n 1 "$TMP/$name.out")"
}

run_probe small --dev "memif:$SOCK" --count 100000 --window 256 --timeout-ms 30000
run_probe large_polling --dev "memif:$SOCK,irq=0" --count 20000 --size 1000 --timeout-ms 30000
# A fresh testpmd for the rest: DPDK 22.11's memif server has been seen
# (rarely, on a loaded machine) not to take a second reconnection; ustack's
# own reconnect is covered by the run above.
testpmd_stop
rm -f "$SOCK"
testpmd_start
run_probe max_frame --dev "memif:$SOCK" --count 2000 --size 1514 --timeout-ms 30000
# The whole stack: ust-udpping's UDP comes back from testpmd as if an echo
# server at 10.60.0.1 answered. testpmd reflects ARP too, so the peer is a
# static neighbour (--neigh). Sizes stay below the MTU: 5tswap would swap
# "ports" inside non-first IP fragments.
UDPPING=$BDIR/bin/ust-udpping
[ -x "$UDPPING" ] || fail "$UDPPING not built"
timeout 60 "$UDPPING" --dev "memif:$SOCK" --ip 10.60.0.2/24 --neigh 10.60.0.1=02:00:00:00:60:01 \
    --to 10.60.0.1:7 --count 20000 --size 64 --stats >"$TMP/udpping.out" 2>&1 || fail "ust-udpping (64 B) failed"
echo "stack small: $(head -n 1 "$TMP/udpping.out")"
timeout 60 "$UDPPING" --dev "memif:$SOCK" --ip 10.60.0.2/24 --neigh 10.60.0.1=02:00:00:00:60:01 \
    --to 10.60.0.1:7 --count 2000 --size 1400 >"$TMP/udpping2.out" 2>&1 || fail "ust-udpping (1400 B) failed"
echo "stack 1400: $(head -n 1 "$TMP/udpping2.out")"
kill -0 "$TP_PID" 2>/dev/null || fail "dpdk-testpmd died"
echo "PASS: memif against dpdk-testpmd 5tswap"
exit 0
