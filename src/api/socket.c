/* The socket calls of ustack/socket.h that set connections up and down:
 * socket, bind, listen, accept, connect, shutdown, close, the names. Data
 * transfer is in sockio.c, options in sockopt.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/forward.h"
#include "api/sock.h"
#include "net/stack.h"
#include "tcp/tcp_sock.h"
#include "udp/udp.h"

#define TCP_BIND_LO 32768      /* Linux's default ip_local_port_range */
#define TCP_BIND_HI 60999

/* ---- readiness ---- */

static uint32_t usock_tcp_events(struct usock *sk)
{
    if (!sk->tcp)
        return EPOLLOUT | EPOLLWRNORM | EPOLLHUP;   /* Linux: unconnected = CLOSE */
    unsigned p = tcp_sock_poll(sk->tcp);
    if (p & TSP_LISTEN)
        return (p & TSP_ACCEPTQ) ? EPOLLIN | EPOLLRDNORM : 0;
    uint32_t m = 0;
    if (sk->err || ((p & TSP_ERROR) && (p & TSP_CLOSED) && !(sk->flags & SKF_ERRSEEN)))
        m |= EPOLLERR;
    if ((p & TSP_CONNECTING) && !(p & TSP_CLOSED))
        return m;
    int rcv_shut = (p & (TSP_RCV_FIN | TSP_CLOSED)) || (sk->flags & SKF_SHUT_RD);
    int snd_shut = (p & (TSP_FIN_QUEUED | TSP_CLOSED)) || (sk->flags & SKF_SHUT_WR);
    if (rcv_shut && snd_shut)
        m |= EPOLLHUP;
    if (rcv_shut)
        m |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
    if (p & TSP_DATA)
        m |= EPOLLIN | EPOLLRDNORM;
    /* Linux tcp_poll: a socket shut for sending reports writable (the
     * write then fails at once with EPIPE instead of blocking). */
    if (snd_shut || (p & TSP_SENDABLE))
        m |= EPOLLOUT | EPOLLWRNORM;
    return m;
}

uint32_t usock_events(struct usock *sk)
{
    if (sk->type == SOCK_STREAM)
        return usock_tcp_events(sk);
    uint32_t m = EPOLLOUT | EPOLLWRNORM;
    if (sk->udp->rxq.len)
        m |= EPOLLIN | EPOLLRDNORM;
    if (sk->udp->error && (sk->flags & SKF_UDP_PEER))
        m |= EPOLLERR;
    return m;
}

void usock_sync_error(struct usock *sk)
{
    if (!sk->tcp || (sk->flags & SKF_ERRSEEN) || !(tcp_sock_poll(sk->tcp) & TSP_CLOSED))
        return;
    /* A CLOSED TCB keeps its error for ever; take it once. */
    int e = ust_tcp_error(sk->tcp);
    sk->flags |= SKF_ERRSEEN;
    if (e)
        sk->err = e;
}

int usock_take_error(struct usock *sk)
{
    usock_sync_error(sk);
    int e = sk->err;
    sk->err = 0;
    return e;
}

int usock_nonblock(const struct usock *sk, int msg_flags)
{
    return (sk->flags & SKF_NONBLOCK) || (msg_flags & MSG_DONTWAIT);
}

void usock_wake(struct usock *sk)
{
    epoll_sock_wake(sk);
    /* Every waiter re-checks its own condition (readers, writers and
     * connect share the queue); it is rare for more than one to wait. */
    if (sk->o.waiters.first)
        ust_coro_wake_all(&sk->o.waiters);
}

static void usock_tcp_cb(struct ust_tcp *c, unsigned events, void *arg)
{
    struct usock *sk = arg;
    (void)c;
    if (events & (UST_TCP_ERROR | UST_TCP_CLOSED))
        usock_sync_error(sk);
    usock_wake(sk);
}

static void usock_udp_cb(struct ust_udp *u, void *arg)
{
    (void)u;
    usock_wake(arg);
}

