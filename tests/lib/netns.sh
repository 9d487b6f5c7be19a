# Network namespace helpers for interop tests. Source it:
#
#   . "$(dirname "$0")/../lib/netns.sh"
#   netns_require_root                 # exit 77 (skip) unless root + ip netns
#   netns_setup_bridge impb --loss 0.1 # left | middle (ust-impair) | right
#   ... traffic between $NETNS_LEFT and $NETNS_RIGHT ...
#
# Everything made here is recorded and removed by netns_cleanup, which the
# setup functions install as the EXIT trap (a test with its own EXIT trap
# must call netns_cleanup from it). Names carry $$ so parallel runs never
# collide. Only PIDs started here (or handed to netns_track_pid) are killed.
#
# Every veth gets its offloads turned off (tx/rx checksum, TSO, GSO, GRO):
# checksums must be complete on the wire, so corruption is detectable and a
# userspace stack sees what a real NIC would deliver, and no frame may exceed
# the MTU. IPv6 is disabled in the namespaces to keep the links quiet.

NETNS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NETNS_CREATED=()
NETNS_PIDS=()
NETNS_TMP=""
NETNS_IMPAIR_PID=""

netns_log() { echo "netns: $*" >&2; }

# Exit 77 (skipped) when this cannot work here: not root, or no ip netns.
netns_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root (network namespaces)" >&2
        exit 77
    fi
    local t
    for t in ip ethtool; do
        if ! command -v "$t" >/dev/null 2>&1; then
            echo "SKIP: '$t' not installed" >&2
            exit 77
        fi
    done
    local probe="ustprobe$$"
    if ! ip netns add "$probe" >/dev/null 2>&1; then
        echo "SKIP: 'ip netns add' does not work here" >&2
        exit 77
    fi
    ip netns del "$probe" >/dev/null 2>&1
    return 0
}

netns_install_trap() {
    trap netns_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

netns_tmpdir() {
    if [ -z "$NETNS_TMP" ]; then
        NETNS_TMP=$(mktemp -d "/tmp/ustnetns.$$.XXXXXX") || return 1
    fi
}

# netns_add NAME: a namespace with lo up and IPv6 off, recorded for cleanup.
netns_add() {
    ip netns add "$1" || { netns_log "cannot create namespace $1"; return 1; }
    NETNS_CREATED+=("$1")
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# netns_offloads_off NS IF
netns_offloads_off() {
    if ! ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off \
            >/dev/null 2>&1; then
        # Some features may be fixed; check the ones that matter really are off.
        if ip netns exec "$1" ethtool -k "$2" 2>/dev/null |
                grep -Eq '^(tx-checksumming|rx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on'; then
            netns_log "could not turn offloads off on $2 in $1"
            return 1
        fi
    fi
}

# netns_veth NS1 IF1 NS2 IF2: a veth pair made directly inside the two
# namespaces, offloads off, both ends up.
netns_veth() {
    local q=()
    [ -n "${5:-}" ] && q=(numrxqueues "$5" numtxqueues "$5")
    ip link add "$2" netns "$1" "${q[@]}" type veth peer name "$4" netns "$3" "${q[@]}" || {
        netns_log "cannot create veth $2/$4 ${q[*]}"; return 2; }
    netns_offloads_off "$1" "$2" || return 1
    netns_offloads_off "$3" "$4" || return 1
    ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up || return 1
}

# netns_mac NS IF -> prints the interface's MAC.
netns_mac() {
    ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# netns_setup_pair PREFIX [QUEUES]: namespaces $NETNS_A and $NETNS_B joined
# by a veth pair $NETNS_IF_A <-> $NETNS_IF_B (up, offloads off, no
# addresses), with QUEUES rx and tx queues each way when given. Returns 2
# when the veth itself cannot be made (e.g. no multi-queue veth: a skip).
netns_setup_pair() {
    local p="${1:-ust}"
    netns_install_trap
    NETNS_A="${p}$$a"
    NETNS_B="${p}$$b"
    NETNS_IF_A="v$$a"
    NETNS_IF_B="v$$b"
    netns_add "$NETNS_A" && netns_add "$NETNS_B" || return 1
    netns_veth "$NETNS_A" "$NETNS_IF_A" "$NETNS_B" "$NETNS_IF_B" "${2:-}" || return
    NETNS_MAC_A=$(netns_mac "$NETNS_A" "$NETNS_IF_A")
    NETNS_MAC_B=$(netns_mac "$NETNS_B" "$NETNS_IF_B")
}

# netns_setup_mq_pair PREFIX: netns_setup_pair with 2 queues each way; the
# test is skipped (exit 77) where the kernel cannot make such a veth.
netns_setup_mq_pair() {
    netns_setup_pair "$1" 2
    case $? in
    0) return 0 ;;
    2) echo "SKIP: cannot make a 2-queue veth"; exit 77 ;;
    *) exit 1 ;;
    esac
}

netns_impair_bin() {
    echo "${UST_IMPAIR:-${UST_BUILD:-$NETNS_ROOT/build}/bin/ust-impair}"
}

