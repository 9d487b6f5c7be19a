#!/usr/bin/env bash
# `make demo`: ustack answering the Linux kernel, step by step.
#
# As root: two network namespaces joined by a veth pair. ust-udpecho runs on
# one end (AF_PACKET) in a namespace with NO IP address configured: the
# address it answers to lives only inside ustack. The kernel on the other end
# resolves it by ARP, pings it (56, 1400 and 3000 bytes: the last is
# fragmented both ways), exchanges UDP datagrams with it and gets ICMP port
# unreachable from a closed port. Then ust-udpecho is stopped with SIGTERM and
# prints its counters. Then ust-httpd (HTTP/1.1 on the socket and epoll API)
# takes its place and answers curl and a 3-second wrk run from the kernel
# side (each skipped with a note when not installed: scripts/deps.sh installs
# them), first over AF_PACKET, then over AF_XDP (ustack's XDP program shown
# attached, then detached at exit; skipped when built without libxdp), and
# everything is removed.
#
# Without root (or where `ip netns` does not work): two ustack processes talk
# over memif shared memory instead, ust-udpecho as the memif server and
# ust-udpping as the client, then ust-httpd as the server and ust-get as the
# client, with sockets in a private temporary directory.
#
# Environment:
#   UST_BUILD=DIR      where the programs are (DIR/bin; default: build)
#   DEMO_FORCE_MEMIF=1 take the memif path even as root
# Ends by itself (within about 20 s); exit 0 when every step worked, non-zero
# otherwise. Everything it made is removed on exit, failure or Ctrl-C.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${UST_BUILD:-$ROOT/build}/bin

if [ -t 1 ]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi
note() { echo "   $*"; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }

need_programs() {
    local p
    for p in ust-udpecho ust-udpping ust-httpd ust-get; do
        [ -x "$BIN/$p" ] || fail "$BIN/$p not built (run 'make' first, or set UST_BUILD)"
    done
}

can_use_netns() {
    [ "${DEMO_FORCE_MEMIF:-0}" = 1 ] && return 1
    [ "$(id -u)" = 0 ] || return 1
    command -v ip >/dev/null && command -v ethtool >/dev/null || return 1
    ip netns add "ustdemoprobe$$" >/dev/null 2>&1 || return 1
    ip netns del "ustdemoprobe$$" >/dev/null 2>&1
    return 0
}

# ---- root: ustack versus the kernel over a veth pair --------------------------

KERN_IP=10.99.0.1
UST_IP=10.99.0.2

demo_ping() {   # SIZE: three pings, all must come back
    local out
    out=$(ip netns exec "$NETNS_A" timeout 10 ping -n -c 3 -i 0.2 -W 2 -s "$1" "$UST_IP" 2>&1)
    echo "$out" | sed -n '/bytes from/p;/packets transmitted/p' | sed 's/^/   /'
    echo "$out" | grep -q " 3 received" || fail "ping -s $1: not all replies came back"
    echo "$out" | grep -qi "wrong data\|corrupt\|BAD CHECKSUM" && fail "ping -s $1: damaged replies"
    return 0
}

demo_kernel_steps() {
    local udpcheck="ip netns exec $NETNS_A /usr/bin/python3 $ROOT/tests/tools/udpcheck.py"

    say "1. ARP: the kernel asks who has $UST_IP; ustack answers with its MAC"
    note "(ustack uses the interface's own MAC, $NETNS_MAC_B)"
    note "\$ ip neigh show dev $NETNS_IF_A   (kernel's namespace, before any traffic)"
    ip -n "$NETNS_A" neigh show dev "$NETNS_IF_A" | sed 's/^/   /'
    note "(empty) ... one ping later:"
    ip netns exec "$NETNS_A" timeout 5 ping -n -c 1 -W 2 "$UST_IP" >/dev/null 2>&1 ||
        fail "no reply to the first ping (ARP or ICMP)"
    note "\$ ip neigh show dev $NETNS_IF_A"
    ip -n "$NETNS_A" neigh show dev "$NETNS_IF_A" | sed 's/^/   /'
    ip -n "$NETNS_A" neigh show dev "$NETNS_IF_A" "$UST_IP" | grep -qi "lladdr $NETNS_MAC_B" ||
        fail "the kernel did not resolve $UST_IP to $NETNS_MAC_B"

    say "2. ping: ICMP echo, answered by ustack"
    note "56 bytes: one frame each way"
    demo_ping 56 || return 1
    note "1400 bytes: still one frame (MTU 1500)"
    demo_ping 1400 || return 1
    note "3000 bytes: the kernel sends 3 fragments, ustack reassembles them,"
    note "and fragments its reply; the kernel reassembles that"
    demo_ping 3000 || return 1

    say "3. UDP echo on port 7: datagrams of 1, 1400 and 8000 bytes, compared byte for byte"
    note "(8000 bytes: six fragments each way)"
    timeout 20 $udpcheck echo "$UST_IP" 7 1,1400,8000 --count 3 --tries 3 2>&1 | sed 's/^/   /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "UDP echo"

    say "4. A datagram to a closed port (9): ustack answers ICMP port unreachable"
    note "(the kernel turns it into ECONNREFUSED on the sender's socket)"
    timeout 10 $udpcheck unreach "$UST_IP" 9 2>&1 | sed 's/^/   /'
    [ "${PIPESTATUS[0]}" -eq 0 ] || fail "no ICMP port unreachable"
}

