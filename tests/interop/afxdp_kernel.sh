#!/usr/bin/env bash
# ustack on AF_XDP (--dev afxdp) against the Linux kernel over a veth pair,
# in native and in generic XDP mode:
#   - ust-udpecho: ping (56/1400/3000 bytes), UDP echo, ARP, port unreachable
#     (run_kernel_checks, as kernel_veth.sh does over AF_PACKET);
#   - while it serves, the KERNEL keeps its own address on the same
#     interface: the ustack-side veth also carries a kernel IP, which the
#     peer pings and reaches by TCP (ustack's XDP program steers only
#     ustack's address and its ARP to the socket);
#   - ust-echo: a 16 MiB TCP stream over 4 connections checked byte for byte
#     by tcppeer.py, and a socat file round trip (SHA-256);
#   - ust-httpd: curl (a 1 MiB body, sha256) and a 2 s wrk run from the
#     kernel side, the kernel still answering its own address meanwhile;
#   - after SIGTERM the XDP program is gone from the interface.
# Prints UDP round trips/s (a kernel client, 64-byte datagrams, one at a
# time) and TCP MB/s per mode.
set -u
. "$(dirname "$0")/../lib/backend.sh"
[ -x "$UST_BIN/ust-udpecho" ] && [ -x "$UST_BIN/ust-httpd" ] || { echo "SKIP: ust-udpecho/ust-httpd not built"; exit 77; }
command -v socat >/dev/null || { echo "SKIP: socat missing (scripts/deps.sh)"; exit 77; }
netns_setup_pair xk || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIF=$NETNS_IF_A UIF=$NETNS_IF_B
KIP=10.81.0.1 UIP=10.81.0.2 OWNIP=10.81.0.3   # OWNIP: the kernel's, on ustack's veth
ip -n "$KNS" addr add "$KIP/24" dev "$KIF" || exit 1
ip -n "$UNS" addr add "$OWNIP/24" dev "$UIF" || exit 1
UDPCHECK="ip netns exec $KNS $UDPCHECK"   # run_kernel_checks runs it

# The afxdp kind must be built in (libxdp present at build time).
probe=$(ip netns exec "$UNS" "$UST_BIN/ust-udpecho" --dev "afxdp:$UIF,mode=bogus" --ip "$UIP/24" 2>&1)
if echo "$probe" | grep -q "built without libxdp\|unknown device kind"; then
    echo "SKIP: ustack built without the afxdp backend: $probe"
    exit 77
fi

# xdp_attached NS IF: is an XDP program on IF?
xdp_attached() { ip -n "$1" link show "$2" | grep -q "prog/xdp"; }

# kernel_keeps_own: ping and TCP to the kernel's own address on ustack's veth.
kernel_keeps_own() {
    local mode=$1 rc=0
    check_ping "$KNS" "$OWNIP" 56 5 5 || rc=1
    ip netns exec "$UNS" timeout 20 socat -u TCP-LISTEN:5001,reuseaddr OPEN:"$NETNS_TMP/own.$mode",creat,trunc &
    local lpid=$!
    netns_track_pid "$lpid"
    sleep 0.3
    echo "kernel-owned $mode" | ip netns exec "$KNS" timeout 10 socat -u - "TCP:$OWNIP:5001" || rc=1
    wait "$lpid" || rc=1
    netns_untrack_pid "$lpid"
    grep -q "kernel-owned $mode" "$NETNS_TMP/own.$mode" || { echo "TCP to the kernel's own address failed" >&2; rc=1; }
    [ "$rc" -eq 0 ] && echo "[$mode] kernel still answers $OWNIP on $UIF (ping, TCP)"
    return "$rc"
}

# udp_rate MODE: round trips per second of the kernel's UDP client.
udp_rate() {
    ip netns exec "$KNS" timeout 30 /usr/bin/python3 - "$UIP" <<'PY' || true
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.connect((sys.argv[1], 7))
n, lost, t0 = 20000, 0, time.monotonic()
for i in range(n):
    s.send(b"x" * 64)
    try:
        s.recv(2048)
    except socket.timeout:
        lost += 1
dt = time.monotonic() - t0
print(f"{n / dt:.0f} round trips/s ({dt / n * 1e6:.0f} us each, {lost} lost)")
PY
}

run_udp_mode() {
    local mode=$1 log=$NETNS_TMP/udp.$mode.log rc=0
    ust_start "$UNS" "$log" --dev "afxdp:$UIF,mode=$mode" --ip "$UIP/24" || return 1
    xdp_attached "$UNS" "$UIF" || { echo "[$mode] no XDP program attached" >&2; rc=1; }
    [ "$rc" -eq 0 ] && { run_kernel_checks "$KNS" "$UIP" "$KIF" "$NETNS_MAC_B" || rc=1; }
    [ "$rc" -eq 0 ] && { kernel_keeps_own "$mode" || rc=1; }
    [ "$rc" -eq 0 ] && echo "[$mode] UDP 64 B: $(udp_rate)"
    ust_stop "$log" || rc=1
    [ "$rc" -eq 0 ] || cat "$log" >&2
    grep -E "^(dev_rx|dev_tx|dev_kernel_drops|dev_xdp_[a-z_]*) " "$log" | sed "s/^/[$mode] /"
    ! xdp_attached "$UNS" "$UIF" || { echo "[$mode] XDP program left attached after exit" >&2; rc=1; }
    return "$rc"
}

