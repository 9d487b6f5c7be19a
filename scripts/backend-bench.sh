#!/usr/bin/env bash
# The backend comparison of issue 7: the same HTTP server (ust-httpd --size
# 1000) on each of ustack's Linux backends — afpacket, afxdp native, afxdp
# generic, dpdk (net_af_packet) — next to the kernel's own server (nginx) on
# the same veth pair, in one run. One veth between two namespaces (offloads
# off on both ends, tests/lib/netns.sh); wrk -t1 -c50 in the kernel namespace.
# The server is pinned to CPU 0, wrk to CPU 1.
#
# For each server: requests/s (wrk), the server's CPU (utime+stime deltas of
# /proc/PID/stat over the wrk run, % of one core; nginx: master + workers),
# and how busy CPU 0 was over the run (/proc/stat), which also counts the
# kernel's softirq work done there.
#
# Prints one table and appends it, with machine facts and the date, to
# BENCHMARKS.md under "## Backend comparison (veth, HTTP 1000-byte bodies)"
# (BENCH_OUT=FILE to append elsewhere, BENCH_OUT=- for stdout only).
#
# Env: B (build dir, default build), BENCH_SECONDS (wrk run, default 5; not
#      SECONDS, which bash keeps as its own clock), BENCH_ONLY (a subset of
#      "afpacket afxdp-native afxdp-generic dpdk nginx").
# nginx is installed (apt-get, non-interactively) when missing; if that
# fails the kernel row uses a small python HTTP server instead (said so).
# Needs root. Exit 0 when every selected server was measured, 1 otherwise.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BDIR=${B:-build}
case $BDIR in /*) ;; *) BDIR=$ROOT/$BDIR ;; esac
HTTPD=$BDIR/bin/ust-httpd
SECS=${BENCH_SECONDS:-5}
ONLY=${BENCH_ONLY:-afpacket afxdp-native afxdp-generic dpdk nginx}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
SIZE=1000
HEADING="## Backend comparison (veth, HTTP 1000-byte bodies)"

[ -x "$HTTPD" ] || { echo "backend-bench: $HTTPD not built (make B=... all)"; exit 1; }
for t in wrk taskset curl; do
    command -v "$t" >/dev/null || { echo "backend-bench: $t not installed (scripts/deps.sh)"; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "backend-bench: needs 2 CPUs (server on 0, wrk on 1)"; exit 1; }

. "$ROOT/tests/lib/netns.sh"
netns_require_root
PREFIX=ustbb$$                      # DPDK --file-prefix
bb_cleanup() {
    netns_cleanup
    rm -rf /var/run/dpdk/"$PREFIX"* 2>/dev/null
}
netns_setup_pair bb || exit 1
trap bb_cleanup EXIT
netns_tmpdir || exit 1
T=$NETNS_TMP
KNS=$NETNS_A UNS=$NETNS_B KIF=$NETNS_IF_A UIF=$NETNS_IF_B
KIP=10.86.0.1 SIP=10.86.0.2        # SIP: ustack's address, or the kernel server's
ip -n "$KNS" addr add "$KIP/24" dev "$KIF" || exit 1
CLK_TCK=$(getconf CLK_TCK)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)   # the machine may be shared: said in the report

# ---- the kernel's server ----

# nginx_ensure: nginx present, or installed now (no service is started:
# the daemon is run by hand below, in the namespace).
nginx_ensure() {
    command -v nginx >/dev/null && return 0
    [ -x /usr/sbin/nginx ] && return 0
    echo "backend-bench: installing nginx (apt-get) ..."
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q nginx-light >"$T/apt.log" 2>&1 ||
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q nginx >>"$T/apt.log" 2>&1 ||
        { tail -3 "$T/apt.log"; return 1; }
    [ -x /usr/sbin/nginx ]
}
NGINX=/usr/sbin/nginx

# nginx_conf: one worker, keep-alive without a request limit (ust-httpd has
# none), a 1000-byte file of ust-httpd's pattern, no logging.
nginx_conf() {
    mkdir -p "$T/www" "$T/nginx"
    # the worker runs as nginx's unprivileged user: let it reach the file
    chmod 711 "$T" && chmod 755 "$T/www"
    /usr/bin/python3 -c 'import sys
line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_\n"
n = int(sys.argv[1]); sys.stdout.buffer.write((line * (n // 64 + 1))[:n])' "$SIZE" >"$T/www/index.html"
    cat >"$T/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; use epoll; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    etag off;
    keepalive_requests 100000000;
    keepalive_timeout 65;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    types { text/html html; }
    server {
        listen $SIP:80 backlog=4096;
        root $T/www;
        location / { try_files /index.html =404; }
    }
}
EOF
}

# A fallback when nginx cannot be had: python's threading HTTP server
# (keep-alive, the same body). Far slower than nginx: the row says so.
pyserver_write() {
    cat >"$T/pyhttpd.py" <<'PY'
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_\n"
body = (line * (int(sys.argv[2]) // 64 + 1))[:int(sys.argv[2])]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer((sys.argv[1], 80), H).serve_forever()
PY
}

# ---- measuring ----

# pids_cpu_ticks PID...: utime + stime (fields 14, 15 of /proc/PID/stat; the
# command field may hold spaces, so count after its closing parenthesis).
pids_cpu_ticks() {
    local sum=0 p s f
    for p in "$@"; do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        # after ")": f[0] is field 3 (state), so utime is f[11], stime f[12]
        read -ra f <<<"${s##*) }"
        sum=$((sum + f[11] + f[12]))
    done
    echo "$sum"
}

# cpu0_ticks: "busy total irq+softirq" ticks of CPU 0 from /proc/stat.
cpu0_ticks() {
    awk '$1 == "cpu0" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t, $7 + $8 }' /proc/stat
}

# server_pids: the server's process and, for nginx, its workers.
server_pids() {
    echo "$SRV_PID"
    [ "$KIND" = nginx ] && pgrep -P "$SRV_PID"
}

SRV_PID="" KIND="" LOG=""
# server_ready: a GET answers 200 with SIZE bytes (bounded wait).
server_ready() {
    local i got
    for i in $(seq 1 60); do
        kill -0 "$SRV_PID" 2>/dev/null || return 1
        got=$(ip netns exec "$KNS" timeout 3 curl --noproxy '*' -s -o /dev/null --max-time 2 \
            -w '%{http_code} %{size_download}' "http://$SIP/" 2>/dev/null)
        [ "$got" = "200 $SIZE" ] && return 0
        sleep 0.2
    done
    return 1
}

server_stop() {
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null
    timeout 10 tail --pid="$SRV_PID" -f /dev/null
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    netns_untrack_pid "$SRV_PID"
    SRV_PID=""
}

ROWS=()
FAILED=()
row() { ROWS+=("$*"); echo "$*"; }

# measure NAME SPEC: wrk against the running server, one table row.
measure() {
    local name=$1 spec=$2 pids p0 p1 c0 c1 t0 t1 rps cpu busy sirq per err
    pids=$(server_pids | tr '\n' ' ')
    # a short warm-up: ARP, connection setup paths, page cache
    ip netns exec "$KNS" timeout 20 taskset -c 1 wrk -t1 -c50 -d1s "http://$SIP/" >/dev/null 2>&1
    pids=$(server_pids | tr '\n' ' ')
    # shellcheck disable=SC2086
    p0=$(pids_cpu_ticks $pids)
    c0=$(cpu0_ticks)
    t0=$(date +%s.%N)
    ip netns exec "$KNS" timeout $((SECS + 30)) taskset -c 1 wrk -t1 -c50 -d"${SECS}s" \
        "http://$SIP/" >"$T/$name.wrk" 2>&1
    t1=$(date +%s.%N)
    c1=$(cpu0_ticks)
    # shellcheck disable=SC2086
    p1=$(pids_cpu_ticks $pids)
    rps=$(sed -n 's/^Requests\/sec: *//p' "$T/$name.wrk")
    err=$(grep -E 'Socket errors|Non-2xx' "$T/$name.wrk" | sed 's/^ *//' | tr '\n' ' ')
    if [ -z "$rps" ]; then
        sed 's/^/   /' "$T/$name.wrk"
        row "| $name | \`$spec\` | failed (wrk: no result) | | | | | |"
        FAILED+=("$name")
        return 1
    fi
    read -r cpu busy sirq per <<<"$(awk -v p0="$p0" -v p1="$p1" -v c0="$c0" -v c1="$c1" \
        -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" -v rps="$rps" 'BEGIN {
        split(c0, a, " "); split(c1, b, " ")
        cpu = (p1 - p0) / hz / (t1 - t0) * 100
        busy = (b[2] > a[2]) ? (b[1] - a[1]) / (b[2] - a[2]) * 100 : 0
        sirq = (b[2] > a[2]) ? (b[3] - a[3]) / (b[2] - a[2]) * 100 : 0
        per = cpu > 0 ? rps / (cpu / 100) : 0
        printf "%.0f %.0f %.0f %.0f\n", cpu, busy, sirq, per }')"
    row "| $name | \`$spec\` | $(printf '%.0f' "$rps") | $cpu % | $busy % | $sirq % | $per | ${err:-none} |"
}

