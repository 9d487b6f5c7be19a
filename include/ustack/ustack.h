/* ustack: a userspace TCP/IP stack. Public API (only ust_ names are exported).
 *
 * One struct ust_stack per thread owns one device queue and runs to
 * completion: ust_stack_poll() receives a burst, processes it, runs expired
 * timers and flushes transmits, then returns its next deadline. Time is
 * passed in (nanoseconds on any monotonic clock; ust_now_ns() is one). */
#ifndef USTACK_USTACK_H
#define USTACK_USTACK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UST_API __attribute__((visibility("default")))

struct ust_stack;
struct ust_config;

/* ---- configuration: the shared stack options of every ustack program ---- */

/* A configuration with defaults, then USTACK_* environment variables applied. */
UST_API struct ust_config *ust_config_new(void);
UST_API void ust_config_free(struct ust_config *cfg);

/* Parse the shared stack options out of argv (command line wins over the
 * environment). Consumed arguments are removed; *argc is updated and the
 * program's own options remain, in order, for it to parse. Returns 0, or -1
 * after printing a message on stderr. */
UST_API int ust_config_parse_args(struct ust_config *cfg, int *argc, char **argv);

/* The --help text of the shared stack options. */
UST_API void ust_config_print_help(FILE *out);

/* ---- the stack ---- */

/* Opens the device, allocates every pool and table (no allocation happens on
 * the packet path afterwards), sends gratuitous ARP. NULL on failure. */
UST_API struct ust_stack *ust_stack_create(const struct ust_config *cfg);
UST_API void ust_stack_destroy(struct ust_stack *s);

/* One loop iteration at time now_ns. Returns the time by which it must run
 * again (UINT64_MAX when nothing is pending). */
UST_API uint64_t ust_stack_poll(struct ust_stack *s, uint64_t now_ns);

/* Sleep on the device's descriptors until a frame may be there or until
 * deadline_ns (on the ust_now_ns clock). Returns at once when the last poll
 * did work. */
UST_API void ust_stack_wait(struct ust_stack *s, uint64_t deadline_ns);

/* poll + wait until *stop becomes non-zero. */
UST_API void ust_stack_run(struct ust_stack *s, volatile sig_atomic_t *stop);

/* Install SIGINT/SIGTERM handlers that set the returned flag (for
 * ust_stack_run), so programs exit cleanly and release their device. */
UST_API volatile sig_atomic_t *ust_stop_on_signals(void);

/* Monotonic clock in ns (CLOCK_MONOTONIC). */
UST_API uint64_t ust_now_ns(void);

/* Counters: print the non-zero ones, or read one by name (0 / -1 unknown). */
UST_API void ust_stack_print_stats(const struct ust_stack *s, FILE *out);
UST_API int ust_stack_counter(const struct ust_stack *s, const char *name, uint64_t *value);
/* Whether --stats was given. */
UST_API int ust_stack_stats_wanted(const struct ust_stack *s);
/* Whether the device is up (memif: peer connected). */
UST_API int ust_stack_link_up(const struct ust_stack *s);

/* ---- UDP (minimal API; the POSIX-like socket API sits on top of it) ---- */

struct ust_udp;
typedef void (*ust_udp_cb)(struct ust_udp *u, void *arg);

UST_API struct ust_udp *ust_udp_open(struct ust_stack *s);
/* AF_INET only for now (EAFNOSUPPORT otherwise). Port 0 picks an ephemeral
 * port. -1 and errno (EADDRINUSE, EINVAL) on failure. */
UST_API int ust_udp_bind(struct ust_udp *u, const struct sockaddr *addr, socklen_t len);
/* Queues one datagram (up to 65507 bytes; fragmented above the MTU). Returns
 * len, or -1 and errno (EMSGSIZE, ENETUNREACH, ENOBUFS, EINVAL). */
UST_API ssize_t ust_udp_sendto(struct ust_udp *u, const void *buf, size_t len,
                               const struct sockaddr *to, socklen_t tolen);
/* Takes one datagram (truncated to len). -1 and EAGAIN when none is queued. */
UST_API ssize_t ust_udp_recvfrom(struct ust_udp *u, void *buf, size_t len,
                                 struct sockaddr *from, socklen_t *fromlen);
/* on_readable runs inside ust_stack_poll whenever a datagram was queued. */
UST_API void ust_udp_set_callback(struct ust_udp *u, ust_udp_cb on_readable, void *arg);
/* The last ICMP error reported for this socket's traffic (e.g.
 * ECONNREFUSED for port unreachable), cleared by reading; 0 if none. */
UST_API int ust_udp_error(struct ust_udp *u);
UST_API void ust_udp_close(struct ust_udp *u);


/* ---- TCP (minimal API; the POSIX-like socket and epoll API wrap it) ----
 *
 * A struct ust_tcp is one connection or listener, owned by its stack's
 * thread. Events are delivered by the callback from inside ust_stack_poll,
 * after a burst has been processed (never from inside protocol code), so a
 * callback may call any ust_tcp_* function, including close. */

struct ust_tcp;

