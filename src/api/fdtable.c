/* ustack descriptors: one table per stack context, contexts bound to the
 * thread that drives their stack, and the loop that blocking calls and
 * ust_epoll_wait run while they wait (socket.h "Descriptors", "Threads",
 * "Progress"). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/forward.h"
#include "api/sock.h"
#include "net/stack.h"

#define IDLE_MAX_NS 1000000000ULL    /* wake at least once a second */
#define IDLE_NOFD_NS 1000000ULL      /* backends without fds: nap 1 ms */
#define IDLE_FDS 64

int (*ust_block_hook)(int fd, uint32_t events, uint64_t deadline_ns);

/* Process-wide: which context ids are taken (control path, under a lock). */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_ctx *ctx_all[SOCK_CTX_MAX];

/* Per thread: the contexts it drives, the current one, its clock. */
static __thread struct sock_ctx *tls_ctx[SOCK_CTX_MAX];
static __thread struct sock_ctx *tls_list[SOCK_CTX_MAX];
static __thread int tls_nctx;
static __thread struct sock_ctx *tls_cur;
static __thread uint64_t (*tls_now)(void *);
static __thread void (*tls_idle)(void *, uint64_t);
static __thread void *tls_clock_arg;
/* Object serials only need to be unique among the objects one thread can
 * look up, and a thread only looks up contexts it attached. */
static __thread uint64_t tls_serial;

static struct sock_ctx *ctx_of_coro(void)
{
    struct ust_coro *co = ust_coro_self();
    if (!co)
        return NULL;
    struct ust_stack *s = ust_coro_stack(co);
    for (int i = 0; i < tls_nctx; i++)
        if (tls_list[i]->s == s)
            return tls_list[i];
    return NULL;
}

/* Inside a coroutine, its own stack (when attached here): coroutines of
 * several stacks can then share a thread without ust_socket_attach calls
 * to switch between them. */
struct sock_ctx *sock_ctx_current(void)
{
    struct sock_ctx *c = ctx_of_coro();
    return c ? c : tls_cur;
}

static struct sock_ctx *ctx_of_stack(struct ust_stack *s)
{
    for (int i = 0; i < SOCK_CTX_MAX; i++)
        if (ctx_all[i] && ctx_all[i]->s == s)
            return ctx_all[i];
    return NULL;
}

static int ctx_grow(struct sock_ctx *c)
{
    uint32_t ncap = c->cap ? c->cap * 2 : SOCK_SLOTS_INITIAL;
    if (ncap > SOCK_SLOT_MAX)
        ncap = SOCK_SLOT_MAX;
    if (ncap <= c->cap) {
        errno = EMFILE;
        return -1;
    }
    struct sobj **slots = realloc(c->slots, ncap * sizeof(*slots));
    if (!slots)
        goto nomem;
    c->slots = slots;
    uint32_t *fr = realloc(c->free_slots, ncap * sizeof(*fr));
    if (!fr)
        goto nomem;
    c->free_slots = fr;
    memset(c->slots + c->cap, 0, (ncap - c->cap) * sizeof(*slots));
    c->cap = ncap;
    return 0;
nomem:
    errno = ENOMEM;
    return -1;
}

static struct sock_ctx *ctx_create(struct ust_stack *s)
{
    struct sock_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->s = s;
    c->id = -1;
    for (int i = 0; i < SOCK_CTX_MAX; i++) {
        if (!ctx_all[i]) {
            c->id = i;
            ctx_all[i] = c;
            break;
        }
    }
    if (c->id < 0 || ctx_grow(c) < 0) {
        if (c->id >= 0)
            ctx_all[c->id] = NULL;
        free(c);
        errno = EMFILE;
        return NULL;
    }
    return c;
}

int ust_socket_attach(struct ust_stack *s)
{
    if (!s) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&ctx_lock);
    struct sock_ctx *c = ctx_of_stack(s);
    int rc = 0;
    if (c && tls_ctx[c->id] != c) {
        errno = EBUSY;
        rc = -1;
    } else if (!c) {
        c = ctx_create(s);
        if (c && fwd_inbox_open(c->id) < 0) {
            ctx_all[c->id] = NULL;
            free(c->slots);
            free(c->free_slots);
            free(c);
            c = NULL;
        }
        if (c) {
            tls_ctx[c->id] = c;
            tls_list[tls_nctx++] = c;
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&ctx_lock);
    if (rc == 0)
        tls_cur = c;
    return rc;
}

