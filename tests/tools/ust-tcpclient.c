/* ust-tcpclient: an ustack TCP client for interop tests.
 *
 *   echo      send the data, then FIN; the same bytes must come back, then
 *             the peer's FIN. Compared as they arrive, nothing is held.
 *   upload    send the data, then FIN; whatever comes back until the peer's
 *             FIN goes to --recv-file (e.g. a checksum from a sink server).
 *   download  send nothing; read until the peer's FIN into --recv-file and,
 *             with --expect-bytes N, require N bytes of the pattern.
 *
 * The data is --send-file or --send-bytes N of the test pattern: a table of
 * PATTERN_PERIOD bytes from xorshift64, repeated; tests/tools/tcppeer.py
 * makes the same bytes (its "pattern" mode), so no file is needed. The
 * period is prime, so a segment placed at a wrong offset never matches.
 *
 * Exit 0 only when every connection moved every byte intact and closed
 * cleanly; 1 otherwise, including when nothing moved for --timeout seconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ustack/ustack.h"

#define PATTERN_PERIOD 1048573u     /* prime, just under 1 MiB */
#define CHUNK 65536u

enum client_mode { MODE_ECHO, MODE_UPLOAD, MODE_DOWNLOAD };

struct client_opts {
    struct sockaddr_in dst;
    const char *send_file, *recv_file;
    uint64_t send_bytes, expect_bytes;
    int have_bytes, have_expect;
    unsigned conns, timeout_s, link_wait_ms;
    enum client_mode mode;
};

struct conn {
    struct ust_tcp *h;
    unsigned idx;
    uint64_t sent, rcvd;
    int connected, shut, eof, finished, failed;
    FILE *out;
};

struct client {
    struct client_opts o;
    struct conn *conns;
    uint64_t length;          /* bytes each connection sends */
    int fd_in;                /* --send-file, or -1 for the pattern */
    uint8_t *pattern;         /* two periods back to back: any window < 1 period is contiguous */
    unsigned n_finished, n_failed;
    uint64_t last_progress, total_sent, total_rcvd;
};

static struct client cl;
static uint8_t scratch[CHUNK], expect[CHUNK];

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ust-tcpclient --connect IP:PORT [options] STACK OPTIONS\n"
            "TCP test client: moves data to/from a server and checks every byte.\n\n"
            "  --connect IP:PORT        the server\n"
            "  --mode echo|upload|download  (default echo)\n"
            "  --send-file F            data to send (each connection sends all of F)\n"
            "  --send-bytes N           send N bytes of the test pattern instead\n"
            "  --recv-file OUT          write what comes back here (OUT.K per connection\n"
            "                           when --conns > 1)\n"
            "  --expect-bytes N         download: require N bytes of the test pattern\n"
            "  --conns N                concurrent connections (default 1)\n"
            "  --timeout S              fail when nothing moves for S seconds (default 30)\n"
            "  --link-wait-ms N         wait for the device link (default 5000)\n"
            "  --help                   this text\n\n");
    ust_config_print_help(out);
}

static void pattern_init(uint8_t *p)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < PATTERN_PERIOD; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (uint32_t k = 0; k < 8 && i + k < PATTERN_PERIOD; k++)
            p[i + k] = (uint8_t)(x >> (8 * k));
    }
    memcpy(p + PATTERN_PERIOD, p, PATTERN_PERIOD);
}

/* The len (<= CHUNK) bytes of the data at offset off. */
static int source_read(uint64_t off, uint8_t *buf, size_t len)
{
    if (cl.fd_in < 0) {
        memcpy(buf, cl.pattern + off % PATTERN_PERIOD, len);
        return 0;
    }
    ssize_t n = pread(cl.fd_in, buf, len, (off_t)off);
    return n == (ssize_t)len ? 0 : -1;
}

static void conn_fail(struct conn *c, const char *why, int err)
{
    fprintf(stderr, "ust-tcpclient: connection %u: %s%s%s (state %s, sent %llu, received %llu)\n", c->idx, why,
            err ? ": " : "", err ? strerror(err) : "", c->h ? ust_tcp_state(c->h) : "-",
            (unsigned long long)c->sent, (unsigned long long)c->rcvd);
    if (c->h)
        ust_tcp_abort(c->h);
    c->h = NULL;
    c->failed = 1;
    cl.n_failed++;
}