demo_show_counters() {   # LOG
    say "6. ustack's counters (--stats), printed as it exited"
    grep -E '^(dev_rx|dev_tx|arp_rx_request|arp_tx_reply|ip_rx|ip_tx|ip_frag_[a-z_]+|icmp_rx_echo|icmp_tx_echo_reply|icmp_tx_port_unreach|udp_rx|udp_tx|udp_drop_noport) ' \
        "$1" | awk '$2 != 0' | sed 's/^/   /'
}

HTTPD_PID=""

httpd_stop_show() {   # LOG: SIGTERM, then its counters
    kill -TERM "$HTTPD_PID" 2>/dev/null
    timeout 10 tail --pid="$HTTPD_PID" -f /dev/null || fail "ust-httpd did not exit"
    local rc=0
    wait "$HTTPD_PID" || rc=$?
    HTTPD_PID=""
    [ $rc -eq 0 ] || { cat "$1"; fail "ust-httpd exited with $rc"; }
    grep -E '^(httpd_accepted|httpd_requests|httpd_resp_2xx|httpd_resp_4xx|httpd_body_bytes|tcp_passive_opens) ' \
        "$1" | sed 's/^/   /'
}

demo_http_kernel() {   # LOG DEV STEP WHAT
    local dev=$2 step=$3
    say "$step. ust-httpd: HTTP/1.1 (socket + epoll API) $4"
    note "\$ ust-httpd --dev $dev --ip $UST_IP/24 --size 2000 --stats"
    ip netns exec "$NETNS_B" "$BIN/ust-httpd" --dev "$dev" --ip "$UST_IP/24" --size 2000 \
        --stats >"$1" 2>&1 &
    HTTPD_PID=$!
    netns_track_pid "$HTTPD_PID"
    local _
    for _ in $(seq 50); do grep -q serving "$1" && break; kill -0 "$HTTPD_PID" 2>/dev/null || break; sleep 0.1; done
    if ! grep -q serving "$1"; then
        if [ -n "${DEMO_OPTIONAL:-}" ]; then   # e.g. no AF_XDP on this kernel: say so, go on
            note "(ust-httpd could not start here, step skipped: $(tail -n 1 "$1"))"
            netns_stop_pid "$HTTPD_PID"
            netns_untrack_pid "$HTTPD_PID"
            return 1
        fi
        cat "$1"
        fail "ust-httpd did not start"
    fi
    case $dev in afxdp:*)
        note "ustack's XDP program on $NETNS_IF_B (it steers only $UST_IP and its ARP to ustack):"
        ip -n "$NETNS_B" link show "$NETNS_IF_B" | grep -o 'prog/xdp id [0-9]*' | sed 's/^/     /' ;;
    esac
    if command -v curl >/dev/null; then
        local fmt='HTTP %{http_code}, %{size_download} bytes, %{time_total} s, connections opened: %{num_connects}\n'
        note "\$ curl -s -o /dev/null -w '...' http://$UST_IP/   (kernel side)"
        ip netns exec "$NETNS_A" timeout 10 curl --noproxy '*' -s -o /dev/null -w "$fmt" "http://$UST_IP/" |
            sed 's/^/   /'
        [ "${PIPESTATUS[0]}" -eq 0 ] || fail "curl"
        note "three URLs on one keep-alive connection:"
        ip netns exec "$NETNS_A" timeout 10 curl --noproxy '*' -s -w "$fmt" -o /dev/null "http://$UST_IP/a" \
            -o /dev/null "http://$UST_IP/b" -o /dev/null "http://$UST_IP/c" | sed 's/^/   /'
        [ "${PIPESTATUS[0]}" -eq 0 ] || fail "curl keep-alive"
    else
        note "(curl not installed: skipped; scripts/deps.sh installs it)"
    fi
    if command -v wrk >/dev/null; then
        note "\$ wrk -t1 -c20 -d3s http://$UST_IP/   (kernel side, 20 keep-alive connections)"
        local out
        out=$(ip netns exec "$NETNS_A" timeout 15 wrk -t1 -c20 -d3s "http://$UST_IP/" 2>&1) || fail "wrk"
        echo "$out" | sed 's/^/   /'
        echo "$out" | grep -q 'Socket errors\|Non-2xx' && fail "wrk reported errors"
    else
        note "(wrk not installed: skipped; scripts/deps.sh installs it)"
    fi
    say "$((step + 1)). Stop ust-httpd with SIGTERM; its counters"
    local pid=$HTTPD_PID
    httpd_stop_show "$1"
    netns_untrack_pid "$pid"
    case $dev in afxdp:*)
        if ip -n "$NETNS_B" link show "$NETNS_IF_B" | grep -q 'prog/xdp'; then
            fail "the XDP program is still attached"
        fi
        note "the XDP program is detached again: $NETNS_IF_B is the kernel's alone" ;;
    esac
}