run_tcp_mode() {
    local mode=$1 name=tcp_$1 rc=0 bytes
    bytes=$(tcp_bytes 16)
    tcp_echo_start "$UNS" "$name" --dev "afxdp:$UIF,mode=$mode" --ip "$UIP/24" || return 1
    local t0 t1
    t0=$(date +%s.%N)
    ip netns exec "$KNS" timeout 300 $TCPPEER client "$UIP" 7 --bytes "$bytes" --conns 4 \
        --timeout "$TCP_TIMEOUT" 2>&1 | tail -n 5 | sed "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    echo "[$name] 4 x $bytes bytes echoed in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s:" \
         "$(awk -v a="$t0" -v b="$t1" -v n="$bytes" 'BEGIN{printf "%.1f", 8*n/(b-a)/1e6}') MB/s through ustack (both ways)"
    # A socat file round trip on a fresh connection.
    local in=$NETNS_TMP/$name.in out=$NETNS_TMP/$name.out
    head -c "$(tcp_bytes 4)" /dev/urandom >"$in"
    ip netns exec "$KNS" timeout 120 socat -t 60 -T 60 - "TCP:$UIP:7" <"$in" >"$out" || rc=1
    [ "$(tcp_sha "$in")" = "$(tcp_sha "$out")" ] || { echo "[$name] socat round trip differs" >&2; rc=1; }
    tcp_echo_stop || rc=1
    grep -q "^echo_errors 0$" "$TCP_ECHO_LOG" || rc=1
    grep -E "^(echo_accepted|echo_bytes|tcp_retransmits|dev_kernel_drops|dev_xdp_fill_empty) " \
        "$TCP_ECHO_LOG" | sed "s/^/[$name] /"
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_ECHO_LOG"
    tcp_result "$name" "$rc"
    return "$rc"
}

# ust-httpd on afxdp: curl fetches a 1 MiB body (sha256 of the pattern
# ust-httpd documents) and wrk runs 2 s with no errors, while the kernel keeps
# answering its own address on the same interface.
run_http_mode() {
    local mode=$1 name=http_$1 rc=0 log=$NETNS_TMP/httpd.$1.log pid t
    for t in curl wrk; do
        command -v "$t" >/dev/null || {
            echo "[$name] $t missing (scripts/deps.sh installs it): the HTTP part cannot run" >&2
            tcp_result "$name" 1
            return 1
        }
    done
    ip netns exec "$UNS" "$UST_BIN/ust-httpd" --dev "afxdp:$UIF,mode=$mode" --ip "$UIP/24" --size 1048576 \
        --stats >"$log" 2>&1 &
    pid=$!
    netns_track_pid "$pid"
    local _
    for _ in $(seq 1 50); do grep -q serving "$log" && break; sleep 0.1; done
    local want got
    want=$(/usr/bin/python3 -c 'import hashlib
line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_\n"
print(hashlib.sha256((line * 16384)[:1048576]).hexdigest())')
    got=$(ip netns exec "$KNS" timeout 30 curl --noproxy '*' -sS --max-time 20 "http://$UIP/" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "[$name] curl body sha256 $got, want $want" >&2; rc=1; }
    ip netns exec "$KNS" timeout 20 wrk -t1 -c20 -d2s "http://$UIP/" >"$NETNS_TMP/wrk.$mode" 2>&1
    local reqs
    reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$NETNS_TMP/wrk.$mode")
    if [ "${reqs:-0}" -gt 0 ] && ! grep -q 'Socket errors\|Non-2xx' "$NETNS_TMP/wrk.$mode"; then
        echo "[$name] wrk -c20 2 s, 1 MiB bodies: $reqs requests, $(sed -n 's/^Transfer\/sec: *//p' "$NETNS_TMP/wrk.$mode")/s"
    else
        echo "[$name] wrk failed:" >&2
        cat "$NETNS_TMP/wrk.$mode" >&2
        rc=1
    fi
    kernel_keeps_own "$mode" || rc=1
    kill -TERM "$pid" 2>/dev/null
    timeout 10 tail --pid="$pid" -f /dev/null || { kill -KILL "$pid" 2>/dev/null; rc=1; }
    wait "$pid" || rc=1
    netns_untrack_pid "$pid"
    grep -q '^httpd_resp_5xx 0$' "$log" || { echo "[$name] no clean exit or 5xx answered" >&2; tail -5 "$log" >&2; rc=1; }
    ! xdp_attached "$UNS" "$UIF" || { echo "[$name] XDP program left attached after exit" >&2; rc=1; }
    tcp_result "$name" "$rc"
    return "$rc"
}

for mode in native generic; do
    if run_udp_mode "$mode"; then tcp_result "udp_$mode" 0; else tcp_result "udp_$mode" 1; fi
    run_tcp_mode "$mode"
    run_http_mode "$mode"
done
tcp_finish
