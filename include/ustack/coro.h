/* ustack coroutines: blocking-style code on a stack's own thread.
 *
 * Thousands of coroutines share the thread that owns a struct ust_stack. A
 * coroutine runs until it yields, waits or returns; nothing preempts it, so
 * coroutines of one stack need no locks among themselves. Each has its own
 * stack (mmapped, default 64 KiB, a PROT_NONE guard page below it so an
 * overflow faults instead of corrupting a neighbour); stacks of finished
 * coroutines are kept on a bounded free list and reused.
 *
 * The loop that drives a stack also drives its coroutines:
 *
 *     ust_coro_spawn(s, handler, arg, 0);
 *     ust_coro_run(s, stop);          // poll -> run ready coroutines -> wait
 *
 * or, for a loop of your own (or a virtual clock in tests):
 *
 *     next = ust_stack_poll(s, now);
 *     next2 = ust_coro_run_ready(s, now);
 *     ...sleep until min(next, next2) unless coroutines ran...
 *
 * Sockets (ustack/socket.h, ustack/epoll.h): inside a coroutine, a blocking
 * call that cannot complete (ust_accept, ust_connect, ust_read, ust_write,
 * ust_recvfrom, ..., ust_epoll_wait) suspends only that coroutine until the
 * socket's readiness changes, its SO_RCVTIMEO / SO_SNDTIMEO deadline passes
 * (EAGAIN; connect: EINPROGRESS) or another coroutine closes it (EBADF).
 * Sockets created inside a coroutine belong to the coroutine's stack when
 * that stack is attached to the thread (ust_socket_attach). Plain code
 * blocking in a socket call, or in ust_epoll_wait / ust_socket_run, runs
 * the coroutines of every attached stack while it waits, so both styles mix
 * on one thread. A program made only of coroutines drives them with
 * ust_coro_run (one stack) or a ust_socket_run loop (several).
 *
 * Time: deadlines are absolute ns on the clock the loop passes in
 * (ust_now_ns() for ust_coro_run); ust_coro_now() reads it. They are kept on a
 * timing wheel, so a deadline fires at or up to ~1 ms (one wheel tick) after
 * the time asked for.
 *
 * Every function here must be called on the stack's thread. */
#ifndef USTACK_CORO_H
#define USTACK_CORO_H

#include "ustack/ustack.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ust_coro;

#define UST_CORO_STACK_DEFAULT (64u * 1024u)
#define UST_CORO_STACK_MIN (16u * 1024u)
#define UST_CORO_NO_DEADLINE UINT64_MAX

/* A FIFO of waiting coroutines, e.g. the readers of one socket. Zero-filled
 * memory is an empty queue. Embed it in the object waited on. */
struct ust_coro_waitq {
    struct ust_coro *first;
    struct ust_coro *last;
};

/* Start fn(arg) as a coroutine of s. It first runs from the next
 * ust_coro_run_ready (never inside this call), so spawning from inside a
 * coroutine or an event callback is fine. stack_size 0 means the default;
 * otherwise at least UST_CORO_STACK_MIN, rounded up to whole pages. When fn
 * returns, the coroutine ends and its stack goes back to the free list.
 * 0, or -1 and errno: EINVAL (stack_size), ENOMEM. */
UST_API int ust_coro_spawn(struct ust_stack *s, void (*fn)(void *), void *arg, size_t stack_size);

/* The running coroutine, or NULL outside one (the loop's own context). */
UST_API struct ust_coro *ust_coro_self(void);
/* The stack c was spawned on (NULL for NULL). */
UST_API struct ust_stack *ust_coro_stack(const struct ust_coro *c);

/* Let every other ready coroutine, and the network, run; this coroutine runs
 * again in the next ust_coro_run_ready. No effect outside a coroutine. */
UST_API void ust_coro_yield(void);

/* Suspend the running coroutine until ust_coro_wake() is called on it or the
 * deadline passes. Returns 0 when woken, ETIMEDOUT when the deadline passed,
 * EPERM outside a coroutine. A wake that arrives while the coroutine is not
 * waiting is remembered and makes its next wait return 0 at once, so no wake
 * is ever lost; the price is that 0 may be spurious: re-check the condition
 * waited for, as with a condition variable. */
