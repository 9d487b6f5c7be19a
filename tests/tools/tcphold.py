#!/usr/bin/python3
"""Hold many verified TCP connections open at once (tests/interop/tcp_10k.sh).

  tcphold.py HOST PORT --conns N --tag T --release FILE [--inflight K] [--timeout S]

Opens N connections (at most K handshakes in flight, so a burst of SYNs does
not outrun the server's accept queue), sends each a 32-byte message naming
it (tag and index) and checks that exactly those bytes come back. When all
N are verified it prints "held N" and keeps every connection open until
FILE exists; then it closes them all, and a clean close (our FIN, then the
server's) is awaited on each. Exit 0 only when every connection echoed its
own message and closed cleanly; 1 on any mismatch, reset or early close, or
when nothing moved for --timeout seconds. One selector loop, no threads.
"""
import argparse
import errno
import os
import selectors
import socket
import sys
import time

MSG_LEN = 32


class Conn:
    def __init__(self, idx, tag):
        self.msg = ("%s-%08d" % (tag, idx)).encode().ljust(MSG_LEN, b".")[:MSG_LEN]
        self.got = b""
        self.sock = None
        self.state = "connecting"   # -> echoing -> held -> closing -> done


def fail(msg):
    print("tcphold: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


class Holder:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.conns = [Conn(i, a.tag) for i in range(a.conns)]
        self.next = 0          # next connection to open
        self.pending = 0       # handshakes or echoes in flight
        self.verified = 0
        self.done = 0
        self.progress = time.monotonic()

    def open_more(self):
        while self.next < len(self.conns) and self.pending < self.a.inflight:
            c = self.conns[self.next]
            self.next += 1
            c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.sock.setblocking(False)
            err = c.sock.connect_ex((self.a.host, self.a.port))
            if err not in (0, errno.EINPROGRESS):
                fail("connect %d: %s" % (self.next - 1, os.strerror(err)))
            self.sel.register(c.sock, selectors.EVENT_WRITE, c)
            self.pending += 1

    def on_writable(self, c):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            fail("connect: %s" % os.strerror(err))
        c.sock.send(c.msg)   # 32 bytes always fit a fresh send buffer
        c.state = "echoing"
        self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def on_readable(self, c):
        try:
            data = c.sock.recv(MSG_LEN)
        except ConnectionError as e:
            fail("%s: %s" % (c.msg.decode(), e))
        if c.state == "closing":
            if data:
                fail("%s: data after our FIN" % c.msg.decode())
            self.sel.unregister(c.sock)
            c.sock.close()
            c.state = "done"
            self.done += 1
            return
        if not data:
            fail("%s: closed by the server while %s" % (c.msg.decode(), c.state))
        if c.state != "echoing":
            fail("%s: unexpected data while held" % c.msg.decode())
        c.got += data
        if not c.msg.startswith(c.got):
            fail("%s: echoed %r" % (c.msg.decode(), c.got))
        if len(c.got) == MSG_LEN:
            c.state = "held"
            self.verified += 1
            self.pending -= 1

    def step(self):
        events = self.sel.select(timeout=0.2)
        for key, mask in events:
            c = key.data
            if mask & selectors.EVENT_WRITE and c.state == "connecting":
                self.on_writable(c)
            elif mask & selectors.EVENT_READ:
                self.on_readable(c)
        if events:
            self.progress = time.monotonic()
        elif time.monotonic() - self.progress > self.a.timeout:
            fail("no progress for %.0f s (verified %d, closed %d of %d)"
                 % (self.a.timeout, self.verified, self.done, len(self.conns)))

    def run(self):
        while self.verified < len(self.conns):
            self.open_more()
            self.step()
        print("held %d" % self.verified, flush=True)
        while not os.path.exists(self.a.release):
            self.step()   # a held connection must stay quiet: any event fails
            self.progress = time.monotonic()
        for c in self.conns:
            c.state = "closing"
            c.sock.shutdown(socket.SHUT_WR)
        self.progress = time.monotonic()
        while self.done < len(self.conns):
            self.step()
        print("closed %d" % self.done, flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--conns", type=int, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--release", required=True)
    p.add_argument("--inflight", type=int, default=256)
    p.add_argument("--timeout", type=float, default=30.0)
    Holder(p.parse_args()).run()


if __name__ == "__main__":
    main()