void usock_apply_opts(struct usock *sk)
{
    for (int n = 1; n < SOCK_NOPTS; n++)
        if (sk->opt_set & (1u << n))
            (void)ust_tcp_setopt(sk->tcp, (enum ust_tcp_opt)n, sk->opt_val[n]);
}

/* ---- socket, close ---- */

static int usock_check_type(int domain, int type, int protocol)
{
    if (domain != AF_INET)
        return EAFNOSUPPORT;
    if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP))
        return 0;
    if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
        return 0;
    return type == SOCK_STREAM || type == SOCK_DGRAM ? EPROTONOSUPPORT : ESOCKTNOSUPPORT;
}

static struct usock *usock_new(struct sock_ctx *ctx, int type, int fdflags)
{
    struct usock *sk = calloc(1, sizeof(*sk));
    if (!sk) {
        errno = ENOMEM;
        return NULL;
    }
    sk->o.kind = SOBJ_SOCK;
    sk->o.cloexec = (fdflags & SOCK_CLOEXEC) != 0;
    sk->type = (uint8_t)type;
    sk->stack = ctx->s;
    sk->local.sin_family = AF_INET;
    if (fdflags & SOCK_NONBLOCK)
        sk->flags |= SKF_NONBLOCK;
    if (fd_alloc(ctx, &sk->o) < 0) {
        free(sk);
        return NULL;
    }
    return sk;
}

int ust_socket(int domain, int type, int protocol)
{
    struct sock_ctx *ctx = sock_ctx_current();
    int fdflags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
    type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    int e = ctx ? usock_check_type(domain, type, protocol) : EINVAL;
    if (e) {
        errno = e;
        return -1;
    }
    struct usock *sk = usock_new(ctx, type, fdflags);
    if (!sk)
        return -1;
    if (type == SOCK_DGRAM) {
        sk->udp = ust_udp_open(ctx->s);
        if (!sk->udp) {
            fd_release(&sk->o);
            free(sk);
            return -1;
        }
        ust_udp_set_callback(sk->udp, usock_udp_cb, sk);
    }
    return sk->o.fd;
}

void usock_close(struct usock *sk)
{
    epoll_sock_forget(sk);
    bound_list_del(sk);
    if (sk->tcp) {
        ust_tcp_set_callback(sk->tcp, NULL, NULL);
        if ((sk->flags & SKF_LINGER) && sk->linger_s == 0)
            (void)ust_tcp_setopt(sk->tcp, UST_TCP_OPT_LINGER0, 1);
        ust_tcp_close(sk->tcp);
    }
    if (sk->udp)
        ust_udp_close(sk->udp);
    fd_release(&sk->o);
    free(sk);
}

int ust_close(int fd)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_CLOSE, .fd = fd});
    struct sobj *o = sobj_lookup(fd);
    if (!o)
        return -1;
    if (o->kind == SOBJ_EPOLL)
        epoll_close(o);
    else
        usock_close((struct usock *)o);
    return 0;
}

/* ---- addresses ---- */