UST_API int ust_coro_wait(uint64_t deadline_ns);

/* Make c runnable if it waits (else remember the wake, see above). c must be
 * a live coroutine: keep its handle only while it waits. */
UST_API void ust_coro_wake(struct ust_coro *c);

/* Suspend the running coroutine for at least ns (wakes do not cut it short).
 * Outside a coroutine it returns at once. */
UST_API void ust_coro_sleep(uint64_t ns);

/* The coroutine clock of s: the last time passed to ust_coro_run_ready or
 * ust_stack_poll, whichever is later. Use it to turn a timeout into a
 * deadline: ust_coro_now(s) + timeout. */
UST_API uint64_t ust_coro_now(struct ust_stack *s);

/* ---- wait queues: what a socket's blocking calls use ---- */

/* Enqueue the running coroutine on q and wait (same results as
 * ust_coro_wait); it leaves q however the wait ends. */
UST_API int ust_coro_wait_on(struct ust_coro_waitq *q, uint64_t deadline_ns);
/* Wake the longest-waiting coroutine of q / all of them. Returns how many
 * were woken. Safe to call from event callbacks inside ust_stack_poll. */
UST_API int ust_coro_wake_one(struct ust_coro_waitq *q);
UST_API int ust_coro_wake_all(struct ust_coro_waitq *q);

/* Blocking on an object of your own (ustack's sockets already do this
 * internally, see "Sockets" above). A call that would block does:
 *
 *     for (;;) {
 *         if (ready(obj)) break;                          // do the call
 *         int rc = ust_coro_block(s, &obj->waiters, deadline);
 *         if (rc) { errno = rc == ETIMEDOUT ? EAGAIN : rc; return -1; }
 *     }
 *
 * and whatever makes obj ready calls ust_coro_wake_all(&obj->waiters).
 * Inside a coroutine this is ust_coro_wait_on(q, deadline). Outside one (a
 * plain blocking program) it runs the loop once instead: poll the stack at
 * ust_now_ns(), run ready coroutines, sleep on the device until the next
 * deadline or frame (at most until deadline); then 0, or ETIMEDOUT once
 * ust_now_ns() >= deadline. Either way 0 means "re-check". Never call it from
 * an event callback (that would re-enter ust_stack_poll). */
UST_API int ust_coro_block(struct ust_stack *s, struct ust_coro_waitq *q, uint64_t deadline_ns);

/* ---- the scheduler ---- */

/* Fire expired deadlines at now, then run each coroutine that is ready,
 * once, in FIFO order (ones that become ready meanwhile run next time).
 * Returns the time by which it must be called again: now when coroutines
 * are still ready, else the earliest deadline, UINT64_MAX when none. Must not
 * be called from inside a coroutine (it then returns now and does nothing). */
UST_API uint64_t ust_coro_run_ready(struct ust_stack *s, uint64_t now);

/* ust_stack_poll -> ust_coro_run_ready -> ust_stack_wait (skipped when any
 * coroutine ran, so what it sent is flushed at once) on the ust_now_ns clock,
 * until *stop becomes non-zero; with stop NULL, until no coroutine of s is
 * left. */
UST_API void ust_coro_run(struct ust_stack *s, volatile sig_atomic_t *stop);

/* Free every coroutine stack of s. Coroutines still suspended are abandoned
 * without running further (their own resources are theirs to leak). Call
 * before ust_stack_destroy, outside any coroutine. */
UST_API void ust_coro_shutdown(struct ust_stack *s);

struct ust_coro_stats {
    uint64_t spawned;         /* coroutines started                          */
    uint64_t finished;        /* coroutines whose function returned          */
    uint64_t live;            /* spawned - finished (ready or waiting)       */
    uint64_t ready;           /* waiting for their turn to run               */
    uint64_t switches;        /* context switches (two per resume)           */
    uint64_t stacks_mapped;   /* mmap calls made for coroutine stacks        */
    uint64_t stacks_cached;   /* stacks on the free list now                 */
};
/* 0, or -1 (ENOENT) when s never had a coroutine. */
UST_API int ust_coro_stats(struct ust_stack *s, struct ust_coro_stats *out);

#ifdef __cplusplus
}
#endif

#endif
