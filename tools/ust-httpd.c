/* ust-httpd: a small HTTP/1.1 server on ustack's socket and epoll API.
 *
 *   --size N     every GET is answered with N bytes of a fixed text pattern
 *   --root DIR   regular files below DIR are served instead
 *
 * The shape is that of any Linux epoll server with the calls renamed: a
 * non-blocking listener and level-triggered connections in one epoll
 * instance, and ust_epoll_wait as the main loop (it also drives the stack).
 *
 * Memory per connection is fixed: one input buffer of REQ_MAX bytes (the
 * bound on a request head) and at most one response in flight. Pipelined
 * requests wait in the input buffer and are answered in order, each once
 * the one before it has been handed to TCP whole. While a response waits
 * for send room we stop reading, so a client that does not read gets a
 * closed window instead of making us buffer for it. Nothing is allocated
 * per request: the --size body is sent straight from one static pattern
 * buffer, files are read in chunks into the worker's scratch buffer as send
 * room appears.
 *
 * Workers: everything a worker owns is in struct httpd_worker, set up by
 * httpd_setup(stack, worker, arg) on the worker's own thread (the
 * ust_worker_setup_fn shape of ustack/workers.h); httpd_run_once is one turn
 * of its event loop, run by every worker through ust_workers_run_loop.
 *
 * File reads block the loop (there is no asynchronous file I/O here): fine
 * for an example, a page cache hit costs microseconds. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ustack/ustack.h"
#include "ustack/workers.h"

#define REQ_MAX 8192           /* request line + header fields, per connection */
#define HDR_OUT_MAX 512        /* our response head */
#define PATTERN_LEN 65536      /* a multiple of the 64-byte pattern line */
#define SCRATCH_LEN 65536      /* file chunk */
#define EVENTS_MAX 256
#define ACCEPT_BURST 256       /* accepts per listener event, for fairness */
#define LOOP_TICK_MS 100       /* how late we notice a signal or an idle connection */
#define PATH_MAX_LEN 1024

/* ---- options and counters ---- */

struct httpd_opts {
    int port, backlog;
    unsigned max_conns, idle_s;
    uint64_t size;
    const char *root;
};

struct httpd_stats {
    uint64_t accepted, rejected, closed, timeouts, requests, resp_2xx, resp_4xx, resp_5xx, body_bytes, active,
        max_active;
};

/* ---- one connection ---- */

enum conn_state {
    CONN_READING,   /* parsing requests from the buffer, reading more */
    CONN_WRITING,   /* a response waits for send room */
    CONN_DRAINING,  /* answered with close: our FIN is out, discard input until the peer's */
};

enum body_kind { BODY_NONE, BODY_MEM, BODY_PATTERN, BODY_FILE };

struct conn {
    int fd;
    enum conn_state state;
    uint32_t events;                    /* epoll interest set now */
    struct conn *prev, *next;           /* activity list, least recent first */
    uint64_t last_active_ns;
    uint8_t close_after;                /* close once this response is out */
    /* the response in flight */
    uint32_t hdr_len, hdr_off;
    enum body_kind body;
    const char *body_mem;
    int file_fd;
    uint64_t body_off, body_left;
    /* input */
    uint32_t in_len;
    char hdr[HDR_OUT_MAX];
    char in[REQ_MAX];
};

struct httpd_worker {
    int id;
    const struct httpd_opts *o;
    struct ust_stack *s;
    int ep, lfd, rootfd;
    char *scratch;
    struct conn *act_head, *act_tail;
    struct httpd_stats st;
};

struct httpd {
    struct httpd_opts o;
    struct httpd_worker *w;
    unsigned nworkers;
    int stats;                /* --stats was given */
};

/* The --size body: a 64-byte text line repeated (63 characters of
 * 0-9a-zA-Z_ and a newline), so byte i is pattern[i % 64] and a test can
 * compute any prefix. Read-only after main() made it: shared by workers. */
