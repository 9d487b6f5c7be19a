/* Coroutines on a stack's thread (include/ustack/coro.h).
 *
 * Each struct ust_stack used with coroutines gets a scheduler: a FIFO of
 * ready coroutines, a timing wheel for deadlines and a bounded free list of
 * stacks. Switching is asymmetric: the loop (ust_coro_run_ready) resumes a
 * coroutine, which runs until it yields, waits or ends and then switches back
 * to the loop, so each resume costs two context switches.
 *
 * Memory: one mmap per coroutine holds [guard page | stack | struct ust_coro],
 * so a coroutine costs no malloc and its descriptor is reused with its stack.
 *
 * Context switch: on x86-64 a few instructions saving the callee-saved
 * registers and rsp (System V ABI; the FPU control words are not switched, so
 * coroutines share the thread's rounding mode). Elsewhere, or when built with
 * -DUST_CORO_UCONTEXT, makecontext/swapcontext, which is portable but makes a
 * sigprocmask system call on every switch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/sock.h"
#include "core/wheel.h"
#include "net/stack.h"
#include "ustack/coro.h"

#define CORO_CACHE_MAX 1024     /* finished stacks kept for reuse            */
#define CORO_CACHE_SCAN 8       /* free-list entries looked at for a size    */

/* ---- AddressSanitizer: it must know which stack is current ---- */

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define CORO_ASAN 1
#endif

#ifdef CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define san_start_switch(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define san_finish_switch(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#define san_unpoison(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define san_start_switch(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define san_finish_switch(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define san_unpoison(addr, size) ((void)(addr), (void)(size))
#endif

/* ---- the context switch: one implementation per build ---- */

#if defined(__x86_64__) && !defined(UST_CORO_UCONTEXT)

struct coro_ctx {
    void *sp;
};

/* Saves rbp, rbx, r12-r15 on the current stack, stores rsp in *save_sp,
 * loads new_sp and pops the same registers of the other context. */
void ust_coro__switch(void **save_sp, void *new_sp) __attribute__((visibility("hidden")));
__asm__(".text\n"
        ".globl ust_coro__switch\n"
        ".hidden ust_coro__switch\n"
        ".type ust_coro__switch,@function\n"
        ".p2align 4\n"
        "ust_coro__switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size ust_coro__switch, .-ust_coro__switch\n");

/* Lay out a stack so that the first switch to it pops six zero registers and
 * "returns" into entry with rsp % 16 == 8, as if entry had been called; the
 * zero return address above ends backtraces there. */
static void ctx_init(struct coro_ctx *c, void *lo, size_t size, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    void **sp = (void **)(top - 8 * sizeof(void *));
    for (int i = 0; i < 6; i++)
        sp[i] = NULL;
    sp[6] = (void *)entry;
    sp[7] = NULL;
    c->sp = sp;
}

static void ctx_switch(struct coro_ctx *from, struct coro_ctx *to) { ust_coro__switch(&from->sp, to->sp); }

#else /* portable fallback */

#include <ucontext.h>

struct coro_ctx {
    ucontext_t uc;
};

static void ctx_init(struct coro_ctx *c, void *lo, size_t size, void (*entry)(void))
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    makecontext(&c->uc, entry, 0);
}

static void ctx_switch(struct coro_ctx *from, struct coro_ctx *to) { swapcontext(&from->uc, &to->uc); }

#endif

/* ---- coroutines and schedulers ---- */

enum coro_state { CORO_READY, CORO_RUNNING, CORO_WAITING, CORO_DEAD };

struct coro_sched;