static void progress(uint64_t n)
{
    if (n)
        cl.last_progress = ust_now_ns();
}

static void conn_pump_send(struct conn *c)
{
    if (cl.o.mode == MODE_DOWNLOAD)
        return;
    while (c->sent < cl.length) {
        size_t want = cl.length - c->sent < CHUNK ? (size_t)(cl.length - c->sent) : CHUNK;
        if (source_read(c->sent, scratch, want) < 0) {
            conn_fail(c, "reading --send-file", errno);
            return;
        }
        /* A short send arms WRITABLE; we come back then. */
        ssize_t n = ust_tcp_send(c->h, scratch, want);
        if (n < 0) {
            if (errno != EAGAIN)
                conn_fail(c, "send", errno);
            return;
        }
        c->sent += (uint64_t)n;
        cl.total_sent += (uint64_t)n;
        progress((uint64_t)n);
        if ((size_t)n < want)
            return;
    }
    if (!c->shut) {
        c->shut = 1;
        if (ust_tcp_shutdown(c->h, SHUT_WR) < 0)
            conn_fail(c, "shutdown", errno);
    }
}

static int conn_check_echo(struct conn *c, const uint8_t *buf, size_t n)
{
    if (c->rcvd + n > c->sent) {
        conn_fail(c, "more bytes came back than were sent", 0);
        return -1;
    }
    if (source_read(c->rcvd, expect, n) < 0) {
        conn_fail(c, "reading --send-file", errno);
        return -1;
    }
    if (memcmp(buf, expect, n) != 0) {
        size_t i = 0;
        while (buf[i] == expect[i])
            i++;
        fprintf(stderr, "ust-tcpclient: connection %u: byte %llu is 0x%02x, expected 0x%02x\n", c->idx,
                (unsigned long long)(c->rcvd + i), buf[i], expect[i]);
        conn_fail(c, "data mismatch", 0);
        return -1;
    }
    return 0;
}

static int conn_take(struct conn *c, const uint8_t *buf, size_t n)
{
    if (cl.o.mode == MODE_ECHO)
        return conn_check_echo(c, buf, n);
    if (cl.o.mode == MODE_DOWNLOAD && cl.o.have_expect) {
        if (c->rcvd + n > cl.o.expect_bytes) {
            conn_fail(c, "more bytes than --expect-bytes", 0);
            return -1;
        }
        if (memcmp(buf, cl.pattern + c->rcvd % PATTERN_PERIOD, n) != 0) {
            conn_fail(c, "data is not the pattern", 0);
            return -1;
        }
    }
    if (c->out && fwrite(buf, 1, n, c->out) != n) {
        conn_fail(c, "writing --recv-file", errno);
        return -1;
    }
    return 0;
}

static void conn_pump_recv(struct conn *c)
{
    while (c->h && !c->eof) {
        ssize_t n = ust_tcp_recv(c->h, scratch, sizeof(scratch));
        if (n == 0) {
            c->eof = 1;
        } else if (n < 0) {
            if (errno != EAGAIN)
                conn_fail(c, "recv", errno);
            return;
        } else {
            if (conn_take(c, scratch, (size_t)n) < 0)
                return;
            c->rcvd += (uint64_t)n;
            cl.total_rcvd += (uint64_t)n;
            progress((uint64_t)n);
        }
    }
}

/* Finished: the peer's FIN arrived after everything we expected. */
static void conn_maybe_finish(struct conn *c)
{
    if (!c->h || !c->eof)
        return;
    if (cl.o.mode == MODE_ECHO && c->rcvd != cl.length) {
        conn_fail(c, "peer closed before echoing everything", 0);
        return;
    }
    if (cl.o.mode == MODE_DOWNLOAD && cl.o.have_expect && c->rcvd != cl.o.expect_bytes) {
        conn_fail(c, "peer closed before sending --expect-bytes", 0);
        return;
    }
    if (cl.o.mode != MODE_DOWNLOAD && c->sent != cl.length) {
        conn_fail(c, "peer closed before taking everything", 0);
        return;
    }
    ust_tcp_close(c->h);
    c->h = NULL;
    c->finished = 1;
    cl.n_finished++;
}

