/* ust-get: fetch one URL over ustack and write its body out.
 *
 *   ust-get [STACK OPTIONS] [-o FILE] [--timeout SEC] http://IP[:PORT]/PATH
 *
 * HTTP/1.1 GET with "Connection: close" (RFC 9112). The body is delimited
 * by chunked transfer coding, Content-Length, or the server's close, in
 * that order of precedence (RFC 9112 §6.3). Interim 1xx responses are
 * skipped. Exit status: 0 for a 2xx response received whole; 1 for any
 * failure (network, timeout, malformed or truncated response); 3 for a
 * complete response whose status is not 2xx (its body is not written); 2
 * for bad usage. On failure a partly written -o FILE is removed (if it is
 * a regular file).
 *
 * One non-blocking socket in one epoll instance; every wait is a short
 * ust_epoll_wait, so SIGINT/SIGTERM and the --timeout (no progress for
 * that long) are noticed within LOOP_TICK_MS. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ustack/ustack.h"

#define HEAD_MAX 16384         /* status line + header fields */
#define BUF_LEN 65536
#define LINE_MAX_LEN 1024      /* chunk-size lines and trailer fields */
#define LOOP_TICK_MS 100
#define CLOSE_WAIT_MS 300      /* let our FIN and last ACK out before exit */

struct get_opts {
    struct sockaddr_in dst;
    char host[64];                   /* the authority, for Host: */
    const char *path;
    const char *out_file;
    unsigned timeout_s, link_wait_ms;
};

/* The connection and a small read buffer in front of it. */
struct get_conn {
    int fd, ep;
    volatile sig_atomic_t *stop;
    uint64_t timeout_ns, deadline;
    char buf[BUF_LEN];
    size_t pos, len;
    int eof;
};

struct get_resp {
    int status;
    int chunked, have_clen, conn_close;
    uint64_t clen;
};

/* ---- waiting ---- */

static void get_progress(struct get_conn *g) { g->deadline = ust_now_ns() + g->timeout_ns; }

/* Waits until fd reports one of events. 0, or -1 (timeout, signal). */
static int get_wait(struct get_conn *g, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = g->fd};
    if (ust_epoll_ctl(g->ep, EPOLL_CTL_MOD, g->fd, &ev) < 0)
        return -1;
    while (!*g->stop) {
        if (ust_now_ns() >= g->deadline) {
            fprintf(stderr, "ust-get: timed out\n");
            return -1;
        }
        if (ust_epoll_wait(g->ep, &ev, 1, LOOP_TICK_MS) > 0)
            return 0;
    }
    fprintf(stderr, "ust-get: interrupted\n");
    return -1;
}

static int get_wait_link(struct ust_stack *s, unsigned ms, volatile sig_atomic_t *stop)
{
    uint64_t end = ust_now_ns() + (uint64_t)ms * 1000000ULL;
    while (!ust_stack_link_up(s)) {
        if (*stop || ust_now_ns() >= end)
            return -1;
        ust_socket_run(10);
    }
    return 0;
}

/* ---- connection ---- */

static int get_connect(struct get_conn *g, const struct get_opts *o)
{
    g->fd = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    g->ep = ust_epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = g->fd};
    if (g->fd < 0 || g->ep < 0 || ust_epoll_ctl(g->ep, EPOLL_CTL_ADD, g->fd, &ev) < 0)
        return -1;
    if (ust_connect(g->fd, (const struct sockaddr *)&o->dst, sizeof(o->dst)) == 0)
        return 0;
    if (errno != EINPROGRESS || get_wait(g, EPOLLOUT) < 0)
        return -1;
    int err = 0;
    socklen_t len = sizeof(err);
    if (ust_getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    errno = err;
    return err ? -1 : 0;
}

