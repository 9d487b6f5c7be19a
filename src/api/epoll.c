/* epoll over ustack sockets (ustack/epoll.h), with kernel fds multiplexed
 * through a private kernel epoll.
 *
 * Each registration (ep_item) hangs on its socket. When the connection
 * reports an event (the TCP/UDP callback runs epoll_sock_wake) the items
 * whose interest matches the socket's current readiness join their
 * instance's ready list; ust_epoll_wait only walks that list, re-checking
 * each item (Linux ep_send_events): a level-triggered item that is still
 * ready goes back on the list, an edge-triggered one waits for the next
 * event, a one-shot one is disabled until EPOLL_CTL_MOD. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/sock.h"
#include "ustack/epoll.h"

#define EP_KERNEL_EVERY 16       /* busy: look at kernel fds once per this many loops */
#define EP_ALWAYS (EPOLLERR | EPOLLHUP)
/* A coroutine waiting on an instance with kernel fds looks at them this
 * often: the kernel cannot wake a coroutine. */
#define EP_CORO_KERNEL_NS 1000000ULL

struct uepoll;

struct ep_item {
    struct uepoll *ep;
    struct usock *sk;
    uint32_t events;                      /* interest, with EPOLLET / EPOLLONESHOT */
    epoll_data_t data;
    struct ep_item *sk_next;              /* the socket's registrations  */
    struct ep_item *all_prev, *all_next;  /* the instance's registrations */
    struct ep_item *rd_prev, *rd_next;    /* the ready list               */
    uint8_t on_ready, disabled;
};

struct uepoll {
    struct sobj o;
    struct ep_item *all;
    struct ep_item *rd_head, *rd_tail;
    int kfd;                              /* kernel epoll, -1 until needed */
    uint32_t nkernel;                     /* kernel fds registered        */
    uint32_t tick;
    uint8_t kernel_due;                   /* a sleep ended on kfd         */
};

/* ---- the ready list ---- */

static void rd_append(struct uepoll *ep, struct ep_item *it)
{
    it->on_ready = 1;
    it->rd_next = NULL;
    it->rd_prev = ep->rd_tail;
    if (ep->rd_tail)
        ep->rd_tail->rd_next = it;
    else
        ep->rd_head = it;
    ep->rd_tail = it;
}

static void rd_remove(struct uepoll *ep, struct ep_item *it)
{
    if (!it->on_ready)
        return;
    if (it->rd_prev)
        it->rd_prev->rd_next = it->rd_next;
    else
        ep->rd_head = it->rd_next;
    if (it->rd_next)
        it->rd_next->rd_prev = it->rd_prev;
    else
        ep->rd_tail = it->rd_prev;
    it->rd_prev = it->rd_next = NULL;
    it->on_ready = 0;
}

static void ep_item_check(struct ep_item *it, uint32_t ready)
{
    if (it->disabled || it->on_ready)
        return;
    if (!(ready & (it->events | EP_ALWAYS)))
        return;
    rd_append(it->ep, it);
    struct ust_coro_waitq *q = &it->ep->o.waiters;
    if (q->first)   /* coroutines in ust_epoll_wait on this instance */
        ust_coro_wake_all(q);
}

void epoll_sock_wake(struct usock *sk)
{
    if (!sk->items)
        return;
    uint32_t ready = usock_events(sk);
    for (struct ep_item *it = sk->items; it; it = it->sk_next)
        ep_item_check(it, ready);
}

/* ---- registrations ---- */

static struct ep_item *ep_item_find(const struct uepoll *ep, const struct usock *sk)
{
    for (struct ep_item *it = sk->items; it; it = it->sk_next)
        if (it->ep == ep)
            return it;
    return NULL;
}

static int ep_item_add(struct uepoll *ep, struct usock *sk, const struct epoll_event *ev)
{
    struct ep_item *it = calloc(1, sizeof(*it));
    if (!it) {
        errno = ENOMEM;
        return -1;
    }
    it->ep = ep;
    it->sk = sk;
    it->events = ev->events;
    it->data = ev->data;
    it->sk_next = sk->items;
    sk->items = it;
    it->all_next = ep->all;
    if (ep->all)
        ep->all->all_prev = it;
    ep->all = it;
    /* Linux reports what is already ready at registration time. */
    ep_item_check(it, usock_events(sk));
    return 0;
}

static void ep_item_unlink_sock(struct ep_item *it)
{
    struct ep_item **pp = &it->sk->items;
    while (*pp && *pp != it)
        pp = &(*pp)->sk_next;
    if (*pp)
        *pp = it->sk_next;
}

