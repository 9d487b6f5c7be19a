/* Calls from another thread, forwarded to the stack's own thread
 * (forward.h, docs/WORKERS.md "Calls from another thread").
 *
 * Inbox: one per context, a multi-producer/single-consumer intrusive list.
 * Callers are synchronous: a thread has at most one call in flight, so the
 * list never holds more records than there are threads, needs no capacity,
 * no per-(caller, owner) ring registered on first use and never torn down
 * at thread exit, and no allocation (the record lives on the caller's
 * stack). A producer pushes with one compare-and-swap; the owner takes the
 * whole list with one exchange and runs at most FWD_DRAIN_MAX calls per
 * loop iteration, keeping the rest in a private backlog.
 *
 * head: 0 = closed (no thread attached the context), FWD_EMPTY = open and
 * empty, anything else the newest record; records chain through ->next
 * down to FWD_EMPTY.
 *
 * Completion: the owner writes the result, sets state 1, writes the
 * caller's eventfd, sets state 2. The caller returns only at state 2, so
 * the owner never touches the record or the eventfd once the caller may
 * have gone; a count left over in the eventfd is only a spurious wakeup. */
#include "api/forward.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "api/sock.h"

#define FWD_EMPTY ((uintptr_t)1)
#define FWD_DRAIN_MAX 64     /* new calls run per loop iteration          */
#define FWD_IOV_MAX 64       /* iovec entries per retry of a partial call */

enum { REQ_QUEUED = 0, REQ_WRITING = 1, REQ_DONE = 2 };

struct fwd_req {
    struct fwd_req *next;
    struct fwd_call c;
    int wake_fd;              /* the caller's eventfd                      */
    /* the owner's progress */
    size_t done;              /* bytes moved so far (recv, send)           */
    uint64_t serial;          /* of the socket while parked                */
    uint64_t deadline;        /* 0 until parked the first time             */
    uint32_t want;            /* EPOLLIN / EPOLLOUT while parked           */
    /* the result */
    ssize_t res;
    int err;
    _Atomic int state;
};

struct fwd_inbox {
    _Alignas(64) _Atomic uintptr_t head;
    _Atomic int rung;           /* the bell was written since last cleared  */
    int bell_fd;                /* made once, never closed (see fwd_ring)   */
    int bell_made;
    /* owner only */
    _Alignas(64) struct fwd_req *backlog, *backlog_tail;
    struct fwd_req *parked;
};

static struct fwd_inbox inboxes[SOCK_CTX_MAX];

/* ---- the caller's side -------------------------------------------------- */

static pthread_key_t wake_key;
static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static __thread int tls_wake_fd = -1;

static void wake_fd_free(void *p)
{
    int fd = (int)(intptr_t)p - 1;
    if (fd >= 0)
        close(fd);
}

static void wake_key_make(void) { (void)pthread_key_create(&wake_key, wake_fd_free); }

/* The calling thread's eventfd, closed when the thread exits. */
static int wake_fd_get(void)
{
    if (tls_wake_fd >= 0)
        return tls_wake_fd;
    pthread_once(&wake_once, wake_key_make);
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    tls_wake_fd = fd;
    (void)pthread_setspecific(wake_key, (void *)(intptr_t)(fd + 1));
    return fd;
}

static void wake_fd_clear(int fd)
{
    uint64_t v;
    (void)read(fd, &v, sizeof(v));
}

int fwd_is_foreign(int fd)
{
    if (fd < UST_FD_BASE)
        return 0;
    int id = (int)((((uint32_t)fd - UST_FD_BASE) >> SOCK_SLOT_BITS) & (SOCK_CTX_MAX - 1));
    if (sock_ctx_attached_here(id))
        return 0;
    return atomic_load_explicit(&inboxes[id].head, memory_order_acquire) != 0;
}

static int inbox_push(struct fwd_inbox *ib, struct fwd_req *r)
{
    uintptr_t h = atomic_load(&ib->head);
    do {
        if (h == 0)
            return -1;   /* detached meanwhile */
        r->next = (struct fwd_req *)h;
    } while (!atomic_compare_exchange_weak(&ib->head, &h, (uintptr_t)r));
    return 0;
}

/* Only the first push after the owner cleared the bell writes it. The bell
 * is never closed, so a write racing with a detach hits no other file. */
static void inbox_ring(struct fwd_inbox *ib)
{
    if (!atomic_exchange(&ib->rung, 1))
        (void)eventfd_write(ib->bell_fd, 1);
}

/* Sleep until the owner finished r. A thread that drives stacks of its own
 * keeps running them meanwhile (two owners calling each other must not
 * deadlock); a coroutine lets the others run. */