static int sin_from(const struct sockaddr *addr, socklen_t len, struct sockaddr_in *out)
{
    if (!addr || len < (socklen_t)sizeof(struct sockaddr_in)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(out, addr, sizeof(*out));
    if (out->sin_family != AF_INET) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    return 0;
}

/* Copy out, truncated to *len as Linux does; *len becomes the full size. */
static int sin_to(const struct sockaddr_in *in, struct sockaddr *addr, socklen_t *len)
{
    if (!addr || !len) {
        errno = EFAULT;
        return -1;
    }
    size_t n = *len < sizeof(*in) ? *len : sizeof(*in);
    memcpy(addr, in, n);
    *len = sizeof(*in);
    return 0;
}

static int tcp_bind_conflict(const struct usock *sk, uint32_t addr, uint16_t port)
{
    union ip_addr a = addr_from_v4(addr);
    if (tcp_port_in_use(sk->stack, &a, port))
        return 1;
    for (const struct usock *b = sk->o.ctx->bound; b; b = b->bound_next) {
        if (b == sk || b->type != SOCK_STREAM || ntohs(b->local.sin_port) != port)
            continue;
        uint32_t ba = ntohl(b->local.sin_addr.s_addr);
        if (ba && addr && ba != addr)
            continue;
        uint16_t both = sk->flags & b->flags;
        if (!(both & (SKF_REUSEADDR | SKF_REUSEPORT)))
            return 1;
    }
    return 0;
}

static uint16_t tcp_bind_pick(struct usock *sk, uint32_t addr)
{
    uint32_t range = TCP_BIND_HI - TCP_BIND_LO + 1;
    uint32_t start = (uint32_t)xrand_next(&sk->stack->rng) % range;
    for (uint32_t i = 0; i < range; i++) {
        uint16_t port = (uint16_t)(TCP_BIND_LO + (start + i) % range);
        if (!tcp_bind_conflict(sk, addr, port))
            return port;
    }
    return 0;
}

static int tcp_bind(struct usock *sk, struct sockaddr_in *in)
{
    uint32_t addr = ntohl(in->sin_addr.s_addr);
    uint16_t port = ntohs(in->sin_port);
    if (port == 0 && (sk->flags & SKF_NOPORT) && sk->state == SS_NEW) {
        sk->local = *in;   /* connect() picks the port for the 4-tuple */
        sk->flags |= SKF_ADDR_ONLY;
        sk->state = SS_BOUND;
        return 0;
    }
    if (port == 0)
        port = tcp_bind_pick(sk, addr);
    if (port == 0 || tcp_bind_conflict(sk, addr, port)) {
        errno = EADDRINUSE;
        return -1;
    }
    in->sin_port = htons(port);
    sk->local = *in;
    sk->state = SS_BOUND;
    bound_list_add(sk);
    return 0;
}

int ust_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_BIND, .fd = fd, .caddr = addr, .clen = len});
    struct usock *sk = usock_lookup(fd);
    struct sockaddr_in in;
    if (!sk || sin_from(addr, len, &in) < 0)
        return -1;
    uint32_t a = ntohl(in.sin_addr.s_addr);
    if (sk->state != SS_NEW || sk->local.sin_port || (sk->udp && sk->udp->lport)) {
        errno = EINVAL;
        return -1;
    }
    if (a && !ipv4_is_local(sk->stack, a)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    if (sk->type == SOCK_DGRAM) {
        if (ust_udp_bind(sk->udp, (const struct sockaddr *)&in, sizeof(in)) < 0)
            return -1;
        sk->local = in;
        sk->local.sin_port = htons(sk->udp->lport);
        return 0;
    }
    return tcp_bind(sk, &in);
}

int ust_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_GETSOCKNAME, .fd = fd, .addr = addr, .alen = len});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    struct sockaddr_in in = sk->local;
    socklen_t l = sizeof(in);
    if (sk->tcp) {
        if (ust_tcp_getsockname(sk->tcp, (struct sockaddr *)&in, &l) < 0)
            return -1;
    } else if (sk->udp) {
        in.sin_addr.s_addr = htonl(sk->udp->laddr);
        in.sin_port = htons(sk->udp->lport);
    }
    return sin_to(&in, addr, len);
}

int ust_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_GETPEERNAME, .fd = fd, .addr = addr, .alen = len});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    struct sockaddr_in in;
    socklen_t l = sizeof(in);
    if (sk->type == SOCK_DGRAM) {
        if (!(sk->flags & SKF_UDP_PEER)) {
            errno = ENOTCONN;
            return -1;
        }
        return sin_to(&sk->peer, addr, len);
    }
    if (!sk->tcp || (tcp_sock_poll(sk->tcp) & (TSP_LISTEN | TSP_CONNECTING | TSP_CLOSED))) {
        errno = ENOTCONN;
        return -1;
    }
    if (ust_tcp_getpeername(sk->tcp, (struct sockaddr *)&in, &l) < 0)
        return -1;
    return sin_to(&in, addr, len);
}

/* ---- listen, accept ---- */