#define UST_TCP_READABLE  0x01    /* data to read, or EOF (recv returns 0)      */
#define UST_TCP_WRITABLE  0x02    /* send buffer has room again                 */
#define UST_TCP_ACCEPT    0x04    /* listener: a connection is ready to accept  */
#define UST_TCP_CONNECTED 0x08    /* active open completed                      */
#define UST_TCP_ERROR     0x10    /* reset, refused or timed out: see ust_tcp_error */
#define UST_TCP_CLOSED    0x20    /* both directions finished; after close()     */

typedef void (*ust_tcp_cb)(struct ust_tcp *c, unsigned events, void *arg);

/* Listen on addr (AF_INET; address 0 = any). backlog bounds the accept queue.
 * -1/NULL and errno: EADDRINUSE, EINVAL, ENOMEM. */
UST_API struct ust_tcp *ust_tcp_listen(struct ust_stack *s, const struct sockaddr *addr, socklen_t len,
                                       int backlog, ust_tcp_cb cb, void *arg);
/* Take an established connection from a listener (NULL and EAGAIN when none).
 * It starts with no callback: set one. */
UST_API struct ust_tcp *ust_tcp_accept(struct ust_tcp *listener);
/* Active open. src may be NULL (address from the route, ephemeral port per
 * RFC 6056). Completion: UST_TCP_CONNECTED or UST_TCP_ERROR (ECONNREFUSED,
 * ETIMEDOUT, ...). */
UST_API struct ust_tcp *ust_tcp_connect(struct ust_stack *s, const struct sockaddr *dst, socklen_t dstlen,
                                        const struct sockaddr *src, socklen_t srclen, ust_tcp_cb cb, void *arg);
UST_API void ust_tcp_set_callback(struct ust_tcp *c, ust_tcp_cb cb, void *arg);
/* Queue up to len bytes; returns the number taken (may be short), or -1 and
 * errno: EAGAIN (buffer full), ENOTCONN, EPIPE (after shutdown/close or
 * reset), ECONNRESET. */
UST_API ssize_t ust_tcp_send(struct ust_tcp *c, const void *buf, size_t len);
/* Read up to len bytes; 0 at EOF; -1 and EAGAIN when nothing is there,
 * ECONNRESET after a reset, ENOTCONN before the connection is established. */
UST_API ssize_t ust_tcp_recv(struct ust_tcp *c, void *buf, size_t len);
/* Bytes that ust_tcp_send would take now / that ust_tcp_recv would return. */
UST_API size_t ust_tcp_sendable(const struct ust_tcp *c);
UST_API size_t ust_tcp_readable(const struct ust_tcp *c);
/* SHUT_WR sends FIN after queued data; SHUT_RD discards further input. */
UST_API int ust_tcp_shutdown(struct ust_tcp *c, int how);
/* Graceful close: FIN after queued data; the stack finishes the connection
 * and frees it. The handle must not be used afterwards. With linger 0 set,
 * close aborts instead (RST). */
UST_API int ust_tcp_close(struct ust_tcp *c);
/* Abort: send RST, free everything now. */
UST_API void ust_tcp_abort(struct ust_tcp *c);
/* The pending error (errno value), cleared by reading; 0 if none. */
UST_API int ust_tcp_error(struct ust_tcp *c);
/* RFC 9293 state name ("ESTABLISHED", ...). */
UST_API const char *ust_tcp_state(const struct ust_tcp *c);
UST_API int ust_tcp_getsockname(const struct ust_tcp *c, struct sockaddr *addr, socklen_t *len);
UST_API int ust_tcp_getpeername(const struct ust_tcp *c, struct sockaddr *addr, socklen_t *len);

/* Per-connection options. */
enum ust_tcp_opt {
    UST_TCP_OPT_NODELAY = 1,      /* 1 disables Nagle                          */
    UST_TCP_OPT_KEEPALIVE,        /* 1 enables keepalive probes                */
    UST_TCP_OPT_KEEPIDLE,         /* seconds idle before the first probe (7200) */
    UST_TCP_OPT_KEEPINTVL,        /* seconds between probes (75)               */
    UST_TCP_OPT_KEEPCNT,          /* probes before giving up (9)               */
    UST_TCP_OPT_LINGER0,          /* 1: close() aborts with RST                */
    UST_TCP_OPT_SNDBUF,           /* bytes                                     */
    UST_TCP_OPT_RCVBUF,           /* bytes                                     */
    UST_TCP_OPT_MAXSEG,           /* clamp our MSS                             */
    UST_TCP_OPT_CC_NEWRENO,       /* 1: NewReno instead of CUBIC               */
};
UST_API int ust_tcp_setopt(struct ust_tcp *c, enum ust_tcp_opt opt, int value);
UST_API int ust_tcp_getopt(const struct ust_tcp *c, enum ust_tcp_opt opt, int *value);

#ifdef __cplusplus
}
#endif

#endif

/* The POSIX-like layer, epoll and coroutines (each usable on its own). */
#include "ustack/socket.h"
#include "ustack/epoll.h"
#include "ustack/coro.h"
#include "ustack/workers.h"
