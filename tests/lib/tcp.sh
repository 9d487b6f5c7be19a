# Shared steps of the TCP interop tests (sourced after netns.sh and a
# netns_setup_* call, so $NETNS_TMP exists and the EXIT trap cleans up).
#
#   TCP_SIZE_SCALE   multiplies every transfer size (default 1; CI may shrink)
#   TCP_PCAP         1 (default): ustack records a pcap per scenario; on a
#                    failure it is summarised with tshark and kept in
#                    $TCP_KEEP_DIR (default /tmp) for a closer look
#   TCP_TIMEOUT      no-progress timeout of the clients, seconds (default 30)
#   TCP_DEV_KIND     the backend ustack runs on in the tcp_* helpers below:
#                    afpacket (default), afxdp-native, afxdp-generic, dpdk
#                    (the net_af_packet virtual device, --no-huge); see
#                    tcp_dev_spec. A dpdk script must call tcp_dev_cleanup
#                    from its EXIT trap.

TCP_SIZE_SCALE=${TCP_SIZE_SCALE:-1}
TCP_PCAP=${TCP_PCAP:-1}
TCP_KEEP_DIR=${TCP_KEEP_DIR:-/tmp}
TCP_TIMEOUT=${TCP_TIMEOUT:-30}
TCP_BIN=${UST_BUILD:-$NETNS_ROOT/build}/bin
TCP_TBIN=${UST_BUILD:-$NETNS_ROOT/build}/tests/bin
TCPPEER="/usr/bin/python3 $NETNS_ROOT/tests/tools/tcppeer.py"
TCP_FAILED=()
TCP_DEV_KIND=${TCP_DEV_KIND:-afpacket}
TCP_DPDK_PREFIX=ust$$t   # EAL --file-prefix stem: /var/run/dpdk/<stem>*

# tcp_dev_spec IF NAME: the --dev spec for ustack on IF with TCP_DEV_KIND;
# NAME (the scenario) makes the EAL file prefix unique per process.
tcp_dev_spec() {
    case "$TCP_DEV_KIND" in
    afpacket) echo "afpacket:$1" ;;
    afxdp-native) echo "afxdp:$1,mode=native" ;;
    afxdp-generic) echo "afxdp:$1,mode=generic" ;;
    # net_af_packet's ring slots and mbufs sized as dpdk_kernel.sh does:
    # the vdev cannot chain mbufs, so a slot must hold a whole frame.
    dpdk) echo "dpdk:--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=$1,framesz=16384,blocksz=16384" \
               "--file-prefix=$TCP_DPDK_PREFIX$2 -l 0 --log-level=warning;mbuf=16384;mbufs=1023" ;;
    *) echo "tcp.sh: unknown TCP_DEV_KIND '$TCP_DEV_KIND'" >&2; echo "invalid:$1" ;;
    esac
}

# tcp_dev_cleanup: remove the EAL runtime directories the dpdk runs left.
tcp_dev_cleanup() {
    rm -rf /var/run/dpdk/"$TCP_DPDK_PREFIX"* 2>/dev/null
    return 0
}

# tcp_dev_available: whether the build has TCP_DEV_KIND's backend (a probe
# that fails before any device opens; prints why not).
tcp_dev_available() {
    local out
    case "$TCP_DEV_KIND" in
    afxdp-*)
        out=$("$TCP_BIN/ust-echo" --dev "afxdp:lo,mode=bogus" --ip 10.0.0.1/24 2>&1 </dev/null)
        if echo "$out" | grep -qi "built without libxdp\|unknown device kind"; then
            echo "ustack built without the afxdp backend: $(echo "$out" | head -n 1)"
            return 1
        fi ;;
    dpdk)
        out=$("$TCP_BIN/ust-echo" --dev "dpdk:" --ip 10.0.0.1/24 2>&1 </dev/null)
        if echo "$out" | grep -qi "built without DPDK\|unknown device kind"; then
            echo "ustack built without the dpdk backend: $(echo "$out" | head -n 1)"
            return 1
        fi ;;
    afpacket) ;;
    *) echo "unknown TCP_DEV_KIND '$TCP_DEV_KIND' (afpacket, afxdp-native, afxdp-generic, dpdk)"; return 1 ;;
    esac
    return 0
}

# tcp_require_tools: skip (77) when the programs are not built.
tcp_require_tools() {
    local t
    for t in "$TCP_BIN/ust-echo" "$TCP_TBIN/ust-tcpclient" "$TCP_BIN/ust-impair"; do
        [ -x "$t" ] || { echo "SKIP: $t not built (make all)"; exit 77; }
    done
    [ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }
}

