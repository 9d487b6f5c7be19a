/* ustack workers: several stacks in one process, one per thread, each with
 * its own device queue (DESIGN.md "Several workers"). See docs/WORKERS.md.
 *
 * Every worker runs the same setup (opening the same listening ports: the
 * SO_REUSEPORT model); flows are spread by ustack's 4-tuple hash, and a
 * packet that lands on a worker other than its flow's owner is handed over
 * through bounded single-producer/single-consumer rings. Each struct
 * ust_stack, and everything opened on it, belongs to its worker's thread.
 * Socket calls (socket.h) on its descriptors from any other thread are
 * forwarded to that thread and run there; the raw ust_tcp_* / ust_udp_*
 * handles and epoll instances must only be used from the owning thread. */
#ifndef USTACK_WORKERS_H
#define USTACK_WORKERS_H

#include "ustack/ustack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on worker `worker`'s thread once its stack exists, before any packet
 * moves: open listeners and sockets here. Non-zero fails the whole start. */
typedef int (*ust_worker_setup_fn)(struct ust_stack *s, int worker, void *arg);
/* Runs on the worker's thread after its loop stopped, before its stack is
 * destroyed: print stats, close what setup opened. May be NULL. */
typedef void (*ust_worker_fini_fn)(struct ust_stack *s, int worker, void *arg);

/* Runs on the worker's thread after every worker's setup, in place of the
 * built-in poll loop: drive the stack (e.g. a ust_epoll_wait loop, which
 * polls it) and return soon after *stop becomes non-zero. */
typedef void (*ust_worker_loop_fn)(struct ust_stack *s, int worker, void *arg, volatile sig_atomic_t *stop);

/* Start the configured number of workers (--workers N, 1 to 64), run them
 * until *stop becomes non-zero, stop and join them. With one worker this is
 * ust_stack_create + setup + ust_stack_run on a thread of its own. Returns 0,
 * or -1 when a stack or a setup failed (message on stderr). */
UST_API int ust_workers_run(const struct ust_config *cfg, ust_worker_setup_fn setup, ust_worker_fini_fn fini,
                            void *arg, volatile sig_atomic_t *stop);
/* The same with an event loop of the program's own on every worker. */
#define UST_WORKERS_HAVE_LOOP 1
UST_API int ust_workers_run_loop(const struct ust_config *cfg, ust_worker_setup_fn setup, ust_worker_loop_fn loop,
                                 ust_worker_fini_fn fini, void *arg, volatile sig_atomic_t *stop);

/* The --workers value of a configuration. */
UST_API unsigned ust_config_workers(const struct ust_config *cfg);
/* This stack's worker index (0 for a stack made by ust_stack_create) and
 * how many workers its group has (1 alone). */
UST_API int ust_stack_worker(const struct ust_stack *s);
UST_API int ust_stack_workers(const struct ust_stack *s);
/* ust_stack_print_stats with every line prefixed "wN " (N: worker index). */
UST_API void ust_worker_print_stats(const struct ust_stack *s, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
