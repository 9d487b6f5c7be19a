#!/bin/bash
# The afpacket backend against the kernel, below the stack (tests/tools/devcheck):
#   1. kernel -> ustack: N pattern frames from a raw socket arrive intact
#   2. ustack -> kernel: N pattern frames from the TX ring arrive intact
#   3. checksum offload: a UDP datagram from the kernel peer with tx
#      checksumming ON is marked PKT_F_CSUM_PARTIAL; with it OFF it is not
#   4. oversize: with MTU 4000, a 3000-byte frame (bigger than devcheck's
#      2048-byte buffers) is dropped and counted dev_rx_oversize
# Each check runs for both receive rings, rx=v2 (the default) and rx=v3
# (whose TX ring is then V3 too); bad option combinations are refused.
# Needs root; makes namespaces ust-afp-{u,k}-PID joined by a veth pair.
# Env: B or UST_BUILD (build dir, default build), DEVCHECK (binary to test).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BDIR=${B:-${UST_BUILD:-build}}
case $BDIR in /*) ;; *) BDIR=$ROOT/$BDIR ;; esac
DEVCHECK=${DEVCHECK:-$BDIR/tests/bin/devcheck}
PEER=$ROOT/tests/tools/rawpeer.py
PY=/usr/bin/python3
N=500

if [ "$(id -u)" != 0 ]; then echo "SKIP: dev_afpacket needs root"; exit 77; fi
for t in ip ethtool timeout "$PY"; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not available"; exit 77; }
done
[ -x "$DEVCHECK" ] || { echo "FAIL: $DEVCHECK not built (make tests)"; exit 1; }

NSU=ust-afp-u-$$ NSK=ust-afp-k-$$ VU=afu$$ VK=afk$$
TMP=$(mktemp -d /tmp/dev_afpacket.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NSU" 2>/dev/null
    ip netns del "$NSK" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$TMP"/*.out; do [ -f "$f" ] && sed "s|^|  $(basename "$f"): |" "$f"; done; exit 1; }
inu() { ip netns exec "$NSU" "$@"; }
ink() { ip netns exec "$NSK" "$@"; }

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

ip netns add "$NSU" && ip netns add "$NSK" || fail "cannot create namespaces"
ip link add "$VU" netns "$NSU" type veth peer name "$VK" netns "$NSK" || fail "veth"
inu ip link set lo up; ink ip link set lo up
inu ip link set "$VU" up && ink ip link set "$VK" up || fail "link up"
# No IPv6 chatter (router/neighbour solicitations) on the wire under test.
inu sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ink sysctl -qw net.ipv6.conf.all.disable_ipv6=1

# ---- the checks, for one receive ring mode ($RX) ---------------------------
# udp_flag EXPECTED: one datagram from the kernel; devcheck reports the flag.
udp_flag() {
    bg "$TMP/udp.out" inu timeout 30 "$DEVCHECK" --dev "afpacket:$VU,rx=$RX" --mode recvudp \
        --timeout 5000 --stats
    local pid=$BGPID
    wait_ready "$TMP/udp.out" "$pid" || fail "[rx=$RX] devcheck recvudp did not start"
    ink timeout 10 "$PY" -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"checksum me" * 10, ("10.231.0.1", 9))
    time.sleep(0.1)' || fail "[rx=$RX] udp send"
    wait "$pid" || fail "[rx=$RX] devcheck recvudp got nothing"
    grep -q "recvudp csum_partial=$1" "$TMP/udp.out" || fail "[rx=$RX] csum_partial is not $1"
}
run_checks() {
    inu ip link set "$VU" mtu 1500 && ink ip link set "$VK" mtu 1500 || fail "[rx=$RX] mtu"
    # ---- 1. kernel -> ustack --------------------------------------------------
    bg "$TMP/rx.out" inu timeout 30 "$DEVCHECK" --dev "afpacket:$VU,rx=$RX" --mode recvraw \
        --count $N --timeout 15000 --stats
    RXPID=$BGPID
    wait_ready "$TMP/rx.out" "$RXPID" || fail "[rx=$RX] devcheck recvraw did not start"
    ink timeout 30 "$PY" "$PEER" send "$VK" $N >"$TMP/send.out" 2>&1 || fail "[rx=$RX] rawpeer send"
    wait "$RXPID" || fail "[rx=$RX] kernel->afpacket: devcheck recvraw"
    grep -q "recvraw count=$N bad=0" "$TMP/rx.out" || fail "[rx=$RX] kernel->afpacket count"
    echo "ok [rx=$RX] 1 kernel -> afpacket: $N frames intact"

    # ---- 2. ustack -> kernel --------------------------------------------------
    bg "$TMP/krx.out" ink timeout 30 "$PY" "$PEER" recv "$VK" $N 15
    KPID=$BGPID
    wait_ready "$TMP/krx.out" "$KPID" || fail "[rx=$RX] rawpeer recv did not start"
    inu timeout 30 "$DEVCHECK" --dev "afpacket:$VU,rx=$RX" --mode sendraw --count $N \
        >"$TMP/tx.out" 2>&1 || fail "[rx=$RX] devcheck sendraw"
    wait "$KPID" || fail "[rx=$RX] afpacket->kernel: rawpeer recv"
    grep -q "recv count=$N bad=0" "$TMP/krx.out" || fail "[rx=$RX] afpacket->kernel count"
    echo "ok [rx=$RX] 2 afpacket -> kernel: $N frames intact"

    # ---- 3. TP_STATUS_CSUMNOTREADY -> PKT_F_CSUM_PARTIAL ----------------------
    MAC=$(sed -n 's/^READY mac=\([0-9a-f:]*\).*/\1/p' "$TMP/rx.out")
    [ -n "$MAC" ] || fail "[rx=$RX] no MAC reported"
    [ "$MAC" = "$(inu cat "/sys/class/net/$VU/address")" ] || fail "[rx=$RX] MAC $MAC is not $VU's"
    ink ip addr replace 10.231.0.2/24 dev "$VK" || fail "[rx=$RX] addr"
    ink ip neigh replace 10.231.0.1 lladdr "$MAC" dev "$VK" nud permanent || fail "[rx=$RX] neigh"

    ink ethtool -K "$VK" tx on >/dev/null 2>&1 || fail "[rx=$RX] ethtool tx on"
    udp_flag 1
    grep -q "^dev_rx_csum_partial " "$TMP/udp.out" || fail "[rx=$RX] dev_rx_csum_partial not counted"
    echo "ok [rx=$RX] 3a peer tx checksum offload on: PKT_F_CSUM_PARTIAL set and counted"
    ink ethtool -K "$VK" tx off >/dev/null 2>&1 || fail "[rx=$RX] ethtool tx off"
    udp_flag 0
    echo "ok [rx=$RX] 3b peer tx checksum offload off: flag clear"

    # ---- 4. frames larger than a pool buffer are dropped and counted ----------
    inu ip link set "$VU" mtu 4000 && ink ip link set "$VK" mtu 4000 || fail "[rx=$RX] mtu"
    bg "$TMP/big.out" inu timeout 30 "$DEVCHECK" --dev "afpacket:$VU,rx=$RX" --mode recvraw \
        --count 50 --timeout 10000 --stats
    BIGPID=$BGPID
    wait_ready "$TMP/big.out" "$BIGPID" || fail "[rx=$RX] devcheck recvraw (big) did not start"
    ink timeout 30 "$PY" "$PEER" send "$VK" 50 3000 >"$TMP/send.out" 2>&1 || fail "[rx=$RX] rawpeer send big"
    wait "$BIGPID" || fail "[rx=$RX] oversize: devcheck recvraw"
    grep -q "recvraw count=50 bad=0" "$TMP/big.out" || fail "[rx=$RX] oversize: frames after it"
    grep -Eq "^dev_rx_oversize +1$" "$TMP/big.out" || fail "[rx=$RX] oversize: not counted"
    echo "ok [rx=$RX] 4 oversize frame dropped and counted"
}

# ---- option handling ------------------------------------------------------
# refuse OPTIONS MESSAGE: opening afpacket:$VU,OPTIONS fails, saying MESSAGE.
refuse() {
    if inu timeout 10 "$DEVCHECK" --dev "afpacket:$VU,$1" --mode recvraw --count 1 \
        --timeout 100 >"$TMP/opt.out" 2>&1; then
        fail "option '$1' accepted"
    fi
    grep -q "$2" "$TMP/opt.out" || fail "option '$1': no '$2' in the error"
}
refuse "rx=v4" "bad value for rx"
refuse "rx=" "bad value for rx"
refuse "rx=v2,tov=5" "tov applies to rx=v3 only"
refuse "tov=5" "tov applies to rx=v3 only"
echo "ok 0 bad options refused (rx=v4, rx=, tov without rx=v3)"

for RX in v2 v3; do
    run_checks
done

echo "PASS dev_afpacket"
exit 0