# tcp_bytes MIB: MIB mebibytes scaled by TCP_SIZE_SCALE (at least 64 KiB).
tcp_bytes() {
    awk -v m="$1" -v s="$TCP_SIZE_SCALE" 'BEGIN { b = int(m * s * 1048576); if (b < 65536) b = 65536; print b }'
}

# tcp_pcap_args NAME: the --pcap option for a scenario, or nothing.
tcp_pcap_args() {
    [ "$TCP_PCAP" = 1 ] && echo "--pcap $NETNS_TMP/$1.pcap"
}

# tcp_echo_start NS NAME ARGS...: ust-echo in NS (tracked), wait until it
# serves. Sets TCP_ECHO_PID, TCP_ECHO_LOG.
tcp_echo_start() {
    local ns=$1 name=$2 i
    shift 2
    TCP_ECHO_LOG=$NETNS_TMP/$name.echo.log
    # shellcheck disable=SC2046
    ip netns exec "$ns" "$TCP_BIN/ust-echo" --stats $(tcp_pcap_args "$name") "$@" >"$TCP_ECHO_LOG" 2>&1 &
    TCP_ECHO_PID=$!
    netns_track_pid "$TCP_ECHO_PID"
    for i in $(seq 1 50); do
        grep -q "serving" "$TCP_ECHO_LOG" 2>/dev/null && return 0
        kill -0 "$TCP_ECHO_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "ust-echo did not start:" >&2
    cat "$TCP_ECHO_LOG" >&2
    return 1
}

# tcp_echo_stop: SIGTERM; require a clean exit that printed its counters.
tcp_echo_stop() {
    local rc=0
    [ -n "${TCP_ECHO_PID:-}" ] || return 0
    kill -TERM "$TCP_ECHO_PID" 2>/dev/null
    timeout 10 tail --pid="$TCP_ECHO_PID" -f /dev/null || { echo "ust-echo did not exit on SIGTERM" >&2; rc=1; }
    wait "$TCP_ECHO_PID" || rc=$?
    netns_untrack_pid "$TCP_ECHO_PID"
    TCP_ECHO_PID=""
    [ "$rc" -eq 0 ] || { echo "ust-echo exited with $rc" >&2; return 1; }
    grep -q "^echo_accepted" "$TCP_ECHO_LOG" || { echo "ust-echo printed no counters" >&2; return 1; }
}

# tcp_kpeer_start NS NAME MODE PORT [ARGS...]: a tcppeer.py server in NS
# (tracked), wait until it listens. Sets TCP_KPEER_PID, TCP_KPEER_LOG.
tcp_kpeer_start() {
    local ns=$1 name=$2 mode=$3 port=$4 i
    shift 4
    TCP_KPEER_LOG=$NETNS_TMP/$name.kpeer.log
    ip netns exec "$ns" $TCPPEER "$mode" "$port" "$@" >"$TCP_KPEER_LOG" 2>&1 &
    TCP_KPEER_PID=$!
    netns_track_pid "$TCP_KPEER_PID"
    for i in $(seq 1 50); do
        grep -q "listening" "$TCP_KPEER_LOG" 2>/dev/null && return 0
        kill -0 "$TCP_KPEER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "tcppeer $mode did not start:" >&2
    cat "$TCP_KPEER_LOG" >&2
    return 1
}

tcp_kpeer_stop() {
    [ -n "${TCP_KPEER_PID:-}" ] || return 0
    netns_stop_pid "$TCP_KPEER_PID"
    netns_untrack_pid "$TCP_KPEER_PID"
    TCP_KPEER_PID=""
}

# tcp_diag NAME LOG...: after a failure, what the stack and the wire say:
# TCP counters from the logs, the tshark conversation table and expert
# info of the scenario's pcap, which is kept for later.
tcp_diag() {
    local name=$1 log pcap=$NETNS_TMP/$1.pcap
    shift
    for log in "$@"; do
        [ -f "$log" ] || continue
        echo "---- $(basename "$log")" >&2
        grep -Ev '^(dev_|eth_|arp_)' "$log" | tail -n 60 >&2
    done
    [ -f "$pcap" ] || return 0
    local keep="$TCP_KEEP_DIR/ust-tcp-$name-$$.pcap"
    cp "$pcap" "$keep" 2>/dev/null && echo "pcap kept: $keep" >&2
    if command -v tshark >/dev/null; then
        echo "---- tshark conv,tcp" >&2
        timeout 120 tshark -r "$pcap" -q -z conv,tcp 2>/dev/null | head -n 30 >&2
        echo "---- tshark expert info (counts)" >&2
        timeout 120 tshark -r "$pcap" -q -z expert,note 2>/dev/null | grep -E '^ *[0-9]+ ' | head -n 30 >&2
    fi
}

