#!/usr/bin/env bash
# One TCP connection over a veth pair: ustack (AF_PACKET, in a namespace
# without an IP address) sending to a kernel sink, next to the kernel sending
# to the same sink over the same veth, in one run. Prints MB/s and the ratio.
# Usage (root): scripts/tcp-throughput.sh [MIB] [extra afpacket args, e.g. ,rx=v2]
set -u
MIB=${1:-1024}
DEVARGS=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib/netns.sh"
netns_require_root
netns_setup_pair tp || exit 1
BIN=${UST_BUILD:-$ROOT/build}
ip -n "$NETNS_A" addr add 10.91.0.1/24 dev "$NETNS_IF_A"
sink() {   # port: a kernel sink that counts bytes
    ip netns exec "$NETNS_A" socat -u "TCP-LISTEN:$1,reuseaddr" /dev/null &
    netns_track_pid $!
    sleep 0.3
}
bytes=$((MIB * 1024 * 1024))

sink 5001
ip -n "$NETNS_B" addr add 10.91.0.3/24 dev "$NETNS_IF_B"
t0=$(date +%s.%N)
head -c "$bytes" /dev/zero | ip netns exec "$NETNS_B" socat -u - TCP:10.91.0.1:5001
t1=$(date +%s.%N)
ip -n "$NETNS_B" addr del 10.91.0.3/24 dev "$NETNS_IF_B"
k=$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / (c - a) / 1e6 }')
echo "kernel -> kernel over veth: $k MB/s"

sink 5002
out=$(ip netns exec "$NETNS_B" timeout 300 "$BIN/tests/bin/ust-tcpclient" --dev "afpacket:$NETNS_IF_B$DEVARGS" \
      --ip 10.91.0.2/24 --connect 10.91.0.1:5002 --mode upload --send-bytes "$bytes" 2>&1)
echo "$out" | tail -1
u=$(echo "$out" | sed -n 's/.*: \([0-9.]*\) MB\/s.*/\1/p' | tail -1)
echo "ustack -> kernel over veth: ${u:-?} MB/s"
awk -v u="${u:-0}" -v k="$k" 'BEGIN { printf "ratio ustack/kernel: %.2f\n", u / k }'
