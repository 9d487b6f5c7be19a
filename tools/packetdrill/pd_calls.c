/* libustack-packetdrill.so: the socket, epoll and poll entries. Each entry
 * packs its arguments into a request and pd_call()s it; the step functions
 * below run on the stack thread (see pd_adapter.h). ustack sockets are kept
 * O_NONBLOCK underneath: blocking is the adapter's, done by leaving a step
 * queued (pd_block), so the calling thread truly sleeps meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "pd_adapter.h"

#include "api/sock.h"
#include "ustack/epoll.h"
#include "ustack/socket.h"

#define PD_SCRATCH 65536           /* gather/scatter buffer for multi-iovec calls with flags */
#define PD_NS_PER_MS 1000000ULL

#define REQ_OF(type, r) ((type *)(void *)((char *)(r) - offsetof(type, req)))

/* Stack thread only. */
static uint8_t pd_scratch[PD_SCRATCH];

static struct usock *pd_usock(const struct pd_fd *f)
{
    return usock_lookup(f->ust);
}

/* ---- socket, bind, listen, shutdown, close ---- */

struct req_socket {
    struct pd_req req;
    int domain, type, protocol;
};

static int step_socket(struct pd *a, struct pd_req *r)
{
    struct req_socket *q = REQ_OF(struct req_socket, r);
    int ust = ust_socket(q->domain, q->type | SOCK_NONBLOCK, q->protocol);
    if (ust < 0)
        return pd_finish(r, -1);
    return pd_finish(r, pd_fd_new(a, ust, PD_SOCK, q->type & SOCK_NONBLOCK, q->type & SOCK_CLOEXEC));
}

static int pd_socket(void *ud, int domain, int type, int protocol)
{
    struct req_socket q = {.req.step = step_socket, .domain = domain, .type = type, .protocol = protocol};
    return (int)pd_call(ud, &q.req);
}

/* Calls taking a descriptor and plain values. */
struct req_simple {
    struct pd_req req;
    int fd;
    int arg;
    const struct sockaddr *addr;
    socklen_t len;
};

