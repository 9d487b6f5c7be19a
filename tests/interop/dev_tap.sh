#!/bin/bash
# The tap backend against the kernel, below the stack (tests/tools/devcheck).
# devcheck creates the tap inside a namespace; the kernel end is a raw
# socket (tests/tools/rawpeer.py) bound to that tap interface.
#   1. kernel -> ustack: N pattern frames arrive intact; the MTU is reported
#   2. ustack -> kernel: N pattern frames arrive intact
#   3. the tap is not persistent: gone once devcheck has exited
#   4. oversize: with the tap's MTU at 4000, a 3000-byte frame (bigger than
#      devcheck's 2048-byte buffers) is dropped and counted dev_rx_oversize
# Needs root; makes namespace ust-tap-PID.
# Env: B (build dir, default build), DEVCHECK (binary to test).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BDIR=${B:-build}
case $BDIR in /*) ;; *) BDIR=$ROOT/$BDIR ;; esac
DEVCHECK=${DEVCHECK:-$BDIR/tests/bin/devcheck}
PEER=$ROOT/tests/tools/rawpeer.py
PY=/usr/bin/python3
N=500

if [ "$(id -u)" != 0 ]; then echo "SKIP: dev_tap needs root"; exit 77; fi
for t in ip timeout "$PY"; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not available"; exit 77; }
done
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
[ -x "$DEVCHECK" ] || { echo "FAIL: $DEVCHECK not built (make tests)"; exit 1; }

NS=ust-tap-$$ TAP=ustap$$
TMP=$(mktemp -d /tmp/dev_tap.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NS" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$TMP"/*.out; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f"; done; exit 1; }
inns() { ip netns exec "$NS" "$@"; }

# wait_ready FILE PID: until FILE has a READY line (5 s at most).
wait_ready() {
    for _ in $(seq 50); do
        grep -qs '^READY' "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# bg OUTFILE CMD...: start CMD in the background, remember its PID in BGPID.
bg() {
    local out=$1; shift
    "$@" >"$out" 2>&1 &
    BGPID=$!
    PIDS+=("$BGPID")
}

ip netns add "$NS" || fail "cannot create namespace"
inns ip link set lo up
# No IPv6 chatter (router/neighbour solicitations) from the kernel end.
inns sysctl -qw net.ipv6.conf.all.disable_ipv6=1
inns sysctl -qw net.ipv6.conf.default.disable_ipv6=1

# ---- 1. kernel -> ustack --------------------------------------------------
bg "$TMP/rx.out" inns timeout 30 "$DEVCHECK" --dev "tap:$TAP" --mode recvraw \
    --count $N --timeout 15000 --stats
RXPID=$BGPID
wait_ready "$TMP/rx.out" "$RXPID" || fail "devcheck recvraw did not start"
grep -q "^READY .*mtu=1500$" "$TMP/rx.out" || fail "MTU of $TAP not reported"
inns ip link show "$TAP" | grep -q "UP" || fail "$TAP not up"
inns timeout 30 "$PY" "$PEER" send "$TAP" $N >"$TMP/send.out" 2>&1 || fail "rawpeer send"
wait "$RXPID" || fail "kernel->tap: devcheck recvraw"
grep -q "recvraw count=$N bad=0" "$TMP/rx.out" || fail "kernel->tap count"
echo "ok 1 kernel -> tap: $N frames intact"

# ---- 2. ustack -> kernel --------------------------------------------------
bg "$TMP/tx.out" inns timeout 30 "$DEVCHECK" --dev "tap:$TAP" --mode sendraw \
    --count $N --timeout 10000 --go "$TMP/go"
TXPID=$BGPID
wait_ready "$TMP/tx.out" "$TXPID" || fail "devcheck sendraw did not start"
bg "$TMP/krx.out" inns timeout 30 "$PY" "$PEER" recv "$TAP" $N 15
KPID=$BGPID
wait_ready "$TMP/krx.out" "$KPID" || fail "rawpeer recv did not start"
touch "$TMP/go"
wait "$TXPID" || fail "devcheck sendraw"
wait "$KPID" || fail "tap->kernel: rawpeer recv"
grep -q "recv count=$N bad=0" "$TMP/krx.out" || fail "tap->kernel count"
echo "ok 2 tap -> kernel: $N frames intact"

# ---- 3. not persistent ------------------------------------------------------
inns ip link show "$TAP" >/dev/null 2>&1 && fail "$TAP still exists after devcheck exited"
echo "ok 3 tap removed when devcheck closed it"

# ---- 4. frames larger than a pool buffer are dropped and counted ----------
rm -f "$TMP/go"
bg "$TMP/big.out" inns timeout 30 "$DEVCHECK" --dev "tap:$TAP" --mode recvraw \
    --count 50 --timeout 10000 --go "$TMP/go" --stats
BIGPID=$BGPID
wait_ready "$TMP/big.out" "$BIGPID" || fail "devcheck recvraw (big) did not start"
inns ip link set "$TAP" mtu 4000 || fail "mtu"
touch "$TMP/go"
inns timeout 30 "$PY" "$PEER" send "$TAP" 50 3000 >"$TMP/send.out" 2>&1 || fail "rawpeer send big"
wait "$BIGPID" || fail "oversize: devcheck recvraw"
grep -q "recvraw count=50 bad=0" "$TMP/big.out" || fail "oversize: frames after it"
grep -Eq "^dev_rx_oversize +1$" "$TMP/big.out" || fail "oversize: not counted"
echo "ok 4 oversize frame dropped and counted"

echo "PASS dev_tap"
exit 0