static void req_wait(struct fwd_req *r)
{
    for (;;) {
        int st = atomic_load_explicit(&r->state, memory_order_acquire);
        if (st == REQ_DONE)
            return;
        if (st == REQ_WRITING) {   /* one eventfd write away */
            sched_yield();
            continue;
        }
        if (ust_coro_self()) {
            ust_coro_yield();
        } else if (sock_thread_drives()) {
            int did;
            uint64_t next = sock_pump(&did);
            if (!did && atomic_load(&r->state) == REQ_QUEUED)
                sock_idle(next, r->wake_fd);
            wake_fd_clear(r->wake_fd);
        } else {
            struct pollfd p = {.fd = r->wake_fd, .events = POLLIN};
            (void)poll(&p, 1, -1);
            wake_fd_clear(r->wake_fd);
        }
    }
}

ssize_t fwd_call(const struct fwd_call *c)
{
    int id = (int)((((uint32_t)c->fd - UST_FD_BASE) >> SOCK_SLOT_BITS) & (SOCK_CTX_MAX - 1));
    struct fwd_req r = {.c = *c, .wake_fd = wake_fd_get()};
    if (r.wake_fd < 0)
        return -1;   /* errno from eventfd */
    atomic_init(&r.state, REQ_QUEUED);
    struct fwd_inbox *ib = &inboxes[id];
    if (inbox_push(ib, &r) < 0) {
        errno = EBADF;
        return -1;
    }
    inbox_ring(ib);
    req_wait(&r);
    if (r.res < 0)
        errno = r.err;
    return r.res;
}

/* ---- the owner's side: completing --------------------------------------- */

static void req_complete(struct fwd_req *r, ssize_t res, int err)
{
    r->res = res;
    r->err = err;
    int fd = r->wake_fd;
    atomic_store_explicit(&r->state, REQ_WRITING, memory_order_release);
    (void)eventfd_write(fd, 1);
    atomic_store_explicit(&r->state, REQ_DONE, memory_order_release);
}

/* Bytes moved so far win over a later error or timeout (POSIX: a partial
 * transfer is reported as such). */
static void req_finish(struct fwd_req *r, ssize_t n, int err)
{
    if (r->done)
        req_complete(r, (ssize_t)r->done, 0);
    else
        req_complete(r, n, err);
}

static void req_fail_all(struct fwd_req *r, int err)
{
    while (r) {
        struct fwd_req *next = r->next;
        req_complete(r, -1, err);
        r = next;
    }
}

/* ---- the owner's side: running a call ----------------------------------- */

/* The part of iov from byte skip on, at most FWD_IOV_MAX entries. */
static int iov_from(const struct iovec *iov, int iovcnt, size_t skip, struct iovec *out)
{
    int k = 0;
    for (int i = 0; i < iovcnt && k < FWD_IOV_MAX; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        out[k].iov_base = (uint8_t *)iov[i].iov_base + skip;
        out[k].iov_len = iov[i].iov_len - skip;
        skip = 0;
        k++;
    }
    return k;
}

