/* ust-echo: a TCP echo server on ustack (RFC 862), an example of the event
 * API for many concurrent connections.
 *
 * Everything runs inside ust_stack_poll: the listener's callback accepts,
 * each connection's callback echoes. No connection owns an application
 * buffer: we read only as many bytes as the send buffer can take right now
 * (ust_tcp_sendable), so a client that sends faster than it reads fills our
 * send buffer, we stop reading, our receive window closes and TCP flow
 * control slows the client down.
 *
 * With --workers N every worker thread listens on the port (the SO_REUSEPORT
 * model) and keeps its own counters and scratch buffer: nothing is shared
 * between workers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/ustack.h"
#include "ustack/workers.h"

struct echo_stats {
    uint64_t accepted, closed, errors, bytes, active, max_active;
};

/* One per worker. One scratch buffer for all of a worker's connections:
 * its callbacks run one at a time. */
struct echo_worker {
    struct echo_stats stats;
    struct ust_tcp *listener;
    uint8_t scratch[65536];
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
                 "  --help                   this text\n\n");
    ust_config_print_help(out);
}

static void echo_finish(struct echo_worker *w, struct ust_tcp *c, int error)
{
    if (error)
        w->stats.errors++;
    w->stats.closed++;
    w->stats.active--;
    /* Graceful: the FIN goes out after everything already queued. */
    ust_tcp_close(c);
}

/* Ask for WRITABLE the way an edge-triggered socket does: a send that
 * finds the buffer full fails with EAGAIN and arms the event; nothing is
 * queued. */
static void echo_arm_writable(struct echo_worker *w, struct ust_tcp *c)
{
    (void)ust_tcp_send(c, w->scratch, 1);
}

/* Move bytes from the receive side to the send side while both can.
 * Returns 1 when the client's FIN was read (all its data echoed), -1 on a
 * connection error, 0 otherwise (waiting for data or for send room). */
static int echo_pump(struct echo_worker *w, struct ust_tcp *c)
{
    for (;;) {
        size_t room = ust_tcp_sendable(c);
        if (room == 0) {
            if (ust_tcp_readable(c) == 0)
                return 0;
            echo_arm_writable(w, c);
            return 0;
        }
        ssize_t n = ust_tcp_recv(c, w->scratch, room < sizeof(w->scratch) ? room : sizeof(w->scratch));
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        ssize_t sent = ust_tcp_send(c, w->scratch, (size_t)n);
        if (sent != n)   /* cannot happen: we read no more than there was room for */
            return -1;
        w->stats.bytes += (uint64_t)n;
    }
}

static void on_conn(struct ust_tcp *c, unsigned events, void *arg)
{
    struct echo_worker *w = arg;
    if (events & UST_TCP_ERROR) {
        echo_finish(w, c, 1);
        return;
    }
    int r = echo_pump(w, c);
    if (r != 0 || (events & UST_TCP_CLOSED))
        echo_finish(w, c, r < 0);
}

static void on_listener(struct ust_tcp *l, unsigned events, void *arg)
{
    struct echo_worker *w = arg;
    if (!(events & UST_TCP_ACCEPT))
        return;
    struct ust_tcp *c;
    while ((c = ust_tcp_accept(l))) {
        w->stats.accepted++;
        if (++w->stats.active > w->stats.max_active)
            w->stats.max_active = w->stats.active;
        ust_tcp_set_callback(c, on_conn, w);
        /* Data may have arrived with the handshake; the accept also queued
         * a READABLE event for it, so nothing more to do here. */
    }
}

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

static int echo_setup(struct ust_stack *s, int worker, void *arg)
{
    struct echo_opts *o = arg;
    struct echo_worker *w = &o->workers[worker];
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    w->listener = ust_tcp_listen(s, (struct sockaddr *)&addr, sizeof(addr), o->backlog, on_listener, w);
    if (!w->listener) {
        fprintf(stderr, "ust-echo: listen on port %d: %s\n", o->port, strerror(errno));
        return -1;
    }
    if (worker == 0)
        fprintf(stderr, "ust-echo: serving TCP port %d (%d worker%s)\n", o->port, ust_stack_workers(s),
                ust_stack_workers(s) > 1 ? "s" : "");
    return 0;
}

/* Runs on every worker's thread at about the same time: each writes its
 * whole report with one call so reports do not interleave. */
static void echo_fini(struct ust_stack *s, int worker, void *arg)
{
    struct echo_opts *o = arg;
    struct echo_worker *w = &o->workers[worker];
    if (ust_stack_stats_wanted(s)) {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (mem) {
            char prefix[16] = "";
            if (ust_stack_workers(s) > 1) {
                snprintf(prefix, sizeof(prefix), "w%d ", worker);
                print_stats(&w->stats, prefix, mem);
                ust_worker_print_stats(s, mem);
            } else {
                print_stats(&w->stats, prefix, mem);
                ust_stack_print_stats(s, mem);
            }
            fclose(mem);
            fwrite(buf, 1, len, stdout);
            fflush(stdout);
            free(buf);
        }
    }
    if (w->listener)
        ust_tcp_close(w->listener);
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
    int rc = ust_workers_run(cfg, echo_setup, echo_fini, &o, stop);
    ust_config_free(cfg);
    free(o.workers);
    return rc == 0 ? 0 : 1;
}
