/* The socket layer's internals, shared by fdtable.c (descriptors, threads,
 * the wait loop), socket.c / sockio.c / sockopt.c (the calls) and epoll.c.
 * Does not include tcp/tcp.h: the TCB is reached through ust_tcp_* and
 * tcp/tcp_sock.h only. */
#ifndef UST_API_SOCK_H
#define UST_API_SOCK_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "ustack/coro.h"
#include "ustack/socket.h"
#include "ustack/ustack.h"

#define SOCK_CTX_BITS 6
#define SOCK_CTX_MAX (1 << SOCK_CTX_BITS)      /* stacks in one process      */
#define SOCK_SLOT_BITS 24
#define SOCK_SLOT_MAX (1u << SOCK_SLOT_BITS)   /* descriptors per stack      */
#define SOCK_SLOTS_INITIAL 256

enum sobj_kind { SOBJ_SOCK = 1, SOBJ_EPOLL };

struct sock_ctx;

/* What a descriptor slot points at: the head of a socket or epoll object. */
struct sobj {
    uint8_t kind;
    uint8_t cloexec;
    int fd;
    struct sock_ctx *ctx;
    /* Descriptors are reused (and so may be the memory behind them): a
     * blocked call that wakes up knows its object is still the one it
     * waited on only if fd still maps to this serial. */
    uint64_t serial;
    /* Coroutines blocked in a call on this object; woken whenever its
     * readiness may have changed and when it is closed. */
    struct ust_coro_waitq waiters;
};

/* Socket life cycle as seen by the application. */
enum usock_state {
    SS_NEW = 0,       /* no address                                       */
    SS_BOUND,         /* bind() done, no TCB yet (on ctx->bound list)     */
    SS_LISTEN,
    SS_CONNECTING,    /* TCP: connect() issued, not yet confirmed          */
    SS_CONNECTED,
};

/* usock.flags */
#define SKF_NONBLOCK  0x0001u
#define SKF_REUSEADDR 0x0002u
#define SKF_REUSEPORT 0x0004u
#define SKF_SHUT_RD   0x0008u
#define SKF_SHUT_WR   0x0010u
#define SKF_ERRSEEN   0x0020u   /* the TCB's hard error was moved to err     */
#define SKF_UDP_PEER  0x0040u   /* connected UDP: default destination/filter */
#define SKF_LINGER    0x0080u   /* SO_LINGER l_onoff                          */
#define SKF_NOPORT    0x0100u   /* IP_BIND_ADDRESS_NO_PORT: port at connect   */
#define SKF_ADDR_ONLY 0x0200u   /* bound to an address, no port reserved      */

#define SOCK_NOPTS 11           /* enum ust_tcp_opt values 1..10 */

struct ep_item;

struct usock {
    struct sobj o;
    uint8_t type;                  /* SOCK_STREAM or SOCK_DGRAM */
    uint8_t state;                 /* enum usock_state          */
    uint16_t flags;
    int err;                       /* pending SO_ERROR          */
    struct ust_stack *stack;
    struct ust_tcp *tcp;           /* NULL until listen/connect/accept */
    struct ust_udp *udp;
    struct sockaddr_in local;      /* bound address (sin_port 0 = none)  */
    struct sockaddr_in peer;       /* UDP default destination            */
    struct usock *bound_next, *bound_prev;
    struct ep_item *items;         /* epoll registrations of this socket */
    uint64_t rcvtimeo_ns, sndtimeo_ns;   /* 0 = forever */
    int linger_s;
    uint16_t opt_set;              /* bit n: opt_val[n] was set          */
    int opt_val[SOCK_NOPTS];
    int udp_rcvbuf;
};

struct sock_ctx {
    int id;
    struct ust_stack *s;
    struct sobj **slots;
    uint32_t *free_slots;          /* stack of free slot numbers */
    uint32_t cap, bump, nfree, nopen;
    struct usock *bound;           /* bound, not yet listening or connected */
};

