/* ust-echo: a TCP echo server on ustack (RFC 862), written as an ordinary
 * Linux epoll server with the calls renamed (docs/API.md "Porting an epoll
 * server"): a non-blocking listener, non-blocking connections, one epoll
 * instance, and ust_epoll_wait as the main loop (it also runs the stack).
 *
 * Level-triggered: a connection is reported for as long as it is readable
 * (or writable), so a handler may stop after one chunk without losing the
 * rest, and one busy client cannot starve the others. (Edge-triggered would
 * oblige us to read until EAGAIN every time.)
 *
 * Backpressure: we read only what we can write. When ust_write takes less
 * than we read, the remainder (at most ECHO_CHUNK bytes) waits in the
 * connection's buffer, and we switch the interest from EPOLLIN to EPOLLOUT:
 * no more reading until the remainder is gone. So a client that sends
 * faster than it reads fills our send buffer, then our receive window
 * closes and TCP flow control slows it down; memory per connection stays
 * fixed.
 *
 * With --workers N every worker thread runs the same thing on its own stack:
 * its own listener on the same port (the SO_REUSEPORT model), its own epoll
 * instance, connections and counters. Nothing is shared between workers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/epoll.h"
#include "ustack/socket.h"
#include "ustack/ustack.h"
#include "ustack/workers.h"

#define ECHO_CHUNK 4096   /* one read; also the most a connection keeps */
#define EVENTS_MAX 256
#define WAIT_MS 100       /* how soon a stop is noticed */

struct echo_stats {
    uint64_t accepted, closed, errors, bytes, active, max_active;
};

struct conn {
    int fd;
    uint32_t off, len;             /* unsent bytes: buf[off, off + len) */
    struct conn *prev, *next;      /* the worker's connections, for exit */
    char buf[ECHO_CHUNK];
};

/* One per worker, touched only by its thread. */
struct echo_worker {
    struct echo_stats stats;
    int ep, lfd;
    struct conn *conns;
};

struct echo_opts {
    int port, backlog;
    struct echo_worker *workers;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-echo [--port N] STACK OPTIONS\n"
                 "TCP echo server: sends every byte back; closes after the client's FIN.\n\n"
                 "  --port N                 TCP port to serve (default 7)\n"
                 "  --backlog N              accept queue length (default 4096)\n"
                 "  --help                   this text\n"
                 "(--workers N and --stats are stack options, below.)\n\n");
    ust_config_print_help(out);
}

/* ---- connections ---- */

static void conn_close(struct echo_worker *w, struct conn *c, int error)
{
    if (error)
        w->stats.errors++;
    w->stats.closed++;
    w->stats.active--;
    /* Graceful: the FIN goes out after everything already queued. Closing
     * also takes the descriptor out of the epoll instance. */
    ust_close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

/* Switch the interest: EPOLLIN normally, EPOLLOUT only while bytes wait. */
static int conn_want(struct echo_worker *w, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    return ust_epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write out the pending bytes. 1: all gone, 0: some left (EAGAIN), -1 error. */
static int conn_flush(struct echo_worker *w, struct conn *c)
{
    while (c->len) {
        ssize_t n = ust_write(c->fd, c->buf + c->off, c->len);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->off += (uint32_t)n;
        c->len -= (uint32_t)n;
        w->stats.bytes += (uint64_t)n;
    }
    c->off = 0;
    return 1;
}

/* Read one chunk and echo it. 1: more may follow, 0: stop for now (EAGAIN,
 * or a remainder waits for EPOLLOUT), -1: done (EOF or error; *error set). */
static int conn_echo_once(struct echo_worker *w, struct conn *c, int *error)
{
    ssize_t n = ust_read(c->fd, c->buf, sizeof(c->buf));
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return 0;
        *error = n < 0;   /* 0: the client's FIN, all its bytes echoed */
        return -1;
    }
    c->off = 0;
    c->len = (uint32_t)n;
    int r = conn_flush(w, c);
    if (r < 0) {
        *error = 1;
        return -1;
    }
    if (r == 0 && conn_want(w, c, EPOLLOUT) < 0) {
        *error = 1;
        return -1;
    }
    return r;
}

static void conn_on_event(struct echo_worker *w, struct conn *c)
{
    int error = 0;
    if (c->len) {   /* waiting for EPOLLOUT: finish the remainder first */
        int r = conn_flush(w, c);
        if (r < 0 || (r == 1 && conn_want(w, c, EPOLLIN) < 0)) {
            conn_close(w, c, 1);
            return;
        }
        if (r == 0)
            return;
    }
    /* A few chunks per event, then the others get their turn (level
     * triggered: we are reported again while data remains). EPOLLHUP and
     * EPOLLERR also end here: the read returns 0 or the error. */
    for (int i = 0; i < 16; i++) {
        int r = conn_echo_once(w, c, &error);
        if (r < 0) {
            conn_close(w, c, error);
            return;
        }
        if (r == 0)
            return;
    }
}

/* ---- the listener ---- */

static void conn_add(struct echo_worker *w, int fd)
{
    struct conn *c = malloc(sizeof(*c));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (!c || ust_epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        w->stats.errors++;
        free(c);
        ust_close(fd);
        return;
    }
    *c = (struct conn){.fd = fd, .next = w->conns};
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->stats.accepted++;
    if (++w->stats.active > w->stats.max_active)
        w->stats.max_active = w->stats.active;
}

static void listener_on_event(struct echo_worker *w)
{
    for (int i = 0; i < EVENTS_MAX; i++) {   /* bounded: the loop must go on */
        int fd = ust_accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;   /* EAGAIN: none left (or e.g. ENOMEM: try next time) */
        conn_add(w, fd);
    }
}

/* ---- one worker: setup, loop, fini (each on the worker's own thread) ---- */

static int listener_open(int port, int backlog)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (ust_bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || ust_listen(fd, backlog) < 0) {
        int e = errno;
        ust_close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int echo_setup(struct ust_stack *s, int worker, void *arg)
{
    struct echo_opts *o = arg;
    struct echo_worker *w = &o->workers[worker];
    w->ep = w->lfd = -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};   /* NULL: the listener */
    if (ust_socket_attach(s) < 0 || (w->ep = ust_epoll_create1(0)) < 0 ||
        (w->lfd = listener_open(o->port, o->backlog)) < 0 || ust_epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev) < 0) {
        fprintf(stderr, "ust-echo: worker %d: listen on port %d: %s\n", worker, o->port, strerror(errno));
        return -1;
    }
    return 0;
}

