#!/usr/bin/env bash
# ust-get (ustack on AF_PACKET, in a namespace with NO IP address) fetching
# from kernel HTTP servers in the other namespace:
#   - python3 -m http.server serving a generated 3 MiB file: byte-exact,
#     to -o FILE and to stdout; a missing file (404) exits non-zero and
#     writes nothing;
#   - a small python server for the other body framings: chunked transfer
#     coding, a body delimited by the server's close (HTTP/1.0, no length),
#     a truncated Content-Length body (must fail), a server that never
#     answers (--timeout must end it), and a closed port (refused).
set -u
. "$(dirname "$0")/../lib/netns.sh"
netns_require_root
BIN=${UST_BUILD:-$NETNS_ROOT/build}/bin
[ -x "$BIN/ust-get" ] || { echo "SKIP: $BIN/ust-get not built (make all)"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: /usr/bin/python3 missing"; exit 77; }
netns_setup_pair hg || exit 1
netns_tmpdir || exit 1
KNS=$NETNS_A UNS=$NETNS_B KIP=10.82.0.1 UIP=10.82.0.2
ip -n "$KNS" addr add "$KIP/24" dev "$NETNS_IF_A" || exit 1
T=$NETNS_TMP
FAILED=()
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED+=("$*"); }

# ust-get in the ustack namespace; its exit status is returned.
uget() {
    ip netns exec "$UNS" timeout 60 "$BIN/ust-get" --dev "afpacket:$NETNS_IF_B" --ip "$UIP/24" "$@"
}

wait_port() {   # PORT: until the kernel server listens (bounded)
    local _
    for _ in $(seq 1 50); do
        ip netns exec "$KNS" ss -ltn "sport = :$1" | grep -q LISTEN && return 0
        sleep 0.1
    done
    return 1
}

mkdir -p "$T/www"
head -c 3145728 /dev/urandom >"$T/www/big.bin"
echo "hello from the kernel" >"$T/www/small.txt"
(cd "$T/www" && exec ip netns exec "$KNS" /usr/bin/python3 -m http.server 8000 --bind "$KIP") \
    >"$T/http.server.log" 2>&1 &
netns_track_pid $!

cat >"$T/framing.py" <<'PY'
import socket, sys, threading
# One request per connection; the path picks the framing of the answer.
BODY = bytes((i * 7 + 3) % 251 for i in range(200000))
def serve(c):
    try:
        req = b""
        while b"\r\n\r\n" not in req:
            d = c.recv(4096)
            if not d:
                return
            req += d
        path = req.split(b" ")[1]
        if path == b"/chunked":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            i = 0
            for n in (1, 10, 4096, 65536, 70000):
                c.sendall(b"%x;ext=1\r\n" % n + BODY[i:i + n] + b"\r\n")
                i += n
            c.sendall(b"%X\r\n" % (len(BODY) - i) + BODY[i:] + b"\r\n0\r\nX-Trailer: yes\r\n\r\n")
        elif path == b"/close":
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n" + BODY)
        elif path == b"/short":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY[:1000])
        elif path == b"/silent":
            threading.Event().wait(30)
        c.shutdown(socket.SHUT_WR)
        while c.recv(4096):
            pass
    except OSError:
        pass
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
if len(sys.argv) > 3:
    open(sys.argv[3], "wb").write(BODY)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
ip netns exec "$KNS" /usr/bin/python3 "$T/framing.py" "$KIP" 8001 "$T/framing.body" >"$T/framing.log" 2>&1 &
netns_track_pid $!
wait_port 8000 && wait_port 8001 || { fail "kernel HTTP servers did not start"; cat "$T"/*.log; exit 1; }

# 1. Content-Length, byte-exact, to a file and to stdout.
if uget -o "$T/big.got" "http://$KIP:8000/big.bin" && cmp -s "$T/big.got" "$T/www/big.bin"; then
    pass "3 MiB file from python http.server, byte-exact (-o)"
else
    fail "3 MiB file (-o)"
fi
got=$(uget "http://$KIP:8000/small.txt")
[ "$got" = "hello from the kernel" ] && pass "small file to stdout" || fail "small file to stdout: '$got'"

# 2. Non-2xx: non-zero exit, nothing written, no file left behind.
uget -o "$T/missing.got" "http://$KIP:8000/missing.bin" 2>"$T/404.err"
rc=$?
if [ $rc -ne 0 ] && [ ! -e "$T/missing.got" ]; then
    pass "404: exit $rc ($(tr '\n' ' ' <"$T/404.err"))"
else
    fail "404: exit $rc, file $( [ -e "$T/missing.got" ] && echo left || echo absent)"
fi

# 3. Chunked and close-delimited bodies.
for p in chunked close; do
    if uget -o "$T/$p.got" "http://$KIP:8001/$p" && cmp -s "$T/$p.got" "$T/framing.body"; then
        pass "$p body, byte-exact"
    else
        fail "$p body"
    fi
done

# 4. Failures: truncated body, silent server (timeout), closed port.
uget -o "$T/short.got" "http://$KIP:8001/short" 2>/dev/null
rc=$?
[ $rc -ne 0 ] && [ ! -e "$T/short.got" ] && pass "truncated body: exit $rc" || fail "truncated body: exit $rc"
# -o names a device here (our own null device, never the real /dev/null): a
# failure must not remove it, only regular files are removed.
mknod -m 666 "$T/null" c 1 3 || exit 1
start=$(date +%s)
uget --timeout 2 -o "$T/null" "http://$KIP:8001/silent" 2>"$T/silent.err"
rc=$?
took=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && [ $took -le 10 ] && pass "silent server: exit $rc after ${took}s ($(tr '\n' ' ' <"$T/silent.err"))" ||
    fail "silent server: exit $rc after ${took}s"
[ -c "$T/null" ] && pass "a device named by -o survives the failure" || fail "ust-get removed the device named by -o"
uget -o "$T/null" "http://$KIP:8009/" 2>"$T/refused.err"
rc=$?
[ $rc -ne 0 ] && pass "closed port: exit $rc ($(tr '\n' ' ' <"$T/refused.err"))" || fail "closed port: exit 0"
uget "ftp://$KIP/" 2>/dev/null
rc=$?
[ $rc -eq 2 ] && pass "bad URL: exit 2" || fail "bad URL: exit $rc"

echo
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "http_get: all checks passed"
    exit 0
fi
echo "http_get: ${#FAILED[@]} check(s) failed:"
printf '  %s\n' "${FAILED[@]}"
exit 1
