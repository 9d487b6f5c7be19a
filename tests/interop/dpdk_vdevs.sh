#!/usr/bin/env bash
# ustack on DPDK's net_tap and net_af_xdp virtual devices (Debian's libdpdk,
# --no-huge) against the Linux kernel; net_af_packet has its own test,
# dpdk_kernel.sh. For each virtual device:
#   1. ping, UDP echo, ARP and port unreachable (run_kernel_checks), then a
#      clean exit on SIGTERM with counters, and the device given back (the
#      TAP interface gone, the XDP program detached);
#   2. ust-udpping round trips against a kernel UDP echo (a number, not a
#      test: it fails only when replies are missing);
#   3. TCP: 16 MiB through ust-echo from tcppeer.py, byte-exact, with MB/s.
#
# net_tap: the PMD creates the TAP interface in the namespace of the process
# that opens it, and its control operations (link state, MTU, flags) act on
# that name there. So ustack runs in a namespace of its own and the kernel
# peer is the TAP's kernel end in that same namespace: the interface gets
# the peer's address (ustack's address is configured nowhere in the kernel)
# and a MAC of its own (the PMD gives it the port's MAC, which would leave
# both ends of the link with one MAC). Each ustack run makes a new TAP, which
# disappears when it exits.
# net_af_xdp: ustack on one end of a veth pair, the kernel on the other end
# in another namespace. The PMD loads libxdp's default program (without a
# bpffs libxdp says so and loads it without its dispatcher; both fine).
#
# A device that cannot work here (no /dev/net/tun, a kernel without AF_XDP,
# the PMD not installed) is skipped with the reason, never passed. Exit 0
# when both passed, 1 when one failed, 77 when one was skipped (or not root,
# or ustack built without libdpdk).
set -u
. "$(dirname "$0")/../lib/backend.sh"

ust_require_dpdk

PREFIX=ust$$v     # EAL --file-prefix stem: each run's files carry it
vdevs_cleanup() {
    netns_cleanup
    rm -rf /var/run/dpdk/"$PREFIX"* 2>/dev/null
}
netns_install_trap
trap vdevs_cleanup EXIT
netns_tmpdir || exit 1
FAILED=() SKIPPED=() PASSED=()
UDPCHECK_BASE=$UDPCHECK
TCP_MIB=16

# eal VDEV RUN: the --dev spec for one run (its own EAL file prefix).
eal() { echo "dpdk:--no-huge -m 256 --no-pci --vdev=$1 --file-prefix=$PREFIX$2 -l 0 --log-level=warning"; }

