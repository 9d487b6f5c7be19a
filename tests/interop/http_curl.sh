#!/usr/bin/env bash
# curl and wrk (the kernel side) against ust-httpd (ustack on AF_PACKET, in a
# namespace with NO IP address: the address lives only inside ustack).
#
#   --size 1000 and 1 MiB: bodies checked by size and sha256 against the
#   pattern ust-httpd documents; HEAD; keep-alive (curl fetching several URLs
#   over one connection); pipelining (three requests in one segment from a
#   raw python socket, three responses in order); 400 for garbage, 405 for
#   POST; a 3-second wrk run with no socket errors and no non-2xx answers.
#   --root DIR: files byte for byte, Content-Type, 404, traversal refused,
#   pipelined GET/HEAD/GET of different files answered in order.
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
BIN=${UST_BUILD:-$NETNS_ROOT/build}/bin
[ -x "$BIN/ust-httpd" ] || { echo "SKIP: $BIN/ust-httpd not built (make all)"; exit 77; }
for t in curl wrk /usr/bin/python3; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed (scripts/deps.sh)"; exit 77; }
done
netns_setup_pair hc || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIP=10.81.0.1 UIP=10.81.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1
T=$NETNS_TMP
FAILED=()

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED+=("$*"); }
kns() { ip netns exec "$KNS" "$@"; }
# curl in the kernel namespace, never through a proxy from the environment.
kcurl() { kns timeout 30 curl --noproxy '*' -sS --max-time 20 "$@"; }

