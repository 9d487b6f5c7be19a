#!/usr/bin/env bash
# The benchmark matrix of issue 6: every workload of ust-bench over the
# kernel's sockets on loopback and over ustack on a memif wire (two ustack
# processes, --busy-poll), in one run, server pinned to CPU 0 and client to
# CPU 1 in both cases; plus two dpdk-testpmd instances (io forwarding,
# --tx-first) over the same kind of memif wire as the UDP yardstick.
# Prints one table and writes it, with machine facts and how to reproduce
# it, to BENCHMARKS.md (BENCH_OUT to write elsewhere, BENCH_OUT=- for none).
#
# Env: B (build dir, default build), BENCH_SECONDS (per run, default 5),
#      HOLD_CONNS (ustack hold, default 100000), BENCH_ONLY (e.g. "echo rr").
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BDIR=${B:-build}
case $BDIR in /*) ;; *) BDIR=$ROOT/$BDIR ;; esac
BIN=$BDIR/bin/ust-bench
SECS=${BENCH_SECONDS:-5}
HOLD_CONNS=${HOLD_CONNS:-100000}
KERNEL_HOLD_MAX=19000           # a process here may hold at most 20,000 fds
ONLY=${BENCH_ONLY:-echo crr stream rr udp hold}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
PORT=5201
[ -x "$BIN" ] || { echo "bench: $BIN not built (make programs)"; exit 1; }

TMP=$(mktemp -d /tmp/ust-bench.XXXXXX)
SRV_PID=
TP_PIDS=()
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null
    for p in "${TP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$TMP" "/var/run/dpdk/ustbA$$" "/var/run/dpdk/ustbB$$"
}
trap cleanup EXIT

# ---- one measurement: server on CPU 0, client on CPU 1, JSON back ----

server_start() {   # transport workload [server args...]
    local tr=$1 w=$2
    shift 2
    local sock=$TMP/memif.sock
    rm -f "$sock"
    if [ "$tr" = kernel ]; then
        taskset -c 0 "$BIN" server --workload "$w" --port $PORT --kernel "$@" >"$TMP/server.out" 2>&1 &
        SRV_PID=$!
        sleep 0.3
    else
        taskset -c 0 "$BIN" server --workload "$w" --port $PORT --dev "memif:$sock,role=server" \
            --ip 10.77.0.1/24 --busy-poll "$@" >"$TMP/server.out" 2>&1 &
        SRV_PID=$!
        for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
    fi
}

server_stop() {
    [ -n "$SRV_PID" ] || return
    kill -TERM "$SRV_PID" 2>/dev/null
    timeout 10 tail --pid="$SRV_PID" -f /dev/null
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
}

# run transport workload "server args" client args... -> prints the JSON line (or nothing)
run() {
    local tr=$1 w=$2 sargs=$3
    shift 3
    # shellcheck disable=SC2086
    server_start "$tr" "$w" $sargs
    local cargs=(--kernel)
    [ "$tr" = ustack ] && cargs=(--dev "memif:$TMP/memif.sock,role=client" --ip 10.77.0.2/24 --busy-poll)
    local peer=127.0.0.1
    [ "$tr" = ustack ] && peer=10.77.0.1
    timeout $((SECS * 3 + 120 + HOLD_CONNS / 20000)) taskset -c 1 "$BIN" client --workload "$w" --connect "$peer:$PORT" \
        --duration "$SECS" --json "${cargs[@]}" "$@" >"$TMP/client.out" 2>&1
    server_stop
    cp "$TMP/client.out" "$TMP/$tr-$w.client"
    cp "$TMP/server.out" "$TMP/$tr-$w.server"
    tail -n 1 "$TMP/client.out" | grep '^{' || { echo "bench: $tr $w failed:" >&2; tail -n 5 "$TMP/client.out" >&2; }
}

field() {   # json name -> value
    sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"
}

# ---- the testpmd yardstick for udp ----

testpmd_pps() {
    command -v dpdk-testpmd >/dev/null || { echo 0; return; }
    local sock=$TMP/tp.sock common=(--no-huge -m 256 --no-pci)
    local fwd=(-- --forward-mode=io --auto-start --tx-first --stats-period 1 --total-num-mbufs=16384 --nb-cores=1)
    rm -f "$sock"
    timeout $((SECS + 20)) dpdk-testpmd "${common[@]}" --lcores '0@0,1@0' --file-prefix "ustbA$$" \
        --vdev "net_memif0,role=server,id=0,socket=$sock,socket-abstract=no" "${fwd[@]}" \
        </dev/null >"$TMP/tpA.out" 2>&1 &
    TP_PIDS+=($!)
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
    timeout $((SECS + 10)) dpdk-testpmd "${common[@]}" --lcores '0@1,1@1' --file-prefix "ustbB$$" \
        --vdev "net_memif0,role=client,id=0,socket=$sock,socket-abstract=no" "${fwd[@]}" \
        </dev/null >"$TMP/tpB.out" 2>&1 &
    TP_PIDS+=($!)
    sleep $((SECS + 2))
    for p in "${TP_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
    for p in "${TP_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    TP_PIDS=()
    # Rx-pps of the server instance, once per second: the median non-zero one.
    grep -a 'Rx-pps:' "$TMP/tpA.out" | awk '$2 > 0 {print $2}' | sort -n |
        awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : 0}'
}

# ---- the matrix ----

declare -A K U NOTE
want() { [[ " $ONLY " == *" $1 "* ]]; }

if want echo; then
    K[echo]=$(run kernel echo "" --conns 100 --size 64 --depth 1)
    U[echo]=$(run ustack echo "" --conns 100 --size 64 --depth 1)
fi
if want crr; then
    # Both clients rotate over 16 source addresses (IP_BIND_ADDRESS_NO_PORT),
    # as a C10M client does: one address gives 28,232 ephemeral ports, and a
    # TIME-WAIT tuple is taken over only after 1 s (RFC 6191 with timestamps,
    # Linux's tcp_tw_reuse), which bounds one address at ~28k conn/s.
    kips=() uips=()
    for i in $(seq 2 17); do kips+=(--ip "127.0.0.$i/8"); done
    for i in $(seq 3 17); do uips+=(--ip "10.77.0.$i/24"); done
    K[crr]=$(run kernel crr "" --conns 100 --size 64 "${kips[@]}")
    U[crr]=$(run ustack crr "" --conns 100 --size 64 "${uips[@]}")
    NOTE[crr]="16 client source addresses on both"
fi
if want stream; then
    K[stream]=$(run kernel stream "")
    U[stream]=$(run ustack stream "--mtu 65000" --mtu 65000)
    NOTE[stream]="memif MTU 65000, loopback 65536"
    if [ -z "${U[stream]}" ]; then
        U[stream]=$(run ustack stream "")
        NOTE[stream]="memif MTU 1500, loopback 65536"
    fi
fi
if want rr; then
    K[rr]=$(run kernel rr "" --size 64)
    U[rr]=$(run ustack rr "" --size 64)
fi
if want udp; then
    K[udp]=$(run kernel udp "" --size 64 --depth 128)
    U[udp]=$(run ustack udp "" --size 64 --depth 128)
    TP_PPS=$(testpmd_pps)
    NOTE[udp]="testpmd pair: ${TP_PPS} pkt/s (64 B frames)"
fi
if want hold; then
    kc=$HOLD_CONNS
    [ "$kc" -gt $KERNEL_HOLD_MAX ] && kc=$KERNEL_HOLD_MAX
    K[hold]=$(run kernel hold "" --conns "$kc")
    # Each (client address, server port) pair gives 64,512 tuples; the stack
    # takes 16 addresses, so beyond ~1M connections the server listens on
    # several ports (--ports on both ends).
    pairs=$(((HOLD_CONNS + 64511) / 64512))
    nips=$((pairs < 16 ? pairs : 16))
    hports=$(((pairs + nips - 1) / nips))
    ips=()
    for i in $(seq 3 $((nips + 1))); do ips+=(--ip "10.77.0.$i/24"); done
    U[hold]=$(run ustack hold "--tcp-conns $((HOLD_CONNS + 1024)) --ports $hports" --conns "$HOLD_CONNS" \
        --tcp-conns $((HOLD_CONNS + 1024)) --ports "$hports" "${ips[@]}")
    SRV_HOLD=$(grep '^server hold' "$TMP/ustack-hold.server" | tail -n 1 | sed 's/.*bytes_per_conn //')
fi

# ---- the table ----

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN { if (r == "-") print "no data"; else if (r >= t) print "met"; else print "**MISSED**" }'; }

table() {
    echo "| workload | kernel | ustack | ratio | target | met? |"
    echo "|---|---|---|---|---|---|"
    local w k u r
    for w in echo crr stream; do
        want $w || continue
        k=$(field "${K[$w]:-}" value); u=$(field "${U[$w]:-}" value); r=$(ratio "$u" "$k")
        local t=10 label="echo 64 B, 100 conns, depth 1"
        [ $w = crr ] && t=20 label="crr 64 B, 100 concurrent"
        [ $w = stream ] && t=1.5 label="stream"
        printf '| %s | %s %s | %s %s | %s× | ≥ %s× | %s |\n' "$label${NOTE[$w]:+ (${NOTE[$w]})}" "${k:--}" \
            "$(field "${K[$w]:-}" unit)" "${u:--}" "$(field "${U[$w]:-}" unit)" "$r" "$t" "$(met "$r" "$t")"
    done
    if want rr; then
        k=$(field "${K[rr]:-}" p50_us); u=$(field "${U[rr]:-}" p50_us); r=$(ratio "$k" "$u")
        printf '| rr 64 B p50 latency (p99 / p99.9: kernel %s / %s, ustack %s / %s µs) | %s µs | %s µs | 1/%s | ≤ 1/20 | %s |\n' \
            "$(field "${K[rr]:-}" p99_us)" "$(field "${K[rr]:-}" p999_us)" "$(field "${U[rr]:-}" p99_us)" \
            "$(field "${U[rr]:-}" p999_us)" "${k:--}" "${u:--}" "$r" "$(met "$r" 20)"
        printf '| rr 64 B round trips | %s req/s | %s req/s | %s× | — | — |\n' "$(field "${K[rr]:-}" value)" \
            "$(field "${U[rr]:-}" value)" "$(ratio "$(field "${U[rr]:-}" value)" "$(field "${K[rr]:-}" value)")"
    fi
    if want udp; then
        u=$(field "${U[udp]:-}" value); r=$(ratio "$u" "${TP_PPS:-0}")
        printf '| udp echo 64 B (%s) | %s pkt/s | %s pkt/s | %s of testpmd | ≥ 0.80 | %s |\n' "${NOTE[udp]}" \
            "$(field "${K[udp]:-}" value)" "${u:--}" "$r" "$(met "$r" 0.8)"
    fi
    if want hold; then
        k=$(field "${K[hold]:-}" value); u=$(field "${U[hold]:-}" value)
        printf '| hold (asked: ustack %s, kernel %s) | %s conns, ~%s B/conn end (slab), %s conn/s setup | %s conns, %s B/conn client, %s B/conn server, %s conn/s setup | — | 10,000,000 at ≤ 1 KiB | %s |\n' \
            "$HOLD_CONNS" "$kc" "${k:--}" "$(field "${K[hold]:-}" kernel_slab_bytes_per_conn_end)" \
            "$(field "${K[hold]:-}" setup_rate)" "${u:--}" "$(field "${U[hold]:-}" client_bytes_per_conn)" \
            "${SRV_HOLD:--}" "$(field "${U[hold]:-}" setup_rate)" \
            "$(awk -v n="${u:-0}" -v c="$(field "${U[hold]:-}" client_bytes_per_conn)" -v s="${SRV_HOLD:-}" \
                'BEGIN { if (n < 10000000) print "**MISSED** (not run at 10M)";
                         else if (c == "" || s == "") print "**MISSED** (no memory figure)";
                         else if (c + 0 > 1024 || s + 0 > 1024) print "**MISSED** (over 1 KiB)";
                         else print "met" }')"
    fi
}

facts() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
         "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "- kernel: $(uname -sr)"
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
         "$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '(with local changes)')"
    echo "- ${SECS} s per run; server on CPU 0, client on CPU 1 (taskset); ustack: memif, --busy-poll on both ends"
}

# The hand-written "## Notes" section of the previous BENCHMARKS.md survives a
# rerun (what limits each missed target, with the profile that shows it).
NOTES=
[ "$OUT" != - ] && [ -f "$OUT" ] && NOTES=$(awk '/^## How to reproduce/ {p = 0} /^## Notes/ {p = 1} p' "$OUT")
[ -n "$NOTES" ] || NOTES="## Notes

(none yet)
"
TABLE=$(table)
FACTS=$(facts)
echo "$FACTS"
echo
echo "$TABLE"
for f in "$TMP"/*.client; do echo "== $(basename "$f")"; tail -n 2 "$f"; done >"$TMP/raw.txt"

if [ "$OUT" != - ]; then
    {
        echo "# Benchmarks"
        echo
        echo "ustack over a memif wire (two ustack processes) against the Linux kernel over"
        echo "loopback, the same workload code (tools/ust-bench.c) on both, in one run."
        echo "Ratios are what count: absolute figures drift on this shared machine."
        echo
        echo "## Latest run"
        echo
        echo "$FACTS"
        echo
        echo "$TABLE"
        echo
        echo "Ratios: ustack / kernel (rr: kernel p50 / ustack p50; udp: ustack replies per"
        echo "second / the Rx-pps of one of two dpdk-testpmd instances forwarding to each other)."
        echo
        echo "$NOTES"
        echo "## How to reproduce"
        echo
        echo '```sh'
        echo "make bench                                   # = make programs && scripts/bench.sh"
        echo "BENCH_SECONDS=10 HOLD_CONNS=1000000 scripts/bench.sh"
        echo "BENCH_ONLY=\"echo rr\" BENCH_OUT=- scripts/bench.sh   # a subset, table on stdout only"
        echo '```'
        echo
        echo "One pair by hand (ustack; --kernel and 127.0.0.1 for the kernel):"
        echo
        echo '```sh'
        echo "taskset -c 0 build/bin/ust-bench server --workload echo --port 5201 \\"
        echo "    --dev memif:/tmp/m.sock,role=server --ip 10.77.0.1/24 --busy-poll &"
        echo "taskset -c 1 build/bin/ust-bench client --workload echo --connect 10.77.0.1:5201 \\"
        echo "    --conns 100 --size 64 --depth 1 --duration 5 --json \\"
        echo "    --dev memif:/tmp/m.sock,role=client --ip 10.77.0.2/24 --busy-poll"
        echo '```'
        echo
        echo "CI runs only tests/interop/bench_smoke.sh (every workload ~1 s on both"
        echo "transports, checks the JSON line, no timing assertions)."
    } >"$OUT"
    echo
    echo "written to $OUT"
fi