# The same server over AF_XDP: skipped with a note when ustack was built
# without libxdp or the kernel will not give it an AF_XDP socket here.
DEMO_XDP=""
demo_http_afxdp() {   # LOG
    if ip netns exec "$NETNS_B" "$BIN/ust-httpd" --dev "afxdp:$NETNS_IF_B,mode=bogus" --ip "$UST_IP/24" 2>&1 |
            grep -q "built without libxdp\|unknown device kind"; then
        note "(ustack built without libxdp: the AF_XDP step is skipped; scripts/deps.sh installs it)"
        return 0
    fi
    DEMO_OPTIONAL=1 demo_http_kernel "$1" "afxdp:$NETNS_IF_B" 9 "over AF_XDP (kernel bypass, docs/BACKENDS.md)" &&
        DEMO_XDP=", also over AF_XDP"
    return 0
}

demo_netns() {
    . "$ROOT/tests/lib/netns.sh"
    netns_setup_pair ustdemo || fail "cannot set up namespaces"
    say "0. Setup: namespaces $NETNS_A (kernel) and $NETNS_B (ustack), one veth pair"
    # The trap netns_setup_pair installed only cleans up: say why we stopped.
    trap 'rc=$?; netns_cleanup; [ $rc -eq 0 ] || echo "demo: cleaned up after failure (exit $rc)" >&2' EXIT
    UST_BUILD=${UST_BUILD:-$ROOT/build}
    . "$ROOT/tests/lib/ustack.sh"
    netns_tmpdir || fail "mktemp"
    ip -n "$NETNS_A" addr add "$KERN_IP/24" dev "$NETNS_IF_A" || fail "ip addr add"
    note "kernel side: $NETNS_IF_A $KERN_IP/24 in $NETNS_A"
    note "ustack side: $NETNS_IF_B in $NETNS_B, which has no IP address at all:"
    ip -n "$NETNS_B" -br addr show dev "$NETNS_IF_B" | sed 's/^/     /'
    local log=$NETNS_TMP/udpecho.log
    note "\$ ust-udpecho --dev afpacket:$NETNS_IF_B --ip $UST_IP/24 --stats"
    ust_start "$NETNS_B" "$log" --dev "afpacket:$NETNS_IF_B" --ip "$UST_IP/24" ||
        fail "ust-udpecho did not start"
    note "$(grep -m1 serving "$log")"

    demo_kernel_steps || fail "kernel steps"

    say "5. Stop ust-udpecho with SIGTERM (it exits cleanly and prints its counters)"
    ust_stop "$log" || { cat "$log"; fail "ust-udpecho did not stop cleanly"; }
    demo_show_counters "$log"

    demo_http_kernel "$NETNS_TMP/httpd.log" "afpacket:$NETNS_IF_B" 7 "in place of ust-udpecho"
    demo_http_afxdp "$NETNS_TMP/httpd-xdp.log"

    say "11. Clean up: namespaces and veth removed"
    netns_cleanup
    echo
    echo "demo: OK (ustack answered ARP, ping incl. fragments, UDP echo, port unreachable and HTTP$DEMO_XDP)"
}

# ---- no root: two ustack processes over memif ---------------------------------

MEMIF_TMP=""
MEMIF_ECHO_PID=""