int ust_listen(int fd, int backlog)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_LISTEN, .fd = fd, .flags = backlog});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (sk->type != SOCK_STREAM) {
        errno = EOPNOTSUPP;
        return -1;
    }
    if (sk->state == SS_LISTEN)
        return 0;
    if (sk->state != SS_NEW && sk->state != SS_BOUND) {
        errno = EINVAL;
        return -1;
    }
    if (sk->state == SS_NEW || !sk->local.sin_port) {   /* Linux binds an ephemeral port */
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr = sk->local.sin_addr};
        uint16_t noport = sk->flags & SKF_NOPORT;   /* the option keeps its value */
        sk->flags &= (uint16_t)~(SKF_NOPORT | SKF_ADDR_ONLY);
        sk->state = SS_NEW;
        int rc = tcp_bind(sk, &in);
        sk->flags |= noport;
        if (rc < 0)
            return -1;
    }
    if (backlog > 4096 || backlog < 0)
        backlog = 4096;   /* net.core.somaxconn */
    struct ust_tcp *l = ust_tcp_listen(sk->stack, (const struct sockaddr *)&sk->local, sizeof(sk->local),
                                       backlog ? backlog : 1, usock_tcp_cb, sk);
    if (!l)
        return -1;
    bound_list_del(sk);
    sk->tcp = l;
    sk->state = SS_LISTEN;
    return 0;
}

static int usock_adopt(struct usock *l, struct ust_tcp *c, int flags)
{
    struct usock *sk = usock_new(l->o.ctx, SOCK_STREAM, flags);
    if (!sk) {
        ust_tcp_abort(c);
        return -1;
    }
    sk->tcp = c;
    sk->state = SS_CONNECTED;
    /* Linux: an accepted socket inherits the listener's socket options. */
    sk->flags |= l->flags & (SKF_REUSEADDR | SKF_REUSEPORT | SKF_LINGER);
    sk->linger_s = l->linger_s;
    sk->rcvtimeo_ns = l->rcvtimeo_ns;
    sk->sndtimeo_ns = l->sndtimeo_ns;
    sk->opt_set = l->opt_set;
    memcpy(sk->opt_val, l->opt_val, sizeof(sk->opt_val));
    usock_apply_opts(sk);
    ust_tcp_set_callback(c, usock_tcp_cb, sk);
    return sk->o.fd;
}

int ust_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_ACCEPT, .fd = fd, .addr = addr, .alen = len, .flags = flags});
    struct usock *l = usock_lookup(fd);
    if (!l)
        return -1;
    if ((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) || (l->type == SOCK_STREAM && l->state != SS_LISTEN)) {
        errno = EINVAL;
        return -1;
    }
    if (l->type != SOCK_STREAM) {
        errno = EOPNOTSUPP;
        return -1;
    }
    uint64_t deadline = 0;
    struct ust_tcp *c;
    while (!(c = ust_tcp_accept(l->tcp))) {
        if (errno != EAGAIN || usock_nonblock(l, 0))
            return -1;
        if (!deadline)
            deadline = sock_deadline_after(l->rcvtimeo_ns);
        if (sock_block(l, EPOLLIN, deadline) < 0)
            return -1;
    }
    int nfd = usock_adopt(l, c, flags);
    if (nfd >= 0 && addr) {
        struct sockaddr_in in;
        socklen_t il = sizeof(in);
        if (ust_tcp_getpeername(c, (struct sockaddr *)&in, &il) == 0)
            sin_to(&in, addr, len);
    }
    return nfd;
}

int ust_accept(int fd, struct sockaddr *addr, socklen_t *len) { return ust_accept4(fd, addr, len, 0); }

/* ---- connect ---- */

/* A second connect() on a connection in progress (Linux
 * __inet_stream_connect): EALREADY while the handshake runs, then once 0
 * (or the failure), EISCONN afterwards. */
