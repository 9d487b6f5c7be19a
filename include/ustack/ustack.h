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

#ifdef __cplusplus
}
#endif

#endif