static char pattern[PATTERN_LEN];
static const char pattern_line[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_\n";

static void pattern_init(void)
{
    for (size_t i = 0; i < PATTERN_LEN; i++)
        pattern[i] = pattern_line[i % 64];
}

/* ---- the request parser (RFC 9112) ---- */

enum http_method { M_GET, M_HEAD, M_OTHER };

struct http_req {
    enum http_method method;
    const char *target;
    size_t target_len;
    int minor;                          /* HTTP/1.minor */
    int conn_close, conn_keep_alive;    /* Connection: tokens */
    int hosts;
    int have_clen;
    uint64_t clen;
    int have_te;
};

static int is_tchar(unsigned char c)
{
    /* RFC 9110 §5.6.2 token characters */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Length of the head (up to and including the empty line), 0 if it is not
 * all here yet. A bare LF ends a line too (RFC 9112 §2.2 allows it). */
static size_t http_head_end(const char *b, size_t len)
{
    const char *p = b, *end = b + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p++;
        if (p < end && *p == '\n')
            return (size_t)(p + 1 - b);
        if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
            return (size_t)(p + 2 - b);
    }
    return 0;
}

/* Next line of [*p, end): sets *line and *len, without the line ending. */
static int http_next_line(const char **p, const char *end, const char **line, size_t *len)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl)
        return -1;
    *line = *p;
    *len = (size_t)(nl - *p);
    if (*len && (*line)[*len - 1] == '\r')
        (*len)--;
    *p = nl + 1;
    return 0;
}

static int http_has_ctl(const char *s, size_t n, int allow_tab)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Returns 0 or an error status. */
static int http_parse_request_line(const char *l, size_t n, struct http_req *r)
{
    const char *sp1 = memchr(l, ' ', n);
    if (!sp1 || sp1 == l)
        return 400;
    const char *rest = sp1 + 1;
    const char *sp2 = memchr(rest, ' ', (size_t)(l + n - rest));
    if (!sp2 || sp2 == rest)
        return 400;
    for (const char *c = l; c < sp1; c++)
        if (!is_tchar((unsigned char)*c))
            return 400;
    size_t mlen = (size_t)(sp1 - l);
    r->method = (mlen == 3 && !memcmp(l, "GET", 3)) ? M_GET : (mlen == 4 && !memcmp(l, "HEAD", 4)) ? M_HEAD : M_OTHER;
    r->target = rest;
    r->target_len = (size_t)(sp2 - rest);
    if (http_has_ctl(r->target, r->target_len, 0) || memchr(r->target, ' ', r->target_len))
        return 400;
    const char *v = sp2 + 1;
    size_t vlen = (size_t)(l + n - v);
    if (vlen != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1')
        return 505;
    r->minor = v[7] - '0';
    return 0;
}

static int http_token_in_list(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - s == tl && !strncasecmp(v + s, tok, tl))
            return 1;
    }
    return 0;
}

static int http_parse_clen(const char *v, size_t n, struct http_req *r)
{
    uint64_t x = 0;
    if (n == 0 || n > 18)
        return 400;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 400;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    /* RFC 9112 §6.3: differing Content-Length values are unrecoverable. */
    if (r->have_clen && r->clen != x)
        return 400;
    r->have_clen = 1;
    r->clen = x;
    return 0;
}