/* ---- fdtable.c ---- */
struct sock_ctx *sock_ctx_current(void);
/* Whether the calling thread attached context id (its descriptors are ours). */
int sock_ctx_attached_here(int id);
/* Whether the calling thread drives any stack (attached a context). */
int sock_thread_drives(void);
/* The object behind fd for this thread; NULL and EBADF. */
struct sobj *sobj_lookup(int fd);
/* A socket behind fd: EBADF, or ENOTSOCK for an epoll descriptor. */
struct usock *usock_lookup(int fd);
/* Give o a descriptor in ctx (sets o->fd, o->serial). -1 and EMFILE / ENOMEM. */
int fd_alloc(struct sock_ctx *ctx, struct sobj *o);
/* Free the descriptor; coroutines blocked on o are woken first (they find
 * the descriptor gone: EBADF). */
void fd_release(struct sobj *o);
/* The object fd names if it is still the one with this serial, else NULL
 * (it was closed while we waited). Sets no errno. */
struct sobj *sobj_recheck(int fd, uint64_t serial);
uint64_t sock_now(void);
/* Poll every stack of this thread once and run the coroutines that are
 * ready; the earliest next deadline. *did_work: packets moved or
 * coroutines ran (what they queued goes out on the next pump, so do not
 * sleep). Never called from inside a coroutine. */
uint64_t sock_pump(int *did_work);
/* The time sock_pump read when it started (this thread's last pump). */
uint64_t sock_pump_now(void);
/* Nothing to do before deadline: sleep (or advance the virtual clock).
 * extra_fd (or -1) is a kernel fd that also ends the sleep; returns 1 if it
 * did. */
int sock_idle(uint64_t deadline, int extra_fd);
uint64_t sock_deadline_after(uint64_t timeout_ns);
/* Wait until sk shows one of events (EPOLLIN/EPOLLOUT; EPOLLERR|EPOLLHUP
 * always end the wait) or deadline: 0, or -1 and errno (EAGAIN; EBADF when
 * sk was closed meanwhile: then sk is freed and must not be touched).
 * Inside a coroutine only that coroutine is suspended; elsewhere the
 * thread's stacks and coroutines run until then. */
int sock_block(struct usock *sk, uint32_t events, uint64_t deadline);
void bound_list_add(struct usock *sk);
void bound_list_del(struct usock *sk);

/* ---- socket.c ---- */
/* Readiness of sk may have changed: tell its epoll registrations and wake
 * the coroutines blocked on it (nothing to do when nobody waits). */
void usock_wake(struct usock *sk);
/* Current readiness as epoll bits (the ->poll of Linux). */
uint32_t usock_events(struct usock *sk);
void usock_close(struct usock *sk);
/* Pull the TCB's hard error into sk->err once. */
void usock_sync_error(struct usock *sk);
/* Take the pending error (0 if none). */
int usock_take_error(struct usock *sk);
void usock_apply_opts(struct usock *sk);
int usock_nonblock(const struct usock *sk, int msg_flags);

/* ---- sockio.c ---- */
/* The data calls on a descriptor of this thread (what ust_recvfrom /
 * ust_sendto / ust_readv / ust_writev do after routing). */
ssize_t sock_recv_iov(int fd, const struct iovec *iov, int iovcnt, int flags, struct sockaddr *from,
                      socklen_t *fromlen);
ssize_t sock_send_iov(int fd, const struct iovec *iov, int iovcnt, int flags, const struct sockaddr *to,
                      socklen_t tolen);

/* ---- epoll.c ---- */
/* Readiness of sk may have changed: queue its registrations. */
void epoll_sock_wake(struct usock *sk);
/* sk is closing: drop its registrations. */
void epoll_sock_forget(struct usock *sk);
void epoll_close(struct sobj *o);

/* ---- coro.c ---- */
/* ust_coro_run_ready that also tells whether any coroutine ran (*ran). */
uint64_t coro_run_ready_ran(struct ust_stack *s, uint64_t now, int *ran);

#endif