static void echo_loop(struct ust_stack *s, int worker, void *arg, volatile sig_atomic_t *stop)
{
    struct echo_opts *o = arg;
    struct echo_worker *w = &o->workers[worker];
    struct epoll_event ev[EVENTS_MAX];
    /* Said here, not in setup: the loops start only once every worker has
     * made its stack, so every queue is served (afxdp: a queue without its
     * socket yet passes ustack's frames to the kernel). */
    if (worker == 0)
        fprintf(stderr, "ust-echo: serving TCP port %d (%d worker%s)\n", o->port, ust_stack_workers(s),
                ust_stack_workers(s) > 1 ? "s" : "");
    while (!*stop) {
        int n = ust_epoll_wait(w->ep, ev, EVENTS_MAX, WAIT_MS);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == NULL)
                listener_on_event(w);
            else
                conn_on_event(w, ev[i].data.ptr);
        }
    }
}

/* Worker N's lines carry a "wN " prefix when there are several. */
static void print_stats(const struct echo_stats *st, const char *prefix, FILE *out)
{
    fprintf(out,
            "%secho_accepted %llu\n%secho_closed %llu\n%secho_errors %llu\n%secho_bytes %llu\n"
            "%secho_active %llu\n%secho_max_active %llu\n",
            prefix, (unsigned long long)st->accepted, prefix, (unsigned long long)st->closed, prefix,
            (unsigned long long)st->errors, prefix, (unsigned long long)st->bytes, prefix,
            (unsigned long long)st->active, prefix, (unsigned long long)st->max_active);
}

/* Workers finish at about the same time: each writes its whole report with
 * one call so that reports do not interleave. */
static void report_stats(struct ust_stack *s, int worker, const struct echo_stats *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return;
    char prefix[16] = "";
    if (ust_stack_workers(s) > 1) {
        snprintf(prefix, sizeof(prefix), "w%d ", worker);
        print_stats(st, prefix, mem);
        ust_worker_print_stats(s, mem);
    } else {
        print_stats(st, prefix, mem);
        ust_stack_print_stats(s, mem);
    }
    fclose(mem);
    fwrite(buf, 1, len, stdout);
    fflush(stdout);
    free(buf);
}

static void echo_fini(struct ust_stack *s, int worker, void *arg)
{
    struct echo_opts *o = arg;
    struct echo_worker *w = &o->workers[worker];
    if (ust_stack_stats_wanted(s))
        report_stats(s, worker, &w->stats);
    while (w->conns) {
        struct conn *c = w->conns;
        w->conns = c->next;
        free(c);
    }
    ust_socket_detach(s);   /* closes every descriptor: connections, lfd, ep */
}

/* ---- the program ---- */

static int parse_args(int argc, char **argv, int *port, int *backlog)
{
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--port") == 0 && v) {
            *port = atoi(v);
            i++;
        } else if (strcmp(argv[i], "--backlog") == 0 && v) {
            *backlog = atoi(v);
            i++;
        } else {
            fprintf(stderr, "ust-echo: unknown argument %s\n", argv[i]);
            usage(stderr);
            return -1;
        }
    }
    return (*port > 0 && *port < 65536 && *backlog > 0) ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct echo_opts o = {.port = 7, .backlog = 4096};
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &o.port, &o.backlog) < 0)
        return 2;
    o.workers = calloc(ust_config_workers(cfg), sizeof(*o.workers));
    if (!o.workers)
        return 1;
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    int rc = ust_workers_run_loop(cfg, echo_setup, echo_loop, echo_fini, &o, stop);
    ust_config_free(cfg);
    free(o.workers);
    return rc == 0 ? 0 : 1;
}