static int step_bind(struct pd *a, struct pd_req *r)
{
    struct req_simple *q = REQ_OF(struct req_simple, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    return pd_finish(r, f ? ust_bind(f->ust, q->addr, q->len) : -1);
}

static int step_listen(struct pd *a, struct pd_req *r)
{
    struct req_simple *q = REQ_OF(struct req_simple, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    return pd_finish(r, f ? ust_listen(f->ust, q->arg) : -1);
}

static int step_shutdown(struct pd *a, struct pd_req *r)
{
    struct req_simple *q = REQ_OF(struct req_simple, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    return pd_finish(r, f ? ust_shutdown(f->ust, q->arg) : -1);
}

static int step_close(struct pd *a, struct pd_req *r)
{
    struct req_simple *q = REQ_OF(struct req_simple, r);
    if (pd_fd_get(a, q->fd, PD_FREE)) {
        pd_fd_close(a, q->fd);
        return pd_finish(r, 0);
    }
    /* Not ours: a kernel descriptor packetdrill made through us (pipe). */
    return pd_finish(r, close(q->fd));
}

/* connect: EINPROGRESS when non-blocking; when blocking, wait for the
 * handshake by asking again (EALREADY while it runs, then 0 or the error),
 * as Linux's connect does; SO_SNDTIMEO ends the wait with EINPROGRESS. */
static int step_connect(struct pd *a, struct pd_req *r)
{
    struct req_simple *q = REQ_OF(struct req_simple, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    if (!f)
        return pd_finish(r, -1);
    int rc = ust_connect(f->ust, q->addr, q->len);
    if (rc == 0 || (r->waiting && rc < 0 && errno == EISCONN))
        return pd_finish(r, 0);
    int pending = errno == EINPROGRESS || (r->waiting && errno == EALREADY);
    if (!pending || f->nonblock) {
        if (pending)
            errno = r->waiting ? EALREADY : EINPROGRESS;
        return pd_finish(r, -1);
    }
    struct usock *sk = pd_usock(f);
    return pd_block(r, sk ? sk->sndtimeo_ns : 0, EINPROGRESS);
}

static int pd_simple(void *ud, int (*step)(struct pd *, struct pd_req *), int fd, int arg,
                     const struct sockaddr *addr, socklen_t len)
{
    struct req_simple q = {.req.step = step, .fd = fd, .arg = arg, .addr = addr, .len = len};
    return (int)pd_call(ud, &q.req);
}

static int pd_bind(void *ud, int fd, const struct sockaddr *addr, socklen_t len)
{
    return pd_simple(ud, step_bind, fd, 0, addr, len);
}

static int pd_listen(void *ud, int fd, int backlog) { return pd_simple(ud, step_listen, fd, backlog, NULL, 0); }
static int pd_shutdown(void *ud, int fd, int how) { return pd_simple(ud, step_shutdown, fd, how, NULL, 0); }
static int pd_close(void *ud, int fd) { return pd_simple(ud, step_close, fd, 0, NULL, 0); }

static int pd_connect(void *ud, int fd, const struct sockaddr *addr, socklen_t len)
{
    return pd_simple(ud, step_connect, fd, 0, addr, len);
}

/* ---- accept ---- */

struct req_accept {
    struct pd_req req;
    int fd;
    struct sockaddr *addr;
    socklen_t *len;
};

static int step_accept(struct pd *a, struct pd_req *r)
{
    struct req_accept *q = REQ_OF(struct req_accept, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    if (!f)
        return pd_finish(r, -1);
    int ust = ust_accept4(f->ust, q->addr, q->len, SOCK_NONBLOCK);
    if (ust >= 0)
        return pd_finish(r, pd_fd_new(a, ust, PD_SOCK, 0, 0));
    if (errno != EAGAIN || f->nonblock)
        return pd_finish(r, -1);
    struct usock *sk = pd_usock(f);
    return pd_block(r, sk ? sk->rcvtimeo_ns : 0, EAGAIN);
}

static int pd_accept(void *ud, int fd, struct sockaddr *addr, socklen_t *len)
{
    struct req_accept q = {.req.step = step_accept, .fd = fd, .addr = addr, .len = len};
    return (int)pd_call(ud, &q.req);
}

/* ---- data: the read and write families ---- */

struct req_io {
    struct pd_req req;
    int fd;
    int flags;
    const struct iovec *iov;
    int iovcnt;
    struct iovec one;              /* iov for the single-buffer calls */
    struct sockaddr *from;         /* receive */
    socklen_t *fromlen;
    const struct sockaddr *to;     /* send */
    socklen_t tolen;
    size_t moved;                  /* send: bytes already taken */
};

static size_t iov_sum(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static int io_plain(const struct req_io *q, int extra_ok)
{
    return !q->from && !q->to && !(q->flags & ~extra_ok);
}

static ssize_t io_recv_once(struct req_io *q, int ust)
{
    int flags = q->flags | MSG_DONTWAIT;
    if (q->iovcnt == 1)
        return ust_recvfrom(ust, q->iov[0].iov_base, q->iov[0].iov_len, flags, q->from, q->fromlen);
    if (io_plain(q, MSG_DONTWAIT))
        return ust_readv(ust, q->iov, q->iovcnt);
    size_t want = iov_sum(q->iov, q->iovcnt);
    ssize_t n = ust_recvfrom(ust, pd_scratch, want < PD_SCRATCH ? want : PD_SCRATCH, flags, q->from, q->fromlen);
    size_t off = 0;
    for (int i = 0; n > 0 && i < q->iovcnt && off < (size_t)n; i++) {
        size_t c = q->iov[i].iov_len < (size_t)n - off ? q->iov[i].iov_len : (size_t)n - off;
        memcpy(q->iov[i].iov_base, pd_scratch + off, c);
        off += c;
    }
    return n;
}

static int step_recv(struct pd *a, struct pd_req *r)
{
    struct req_io *q = REQ_OF(struct req_io, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    if (!f)
        return pd_finish(r, -1);
    ssize_t n = io_recv_once(q, f->ust);
    if (n >= 0 || errno != EAGAIN || f->nonblock || (q->flags & MSG_DONTWAIT))
        return pd_finish(r, n);
    struct usock *sk = pd_usock(f);
    return pd_block(r, sk ? sk->rcvtimeo_ns : 0, EAGAIN);
}

/* The part of q->iov not yet sent, into out (at most max entries). */
static int io_rest(const struct req_io *q, struct iovec *out, int max)
{
    size_t skip = q->moved;
    int n = 0;
    for (int i = 0; i < q->iovcnt && n < max; i++) {
        if (skip >= q->iov[i].iov_len) {
            skip -= q->iov[i].iov_len;
            continue;
        }
        out[n].iov_base = (uint8_t *)q->iov[i].iov_base + skip;
        out[n++].iov_len = q->iov[i].iov_len - skip;
        skip = 0;
    }
    return n;
}

static ssize_t io_send_once(struct req_io *q, int ust)
{
    static struct iovec rest[IOV_MAX];     /* stack thread only */
    int flags = q->flags | MSG_DONTWAIT | MSG_NOSIGNAL;
    int n = io_rest(q, rest, IOV_MAX);
    if (n <= 1)
        return ust_sendto(ust, n ? rest[0].iov_base : NULL, n ? rest[0].iov_len : 0, flags, q->to, q->tolen);
    if (io_plain(q, MSG_DONTWAIT | MSG_NOSIGNAL))
        return ust_writev(ust, rest, n);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        if (rest[i].iov_len > PD_SCRATCH - len) {
            errno = EMSGSIZE;
            return -1;
        }
        memcpy(pd_scratch + len, rest[i].iov_base, rest[i].iov_len);
        len += rest[i].iov_len;
    }
    return ust_sendto(ust, pd_scratch, len, flags, q->to, q->tolen);
}

/* A blocking send takes everything (Linux's stream semantics): progress is
 * kept in q->moved across retries; a timeout or error after some progress
 * reports the progress. */
static int step_send(struct pd *a, struct pd_req *r)
{
    struct req_io *q = REQ_OF(struct req_io, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    if (!f)
        return pd_finish(r, q->moved ? (long)q->moved : -1);
    ssize_t n = io_send_once(q, f->ust);
    if (n > 0)
        q->moved += (size_t)n;
    if (n >= 0 && q->moved >= iov_sum(q->iov, q->iovcnt))
        return pd_finish(r, (long)q->moved);
    if ((n < 0 && errno != EAGAIN) || f->nonblock || (q->flags & MSG_DONTWAIT))
        return pd_finish(r, q->moved ? (long)q->moved : -1);
    struct usock *sk = pd_usock(f);
    if (!pd_block(r, sk ? sk->sndtimeo_ns : 0, EAGAIN))
        return 0;
    if (q->moved)
        pd_finish(r, (long)q->moved);
    return 1;
}

static ssize_t pd_io(void *ud, int (*step)(struct pd *, struct pd_req *), struct req_io *q)
{
    q->req.step = step;
    if (q->iovcnt < 0 || q->iovcnt > IOV_MAX || (q->iovcnt && !q->iov)) {
        errno = EINVAL;
        return -1;
    }
    return pd_call(ud, &q->req);
}

static ssize_t pd_recvfrom(void *ud, int fd, void *buf, size_t len, int flags, struct sockaddr *from,
                           socklen_t *fromlen)
{
    struct req_io q = {.fd = fd, .flags = flags, .one = {buf, len}, .iovcnt = 1, .from = from,
                       .fromlen = from ? fromlen : NULL};
    q.iov = &q.one;
    return pd_io(ud, step_recv, &q);
}

static ssize_t pd_read(void *ud, int fd, void *buf, size_t len) { return pd_recvfrom(ud, fd, buf, len, 0, NULL, NULL); }

static ssize_t pd_recv(void *ud, int fd, void *buf, size_t len, int flags)
{
    return pd_recvfrom(ud, fd, buf, len, flags, NULL, NULL);
}

static ssize_t pd_readv(void *ud, int fd, const struct iovec *iov, int iovcnt)
{
    struct req_io q = {.fd = fd, .iov = iov, .iovcnt = iovcnt};
    return pd_io(ud, step_recv, &q);
}

static ssize_t pd_recvmsg(void *ud, int fd, struct msghdr *msg, int flags)
{
    if (!msg) {
        errno = EFAULT;
        return -1;
    }
    struct req_io q = {.fd = fd, .flags = flags, .iov = msg->msg_iov, .iovcnt = (int)msg->msg_iovlen,
                       .from = msg->msg_name, .fromlen = msg->msg_name ? &msg->msg_namelen : NULL};
    ssize_t n = pd_io(ud, step_recv, &q);
    if (n >= 0) {
        msg->msg_controllen = 0;    /* no ancillary data from ustack */
        msg->msg_flags = 0;
    }
    return n;
}

static ssize_t pd_sendto(void *ud, int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                         socklen_t tolen)
{
    struct req_io q = {.fd = fd, .flags = flags, .one = {(void *)(uintptr_t)buf, len}, .iovcnt = 1, .to = to,
                       .tolen = tolen};
    q.iov = &q.one;
    return pd_io(ud, step_send, &q);
}

static ssize_t pd_write(void *ud, int fd, const void *buf, size_t len) { return pd_sendto(ud, fd, buf, len, 0, NULL, 0); }

static ssize_t pd_send(void *ud, int fd, const void *buf, size_t len, int flags)
{
    return pd_sendto(ud, fd, buf, len, flags, NULL, 0);
}

static ssize_t pd_writev(void *ud, int fd, const struct iovec *iov, int iovcnt)
{
    struct req_io q = {.fd = fd, .iov = iov, .iovcnt = iovcnt};
    return pd_io(ud, step_send, &q);
}

static ssize_t pd_sendmsg(void *ud, int fd, const struct msghdr *msg, int flags)
{
    if (!msg) {
        errno = EFAULT;
        return -1;
    }
    if (msg->msg_controllen) {
        errno = EOPNOTSUPP;         /* ancillary data is not supported */
        return -1;
    }
    struct req_io q = {.fd = fd, .flags = flags, .iov = msg->msg_iov, .iovcnt = (int)msg->msg_iovlen,
                       .to = msg->msg_name, .tolen = msg->msg_namelen};
    return pd_io(ud, step_send, &q);
}

/* ---- options, fcntl, ioctl ---- */

struct req_opt {
    struct pd_req req;
    int fd, level, name;
    const void *in;
    socklen_t inlen;
    void *out;
    socklen_t *outlen;
};

static int step_setsockopt(struct pd *a, struct pd_req *r)
{
    struct req_opt *q = REQ_OF(struct req_opt, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    return pd_finish(r, f ? ust_setsockopt(f->ust, q->level, q->name, q->in, q->inlen) : -1);
}

static int step_getsockopt(struct pd *a, struct pd_req *r)
{
    struct req_opt *q = REQ_OF(struct req_opt, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_SOCK);
    return pd_finish(r, f ? ust_getsockopt(f->ust, q->level, q->name, q->out, q->outlen) : -1);
}

static int pd_setsockopt(void *ud, int fd, int level, int name, const void *val, socklen_t len)
{
    struct req_opt q = {.req.step = step_setsockopt, .fd = fd, .level = level, .name = name, .in = val,
                        .inlen = len};
    return (int)pd_call(ud, &q.req);
}

static int pd_getsockopt(void *ud, int fd, int level, int name, void *val, socklen_t *len)
{
    struct req_opt q = {.req.step = step_getsockopt, .fd = fd, .level = level, .name = name, .out = val,
                        .outlen = len};
    return (int)pd_call(ud, &q.req);
}

struct req_ctl {
    struct pd_req req;
    int fd;
    int cmd;                       /* fcntl */
    int arg;
    unsigned long request;         /* ioctl */
    void *argp;
};

/* O_NONBLOCK is packetdrill's view (pd_fd.nonblock); the ustack socket
 * stays non-blocking. FD_CLOEXEC is the eventfd's own. */
static int step_fcntl(struct pd *a, struct pd_req *r)
{
    struct req_ctl *q = REQ_OF(struct req_ctl, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_FREE);
    if (!f || q->cmd == F_GETFD || q->cmd == F_SETFD)
        return pd_finish(r, fcntl(q->fd, q->cmd, q->arg));   /* kernel fds: pipes, the eventfd itself */
    if (q->cmd == F_GETFL) {
        int fl = ust_fcntl(f->ust, F_GETFL);
        if (fl >= 0)
            fl = (fl & ~O_NONBLOCK) | (f->nonblock ? O_NONBLOCK : 0);
        return pd_finish(r, fl);
    }
    if (q->cmd == F_SETFL) {
        int rc = ust_fcntl(f->ust, F_SETFL, q->arg | O_NONBLOCK);
        if (rc == 0)
            f->nonblock = (q->arg & O_NONBLOCK) != 0;
        return pd_finish(r, rc);
    }
    errno = EINVAL;
    return pd_finish(r, -1);
}

static int step_ioctl(struct pd *a, struct pd_req *r)
{
    struct req_ctl *q = REQ_OF(struct req_ctl, r);
    struct pd_fd *f = pd_fd_get(a, q->fd, PD_FREE);
    if (!f)
        return pd_finish(r, ioctl(q->fd, q->request, q->argp));
    if (q->request == FIONBIO) {
        if (!q->argp) {
            errno = EFAULT;
            return pd_finish(r, -1);
        }
        f->nonblock = *(const int *)q->argp != 0;
        return pd_finish(r, 0);
    }
    return pd_finish(r, ust_ioctl(f->ust, q->request, q->argp));
}

static int pd_fcntl(void *ud, int fd, int cmd, ...)
{
    struct req_ctl q = {.req.step = step_fcntl, .fd = fd, .cmd = cmd};
    if (cmd == F_SETFL || cmd == F_SETFD) {    /* the commands that take an int */
        va_list ap;
        va_start(ap, cmd);
        q.arg = va_arg(ap, int);
        va_end(ap);
    }
    return (int)pd_call(ud, &q.req);
}

static int pd_ioctl(void *ud, int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    struct req_ctl q = {.req.step = step_ioctl, .fd = fd, .request = request, .argp = va_arg(ap, void *)};
    va_end(ap);
    return (int)pd_call(ud, &q.req);
}

/* ---- poll ---- */

struct req_poll {
    struct pd_req req;
    struct pollfd *fds;
    nfds_t n;
    int timeout_ms;
};

/* POLL* and EPOLL* bits have the same values on Linux. */
static short poll_one(struct pd *a, struct pollfd *p, int *kernel)
{
    struct pd_fd *f = pd_fd_get(a, p->fd, PD_SOCK);
    uint32_t want = (uint16_t)p->events | POLLERR | POLLHUP;
    if (f) {
        struct usock *sk = pd_usock(f);
        return sk ? (short)(usock_events(sk) & want) : POLLNVAL;
    }
    if (pd_fd_get(a, p->fd, PD_FREE))
        return 0;          /* an epoll instance: never ready for poll here */
    struct pollfd k = {.fd = p->fd, .events = p->events};
    *kernel = 1;
    return poll(&k, 1, 0) < 0 ? POLLNVAL : k.revents;
}

static int step_poll(struct pd *a, struct pd_req *r)
{
    struct req_poll *q = REQ_OF(struct req_poll, r);
    int ready = 0, kernel = 0;
    for (nfds_t i = 0; i < q->n; i++) {
        q->fds[i].revents = q->fds[i].fd < 0 ? 0 : poll_one(a, &q->fds[i], &kernel);
        ready += q->fds[i].revents != 0;
    }
    r->kernel_fds = kernel;
    if (ready || q->timeout_ms == 0)
        return pd_finish(r, ready);
    return pd_block(r, q->timeout_ms < 0 ? 0 : (uint64_t)q->timeout_ms * PD_NS_PER_MS, 0);
}

static int pd_poll(void *ud, struct pollfd *fds, nfds_t n, int timeout)
{
    if (n && !fds) {
        errno = EFAULT;
        return -1;
    }
    struct req_poll q = {.req.step = step_poll, .fds = fds, .n = n, .timeout_ms = timeout};
    return (int)pd_call(ud, &q.req);
}

/* ---- epoll ---- */

struct req_epoll {
    struct pd_req req;
    int epfd, op, fd;
    struct epoll_event *ev;
    int max, timeout_ms;
};

static int step_epoll_create(struct pd *a, struct pd_req *r)
{
    int ep = ust_epoll_create1(0);
    return pd_finish(r, ep < 0 ? -1 : pd_fd_new(a, ep, PD_EPOLL, 0, 0));
}

/* Registered descriptors are translated; events come back with the data
 * packetdrill gave, as from the kernel. Unmapped fds are kernel fds. */
static int step_epoll_ctl(struct pd *a, struct pd_req *r)
{
    struct req_epoll *q = REQ_OF(struct req_epoll, r);
    struct pd_fd *ep = pd_fd_get(a, q->epfd, PD_EPOLL);
    if (!ep)
        return pd_finish(r, -1);
    struct pd_fd *f = q->fd >= 0 && q->fd < PD_FD_MAX && a->fds[q->fd].kind != PD_FREE ? &a->fds[q->fd] : NULL;
    return pd_finish(r, ust_epoll_ctl(ep->ust, q->op, f ? f->ust : q->fd, q->ev));
}

static int step_epoll_wait(struct pd *a, struct pd_req *r)
{
    struct req_epoll *q = REQ_OF(struct req_epoll, r);
    struct pd_fd *ep = pd_fd_get(a, q->epfd, PD_EPOLL);
    if (!ep)
        return pd_finish(r, -1);
    int n = ust_epoll_wait(ep->ust, q->ev, q->max, 0);
    if (n != 0 || q->timeout_ms == 0)
        return pd_finish(r, n);
    r->kernel_fds = 1;        /* it may watch kernel fds: look again soon */
    return pd_block(r, q->timeout_ms < 0 ? 0 : (uint64_t)q->timeout_ms * PD_NS_PER_MS, 0);
}

static int pd_epoll_create(void *ud, int size)
{
    if (size <= 0) {
        errno = EINVAL;
        return -1;
    }
    struct req_epoll q = {.req.step = step_epoll_create};
    return (int)pd_call(ud, &q.req);
}

static int pd_epoll_ctl(void *ud, int epfd, int op, int fd, struct epoll_event *ev)
{
    struct req_epoll q = {.req.step = step_epoll_ctl, .epfd = epfd, .op = op, .fd = fd, .ev = ev};
    return (int)pd_call(ud, &q.req);
}

static int pd_epoll_wait(void *ud, int epfd, struct epoll_event *ev, int max, int timeout)
{
    struct req_epoll q = {.req.step = step_epoll_wait, .epfd = epfd, .ev = ev, .max = max, .timeout_ms = timeout};
    return (int)pd_call(ud, &q.req);
}

void pd_fill_calls(struct packetdrill_interface *ifc)
{
    ifc->socket = pd_socket;
    ifc->bind = pd_bind;
    ifc->listen = pd_listen;
    ifc->accept = pd_accept;
    ifc->connect = pd_connect;
    ifc->read = pd_read;
    ifc->readv = pd_readv;
    ifc->recv = pd_recv;
    ifc->recvfrom = pd_recvfrom;
    ifc->recvmsg = pd_recvmsg;
    ifc->write = pd_write;
    ifc->writev = pd_writev;
    ifc->send = pd_send;
    ifc->sendto = pd_sendto;
    ifc->sendmsg = pd_sendmsg;
    ifc->fcntl = pd_fcntl;
    ifc->ioctl = pd_ioctl;
    ifc->close = pd_close;
    ifc->shutdown = pd_shutdown;
    ifc->getsockopt = pd_getsockopt;
    ifc->setsockopt = pd_setsockopt;
    ifc->poll = pd_poll;
    ifc->epoll_create = pd_epoll_create;
    ifc->epoll_ctl = pd_epoll_ctl;
    ifc->epoll_wait = pd_epoll_wait;
}
