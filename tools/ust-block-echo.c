/* ust-block-echo: a TCP echo server (RFC 862) written in plain blocking
 * style — the seeds' "block server" — on ustack coroutines.
 *
 * One coroutine accepts; each connection gets a coroutine of its own that
 * reads and writes back until EOF, as a thread-per-connection server would.
 * A blocking call suspends only its coroutine, so thousands of them share
 * the one thread that runs the stack (ust_coro_run). A client that sends
 * faster than it reads fills our send buffer: the handler blocks in
 * ust_write, stops reading, and TCP flow control slows the client down. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/coro.h"
#include "ustack/socket.h"
#include "ustack/ustack.h"

#define ECHO_BUF 16384   /* per connection, on its coroutine's stack */

struct echo_stats {
    uint64_t accepted, closed, errors, bytes, active, max_active;
};

static struct echo_stats stats;
static struct ust_stack *stack;

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-block-echo [--port N] STACK OPTIONS\n"
                 "TCP echo server in blocking style, one coroutine per connection.\n\n"
                 "  --port N                 TCP port to serve (default 7)\n"
                 "  --backlog N              accept queue length (default 4096)\n"
                 "  --help                   this text\n\n");
    ust_config_print_help(out);
}

/* Write all of buf; 0, or -1 on a connection error. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = ust_write(fd, buf, len);
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[ECHO_BUF];
    ssize_t n;
    while ((n = ust_read(fd, buf, sizeof(buf))) > 0) {
        if (write_all(fd, buf, (size_t)n) < 0)
            break;
        stats.bytes += (uint64_t)n;
    }
    if (n != 0)
        stats.errors++;
    stats.closed++;
    stats.active--;
    ust_close(fd);   /* graceful: the FIN follows everything queued */
}

static void accept_loop(void *arg)
{
    int l = (int)(intptr_t)arg;
    for (;;) {
        int c = ust_accept(l, NULL, NULL);
        if (c < 0) {
            if (errno == EBADF)   /* the listener was closed: we are done */
                return;
            ust_coro_sleep(10 * 1000000ULL);   /* e.g. out of memory: back off */
            continue;
        }
        stats.accepted++;
        if (++stats.active > stats.max_active)
            stats.max_active = stats.active;
        if (ust_coro_spawn(stack, echo_conn, (void *)(intptr_t)c, 0) < 0) {
            stats.errors++;
            stats.closed++;
            stats.active--;
            ust_close(c);
        }
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
            fprintf(stderr, "ust-block-echo: unknown argument %s\n", argv[i]);
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

static int listen_on(int port, int backlog)
{
    int l = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (l < 0 || ust_bind(l, (struct sockaddr *)&addr, sizeof(addr)) < 0 || ust_listen(l, backlog) < 0) {
        fprintf(stderr, "ust-block-echo: listen on port %d: %s\n", port, strerror(errno));
        return -1;
    }
    return l;
}

int main(int argc, char **argv)
{
    int port = 7, backlog = 4096;
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &port, &backlog) < 0)
        return 2;
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    stack = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!stack)
        return 1;
    int l = ust_socket_attach(stack) < 0 ? -1 : listen_on(port, backlog);
    if (l < 0 || ust_coro_spawn(stack, accept_loop, (void *)(intptr_t)l, 0) < 0) {
        ust_socket_detach(stack);
        ust_stack_destroy(stack);
        return 1;
    }
    fprintf(stderr, "ust-block-echo: serving TCP port %d\n", port);
    ust_coro_run(stack, stop);
    if (ust_stack_stats_wanted(stack)) {
        print_stats(stdout);
        ust_stack_print_stats(stack, stdout);
    }
    /* Close every socket (waking their coroutines, which never run again),
     * then drop the coroutines' stacks. */
    ust_socket_detach(stack);
    ust_coro_shutdown(stack);
    ust_stack_destroy(stack);
    return 0;
}
