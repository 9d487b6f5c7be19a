/* Data transfer: read/write, readv/writev, recv/send, recvfrom/sendto over
 * TCP (ust_tcp_*) and UDP. Blocking sockets wait in sock_block (or the
 * ust_block_hook) up to SO_RCVTIMEO / SO_SNDTIMEO. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "api/forward.h"
#include "api/sock.h"
#include "tcp/tcp_sock.h"
#include "udp/udp.h"
#include "wire/wire.h"

#define UDP_HDR 8
#define UDP_MAX_PAYLOAD 65507

static ssize_t iov_total(const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt && !iov)) {
        errno = EINVAL;
        return -1;
    }
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total) {
            errno = EINVAL;
            return -1;
        }
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

/* ---- TCP ---- */

/* One pass of reading into iov from byte `skip` on: >0 bytes, 0 EOF, -1. */
static ssize_t tcp_recv_once(struct usock *sk, const struct iovec *iov, int iovcnt, size_t skip, int flags)
{
    unsigned p = tcp_sock_poll(sk->tcp);
    if (sk->flags & SKF_SHUT_RD)
        return 0;
    if ((p & TSP_CONNECTING) && !(p & TSP_CLOSED)) {
        errno = EAGAIN;
        return -1;
    }
    size_t got = 0, peek_off = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        uint8_t *base = (uint8_t *)iov[i].iov_base + skip;
        size_t want = iov[i].iov_len - skip;
        skip = 0;
        if (want == 0)
            continue;
        ssize_t n;
        if (flags & MSG_PEEK) {
            n = (ssize_t)tcp_sock_peek(sk->tcp, peek_off, base, want);
            peek_off += (size_t)n;
        } else {
            n = ust_tcp_recv(sk->tcp, base, want);
        }
        if (n > 0)
            got += (size_t)n;
        if (n <= 0 || (size_t)n < want)
            break;
    }
    if (got)
        return (ssize_t)got;
    if (flags & MSG_PEEK) {
        if (p & (TSP_RCV_FIN | TSP_CLOSED))
            goto eof;
        errno = EAGAIN;
        return -1;
    }
    ssize_t r = ust_tcp_recv(sk->tcp, NULL, 0);
    if (r < 0 && errno != ECONNRESET)
        return -1;