# netns_setup_bridge PREFIX [ust-impair args...]:
#   $NETNS_LEFT   kernel side: $NETNS_LEFT_IF with $NETNS_LEFT_IP/24
#   $NETNS_MID    ust-impair between $NETNS_MID_IF_L and $NETNS_MID_IF_R
#   $NETNS_RIGHT  the ustack side: $NETNS_RIGHT_IF up, NO address configured;
#                 $NETNS_RIGHT_IP is the address to give the stack on it
#   $NETNS_LEFT_MAC, $NETNS_RIGHT_MAC, $NETNS_IMPAIR_PID, $NETNS_IMPAIR_LOG
netns_setup_bridge() {
    local p="${1:-ust}"
    shift
    netns_install_trap
    netns_tmpdir || return 1
    NETNS_LEFT="${p}$$l"
    NETNS_MID="${p}$$m"
    NETNS_RIGHT="${p}$$r"
    NETNS_LEFT_IF="v$$l"
    NETNS_RIGHT_IF="v$$r"
    NETNS_MID_IF_L="v$$ml"
    NETNS_MID_IF_R="v$$mr"
    NETNS_SUBNET="10.$(( ($$ / 250) % 250 + 1 )).$(( $$ % 250 + 1 ))"
    NETNS_LEFT_IP="$NETNS_SUBNET.1"
    NETNS_RIGHT_IP="$NETNS_SUBNET.2"
    netns_add "$NETNS_LEFT" && netns_add "$NETNS_MID" && netns_add "$NETNS_RIGHT" &&
        netns_veth "$NETNS_LEFT" "$NETNS_LEFT_IF" "$NETNS_MID" "$NETNS_MID_IF_L" &&
        netns_veth "$NETNS_RIGHT" "$NETNS_RIGHT_IF" "$NETNS_MID" "$NETNS_MID_IF_R" ||
        return 1
    ip -n "$NETNS_LEFT" addr add "$NETNS_LEFT_IP/24" dev "$NETNS_LEFT_IF" || return 1
    NETNS_LEFT_MAC=$(netns_mac "$NETNS_LEFT" "$NETNS_LEFT_IF")
    NETNS_RIGHT_MAC=$(netns_mac "$NETNS_RIGHT" "$NETNS_RIGHT_IF")
    netns_impair_start "$@"
}

# netns_impair_start [args...]: start ust-impair in the middle namespace and
# wait (bounded) until it forwards. Its output goes to $NETNS_IMPAIR_LOG.
netns_impair_start() {
    local bin n=0
    bin=$(netns_impair_bin)
    if [ ! -x "$bin" ]; then
        netns_log "ust-impair not built: $bin (make programs, or set UST_IMPAIR)"
        return 1
    fi
    netns_tmpdir || return 1
    NETNS_IMPAIR_LOG="$NETNS_TMP/impair.$(date +%s%N).log"
    ip netns exec "$NETNS_MID" "$bin" --a "$NETNS_MID_IF_L" --b "$NETNS_MID_IF_R" "$@" \
        >"$NETNS_IMPAIR_LOG" 2>&1 &
    NETNS_IMPAIR_PID=$!
    NETNS_PIDS+=("$NETNS_IMPAIR_PID")
    while ! grep -q 'ust-impair: forwarding' "$NETNS_IMPAIR_LOG" 2>/dev/null; do
        if ! kill -0 "$NETNS_IMPAIR_PID" 2>/dev/null || [ $n -ge 100 ]; then
            netns_log "ust-impair did not start:"
            cat "$NETNS_IMPAIR_LOG" >&2
            return 1
        fi
        n=$((n + 1))
        sleep 0.05
    done
}

# netns_stop_pid PID: SIGTERM, up to 3 s for it to go, then SIGKILL; reaped.
netns_stop_pid() {
    local pid=$1 n=0
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 60 ]; do
        sleep 0.05
        n=$((n + 1))
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

netns_untrack_pid() {
    local keep=() p
    for p in "${NETNS_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    NETNS_PIDS=("${keep[@]}")
}

# netns_track_pid PID: have netns_cleanup stop a process the test started.
netns_track_pid() { NETNS_PIDS+=("$1"); }

# netns_impair_stop: stop the bridge (it prints --stats into its log).
netns_impair_stop() {
    [ -n "$NETNS_IMPAIR_PID" ] || return 0
    netns_stop_pid "$NETNS_IMPAIR_PID"
    netns_untrack_pid "$NETNS_IMPAIR_PID"
    NETNS_IMPAIR_PID=""
}

# netns_impair_restart [args...]: same namespaces, new impairments.
netns_impair_restart() {
    netns_impair_stop
    netns_impair_start "$@"
}

# Stop recorded processes, delete recorded namespaces. Safe to call twice.
netns_cleanup() {
    local pid ns
    for pid in "${NETNS_PIDS[@]}"; do
        netns_stop_pid "$pid"
    done
    NETNS_PIDS=()
    NETNS_IMPAIR_PID=""
    for ns in "${NETNS_CREATED[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    NETNS_CREATED=()
    if [ -n "$NETNS_TMP" ]; then
        rm -rf "$NETNS_TMP"
        NETNS_TMP=""
    fi
    return 0
}
