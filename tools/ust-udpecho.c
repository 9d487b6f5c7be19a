/* ust-udpecho: a UDP echo server on ustack (RFC 862). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/ustack.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-udpecho [--port N] STACK OPTIONS\n"
                 "Echo every UDP datagram back to its sender.\n\n"
                 "  --port N                 UDP port to serve (default 7)\n"
                 "  --help                   this text\n\n");
    ust_config_print_help(out);
}

static void echo_all(struct ust_udp *u, void *arg)
{
    static uint8_t buf[65536];
    (void)arg;
    for (;;) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = ust_udp_recvfrom(u, buf, sizeof(buf), (struct sockaddr *)&from, &fromlen);
        if (n < 0)
            return;
        ust_udp_sendto(u, buf, (size_t)n, (struct sockaddr *)&from, fromlen);
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
    struct ust_udp *u = ust_udp_open(s);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!u || ust_udp_bind(u, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "ust-udpecho: bind port %d: %s\n", port, strerror(errno));
        ust_stack_destroy(s);
        return 1;
    }
    ust_udp_set_callback(u, echo_all, NULL);
    fprintf(stderr, "ust-udpecho: serving UDP port %d\n", port);
    ust_stack_run(s, stop);
    if (ust_stack_stats_wanted(s))
        ust_stack_print_stats(s, stdout);
    ust_udp_close(u);
    ust_stack_destroy(s);
    return 0;
}
