/* The packetdrill adapter's internals (libustack-packetdrill.so).
 *
 * Threads. ustack descriptors belong to the thread that drives their stack,
 * but packetdrill calls from two threads (blocking system calls run on a
 * second one). So the adapter owns a stack thread that creates the stack,
 * attaches it and runs it; every socket call is a request (struct pd_req)
 * that the calling thread queues and then sleeps on a condition variable
 * until the stack thread has completed it. The stack thread runs a
 * request's step with the socket in non-blocking mode; a step that would
 * block stays queued and is retried after every stack poll until it can
 * complete or its deadline (SO_RCVTIMEO / SO_SNDTIMEO, a poll or epoll
 * timeout) passes. One mutex (pd.mu) guards the stack, the queue and the
 * descriptor map; the stack thread releases it only while it sleeps.
 *
 * Descriptors. packetdrill sees real kernel descriptors: an eventfd per
 * ustack socket or epoll instance, mapped to the ustack descriptor. If
 * packetdrill close()s one behind the adapter's back, the number is
 * eventually handed out again by the kernel; the adapter notices when it
 * makes a new eventfd with a number still mapped and releases the stale
 * ustack socket then.
 *
 * Packets and time. The device is a pdlink (dev/pdlink.h): netdev_send
 * queues a packet toward the stack and wakes the stack thread;
 * netdev_receive sleeps in pdlink_take. Every time the adapter reports is
 * ust_now_ns() plus a fixed offset to the wall clock taken at start, so the
 * gettimeofday hook and the packets' send times are on one clock. */
#ifndef UST_PD_ADAPTER_H
#define UST_PD_ADAPTER_H

#include <pthread.h>
#include <stdint.h>

#include "pd_interface.h"

#define PD_FD_MAX 4096            /* kernel descriptors the map can hold   */

struct ust_stack;
struct pdlink;
struct pd;

enum pd_kind { PD_FREE = 0, PD_SOCK, PD_EPOLL };

struct pd_fd {
    int ust;                      /* the ustack descriptor                 */
    uint8_t kind;                 /* enum pd_kind                          */
    uint8_t nonblock;             /* O_NONBLOCK as packetdrill set it      */
};

/* One queued call. step runs on the stack thread with pd.mu held and
 * returns 1 when the call is complete (ret and err set, see pd_finish) or
 * 0 to be retried after the next stack poll. */
struct pd_req {
    int (*step)(struct pd *a, struct pd_req *r);
    struct pd_req *next;
    long ret;
    int err;
    int done;
    int waiting;                  /* step returned 0 at least once         */
    uint64_t deadline;            /* while waiting: UINT64_MAX = none      */
    int kernel_fds;               /* waits on kernel fds too: poll them often */
};

struct pd {
    pthread_mutex_t mu;
    pthread_cond_t changed;       /* a request completed, or start finished */
    pthread_t thread;
    int wake_fd;                  /* eventfd: a request was queued / stop   */
    int stop;
    int started;                  /* 1 ok, -1 failed, 0 starting            */
    struct ust_config *cfg;       /* consumed by the stack thread           */
    struct ust_stack *stack;
    struct pdlink *link;
    int64_t wall_offset_ns;       /* wall clock minus ust_now_ns            */
    struct pd_req *head, **tail;
    struct pd_fd fds[PD_FD_MAX];
};

/* Queue r, wake the stack thread, sleep until r is complete. Returns
 * r->ret with errno = r->err. */
long pd_call(struct pd *a, struct pd_req *r);
/* Complete r with ret (errno taken as its error when ret < 0). Returns 1. */
int pd_finish(struct pd_req *r, long ret);
/* The call would block: keep r queued until timeout_ns from its first
 * attempt (0 = no timeout); then it completes with -1 and timeout_errno. */
int pd_block(struct pd_req *r, uint64_t timeout_ns, int timeout_errno);

/* Descriptor map (stack thread, pd.mu held). */
struct pd_fd *pd_fd_get(struct pd *a, int fd, enum pd_kind kind);
/* A new eventfd standing for ustack descriptor ust; on failure ust is
 * closed and -1 returned (errno EMFILE / ENFILE). */
int pd_fd_new(struct pd *a, int ust, enum pd_kind kind, int nonblock, int cloexec);
/* Close fd's ustack object and the eventfd. */
void pd_fd_close(struct pd *a, int fd);

/* Time on the adapter's one clock (see above). */
uint64_t pd_wall_ns(const struct pd *a, uint64_t mono_ns);

/* pd_calls.c: the socket, epoll and poll entries of the table. */
void pd_fill_calls(struct packetdrill_interface *ifc);

#endif