static int get_send_all(struct get_conn *g, const char *p, size_t n)
{
    while (n) {
        ssize_t w = ust_write(g->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            get_progress(g);
        } else if (w < 0 && errno == EAGAIN) {
            if (get_wait(g, EPOLLOUT) < 0)
                return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

/* Refills the buffer (keeping unread bytes). 1: more data, 0: EOF, -1: error. */
static int get_fill(struct get_conn *g)
{
    if (g->eof)
        return 0;
    if (g->pos) {
        memmove(g->buf, g->buf + g->pos, g->len - g->pos);
        g->len -= g->pos;
        g->pos = 0;
    }
    if (g->len == sizeof(g->buf))
        return 1;
    for (;;) {
        ssize_t r = ust_read(g->fd, g->buf + g->len, sizeof(g->buf) - g->len);
        if (r > 0) {
            g->len += (size_t)r;
            get_progress(g);
            return 1;
        }
        if (r == 0) {
            g->eof = 1;
            return 0;
        }
        if (errno != EAGAIN || get_wait(g, EPOLLIN | EPOLLRDHUP) < 0)
            return -1;
    }
}

/* One line ending in LF (CR before it dropped) of at most max bytes,
 * copied into line. 0, or -1 (too long, EOF, error). */
static int get_line(struct get_conn *g, char *line, size_t max)
{
    for (;;) {
        char *nl = memchr(g->buf + g->pos, '\n', g->len - g->pos);
        if (nl) {
            size_t n = (size_t)(nl - (g->buf + g->pos));
            if (n && nl[-1] == '\r')
                n--;
            if (n >= max)
                return -1;
            memcpy(line, g->buf + g->pos, n);
            line[n] = '\0';
            g->pos = (size_t)(nl + 1 - g->buf);
            return 0;
        }
        if (g->len - g->pos >= max || get_fill(g) <= 0)
            return -1;
    }
}

/* ---- the response ---- */

static int parse_status_line(const char *l, struct get_resp *r)
{
    /* RFC 9112 §4: HTTP-version SP 3DIGIT SP [reason] */
    if (strncmp(l, "HTTP/1.", 7) || l[7] < '0' || l[7] > '9' || l[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return -1;
    if (l[12] != ' ' && l[12] != '\0')
        return -1;
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    return 0;
}

static int parse_u64_dec(const char *v, uint64_t *out)
{
    uint64_t x = 0;
    if (!*v || strlen(v) > 18)
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        x = x * 10 + (uint64_t)(*v - '0');
    }
    *out = x;
    return 0;
}

static int parse_field(char *l, struct get_resp *r)
{
    char *colon = strchr(l, ':');
    if (!colon || colon == l)
        return -1;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        v[--vl] = '\0';
    if (!strcasecmp(l, "content-length")) {
        uint64_t x;
        if (parse_u64_dec(v, &x) < 0 || (r->have_clen && x != r->clen))
            return -1;
        r->have_clen = 1;
        r->clen = x;
    } else if (!strcasecmp(l, "transfer-encoding")) {
        /* RFC 9112 §6.3: chunked must be the final coding; we decode no
         * other, so anything else ("gzip, chunked") is refused. */
        if (strcasecmp(v, "chunked"))
            return -1;
        r->chunked = 1;
    } else if (!strcasecmp(l, "connection") && strcasestr(v, "close")) {
        r->conn_close = 1;
    }
    return 0;
}

/* Reads one response head. 0, or -1 (malformed, too long, EOF). */
static int get_read_head(struct get_conn *g, struct get_resp *r)
{
    char line[HEAD_MAX];
    size_t total = 0;
    memset(r, 0, sizeof(*r));
    if (get_line(g, line, sizeof(line)) < 0 || parse_status_line(line, r) < 0)
        return -1;
    for (;;) {
        if (get_line(g, line, sizeof(line)) < 0)
            return -1;
        total += strlen(line) + 2;
        if (line[0] == '\0')
            return 0;
        if (total > HEAD_MAX || parse_field(line, r) < 0)
            return -1;
    }
}

/* Copies exactly n body bytes (or, with until_eof, all until EOF) to out. */
static int body_copy(struct get_conn *g, FILE *out, uint64_t n, int until_eof)
{
    while (n || until_eof) {
        if (g->pos == g->len) {
            int f = get_fill(g);
            if (f < 0 || (f == 0 && !until_eof))
                return -1;
            if (f == 0)
                return 0;
        }
        size_t k = g->len - g->pos;
        if (!until_eof && k > n)
            k = (size_t)n;
        if (out && fwrite(g->buf + g->pos, 1, k, out) != k)
            return -1;
        g->pos += k;
        if (!until_eof)
            n -= k;
    }
    return 0;
}

/* RFC 9112 §7.1: chunk-size [ext] CRLF data CRLF ... 0 CRLF trailers CRLF */
static int body_chunked(struct get_conn *g, FILE *out)
{
    char line[LINE_MAX_LEN];
    for (;;) {
        if (get_line(g, line, sizeof(line)) < 0)
            return -1;
        char *end;
        errno = 0;
        unsigned long long size = strtoull(line, &end, 16);
        if (end == line || errno || (*end && *end != ';' && *end != ' ' && *end != '\t') || line[0] == '-')
            return -1;
        if (size == 0)
            break;
        if (body_copy(g, out, size, 0) < 0 || get_line(g, line, sizeof(line)) < 0 || line[0])
            return -1;
    }
    do {   /* trailer fields, ignored */
        if (get_line(g, line, sizeof(line)) < 0)
            return -1;
    } while (line[0]);
    return 0;
}

static int get_body(struct get_conn *g, const struct get_resp *r, FILE *out)
{
    /* RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content. */
    if (r->status == 204 || r->status == 304)
        return 0;
    if (r->chunked)
        return body_chunked(g, out);
    if (r->have_clen)
        return body_copy(g, out, r->clen, 0);
    return body_copy(g, out, 0, 1);
}

/* ---- the program ---- */

static void usage(FILE *out)
{
    fprintf(out, "usage: ust-get [STACK OPTIONS] [-o FILE] [--timeout SEC] http://IP[:PORT]/PATH\n"
                 "Fetches the URL over ustack; the body goes to stdout (or FILE).\n"
                 "Exit: 0 ok (2xx), 1 failure, 3 non-2xx status, 2 usage.\n\n"
                 "  -o FILE               write the body to FILE (removed again on failure)\n"
                 "  --timeout SEC         give up after SEC seconds without progress (default 10)\n"
                 "  --link-wait-ms MS     wait this long for the device to come up (default 5000)\n"
                 "  --help                this text\n\n");
    ust_config_print_help(out);
}

/* http://A.B.C.D[:PORT][/PATH] -- no names: there is no resolver here. */
static int parse_url(const char *url, struct get_opts *o)
{
    if (strncasecmp(url, "http://", 7))
        return -1;
    const char *a = url + 7, *slash = strchr(a, '/');
    size_t alen = slash ? (size_t)(slash - a) : strlen(a);
    if (alen == 0 || alen >= sizeof(o->host))
        return -1;
    memcpy(o->host, a, alen);
    o->host[alen] = '\0';
    char ip[64];
    memcpy(ip, o->host, alen + 1);
    unsigned long port = 80;
    char *colon = strchr(ip, ':');
    if (colon) {
        char *end;
        *colon = '\0';
        port = strtoul(colon + 1, &end, 10);
        if (end == colon + 1 || *end || port == 0 || port > 65535)
            return -1;
    }
    o->dst.sin_family = AF_INET;
    o->dst.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &o->dst.sin_addr) != 1)
        return -1;
    o->path = slash ? slash : "/";
    for (const char *p = o->path; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return -1;
    return 0;
}

static int parse_args(int argc, char **argv, struct get_opts *o)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "-o") && v) {
            o->out_file = v;
            i++;
        } else if (!strcmp(a, "--timeout") && v && atoi(v) > 0) {
            o->timeout_s = (unsigned)atoi(v);
            i++;
        } else if (!strcmp(a, "--link-wait-ms") && v) {
            o->link_wait_ms = (unsigned)atoi(v);
            i++;
        } else if (a[0] != '-' && !url) {
            url = a;
        } else {
            fprintf(stderr, "ust-get: bad argument: %s\n", a);
            return -1;
        }
    }
    if (!url || parse_url(url, o) < 0) {
        fprintf(stderr, "ust-get: need one URL http://IP[:PORT]/PATH%s%s\n", url ? ", not " : "", url ? url : "");
        return -1;
    }
    return 0;
}