static size_t iov_sum(const struct iovec *iov, int iovcnt)
{
    size_t t = 0;
    for (int i = 0; i < iovcnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* Wait (without blocking anyone) for sk to show `want`; the deadline comes
 * from the socket's timeout the first time. */
static int req_park(struct fwd_req *r, struct usock *sk, uint32_t want, uint64_t timeo_ns)
{
    r->want = want;
    r->serial = sk->o.serial;
    if (!r->deadline)
        r->deadline = sock_deadline_after(timeo_ns);
    return 0;
}

/* Each step returns 1 when r is complete, 0 when parked. */
static int step_recv(struct fwd_req *r, struct usock *sk)
{
    const struct fwd_call *c = &r->c;
    int nonblock = usock_nonblock(sk, c->flags);
    ssize_t n;
    if (!r->done) {   /* first pass: the call as given (it validates iov) */
        n = sock_recv_iov(c->fd, c->iov, c->iovcnt, c->flags | MSG_DONTWAIT, c->addr, c->alen);
    } else {
        struct iovec rest[FWD_IOV_MAX];
        int k = iov_from(c->iov, c->iovcnt, r->done, rest);
        n = sock_recv_iov(c->fd, rest, k, c->flags | MSG_DONTWAIT, NULL, NULL);
    }
    if (n > 0) {
        r->done += (size_t)n;
        /* A stream socket with MSG_WAITALL waits for all of it (recv(2)). */
        int more = sk->type == SOCK_STREAM && (c->flags & MSG_WAITALL) && !(c->flags & MSG_PEEK) &&
                   r->done < iov_sum(c->iov, c->iovcnt);
        if (!more || nonblock) {
            req_finish(r, 0, 0);
            return 1;
        }
        return req_park(r, sk, EPOLLIN, sk->rcvtimeo_ns);
    }
    if (n == 0 || errno != EAGAIN || nonblock) {
        req_finish(r, n, errno);
        return 1;
    }
    return req_park(r, sk, EPOLLIN, sk->rcvtimeo_ns);
}

static int step_send(struct fwd_req *r, struct usock *sk)
{
    const struct fwd_call *c = &r->c;
    int nonblock = usock_nonblock(sk, c->flags);
    ssize_t n;
    if (!r->done) {
        n = sock_send_iov(c->fd, c->iov, c->iovcnt, c->flags | MSG_DONTWAIT, c->caddr, c->clen);
    } else {
        struct iovec rest[FWD_IOV_MAX];
        int k = iov_from(c->iov, c->iovcnt, r->done, rest);
        n = sock_send_iov(c->fd, rest, k, c->flags | MSG_DONTWAIT, c->caddr, c->clen);
    }
    if (n >= 0) {
        r->done += (size_t)n;
        /* A blocking stream write returns once all of it is taken. */
        if (nonblock || sk->type != SOCK_STREAM || r->done >= iov_sum(c->iov, c->iovcnt)) {
            req_complete(r, (ssize_t)r->done, 0);
            return 1;
        }
        return req_park(r, sk, EPOLLOUT, sk->sndtimeo_ns);
    }
    if (errno != EAGAIN || nonblock) {
        req_finish(r, n, errno);
        return 1;
    }
    return req_park(r, sk, EPOLLOUT, sk->sndtimeo_ns);
}

/* accept and connect have no MSG_DONTWAIT: the owner runs them with the
 * socket marked non-blocking for the duration of the call. */
static int step_accept(struct fwd_req *r, struct usock *sk)
{
    const struct fwd_call *c = &r->c;
    int nonblock = usock_nonblock(sk, 0);
    sk->flags |= SKF_NONBLOCK;
    int n = ust_accept4(c->fd, c->addr, c->alen, c->flags);
    int e = errno;
    if (!nonblock)
        sk->flags &= (uint16_t)~SKF_NONBLOCK;
    if (n >= 0 || e != EAGAIN || nonblock) {
        req_complete(r, n, e);
        return 1;
    }
    return req_park(r, sk, EPOLLIN, sk->rcvtimeo_ns);
}

static int step_connect(struct fwd_req *r, struct usock *sk)
{
    const struct fwd_call *c = &r->c;
    int nonblock = usock_nonblock(sk, 0);
    int again = r->deadline != 0;   /* parked before: the handshake runs */
    sk->flags |= SKF_NONBLOCK;
    int n = again ? ust_connect(c->fd, NULL, 0) : ust_connect(c->fd, c->caddr, c->clen);
    int e = errno;
    if (!nonblock)
        sk->flags &= (uint16_t)~SKF_NONBLOCK;
    if (n == 0 || nonblock || (e != EINPROGRESS && e != EALREADY)) {
        req_complete(r, n, e);
        return 1;
    }
    return req_park(r, sk, EPOLLOUT, sk->sndtimeo_ns);
}

/* Calls that never block: the owner just makes them. */
static ssize_t run_simple(const struct fwd_call *c)
{
    switch (c->op) {
    case FWD_CLOSE: return ust_close(c->fd);
    case FWD_SHUTDOWN: return ust_shutdown(c->fd, c->flags);
    case FWD_SETSOCKOPT: return ust_setsockopt(c->fd, c->level, c->name, c->cval, c->vlen);
    case FWD_GETSOCKOPT: return ust_getsockopt(c->fd, c->level, c->name, c->val, c->vlenp);
    case FWD_GETSOCKNAME: return ust_getsockname(c->fd, c->addr, c->alen);
    case FWD_GETPEERNAME: return ust_getpeername(c->fd, c->addr, c->alen);
    case FWD_FCNTL: return ust_fcntl(c->fd, c->flags, c->arg);
    case FWD_IOCTL: return ust_ioctl(c->fd, c->req, c->val);
    case FWD_BIND: return ust_bind(c->fd, c->caddr, c->clen);
    case FWD_LISTEN: return ust_listen(c->fd, c->flags);
    }
    errno = EINVAL;
    return -1;
}

static int req_step(struct fwd_req *r)
{
    const struct fwd_call *c = &r->c;
    if (c->op != FWD_RECV && c->op != FWD_SEND && c->op != FWD_ACCEPT && c->op != FWD_CONNECT) {
        ssize_t n = run_simple(c);
        req_complete(r, n, errno);
        return 1;
    }
    struct usock *sk = usock_lookup(c->fd);
    if (!sk) {
        req_finish(r, -1, errno);
        return 1;
    }
    switch (c->op) {
    case FWD_RECV: return step_recv(r, sk);
    case FWD_SEND: return step_send(r, sk);
    case FWD_ACCEPT: return step_accept(r, sk);
    default: return step_connect(r, sk);
    }
}

/* A parked call: 1 when it completed now. */
static int req_retry(struct fwd_req *r, uint64_t now)
{
    struct sobj *o = sobj_recheck(r->c.fd, r->serial);
    if (!o) {   /* closed while the call waited */
        req_finish(r, -1, EBADF);
        return 1;
    }
    struct usock *sk = (struct usock *)o;
    if (usock_events(sk) & (r->want | EPOLLERR | EPOLLHUP))
        return req_step(r);
    if (now < r->deadline)
        return 0;
    /* SO_RCVTIMEO / SO_SNDTIMEO; connect reports the handshake still runs. */
    req_finish(r, -1, r->c.op == FWD_CONNECT ? EINPROGRESS : EAGAIN);
    return 1;
}

/* ---- the owner's side: the inbox ---------------------------------------- */

int fwd_inbox_open(int id)
{
    struct fwd_inbox *ib = &inboxes[id];
    if (!ib->bell_made) {
        ib->bell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (ib->bell_fd < 0)
            return -1;
        ib->bell_made = 1;
    }
    ib->backlog = ib->backlog_tail = ib->parked = NULL;
    atomic_store(&ib->rung, 0);
    /* Release: a caller that sees the inbox open also sees bell_fd. */
    atomic_store_explicit(&ib->head, FWD_EMPTY, memory_order_release);
    return 0;
}

static struct fwd_req *chain_reverse(uintptr_t h)
{
    struct fwd_req *out = NULL;
    while (h != FWD_EMPTY && h != 0) {
        struct fwd_req *r = (struct fwd_req *)h;
        h = (uintptr_t)r->next;
        r->next = out;
        out = r;
    }
    return out;
}

void fwd_inbox_close(int id)
{
    struct fwd_inbox *ib = &inboxes[id];
    uintptr_t h = atomic_exchange(&ib->head, 0);
    req_fail_all(ib->backlog, EBADF);
    req_fail_all(ib->parked, EBADF);
    req_fail_all(chain_reverse(h), EBADF);
    ib->backlog = ib->backlog_tail = ib->parked = NULL;
}

int fwd_bell_fd(int id) { return inboxes[id].bell_made ? inboxes[id].bell_fd : -1; }

/* Clear the bell first, take the list second: a push racing with us either
 * lands in what we take or rings the bell again. */
static void inbox_take(struct fwd_inbox *ib)
{
    if (atomic_load(&ib->rung)) {
        uint64_t v;
        (void)read(ib->bell_fd, &v, sizeof(v));
        atomic_store(&ib->rung, 0);
    }
    if (atomic_load_explicit(&ib->head, memory_order_relaxed) == FWD_EMPTY)
        return;
    struct fwd_req *fifo = chain_reverse(atomic_exchange(&ib->head, FWD_EMPTY));
    if (!fifo)
        return;
    if (ib->backlog_tail)
        ib->backlog_tail->next = fifo;
    else
        ib->backlog = fifo;
    while (fifo->next)
        fifo = fifo->next;
    ib->backlog_tail = fifo;
}

static int serve_backlog(struct fwd_inbox *ib)
{
    int n = 0;
    struct fwd_req *r;
    while (n < FWD_DRAIN_MAX && (r = ib->backlog)) {
        ib->backlog = r->next;
        if (!ib->backlog)
            ib->backlog_tail = NULL;
        n++;
        if (!req_step(r)) {
            r->next = ib->parked;
            ib->parked = r;
        }
    }
    return n;
}

static uint64_t serve_parked(struct fwd_inbox *ib, int *did)
{
    uint64_t next = UINT64_MAX, now = sock_now();
    struct fwd_req **pp = &ib->parked;
    while (*pp) {
        struct fwd_req *r = *pp;
        /* Unlink first: completing r lets its caller return and reuse it. */
        *pp = r->next;
        if (req_retry(r, now)) {
            *did = 1;
            continue;
        }
        r->next = *pp;
        *pp = r;
        pp = &r->next;
        if (r->deadline < next)
            next = r->deadline;
    }
    return next;
}

uint64_t fwd_serve(int id, int *did_work)
{
    struct fwd_inbox *ib = &inboxes[id];
    if (atomic_load_explicit(&ib->head, memory_order_relaxed) == 0)
        return UINT64_MAX;
    inbox_take(ib);
    int did = serve_backlog(ib) > 0;
    uint64_t next = ib->parked ? serve_parked(ib, &did) : UINT64_MAX;
    if (ib->backlog)
        did = 1;   /* more than one iteration's worth: come back at once */
    if (did && did_work)
        *did_work = 1;
    return next;
}
