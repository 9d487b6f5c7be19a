#!/usr/bin/python3
"""Kernel-side TCP peers for the ustack interop tests.

  tcppeer.py pattern N                       N bytes of the test pattern to stdout
  tcppeer.py echo-server PORT                echo every byte (a thread per connection)
  tcppeer.py sink-server PORT                read to EOF, reply the SHA-256 hex of it, close
  tcppeer.py source-server PORT --bytes N    send N pattern bytes, then FIN
  tcppeer.py client HOST PORT --bytes N [--conns K] [--timeout S]
                                             K concurrent connections (selectors, no
                                             threads), each sends N pattern bytes and
                                             must get the same bytes back, then EOF

The pattern is the one ust-tcpclient uses: a table of PERIOD bytes from
xorshift64 (seed 0x9E3779B97F4A7C15, little-endian words), repeated. The period
is prime so data delivered at a wrong offset never matches.

Servers print "listening" on stderr once they accept. The client exits 0
only when every connection echoed every byte intact; 1 on a mismatch, an
early close, a reset, or when nothing moved for --timeout seconds.
"""
import argparse
import errno
import hashlib
import selectors
import socket
import sys
import threading
import time

PERIOD = 1048573
CHUNK = 256 * 1024
MASK = (1 << 64) - 1


def pattern_table():
    """Two periods back to back, so any window shorter than PERIOD is one slice."""
    x = 0x9E3779B97F4A7C15
    out = bytearray()
    for _ in range(0, PERIOD, 8):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        out += x.to_bytes(8, "little")
    t = bytes(out[:PERIOD])
    return t + t


def pattern_at(table, off, n):
    s = off % PERIOD
    return table[s:s + n]


def cmd_pattern(a):
    table = pattern_table()
    out = sys.stdout.buffer
    off = 0
    while off < a.n:
        n = min(CHUNK, a.n - off)
        out.write(pattern_at(table, off, n))
        off += n
    out.flush()


def listen_socket(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(4096)
    return ls


def serve(port, handler):
    ls = listen_socket(port)
    print("tcppeer: listening on port %d" % port, file=sys.stderr, flush=True)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=run_handler, args=(handler, conn), daemon=True).start()


def run_handler(handler, conn):
    try:
        handler(conn)
    except OSError as e:
        print("tcppeer: connection error: %s" % e, file=sys.stderr, flush=True)
    finally:
        conn.close()


def handle_echo(conn):
    while True:
        data = conn.recv(CHUNK)
        if not data:
            break
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


def handle_sink(conn):
    h = hashlib.sha256()
    total = 0
    while True:
        data = conn.recv(CHUNK)
        if not data:
            break
        h.update(data)
        total += len(data)
    conn.sendall((h.hexdigest() + "\n").encode())
    print("tcppeer: sink got %d bytes, sha256 %s" % (total, h.hexdigest()), file=sys.stderr, flush=True)


def make_source_handler(nbytes):
    table = pattern_table()

    def handle_source(conn):
        off = 0
        while off < nbytes:
            n = min(CHUNK, nbytes - off)
            conn.sendall(pattern_at(table, off, n))
            off += n
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(CHUNK):
            pass
    return handle_source


class Conn:
    __slots__ = ("sock", "idx", "sent", "rcvd", "shut", "done", "connected")

    def __init__(self, sock, idx):
        self.sock, self.idx = sock, idx
        self.sent = self.rcvd = 0
        self.shut = self.done = self.connected = False