struct ust_coro {
    struct coro_ctx ctx;
    struct coro_sched *sched;
    void (*fn)(void *);
    void *arg;
    struct ust_coro *next;             /* ready FIFO or free list             */
    struct ust_coro *all_next, *all_prev;   /* every live coroutine           */
    struct ust_coro_waitq *wq;         /* the queue it waits on, if any       */
    struct ust_coro *wq_next, *wq_prev;
    struct timer timer;                /* its deadline                        */
    void *map;                         /* the whole mapping                   */
    size_t map_len;
    void *stack_lo;                    /* usable stack, above the guard page  */
    size_t stack_size;
    size_t size_class;                 /* requested size, for reuse           */
    void *asan_fake;                   /* ASan fake stack while switched out  */
    uint8_t state;
    uint8_t wake_pending;              /* woken while not waiting             */
    uint8_t timed_out;
};

struct coro_sched {
    struct ust_stack *s;
    struct coro_sched *next;           /* this thread's schedulers            */
    struct coro_ctx loop;              /* the context of ust_coro_run_ready   */
    struct wheel wheel;
    uint64_t now;
    struct ust_coro *ready_first, *ready_last;
    struct ust_coro *all;
    struct ust_coro *free;
    uint32_t nready, nfree;
    uint64_t spawned, finished, switches, mapped;
    void *loop_asan_fake;
    const void *loop_bottom;           /* the loop's stack, for ASan          */
    size_t loop_size;
};

static __thread struct ust_coro *tls_current;
static __thread struct coro_sched *tls_scheds;

