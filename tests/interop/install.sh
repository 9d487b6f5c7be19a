#!/usr/bin/env bash
# `make install` as a packager runs it (DESTDIR staging, PREFIX=/usr/local),
# then a user's project built OUT OF TREE with nothing but pkg-config:
#   - tools/ust-udpecho.c and tests/install/udp_hello.c against the shared
#     library (ldd must show libustack.so.0; --help must run) and statically
#     (libustack.a + pkg-config --static libs: no libustack.so in ldd;
#     the optional backends' libdpdk/libxdp may stay shared);
#   - the shared build really works: it echoes datagrams over memif for the
#     installed ust-udpping;
#   - the shared library exports only ust_ symbols (DESIGN.md rule 8).
# No root needed. Exit 77 when pkg-config is missing (scripts/deps.sh).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${UST_BUILD:-${B:-$ROOT/build}}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config not installed (run scripts/deps.sh)"; exit 77; }
command -v cc >/dev/null || { echo "SKIP: no C compiler"; exit 77; }
TMP=$(mktemp -d /tmp/ust_install.XXXXXX)
ECHO_PID=
cleanup() {
    [ -n "$ECHO_PID" ] && kill "$ECHO_PID" 2>/dev/null && wait "$ECHO_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

DEST=$TMP/stage PREFIX=/usr/local
timeout 600 make -C "$ROOT" --no-print-directory B="$B" DESTDIR="$DEST" PREFIX="$PREFIX" install \
    >"$TMP/make.log" 2>&1 || { tail -30 "$TMP/make.log"; fail "make install"; }
P=$DEST$PREFIX
for f in include/ustack/ustack.h lib/libustack.a lib/libustack.so lib/libustack.so.0 \
         lib/pkgconfig/ustack.pc bin/ust-echo bin/ust-udpecho bin/ust-udpping; do
    [ -e "$P/$f" ] || fail "$f not installed"
done
[ "$(readlink "$P/lib/libustack.so")" = libustack.so.0 ] || fail "libustack.so -> $(readlink "$P/lib/libustack.so")"
[ -f "$P/lib/$(readlink "$P/lib/libustack.so.0")" ] || fail "libustack.so.0 dangling"
readelf -d "$P/lib/libustack.so" | grep -q 'SONAME.*\[libustack\.so\.0\]' || fail "soname is not libustack.so.0"
grep -qx "prefix=$PREFIX" "$P/lib/pkgconfig/ustack.pc" || fail "ustack.pc prefix: $(grep ^prefix= "$P/lib/pkgconfig/ustack.pc")"
grep -q @ "$P/lib/pkgconfig/ustack.pc" && fail "unsubstituted template variable in ustack.pc"

# What a user's build does: pkg-config finds the staged tree. --define-prefix
# rewrites prefix from where the .pc file lies, so the DESTDIR copy is used.
export PKG_CONFIG_PATH=$P/lib/pkgconfig
pc() { pkg-config --define-prefix "$@" ustack; }
pc --exists || fail "pkg-config does not find ustack"
echo "pkg-config --cflags --libs: $(pc --cflags --libs)"
echo "pkg-config --static --libs: $(pc --static --libs)"
pc --static --libs | grep -q -- -lm || fail "Libs.private -lm missing"
mkdir -p "$TMP/user"
cp "$ROOT/tools/ust-udpecho.c" "$ROOT/tests/install/udp_hello.c" "$TMP/user/"
cd "$TMP/user"   # out of tree: no -Iinclude, no -Isrc, only what pkg-config says
for prog in ust-udpecho udp_hello; do
    # shellcheck disable=SC2046
    cc -std=gnu11 -Wall -Werror -o "$prog" "$prog.c" $(pc --cflags --libs) || fail "shared build of $prog"
    # shellcheck disable=SC2046
    # libustack linked statically (what a user shipping one binary wants);
    # the optional backends' own libraries (libdpdk, libxdp) may stay shared.
    # shellcheck disable=SC2046
    cc -std=gnu11 -Wall -Werror -o "$prog.static" "$prog.c" $(pc --cflags) "$P/lib/libustack.a" \
        $(pc --static --libs | sed 's/-lustack//') || fail "static build of $prog"
    LD_LIBRARY_PATH=$P/lib ldd "./$prog" | grep -q 'libustack\.so\.0 => .*'"$P/lib" \
        || { LD_LIBRARY_PATH=$P/lib ldd "./$prog"; fail "$prog does not load the installed libustack.so.0"; }
    readelf -d "./$prog.static" 2>/dev/null | grep -q 'NEEDED.*libustack' && fail "$prog.static needs libustack.so"
    LD_LIBRARY_PATH=$P/lib "./$prog" --help >"$TMP/help.out" 2>&1 || { cat "$TMP/help.out"; fail "$prog --help"; }
    grep -q -- --dev "$TMP/help.out" || fail "$prog --help does not list the stack options"
    "./$prog.static" --help >/dev/null 2>&1 || fail "$prog.static --help"
done
# Without LD_LIBRARY_PATH the staged library is not found: proves the shared
# build really links dynamically rather than picking up a copy.
./ust-udpecho --help >/dev/null 2>&1 && fail "shared ust-udpecho ran without its library?"

# The shared build works for real: it is the memif server for the installed ust-udpping.
SOCK=$TMP/memif.sock
LD_LIBRARY_PATH=$P/lib ./ust-udpecho --dev "memif:$SOCK,role=server" --ip 10.62.0.1/24 >"$TMP/echo.out" 2>&1 &
ECHO_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$TMP/echo.out"; fail "no memif socket from the shared ust-udpecho"; }
timeout 60 "$P/bin/ust-udpping" --dev "memif:$SOCK" --ip 10.62.0.2/24 --to 10.62.0.1:7 --size 200 --count 200 \
    >"$TMP/ping.out" 2>&1 || { cat "$TMP/ping.out" "$TMP/echo.out"; fail "echo through the shared library"; }
tail -2 "$TMP/ping.out"
kill -TERM "$ECHO_PID"; wait "$ECHO_PID"; rc=$?; ECHO_PID=
[ $rc -eq 0 ] || fail "shared ust-udpecho exit $rc"

# Only ust_ symbols are exported; anything else would collide with a user's names.
others=$(nm -D --defined-only "$P/lib/libustack.so" | awk '{print $3}' | grep -v '^ust_' \
         | grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
[ -z "$others" ] || fail "non-ust_ symbols exported: $others"
echo "exported: $(nm -D --defined-only "$P/lib/libustack.so" | grep -c ' ust_') ust_ symbols, nothing else"
echo "PASS: make install, pkg-config, shared and static out-of-tree builds"
