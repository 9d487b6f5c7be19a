/* ust-echo: a TCP echo server on ustack (RFC 862), an example of the event
 * API for many concurrent connections.
 *
 * Everything runs inside ust_stack_poll: the listener's callback accepts,
 * each connection's callback echoes. No connection owns an application
 * buffer: we read only as many bytes as the send buffer can take right now
 * (ust_tcp_sendable), so a client that sends faster than it reads fills our
 * send buffer, we stop reading, our receive window closes and TCP flow
 * control slows the client down. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/ustack.h"

struct echo_stats {
    uint64_t accepted, closed, errors, bytes, active, max_active;
};

static struct echo_stats stats;

/* One scratch buffer for all connections: the callbacks run one at a time. */
static uint8_t scratch[65536];

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-echo [--port N] STACK OPTIONS\n"
                 "TCP echo server: sends every byte back; closes after the client's FIN.\n\n"
                 "  --port N                 TCP port to serve (default 7)\n"
                 "  --backlog N              accept queue length (default 4096)\n"
                 "  --help                   this text\n\n");
    ust_config_print_help(out);
}

static void echo_finish(struct ust_tcp *c, int error)
{
    if (error)
        stats.errors++;
    stats.closed++;
    stats.active--;
    /* Graceful: the FIN goes out after everything already queued. */
    ust_tcp_close(c);
}

/* Ask for WRITABLE the way an edge-triggered socket does: a send that
 * finds the buffer full fails with EAGAIN and arms the event; nothing is
 * queued. */
static void echo_arm_writable(struct ust_tcp *c)
{
    (void)ust_tcp_send(c, scratch, 1);
}

/* Move bytes from the receive side to the send side while both can.
 * Returns 1 when the client's FIN was read (all its data echoed), -1 on a
 * connection error, 0 otherwise (waiting for data or for send room). */
static int echo_pump(struct ust_tcp *c)
{
    for (;;) {
        size_t room = ust_tcp_sendable(c);
        if (room == 0) {
            if (ust_tcp_readable(c) == 0)
                return 0;
            echo_arm_writable(c);
            return 0;
        }
        ssize_t n = ust_tcp_recv(c, scratch, room < sizeof(scratch) ? room : sizeof(scratch));
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        ssize_t sent = ust_tcp_send(c, scratch, (size_t)n);
        if (sent != n)   /* cannot happen: we read no more than there was room for */
            return -1;
        stats.bytes += (uint64_t)n;
    }
}

static void on_conn(struct ust_tcp *c, unsigned events, void *arg)
{
    (void)arg;
    if (events & UST_TCP_ERROR) {
        echo_finish(c, 1);
        return;
    }
    int r = echo_pump(c);
    if (r != 0 || (events & UST_TCP_CLOSED))
        echo_finish(c, r < 0);
}

static void on_listener(struct ust_tcp *l, unsigned events, void *arg)
{
    (void)arg;
    if (!(events & UST_TCP_ACCEPT))
        return;
    struct ust_tcp *c;
    while ((c = ust_tcp_accept(l))) {
        stats.accepted++;
        if (++stats.active > stats.max_active)
            stats.max_active = stats.active;
        ust_tcp_set_callback(c, on_conn, NULL);
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

static void print_stats(FILE *out)
{
    fprintf(out,
            "echo_accepted %llu\necho_closed %llu\necho_errors %llu\necho_bytes %llu\n"
            "echo_active %llu\necho_max_active %llu\n",
            (unsigned long long)stats.accepted, (unsigned long long)stats.closed,
            (unsigned long long)stats.errors, (unsigned long long)stats.bytes,
            (unsigned long long)stats.active, (unsigned long long)stats.max_active);
}

int main(int argc, char **argv)
{
    int port = 7, backlog = 4096;
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &port, &backlog) < 0)
        return 2;
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!s)
        return 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct ust_tcp *l = ust_tcp_listen(s, (struct sockaddr *)&addr, sizeof(addr), backlog, on_listener, NULL);
    if (!l) {
        fprintf(stderr, "ust-echo: listen on port %d: %s\n", port, strerror(errno));
        ust_stack_destroy(s);
        return 1;
    }
    fprintf(stderr, "ust-echo: serving TCP port %d\n", port);
    ust_stack_run(s, stop);
    if (ust_stack_stats_wanted(s)) {
        print_stats(stdout);
        ust_stack_print_stats(s, stdout);
    }
    ust_tcp_close(l);
    ust_stack_destroy(s);
    return 0;
}