static int tcp_connect_again(struct usock *sk)
{
    if (sk->state == SS_CONNECTED) {
        errno = EISCONN;
        return -1;
    }
    uint64_t deadline = 0;
    for (;;) {
        unsigned p = tcp_sock_poll(sk->tcp);
        if (p & TSP_CLOSED) {
            int e = usock_take_error(sk);
            errno = e ? e : ECONNABORTED;
            /* A later connect() may try again; as on Linux an address bound
             * without a port stays bound, only the port is picked anew. */
            sk->state = (sk->flags & SKF_ADDR_ONLY) ? SS_BOUND : SS_NEW;
            return -1;
        }
        if (!(p & TSP_CONNECTING)) {
            sk->state = SS_CONNECTED;
            return 0;
        }
        if (usock_nonblock(sk, 0)) {
            errno = deadline ? EINPROGRESS : EALREADY;
            return -1;
        }
        if (!deadline)
            deadline = sock_deadline_after(sk->sndtimeo_ns);
        if (sock_block(sk, EPOLLOUT, deadline) < 0) {
            if (errno != EBADF)   /* SO_SNDTIMEO: Linux leaves it connecting */
                errno = EINPROGRESS;
            return -1;
        }
    }
}

static int tcp_connect(struct usock *sk, const struct sockaddr_in *to)
{
    if (sk->state == SS_LISTEN) {
        errno = EISCONN;
        return -1;
    }
    if (sk->state == SS_CONNECTING || sk->state == SS_CONNECTED)
        return tcp_connect_again(sk);
    if (sk->tcp) {   /* an earlier attempt failed: start afresh */
        ust_tcp_set_callback(sk->tcp, NULL, NULL);
        ust_tcp_close(sk->tcp);
        sk->tcp = NULL;
        sk->flags &= (uint16_t)~(SKF_ERRSEEN | SKF_SHUT_RD | SKF_SHUT_WR);
        sk->err = 0;
    }
    int bound = sk->state == SS_BOUND;
    struct ust_tcp *c = ust_tcp_connect(sk->stack, (const struct sockaddr *)to, sizeof(*to),
                                        bound ? (const struct sockaddr *)&sk->local : NULL,
                                        bound ? sizeof(sk->local) : 0, usock_tcp_cb, sk);
    if (!c)
        return -1;
    bound_list_del(sk);
    sk->tcp = c;
    sk->state = SS_CONNECTING;
    usock_apply_opts(sk);
    if (usock_nonblock(sk, 0)) {
        errno = EINPROGRESS;
        return -1;
    }
    return tcp_connect_again(sk);
}

static int udp_connect(struct usock *sk, const struct sockaddr *addr, socklen_t len)
{
    if (addr && len >= sizeof(sa_family_t) && addr->sa_family == AF_UNSPEC) {
        sk->flags &= (uint16_t)~SKF_UDP_PEER;   /* dissolve the association */
        return 0;
    }
    struct sockaddr_in in;
    if (sin_from(addr, len, &in) < 0)
        return -1;
    if (!sk->udp->lport) {
        struct sockaddr_in any = {.sin_family = AF_INET};
        if (ust_udp_bind(sk->udp, (const struct sockaddr *)&any, sizeof(any)) < 0)
            return -1;
    }
    sk->peer = in;
    sk->flags |= SKF_UDP_PEER;
    return 0;
}

int ust_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_CONNECT, .fd = fd, .caddr = addr, .clen = len});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (sk->type == SOCK_DGRAM)
        return udp_connect(sk, addr, len);
    struct sockaddr_in in = {.sin_family = AF_INET};
    if (sk->state != SS_CONNECTING && sk->state != SS_CONNECTED && sin_from(addr, len, &in) < 0)
        return -1;
    return tcp_connect(sk, &in);
}

/* ---- shutdown ---- */

int ust_shutdown(int fd, int how)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_SHUTDOWN, .fd = fd, .flags = how});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        errno = EINVAL;
        return -1;
    }
    if (sk->type == SOCK_DGRAM) {
        if (!(sk->flags & SKF_UDP_PEER)) {
            errno = ENOTCONN;
            return -1;
        }
    } else if (!sk->tcp || ust_tcp_shutdown(sk->tcp, how) < 0) {
        errno = ENOTCONN;
        return -1;
    }
    if (how != SHUT_WR)
        sk->flags |= SKF_SHUT_RD;
    if (how != SHUT_RD)
        sk->flags |= SKF_SHUT_WR;
    usock_wake(sk);
    return 0;
}