static void ep_item_free(struct ep_item *it)
{
    struct uepoll *ep = it->ep;
    rd_remove(ep, it);
    if (it->all_prev)
        it->all_prev->all_next = it->all_next;
    else
        ep->all = it->all_next;
    if (it->all_next)
        it->all_next->all_prev = it->all_prev;
    free(it);
}

void epoll_sock_forget(struct usock *sk)
{
    struct ep_item *it = sk->items;
    sk->items = NULL;
    while (it) {
        struct ep_item *next = it->sk_next;
        ep_item_free(it);
        it = next;
    }
}

void epoll_close(struct sobj *o)
{
    struct uepoll *ep = (struct uepoll *)o;
    while (ep->all) {
        struct ep_item *it = ep->all;
        ep_item_unlink_sock(it);
        ep_item_free(it);
    }
    if (ep->kfd >= 0)
        close(ep->kfd);
    fd_release(o);
    free(ep);
}

int ust_epoll_create1(int flags)
{
    struct sock_ctx *ctx = sock_ctx_current();
    if (!ctx || (flags & ~EPOLL_CLOEXEC)) {
        errno = EINVAL;
        return -1;
    }
    struct uepoll *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        errno = ENOMEM;
        return -1;
    }
    ep->o.kind = SOBJ_EPOLL;
    ep->o.cloexec = (flags & EPOLL_CLOEXEC) != 0;
    ep->kfd = -1;
    if (fd_alloc(ctx, &ep->o) < 0) {
        free(ep);
        return -1;
    }
    return ep->o.fd;
}

int ust_epoll_create(int size)
{
    if (size <= 0) {
        errno = EINVAL;
        return -1;
    }
    return ust_epoll_create1(0);
}

static struct uepoll *ep_lookup(int epfd)
{
    struct sobj *o = sobj_lookup(epfd);
    if (o && o->kind != SOBJ_EPOLL) {
        errno = EINVAL;
        return NULL;
    }
    return (struct uepoll *)o;
}

static int kernel_fd_valid(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int ep_ctl_kernel(struct uepoll *ep, int op, int fd, struct epoll_event *ev)
{
    if (ep->kfd < 0) {
        if (op != EPOLL_CTL_ADD) {
            errno = kernel_fd_valid(fd) ? ENOENT : EBADF;
            return -1;
        }
        ep->kfd = epoll_create1(EPOLL_CLOEXEC);
        if (ep->kfd < 0)
            return -1;
    }
    /* The user's data goes in as is: kernel events come back ready to hand out. */
    if (epoll_ctl(ep->kfd, op, fd, ev) < 0)
        return -1;
    if (op == EPOLL_CTL_ADD)
        ep->nkernel++;
    else if (op == EPOLL_CTL_DEL && ep->nkernel)
        ep->nkernel--;
    return 0;
}

static int ep_ctl_sock(struct uepoll *ep, int op, struct usock *sk, const struct epoll_event *ev)
{
    struct ep_item *it = ep_item_find(ep, sk);
    switch (op) {
    case EPOLL_CTL_ADD:
        if (it) {
            errno = EEXIST;
            return -1;
        }
        return ep_item_add(ep, sk, ev);
    case EPOLL_CTL_MOD:
        if (!it) {
            errno = ENOENT;
            return -1;
        }
        if (ev->events & EPOLLEXCLUSIVE) {
            errno = EINVAL;
            return -1;
        }
        it->events = ev->events;
        it->data = ev->data;
        it->disabled = 0;
        rd_remove(ep, it);
        ep_item_check(it, usock_events(sk));   /* Linux re-checks on MOD */
        return 0;
    default:
        if (!it) {
            errno = ENOENT;
            return -1;
        }
        ep_item_unlink_sock(it);
        ep_item_free(it);
        return 0;
    }
}

int ust_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    struct uepoll *ep = ep_lookup(epfd);
    if (!ep)
        return -1;
    if (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL) {
        errno = EINVAL;
        return -1;
    }
    if (op != EPOLL_CTL_DEL && !ev) {
        errno = EFAULT;
        return -1;
    }
    if (fd == epfd) {
        errno = EINVAL;
        return -1;
    }
    if (!ust_is_fd(fd))
        return ep_ctl_kernel(ep, op, fd, ev);
    struct sobj *o = sobj_lookup(fd);
    if (!o)
        return -1;
    if (o->kind != SOBJ_SOCK || o->ctx != ep->o.ctx) {
        errno = EINVAL;   /* nested ustack epoll, or another stack's socket */
        return -1;
    }
    return ep_ctl_sock(ep, op, (struct usock *)o, ev);
}

/* ---- wait ---- */

