#!/usr/bin/env bash
# A running ust-udpecho takes a corpus of hostile frames (runts, bad
# lengths and checksums, IP options, overlapping/endless/oversized fragment
# sets, ARP floods, garbage, then 5,000 never-completed fragment sets). It
# must drop and count them, keep its memory within its pools, and answer a
# fragmented ping and an 8000-byte datagram right after the flood.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
netns_setup_pair mc || exit 1
. "$(dirname "$0")/../lib/ustack.sh"
ip -n "$NETNS_A" addr add 10.79.0.1/24 dev "$NETNS_IF_A"
netns_tmpdir
log=$NETNS_TMP/ust.log
ust_start "$NETNS_B" "$log" --dev "afpacket:$NETNS_IF_B" --ip 10.79.0.2/24 || exit 1
check_ping "$NETNS_A" 10.79.0.2 56 2 2 || exit 1
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$UST_PID/status)
ip netns exec "$NETNS_A" timeout 120 /usr/bin/python3 "$NETNS_ROOT/tests/tools/malformed.py" \
    "$NETNS_IF_A" "$NETNS_MAC_B" 10.79.0.2 10.79.0.1 --seed 42 || exit 1
kill -0 "$UST_PID" || { echo "ust-udpecho died" >&2; cat "$log"; exit 1; }
# Straight after the flood: Linux would refuse these for 30 s.
check_ping "$NETNS_A" 10.79.0.2 3000 3 3 || { cat "$log"; exit 1; }
ip netns exec "$NETNS_A" timeout 60 $UDPCHECK echo 10.79.0.2 7 8000,1 --count 3 --tries 3 || exit 1
rss_after=$(awk '/VmRSS/ {print $2}' /proc/$UST_PID/status)
echo "RSS before ${rss_before} kB, after ${rss_after} kB"
# The pools are 8192 x 2 KiB + 32 x 64 KiB: growth beyond that means leaks.
[ $((rss_after - rss_before)) -lt 24000 ] || { echo "memory grew too much" >&2; exit 1; }
ust_stop "$log" || exit 1
need() {   # counter must be > 0
    local v
    v=$(awk -v n="$1" '$1 == n {print $2}' "$log")
    [ "${v:-0}" -gt 0 ] || { echo "counter $1 is ${v:-0}, expected drops" >&2; return 1; }
    echo "$1 = $v"
}
rc=0
# (Runts shorter than an Ethernet header cannot be sent from a kernel socket;
# the unit tests cover them.)
for c in ip_drop_csum ip_drop_len ip_drop_version udp_drop_csum udp_drop_malformed \
         icmp_drop_csum ip_frag_drop_overlap ip_frag_drop_oversize ip_frag_drop_bad ip_frag_drop_evicted \
         arp_drop_malformed arp_drop_not_us eth_drop_type; do
    need "$c" || rc=1
done
[ $rc -eq 0 ] || cat "$log"
exit $rc
