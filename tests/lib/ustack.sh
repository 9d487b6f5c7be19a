# Shared steps of the ustack-vs-kernel interop tests (sourced, not run).
# Needs tests/lib/netns.sh sourced first (for NETNS_ROOT and PID tracking).

UST_BIN=${UST_BUILD:-$NETNS_ROOT/build}/bin
UDPCHECK="/usr/bin/python3 $NETNS_ROOT/tests/tools/udpcheck.py"

# ust_require_dpdk: skip the test (exit 77) when ustack was built without
# libdpdk; "dpdk:" alone fails before the EAL starts, with a message that
# tells such a build apart.
ust_require_dpdk() {
    if "$UST_BIN/ust-udpecho" --dev "dpdk:" --ip 10.0.0.1/24 2>&1 | grep -q "built without DPDK"; then
        echo "SKIP: ustack was built without libdpdk (apt install dpdk-dev, rebuild)"
        exit 77
    fi
}

# ust_start NS LOGFILE ARGS...: run ust-udpecho in NS (tracked for cleanup)
# and wait until it serves. Sets UST_PID.
ust_start() {
    local ns=$1 log=$2
    shift 2
    ip netns exec "$ns" "$UST_BIN/ust-udpecho" --stats "$@" >"$log" 2>&1 &
    UST_PID=$!
    netns_track_pid "$UST_PID"
    local i
    for i in $(seq 1 50); do
        grep -q "serving" "$log" 2>/dev/null && return 0
        kill -0 "$UST_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "ust-udpecho did not start:" >&2
    cat "$log" >&2
    return 1
}

# ust_stop LOGFILE: SIGTERM, require a clean exit that printed its counters.
ust_stop() {
    local log=$1 rc=0
    kill -TERM "$UST_PID" 2>/dev/null
    timeout 10 tail --pid="$UST_PID" -f /dev/null || { echo "ust-udpecho did not exit on SIGTERM" >&2; return 1; }
    wait "$UST_PID" || rc=$?
    netns_untrack_pid "$UST_PID"
    [ "$rc" -eq 0 ] || { echo "ust-udpecho exited with $rc" >&2; return 1; }
    grep -q "^icmp_rx" "$log" || { echo "no counters printed at exit" >&2; return 1; }
}

# check_ping NS IP SIZE COUNT MIN_REPLIES
check_ping() {
    local out
    out=$(ip netns exec "$1" timeout 60 ping -n -c "$4" -i 0.05 -W 1 -s "$3" "$2" 2>&1)
    local got
    got=$(echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
    if echo "$out" | grep -qi "wrong data\|corrupt"; then
        echo "ping $3 bytes: corrupted replies" >&2
        echo "$out" >&2
        return 1
    fi
    if [ "${got:-0}" -lt "$5" ]; then
        echo "ping $3 bytes: only ${got:-0}/$4 replies (need $5)" >&2
        echo "$out" | tail -3 >&2
        return 1
    fi
    echo "ping -s $3: ${got}/$4 replies"
}

# check_arp NS IF IP MAC: the kernel resolved ustack's address to MAC.
check_arp() {
    local entry
    entry=$(ip -n "$1" neigh show dev "$2" "$3")
    echo "kernel neighbour entry: $entry"
    echo "$entry" | grep -qi "lladdr $4" || { echo "kernel did not resolve $3 to $4" >&2; return 1; }
}

# run_kernel_checks NS IP IF MAC "LOSSY": everything the foundation promises.
run_kernel_checks() {
    local ns=$1 ip=$2 ifname=$3 mac=$4 lossy=${5:-}
    if [ -n "$lossy" ]; then
        check_ping "$ns" "$ip" 56 40 10 && check_ping "$ns" "$ip" 1400 40 10 &&
            check_ping "$ns" "$ip" 3000 40 5 || return 1
        timeout 300 $UDPCHECK echo "$ip" 7 1,1400,8000 --count 20 --tries 30 --timeout 0.3 || return 1
    else
        check_ping "$ns" "$ip" 56 5 5 && check_ping "$ns" "$ip" 1400 5 5 &&
            check_ping "$ns" "$ip" 3000 5 5 || return 1
        timeout 120 $UDPCHECK echo "$ip" 7 1,1400,8000 --count 20 --tries 3 || return 1
    fi
    check_arp "$ns" "$ifname" "$ip" "$mac" || return 1
    timeout 30 $UDPCHECK unreach "$ip" 9 || return 1
}
