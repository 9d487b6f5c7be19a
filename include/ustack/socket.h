/* ustack: the POSIX-like socket API.
 *
 * Every call is its POSIX/Linux namesake with a ust_ prefix: same
 * arguments, same flags and option names (<sys/socket.h>, <netinet/in.h>,
 * <netinet/tcp.h>), same results: -1 and errno on failure, and the errno
 * values Linux gives. SIGPIPE is never raised (MSG_NOSIGNAL is implied).
 *
 * Descriptors. ustack descriptors live in a reserved range that kernel file
 * descriptors never reach, [UST_FD_BASE, INT_MAX], so both kinds can be used
 * side by side (ust_is_fd tells them apart). A descriptor encodes its stack:
 * bits 24..29 of (fd - UST_FD_BASE) name the stack context, bits 0..23 the
 * slot (up to 16M descriptors per stack). Within a stack the table grows by
 * doubling on the control path; no call allocates except ust_socket,
 * ust_accept (one socket object each) and ust_epoll_ctl ADD.
 *
 * Threads. A stack is driven by one thread. ust_socket_attach(s) binds s
 * to the calling thread: sockets that thread creates belong to s. A thread
 * may attach several stacks (the last attached is "current" for
 * ust_socket/ust_epoll_create1); a descriptor used from another thread is
 * forwarded to the owning thread and runs there (docs/WORKERS.md "Calls
 * from another thread"); epoll calls are owner-thread-only.
 *
 * Progress. Nothing happens on the wire unless the thread runs its stacks:
 * ust_epoll_wait and every blocking call poll all stacks attached to the
 * thread until the call can complete (run to completion). A program that
 * only uses non-blocking calls without epoll calls ust_socket_run. Those
 * loops also run the coroutines (ustack/coro.h) of the thread's stacks;
 * inside a coroutine a blocking call suspends just that coroutine, and
 * ust_socket_run only yields. */
#ifndef USTACK_SOCKET_H
#define USTACK_SOCKET_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "ustack/ustack.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UST_FD_BASE (1 << 30)

/* Bind stack s to the calling thread and make it current. 0, or -1 and
 * errno (EBUSY: another thread attached it; EMFILE: 64 contexts in use). */
UST_API int ust_socket_attach(struct ust_stack *s);
/* Close every descriptor of s and release its context (call before
 * ust_stack_destroy, from the attached thread). 0, or -1 and EINVAL. */
UST_API int ust_socket_detach(struct ust_stack *s);
/* The stack a descriptor belongs to (NULL and EBADF). */
UST_API struct ust_stack *ust_socket_stack(int fd);
/* Whether fd is in ustack's range (it may still be closed). */
static inline int ust_is_fd(int fd) { return fd >= UST_FD_BASE; }

/* Poll every stack attached to the calling thread; if none did work, sleep
 * until a device wakes or up to timeout_ms (0: never sleep, -1: until
 * something happens or a timer is due). Returns 0. */
UST_API int ust_socket_run(int timeout_ms);

/* The clock of the calling thread's blocking calls and ust_epoll_wait.
 * Default (now == NULL): ust_now_ns, and idle periods sleep on the devices'
 * descriptors. A virtual clock (tests): now(arg) returns it; idle(arg,
 * deadline) is called instead of sleeping when nothing is left to do before
 * deadline (UINT64_MAX: nothing pending at all) and should advance it. */
UST_API void ust_socket_set_clock(uint64_t (*now)(void *arg), void (*idle)(void *arg, uint64_t deadline_ns),
                                  void *arg);