static void ctx_close_all(struct sock_ctx *c)
{
    /* Epoll instances first: closing them drops every registration, so the
     * sockets close without touching freed items. */
    for (int kind = SOBJ_EPOLL; kind >= SOBJ_SOCK; kind--) {
        for (uint32_t i = 0; i < c->bump; i++) {
            struct sobj *o = c->slots[i];
            if (o && o->kind == kind)
                ust_close(o->fd);
        }
    }
}

int ust_socket_detach(struct ust_stack *s)
{
    struct sock_ctx *c = NULL;
    int at = -1;
    for (int i = 0; i < tls_nctx; i++)
        if (tls_list[i]->s == s) {
            c = tls_list[i];
            at = i;
        }
    if (!c) {
        errno = EINVAL;
        return -1;
    }
    /* Other threads' calls first: they must not run on a closing table. */
    fwd_inbox_close(c->id);
    ctx_close_all(c);
    tls_list[at] = tls_list[--tls_nctx];
    tls_ctx[c->id] = NULL;
    if (tls_cur == c)
        tls_cur = tls_nctx ? tls_list[tls_nctx - 1] : NULL;
    pthread_mutex_lock(&ctx_lock);
    ctx_all[c->id] = NULL;
    pthread_mutex_unlock(&ctx_lock);
    free(c->slots);
    free(c->free_slots);
    free(c);
    return 0;
}

int sock_ctx_attached_here(int id) { return id >= 0 && id < SOCK_CTX_MAX && tls_ctx[id] != NULL; }

int sock_thread_drives(void) { return tls_nctx > 0; }

struct sobj *sobj_lookup(int fd)
{
    if (fd < UST_FD_BASE) {
        errno = EBADF;
        return NULL;
    }
    uint32_t v = (uint32_t)fd - UST_FD_BASE;
    struct sock_ctx *c = tls_ctx[(v >> SOCK_SLOT_BITS) & (SOCK_CTX_MAX - 1)];
    uint32_t slot = v & (SOCK_SLOT_MAX - 1);
    if (!c || slot >= c->bump || !c->slots[slot]) {
        errno = EBADF;
        return NULL;
    }
    return c->slots[slot];
}

struct usock *usock_lookup(int fd)
{
    struct sobj *o = sobj_lookup(fd);
    if (o && o->kind != SOBJ_SOCK) {
        errno = ENOTSOCK;
        return NULL;
    }
    return (struct usock *)o;
}

struct sobj *sobj_recheck(int fd, uint64_t serial)
{
    int saved = errno;
    struct sobj *o = sobj_lookup(fd);
    errno = saved;
    return o && o->serial == serial ? o : NULL;
}

struct ust_stack *ust_socket_stack(int fd)
{
    struct sobj *o = sobj_lookup(fd);
    return o ? o->ctx->s : NULL;
}

int fd_alloc(struct sock_ctx *c, struct sobj *o)
{
    uint32_t slot;
    if (c->nfree) {
        slot = c->free_slots[--c->nfree];
    } else {
        if (c->bump == c->cap && ctx_grow(c) < 0)
            return -1;
        slot = c->bump++;
    }
    c->slots[slot] = o;
    c->nopen++;
    o->ctx = c;
    o->serial = ++tls_serial;
    o->waiters = (struct ust_coro_waitq){0};
    o->fd = (int)(UST_FD_BASE + ((uint32_t)c->id << SOCK_SLOT_BITS) + slot);
    return o->fd;
}

void fd_release(struct sobj *o)
{
    if (o->waiters.first)
        ust_coro_wake_all(&o->waiters);
    struct sock_ctx *c = o->ctx;
    uint32_t slot = ((uint32_t)o->fd - UST_FD_BASE) & (SOCK_SLOT_MAX - 1);
    c->slots[slot] = NULL;
    c->free_slots[c->nfree++] = slot;
    c->nopen--;
}

void bound_list_add(struct usock *sk)
{
    struct sock_ctx *c = sk->o.ctx;
    sk->bound_prev = NULL;
    sk->bound_next = c->bound;
    if (c->bound)
        c->bound->bound_prev = sk;
    c->bound = sk;
}

void bound_list_del(struct usock *sk)
{
    if (sk->state != SS_BOUND || !sk->local.sin_port)   /* port 0: IP_BIND_ADDRESS_NO_PORT, never listed */
        return;
    if (sk->bound_prev)
        sk->bound_prev->bound_next = sk->bound_next;
    else
        sk->o.ctx->bound = sk->bound_next;
    if (sk->bound_next)
        sk->bound_next->bound_prev = sk->bound_prev;
    sk->bound_next = sk->bound_prev = NULL;
}

