#!/bin/bash
# The impairing bridge itself: kernel namespaces with addresses at both ends,
# ust-impair in the middle, ping through it under each impairment.
# Exit 0 pass, 77 skipped (not root / no netns), anything else fail.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/netns.sh"

netns_require_root
if ! command -v ping >/dev/null 2>&1; then
    echo "SKIP: ping not installed" >&2
    exit 77
fi

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }

netns_setup_bridge impb --seed 1 || { echo "FAIL: setup" >&2; exit 1; }

# The right end is a kernel too here (this tests the bridge, not ustack).
ip -n "$NETNS_RIGHT" addr add "$NETNS_RIGHT_IP/24" dev "$NETNS_RIGHT_IF" || exit 1
# Static neighbours: ARP has no checksum, and lost or corrupted ARP would
# blur the numbers measured below.
ip -n "$NETNS_LEFT" neigh replace "$NETNS_RIGHT_IP" lladdr "$NETNS_RIGHT_MAC" \
    dev "$NETNS_LEFT_IF" nud permanent || exit 1
ip -n "$NETNS_RIGHT" neigh replace "$NETNS_LEFT_IP" lladdr "$NETNS_LEFT_MAC" \
    dev "$NETNS_RIGHT_IF" nud permanent || exit 1

# ping_run COUNT INTERVAL: ping right from left, output in $PING_OUT.
ping_run() {
    PING_OUT=$(timeout 60 ip netns exec "$NETNS_LEFT" \
        ping -n -c "$1" -i "$2" -W 1 "$NETNS_RIGHT_IP" 2>&1)
}
ping_received() { echo "$PING_OUT" | sed -n 's/.* \([0-9]*\) received.*/\1/p'; }
ping_min_rtt() { echo "$PING_OUT" | sed -n 's/^rtt [^=]*= \([0-9.]*\)\/.*/\1/p'; }
ping_dups() { echo "$PING_OUT" | sed -n 's/.*+\([0-9]*\) duplicates.*/\1/p'; }
impair_stat() {   # impair_stat NAME: sum of the counter over both directions
    sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$NETNS_IMPAIR_LOG" | awk '{s += $1} END {print s + 0}'
}

# 1. No impairment: nothing lost.
ping_run 100 0.01
got=$(ping_received)
[ "${got:-0}" = 100 ] && pass "clean: 100/100" || fail "clean path lost packets: $PING_OUT"

# 2. Loss 0.2 each way: a round trip survives with 0.8^2, i.e. ~36% loss.
netns_impair_restart --loss 0.2 --seed 7 --stats || exit 1
ping_run 200 0.01
got=$(ping_received)
loss=$(( (200 - ${got:-0}) * 100 / 200 ))
if [ "$loss" -ge 20 ] && [ "$loss" -le 52 ]; then
    pass "loss 0.2: round-trip loss ${loss}%"
else
    fail "loss 0.2: round-trip loss ${loss}% outside 20..52%: $PING_OUT"
fi
netns_impair_stop
drops=$(impair_stat drop_loss)
[ "$drops" -gt 0 ] && pass "loss counted: $drops" || fail "bridge counted no loss drops"

# 3. Delay 50 ms each way: every RTT at least 100 ms.
netns_impair_restart --delay 50 || exit 1
ping_run 10 0.05
got=$(ping_received)
min=$(ping_min_rtt)
if [ "${got:-0}" = 10 ] && [ -n "$min" ] && awk -v m="$min" 'BEGIN {exit !(m >= 100)}'; then
    pass "delay 50: min rtt $min ms"
else
    fail "delay 50: received ${got:-0}/10, min rtt '${min}': $PING_OUT"
fi

# 3b. Jitter with delay stays in its band: rtt in 2*(50-20)..2*(50+20)+slack.
netns_impair_restart --delay 50 --jitter 20 --seed 3 || exit 1
ping_run 20 0.02
min=$(ping_min_rtt)
max=$(echo "$PING_OUT" | sed -n 's/^rtt [^=]*= [0-9.]*\/[0-9.]*\/\([0-9.]*\)\/.*/\1/p')
if [ -n "$min" ] && awk -v a="$min" -v b="$max" 'BEGIN {exit !(a >= 60 && b <= 160)}'; then
    pass "jitter: rtt $min..$max ms"
