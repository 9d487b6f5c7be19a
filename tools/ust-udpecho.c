/* ust-udpecho: a UDP echo server on ustack (RFC 862), written against the
 * POSIX-like socket API: one non-blocking datagram socket, and
 * ust_epoll_wait as the main loop (it runs the stack while it waits). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/epoll.h"
#include "ustack/socket.h"
#include "ustack/ustack.h"

#define WAIT_MS 100   /* how soon a signal is noticed */

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-udpecho [--port N] STACK OPTIONS\n"
                 "Echo every UDP datagram back to its sender.\n\n"
                 "  --port N                 UDP port to serve (default 7)\n"
                 "  --help                   this text\n\n");
    ust_config_print_help(out);
}

/* Answer every datagram queued on fd. */
static void echo_all(int fd)
{
    static char buf[65536];
    for (;;) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = ust_recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0)
            return;   /* EAGAIN: drained */
        ust_sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
    }
}

static int parse_args(int argc, char **argv, int *port)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            *port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "ust-udpecho: unknown argument %s\n", argv[i]);
            usage(stderr);
            return -1;
        }
    }
    return (*port > 0 && *port < 65536) ? 0 : -1;
}

static int open_socket(int port)
{
    int fd = ust_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || ust_bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "ust-udpecho: bind port %d: %s\n", port, strerror(errno));
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    int port = 7;
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &port) < 0)
        return 2;
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!s)
        return 1;
    int fd = ust_socket_attach(s) < 0 ? -1 : open_socket(port);
    int ep = fd < 0 ? -1 : ust_epoll_create1(0);
    struct epoll_event want = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || ust_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &want) < 0) {
        ust_socket_detach(s);
        ust_stack_destroy(s);
        return 1;
    }
    fprintf(stderr, "ust-udpecho: serving UDP port %d\n", port);
    while (!*stop) {
        struct epoll_event ev;
        if (ust_epoll_wait(ep, &ev, 1, WAIT_MS) > 0)
            echo_all(fd);
    }
    if (ust_stack_stats_wanted(s))
        ust_stack_print_stats(s, stdout);
    ust_socket_detach(s);   /* closes fd and ep */
    ust_stack_destroy(s);
    return 0;
}
