#!/usr/bin/python3
"""Replay a corpus of hostile frames at a ustack MAC from a raw socket.

malformed.py IFNAME DST_MAC DST_IP SRC_IP [--seed N]

The corpus is generated from the seed, so every run replays the same
frames: runts, truncated and inconsistent IPv4 headers, bad IP/UDP/ICMP
checksums, IP options, overlapping, endless and oversized fragment sets,
ARP floods from random addresses, random garbage, and finally thousands of
fragment sets that are never completed. Prints how many frames were sent.
"""
import random
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def ip_bytes(ip):
    return socket.inet_aton(ip)


class Corpus:
    def __init__(self, dst_mac, src_mac, dst_ip, src_ip, seed):
        self.dst_mac, self.src_mac = dst_mac, src_mac
        self.dst_ip, self.src_ip = dst_ip, src_ip
        self.rng = random.Random(seed)
        self.frames = []

    def eth(self, etype, payload, dst=None):
        self.frames.append((dst or self.dst_mac) + self.src_mac + struct.pack("!H", etype) + payload)

    def ip_header(self, proto, payload_len, ident=1, frag=0, ihl=5, options=b"", total=None, good_csum=True):
        total = 4 * ihl + payload_len if total is None else total
        h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total & 0xFFFF, ident, frag, 64, proto, 0,
                        self.src_ip, self.dst_ip) + options
        c = csum(h)
        if not good_csum:
            c ^= 0x5A5A
        return h[:10] + struct.pack("!H", c) + h[12:]

    def udp(self, sport, dport, data, good_csum=True, length=None):
        length = 8 + len(data) if length is None else length
        pseudo = self.src_ip + self.dst_ip + struct.pack("!BBH", 0, 17, 8 + len(data))
        u = struct.pack("!HHHH", sport, dport, length, 0) + data
        c = csum(pseudo + u) or 0xFFFF
        if not good_csum:
            c ^= 0x1111
        return u[:6] + struct.pack("!H", c) + u[8:]

    def runts_and_truncation(self):
        for n in range(0, 14):
            self.frames.append(self.dst_mac[:n] if n <= 6 else self.dst_mac + self.src_mac[: n - 6])
        for n in range(1, 20):   # IPv4 ethertype with a header cut short
            self.eth(0x0800, self.ip_header(17, 20)[:n])

    def bad_lengths(self):
        data = b"x" * 20
        u = self.udp(1000, 7, data)
        self.eth(0x0800, self.ip_header(17, len(u), total=len(u) + 200) + u)   # total > frame
        self.eth(0x0800, self.ip_header(17, len(u), total=10) + u)             # total < header
        self.eth(0x0800, self.ip_header(17, len(u), ihl=15) + u)               # header past data
        self.eth(0x0800, self.ip_header(17, len(u), ihl=3) + u)                # ihl < 5
        bad = self.udp(1000, 7, data, length=300)
        self.eth(0x0800, self.ip_header(17, len(bad)) + bad)                  # UDP length past end
        bad = self.udp(1000, 7, data, length=4)
        self.eth(0x0800, self.ip_header(17, len(bad)) + bad)                  # UDP length < 8
        v6 = bytearray(self.ip_header(17, len(u)) + u)
        v6[0] = 0x65
        self.eth(0x0800, bytes(v6))                                           # version 6

    def bad_checksums(self):
        u = self.udp(1000, 7, b"checksum")
        self.eth(0x0800, self.ip_header(17, len(u), good_csum=False) + u)
        u = self.udp(1000, 7, b"checksum", good_csum=False)
        self.eth(0x0800, self.ip_header(17, len(u)) + u)
        icmp = struct.pack("!BBHHH", 8, 0, 0x1234, 1, 1) + b"payload"
        self.eth(0x0800, self.ip_header(1, len(icmp)) + icmp)                 # wrong ICMP checksum

    def ip_options(self):
        u = self.udp(1001, 7, b"with options")
        opts = bytes([7, 11, 4] + [0] * 8) + b"\x01"                          # record route + NOP
        self.eth(0x0800, self.ip_header(17, len(u), ihl=8, options=opts) + u)
        opts = bytes([0x44, 40]) + bytes(38)                                  # timestamp, max size
        self.eth(0x0800, self.ip_header(17, len(u), ihl=15, options=opts) + u)

    def fragment(self, ident, off, data, more):
        frag = (off // 8) | (0x2000 if more else 0)
        self.eth(0x0800, self.ip_header(17, len(data), ident=ident, frag=frag) + data)

    def bad_fragments(self):
        blob = bytes(self.rng.getrandbits(8) for _ in range(1480))
        for i in range(50):                      # overlapping sets
            self.fragment(3000 + i, 0, blob, True)
            self.fragment(3000 + i, 800, blob[:800], False)
        for off in range(0, 70000, 1480 // 8 * 8):   # one endless set, past 64 KiB
            self.fragment(4000, off, blob[:1480 // 8 * 8], True)
        self.fragment(4001, 65528, blob[:100], False)    # oversized last fragment
        self.fragment(4002, 8, blob[:13], True)          # MF with a length not a multiple of 8
        for i in range(200):                     # tiny fragments, never complete
            self.fragment(5000, i * 8, blob[:8], True)

    def arp_flood(self, count):
        for _ in range(count):
            sha = bytes([0x02] + [self.rng.getrandbits(8) for _ in range(5)])
            spa = bytes(self.rng.getrandbits(8) for _ in range(4))
            tpa = self.dst_ip if self.rng.random() < 0.5 else bytes(self.rng.getrandbits(8) for _ in range(4))
            op = self.rng.choice([1, 2, 3, 0])
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + bytes(6) + tpa
            self.eth(0x0806, arp, dst=b"\xff" * 6 if self.rng.random() < 0.5 else None)

    def garbage(self, count):
        for _ in range(count):
            n = self.rng.randint(14, 1514)
            etype = self.rng.choice([0x0800, 0x0806, 0x86DD, 0x8100, 0x1234])
            self.eth(etype, bytes(self.rng.getrandbits(8) for _ in range(n - 14)))

    def fragment_flood(self, count):
        blob = bytes(1000)
        for i in range(count):
            self.fragment(10000 + i, 0, blob, True)


def main():
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    ifname, dst_mac, dst_ip, src_ip = sys.argv[1:5]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    src_mac = s.getsockname()[4]
    c = Corpus(mac_bytes(dst_mac), src_mac, ip_bytes(dst_ip), ip_bytes(src_ip), seed)
    c.runts_and_truncation()
    c.bad_lengths()
    c.bad_checksums()
    c.ip_options()
    c.bad_fragments()
    c.arp_flood(5000)
    c.garbage(2000)
    c.fragment_flood(5000)
    sent = 0
    for f in c.frames:
        try:
            s.send(f.ljust(60, b"\0") if len(f) >= 14 else f)
            sent += 1
        except OSError:
            pass   # the kernel refuses some runts itself; that is fine
    print(f"malformed: sent {sent}/{len(c.frames)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
