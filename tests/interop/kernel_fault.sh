#!/usr/bin/env bash
# The kernel checks of kernel_veth.sh with ustack's own device wrapped in the
# fault injector (src/dev/fault.c): frames are lost, reordered, duplicated,
# delayed and bit-flipped in both directions. Every reply that arrives must
# be intact (ping and udpcheck compare the data); lost ones are retried.
#
# Afterwards ust-udpecho's counters must show that each impairment happened
# and that corrupted frames were caught. What a flipped bit (anywhere past the
# Ethernet header) can hit on receive, and what catches it:
#   IPv4 header        header checksum, or the length/version checks before it
#   ICMP / UDP data    their checksums (after reassembly for fragments)
#   ARP                nothing but its own sanity checks (no checksum)
#   Ethernet padding   nothing, and nothing needs to
# Transmit-side flips are caught by the kernel (shown from its SNMP counters).
# So the sum of the validation drops below must be > 0, and at most
# 2 x fault_corrupt (a corrupted frame may be duplicated after the flip).
# Offloads are off on the veth (netns.sh), so no frame arrives with an
# unfilled checksum that the stack would have to trust: dev_rx_csum_partial
# must be 0, or a flip could pass unseen.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
netns_setup_pair kf || exit 1
. "$(dirname "$0")/../lib/ustack.sh"
UDPCHECK="ip netns exec $NETNS_A $UDPCHECK"
ip -n "$NETNS_A" addr add 10.78.0.1/24 dev "$NETNS_IF_A"
# ping as root uses a raw socket, which the kernel hands a copy of every ICMP
# datagram before checking its checksum: a reply that ustack sent intact and
# the fault wrapper flipped on the way out would reach ping as "wrong data".
# An ICMP datagram socket (allowed to every group in this namespace) gets
# only replies that passed the kernel's checksum, like any receiver would.
ip netns exec "$NETNS_A" sysctl -qw net.ipv4.ping_group_range="0 2147483647" || exit 1
netns_tmpdir
log=$NETNS_TMP/ust.log
fault='loss=0.03,reorder=0.1,dup=0.02,corrupt=0.01,delay=1,seed=5'
ust_start "$NETNS_B" "$log" --dev "fault:$fault+afpacket:$NETNS_IF_B" --ip 10.78.0.2/24 || exit 1
run_kernel_checks "$NETNS_A" 10.78.0.2 "$NETNS_IF_A" "$NETNS_MAC_B" lossy || { cat "$log"; exit 1; }
ust_stop "$log" || exit 1

# ctr NAME: the counter's value from the --stats output (0 when not printed).
ctr() { awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' "$log"; }

grep -E "^(dev_rx|dev_tx|fault_[a-z]+|ip_drop_[a-z]+|udp_drop_[a-z]+|icmp_drop_[a-z]+|arp_drop_malformed|ip_frag_[a-z_]+) " "$log"
fail=0
for c in fault_drop fault_dup fault_reorder fault_corrupt; do
    if [ "$(ctr "$c")" -le 0 ]; then
        echo "FAIL: $c is 0: that impairment never happened" >&2
        fail=1
    fi
done
if [ "$(ctr dev_rx_csum_partial)" -ne 0 ]; then
    echo "FAIL: $(ctr dev_rx_csum_partial) frames arrived with unfilled checksums (offloads on?)" >&2
    fail=1
fi
caught=0
for c in ip_drop_csum ip_drop_truncated ip_drop_version ip_drop_hdrlen ip_drop_len \
         udp_drop_csum udp_drop_malformed icmp_drop_csum icmp_drop_malformed arp_drop_malformed; do
    caught=$((caught + $(ctr "$c")))
done
corrupt=$(ctr fault_corrupt)
echo "corrupted frames: $corrupt (both directions); caught by ustack's checks: $caught"
if [ "$caught" -le 0 ]; then
    echo "FAIL: no corrupted frame was caught by ustack's checksum/length checks" >&2
    fail=1
elif [ "$caught" -gt $((2 * corrupt)) ]; then
    echo "FAIL: $caught validation drops but only $corrupt corruptions: something else is broken" >&2
    fail=1
fi
# The kernel's side of the story: flips on ustack's transmit path.
ip netns exec "$NETNS_A" awk '/^(Ip|Icmp|Udp):/ { if (!h[$1]++) { split($0, k) } else {
        for (i = 2; i <= NF; i++) if (k[i] ~ /CsumErrors|InHdrErrors/ && $i > 0) printf "kernel %s%s %s\n", $1, k[i], $i } }' \
    /proc/net/snmp
[ "$fail" -eq 0 ] || { cat "$log"; exit 1; }
echo "kernel over veth, ustack device impaired by the fault wrapper: OK"