# run_ustack NAME DEVSPEC [extra args]: ust-httpd on DEVSPEC, measured.
run_ustack() {
    local name=$1 spec=$2
    shift 2
    KIND=ustack LOG=$T/$name.log
    ip -n "$KNS" neigh flush dev "$KIF" 2>/dev/null
    ip netns exec "$UNS" taskset -c 0 "$HTTPD" --size "$SIZE" --dev "$spec" --ip "$SIP/24" --stats "$@" \
        >"$LOG" 2>&1 &
    SRV_PID=$!
    netns_track_pid "$SRV_PID"
    if ! server_ready; then
        echo "backend-bench: $name did not serve:"
        tail -5 "$LOG"
        row "| $name | \`$spec\` | failed (did not serve) | | | | | |"
        FAILED+=("$name")
        server_stop
        return 1
    fi
    measure "$name" "$spec"
    server_stop
    grep -E '^(httpd_resp_5xx|tcp_retransmits|dev_kernel_drops|dev_xdp_fill_empty) ' "$LOG" |
        tr '\n' ' ' | sed "s/^/   [$name] /"
    echo
}

# run_kernel: nginx (or the python fallback) with SIP on the kernel's veth.
run_kernel() {
    local name spec
    ip -n "$UNS" addr add "$SIP/24" dev "$UIF" || return 1
    ip -n "$KNS" neigh flush dev "$KIF" 2>/dev/null
    if nginx_ensure; then
        nginx_conf
        KIND=nginx name="kernel: nginx $($NGINX -v 2>&1 | sed 's/.*nginx\///')"
        spec="nginx, 1 worker, sendfile"
        ip netns exec "$UNS" taskset -c 0 "$NGINX" -c "$T/nginx/nginx.conf" -p "$T/nginx" \
            >"$T/nginx.log" 2>&1 &
    else
        echo "backend-bench: nginx could not be installed; the kernel row uses python's http.server"
        pyserver_write
        KIND=python name="kernel: python http.server (nginx unavailable)"
        spec="ThreadingHTTPServer"
        ip netns exec "$UNS" taskset -c 0 /usr/bin/python3 "$T/pyhttpd.py" "$SIP" "$SIZE" \
            >"$T/nginx.log" 2>&1 &
    fi
    SRV_PID=$!
    netns_track_pid "$SRV_PID"
    if ! server_ready; then
        echo "backend-bench: the kernel server did not serve:"
        tail -n 5 "$T/nginx.log" "$T/nginx/error.log" 2>/dev/null
        ip netns exec "$KNS" timeout 3 curl --noproxy '*' -sS -o /dev/null --max-time 2 \
            -w 'GET: %{http_code} %{size_download} bytes\n' "http://$SIP/"
        row "| $name | $spec | failed (did not serve) | | | | | |"
        FAILED+=("kernel")
    else
        measure "$name" "$spec"
    fi
    server_stop    # nginx: SIGTERM to the master stops its workers
    ip -n "$UNS" addr del "$SIP/24" dev "$UIF" 2>/dev/null
}

