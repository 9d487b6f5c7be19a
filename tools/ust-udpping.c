/* ust-udpping: send UDP datagrams to an echo server through ustack, check
 * that each comes back byte-exact, and report round trips per second. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ustack/ustack.h"

struct ping_opts {
    struct sockaddr_in to;
    unsigned count, size, timeout_ms, retries, link_wait_ms;
};

struct ping_state {
    uint8_t tx[65536], rx[65536];
    uint32_t seq;
    size_t size_expected;
    int got;                 /* reply for seq arrived and matched */
    unsigned bad;            /* replies with wrong bytes */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-udpping --to IP:PORT [options] STACK OPTIONS\n"
                 "Ping-pong UDP datagrams with an echo server; exit 0 when every one came back intact.\n\n"
                 "  --to IP:PORT             the echo server\n"
                 "  --count N                datagrams (default 10)\n"
                 "  --size N                 bytes each, 4..65507 (default 64)\n"
                 "  --timeout-ms N           wait per try before resending (default 200)\n"
                 "  --retries N              resends per datagram before giving up (default 20)\n"
                 "  --link-wait-ms N         wait for the device link (memif) (default 5000)\n"
                 "  --help                   this text\n\n");
    ust_config_print_help(out);
}

static int parse_to(const char *s, struct sockaddr_in *to)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    to->sin_family = AF_INET;
    to->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &to->sin_addr) == 1 && to->sin_port ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct ping_opts *o)
{
    int have_to = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--to") && v) {
            if (parse_to(v, &o->to) < 0)
                return -1;
            have_to = 1;
        } else if (!strcmp(a, "--count") && v) {
            o->count = (unsigned)atoi(v);
        } else if (!strcmp(a, "--size") && v) {
            o->size = (unsigned)atoi(v);
        } else if (!strcmp(a, "--timeout-ms") && v) {
            o->timeout_ms = (unsigned)atoi(v);
        } else if (!strcmp(a, "--retries") && v) {
            o->retries = (unsigned)atoi(v);
        } else if (!strcmp(a, "--link-wait-ms") && v) {
            o->link_wait_ms = (unsigned)atoi(v);
        } else {
            fprintf(stderr, "ust-udpping: unknown argument %s\n", a);
            return -1;
        }
        i++;
    }
    if (!have_to || o->size < 4 || o->size > 65507 || o->count == 0) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* Payload: the sequence number, then bytes derived from it, so a reply
 * corrupted anywhere or belonging to another datagram is caught. */
static void fill_payload(uint8_t *buf, unsigned size, uint32_t seq)
{
    memcpy(buf, &seq, 4);
    uint32_t x = seq * 2654435761u + 1;
    for (unsigned i = 4; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static void on_reply(struct ust_udp *u, void *arg)
{
    struct ping_state *st = arg;
    ssize_t n;
    while ((n = ust_udp_recvfrom(u, st->rx, sizeof(st->rx), NULL, NULL)) >= 0) {
        uint32_t seq;
        if (n < 4)
            continue;
        memcpy(&seq, st->rx, 4);
        if (seq != st->seq)
            continue;   /* a late duplicate of an earlier datagram */
        if ((size_t)n == st->size_expected && memcmp(st->rx, st->tx, (size_t)n) == 0)
            st->got = 1;
        else
            st->bad++;
    }
}

static int wait_link(struct ust_stack *s, unsigned ms, volatile sig_atomic_t *stop)
{
    uint64_t end = ust_now_ns() + (uint64_t)ms * 1000000ULL;
    while (!*stop && ust_now_ns() < end) {
        uint64_t next = ust_stack_poll(s, ust_now_ns());
        if (ust_stack_link_up(s))
            return 0;
        ust_stack_wait(s, next < end ? next : end);
    }
    return -1;
}

/* Send one datagram and poll until its echo arrives or the try times out. */
static int ping_once(struct ust_stack *s, struct ust_udp *u, struct ping_state *st,
                     const struct ping_opts *o, volatile sig_atomic_t *stop)
{
    for (unsigned attempt = 0; attempt <= o->retries && !*stop; attempt++) {
        if (ust_udp_sendto(u, st->tx, o->size, (const struct sockaddr *)&o->to, sizeof(o->to)) < 0 &&
            errno != ENOBUFS) {
            fprintf(stderr, "ust-udpping: sendto: %s\n", strerror(errno));
            return -1;
        }
        uint64_t end = ust_now_ns() + (uint64_t)o->timeout_ms * 1000000ULL;
        while (!st->got && !*stop) {
            uint64_t now = ust_now_ns();
            if (now >= end)
                break;
            uint64_t next = ust_stack_poll(s, now);
            if (!st->got)
                ust_stack_wait(s, next < end ? next : end);
        }
        if (st->got)
            return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct ping_opts o = {.count = 10, .size = 64, .timeout_ms = 200, .retries = 20, .link_wait_ms = 5000};
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &o) < 0)
        return 2;
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!s)
        return 1;
    static struct ping_state st;
    st.size_expected = o.size;
    struct ust_udp *u = ust_udp_open(s);
    ust_udp_set_callback(u, on_reply, &st);
    int rc = 1;
    unsigned done = 0;
    if (wait_link(s, o.link_wait_ms, stop) < 0) {
        fprintf(stderr, "ust-udpping: link did not come up\n");
        goto out;
    }
    uint64_t t0 = ust_now_ns();
    for (; done < o.count && !*stop; done++) {
        st.seq = done;
        st.got = 0;
        fill_payload(st.tx, o.size, done);
        if (ping_once(s, u, &st, &o, stop) < 0) {
            fprintf(stderr, "ust-udpping: no intact reply to datagram %u\n", done);
            break;
        }
    }
    double secs = (double)(ust_now_ns() - t0) / 1e9;
    printf("ust-udpping: %u/%u replies, %u bytes each, %u bad, %.0f round trips/s, %.1f us average\n", done,
           o.count, o.size, st.bad, secs > 0 ? done / secs : 0.0, done ? secs * 1e6 / done : 0.0);
    rc = done == o.count ? 0 : 1;
out:
    if (ust_stack_stats_wanted(s))
        ust_stack_print_stats(s, stdout);
    ust_udp_close(u);
    ust_stack_destroy(s);
    return rc;
}
