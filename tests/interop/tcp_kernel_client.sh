#!/usr/bin/env bash
# The Linux kernel as TCP client of ust-echo over a veth pair (ustack on
# AF_PACKET in a namespace with no IP address): a 64 MiB stream checked byte
# for byte by tcppeer.py, then socat and nc piping random files whose
# SHA-256 must come back unchanged.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
. "$(dirname "$0")/../lib/tcp.sh"
tcp_require_tools
netns_setup_pair tk || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B UIF=$NETNS_IF_B KIP=10.78.0.1 UIP=10.78.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1

tcp_kernel_echo stream_64m "$KNS" "$UNS" "$UIF" "$UIP" "$(tcp_bytes 64)" 1

# pipe_tool NAME CMD...: send a random file through ust-echo with CMD
# (reading stdin, writing stdout); the SHA-256 must survive the round trip.
pipe_tool() {
    local name=$1 rc=0 in=$NETNS_TMP/$1.in out=$NETNS_TMP/$1.out
    shift
    head -c "$(tcp_bytes 4)" /dev/urandom >"$in"
    tcp_echo_start "$UNS" "$name" --dev "afpacket:$UIF" --ip "$UIP/24" || { tcp_result "$name" 1; return; }
    ip netns exec "$KNS" timeout 120 "$@" <"$in" >"$out" || { echo "[$name] $1 failed" >&2; rc=1; }
    tcp_echo_stop || rc=1
    echo "[$name] sha256 sent $(tcp_sha "$in"), echoed $(tcp_sha "$out") ($(stat -c %s "$out") bytes)"
    [ "$(tcp_sha "$in")" = "$(tcp_sha "$out")" ] || rc=1
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_ECHO_LOG"
    tcp_result "$name" "$rc"
}

if command -v socat >/dev/null; then
    # -t: after our EOF, wait this long for the echo to finish.
    pipe_tool socat socat -t 60 -T 60 - "TCP:$UIP:7"
else
    echo "socat not installed: socat sanity skipped"
fi
if command -v nc >/dev/null && nc -h 2>&1 | grep -Eq -- '[[:space:]]-N[[:space:]]'; then
    # -N: shut down the write side at EOF on stdin (OpenBSD netcat).
    pipe_tool nc nc -N -w 60 "$UIP" 7
else
    echo "OpenBSD nc not installed: nc sanity skipped"
fi
tcp_finish
