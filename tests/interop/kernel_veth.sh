#!/usr/bin/env bash
# The Linux kernel pings ustack and exchanges UDP with it over a veth pair:
# ustack (AF_PACKET) in a namespace with no IP address, the kernel in another.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
netns_setup_pair kv || exit 1
. "$(dirname "$0")/../lib/ustack.sh"
UDPCHECK="ip netns exec $NETNS_A $UDPCHECK"
ip -n "$NETNS_A" addr add 10.77.0.1/24 dev "$NETNS_IF_A"
netns_tmpdir
log=$NETNS_TMP/ust.log
ust_start "$NETNS_B" "$log" --dev "afpacket:$NETNS_IF_B" --ip 10.77.0.2/24 --pcap "$NETNS_TMP/ust.pcap" || exit 1
run_kernel_checks "$NETNS_A" 10.77.0.2 "$NETNS_IF_A" "$NETNS_MAC_B" || { cat "$log"; exit 1; }
ust_stop "$log" || exit 1
# The pcap must be readable and hold both directions.
if command -v tshark >/dev/null; then
    n_in=$(tshark -r "$NETNS_TMP/ust.pcap" -Y "icmp.type==8" 2>/dev/null | wc -l)
    n_out=$(tshark -r "$NETNS_TMP/ust.pcap" -Y "icmp.type==0" 2>/dev/null | wc -l)
    echo "pcap: $n_in echo requests, $n_out echo replies"
    [ "$n_in" -ge 15 ] && [ "$n_out" -ge 15 ] || { echo "pcap incomplete" >&2; exit 1; }
fi
grep -E "^(dev_rx|dev_tx|icmp_tx_echo_reply|udp_rx|icmp_tx_port_unreach) " "$log"
echo "kernel over veth: OK"