/* Blocking calls. Inside a coroutine (ust_coro_self() != NULL) a call that
 * cannot complete suspends the coroutine on the socket (see coro.h); a
 * socket closed meanwhile fails the call with EBADF. Elsewhere a call on a
 * blocking socket that cannot complete now
 * first calls ust_block_hook (when set) with the descriptor, the epoll
 * events it waits for (EPOLLIN / EPOLLOUT) and its deadline on the thread's
 * clock (UINT64_MAX: none; from SO_RCVTIMEO / SO_SNDTIMEO). The hook (e.g.
 * the coroutine scheduler) returns 0 once the descriptor may be ready (the
 * call retries), -1 with errno to fail the call (EAGAIN at the deadline), or
 * UST_BLOCK_DEFAULT to let the built-in loop wait: it polls the thread's
 * stacks until the descriptor is ready or the deadline passes. */
#define UST_BLOCK_DEFAULT 1
extern UST_API int (*ust_block_hook)(int fd, uint32_t events, uint64_t deadline_ns);

/* AF_INET; SOCK_STREAM (TCP) or SOCK_DGRAM (UDP), | SOCK_NONBLOCK |
 * SOCK_CLOEXEC. On the current stack of the thread (EINVAL: none); inside
 * a coroutine, on the coroutine's stack if it is attached. */
UST_API int ust_socket(int domain, int type, int protocol);
UST_API int ust_bind(int fd, const struct sockaddr *addr, socklen_t len);
UST_API int ust_listen(int fd, int backlog);
UST_API int ust_accept(int fd, struct sockaddr *addr, socklen_t *len);
UST_API int ust_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/* Non-blocking: -1/EINPROGRESS, completion shown by EPOLLOUT, result by
 * SO_ERROR (or a second connect: 0, then EISCONN; EALREADY while pending). */
UST_API int ust_connect(int fd, const struct sockaddr *addr, socklen_t len);
UST_API ssize_t ust_read(int fd, void *buf, size_t len);
UST_API ssize_t ust_write(int fd, const void *buf, size_t len);
UST_API ssize_t ust_readv(int fd, const struct iovec *iov, int iovcnt);
UST_API ssize_t ust_writev(int fd, const struct iovec *iov, int iovcnt);
/* flags: MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL, MSG_TRUNC (UDP), MSG_NOSIGNAL
 * and MSG_MORE are accepted; MSG_OOB is EOPNOTSUPP. */
UST_API ssize_t ust_recv(int fd, void *buf, size_t len, int flags);
UST_API ssize_t ust_send(int fd, const void *buf, size_t len, int flags);
UST_API ssize_t ust_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from, socklen_t *fromlen);
UST_API ssize_t ust_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
                           socklen_t tolen);
UST_API int ust_shutdown(int fd, int how);
/* Sockets and epoll instances. SO_LINGER {1, 0} closes with a reset; any
 * other linger closes gracefully in the background (never blocks). */
UST_API int ust_close(int fd);
UST_API int ust_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
UST_API int ust_getpeername(int fd, struct sockaddr *addr, socklen_t *len);
/* F_GETFL / F_SETFL (O_NONBLOCK), F_GETFD / F_SETFD (FD_CLOEXEC). */
UST_API int ust_fcntl(int fd, int cmd, ...);
/* FIONBIO (int *), FIONREAD (int *: bytes readable; UDP: next datagram). */
UST_API int ust_ioctl(int fd, unsigned long req, void *arg);
/* SOL_SOCKET: SO_REUSEADDR, SO_REUSEPORT, SO_RCVBUF, SO_SNDBUF (bytes, not
 * doubled), SO_KEEPALIVE, SO_LINGER, SO_ERROR, SO_RCVTIMEO, SO_SNDTIMEO,
 * SO_TYPE, SO_ACCEPTCONN, SO_DOMAIN, SO_PROTOCOL. IPPROTO_TCP: TCP_NODELAY,
 * TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_MAXSEG, TCP_CONGESTION
 * ("cubic", "reno", "newreno"), TCP_INFO (struct tcp_info of
 * <netinet/tcp.h>). Options set before connect/listen apply when the
 * connection is made; accepted sockets inherit the listener's. */
UST_API int ust_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
UST_API int ust_getsockopt(int fd, int level, int name, void *val, socklen_t *len);

#ifdef __cplusplus
}
#endif

#endif