static void on_event(struct ust_tcp *h, unsigned events, void *arg)
{
    struct conn *c = arg;
    (void)h;
    if (events & UST_TCP_ERROR) {
        conn_fail(c, "connection error", ust_tcp_error(c->h));
        return;
    }
    if (events & UST_TCP_CONNECTED)
        c->connected = 1;
    if (!c->connected)
        return;
    conn_pump_send(c);
    if (c->h)
        conn_pump_recv(c);
    conn_maybe_finish(c);
    if (c->h && (events & UST_TCP_CLOSED))
        conn_fail(c, "closed before the transfer finished", 0);
}

static int parse_addr(const char *s, struct sockaddr_in *to)
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

static int parse_mode(const char *s, enum client_mode *m)
{
    if (!strcmp(s, "echo"))
        *m = MODE_ECHO;
    else if (!strcmp(s, "upload"))
        *m = MODE_UPLOAD;
    else if (!strcmp(s, "download"))
        *m = MODE_DOWNLOAD;
    else
        return -1;
    return 0;
}

static int parse_one(struct client_opts *o, const char *a, const char *v, int *have_dst)
{
    if (!strcmp(a, "--connect")) {
        *have_dst = 1;
        return parse_addr(v, &o->dst);
    } else if (!strcmp(a, "--mode")) {
        return parse_mode(v, &o->mode);
    } else if (!strcmp(a, "--send-file")) {
        o->send_file = v;
    } else if (!strcmp(a, "--send-bytes")) {
        o->send_bytes = strtoull(v, NULL, 0);
        o->have_bytes = 1;
    } else if (!strcmp(a, "--expect-bytes")) {
        o->expect_bytes = strtoull(v, NULL, 0);
        o->have_expect = 1;
    } else if (!strcmp(a, "--recv-file")) {
        o->recv_file = v;
    } else if (!strcmp(a, "--conns")) {
        o->conns = (unsigned)atoi(v);
    } else if (!strcmp(a, "--timeout")) {
        o->timeout_s = (unsigned)atoi(v);
    } else if (!strcmp(a, "--link-wait-ms")) {
        o->link_wait_ms = (unsigned)atoi(v);
    } else {
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct client_opts *o)
{
    int have_dst = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc || parse_one(o, argv[i], argv[i + 1], &have_dst) < 0) {
            fprintf(stderr, "ust-tcpclient: bad argument %s\n", argv[i]);
            usage(stderr);
            return -1;
        }
        i++;
    }
    int need_data = o->mode != MODE_DOWNLOAD;
    if (!have_dst || o->conns == 0 || o->timeout_s == 0 || (o->send_file && o->have_bytes) ||
        (need_data && !o->send_file && !o->have_bytes)) {
        usage(stderr);
        return -1;
    }
    return 0;
}

static int source_open(void)
{
    cl.fd_in = -1;
    cl.length = cl.o.send_bytes;
    if (!cl.o.send_file)
        return 0;
    struct stat st;
    cl.fd_in = open(cl.o.send_file, O_RDONLY);
    if (cl.fd_in < 0 || fstat(cl.fd_in, &st) < 0) {
        fprintf(stderr, "ust-tcpclient: %s: %s\n", cl.o.send_file, strerror(errno));
        return -1;
    }
    cl.length = (uint64_t)st.st_size;
    return 0;
}

