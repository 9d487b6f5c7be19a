/* ustack: epoll with Linux semantics over ustack sockets and kernel fds.
 *
 * struct epoll_event and the EPOLL* flags are those of <sys/epoll.h>:
 * EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLERR, EPOLLHUP (the last two always
 * reported), EPOLLET (edge triggered), EPOLLONESHOT (disabled after one
 * report until EPOLL_CTL_MOD re-arms it). ustack sockets are level
 * triggered by default, as in Linux.
 *
 * ust_epoll_wait costs O(ready): sockets join the instance's ready list
 * when their connection reports an event; nothing scans the registered set.
 * It also runs the thread's stacks (see socket.h "Progress"): it polls them
 * until an event is ready or the timeout passes, sleeping on the devices'
 * descriptors when idle.
 *
 * Kernel descriptors (timerfd, eventfd, pipes, stdin, kernel sockets) can
 * be registered in the same instance: they go into a private kernel epoll
 * made on first use. While none is registered no system call is made; with
 * some, ust_epoll_wait looks at them when ustack has nothing ready, after
 * every sleep, and otherwise once every 16 calls — a bounded share when busy
 * polling. An ustack epoll instance cannot itself be watched (EINVAL). */
#ifndef USTACK_EPOLL_H
#define USTACK_EPOLL_H

#include <sys/epoll.h>

#include "ustack/ustack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* flags: 0 or EPOLL_CLOEXEC. An ustack descriptor of the current stack. */
UST_API int ust_epoll_create1(int flags);
UST_API int ust_epoll_create(int size);
/* EPOLL_CTL_ADD / MOD / DEL; fd an ustack socket of the same stack or a
 * kernel fd. Errors as Linux: EBADF, EINVAL, EEXIST, ENOENT, EPERM. */
UST_API int ust_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
/* timeout_ms: -1 forever, 0 poll once. Returns the number of events. */
UST_API int ust_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
