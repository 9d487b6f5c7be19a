#!/usr/bin/env bash
# The packetdrill adapter (build/lib/libustack-packetdrill.so, see
# docs/PACKETDRILL.md) exercised without packetdrill: pd-driver dlopens it as
# packetdrill does, plays a passive open, data both ways and a close through
# the interface table, injecting raw IPv4 segments with netdev_send and
# asserting the exact segments netdev_receive returns; a blocking accept on a
# second thread must sleep (CPU time measured) and wake on the handshake.
# No root, no network: everything stays inside the process.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${UST_BUILD:-$ROOT/build}
SO=$B/lib/libustack-packetdrill.so
DRIVER=$B/tests/bin/pd-driver
for f in "$SO" "$DRIVER"; do
    [ -e "$f" ] || { echo "FAIL: $f not built (make)"; exit 1; }
done
timeout --kill-after=5 60 "$DRIVER" "$SO" || { echo "FAIL: pd-driver exit $?"; exit 1; }
echo "PASS"