# The --size body: byte i is LINE[i % 64] (see tools/ust-httpd.c).
pattern_sha() {
    /usr/bin/python3 -c 'import hashlib, sys
n = int(sys.argv[1]); line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_\n"
print(hashlib.sha256((line * (n // 64 + 1))[:n]).hexdigest())' "$1"
}

HTTPD_PID="" HTTPD_LOG=""
httpd_start() {   # NAME ARGS...
    HTTPD_LOG=$T/$1.httpd.log
    shift
    ip netns exec "$UNS" "$BIN/ust-httpd" --dev "afpacket:$NETNS_IF_B" --ip "$UIP/24" --stats "$@" \
        >"$HTTPD_LOG" 2>&1 &
    HTTPD_PID=$!
    netns_track_pid "$HTTPD_PID"
    local _
    for _ in $(seq 1 50); do
        grep -q "serving" "$HTTPD_LOG" 2>/dev/null && return 0
        kill -0 "$HTTPD_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$HTTPD_LOG"
    return 1
}
httpd_stop() {   # SIGTERM: a clean exit with counters, no 5xx answered
    local rc=0
    kill -TERM "$HTTPD_PID" 2>/dev/null
    timeout 10 tail --pid="$HTTPD_PID" -f /dev/null || rc=1
    wait "$HTTPD_PID" || rc=$?
    netns_untrack_pid "$HTTPD_PID"
    if [ $rc -ne 0 ] || ! grep -q '^httpd_requests' "$HTTPD_LOG"; then
        fail "ust-httpd did not exit cleanly on SIGTERM (rc $rc)"
        tail -5 "$HTTPD_LOG"
        return
    fi
    grep -q '^httpd_resp_5xx 0$' "$HTTPD_LOG" || fail "ust-httpd answered 5xx"
    grep -E '^httpd_(accepted|requests|resp_2xx|resp_4xx|timeouts) ' "$HTTPD_LOG" | tr '\n' ' '
    echo
}

# Writes a python client that sends every request in ONE send() and then
# parses the responses in order (Content-Length framing; HEAD has no body).
cat >"$T/pipe.py" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
reqs = [a.split(" ", 1) for a in sys.argv[3:]]          # "METHOD /path"
raw = b"".join(("%s %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (m, p, host)).encode() for m, p in reqs)
s = socket.create_connection((host, port), timeout=10)
s.sendall(raw)
buf = b""
def need(n):
    global buf
    while len(buf) < n:
        d = s.recv(65536)
        if not d:
            sys.exit("EOF after %d of %d responses" % (done, len(reqs)))
        buf += d
done = 0
for m, p in reqs:
    while b"\r\n\r\n" not in buf:
        need(len(buf) + 1)
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    fields = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    clen = int(fields.get("content-length", "0"))
    body = b""
    if m != "HEAD":
        need(clen)
        body, buf = buf[:clen], buf[clen:]
    print("%s %s -> %s len=%d body=%r" % (m, p, lines[0].split(" ", 2)[1], clen, body[:16]))
    done += 1
if buf:
    sys.exit("unexpected extra bytes: %r" % buf[:64])
PY
PIPE="timeout 20 /usr/bin/python3 $T/pipe.py $UIP 80"

# Hostile and awkward clients; each prints one line, exits non-zero on failure.
cat >"$T/abuse.py" <<'PY'
import os, random, socket, struct, sys, time
host, what = sys.argv[1], sys.argv[2]
def conn():
    return socket.create_connection((host, 80), timeout=10)
if what == "deep-pipeline":      # many requests at once, responses read only afterwards
    n = int(sys.argv[3]); s = conn()
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * n)
    time.sleep(0.5)              # the server meets a full window, must wait, not drop
    data = b""
    while data.count(b"HTTP/1.1 200 OK") < n:
        d = s.recv(1 << 20)
        if not d:
            sys.exit("EOF after %d responses" % data.count(b"HTTP/1.1 200 OK"))
        data += d
    print("deep pipeline: %d responses, %d bytes" % (n, len(data)))
elif what == "reset-mid-body":   # ask for a big body, read a little, reset
    for _ in range(5):
        s = conn(); s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(10000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
    print("reset mid-body: 5 connections reset")
elif what == "garbage":          # random bytes, partial heads, then gone
    rnd = random.Random(5)
    for i in range(40):
        s = conn()
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
        if i % 4 == 0:
            junk = b"GET /" + junk   # a head that never ends
        try:
            s.sendall(junk)
        except OSError:
            pass
        s.close()
    print("garbage: 40 connections")
elif what == "close-semantics":  # when the server must close, and when not
    def exchange(req):
        s = conn(); s.sendall(req); data = b""
        s.settimeout(1.5)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return data, True        # closed by the server
                data += d
        except socket.timeout:
            return data, False               # still open
    cases = [
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, True),
        (b"GET / HTTP/1.0\r\n\r\n", 1, True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1, False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, False),
    ]
    for req, n, closed in cases:
        data, got_closed = exchange(req)
        if data.count(b"HTTP/1.1 200") != n or got_closed != closed:
            sys.exit("%r: %d responses, closed=%s" % (req[:40], data.count(b"HTTP/1.1 200"), got_closed))
        if req.startswith(b"GET / HTTP/1.0\r\nConnection: keep-alive") and b"Connection: keep-alive" not in data:
            sys.exit("HTTP/1.0 keep-alive not confirmed")
    print("Connection: close / HTTP/1.0 / keep-alive semantics")
elif what == "idle":             # say nothing: the server must close by itself
    s = conn(); t = time.time(); d = s.recv(100)
    if d != b"" or time.time() - t > 8:
        sys.exit("idle connection not closed (got %r after %.1fs)" % (d, time.time() - t))
    print("idle connection closed by the server after %.1f s" % (time.time() - t))
PY
abuse() { kns timeout 30 /usr/bin/python3 "$T/abuse.py" "$UIP" "$@"; }

# Sends raw bytes, prints the status line of the answer.
raw_status() {
    kns timeout 10 /usr/bin/python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
d = b""
while b"\r\n" not in d:
    x = s.recv(4096)
    if not x: break
    d += x
print(d.split(b"\r\n")[0].decode())' "$UIP" "$1"
}

check_size_body() {   # SIZE [URL-PATH]
    local n=$1 out=$T/body.$1 got
    got=$(kcurl -o "$out" -w '%{http_code} %{size_download}' "http://$UIP${2:-/}")
    if [ "$got" = "200 $n" ] && [ "$(sha256sum <"$out" | cut -d' ' -f1)" = "$(pattern_sha "$n")" ]; then
        pass "GET $n bytes: sha256 matches"
    else
        fail "GET $n bytes: got '$got', sha256 $(sha256sum <"$out" | cut -c1-16)"
    fi
}

# ---- --size 1000 --------------------------------------------------------------
httpd_start size1000 --size 1000 || { fail "ust-httpd --size 1000 did not start"; exit 1; }
check_size_body 1000

got=$(kcurl -I "http://$UIP/any/path" | tr -d '\r')
if echo "$got" | grep -q '^HTTP/1.1 200' && echo "$got" | grep -qi '^content-length: 1000$'; then
    pass "HEAD: 200, Content-Length 1000, no body"
else
    fail "HEAD: $got"
fi

got=$(kcurl -w '%{http_code}:%{num_connects} ' -o /dev/null "http://$UIP/1" -o /dev/null "http://$UIP/2" \
    -o /dev/null "http://$UIP/3")
[ "$got" = "200:1 200:0 200:0 " ] && pass "keep-alive: 3 URLs over one connection ($got)" ||
    fail "keep-alive: expected '200:1 200:0 200:0', got '$got'"

out=$(kns $PIPE "GET /a" "GET /b" "GET /c" 2>&1)
echo "$out" | sed 's/^/   /'
[ "$(echo "$out" | grep -c ' -> 200 len=1000 ')" = 3 ] && pass "pipelining: 3 requests in one segment, 3 responses" ||
    fail "pipelining (--size)"

got=$(raw_status 'GARBAGE\r\n\r\n')
[[ "$got" == "HTTP/1.1 400"* ]] && pass "malformed request: $got" || fail "malformed request: '$got'"
got=$(raw_status 'GET / HTTP/1.1\r\n\r\n')
[[ "$got" == "HTTP/1.1 400"* ]] && pass "HTTP/1.1 without Host: $got" || fail "no Host: '$got'"
got=$(kcurl -o /dev/null -w '%{http_code}' -X POST -d hello "http://$UIP/")
[ "$got" = 405 ] && pass "POST: 405" || fail "POST: '$got'"
got=$(kcurl -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "http://$UIP/")
[ "$got" = 431 ] && pass "9000-byte header: 431" || fail "big header: '$got'"

out=$(abuse deep-pipeline 500 2>&1) && pass "$out" || fail "deep pipeline: $out"
out=$(abuse close-semantics 2>&1) && pass "$out" || fail "close semantics: $out"
out=$(abuse garbage 2>&1) && pass "$out" || fail "garbage: $out"

kns timeout 20 wrk -t1 -c50 -d3s "http://$UIP/" >"$T/wrk.out" 2>&1
sed 's/^/   /' "$T/wrk.out"
reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in.*/\1/p' "$T/wrk.out")
rps=$(sed -n 's/^Requests\/sec: *//p' "$T/wrk.out")
if [ "${reqs:-0}" -gt 0 ] && ! grep -q 'Socket errors\|Non-2xx' "$T/wrk.out"; then
    pass "wrk -t1 -c50 -d3s: $reqs requests, $rps requests/s, no errors"
else
    fail "wrk: requests ${reqs:-none}, or errors reported"
fi
httpd_stop

# ---- --size 1 MiB ------------------------------------------------------------
httpd_start size1m --size 1048576 || { fail "ust-httpd --size 1048576 did not start"; exit 1; }
check_size_body 1048576
got=$(kcurl -w '%{http_code}:%{size_download}:%{num_connects} ' -o /dev/null "http://$UIP/x" \
    -o /dev/null "http://$UIP/y")
[ "$got" = "200:1048576:1 200:1048576:0 " ] && pass "keep-alive 2 x 1 MiB: $got" || fail "keep-alive 1 MiB: '$got'"
out=$(abuse reset-mid-body 2>&1) && pass "$out" || fail "reset mid-body: $out"
check_size_body 1048576
httpd_stop

# ---- --root ------------------------------------------------------------------
mkdir -p "$T/www/sub" && echo "secret" >"$T/secret.txt"
head -c 300000 /dev/urandom >"$T/www/blob.bin"
echo "<h1>index</h1>" >"$T/www/index.html"
echo "alpha" >"$T/www/a.txt" && echo "bravo-bravo" >"$T/www/b.txt" && echo "charlie!" >"$T/www/sub/c.txt"
ln -s ../secret.txt "$T/www/link.txt"
httpd_start root --root "$T/www" --idle-timeout 2 || { fail "ust-httpd --root did not start"; exit 1; }
got=$(kcurl -o "$T/blob.got" -w '%{http_code} %{content_type}' "http://$UIP/blob.bin")
[ "$got" = "200 application/octet-stream" ] && cmp -s "$T/blob.got" "$T/www/blob.bin" &&
    pass "file 300000 bytes byte-exact ($got)" || fail "file: '$got' or content differs"
got=$(kcurl -w ' %{http_code} %{content_type}' "http://$UIP/")
[ "$got" = "<h1>index</h1>
 200 text/html" ] && pass "/ serves index.html" || fail "/: '$got'"
got=$(kcurl -o /dev/null -w '%{http_code}' "http://$UIP/missing.html")
[ "$got" = 404 ] && pass "missing file: 404" || fail "missing file: '$got'"
got=$(kcurl -o /dev/null -w '%{http_code}' "http://$UIP/sub")
[ "$got" = 404 ] && pass "directory: 404" || fail "directory: '$got'"
for p in /../secret.txt /sub/../../secret.txt /%2e%2e/secret.txt /link.txt; do
    got=$(kcurl --path-as-is -o "$T/trav" -w '%{http_code}' "http://$UIP$p")
    if [[ "$got" == 4* ]] && ! grep -q secret "$T/trav" 2>/dev/null; then
        pass "traversal $p refused ($got)"
    else
        fail "traversal $p: '$got'"
    fi
done
out=$(kns $PIPE "GET /a.txt" "HEAD /b.txt" "GET /sub/c.txt" "GET /nope" 2>&1)
echo "$out" | sed 's/^/   /'
expect="GET /a.txt -> 200 len=6 body=b'alpha\\\\n'
HEAD /b.txt -> 200 len=12 body=b''
GET /sub/c.txt -> 200 len=9 body=b'charlie!\\\\n'
GET /nope -> 404 len=14 body=b'404 Not Found\\\\n'"
[ "$out" = "$(printf '%b' "$expect")" ] && pass "pipelined GET/HEAD/GET/404 answered in order" ||
    fail "pipelining (--root)"
out=$(abuse idle 2>&1) && pass "$out" || fail "idle: $out"
httpd_stop

echo
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "http_curl: all checks passed"
    exit 0
fi
echo "http_curl: ${#FAILED[@]} check(s) failed:"
printf '  %s\n' "${FAILED[@]}"
exit 1