/* ---- clock and the wait loop ---- */

void ust_socket_set_clock(uint64_t (*now)(void *arg), void (*idle)(void *arg, uint64_t deadline_ns), void *arg)
{
    tls_now = now;
    tls_idle = now ? idle : NULL;
    tls_clock_arg = arg;
}

uint64_t sock_now(void) { return tls_now ? tls_now(tls_clock_arg) : ust_now_ns(); }

uint64_t sock_deadline_after(uint64_t timeout_ns)
{
    if (!timeout_ns)
        return UINT64_MAX;
    uint64_t now = sock_now();
    return timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
}

/* The clock of the last pump: a caller deciding whether its deadline has
 * passed right after pumping reads it instead of the clock again (35 ns a
 * read here, two per turn of a busy loop otherwise). */
static __thread uint64_t tls_pump_now;

uint64_t sock_pump_now(void) { return tls_pump_now; }

uint64_t sock_pump(int *did_work)
{
    uint64_t next = UINT64_MAX;
    int did = 0;
    tls_pump_now = sock_now();
    /* tls_list is re-read every time: a coroutine may detach a stack. */
    for (int i = 0; i < tls_nctx; i++) {
        struct ust_stack *s = tls_list[i]->s;
        uint64_t now = i ? sock_now() : tls_pump_now;
        uint64_t n = ust_stack_poll(s, now);
        did |= s->did_work;
        int ran = 0;
        uint64_t c = coro_run_ready_ran(s, now, &ran);
        did |= ran;
        if (c < n)
            n = c;
        /* Calls other threads forwarded here (forward.h); what they queue
         * goes out on the next pump, which did_work asks for at once. */
        if (i < tls_nctx && tls_list[i]->s == s) {
            c = fwd_serve(tls_list[i]->id, &did);
            if (c < n)
                n = c;
        }
        if (n < next)
            next = n;
    }
    if (did_work)
        *did_work = did;
    return next;
}

/* Must the thread keep polling (busy polling, or work was just done)? */
static int idle_busy(void)
{
    for (int i = 0; i < tls_nctx; i++)
        if (tls_list[i]->s->cfg.busy_poll || tls_list[i]->s->did_work)
            return 1;
    return 0;
}

/* The devices' fds (their count in *ndev), then the forwarding bells. Only
 * when about to sleep: poll_fds re-arms device wakeups (memif unmasks its
 * peer's kicks), and a busy poller must keep them masked. */
static int idle_collect_fds(struct pollfd *fds, struct ust_stack **owner, int *ndev)
{
    int n = 0;
    for (int i = 0; i < tls_nctx; i++) {
        struct ust_stack *s = tls_list[i]->s;
        if (!s->dev.ops->poll_fds || n >= IDLE_FDS - 1)
            continue;
        int k = s->dev.ops->poll_fds(&s->dev, fds + n, IDLE_FDS - 1 - n);
        for (int j = 0; j < k; j++)
            owner[n + j] = s;
        n += k > 0 ? k : 0;
    }
    *ndev = n;
    /* Bells of forwarded calls: the pump after the wake clears them. */
    for (int i = 0; i < tls_nctx && n < IDLE_FDS - 1; i++) {
        int bfd = fwd_bell_fd(tls_list[i]->id);
        if (bfd >= 0) {
            fds[n] = (struct pollfd){.fd = bfd, .events = POLLIN};
            owner[n++] = NULL;
        }
    }
    return n;
}

static int idle_virtual(uint64_t deadline, int extra_fd)
{
    if (extra_fd >= 0) {
        struct pollfd p = {.fd = extra_fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0)
            return 1;
    }
    tls_idle(tls_clock_arg, deadline);
    return 0;
}