static FILE *open_recv_file(unsigned idx)
{
    if (!cl.o.recv_file)
        return NULL;
    char name[4096];
    if (cl.o.conns > 1)
        snprintf(name, sizeof(name), "%s.%u", cl.o.recv_file, idx);
    else
        snprintf(name, sizeof(name), "%s", cl.o.recv_file);
    FILE *f = fopen(name, "wb");
    if (!f)
        fprintf(stderr, "ust-tcpclient: %s: %s\n", name, strerror(errno));
    return f;
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

static int start_conns(struct ust_stack *s)
{
    for (unsigned i = 0; i < cl.o.conns; i++) {
        struct conn *c = &cl.conns[i];
        c->idx = i;
        if (cl.o.recv_file && !(c->out = open_recv_file(i)))
            return -1;
        c->h = ust_tcp_connect(s, (struct sockaddr *)&cl.o.dst, sizeof(cl.o.dst), NULL, 0, on_event, c);
        if (!c->h) {
            conn_fail(c, "connect", errno);
            return -1;
        }
    }
    return 0;
}

/* Abort every connection still open, describing the first few. */
static void abort_unfinished(const char *why)
{
    unsigned shown = 0;
    for (unsigned i = 0; i < cl.o.conns; i++) {
        struct conn *c = &cl.conns[i];
        if (!c->h)
            continue;
        if (shown++ < 10) {
            conn_fail(c, why, 0);
        } else {
            ust_tcp_abort(c->h);
            c->h = NULL;
            c->failed = 1;
            cl.n_failed++;
        }
    }
}

static void report_stalled(void)
{
    fprintf(stderr, "ust-tcpclient: no progress for %u s; %u finished, %u failed of %u\n", cl.o.timeout_s,
            cl.n_finished, cl.n_failed, cl.o.conns);
    abort_unfinished("stalled");
}

/* Run until every connection finished or failed, or nothing moved for
 * --timeout seconds. */
static void run_transfers(struct ust_stack *s, volatile sig_atomic_t *stop)
{
    cl.last_progress = ust_now_ns();
    uint64_t limit = (uint64_t)cl.o.timeout_s * 1000000000ULL;
    while (!*stop && cl.n_finished + cl.n_failed < cl.o.conns) {
        uint64_t now = ust_now_ns();
        if (now - cl.last_progress > limit) {
            report_stalled();
            break;
        }
        uint64_t next = ust_stack_poll(s, now);
        uint64_t cap = now + 100000000ULL;
        ust_stack_wait(s, next < cap ? next : cap);
    }
    if (*stop)
        abort_unfinished("interrupted");
}

/* Keep the stack running briefly so our last ACKs and FINs leave. */
static void linger(struct ust_stack *s, uint64_t ns)
{
    uint64_t end = ust_now_ns() + ns;
    while (ust_now_ns() < end) {
        uint64_t next = ust_stack_poll(s, ust_now_ns());
        ust_stack_wait(s, next < end ? next : end);
    }
}

static int close_outputs(void)
{
    int rc = 0;
    for (unsigned i = 0; i < cl.o.conns; i++)
        if (cl.conns[i].out && fclose(cl.conns[i].out) != 0)
            rc = -1;
    return rc;
}

static void report(double secs)
{
    double moved = (double)(cl.total_sent > cl.total_rcvd ? cl.total_sent : cl.total_rcvd);
    printf("ust-tcpclient: %u/%u connections ok, sent %llu, received %llu bytes in %.2f s: %.1f MB/s\n",
           cl.n_finished, cl.o.conns, (unsigned long long)cl.total_sent, (unsigned long long)cl.total_rcvd, secs,
           secs > 0 ? moved / secs / 1e6 : 0.0);
}

int main(int argc, char **argv)
{
    cl.o = (struct client_opts){.conns = 1, .timeout_s = 30, .link_wait_ms = 5000, .mode = MODE_ECHO};
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &cl.o) < 0)
        return 2;
    cl.pattern = malloc(2 * (size_t)PATTERN_PERIOD);
    cl.conns = calloc(cl.o.conns, sizeof(*cl.conns));
    if (!cl.pattern || !cl.conns || source_open() < 0)
        return 2;
    pattern_init(cl.pattern);
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!s)
        return 1;
    int rc = 1;
    if (wait_link(s, cl.o.link_wait_ms, stop) < 0) {
        fprintf(stderr, "ust-tcpclient: link did not come up\n");
    } else {
        uint64_t t0 = ust_now_ns();
        if (start_conns(s) == 0)
            run_transfers(s, stop);
        else
            abort_unfinished("not started");
        double secs = (double)(ust_now_ns() - t0) / 1e9;
        linger(s, 200000000ULL);
        report(secs);
        rc = cl.n_finished == cl.o.conns ? 0 : 1;
    }
    if (close_outputs() < 0)
        rc = 1;
    if (ust_stack_stats_wanted(s))
        ust_stack_print_stats(s, stdout);
    ust_stack_destroy(s);
    free(cl.conns);
    free(cl.pattern);
    if (cl.fd_in >= 0)
        close(cl.fd_in);
    return rc;
}