static int http_parse_field(const char *l, size_t n, struct http_req *r)
{
    const char *colon = memchr(l, ':', n);
    /* RFC 9112 §5.1: no whitespace between name and colon; §5.2: obs-fold
     * (a line starting with whitespace) may be rejected with 400. */
    if (!colon || colon == l)
        return 400;
    for (const char *c = l; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return 400;
    size_t nl = (size_t)(colon - l);
    const char *v = colon + 1, *e = l + n;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    size_t vl = (size_t)(e - v);
    if (http_has_ctl(v, vl, 1))
        return 400;
    if (nl == 4 && !strncasecmp(l, "host", 4))
        r->hosts++;
    else if (nl == 10 && !strncasecmp(l, "connection", 10)) {
        r->conn_close |= http_token_in_list(v, vl, "close");
        r->conn_keep_alive |= http_token_in_list(v, vl, "keep-alive");
    } else if (nl == 14 && !strncasecmp(l, "content-length", 14))
        return http_parse_clen(v, vl, r);
    else if (nl == 17 && !strncasecmp(l, "transfer-encoding", 17))
        r->have_te = 1;
    return 0;
}

/* Parses a complete head of hlen bytes. Returns 0 or an error status. */
static int http_parse_head(const char *b, size_t hlen, struct http_req *r)
{
    const char *p = b, *end = b + hlen, *l;
    size_t n;
    memset(r, 0, sizeof(*r));
    if (http_next_line(&p, end, &l, &n) < 0 || http_has_ctl(l, n, 0))
        return 400;
    int st = http_parse_request_line(l, n, r);
    if (st)
        return st;
    while (http_next_line(&p, end, &l, &n) == 0 && n > 0) {
        if ((st = http_parse_field(l, n, r)) != 0)
            return st;
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request without exactly one Host is a 400. */
    if ((r->minor >= 1 && r->hosts != 1) || r->hosts > 1)
        return 400;
    /* We cannot find the end of a request body in a transfer coding. RFC 9112
     * §6.1: 501 for a coding we do not implement (and we close after it). */
    if (r->have_te)
        return 501;
    return 0;
}

/* ---- responses ---- */

static const char *http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

static const char *http_error_body(int status)
{
    switch (status) {
    case 400: return "400 Bad Request\n";
    case 403: return "403 Forbidden\n";
    case 404: return "404 Not Found\n";
    case 405: return "405 Method Not Allowed\n";
    case 431: return "431 Request Header Fields Too Large\n";
    case 501: return "501 Not Implemented\n";
    case 505: return "505 HTTP Version Not Supported\n";
    default: return "500 Internal Server Error\n";
    }
}

static const char *http_content_type(const char *path)
{
    static const char *const map[][2] = {
        {".html", "text/html"},        {".htm", "text/html"},          {".txt", "text/plain"},
        {".css", "text/css"},          {".js", "text/javascript"},     {".json", "application/json"},
        {".png", "image/png"},         {".jpg", "image/jpeg"},         {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},         {".svg", "image/svg+xml"},      {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (!strcasecmp(dot, map[i][0]))
                return map[i][1];
    return "application/octet-stream";
}

/* RFC 9110 §6.6.1: an origin server with a clock sends Date. Formatted
 * once per second per thread. */
static const char *http_date(void)
{
    static __thread time_t last;
    static __thread char buf[40];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

/* Fills c->hdr. keep_alive_hdr: an HTTP/1.0 client asked to keep it open. */
static void response_head(struct conn *c, int status, const char *type, uint64_t len, int keep_alive_hdr)
{
    int n = snprintf(c->hdr, sizeof(c->hdr),
                     "HTTP/1.1 %d %s\r\nServer: ust-httpd\r\nDate: %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %llu\r\n%s%s\r\n",
                     status, http_reason(status), http_date(), type, (unsigned long long)len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "",
                     c->close_after ? "Connection: close\r\n" : keep_alive_hdr ? "Connection: keep-alive\r\n" : "");
    c->hdr_len = (n > 0 && (size_t)n < sizeof(c->hdr)) ? (uint32_t)n : 0;
    c->hdr_off = 0;
}

static void response_error(struct httpd_worker *w, struct conn *c, int status, int head_only, int ka_hdr)
{
    const char *body = http_error_body(status);
    response_head(c, status, "text/plain", strlen(body), ka_hdr);
    c->body = head_only ? BODY_NONE : BODY_MEM;
    c->body_mem = body;
    c->body_off = 0;
    c->body_left = head_only ? 0 : strlen(body);
    if (status >= 500)
        w->st.resp_5xx++;
    else
        w->st.resp_4xx++;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

/* Percent-decodes the path of target into out; rejects NUL, ".." segments
 * and anything not absolute. Returns 0 or an error status. */
static int path_decode(const char *t, size_t tlen, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < tlen && t[i] != '?' && t[i] != '#'; i++) {
        char ch = t[i];
        if (ch == '%') {
            int hi = i + 2 < tlen ? hex_value(t[i + 1]) : -1, lo = i + 2 < tlen ? hex_value(t[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return 400;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= outsz)
            return 404;
        out[o++] = ch;
    }
    out[o] = '\0';
    if (o == 0 || out[0] != '/')
        return 400;
    /* A ".." segment, literal or encoded, is refused before any lookup. */
    for (const char *seg = out; seg; seg = strchr(seg + 1, '/')) {
        const char *s = seg + 1, *e = strchr(s, '/');
        size_t sl = e ? (size_t)(e - s) : strlen(s);
        if (sl == 2 && s[0] == '.' && s[1] == '.')
            return 403;
    }
    return 0;
}

/* Opens rel below the root without ever leaving it: RESOLVE_BENEATH also
 * stops symlinks and ".." that would climb out (openat2, Linux 5.6). */
static int file_open_beneath(int rootfd, const char *rel)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        fd = openat(rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    return fd;
}

/* Returns 0 with c's body set to the file, or an error status. */
static int response_file(struct httpd_worker *w, struct conn *c, const struct http_req *r, int ka_hdr)
{
    char path[PATH_MAX_LEN + 16];
    const char *t = r->target;
    size_t tl = r->target_len;
    if (tl > 7 && !strncasecmp(t, "http://", 7)) {   /* absolute-form, RFC 9112 §3.2.2 */
        const char *slash = memchr(t + 7, '/', tl - 7);
        if (!slash)
            return 400;
        tl -= (size_t)(slash - t);
        t = slash;
    }
    int st = path_decode(t, tl, path, PATH_MAX_LEN);
    if (st)
        return st;
    if (path[strlen(path) - 1] == '/')
        strcat(path, "index.html");
    int fd = file_open_beneath(w->rootfd, path + 1);
    if (fd < 0)
        return (errno == EACCES || errno == EXDEV || errno == ELOOP) ? 403 : 404;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return 404;
    }
    response_head(c, 200, http_content_type(path), (uint64_t)sb.st_size, ka_hdr);
    if (r->method == M_HEAD || sb.st_size == 0) {
        close(fd);
        c->body = BODY_NONE;
        c->body_left = 0;
    } else {
        c->body = BODY_FILE;
        c->file_fd = fd;
        c->body_left = (uint64_t)sb.st_size;
    }
    c->body_off = 0;
    return 0;
}

/* Turns one parsed (or failed) request into c's response. */
static void request_answer(struct httpd_worker *w, struct conn *c, const struct http_req *r, int status)
{
    int head = !status && r->method == M_HEAD;
    /* RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with keep-alive. */
    int ka10 = !status && r->minor == 0 && r->conn_keep_alive && !r->conn_close;
    /* We never use a request body (GET and HEAD have none that means
     * anything): rather than find our way past one, answer with "close"
     * and let the lingering close discard it (RFC 9112 §9.6). */
    c->close_after = status == 400 || status == 431 || status >= 500 || r->conn_close ||
                     (r->minor == 0 && !r->conn_keep_alive) || (r->have_clen && r->clen > 0);
    w->st.requests++;
    if (!status && r->method == M_OTHER)
        status = 405;
    if (!status && w->o->root)
        status = response_file(w, c, r, ka10);
    if (status) {
        response_error(w, c, status, head, ka10);
        return;
    }
    if (!w->o->root) {
        response_head(c, 200, "text/plain", w->o->size, ka10);
        c->body = head ? BODY_NONE : BODY_PATTERN;
        c->body_off = 0;
        c->body_left = head ? 0 : w->o->size;
    }
    w->st.resp_2xx++;
}

/* ---- connection I/O ---- */

static void conn_set_events(struct httpd_worker *w, struct conn *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (ust_epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

static void act_unlink(struct httpd_worker *w, struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->act_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->act_tail = c->prev;
    c->prev = c->next = NULL;
}

static void act_append(struct httpd_worker *w, struct conn *c)
{
    c->prev = w->act_tail;
    c->next = NULL;
    if (w->act_tail)
        w->act_tail->next = c;
    else
        w->act_head = c;
    w->act_tail = c;
}

/* Something happened: move c to the young end of the activity list. */
static void conn_touch(struct httpd_worker *w, struct conn *c, uint64_t now)
{
    c->last_active_ns = now;
    act_unlink(w, c);
    act_append(w, c);
}

static void conn_close(struct httpd_worker *w, struct conn *c)
{
    act_unlink(w, c);
    ust_epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    ust_close(c->fd);
    if (c->body == BODY_FILE)
        close(c->file_fd);
    free(c);
    w->st.closed++;
    w->st.active--;
}

/* The next piece of the body, at most max bytes. */
static size_t body_chunk(struct httpd_worker *w, struct conn *c, const char **p, size_t max)
{
    size_t n = c->body_left < max ? (size_t)c->body_left : max;
    switch (c->body) {
    case BODY_MEM:
        *p = c->body_mem + c->body_off;
        return n;
    case BODY_PATTERN: {
        size_t off = (size_t)(c->body_off % PATTERN_LEN);
        *p = pattern + off;
        return n < PATTERN_LEN - off ? n : PATTERN_LEN - off;
    }
    case BODY_FILE: {
        ssize_t r = pread(c->file_fd, w->scratch, n < SCRATCH_LEN ? n : SCRATCH_LEN, (off_t)c->body_off);
        *p = w->scratch;
        return r > 0 ? (size_t)r : 0;   /* 0: the file shrank under us */
    }
    default:
        return 0;
    }
}

/* Hands the response to TCP. 1: all of it, 0: waiting for room, -1: fail. */
static int conn_send(struct httpd_worker *w, struct conn *c)
{
    while (c->hdr_off < c->hdr_len || c->body_left) {
        struct iovec iov[2];
        int cnt = 0;
        if (c->hdr_off < c->hdr_len)
            iov[cnt++] = (struct iovec){c->hdr + c->hdr_off, c->hdr_len - c->hdr_off};
        if (c->body_left) {
            const char *p;
            size_t n = body_chunk(w, c, &p, 1u << 20);
            if (n == 0)
                return -1;
            iov[cnt++] = (struct iovec){(void *)p, n};
        }
        ssize_t sent = ust_writev(c->fd, iov, cnt);
        if (sent < 0)
            return errno == EAGAIN ? 0 : -1;
        size_t h = c->hdr_len - c->hdr_off;
        if ((size_t)sent < h) {
            c->hdr_off += (uint32_t)sent;
            continue;
        }
        c->hdr_off = c->hdr_len;
        c->body_off += (size_t)sent - h;
        c->body_left -= (size_t)sent - h;
        w->st.body_bytes += (size_t)sent - h;
    }
    if (c->body == BODY_FILE)
        close(c->file_fd);
    c->body = BODY_NONE;
    return 1;
}

static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= (uint32_t)n;
}

/* Answers the next request in the buffer. 1: a response was made, 0: the
 * request is not complete yet. */
static int conn_next_request(struct httpd_worker *w, struct conn *c)
{
    /* RFC 9112 §2.2: ignore empty lines before a request line. */
    size_t lead = 0;
    while (lead < c->in_len && (c->in[lead] == '\r' || c->in[lead] == '\n'))
        lead++;
    conn_consume(c, lead);
    size_t hlen = http_head_end(c->in, c->in_len);
    struct http_req r;
    if (hlen == 0) {
        if (c->in_len < REQ_MAX)
            return 0;
        memset(&r, 0, sizeof(r));
        request_answer(w, c, &r, 431);
        return 1;
    }
    int status = http_parse_head(c->in, hlen, &r);
    request_answer(w, c, &r, status);
    conn_consume(c, hlen);
    return 1;
}

/* The response is out: close, drain, or go on with the next request. */
static int conn_response_done(struct httpd_worker *w, struct conn *c)
{
    if (!c->close_after) {
        c->state = CONN_READING;
        return 0;
    }
    /* Lingering close (RFC 9112 §9.6): half-close, then read until the
     * peer's FIN, so unread input cannot turn our FIN into a reset that
     * destroys the response before the client read it. */
    ust_shutdown(c->fd, SHUT_WR);
    c->state = CONN_DRAINING;
    conn_set_events(w, c, EPOLLIN | EPOLLRDHUP);
    return 1;
}

/* Serves buffered requests and reads more, until blocked. -1: close c. */
static int conn_serve(struct httpd_worker *w, struct conn *c)
{
    for (;;) {
        while (conn_next_request(w, c)) {
            int r = conn_send(w, c);
            if (r < 0)
                return -1;
            if (r == 0) {
                c->state = CONN_WRITING;
                conn_set_events(w, c, EPOLLOUT);
                return 0;
            }
            if (conn_response_done(w, c))
                return 0;
        }
        ssize_t n = ust_read(c->fd, c->in + c->in_len, REQ_MAX - c->in_len);
        if (n > 0) {
            c->in_len += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            conn_set_events(w, c, EPOLLIN | EPOLLRDHUP);
            return 0;
        }
        return -1;   /* EOF between requests, or an error */
    }
}

static int conn_drain(struct httpd_worker *w, struct conn *c)
{
    for (;;) {
        ssize_t n = ust_read(c->fd, w->scratch, SCRATCH_LEN);
        if (n > 0)
            continue;
        return (n < 0 && errno == EAGAIN) ? 0 : -1;
    }
}

static void conn_on_event(struct httpd_worker *w, struct conn *c, uint32_t events, uint64_t now)
{
    int r = 0;
    if (c->state != CONN_DRAINING)   /* a drain lasts at most one idle timeout */
        conn_touch(w, c, now);
    if (c->state == CONN_DRAINING) {
        r = conn_drain(w, c);
    } else if (c->state == CONN_WRITING) {
        r = conn_send(w, c);
        if (r > 0)
            r = conn_response_done(w, c) ? 0 : conn_serve(w, c);
        else if (r == 0 && (events & (EPOLLERR | EPOLLHUP)))
            r = -1;
    } else {
        r = conn_serve(w, c);
    }
    if (r < 0)
        conn_close(w, c);
}

/* ---- the worker ---- */

static void listener_on_event(struct httpd_worker *w, uint64_t now)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int fd = ust_accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct conn *c = w->st.active < w->o->max_conns ? malloc(sizeof(*c)) : NULL;
        if (!c) {
            ust_close(fd);
            w->st.rejected++;
            continue;
        }
        memset(c, 0, offsetof(struct conn, hdr));
        c->fd = fd;
        c->file_fd = -1;
        c->events = EPOLLIN | EPOLLRDHUP;
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (ust_epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            ust_close(fd);
            free(c);
            w->st.rejected++;
            continue;
        }
        c->last_active_ns = now;
        act_append(w, c);
        w->st.accepted++;
        if (++w->st.active > w->st.max_active)
            w->st.max_active = w->st.active;
    }
}

/* Closes connections idle longer than --idle-timeout: the oldest are at the
 * head, so this looks only at those that expire (plus one). */
static void worker_expire_idle(struct httpd_worker *w, uint64_t now)
{
    uint64_t limit = (uint64_t)w->o->idle_s * 1000000000ULL;
    while (w->act_head && now - w->act_head->last_active_ns > limit) {
        w->st.timeouts++;
        conn_close(w, w->act_head);
    }
}

static int listener_open(const struct httpd_opts *o)
{
    int one = 1;
    int fd = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    /* Every worker listens on the same port (the SO_REUSEPORT model);
     * NODELAY is inherited by accepted sockets: a response is written in
     * one call, and Nagle would hold its last segment for an ACK. */
    ust_setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    ust_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (ust_bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || ust_listen(fd, o->backlog) < 0) {
        int e = errno;
        ust_close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Runs on the worker's thread: attach its stack, open the listener and the
 * epoll instance. 0, or -1 after a message. */
static int httpd_setup(struct ust_stack *s, int worker, void *arg)
{
    struct httpd *h = arg;
    struct httpd_worker *w = &h->w[worker];
    w->id = worker;
    w->o = &h->o;
    w->s = s;
    w->ep = w->lfd = -1;
    w->rootfd = -1;
    if (ust_socket_attach(s) < 0 || !(w->scratch = malloc(SCRATCH_LEN)) || (w->ep = ust_epoll_create1(0)) < 0 ||
        (w->lfd = listener_open(w->o)) < 0) {
        fprintf(stderr, "ust-httpd: worker %d: setup on port %d: %s\n", worker, h->o.port, strerror(errno));
        return -1;
    }
    if (h->o.root && (w->rootfd = open(h->o.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        fprintf(stderr, "ust-httpd: --root %s: %s\n", h->o.root, strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};   /* NULL: the listener */
    return ust_epoll_ctl(w->ep, EPOLL_CTL_ADD, w->lfd, &ev);
}

/* One turn of the worker's event loop: wait up to timeout_ms (this also
 * drives the stack), handle what is ready, expire idle connections. */
static void httpd_run_once(struct httpd_worker *w, int timeout_ms)
{
    struct epoll_event ev[EVENTS_MAX];
    int n = ust_epoll_wait(w->ep, ev, EVENTS_MAX, timeout_ms);
    uint64_t now = ust_now_ns();
    for (int i = 0; i < n; i++) {
        if (ev[i].data.ptr == NULL)
            listener_on_event(w, now);
        else
            conn_on_event(w, ev[i].data.ptr, ev[i].events, now);
    }
    worker_expire_idle(w, now);
}

static void httpd_loop(struct httpd_worker *w, volatile sig_atomic_t *stop)
{
    while (!*stop)
        httpd_run_once(w, LOOP_TICK_MS);
}

/* Closes everything the worker opened (on its thread, before the stack goes). */
static void httpd_teardown(struct httpd_worker *w)
{
    while (w->act_head)
        conn_close(w, w->act_head);
    if (w->lfd >= 0)
        ust_close(w->lfd);
    if (w->ep >= 0)
        ust_close(w->ep);
    if (w->rootfd >= 0)
        close(w->rootfd);
    free(w->scratch);
    if (w->s)
        ust_socket_detach(w->s);
}

/* ---- the program ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ust-httpd [--port N] [--size N | --root DIR] STACK OPTIONS\n"
            "HTTP/1.1 server (keep-alive, pipelining; GET and HEAD).\n\n"
            "  --port N            TCP port (default 80)\n"
            "  --size N            answer every GET with N bytes of a text pattern (default 1024)\n"
            "  --root DIR          serve the regular files below DIR instead (404 if missing)\n"
            "  --max-conns N       connections at once; more are closed at accept (default 16384;\n"
            "                      each costs about %zu bytes)\n"
            "  --idle-timeout SEC  close connections quiet for this long (default 60)\n"
            "  --backlog N         accept queue length (default 4096)\n"
            "  --help              this text\n"
            "(--stats and --workers N are stack options, below.)\n\n",
            sizeof(struct conn));
    ust_config_print_help(out);
}

static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x > max)
        return -1;
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, struct httpd_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        }
        if (!v) {
            fprintf(stderr, "ust-httpd: unknown argument or missing value: %s\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--root")) {
            o->root = v;
            continue;
        }
        int bad = 1;
        if (!strcmp(a, "--port") && !(bad = parse_u64(v, 65535, &x) || x == 0))
            o->port = (int)x;
        else if (!strcmp(a, "--size") && !(bad = parse_u64(v, UINT64_MAX / 2, &x)))
            o->size = x;
        else if (!strcmp(a, "--max-conns") && !(bad = parse_u64(v, 1u << 30, &x) || x == 0))
            o->max_conns = (unsigned)x;
        else if (!strcmp(a, "--idle-timeout") && !(bad = parse_u64(v, 86400, &x) || x == 0))
            o->idle_s = (unsigned)x;
        else if (!strcmp(a, "--backlog") && !(bad = parse_u64(v, 65535, &x) || x == 0))
            o->backlog = (int)x;
        if (bad) {
            fprintf(stderr, "ust-httpd: bad option %s %s\n", a, v);
            return -1;
        }
    }
    return 0;
}

static void print_stats(const struct httpd *h, FILE *out)
{
    struct httpd_stats t = {0};
    for (unsigned i = 0; i < h->nworkers; i++) {
        const struct httpd_stats *s = &h->w[i].st;
        t.accepted += s->accepted, t.rejected += s->rejected, t.closed += s->closed;
        t.timeouts += s->timeouts, t.requests += s->requests, t.resp_2xx += s->resp_2xx;
        t.resp_4xx += s->resp_4xx, t.resp_5xx += s->resp_5xx, t.body_bytes += s->body_bytes;
        t.max_active += s->max_active;
    }
    fprintf(out,
            "httpd_accepted %llu\nhttpd_rejected %llu\nhttpd_closed %llu\nhttpd_timeouts %llu\n"
            "httpd_requests %llu\nhttpd_resp_2xx %llu\nhttpd_resp_4xx %llu\nhttpd_resp_5xx %llu\n"
            "httpd_body_bytes %llu\nhttpd_max_active %llu\n",
            (unsigned long long)t.accepted, (unsigned long long)t.rejected, (unsigned long long)t.closed,
            (unsigned long long)t.timeouts, (unsigned long long)t.requests, (unsigned long long)t.resp_2xx,
            (unsigned long long)t.resp_4xx, (unsigned long long)t.resp_5xx, (unsigned long long)t.body_bytes,
            (unsigned long long)t.max_active);
}

static void httpd_worker_loop(struct ust_stack *s, int worker, void *arg, volatile sig_atomic_t *stop)
{
    struct httpd *h = arg;
    (void)s;
    if (worker == 0) {
        if (h->o.root)
            fprintf(stderr, "ust-httpd: serving HTTP on port %d, files from %s\n", h->o.port, h->o.root);
        else
            fprintf(stderr, "ust-httpd: serving HTTP on port %d, %llu-byte bodies\n", h->o.port,
                    (unsigned long long)h->o.size);
    }
    httpd_loop(&h->w[worker], stop);
}

/* On the worker's thread, before its stack goes: close, then its counters. */
static void httpd_worker_fini(struct ust_stack *s, int worker, void *arg)
{
    struct httpd *h = arg;
    httpd_teardown(&h->w[worker]);
    if (ust_stack_stats_wanted(s))
        ust_stack_workers(s) > 1 ? ust_worker_print_stats(s, stdout) : ust_stack_print_stats(s, stdout);
    h->stats = ust_stack_stats_wanted(s);
}

int main(int argc, char **argv)
{
    static struct httpd h = {.o = {.port = 80, .backlog = 4096, .max_conns = 16384, .idle_s = 60, .size = 1024}};
    struct ust_config *cfg = ust_config_new();
    if (!cfg)
        return 2;
    int pr = ust_config_parse_args(cfg, &argc, argv) < 0 ? -1 : parse_args(argc, argv, &h.o);
    if (pr != 0) {
        ust_config_free(cfg);
        return pr > 0 ? 0 : 2;   /* --help, or a usage error */
    }
    pattern_init();
    volatile sig_atomic_t *stop = ust_stop_on_signals();
    h.nworkers = ust_config_workers(cfg);
    h.w = calloc(h.nworkers, sizeof(*h.w));
    if (!h.w)
        return 1;
    /* One thread, stack, listener and epoll instance per worker (workers.h). */
    int rc = ust_workers_run_loop(cfg, httpd_setup, httpd_worker_loop, httpd_worker_fini, &h, stop);
    ust_config_free(cfg);
    if (h.stats)
        print_stats(&h, stdout);
    free(h.w);
    return rc == 0 ? 0 : 1;
}
