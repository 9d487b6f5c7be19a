#!/usr/bin/env bash
# 1,000 concurrent kernel TCP connections to one ust-echo (ustack on
# AF_PACKET, its namespace without an IP address), each streaming its own
# data and checked byte for byte by tcppeer.py (one selector loop, no threads).
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
tcp_require_tools
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 1100 ]; then
    echo "SKIP: cannot raise the open file limit to 1100 (have $(ulimit -n))"
    exit 77
fi
netns_setup_pair tm || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B UIF=$NETNS_IF_B KIP=10.80.0.1 UIP=10.80.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1
# The kernel client needs 1,000 ephemeral ports and a deep SYN queue on
# neither side; make the defaults explicit.
ip netns exec "$KNS" sysctl -qw net.ipv4.ip_local_port_range="20000 60000"

CONNS=${TCP_MANY_CONNS:-1000}
tcp_kernel_echo "many_${CONNS}" "$KNS" "$UNS" "$UIF" "$UIP" "$(tcp_bytes 0.0625)" "$CONNS"
if [ ${#TCP_FAILED[@]} -eq 0 ]; then
    max=$(sed -n 's/^echo_max_active //p' "$TCP_ECHO_LOG")
    echo "ust-echo held at most $max connections at once"
fi
tcp_finish