else
    fail "jitter: rtt '$min'..'$max' outside 60..160: $PING_OUT"
fi

# 4. Duplication: ping sees DUPs.
netns_impair_restart --dup 0.5 --seed 11 || exit 1
ping_run 50 0.01
dups=$(ping_dups)
if [ "${dups:-0}" -gt 0 ] && echo "$PING_OUT" | grep -q 'DUP!'; then
    pass "dup 0.5: $dups duplicates"
else
    fail "dup 0.5: no duplicates reported: $PING_OUT"
fi

# 5. Corruption of every frame: checksums catch it, nothing valid arrives.
netns_impair_restart --corrupt 1.0 --seed 5 --stats || exit 1
ping_run 20 0.01
got=$(ping_received)
netns_impair_stop
corrupt=$(impair_stat corrupt)
if [ "${got:-0}" = 0 ] && [ "$corrupt" -ge 20 ]; then
    pass "corrupt 1.0: 0/20 replies, $corrupt frames corrupted"
else
    fail "corrupt 1.0: ${got:-0} replies, $corrupt corrupted: $PING_OUT"
fi

# 6. Reordering: every packet still arrives.
netns_impair_restart --reorder 0.3 --seed 2 --stats || exit 1
ping_run 50 0.01
got=$(ping_received)
netns_impair_stop
reorders=$(impair_stat reorder)
if [ "${got:-0}" = 50 ] && [ "$reorders" -gt 0 ]; then
    pass "reorder 0.3: 50/50, $reorders held back"
else
    fail "reorder 0.3: ${got:-0}/50, $reorders held: $PING_OUT"
fi

# 7. A blackout window: pings inside it are lost, the rest pass.
netns_impair_restart --blackout 300:500 --stats || exit 1
ping_run 100 0.01
got=$(ping_received)
netns_impair_stop
blk=$(impair_stat drop_blackout)
if [ "${got:-0}" -ge 20 ] && [ "${got:-0}" -le 90 ] && [ "$blk" -gt 0 ]; then
    pass "blackout: ${got}/100 through, $blk dropped in the window"
else
    fail "blackout: ${got:-0}/100 through, $blk dropped: $PING_OUT"
fi

# 8. Oversize frames never cross: none were seen with offloads off.
over=$(impair_stat drop_oversize)
[ "$over" = 0 ] && pass "no oversize frames" || fail "$over oversize frames (offloads on?)"

# 8b. A frame larger than the egress MTU (what a GSO super-frame would be)
# is dropped and counted, never forwarded: shrink the middle's right MTU.
ip -n "$NETNS_MID" link set "$NETNS_MID_IF_R" mtu 1000 || exit 1
netns_impair_restart --stats || exit 1
PING_OUT=$(timeout 20 ip netns exec "$NETNS_LEFT" \
    ping -n -c 3 -i 0.05 -W 1 -s 1400 "$NETNS_RIGHT_IP" 2>&1)
got=$(ping_received)
netns_impair_stop
over=$(impair_stat drop_oversize)
if [ "${got:-0}" = 0 ] && [ "$over" = 3 ]; then
    pass "oversize: 3 frames over the egress MTU dropped and counted"
else
    fail "oversize: ${got:-0} replies, drop_oversize $over: $PING_OUT"
fi
ip -n "$NETNS_MID" link set "$NETNS_MID_IF_R" mtu 1500 || exit 1

# 9. --duration ends the bridge by itself.
netns_impair_restart --duration 0.3 || exit 1
pid=$NETNS_IMPAIR_PID
sleep 1
if kill -0 "$pid" 2>/dev/null; then
    fail "--duration 0.3 still running after 1 s"
else
    wait "$pid"
    rc=$?
    [ "$rc" = 0 ] && pass "--duration exits 0" || fail "--duration exit code $rc"
fi
netns_untrack_pid "$pid"
NETNS_IMPAIR_PID=""

netns_cleanup
netns_cleanup     # twice is harmless
if [ "$FAILS" -ne 0 ]; then
    echo "impair_bridge: $FAILS check(s) failed" >&2
    exit 1
fi
echo "impair_bridge: all checks passed"
exit 0
