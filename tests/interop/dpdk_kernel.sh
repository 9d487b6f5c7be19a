#!/usr/bin/env bash
# ustack on DPDK (Debian's libdpdk, the net_af_packet virtual device on a
# veth) against the Linux kernel in another namespace:
#   1. --no-huge: ping, UDP echo, ARP and port unreachable (run_kernel_checks),
#      clean exit on SIGTERM with counters;
#   2. ust-udpping round trips against a kernel UDP echo (a number, not a test);
#   3. TCP: 64 MiB through ust-echo from tcppeer.py, byte-exact, with MB/s;
#   4. the same checks and a 16 MiB TCP stream with 2 MB hugepages (a few
#      reserved through /proc/sys/vm/nr_hugepages and a hugetlbfs mounted if
#      none is; both restored at exit). Skipped, not failed, when the kernel
#      gives no hugepages.
# Exit 0 pass, 77 skipped (not root, or ustack built without libdpdk).
set -u
. "$(dirname "$0")/../lib/backend.sh"

ust_require_dpdk

HP_SAVED=""       # nr_hugepages before the test, when we changed it
HP_MOUNT=""       # hugetlbfs we mounted ourselves
PREFIX=ust$$      # EAL --file-prefix: each run's files carry it
dpdk_cleanup() {
    netns_cleanup
    rm -rf /var/run/dpdk/"$PREFIX"* 2>/dev/null
    if [ -n "$HP_MOUNT" ]; then
        rm -f "$HP_MOUNT"/"$PREFIX"* 2>/dev/null
        umount "$HP_MOUNT" 2>/dev/null && rmdir "$HP_MOUNT"
    fi
    [ -n "$HP_SAVED" ] && echo "$HP_SAVED" >/proc/sys/vm/nr_hugepages
}
netns_setup_pair dk || exit 1
trap dpdk_cleanup EXIT
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B UIF=$NETNS_IF_B KIP=10.83.0.1 UIP=10.83.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1
UDPCHECK="ip netns exec $KNS $UDPCHECK"
FAILED=()

# eal RUN MEMORY-ARGS: the device spec after "dpdk:" for one run (its own
# file prefix). net_af_packet's sockets ask the kernel to reassemble IPv4
# (fanout DEFRAG) and cannot chain mbufs: 16 KiB ring slots and mbufs let
# the 3000-byte pings and 8000-byte datagrams through, cut up again by the
# backend.
eal() { echo "$2 --no-pci --vdev=net_af_packet0,iface=$UIF,framesz=16384,blocksz=16384 --file-prefix=$PREFIX$1 -l 0 --log-level=warning;mbuf=16384;mbufs=1023"; }

# kernel_checks NAME MEMORY-ARGS
kernel_checks() {
    local log=$NETNS_TMP/$1.udpecho.log
    ust_start "$UNS" "$log" --dev "dpdk:$(eal "$1" "$2")" --ip "$UIP/24" || { FAILED+=("$1"); return 1; }
    if ! run_kernel_checks "$KNS" "$UIP" "$NETNS_IF_A" "$NETNS_MAC_B"; then
        cat "$log"
        ust_stop "$log"
        FAILED+=("$1")
        return 1
    fi
    ust_stop "$log" || { FAILED+=("$1"); return 1; }
    grep -E "^(dev_rx|dev_tx|dev_kernel_drops|dev_nic_.*|icmp_tx_echo_reply|udp_rx) " "$log" | sed "s/^/[$1] /"
    echo "PASS $1"
}

# udp_rate NAME MEMORY-ARGS [ust-udpping args]: round trips/s against a
# kernel UDP echo; reported, it fails only when replies are missing.
udp_rate() {
    local name=$1 mem=$2 epid out
    shift 2
    ip netns exec "$KNS" timeout 120 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 7))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)' "$KIP" &
    epid=$!
    netns_track_pid "$epid"
    sleep 0.3
    out=$(ip netns exec "$UNS" timeout 90 "$UST_BIN/ust-udpping" --dev "dpdk:$(eal "$name" "$mem")$UDP_SPEC_EXTRA" \
        --ip "$UIP/24" --to "$KIP:7" --count 5000 "$@" 2>&1)
    local rc=$?
    netns_stop_pid "$epid"
    netns_untrack_pid "$epid"
    echo "$out" | grep "^ust-udpping:" | sed "s/^/[$name $*$UDP_SPEC_EXTRA] /"
    [ "$rc" -eq 0 ] || { echo "$out" | tail -5; FAILED+=("$name"); return 1; }
}

# tcp_stream NAME MEMORY-ARGS MIB: tcppeer.py sends MIB through ust-echo and
# checks every byte back; prints MB/s (both directions counted once).
tcp_stream() {
    local name=$1 mem=$2 bytes rc
    bytes=$(tcp_bytes "$3")
    tcp_echo_start "$UNS" "$name" --dev "dpdk:$(eal "$name" "$mem")" --ip "$UIP/24" || { tcp_result "$name" 1; return 1; }
    tcp_peer_echo "$name" "$KNS" "$UIP" "$bytes"
    rc=$?
    tcp_echo_stop || rc=1
    grep -q "^echo_errors 0$" "$TCP_ECHO_LOG" || rc=1
    grep -E "^(echo_bytes|dev_kernel_drops|dev_nic_.*|dev_tx_drop|tcp_.*retrans.*) " "$TCP_ECHO_LOG" | sed "s/^/[$name] /"
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_ECHO_LOG"
    tcp_result "$name" "$rc"
    [ "$rc" -eq 0 ] || FAILED+=("$name")
}

NOHUGE="--no-huge -m 256"
UDP_SPEC_EXTRA=""
kernel_checks nohuge "$NOHUGE"
udp_rate udp_nohuge "$NOHUGE" --busy-poll
udp_rate udp_nohuge "$NOHUGE"
UDP_SPEC_EXTRA=";spin=0" udp_rate udp_nohuge "$NOHUGE"
tcp_stream tcp_nohuge "$NOHUGE" 64

# ---- hugepages ----
hp_setup() {
    local have want=64
    have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null) || return 1
    if [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -lt "$want" ]; then
        HP_SAVED=$have
        echo $((have + want)) >/proc/sys/vm/nr_hugepages 2>/dev/null || return 1
        [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -ge "$want" ] || return 1
    fi
    HP_DIR=$(awk '$3 == "hugetlbfs" { print $2; exit }' /proc/mounts)
    if [ -z "$HP_DIR" ]; then
        HP_MOUNT=$(mktemp -d /tmp/ust-huge.$$.XXXXXX) || return 1
        mount -t hugetlbfs -o pagesize=2M nodev "$HP_MOUNT" || { rmdir "$HP_MOUNT"; HP_MOUNT=""; return 1; }
        HP_DIR=$HP_MOUNT
    fi
}
if hp_setup; then
    HUGE="-m 96 --huge-dir $HP_DIR --huge-unlink"
    echo "hugepages: $(awk '/HugePages_(Total|Free)/ {printf "%s %s ", $1, $2}' /proc/meminfo)in $HP_DIR"
    kernel_checks huge "$HUGE"
    udp_rate udp_huge "$HUGE" --busy-poll
    tcp_stream tcp_huge "$HUGE" 16
else
    echo "hugepages: none could be reserved here; the hugepage run is skipped"
fi

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "failed: ${FAILED[*]}"
    exit 1
fi
echo "dpdk (net_af_packet) against the kernel: OK"