# The spec of tests/interop/dpdk_kernel.sh (16 KiB slots; net_af_packet
# cannot chain mbufs), --no-huge, lcore 0.
DPDK_SPEC="dpdk:--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=$UIF,framesz=16384,blocksz=16384 --file-prefix=$PREFIX -l 0 --log-level=warning;mbuf=16384;mbufs=1023"

echo "backend-bench: ust-httpd --size $SIZE vs the kernel, veth $KIF ($KNS) <-> $UIF ($UNS)," \
     "wrk -t1 -c50 -d${SECS}s on CPU 1, server on CPU 0"
echo
HDR="| server | --dev / setup | requests/s | server CPU (% of one core) | CPU 0 busy | of which irq+softirq | requests per server CPU-second | wrk errors |"
SEP="|---|---|---|---|---|---|---|---|"
echo "$HDR"
echo "$SEP"
for k in $ONLY; do
    case $k in
    afpacket) run_ustack afpacket "afpacket:$UIF" ;;
    afxdp-native) run_ustack "afxdp native" "afxdp:$UIF,mode=native" ;;
    afxdp-generic) run_ustack "afxdp generic" "afxdp:$UIF,mode=generic" ;;
    dpdk) run_ustack "dpdk net_af_packet" "$DPDK_SPEC" ;;
    nginx | kernel) run_kernel ;;
    *) echo "backend-bench: unknown BENCH_ONLY entry '$k'"; FAILED+=("$k") ;;
    esac