int sock_idle(uint64_t deadline, int extra_fd)
{
    if (tls_idle)
        return idle_virtual(deadline, extra_fd);
    struct pollfd fds[IDLE_FDS];
    struct ust_stack *owner[IDLE_FDS];
    if (idle_busy() || deadline <= ust_now_ns())
        return 0;
    int ndev = 0;
    int n = idle_collect_fds(fds, owner, &ndev);
    uint64_t now = ust_now_ns();
    if (deadline <= now)
        return 0;
    uint64_t wait = deadline - now < IDLE_MAX_NS ? deadline - now : IDLE_MAX_NS;
    if (n == 0 && extra_fd < 0) {
        if (wait > IDLE_NOFD_NS)
            wait = IDLE_NOFD_NS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (ndev == 0 && wait > IDLE_NOFD_NS)
        wait = IDLE_NOFD_NS;   /* a backend without fds still needs polling */
    if (extra_fd >= 0)
        fds[n++] = (struct pollfd){.fd = extra_fd, .events = POLLIN};
    /* Round up so we never wake just before the deadline and spin. */
    if (poll(fds, (nfds_t)n, (int)((wait + 999999) / 1000000)) <= 0)
        return 0;
    int extra_ready = 0;
    for (int i = 0; i < n; i++) {
        if (!fds[i].revents)
            continue;
        if (extra_fd >= 0 && i == n - 1)
            extra_ready = 1;
        else if (owner[i])
            owner[i]->dev_next = 0;   /* maybe control traffic: service it */
    }
    return extra_ready;
}

int ust_socket_run(int timeout_ms)
{
    if (ust_coro_self()) {   /* the loop runs the stacks: let it */
        ust_coro_yield();
        return 0;
    }
    int did;
    uint64_t next = sock_pump(&did);
    if (did || timeout_ms == 0)
        return 0;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : sock_deadline_after((uint64_t)timeout_ms * 1000000ULL);
    sock_idle(next < deadline ? next : deadline, -1);
    return 0;
}

static int block_ready(struct usock *sk, uint32_t events)
{
    return (usock_events(sk) & (events | EPOLLERR | EPOLLHUP)) != 0;
}

/* sk after a wait, or NULL (EBADF) when it was closed meanwhile. */
static struct usock *block_recheck(int fd, uint64_t serial)
{
    struct sobj *o = sobj_recheck(fd, serial);
    if (!o)
        errno = EBADF;
    return (struct usock *)o;
}

/* Inside a coroutine: suspend it on sk's wait queue; usock_wake (readiness
 * changed), fd_release (closed) or the deadline resumes it. */
static int block_coro(struct usock *sk, uint32_t events, uint64_t deadline)
{
    int fd = sk->o.fd;
    uint64_t serial = sk->o.serial;
    for (;;) {
        int rc = ust_coro_wait_on(&sk->o.waiters, deadline);
        if (!(sk = block_recheck(fd, serial)))
            return -1;
        if (block_ready(sk, events))
            return 0;
        if (rc == ETIMEDOUT || sock_now() >= deadline) {
            errno = EAGAIN;
            return -1;
        }
    }
}

/* Plain code: run the thread's stacks and coroutines until sk is ready. */
static int block_loop(struct usock *sk, uint32_t events, uint64_t deadline)
{
    int fd = sk->o.fd;
    uint64_t serial = sk->o.serial;
    for (;;) {
        int did;
        uint64_t next = sock_pump(&did);
        if (!(sk = block_recheck(fd, serial)))   /* a coroutine closed it */
            return -1;
        if (block_ready(sk, events))
            return 0;
        if (sock_pump_now() >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        if (!did)
            sock_idle(next < deadline ? next : deadline, -1);
    }
}

int sock_block(struct usock *sk, uint32_t events, uint64_t deadline)
{
    if (block_ready(sk, events))
        return 0;
    if (ust_coro_self())
        return block_coro(sk, events, deadline);
    if (ust_block_hook) {
        int fd = sk->o.fd;
        uint64_t serial = sk->o.serial;
        int r = ust_block_hook(fd, events, deadline);
        if (r != UST_BLOCK_DEFAULT)
            return r == 0 && !block_recheck(fd, serial) ? -1 : r;
    }
    return block_loop(sk, events, deadline);
}

/* ---- hooks for the stack's own loop (forward.h) ---- */

static struct sock_ctx *ctx_here(const struct ust_stack *s)
{
    for (int i = 0; i < tls_nctx; i++)
        if (tls_list[i]->s == s)
            return tls_list[i];
    return NULL;
}

uint64_t sockfwd_stack_serve(struct ust_stack *s)
{
    struct sock_ctx *c = ctx_here(s);
    if (!c)
        return UINT64_MAX;
    int did = 0;
    uint64_t next = fwd_serve(c->id, &did);
    if (did)
        s->did_work = 1;
    return next;
}

int sockfwd_poll_fds(struct ust_stack *s, struct pollfd *fds, int max)
{
    struct sock_ctx *c = ctx_here(s);
    int bfd = c ? fwd_bell_fd(c->id) : -1;
    if (bfd < 0 || max < 1)
        return 0;
    fds[0] = (struct pollfd){.fd = bfd, .events = POLLIN};
    return 1;
}