# pmd_installed DRIVER: whether the EAL can load DRIVER (net_tap, ...).
pmd_installed() {
    local dir
    dir=$(pkg-config --variable=pmdsdir libdpdk 2>/dev/null)
    [ -z "$dir" ] && dir=$(ls -d /usr/lib/*/dpdk/pmds-* 2>/dev/null | head -n 1)
    [ -z "$dir" ] || ls "$dir"/librte_"$1".so* >/dev/null 2>&1
}

# ---- the steps every device runs; VDEV_* describe the device at hand ----
# VDEV_NAME     net_tap / net_af_xdp
# VDEV_ARG      the --vdev value
# VDEV_UNS      namespace ustack runs in; VDEV_KNS: the kernel peer's
# VDEV_KIF      the kernel's interface; VDEV_KIP / VDEV_UIP addresses
# VDEV_UMAC     ustack's MAC
# vdev_ready    called after each ustack start (the TAP is new each time)
# vdev_released called after each exit: the device must have been given back
# Each <dev>_setup sets them, or sets SKIP_WHY and fails when the device
# cannot work here.

# kernel_checks: run_kernel_checks, then a clean SIGTERM exit.
kernel_checks() {
    local name=$VDEV_NAME log=$NETNS_TMP/$VDEV_NAME.udpecho.log
    local UDPCHECK="ip netns exec $VDEV_KNS $UDPCHECK_BASE"   # what run_kernel_checks runs
    ust_start "$VDEV_UNS" "$log" --dev "$(eal "$VDEV_ARG" k)" --ip "$VDEV_UIP/24" || return 1
    if ! vdev_ready || ! run_kernel_checks "$VDEV_KNS" "$VDEV_UIP" "$VDEV_KIF" "$VDEV_UMAC"; then
        cat "$log"
        ust_stop "$log"
        return 1
    fi
    ust_stop "$log" || { cat "$log"; return 1; }
    vdev_released || return 1
    grep -E "^(dev_rx|dev_tx|dev_tx_drop|dev_kernel_drops|dev_nic_.*|icmp_tx_echo_reply|udp_rx) " "$log" |
        sed "s/^/[$name] /"
    echo "[$name] kernel checks and SIGTERM exit: ok"
}

# udp_rate [ust-udpping args]: round trips/s against a kernel UDP echo.
udp_rate() {
    local name=$VDEV_NAME epid out rc
    ip netns exec "$VDEV_KNS" timeout 60 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 7))   # any: a TAP gets its address only once ustack made it
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)' &
    epid=$!
    netns_track_pid "$epid"
    sleep 0.3
    # ust-udpping makes a new TAP: configure it once it exists (bounded).
    local cpid=""
    if [ "$VDEV_NAME" = net_tap ]; then
        ( for _ in $(seq 1 100); do tap_exists && { vdev_ready; exit; }; sleep 0.05; done ) &
        cpid=$!
    fi
    out=$(ip netns exec "$VDEV_UNS" timeout 30 "$UST_BIN/ust-udpping" --dev "$(eal "$VDEV_ARG" u)" \
        --ip "$VDEV_UIP/24" --to "$VDEV_KIP:7" --count 2000 "$@" 2>&1)
    rc=$?
    [ -n "$cpid" ] && wait "$cpid"
    netns_stop_pid "$epid"
    netns_untrack_pid "$epid"
    echo "$out" | grep "^ust-udpping:" | sed "s/^/[$name ${*:-default}] /"
    [ "$rc" -eq 0 ] || { echo "$out" | tail -5; return 1; }
}

# tcp_stream MIB: tcppeer.py sends MIB through ust-echo, every byte checked.
tcp_stream() {
    local name=$VDEV_NAME.tcp bytes rc
    bytes=$(tcp_bytes "$1")
    tcp_echo_start "$VDEV_UNS" "$name" --dev "$(eal "$VDEV_ARG" t)" --ip "$VDEV_UIP/24" || {
        tcp_result "$name" 1; return 1; }
    vdev_ready || { tcp_echo_stop; tcp_result "$name" 1; return 1; }
    tcp_peer_echo "$name" "$VDEV_KNS" "$VDEV_UIP" "$bytes"
    rc=$?
    tcp_echo_stop || rc=1
    vdev_released || rc=1
    grep -q "^echo_errors 0$" "$TCP_ECHO_LOG" || rc=1
    grep -E "^(echo_bytes|dev_kernel_drops|dev_nic_.*|dev_tx_drop|tcp_.*retrans.*) " "$TCP_ECHO_LOG" |
        sed "s/^/[$name] /"
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_ECHO_LOG"
    tcp_result "$name" "$rc"
    return "$rc"
}

# vdev_run: every step for the device described by VDEV_*.
vdev_run() {
    local rc=0
    kernel_checks || rc=1
    udp_rate --busy-poll || rc=1
    udp_rate || rc=1
    tcp_stream "$TCP_MIB" || rc=1
    if [ "$rc" -eq 0 ]; then
        PASSED+=("$VDEV_NAME")
        echo "PASS $VDEV_NAME"
    else
        FAILED+=("$VDEV_NAME")
        echo "FAIL $VDEV_NAME"
    fi
}

# ---- net_tap ----
tap_ready() {
    local n=0
    while ! ip -n "$VDEV_UNS" link show "$TAP_IF" >/dev/null 2>&1; do
        [ $n -ge 50 ] && { echo "[net_tap] no interface $TAP_IF" >&2; return 1; }
        n=$((n + 1))
        sleep 0.05
    done
    ip -n "$VDEV_UNS" link set "$TAP_IF" address "$TAP_KMAC" &&
        netns_offloads_off "$VDEV_UNS" "$TAP_IF" &&
        ip -n "$VDEV_UNS" addr replace "$VDEV_KIP/24" dev "$TAP_IF" &&
        ip -n "$VDEV_UNS" link set "$TAP_IF" up
}
tap_exists() { ip -n "$VDEV_UNS" link show "$TAP_IF" >/dev/null 2>&1; }
tap_released() {
    local n=0
    while tap_exists; do   # unregistering a netdev may lag the close a little
        [ $n -ge 40 ] && { echo "[net_tap] $TAP_IF still there after ustack exited" >&2; return 1; }
        n=$((n + 1))
        sleep 0.05
    done
}
tap_setup() {
    VDEV_NAME=net_tap
    [ -c /dev/net/tun ] || { SKIP_WHY="no /dev/net/tun"; return 1; }
    pmd_installed net_tap || { SKIP_WHY="DPDK's net_tap PMD is not installed (librte-net-tap)"; return 1; }
    netns_add "dv$$t" || { FAIL_WHY="cannot create a namespace"; return 1; }
    TAP_IF=dt$$
    TAP_KMAC=02:00:0a:54:00:01
    VDEV_UNS=dv$$t VDEV_KNS=dv$$t VDEV_KIF=$TAP_IF
    VDEV_KIP=10.84.0.1 VDEV_UIP=10.84.0.2 VDEV_UMAC=02:00:0a:54:00:02
    VDEV_ARG=net_tap0,iface=$TAP_IF,mac=$VDEV_UMAC
}

# ---- net_af_xdp ----
xdp_attached() { ip -n "$VDEV_UNS" -d link show "$VDEV_UIF" | grep -q "prog/xdp"; }
xdp_released() {
    ! xdp_attached || { echo "[net_af_xdp] an XDP program is still on $VDEV_UIF" >&2; return 1; }
}
xdp_ready() { xdp_attached || { echo "[net_af_xdp] no XDP program on $VDEV_UIF" >&2; return 1; }; }
xdp_setup() {
    VDEV_NAME=net_af_xdp
    pmd_installed net_af_xdp || { SKIP_WHY="DPDK's net_af_xdp PMD is not installed (librte-net-af-xdp)"; return 1; }
    if ! /usr/bin/python3 -c 'import socket; socket.socket(44, socket.SOCK_RAW).close()' 2>/dev/null; then
        SKIP_WHY="the kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS)"
        return 1
    fi
    netns_add "dv$$k" && netns_add "dv$$u" && netns_veth "dv$$k" "v$$k" "dv$$u" "v$$u" ||
        { FAIL_WHY="cannot create the namespaces and veth pair"; return 1; }
    VDEV_UNS=dv$$u VDEV_KNS=dv$$k VDEV_KIF=v$$k VDEV_UIF=v$$u
    VDEV_KIP=10.85.0.1 VDEV_UIP=10.85.0.2 VDEV_UMAC=$(netns_mac "$VDEV_UNS" "$VDEV_UIF")
    VDEV_ARG=net_af_xdp0,iface=$VDEV_UIF
    ip -n "$VDEV_KNS" addr add "$VDEV_KIP/24" dev "$VDEV_KIF" || { FAIL_WHY="cannot address $VDEV_KIF"; return 1; }
}

for dev in tap xdp; do
    SKIP_WHY="" FAIL_WHY=""
    if ! "${dev}_setup"; then
        if [ -n "$SKIP_WHY" ]; then
            echo "SKIP $VDEV_NAME: $SKIP_WHY"
            SKIPPED+=("$VDEV_NAME ($SKIP_WHY)")
        else
            echo "FAIL $VDEV_NAME: $FAIL_WHY"
            FAILED+=("$VDEV_NAME")
        fi
        continue
    fi
    vdev_ready() { "${dev}_ready"; }
    vdev_released() { "${dev}_released"; }
    vdev_run
done

echo "passed: ${PASSED[*]:-none}; failed: ${FAILED[*]:-none}; skipped: ${SKIPPED[*]:-none}"
[ ${#FAILED[@]} -eq 0 ] || exit 1
[ ${#SKIPPED[@]} -eq 0 ] || exit 77
echo "dpdk (net_tap, net_af_xdp) against the kernel: OK"