static size_t page_size(void)
{
    static size_t page;
    if (!page)
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Schedulers are found by stack; a thread rarely has more than one or two,
 * and the one found is moved to the front. */
static struct coro_sched *sched_find(const struct ust_stack *s)
{
    for (struct coro_sched **pp = &tls_scheds; *pp; pp = &(*pp)->next) {
        struct coro_sched *sc = *pp;
        if (sc->s != s)
            continue;
        *pp = sc->next;
        sc->next = tls_scheds;
        tls_scheds = sc;
        return sc;
    }
    return NULL;
}

static struct coro_sched *sched_get(struct ust_stack *s)
{
    struct coro_sched *sc = sched_find(s);
    if (sc)
        return sc;
    sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    sc->s = s;
    sc->now = s->now;
    wheel_init(&sc->wheel, s->now);
    sc->next = tls_scheds;
    tls_scheds = sc;
    return sc;
}

static uint64_t sched_clock(const struct coro_sched *sc) { return sc->now > sc->s->now ? sc->now : sc->s->now; }

/* ---- stacks ---- */

static void stack_unmap(struct ust_coro *co)
{
    /* ASan keeps shadow bytes across munmap: clear them so whatever is mapped
     * here next does not inherit stale poison. */
    san_unpoison(co->stack_lo, co->stack_size);
    munmap(co->map, co->map_len);
}

static struct ust_coro *stack_map(struct coro_sched *sc, size_t size_class)
{
    size_t page = page_size();
    size_t head = round_up(sizeof(struct ust_coro), 64);
    size_t len = page + round_up(size_class + head, page);
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* The stack grows down into this page: an overflow faults right away. */
    if (mprotect(m, page, PROT_NONE) < 0) {
        munmap(m, len);
        return NULL;
    }
    sc->mapped++;
    struct ust_coro *co = (struct ust_coro *)(void *)((char *)m + len - head);
    co->map = m;
    co->map_len = len;
    co->stack_lo = (char *)m + page;
    co->stack_size = (size_t)((char *)co - (char *)co->stack_lo);
    co->size_class = size_class;
    san_unpoison(co->stack_lo, co->stack_size);
    return co;
}

static struct ust_coro *stack_take_cached(struct coro_sched *sc, size_t size_class)
{
    struct ust_coro **pp = &sc->free;
    for (int i = 0; *pp && i < CORO_CACHE_SCAN; i++, pp = &(*pp)->next) {
        struct ust_coro *co = *pp;
        if (co->size_class != size_class)
            continue;
        *pp = co->next;
        sc->nfree--;
        /* Frames left by the last run (its exit path never returned) may
         * still be poisoned. */
        san_unpoison(co->stack_lo, co->stack_size);
        return co;
    }
    return NULL;
}

static void stack_release(struct coro_sched *sc, struct ust_coro *co)
{
    if (sc->nfree >= CORO_CACHE_MAX) {
        stack_unmap(co);
        return;
    }
    co->next = sc->free;
    sc->free = co;
    sc->nfree++;
}

/* ---- lists ---- */

static void ready_push(struct coro_sched *sc, struct ust_coro *co)
{
    co->state = CORO_READY;
    co->next = NULL;
    if (sc->ready_last)
        sc->ready_last->next = co;
    else
        sc->ready_first = co;
    sc->ready_last = co;
    sc->nready++;
}

static struct ust_coro *ready_pop(struct coro_sched *sc)
{
    struct ust_coro *co = sc->ready_first;
    if (!co)
        return NULL;
    sc->ready_first = co->next;
    if (!sc->ready_first)
        sc->ready_last = NULL;
    sc->nready--;
    return co;
}

static void all_link(struct coro_sched *sc, struct ust_coro *co)
{
    co->all_prev = NULL;
    co->all_next = sc->all;
    if (sc->all)
        sc->all->all_prev = co;
    sc->all = co;
}

static void all_unlink(struct coro_sched *sc, struct ust_coro *co)
{
    if (co->all_prev)
        co->all_prev->all_next = co->all_next;
    else
        sc->all = co->all_next;
    if (co->all_next)
        co->all_next->all_prev = co->all_prev;
}

static void waitq_append(struct ust_coro_waitq *q, struct ust_coro *co)
{
    co->wq = q;
    co->wq_next = NULL;
    co->wq_prev = q->last;
    if (q->last)
        q->last->wq_next = co;
    else
        q->first = co;
    q->last = co;
}

static void waitq_remove(struct ust_coro *co)
{
    struct ust_coro_waitq *q = co->wq;
    if (!q)
        return;
    if (co->wq_prev)
        co->wq_prev->wq_next = co->wq_next;
    else
        q->first = co->wq_next;
    if (co->wq_next)
        co->wq_next->wq_prev = co->wq_prev;
    else
        q->last = co->wq_prev;
    co->wq = NULL;
    co->wq_next = co->wq_prev = NULL;
}

/* ---- switching ---- */

/* From the loop into co, until co switches back. */
static void sched_resume(struct coro_sched *sc, struct ust_coro *co)
{
    co->state = CORO_RUNNING;
    tls_current = co;
    san_start_switch(&sc->loop_asan_fake, co->stack_lo, co->stack_size);
    ctx_switch(&sc->loop, &co->ctx);
    san_finish_switch(sc->loop_asan_fake, NULL, NULL);
    tls_current = NULL;
    sc->switches += 2;
    if (co->state == CORO_DEAD)
        stack_release(sc, co);    /* only now: we were running on it */
}

/* From the running coroutine back to the loop; returns when resumed. */
static void coro_suspend(struct ust_coro *co)
{
    struct coro_sched *sc = co->sched;
    san_start_switch(&co->asan_fake, sc->loop_bottom, sc->loop_size);
    ctx_switch(&co->ctx, &sc->loop);
    san_finish_switch(co->asan_fake, &sc->loop_bottom, &sc->loop_size);
}

static __attribute__((noreturn)) void coro_entry(void)
{
    struct ust_coro *co = tls_current;
    struct coro_sched *sc = co->sched;
    san_finish_switch(NULL, &sc->loop_bottom, &sc->loop_size);
    co->fn(co->arg);
    co->state = CORO_DEAD;
    sc->finished++;
    all_unlink(sc, co);
    /* A NULL save slot tells ASan this stack is gone (frees its fake stack). */
    san_start_switch(NULL, sc->loop_bottom, sc->loop_size);
    ctx_switch(&co->ctx, &sc->loop);
    abort();   /* a dead coroutine is never resumed */
}

/* ---- timers ---- */

static void coro_deadline(struct timer *t, uint64_t now)
{
    (void)now;
    struct ust_coro *co = container_of(t, struct ust_coro, timer);
    if (co->state != CORO_WAITING)
        return;
    co->timed_out = 1;
    ready_push(co->sched, co);
}

/* ---- public API ---- */

int ust_coro_spawn(struct ust_stack *s, void (*fn)(void *), void *arg, size_t stack_size)
{
    if (!s || !fn || (stack_size && stack_size < UST_CORO_STACK_MIN) || stack_size > ((size_t)1 << 40)) {
        errno = EINVAL;
        return -1;
    }
    size_t size_class = round_up(stack_size ? stack_size : UST_CORO_STACK_DEFAULT, page_size());
    struct coro_sched *sc = sched_get(s);
    if (!sc) {
        errno = ENOMEM;
        return -1;
    }
    struct ust_coro *co = stack_take_cached(sc, size_class);
    if (!co)
        co = stack_map(sc, size_class);
    if (!co) {
        errno = ENOMEM;
        return -1;
    }
    co->sched = sc;
    co->fn = fn;
    co->arg = arg;
    co->wq = NULL;
    co->wq_next = co->wq_prev = NULL;
    co->asan_fake = NULL;
    co->wake_pending = 0;
    co->timed_out = 0;
    timer_init(&co->timer, coro_deadline);
    ctx_init(&co->ctx, co->stack_lo, co->stack_size, coro_entry);
    all_link(sc, co);
    ready_push(sc, co);
    sc->spawned++;
    return 0;
}

struct ust_coro *ust_coro_self(void) { return tls_current; }

struct ust_stack *ust_coro_stack(const struct ust_coro *c) { return c ? c->sched->s : NULL; }

void ust_coro_yield(void)
{
    struct ust_coro *co = tls_current;
    if (!co)
        return;
    ready_push(co->sched, co);
    coro_suspend(co);
}

int ust_coro_wait(uint64_t deadline_ns)
{
    struct ust_coro *co = tls_current;
    if (!co)
        return EPERM;
    if (co->wake_pending) {
        co->wake_pending = 0;
        return 0;
    }
    struct coro_sched *sc = co->sched;
    if (deadline_ns <= sched_clock(sc))
        return ETIMEDOUT;
    co->timed_out = 0;
    co->state = CORO_WAITING;
    if (deadline_ns != UST_CORO_NO_DEADLINE)
        wheel_add(&sc->wheel, &co->timer, deadline_ns);
    coro_suspend(co);
    if (timer_pending(&co->timer))
        wheel_del(&sc->wheel, &co->timer);
    /* A wake that came before we ran again counts even if the deadline fired
     * too: the caller re-checks, and its next wait times out at once. */
    int woken = !co->timed_out || co->wake_pending;
    co->wake_pending = 0;
    return woken ? 0 : ETIMEDOUT;
}

void ust_coro_wake(struct ust_coro *c)
{
    if (!c || c->state == CORO_DEAD)
        return;
    if (c->state != CORO_WAITING) {
        c->wake_pending = 1;
        return;
    }
    if (timer_pending(&c->timer))
        wheel_del(&c->sched->wheel, &c->timer);
    ready_push(c->sched, c);
}

void ust_coro_sleep(uint64_t ns)
{
    struct ust_coro *co = tls_current;
    if (!co)
        return;
    uint64_t now = sched_clock(co->sched);
    uint64_t deadline = ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ns;
    while (ust_coro_wait(deadline) != ETIMEDOUT) {
    }
}

uint64_t ust_coro_now(struct ust_stack *s)
{
    struct coro_sched *sc = sched_find(s);
    return sc ? sched_clock(sc) : s->now;
}

int ust_coro_wait_on(struct ust_coro_waitq *q, uint64_t deadline_ns)
{
    struct ust_coro *co = tls_current;
    if (!co)
        return EPERM;
    waitq_append(q, co);
    int rc = ust_coro_wait(deadline_ns);
    waitq_remove(co);
    return rc;
}

int ust_coro_wake_one(struct ust_coro_waitq *q)
{
    struct ust_coro *co = q->first;
    if (!co)
        return 0;
    waitq_remove(co);
    ust_coro_wake(co);
    return 1;
}

int ust_coro_wake_all(struct ust_coro_waitq *q)
{
    int n = 0;
    while (ust_coro_wake_one(q))
        n++;
    return n;
}

/* Runs the coroutines ready at the start, once each; *ran counts them. */
static uint64_t sched_run(struct coro_sched *sc, uint64_t now, uint32_t *ran)
{
    if (now > sc->now)
        sc->now = now;
    wheel_run(&sc->wheel, now);
    uint32_t n = sc->nready;
    *ran = 0;
    for (; n && sc->ready_first; n--, (*ran)++)
        sched_resume(sc, ready_pop(sc));
    return sc->ready_first ? now : wheel_next_deadline(&sc->wheel);
}

uint64_t coro_run_ready_ran(struct ust_stack *s, uint64_t now, int *ran)
{
    *ran = 0;
    if (tls_current)
        return now;
    struct coro_sched *sc = sched_find(s);
    if (!sc)
        return UINT64_MAX;
    uint32_t n;
    uint64_t next = sched_run(sc, now, &n);
    *ran = n != 0;
    return next;
}

uint64_t ust_coro_run_ready(struct ust_stack *s, uint64_t now)
{
    int ran;
    return coro_run_ready_ran(s, now, &ran);
}

/* One loop iteration on the real clock, sleeping at most until limit. */
static void coro_loop_once(struct ust_stack *s, uint64_t limit)
{
    uint64_t now = ust_now_ns();
    uint64_t next = ust_stack_poll(s, now);
    struct coro_sched *sc = sched_find(s);
    uint32_t ran = 0;
    if (sc) {
        uint64_t c = sched_run(sc, now, &ran);
        next = c < next ? c : next;
    }
    if (limit < next)
        next = limit;
    if (!ran)   /* what coroutines queued is flushed by the next poll, now */
        ust_stack_wait(s, next);
}

static int coro_any_live(const struct ust_stack *s)
{
    const struct coro_sched *sc = sched_find(s);
    return sc && sc->all;
}

void ust_coro_run(struct ust_stack *s, volatile sig_atomic_t *stop)
{
    if (tls_current)
        return;
    while (stop ? !*stop : coro_any_live(s))
        coro_loop_once(s, UINT64_MAX);
    ust_stack_poll(s, ust_now_ns());   /* flush what the last ones sent */
}

int ust_coro_block(struct ust_stack *s, struct ust_coro_waitq *q, uint64_t deadline_ns)
{
    if (tls_current)
        return ust_coro_wait_on(q, deadline_ns);
    if (ust_now_ns() >= deadline_ns)
        return ETIMEDOUT;
    coro_loop_once(s, deadline_ns);
    return 0;
}

void ust_coro_shutdown(struct ust_stack *s)
{
    if (tls_current)
        return;
    struct coro_sched *sc = sched_find(s);
    if (!sc)
        return;
    tls_scheds = sc->next;   /* sched_find moved it to the front */
    while (sc->all) {
        struct ust_coro *co = sc->all;
        all_unlink(sc, co);
        waitq_remove(co);
        stack_unmap(co);
    }
    while (sc->free) {
        struct ust_coro *co = sc->free;
        sc->free = co->next;
        stack_unmap(co);
    }
    free(sc);
}

int ust_coro_stats(struct ust_stack *s, struct ust_coro_stats *out)
{
    struct coro_sched *sc = sched_find(s);
    if (!sc) {
        errno = ENOENT;
        return -1;
    }
    *out = (struct ust_coro_stats){
        .spawned = sc->spawned,
        .finished = sc->finished,
        .live = sc->spawned - sc->finished,
        .ready = sc->nready,
        .switches = sc->switches,
        .stacks_mapped = sc->mapped,
        .stacks_cached = sc->nfree,
    };
    return 0;
}