memif_stop_pid() {   # PID: SIGTERM, up to 3 s, then SIGKILL
    kill -TERM "$1" 2>/dev/null
    timeout 3 tail --pid="$1" -f /dev/null 2>/dev/null || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

memif_cleanup() {
    local rc=$?
    [ -n "$MEMIF_ECHO_PID" ] && memif_stop_pid "$MEMIF_ECHO_PID"
    [ -n "$HTTPD_PID" ] && memif_stop_pid "$HTTPD_PID"
    [ -n "$MEMIF_TMP" ] && rm -rf "$MEMIF_TMP"
    [ $rc -eq 0 ] || echo "demo: cleaned up after failure (exit $rc)" >&2
}

memif_ping() {   # SIZE COUNT
    local out rc
    out=$(timeout 20 "$BIN/ust-udpping" --dev "memif:$MEMIF_SOCK" --ip 10.98.0.2/24 \
        --to 10.98.0.1:7 --size "$1" --count "$2" 2>&1)
    rc=$?
    echo "$out" | sed 's/^/   /'
    [ $rc -eq 0 ] || fail "ust-udpping --size $1"
}

demo_http_memif() {
    local sock=$MEMIF_TMP/http.sock log=$MEMIF_TMP/httpd.log i
    say "4. ust-httpd as the memif server, ust-get as the client: HTTP over shared memory"
    note "\$ ust-httpd --dev memif:$sock,role=server --ip 10.98.0.1/24 --size 2000 --stats"
    "$BIN/ust-httpd" --dev "memif:$sock,role=server" --ip 10.98.0.1/24 --size 2000 --stats >"$log" 2>&1 &
    HTTPD_PID=$!
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { cat "$log"; fail "ust-httpd made no memif socket"; }
    note "\$ ust-get --dev memif:$sock --ip 10.98.0.2/24 -o FILE http://10.98.0.1/   (three times)"
    for i in 1 2 3; do
        timeout 20 "$BIN/ust-get" --dev "memif:$sock" --ip 10.98.0.2/24 -o "$MEMIF_TMP/get.$i" \
            "http://10.98.0.1/demo$i" || fail "ust-get"
        note "fetch $i: $(stat -c %s "$MEMIF_TMP/get.$i") bytes, begins '$(head -c 24 "$MEMIF_TMP/get.$i")...'"
        [ "$(stat -c %s "$MEMIF_TMP/get.$i")" = 2000 ] || fail "ust-get: wrong size"
    done
    say "5. Stop ust-httpd with SIGTERM; its counters"
    httpd_stop_show "$log"
}

demo_memif() {
    trap memif_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if [ "${DEMO_FORCE_MEMIF:-0}" = 1 ]; then
        note "DEMO_FORCE_MEMIF=1: using memif"
    else
        note "not root (or no 'ip netns' here): showing two ustack processes over memif instead"
    fi
    MEMIF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ustdemo.XXXXXX") || fail "mktemp"
    MEMIF_SOCK=$MEMIF_TMP/memif.sock
    local log=$MEMIF_TMP/udpecho.log

    say "1. ust-udpecho: a ustack process serving UDP echo, the memif server"
    note "\$ ust-udpecho --dev memif:$MEMIF_SOCK,role=server --ip 10.98.0.1/24 --stats"
    "$BIN/ust-udpecho" --dev "memif:$MEMIF_SOCK,role=server" --ip 10.98.0.1/24 --stats \
        >"$log" 2>&1 &
    MEMIF_ECHO_PID=$!
    local _
    for _ in $(seq 50); do [ -S "$MEMIF_SOCK" ] && break; sleep 0.1; done
    [ -S "$MEMIF_SOCK" ] || { cat "$log"; fail "ust-udpecho made no memif socket"; }

    say "2. ust-udpping: a second ustack process, the memif client, sends datagrams"
    note "and checks every reply byte for byte (ARP first, over the shared memory)"
    note "64 bytes x 1000:"
    memif_ping 64 1000
    note "1400 bytes x 200:"
    memif_ping 1400 200
    note "8000 bytes x 50 (fragmented by one stack, reassembled by the other):"
    memif_ping 8000 50

    say "3. Stop ust-udpecho with SIGTERM; it prints its counters and removes its socket"
    kill -TERM "$MEMIF_ECHO_PID"
    timeout 10 tail --pid="$MEMIF_ECHO_PID" -f /dev/null || fail "ust-udpecho did not exit"
    local rc=0
    wait "$MEMIF_ECHO_PID" || rc=$?
    MEMIF_ECHO_PID=""
    [ $rc -eq 0 ] || { cat "$log"; fail "ust-udpecho exited with $rc"; }
    grep -E '^(dev_rx|dev_tx|arp_rx_request|arp_tx_reply|ip_frag_[a-z_]+|udp_rx|udp_tx) ' "$log" |
        awk '$2 != 0' | sed 's/^/   /'
    [ -e "$MEMIF_SOCK" ] && fail "socket file left behind"

    demo_http_memif
    echo
    echo "demo: OK (two ustack processes over memif: UDP echo and HTTP)"
}

need_programs
if can_use_netns; then
    demo_netns
else
    demo_memif
fi
exit 0