/* Report ready items, up to max (Linux ep_send_events). */
static int ep_collect_ready(struct uepoll *ep, struct epoll_event *events, int max)
{
    struct ep_item *batch = ep->rd_head, *again_head = NULL, *again_tail = NULL;
    ep->rd_head = ep->rd_tail = NULL;
    int n = 0;
    while (batch && n < max) {
        struct ep_item *it = batch;
        batch = it->rd_next;
        it->rd_next = it->rd_prev = NULL;
        it->on_ready = 0;
        uint32_t m = usock_events(it->sk) & (it->events | EP_ALWAYS);
        if (!m)
            continue;
        events[n].events = m;
        events[n].data = it->data;
        n++;
        if (it->events & EPOLLONESHOT) {
            it->disabled = 1;
        } else if (!(it->events & EPOLLET)) {
            /* Level triggered: still ready next time unless drained. */
            it->on_ready = 1;
            it->rd_prev = again_tail;
            if (again_tail)
                again_tail->rd_next = it;
            else
                again_head = it;
            again_tail = it;
        }
    }
    /* Not reached this time: they stay first in line. */
    if (batch) {
        batch->rd_prev = NULL;
        ep->rd_head = batch;
        struct ep_item *t = batch;
        while (t->rd_next)
            t = t->rd_next;
        ep->rd_tail = t;
    }
    for (struct ep_item *it = again_head, *next; it; it = next) {
        next = it->rd_next;
        rd_append(ep, it);
    }
    return n;
}

static int ep_collect(struct uepoll *ep, struct epoll_event *events, int max)
{
    int n = 0;
    if (ep->nkernel && (ep->kernel_due || ep->tick++ % EP_KERNEL_EVERY == 0)) {
        ep->kernel_due = 0;
        /* Leave ustack's ready sockets half the room so neither side starves. */
        int kmax = ep->rd_head && max > 1 ? max / 2 : max;
        int k = epoll_wait(ep->kfd, events, kmax, 0);
        if (k > 0)
            n = k;
    }
    return n + ep_collect_ready(ep, events + n, max - n);
}

/* ep after a wait, or NULL (EBADF) when it was closed meanwhile. */
static struct uepoll *ep_recheck(int epfd, uint64_t serial)
{
    struct sobj *o = sobj_recheck(epfd, serial);
    if (!o)
        errno = EBADF;
    return (struct uepoll *)o;
}

/* Plain code: ust_epoll_wait is the main loop (stacks and coroutines). */
static int ep_wait_loop(struct uepoll *ep, struct epoll_event *events, int maxevents, int timeout_ms,
                        uint64_t deadline)
{
    int epfd = ep->o.fd;
    uint64_t serial = ep->o.serial;
    for (;;) {
        int did;
        uint64_t next = sock_pump(&did);
        if (!(ep = ep_recheck(epfd, serial)))   /* a coroutine closed it */
            return -1;
        int n = ep_collect(ep, events, maxevents);
        if (n || timeout_ms == 0 || sock_pump_now() >= deadline)
            return n;
        if (!did && sock_idle(next < deadline ? next : deadline, ep->nkernel ? ep->kfd : -1))
            ep->kernel_due = 1;
    }
}

/* Inside a coroutine: suspend it until an item joins the ready list (or
 * the timeout). With timeout 0 it yields once so the network can run. */
static int ep_wait_coro(struct uepoll *ep, struct epoll_event *events, int maxevents, int timeout_ms,
                        uint64_t deadline)
{
    int epfd = ep->o.fd;
    uint64_t serial = ep->o.serial;
    for (int round = 0;; round++) {
        int n = ep_collect(ep, events, maxevents);
        if (n || (timeout_ms == 0 && round) || sock_now() >= deadline)
            return n;
        if (timeout_ms == 0) {
            ust_coro_yield();
        } else {
            uint64_t until = deadline;
            if (ep->nkernel) {
                uint64_t k = sock_deadline_after(EP_CORO_KERNEL_NS);
                until = k < until ? k : until;
                ep->kernel_due = 1;
            }
            (void)ust_coro_wait_on(&ep->o.waiters, until);
        }
        if (!(ep = ep_recheck(epfd, serial)))
            return -1;
    }
}

int ust_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout_ms)
{
    struct uepoll *ep = ep_lookup(epfd);
    if (!ep)
        return -1;
    if (maxevents <= 0 || maxevents > INT32_MAX / (int)sizeof(struct epoll_event)) {
        errno = EINVAL;
        return -1;
    }
    if (!events) {
        errno = EFAULT;
        return -1;
    }
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : sock_deadline_after((uint64_t)timeout_ms * 1000000ULL);
    if (ust_coro_self())
        return ep_wait_coro(ep, events, maxevents, timeout_ms, deadline);
    return ep_wait_loop(ep, events, maxevents, timeout_ms, deadline);
}