# tcp_result NAME RC: record a scenario's outcome.
tcp_result() {
    if [ "$2" -eq 0 ]; then
        echo "PASS $1"
        rm -f "$NETNS_TMP/$1.pcap"
    else
        echo "FAIL $1 (exit $2)"
        TCP_FAILED+=("$1")
    fi
}

# tcp_finish: exit 0 when every scenario passed, else list the failures.
tcp_finish() {
    if [ ${#TCP_FAILED[@]} -gt 0 ]; then
        echo "failed scenarios: ${TCP_FAILED[*]}"
        exit 1
    fi
    exit 0
}

# tcp_sha FILE: its SHA-256 hex.
tcp_sha() { sha256sum "$1" | cut -d' ' -f1; }

# tcp_pattern_sha BYTES: SHA-256 hex of the first BYTES of the test pattern.
tcp_pattern_sha() { $TCPPEER pattern "$1" | sha256sum | cut -d' ' -f1; }

# tcp_kernel_echo NAME KNS UNS UIF UIP BYTES CONNS [ust-echo args...]:
# the kernel's tcppeer client in KNS sends BYTES on each of CONNS
# connections to a fresh ust-echo on UIF in UNS and checks every byte back.
tcp_kernel_echo() {
    local name=$1 kns=$2 uns=$3 uif=$4 uip=$5 bytes=$6 conns=$7 rc=0
    shift 7
    tcp_echo_start "$uns" "$name" --dev "$(tcp_dev_spec "$uif" "$name")" --ip "$uip/24" "$@" || { tcp_result "$name" 1; return 1; }
    ip netns exec "$kns" timeout 900 $TCPPEER client "$uip" 7 --bytes "$bytes" --conns "$conns" \
        --timeout "$TCP_TIMEOUT" 2>&1 | tail -n 15 | sed "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    tcp_echo_stop || rc=1
    if [ "$rc" -eq 0 ] && ! grep -q "^echo_errors 0$" "$TCP_ECHO_LOG"; then
        echo "[$name] ust-echo counted connection errors" >&2
        rc=1
    fi
    grep -E "^(echo_accepted|echo_bytes|tcp_.*retrans.*|tcp_.*rexmt.*) " "$TCP_ECHO_LOG" | sed "s/^/[$name] /"
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_ECHO_LOG"
    tcp_result "$name" "$rc"
    return "$rc"
}

# tcp_client_run NAME UNS UIF UIP ARGS...: ust-tcpclient on UIF in UNS with
# ARGS; its log is $NETNS_TMP/NAME.client.log.
tcp_client_run() {
    local name=$1 uns=$2 uif=$3 uip=$4 rc
    shift 4
    TCP_CLIENT_LOG=$NETNS_TMP/$name.client.log
    # shellcheck disable=SC2046
    ip netns exec "$uns" timeout 900 "$TCP_TBIN/ust-tcpclient" --stats $(tcp_pcap_args "$name") \
        --dev "$(tcp_dev_spec "$uif" "$name")" --ip "$uip/24" --timeout "$TCP_TIMEOUT" "$@" >"$TCP_CLIENT_LOG" 2>&1
    rc=$?
    grep -E "^ust-tcpclient" "$TCP_CLIENT_LOG" | tail -n 15 | sed "s/^/[$name] /"
    return "$rc"
}

# tcp_ustack_upload NAME KNS KIP UNS UIF UIP BYTES: ust-tcpclient uploads
# BYTES of the pattern to a kernel sink-server, which answers the SHA-256
# of what it got; it must be the pattern's.
tcp_ustack_upload() {
    local name=$1 kns=$2 kip=$3 uns=$4 uif=$5 uip=$6 bytes=$7 rc=0 want got
    tcp_kpeer_start "$kns" "$name" sink-server 9001 || { tcp_result "$name" 1; return 1; }
    tcp_client_run "$name" "$uns" "$uif" "$uip" --mode upload --connect "$kip:9001" --send-bytes "$bytes" \
        --recv-file "$NETNS_TMP/$name.reply" || rc=1
    tcp_kpeer_stop
    if [ "$rc" -eq 0 ]; then
        want=$(tcp_pattern_sha "$bytes")
        got=$(head -c 64 "$NETNS_TMP/$name.reply")
        echo "[$name] sha256 sent $want, kernel got $got"
        if [ "$want" != "$got" ]; then
            echo "[$name] sha256 mismatch" >&2
            # Tell a corrupted upload from a reply lost on the way back.
            grep -q "sha256 $want" "$TCP_KPEER_LOG" &&
                echo "[$name] the sink's log shows the right sha256: the upload was intact, its reply never reached ust-tcpclient's reader" >&2
            rc=1
        fi
    fi
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_CLIENT_LOG" "$TCP_KPEER_LOG"
    tcp_result "$name" "$rc"
    return "$rc"
}

# tcp_ustack_echo NAME KNS KIP UNS UIF UIP BYTES CONNS: ust-tcpclient
# streams BYTES per connection through a kernel echo-server, checking as it goes.
tcp_ustack_echo() {
    local name=$1 kns=$2 kip=$3 uns=$4 uif=$5 uip=$6 bytes=$7 conns=$8 rc=0
    tcp_kpeer_start "$kns" "$name" echo-server 9002 || { tcp_result "$name" 1; return 1; }
    tcp_client_run "$name" "$uns" "$uif" "$uip" --mode echo --connect "$kip:9002" --send-bytes "$bytes" \
        --conns "$conns" || rc=1
    tcp_kpeer_stop
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_CLIENT_LOG" "$TCP_KPEER_LOG"
    tcp_result "$name" "$rc"
    return "$rc"
}

# tcp_ustack_download NAME KNS KIP UNS UIF UIP BYTES: a kernel
# source-server sends BYTES of the pattern to ust-tcpclient; sha256 compared.
tcp_ustack_download() {
    local name=$1 kns=$2 kip=$3 uns=$4 uif=$5 uip=$6 bytes=$7 rc=0 want got
    tcp_kpeer_start "$kns" "$name" source-server 9003 --bytes "$bytes" || { tcp_result "$name" 1; return 1; }
    tcp_client_run "$name" "$uns" "$uif" "$uip" --mode download --connect "$kip:9003" --expect-bytes "$bytes" \
        --recv-file "$NETNS_TMP/$name.data" || rc=1
    tcp_kpeer_stop
    if [ "$rc" -eq 0 ]; then
        want=$(tcp_pattern_sha "$bytes")
        got=$(tcp_sha "$NETNS_TMP/$name.data")
        echo "[$name] sha256 expected $want, received $got"
        [ "$want" = "$got" ] || { echo "[$name] sha256 mismatch" >&2; rc=1; }
    fi
    rm -f "$NETNS_TMP/$name.data"
    [ "$rc" -eq 0 ] || tcp_diag "$name" "$TCP_CLIENT_LOG" "$TCP_KPEER_LOG"
    tcp_result "$name" "$rc"
    return "$rc"
}

# tcp_blackout NAME RUN...: restart the impairing bridge so that it
# blacks out for 1 s once 1 MiB has crossed it (ust-impair --blackout-after:
# the bridge counts, so the blackout lands mid-transfer however fast that
# is), then RUN the transfer. The bridge must have dropped frames in the
# blackout and the transfer must still complete. Failures go to TCP_FAILED.
tcp_blackout() {
    local name=$1 dropped rc=0
    shift
    netns_impair_restart --stats --blackout-after 1048576:1000 || rc=1
    ( "$@" ) || rc=1
    netns_impair_stop
    dropped=$(sed -n 's/.*drop_blackout \([0-9]*\).*/\1/p' "$NETNS_IMPAIR_LOG" | awk '{s += $1} END {print s + 0}')
    echo "[$name bridge] frames dropped in the blackout: $dropped"
    [ "$dropped" -gt 0 ] || { echo "[$name] the blackout missed the transfer" >&2; rc=1; }
    [ "$rc" -eq 0 ] || TCP_FAILED+=("$name")
    netns_impair_start --stats
}

# tcp_peer_echo NAME KNS IP BYTES: the kernel's tcppeer.py sends BYTES over
# one connection to the echo server at IP:7 and checks every byte back;
# prints its last lines and the rate. Returns the client's status.
tcp_peer_echo() {
    local name=$1 kns=$2 ip=$3 bytes=$4 rc t0 t1
    t0=$(date +%s.%N)
    ip netns exec "$kns" timeout 300 $TCPPEER client "$ip" 7 --bytes "$bytes" --conns 1 \
        --timeout "$TCP_TIMEOUT" 2>&1 | tail -n 3 | sed "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    awk -v b="$bytes" -v a="$t0" -v z="$t1" -v n="$name" \
        'BEGIN { printf "[%s] %d bytes echoed in %.2f s: %.1f MB/s\n", n, b, z - a, b / (z - a) / 1e6 }'
    return "$rc"
}
