#!/usr/bin/env bash
# Smoke of the benchmark (no timing assertions): every ust-bench workload for
# about a second over the kernel's loopback and over ustack on a memif wire;
# each client's last line must be one well-formed JSON object with the right
# workload and transport, a known unit and a value > 0 (rr: p50/p99/p99.9).
# No root needed: loopback and a memif socket in a private temp directory.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BDIR=${UST_BUILD:-${B:-build}}
case $BDIR in /*) ;; *) BDIR=$ROOT/$BDIR ;; esac
BIN=$BDIR/bin/ust-bench
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 needed to check the JSON"; exit 77; }
TMP=$(mktemp -d /tmp/bench_smoke.XXXXXX)
SRV=
PORT=$((20000 + $$ % 20000))
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$TMP"/*.out 2>/dev/null; exit 1; }

check_json() {   # file workload transport
    python3 - "$@" <<'PY'
import json, sys
path, workload, transport = sys.argv[1:4]
lines = [l for l in open(path).read().splitlines() if l.strip()]
if not lines:
    sys.exit("no output")
o = json.loads(lines[-1])
units = {"echo": "req/s", "crr": "conn/s", "stream": "Gbit/s", "rr": "req/s", "udp": "pkt/s", "hold": "conns"}
assert o["workload"] == workload, o
assert o["transport"] == transport, o
assert o["unit"] == units[workload], o
assert isinstance(o["value"], (int, float)) and o["value"] > 0, o
if workload == "rr":
    for k in ("p50_us", "p99_us", "p999_us"):
        assert o[k] > 0, (k, o)
    assert o["p50_us"] <= o["p99_us"] <= o["p999_us"], o
if workload == "hold":
    assert o["value"] == o["conns"], o
print(lines[-1])
PY
}

one() {   # transport workload client-args...
    local tr=$1 w=$2
    shift 2
    local sargs=(--kernel) cargs=(--kernel) peer=127.0.0.1 sock=$TMP/memif.sock
    if [ "$tr" = ustack ]; then
        rm -f "$sock"
        sargs=(--dev "memif:$sock,role=server" --ip 10.78.0.1/24)
        cargs=(--dev "memif:$sock,role=client" --ip 10.78.0.2/24)
        peer=10.78.0.1
    fi
    "$BIN" server --workload "$w" --port "$PORT" "${sargs[@]}" >"$TMP/server.out" 2>&1 &
    SRV=$!
    if [ "$tr" = ustack ]; then
        for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
    else
        sleep 0.3
    fi
    timeout 60 "$BIN" client --workload "$w" --connect "$peer:$PORT" --duration 1 --json "${cargs[@]}" "$@" \
        >"$TMP/client.out" 2>&1 || fail "$tr $w: client exit $?"
    kill -TERM "$SRV"
    timeout 10 tail --pid="$SRV" -f /dev/null || fail "$tr $w: server did not stop"
    wait "$SRV" || fail "$tr $w: server exit $?"
    SRV=
    check_json "$TMP/client.out" "$w" "$tr" || fail "$tr $w: bad JSON line"
}

"$BIN" --help | grep -q -- "--workload" || fail "--help"
for tr in kernel ustack; do
    one $tr echo --conns 10
    one $tr crr --conns 10 $([ $tr = ustack ] && echo --time-wait 1)
    one $tr stream
    one $tr rr
    one $tr udp
    one $tr hold --conns 200
done
echo "PASS: ust-bench smoke, 6 workloads x 2 transports"
