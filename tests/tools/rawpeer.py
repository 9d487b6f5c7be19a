#!/usr/bin/python3
"""The kernel side of the device interop tests: an AF_PACKET raw socket that
sends or receives devcheck's 0x88B5 test frames (pattern: see devcheck.c).

  rawpeer.py send IFNAME N [BIG]    send N pattern frames (broadcast); with
                                    BIG, first one BIG-byte frame that is no
                                    valid pattern frame (oversize checks)
  rawpeer.py recv IFNAME N TIMEOUT  receive until N distinct valid frames or
                                    TIMEOUT seconds; prints READY once bound,
                                    then "recv count=C bad=B"; exit 0 if all
                                    N arrived intact.
"""
import errno
import socket
import struct
import sys
import time

ETHERTYPE = 0x88B5
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33


def payload_len(seq):
    return 46 + (seq * 97) % 1000


def frame(src, seq):
    plen = payload_len(seq)
    body = bytes((seq + i) & 0xFF for i in range(6, plen))
    return b"\xff" * 6 + src + struct.pack("!HIH", ETHERTYPE, seq, plen) + body


def check(data):
    """Sequence number of a well-formed frame, else None."""
    if len(data) < 20:
        return None
    seq, plen = struct.unpack("!IH", data[14:20])
    if plen != len(data) - 14 or plen != payload_len(seq):
        return None
    for i in range(6, plen):
        if data[14 + i] != (seq + i) & 0xFF:
            return None
    return seq


def open_sock(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    s.bind((ifname, ETHERTYPE))
    return s


def send(ifname, n, big=0):
    s = open_sock(ifname)
    src = s.getsockname()[4][:6]
    if big:
        s.send(b"\xff" * 6 + src + struct.pack("!HIH", ETHERTYPE, 0xFFFFFFFF, 0)
               + bytes(big - 20))
    for seq in range(n):
        s.send(frame(src, seq))
        if seq % 16 == 15:
            time.sleep(0.002)   # pace: devcheck polls every few ms at most
    print("send sent=%d" % n)
    return 0


def recv(ifname, n, timeout):
    s = open_sock(ifname)
    print("READY", flush=True)
    seen = set()
    bad = 0
    deadline = time.monotonic() + timeout
    while len(seen) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            break
        except OSError as e:
            # A tap vanishes when its owner exits: the socket reports
            # ENETDOWN once, ahead of frames still queued. Keep reading.
            if e.errno in (errno.ENETDOWN, errno.ENXIO):
                continue
            raise
        if addr[2] == PACKET_OUTGOING:
            continue
        seq = check(data)
        if seq is None or seq >= n or seq in seen:
            bad += 1
            continue
        seen.add(seq)
    print("recv count=%d bad=%d" % (len(seen), bad), flush=True)
    return 0 if len(seen) == n and bad == 0 else 1


def main(argv):
    if len(argv) >= 4 and argv[1] == "send":
        return send(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 0)
    if len(argv) >= 5 and argv[1] == "recv":
        return recv(argv[2], int(argv[3]), float(argv[4]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