eof:
    /* EOF or reset: report a pending error once (Linux sock_error), then 0. */
    if (p & TSP_CLOSED) {
        int e = usock_take_error(sk);
        if (e) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

static ssize_t tcp_recv_iov(struct usock *sk, const struct iovec *iov, int iovcnt, int flags)
{
    if (!sk->tcp || (tcp_sock_poll(sk->tcp) & TSP_LISTEN)) {
        errno = ENOTCONN;
        return -1;
    }
    if (flags & MSG_OOB) {
        errno = EINVAL;   /* no urgent data is ever kept */
        return -1;
    }
    ssize_t total = iov_total(iov, iovcnt);
    if (total <= 0)
        return total;
    uint64_t deadline = 0;
    size_t got = 0;
    for (;;) {
        ssize_t n = tcp_recv_once(sk, iov, iovcnt, got, flags);
        if (n > 0) {
            got += (size_t)n;
            if (!(flags & MSG_WAITALL) || (flags & MSG_PEEK) || got == (size_t)total)
                return (ssize_t)got;
            continue;
        }
        if (n == 0 || errno != EAGAIN || usock_nonblock(sk, flags))
            return got ? (ssize_t)got : n;
        if (!deadline)
            deadline = sock_deadline_after(sk->rcvtimeo_ns);
        if (sock_block(sk, EPOLLIN, deadline) < 0)
            return got ? (ssize_t)got : -1;
    }
}

static int tcp_send_error(struct usock *sk)
{
    /* Linux sk_stream_error: a pending error first (ECONNRESET once), then EPIPE. */
    int e = usock_take_error(sk);
    return e ? e : EPIPE;
}

#define TCP_GATHER_MAX 16384
static __thread uint8_t tcp_gather[TCP_GATHER_MAX];

/* One ust_tcp_send, or EAGAIN while the handshake is still running. */
static ssize_t tcp_send_some(struct usock *sk, const void *buf, size_t len)
{
    unsigned p = tcp_sock_poll(sk->tcp);
    if ((p & TSP_CONNECTING) && !(p & TSP_CLOSED)) {
        errno = EAGAIN;
        return -1;
    }
    return ust_tcp_send(sk->tcp, buf, len);
}

/* Small vectors go down as one piece, so Nagle sees one write as Linux
 * does rather than holding back all but the first iovec. Only one attempt:
 * tcp_gather is shared by the thread's coroutines, so it must not be held
 * across a wait. Bytes taken (0 if none), or -1 with errno. */
static ssize_t tcp_send_gathered(struct usock *sk, const struct iovec *iov, int iovcnt, size_t total)
{
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(tcp_gather + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    ssize_t n = tcp_send_some(sk, tcp_gather, total);
    return n < 0 && errno == EAGAIN ? 0 : n;
}

/* Send iov from byte done on, waiting for room unless non-blocking. */
static ssize_t tcp_send_rest(struct usock *sk, const struct iovec *iov, int iovcnt, int flags, size_t done)
{
    uint64_t deadline = 0;
    size_t off = done;
    int i = 0;
    while (i < iovcnt) {
        if (off >= iov[i].iov_len) {
            off -= iov[i].iov_len;
            i++;
            continue;
        }
        ssize_t n = tcp_send_some(sk, (const uint8_t *)iov[i].iov_base + off, iov[i].iov_len - off);
        if (n > 0) {
            done += (size_t)n;
            off += (size_t)n;
            continue;
        }
        if (errno != EAGAIN) {
            if (done)
                return (ssize_t)done;
            errno = tcp_send_error(sk);
            return -1;
        }
        if (usock_nonblock(sk, flags))
            break;
        if (!deadline)
            deadline = sock_deadline_after(sk->sndtimeo_ns);
        if (sock_block(sk, EPOLLOUT, deadline) < 0) {
            if (errno == EBADF)   /* closed while we waited: sk is gone */
                return done ? (ssize_t)done : -1;
            break;
        }
    }
    if (done || i == iovcnt)
        return (ssize_t)done;
    errno = EAGAIN;
    return -1;
}

static ssize_t tcp_send_iov(struct usock *sk, const struct iovec *iov, int iovcnt, int flags)
{
    if (!sk->tcp || (tcp_sock_poll(sk->tcp) & TSP_LISTEN) || (sk->flags & SKF_SHUT_WR)) {
        errno = EPIPE;   /* Linux: sending on an unconnected stream socket */
        return -1;
    }
    if (flags & MSG_OOB) {
        errno = EOPNOTSUPP;
        return -1;
    }
    ssize_t total = iov_total(iov, iovcnt);
    if (total < 0)
        return -1;
    size_t done = 0;
    if (iovcnt > 1 && total <= TCP_GATHER_MAX) {
        ssize_t n = tcp_send_gathered(sk, iov, iovcnt, (size_t)total);
        if (n < 0) {
            errno = tcp_send_error(sk);
            return -1;
        }
        done = (size_t)n;
        if (done == (size_t)total)
            return total;
    }
    return tcp_send_rest(sk, iov, iovcnt, flags, done);
}

/* ---- UDP ---- */

static int udp_from_peer(const struct usock *sk, const struct pkt *p)
{
    return rd32(p->buf + p->l3 + 12) == ntohl(sk->peer.sin_addr.s_addr) &&
           rd16(pkt_data(p)) == ntohs(sk->peer.sin_port);
}

/* The next datagram for us; a connected socket drops others' (Linux). */
static struct pkt *udp_head(struct usock *sk)
{
    struct pkt *p;
    while ((p = sk->udp->rxq.head) && (sk->flags & SKF_UDP_PEER) && !udp_from_peer(sk, p))
        pkt_free(pktq_pop(&sk->udp->rxq));
    return p;
}

static size_t udp_copy_out(const struct pkt *p, const struct iovec *iov, int iovcnt)
{
    const uint8_t *data = pkt_data(p) + UDP_HDR;
    size_t len = p->len - UDP_HDR, done = 0;
    for (int i = 0; i < iovcnt && done < len; i++) {
        size_t n = len - done < iov[i].iov_len ? len - done : iov[i].iov_len;
        memcpy(iov[i].iov_base, data + done, n);
        done += n;
    }
    return done;
}

static void udp_fill_from(const struct pkt *p, struct sockaddr *from, socklen_t *fromlen)
{
    if (!from || !fromlen)
        return;
    struct sockaddr_in in = {.sin_family = AF_INET};
    in.sin_addr.s_addr = htonl(rd32(p->buf + p->l3 + 12));
    in.sin_port = htons(rd16(pkt_data(p)));
    if (*fromlen >= sizeof(in)) {
        /* Field by field: copying the whole struct would load it back
         * from the stack right after its narrower stores, a load that
         * cannot be forwarded and waits for every store before it. */
        uint8_t *o = (uint8_t *)from;
        memcpy(o + offsetof(struct sockaddr_in, sin_family), &in.sin_family, sizeof(in.sin_family));
        memcpy(o + offsetof(struct sockaddr_in, sin_port), &in.sin_port, sizeof(in.sin_port));
        memcpy(o + offsetof(struct sockaddr_in, sin_addr), &in.sin_addr, sizeof(in.sin_addr));
        memset(o + offsetof(struct sockaddr_in, sin_zero), 0, sizeof(in.sin_zero));
    } else {
        memcpy(from, &in, *fromlen);
    }
    *fromlen = sizeof(in);
}

static ssize_t udp_recv_iov(struct usock *sk, const struct iovec *iov, int iovcnt, int flags,
                            struct sockaddr *from, socklen_t *fromlen)
{
    if (iov_total(iov, iovcnt) < 0)
        return -1;
    uint64_t deadline = 0;
    struct pkt *p;
    while (!(p = udp_head(sk))) {
        if ((sk->flags & SKF_UDP_PEER) && sk->udp->error) {
            errno = ust_udp_error(sk->udp);
            return -1;
        }
        if (sk->flags & SKF_SHUT_RD)
            return 0;
        if (usock_nonblock(sk, flags)) {
            errno = EAGAIN;
            return -1;
        }
        if (!deadline)
            deadline = sock_deadline_after(sk->rcvtimeo_ns);
        if (sock_block(sk, EPOLLIN, deadline) < 0)
            return -1;
    }
    size_t n = udp_copy_out(p, iov, iovcnt);
    size_t full = p->len - UDP_HDR;
    udp_fill_from(p, from, fromlen);
    if (!(flags & MSG_PEEK))
        pkt_free(pktq_pop(&sk->udp->rxq));
    return (ssize_t)((flags & MSG_TRUNC) ? full : n);
}

static __thread uint8_t udp_gather[UDP_MAX_PAYLOAD];

static ssize_t udp_send_iov(struct usock *sk, const struct iovec *iov, int iovcnt, const struct sockaddr *to,
                            socklen_t tolen)
{
    ssize_t total = iov_total(iov, iovcnt);
    if (total < 0)
        return -1;
    if (sk->flags & SKF_SHUT_WR) {
        errno = EPIPE;
        return -1;
    }
    if (!to) {
        if (!(sk->flags & SKF_UDP_PEER)) {
            errno = EDESTADDRREQ;
            return -1;
        }
        to = (const struct sockaddr *)&sk->peer;
        tolen = sizeof(sk->peer);
    }
    if (total > UDP_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    const void *buf = iovcnt == 1 ? iov[0].iov_base : udp_gather;
    if (iovcnt > 1) {
        size_t off = 0;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(udp_gather + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len;
        }
    }
    return ust_udp_sendto(sk->udp, buf, (size_t)total, to, tolen);
}

/* ---- the calls ---- */

ssize_t sock_recv_iov(int fd, const struct iovec *iov, int iovcnt, int flags, struct sockaddr *from,
                             socklen_t *fromlen)
{
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (sk->type == SOCK_DGRAM)
        return udp_recv_iov(sk, iov, iovcnt, flags, from, fromlen);
    if (fromlen)
        *fromlen = 0;   /* Linux: no address for a stream socket */
    return tcp_recv_iov(sk, iov, iovcnt, flags);
}

ssize_t sock_send_iov(int fd, const struct iovec *iov, int iovcnt, int flags, const struct sockaddr *to,
                             socklen_t tolen)
{
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (sk->type == SOCK_DGRAM)
        return udp_send_iov(sk, iov, iovcnt, to, tolen);
    return tcp_send_iov(sk, iov, iovcnt, flags);   /* Linux ignores `to` on TCP */
}

/* A descriptor of a stack another thread drives: the call runs there. */
static ssize_t recv_routed(int fd, const struct iovec *iov, int iovcnt, int flags, struct sockaddr *from,
                           socklen_t *fromlen)
{
    if (fwd_is_foreign(fd))
        return fwd_call(&(struct fwd_call){.op = FWD_RECV, .fd = fd, .iov = iov, .iovcnt = iovcnt,
                                           .flags = flags, .addr = from, .alen = fromlen});
    return sock_recv_iov(fd, iov, iovcnt, flags, from, fromlen);
}

static ssize_t send_routed(int fd, const struct iovec *iov, int iovcnt, int flags, const struct sockaddr *to,
                           socklen_t tolen)
{
    if (fwd_is_foreign(fd))
        return fwd_call(&(struct fwd_call){.op = FWD_SEND, .fd = fd, .iov = iov, .iovcnt = iovcnt,
                                           .flags = flags, .caddr = to, .clen = tolen});
    return sock_send_iov(fd, iov, iovcnt, flags, to, tolen);
}

ssize_t ust_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen)
{
    struct iovec v = {.iov_base = buf, .iov_len = len};
    return recv_routed(fd, &v, 1, flags, from, fromlen);
}

ssize_t ust_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
    struct iovec v = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    return send_routed(fd, &v, 1, flags, to, tolen);
}

ssize_t ust_recv(int fd, void *buf, size_t len, int flags) { return ust_recvfrom(fd, buf, len, flags, NULL, NULL); }
ssize_t ust_send(int fd, const void *buf, size_t len, int flags) { return ust_sendto(fd, buf, len, flags, NULL, 0); }
ssize_t ust_read(int fd, void *buf, size_t len) { return ust_recvfrom(fd, buf, len, 0, NULL, NULL); }
ssize_t ust_write(int fd, const void *buf, size_t len) { return ust_sendto(fd, buf, len, 0, NULL, 0); }

ssize_t ust_readv(int fd, const struct iovec *iov, int iovcnt)
{
    return recv_routed(fd, iov, iovcnt, 0, NULL, NULL);
}

ssize_t ust_writev(int fd, const struct iovec *iov, int iovcnt)
{
    return send_routed(fd, iov, iovcnt, 0, NULL, 0);
}
