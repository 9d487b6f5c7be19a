#!/usr/bin/python3
"""Kernel-side UDP checks against a ustack echo server.

udpcheck.py echo HOST PORT SIZE[,SIZE...] [--count N] [--tries T] [--timeout S]
    sends COUNT datagrams of each SIZE, each with distinct contents, and
    requires every one back byte-exact (resending up to TRIES times on a
    lossy path). Exit 0 when all came back, 1 otherwise.
udpcheck.py unreach HOST PORT
    requires ICMP port unreachable (ECONNREFUSED on a connected socket).
"""
import os
import socket
import sys
import time


def payload(size, seq):
    head = seq.to_bytes(4, "big")
    body = bytes((seq * 31 + i * 7) & 0xFF for i in range(max(0, size - 4)))
    return (head + body)[:size] if size >= 4 else head[4 - size:]


def echo(host, port, sizes, count, tries, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect((host, port))
    s.settimeout(timeout)
    seq = int.from_bytes(os.urandom(2), "big") << 16
    ok = 0
    total = 0
    for size in sizes:
        for _ in range(count):
            seq += 1
            total += 1
            data = payload(size, seq)
            if exchange(s, data, tries):
                ok += 1
            else:
                print(f"udpcheck: no intact reply for a {size}-byte datagram", file=sys.stderr)
    print(f"udpcheck: {ok}/{total} datagrams echoed byte-exact (sizes {sizes})")
    return ok == total


def exchange(s, data, tries):
    for _ in range(tries):
        try:
            s.send(data)
        except ConnectionRefusedError:
            continue
        deadline = time.monotonic() + s.gettimeout()
        while time.monotonic() < deadline:
            try:
                reply = s.recv(65536)
            except (socket.timeout, ConnectionRefusedError):
                break
            if reply == data:
                return True
            # Anything else must be a late echo of an earlier datagram:
            # corrupted bytes would show up as a mismatch with our sequence.
            if len(reply) >= 4 and len(data) >= 4 and reply[:4] == data[:4]:
                print("udpcheck: CORRUPTED reply", file=sys.stderr)
                sys.exit(1)
    return False


def unreach(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.settimeout(1.0)
    for _ in range(5):
        s.send(b"anyone?")
        try:
            s.recv(100)
        except ConnectionRefusedError:
            print("udpcheck: port unreachable received")
            return True
        except socket.timeout:
            continue
    print("udpcheck: no port unreachable", file=sys.stderr)
    return False


def main(argv):
    opts = {"--count": "1", "--tries": "10", "--timeout": "0.5"}
    pos = []
    i = 1
    while i < len(argv):
        if argv[i] in opts:
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    if len(pos) >= 4 and pos[0] == "echo":
        sizes = [int(x) for x in pos[3].split(",")]
        return 0 if echo(pos[1], int(pos[2]), sizes, int(opts["--count"]), int(opts["--tries"]),
                         float(opts["--timeout"])) else 1
    if len(pos) == 3 and pos[0] == "unreach":
        return 0 if unreach(pos[1], int(pos[2])) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
