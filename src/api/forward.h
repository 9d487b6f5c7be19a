/* Socket calls from a thread that does not drive the descriptor's stack
 * are forwarded to the thread that does (docs/WORKERS.md "Calls from
 * another thread").
 *
 * The caller packs the call into a record on its own stack (op, fd, the
 * arguments as given: buffers stay the caller's), pushes it on the owning
 * context's inbox, rings the owner's bell and sleeps until the owner has
 * run the call and written the result. The owner runs calls only in their
 * non-blocking form; a call that would block is parked and retried when
 * the socket is ready (or its SO_RCVTIMEO / SO_SNDTIMEO passes), so the
 * owner's thread never blocks on another thread's behalf. */
#ifndef UST_API_FORWARD_H
#define UST_API_FORWARD_H

#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct ust_stack;

enum fwd_op {
    FWD_RECV = 1,      /* read, readv, recv, recvfrom   */
    FWD_SEND,          /* write, writev, send, sendto   */
    FWD_CLOSE,
    FWD_SHUTDOWN,
    FWD_SETSOCKOPT,
    FWD_GETSOCKOPT,
    FWD_GETSOCKNAME,
    FWD_GETPEERNAME,
    FWD_FCNTL,
    FWD_IOCTL,
    FWD_BIND,
    FWD_LISTEN,
    FWD_ACCEPT,
    FWD_CONNECT,
};

/* A call's arguments exactly as the application passed them; every pointer
 * is into the caller's memory, which stays valid because the caller waits. */
struct fwd_call {
    int op;
    int fd;
    int flags;                     /* MSG_*; shutdown how; fcntl cmd; backlog; accept4 flags */
    int level, name;               /* sockopt                                  */
    const struct iovec *iov;
    int iovcnt;
    struct sockaddr *addr;         /* recvfrom, getsockname, getpeername, accept */
    socklen_t *alen;
    const struct sockaddr *caddr;  /* sendto, bind, connect                    */
    socklen_t clen;
    void *val;                     /* getsockopt, ioctl                        */
    const void *cval;              /* setsockopt                               */
    socklen_t vlen;
    socklen_t *vlenp;
    unsigned long req;             /* ioctl                                    */
    long arg;                      /* fcntl                                    */
};

/* Whether fd names a descriptor of a stack that another thread attached
 * (then the call must go through fwd_call). 0 for our own descriptors,
 * kernel fds and descriptors of no attached stack (those fail as EBADF). */
int fwd_is_foreign(int fd);
/* Run c on the owning thread and wait for it: the call's result, errno set
 * as the call set it there. */
ssize_t fwd_call(const struct fwd_call *c);

/* ---- the owner's side (fdtable.c) ---- */

/* Context id is being attached: open its inbox. 0, or -1 and errno. */
int fwd_inbox_open(int id);
/* Context id is going away: refuse new calls, fail queued and parked
 * ones with EBADF. */
void fwd_inbox_close(int id);
/* Once per loop iteration of the owner: run up to a bounded number of new
 * calls, retry parked ones. Sets *did_work when something ran (its output
 * still has to be flushed); the earliest deadline of a parked call. */
uint64_t fwd_serve(int id, int *did_work);
/* The inbox's bell, for the owner's poll set (-1 if none). Cleared by
 * fwd_serve. */
int fwd_bell_fd(int id);

/* For the stack's own loop (ust_stack_poll / ust_stack_wait), so that
 * ust_stack_run and worker threads serve forwarded calls too: s's context
 * on this thread, if it has one. */
uint64_t sockfwd_stack_serve(struct ust_stack *s);
int sockfwd_poll_fds(struct ust_stack *s, struct pollfd *fds, int max);

#endif