done

# ---- the report ----
report() {
    local commit
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit="$commit (with local changes)"
    echo
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
         "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- kernel: $(uname -sr); commit: $commit"
    echo "- load average before / after the run: $LOAD_BEFORE / $(cut -d' ' -f1-3 /proc/loadavg)" \
         "(other work on the machine shows up in \"CPU 0 busy\" and in the rates)"
    echo "- one veth pair between two namespaces, offloads off on both ends;" \
         "\`wrk -t1 -c50 -d${SECS}s\` on CPU 1 in the kernel namespace; the server on CPU 0" \
         "(taskset), not busy-polling; ust-httpd \`--size $SIZE\`, nginx serving a $SIZE-byte file"
    echo
    echo "$HDR"
    echo "$SEP"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Server CPU: utime+stime of the server's process (nginx: master + worker)" \
         "over the wrk run, from /proc/PID/stat. CPU 0 busy: all non-idle time of" \
         "CPU 0 (/proc/stat), which adds the kernel's softirq work done there; on veth" \
         "much of the receive path runs in the sender's context (wrk's, CPU 1)," \
         "so neither column is the whole cost of a request."
}
if [ "$OUT" != - ]; then
    {
        grep -qxF "$HEADING" "$OUT" 2>/dev/null || printf '\n%s\n\n%s\n' "$HEADING" \
            "Written by scripts/backend-bench.sh (each run appends below; rerun: \`sudo B=build scripts/backend-bench.sh\`)."
        report
    } >>"$OUT"
    echo
    echo "backend-bench: appended to $OUT"
fi
[ ${#FAILED[@]} -eq 0 ] || { echo "backend-bench: failed: ${FAILED[*]}"; exit 1; }
exit 0