class Client:
    def __init__(self, a):
        self.a = a
        self.table = pattern_table()
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.finished = self.failed = 0
        self.last_progress = time.monotonic()
        self.total = 0

    def fail(self, c, why):
        print("tcppeer: connection %d: %s (sent %d, received %d)" % (c.idx, why, c.sent, c.rcvd),
              file=sys.stderr, flush=True)
        self.close(c)
        self.failed += 1

    def close(self, c):
        c.done = True
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def start(self):
        for i in range(self.a.conns):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((self.a.host, self.a.port))
            c = Conn(s, i)
            self.conns.append(c)
            if err not in (0, errno.EINPROGRESS):
                self.fail(c, "connect: %s" % errno.errorcode.get(err, err))
                continue
            self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)

    def on_writable(self, c):
        if not c.connected:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(c, "connect: %s" % errno.errorcode.get(err, err))
                return
            c.connected = True
        n_total = self.a.bytes
        while c.sent < n_total:
            n = min(CHUNK, n_total - c.sent)
            try:
                k = c.sock.send(pattern_at(self.table, c.sent, n))
            except BlockingIOError:
                return
            except OSError as e:
                self.fail(c, "send: %s" % e)
                return
            c.sent += k
            self.progress(k)
            if k < n:
                return
        c.sock.shutdown(socket.SHUT_WR)
        c.shut = True
        self.sel.modify(c.sock, selectors.EVENT_READ, c)

    def on_readable(self, c):
        try:
            data = c.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail(c, "recv: %s" % e)
            return
        if not data:
            self.on_eof(c)
            return
        if c.rcvd + len(data) > c.sent:
            self.fail(c, "more bytes came back than were sent")
            return
        if data != pattern_at(self.table, c.rcvd, len(data)):
            exp = pattern_at(self.table, c.rcvd, len(data))
            i = next(k for k in range(len(data)) if data[k] != exp[k])
            self.fail(c, "data mismatch at byte %d" % (c.rcvd + i))
            return
        c.rcvd += len(data)
        self.progress(len(data))

    def on_eof(self, c):
        if c.rcvd != self.a.bytes or not c.shut:
            self.fail(c, "peer closed early")
            return
        self.close(c)
        self.finished += 1

    def progress(self, n):
        self.total += n
        self.last_progress = time.monotonic()

    def run(self):
        t0 = time.monotonic()
        self.start()
        while self.finished + self.failed < len(self.conns):
            if time.monotonic() - self.last_progress > self.a.timeout:
                stuck = [c for c in self.conns if not c.done]
                print("tcppeer: no progress for %ss; %d finished, %d failed, %d open" %
                      (self.a.timeout, self.finished, self.failed, len(stuck)), file=sys.stderr)
                for c in stuck[:10]:
                    self.fail(c, "stalled")
                for c in stuck[10:]:
                    self.close(c)
                    self.failed += 1
                break
            for key, ev in self.sel.select(timeout=0.5):
                c = key.data
                if ev & selectors.EVENT_WRITE and not c.done and not c.shut:
                    self.on_writable(c)
                if ev & selectors.EVENT_READ and not c.done and c.connected:
                    self.on_readable(c)
        secs = time.monotonic() - t0
        mb = self.a.bytes * self.finished / 1e6
        print("tcppeer client: %d/%d connections ok, %d bytes each way each, %.2f s, %.1f MB/s" %
              (self.finished, len(self.conns), self.a.bytes, secs, mb / secs if secs > 0 else 0.0),
              flush=True)
        return 0 if self.finished == len(self.conns) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("pattern")
    sp.add_argument("n", type=int)
    for name in ("echo-server", "sink-server", "source-server"):
        sp = sub.add_parser(name)
        sp.add_argument("port", type=int)
        if name == "source-server":
            sp.add_argument("--bytes", type=int, required=True)
    sp = sub.add_parser("client")
    sp.add_argument("host")
    sp.add_argument("port", type=int)
    sp.add_argument("--bytes", type=int, required=True)
    sp.add_argument("--conns", type=int, default=1)
    sp.add_argument("--timeout", type=float, default=30.0)
    a = p.parse_args()
    if a.cmd == "pattern":
        cmd_pattern(a)
        return 0
    if a.cmd == "echo-server":
        serve(a.port, handle_echo)
    elif a.cmd == "sink-server":
        serve(a.port, handle_sink)
    elif a.cmd == "source-server":
        serve(a.port, make_source_handler(a.bytes))
    return Client(a).run()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