/* Our FIN after theirs: wait (briefly) until both directions are done. */
static void get_close(struct get_conn *g)
{
    if (g->fd < 0)
        return;
    ust_shutdown(g->fd, SHUT_WR);
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.fd = g->fd};
    ust_epoll_ctl(g->ep, EPOLL_CTL_MOD, g->fd, &ev);
    uint64_t end = ust_now_ns() + CLOSE_WAIT_MS * 1000000ULL;
    while (!*g->stop && ust_now_ns() < end) {
        if (ust_epoll_wait(g->ep, &ev, 1, 20) > 0 && (ev.events & EPOLLHUP))
            break;
    }
    ust_close(g->fd);
    g->fd = -1;
}

/* Connects, sends the request, reads the response into out. Returns the
 * exit status. */
static int get_fetch(struct get_conn *g, const struct get_opts *o, FILE *out)
{
    char req[2048];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ust-get\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n", o->path, o->host);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        fprintf(stderr, "ust-get: URL too long\n");
        return 2;
    }
    get_progress(g);
    if (get_connect(g, o) < 0) {
        fprintf(stderr, "ust-get: connect to %s: %s\n", o->host, strerror(errno));
        return 1;
    }
    if (get_send_all(g, req, (size_t)n) < 0) {
        fprintf(stderr, "ust-get: sending the request: %s\n", strerror(errno));
        return 1;
    }
    struct get_resp r;
    do {
        if (get_read_head(g, &r) < 0) {
            fprintf(stderr, "ust-get: no valid response head\n");
            return 1;
        }
    } while (r.status >= 100 && r.status < 200);   /* interim responses */
    int ok = r.status >= 200 && r.status < 300;
    if (get_body(g, &r, ok ? out : NULL) < 0) {
        fprintf(stderr, "ust-get: truncated or malformed body (HTTP %d)\n", r.status);
        return 1;
    }
    if (!ok) {
        fprintf(stderr, "ust-get: HTTP status %d\n", r.status);
        return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct get_opts o = {.timeout_s = 10, .link_wait_ms = 5000};
    struct ust_config *cfg = ust_config_new();
    if (!cfg)
        return 2;
    int pr = ust_config_parse_args(cfg, &argc, argv) < 0 ? -1 : parse_args(argc, argv, &o);
    FILE *out = pr == 0 && o.out_file ? fopen(o.out_file, "wb") : stdout;
    if (pr != 0 || !out) {
        if (!out)
            fprintf(stderr, "ust-get: %s: %s\n", o.out_file, strerror(errno));
        ust_config_free(cfg);
        return pr > 0 ? 0 : pr < 0 ? 2 : 1;   /* --help, usage, -o failed */
    }
    /* Only a regular file is removed on failure: never /dev/null, a FIFO
     * or a terminal named with -o. */
    struct stat sb;
    int remove_on_error = o.out_file && fstat(fileno(out), &sb) == 0 && S_ISREG(sb.st_mode);
    static struct get_conn g;
    g.fd = g.ep = -1;
    g.stop = ust_stop_on_signals();
    g.timeout_ns = (uint64_t)o.timeout_s * 1000000000ULL;
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    int rc = 1;
    if (s && ust_socket_attach(s) == 0) {
        if (get_wait_link(s, o.link_wait_ms, g.stop) < 0)
            fprintf(stderr, "ust-get: the device did not come up\n");
        else
            rc = get_fetch(&g, &o, out);
        get_close(&g);
        if (g.ep >= 0)
            ust_close(g.ep);
        if (ust_stack_stats_wanted(s))
            ust_stack_print_stats(s, stderr);   /* stdout may be the body */
        ust_socket_detach(s);
    }
    if (s)
        ust_stack_destroy(s);
    if (fflush(out) != 0 || (o.out_file && fclose(out) != 0)) {
        fprintf(stderr, "ust-get: writing the body: %s\n", strerror(errno));
        rc = 1;
    }
    if (rc != 0 && remove_on_error)
        unlink(o.out_file);
    return rc;
}
