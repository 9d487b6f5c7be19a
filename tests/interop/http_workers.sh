#!/usr/bin/env bash
# ust-httpd --workers 2 on AF_PACKET over a veth with 2 queues each way:
# wrk and curl from the kernel side; both workers must have served
# connections (per-worker counters, "wN " prefix) and wrk must see no
# errors and no non-2xx answers.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
BIN=${UST_BUILD:-$NETNS_ROOT/build}/bin
[ -x "$BIN/ust-httpd" ] || { echo "SKIP: $BIN/ust-httpd not built"; exit 77; }
command -v wrk >/dev/null && command -v curl >/dev/null || { echo "SKIP: wrk or curl missing"; exit 77; }
netns_setup_mq_pair hw
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIF=$NETNS_IF_A UIF=$NETNS_IF_B
KIP=10.81.0.1 UIP=10.81.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$KIF" || exit 1
LOG=$NETNS_TMP/httpd.log
ip netns exec "$UNS" "$BIN/ust-httpd" --dev "afpacket:$UIF" --ip "$UIP/24" --workers 2 --size 1000 --stats \
    >"$LOG" 2>&1 &
PID=$!
netns_track_pid "$PID"
for _ in $(seq 50); do grep -q "serving HTTP" "$LOG" && break; sleep 0.1; done
rc=0
body=$(ip netns exec "$KNS" timeout 10 curl -s "http://$UIP/x" | wc -c)
[ "$body" -eq 1000 ] || { echo "curl got $body bytes" >&2; rc=1; }
out=$(ip netns exec "$KNS" timeout 30 wrk -t2 -c100 -d3s "http://$UIP/" 2>&1)
echo "$out" | sed 's/^/[wrk] /'
echo "$out" | grep -qE "Socket errors|Non-2xx" && { echo "wrk reported errors" >&2; rc=1; }
echo "$out" | grep -q "Requests/sec" || rc=1
kill -TERM "$PID"
timeout 10 tail --pid="$PID" -f /dev/null || { echo "ust-httpd did not exit" >&2; rc=1; }
wait "$PID" || { echo "ust-httpd exited non-zero" >&2; rc=1; }
netns_untrack_pid "$PID"
ctr() { awk -v k="$1 $2" '$1" "$2 == k { print $3; f=1 } END { if (!f) print 0 }' "$LOG"; }
for w in w0 w1; do
    n=$(ctr "$w" tcp_passive_opens)
    echo "[httpd] $w tcp_passive_opens $n"
    [ "$n" -gt 0 ] || { echo "$w served no connection" >&2; rc=1; }
done
[ "$rc" -eq 0 ] || tail -n 40 "$LOG" >&2
[ "$rc" -eq 0 ] && echo "PASS http_workers" || echo "FAIL http_workers"
exit "$rc"
