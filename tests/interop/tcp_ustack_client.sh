#!/usr/bin/env bash
# ustack as TCP client of kernel servers over a veth pair (ustack on
# AF_PACKET in a namespace with no IP address): ust-tcpclient uploads 64 MiB
# to a sink that answers the SHA-256 of what it got, streams through a
# kernel echo server (1 and 8 connections), and downloads 64 MiB.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
tcp_require_tools
netns_setup_pair tu || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B UIF=$NETNS_IF_B KIP=10.79.0.1 UIP=10.79.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1

tcp_ustack_upload upload_64m "$KNS" "$KIP" "$UNS" "$UIF" "$UIP" "$(tcp_bytes 64)"
tcp_ustack_echo echo_16m "$KNS" "$KIP" "$UNS" "$UIF" "$UIP" "$(tcp_bytes 16)" 1
tcp_ustack_echo echo_8x2m "$KNS" "$KIP" "$UNS" "$UIF" "$UIP" "$(tcp_bytes 2)" 8
tcp_ustack_download download_64m "$KNS" "$KIP" "$UNS" "$UIF" "$UIP" "$(tcp_bytes 64)"
tcp_finish
