/* ust-bench: load generator and server with one workload code path and two
 * transports: the kernel's sockets (--kernel) or ustack's (the shared stack
 * options). Every socket and epoll call goes through a small table of
 * function pointers (struct xport), so both transports run the very same
 * workload code and a ratio between them measures the stacks, not the
 * programs.
 *
 * Workloads (issue 6): echo, crr, stream, rr, udp, hold. The client measures
 * and prints one result; with --json its last line is one JSON object. CPU
 * pinning is left to the caller (taskset). Single-threaded on purpose: one
 * stack, one core, run to completion. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ustack/epoll.h"
#include "ustack/socket.h"
#include "ustack/ustack.h"

#define EVENTS_MAX 256
#define MSG_MAX (1u << 20)        /* --size bound: one request/response */
#define STREAM_CHUNK (256 * 1024) /* bytes offered to one write in stream */
#define RX_CHUNK (64 * 1024)
#define SRC_MAX 16                /* client source addresses (--ip repeats) */
#define HOLD_SPORT_LO 1024        /* hold enumerates source ports 1024..65535 */
#define HOLD_SPORTS (65536 - HOLD_SPORT_LO)
#define HOLD_INFLIGHT 512         /* connects outstanding while holding */
#define LISTEN_ID UINT64_MAX      /* epoll data of a listener */

/* ---- transports ---- */

struct xport {
    const char *name;
    int (*socket)(int, int, int);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    int (*close)(int);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
};

static const struct xport xport_kernel = {
    "kernel", socket, bind, listen, accept4, connect, read, write, sendto, recvfrom,
    close, setsockopt, getsockopt, epoll_create1, epoll_ctl, epoll_wait,
};

static const struct xport xport_ustack = {
    "ustack", ust_socket, ust_bind, ust_listen, ust_accept4, ust_connect, ust_read, ust_write, ust_sendto,
    ust_recvfrom, ust_close, ust_setsockopt, ust_getsockopt, ust_epoll_create1, ust_epoll_ctl, ust_epoll_wait,
};

/* ---- options ---- */

enum workload { W_ECHO, W_CRR, W_STREAM, W_RR, W_UDP, W_HOLD };
static const char *const workload_names[] = {"echo", "crr", "stream", "rr", "udp", "hold"};
static const char *const workload_units[] = {"req/s", "conn/s", "Gbit/s", "req/s", "pkt/s", "conns"};

struct opts {
    int server, kernel, json;
    enum workload w;
    int port, ports;              /* listen on / connect to port .. port+ports-1 */
    struct sockaddr_in peer;
    uint32_t conns, size, depth;
    double duration;
    uint32_t src[SRC_MAX];        /* client source addresses (host order), from --ip */
    int nsrc;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ust-bench server --workload W --port P [--ports N] [--kernel | STACK OPTIONS]\n"
            "       ust-bench client --workload W --connect IP:PORT [--conns N] [--size B] [--depth D]\n"
            "                        [--duration S] [--ports N] [--kernel | STACK OPTIONS] [--json]\n"
            "One workload code path over two transports: kernel sockets (--kernel) or ustack.\n\n"
            "workloads (W):\n"
            "  echo    N persistent connections, B-byte messages, D in flight each -> req/s\n"
            "  crr     connect, B-byte request, B-byte response, client closes; N at once -> conn/s\n"
            "  stream  one connection (or N), bulk client -> server -> Gbit/s of payload\n"
            "  rr      one connection, one B-byte request outstanding -> req/s, p50/p99/p99.9 us\n"
            "  udp     UDP echo, D datagrams in flight -> pkt/s (replies received)\n"
            "  hold    open and hold N idle connections -> conns; both ends print bytes per\n"
            "          connection (RSS growth / N) and the client the setup rate\n\n"
            "  --kernel          use the kernel's sockets (otherwise ustack; stack options below)\n"
            "  --port P          server: port to serve (default 5001)\n"
            "  --ports N         hold: server listens on, client spreads over, ports P..P+N-1 (default 1)\n"
            "  --connect IP:PORT client: the server\n"
            "  --conns N         connections (default: echo 100, crr 100, hold 10000, others 1)\n"
            "  --size B          message bytes (default 64; stream: ignored)\n"
            "  --depth D         messages in flight per connection (default 1; udp 64)\n"
            "  --duration S      seconds to measure (default 5; hold: seconds to hold)\n"
            "  --json            last line: {\"workload\",\"transport\",\"value\",\"unit\",...}\n"
            "  --help            this text\n\n"
            "hold with ustack: each source address (--ip, repeatable) and server port gives\n"
            "64512 tuples (source ports 1024..65535). crr/echo with several --ip: connections\n"
            "rotate over them (IP_BIND_ADDRESS_NO_PORT). Use --busy-poll on both ends for speed;\n"
            "pin with taskset.\n\n");
    ust_config_print_help(out);
}

static int parse_hostport(const char *s, struct sockaddr_in *to)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    int port = atoi(colon + 1);
    *to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    return inet_pton(AF_INET, host, &to->sin_addr) == 1 && port > 0 && port < 65536 ? 0 : -1;
}

static int parse_workload(const char *s, enum workload *w)
{
    for (unsigned i = 0; i < sizeof(workload_names) / sizeof(workload_names[0]); i++)
        if (!strcmp(s, workload_names[i])) {
            *w = (enum workload)i;
            return 0;
        }
    return -1;
}

/* The client's source addresses are the stack's own --ip values; read them
 * before the stack's parser consumes argv. */
static void collect_sources(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i + 1 < argc && o->nsrc < SRC_MAX; i++) {
        if (strcmp(argv[i], "--ip") != 0)
            continue;
        char buf[32];
        snprintf(buf, sizeof(buf), "%s", argv[i + 1]);
        char *slash = strchr(buf, '/');
        if (slash)
            *slash = 0;
        struct in_addr a;
        if (inet_pton(AF_INET, buf, &a) == 1)
            o->src[o->nsrc++] = ntohl(a.s_addr);
    }
}

static int parse_u32_arg(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int parse_one(struct opts *o, const char *a, const char *v, int *have_w, int *have_peer)
{
    uint32_t u;
    if (!strcmp(a, "--workload"))
        return (*have_w = 1, parse_workload(v, &o->w));
    if (!strcmp(a, "--port"))
        return parse_u32_arg(v, 1, 65535, &u) < 0 ? -1 : (o->port = (int)u, 0);
    if (!strcmp(a, "--ports"))
        return parse_u32_arg(v, 1, 1024, &u) < 0 ? -1 : (o->ports = (int)u, 0);
    if (!strcmp(a, "--connect"))
        return (*have_peer = 1, parse_hostport(v, &o->peer));
    if (!strcmp(a, "--conns"))
        return parse_u32_arg(v, 1, 1u << 26, &o->conns);
    if (!strcmp(a, "--size"))
        return parse_u32_arg(v, 1, MSG_MAX, &o->size);
    if (!strcmp(a, "--depth"))
        return parse_u32_arg(v, 1, 4096, &o->depth);
    if (!strcmp(a, "--duration")) {
        o->duration = atof(v);
        return o->duration > 0 && o->duration < 86400 ? 0 : -1;
    }
    return -1;
}

static void apply_defaults(struct opts *o)
{
    static const uint32_t conns_default[] = {100, 100, 1, 1, 1, 10000};
    if (!o->conns)
        o->conns = conns_default[o->w];
    if (!o->depth)
        o->depth = o->w == W_UDP ? 64 : 1;
    if (o->w == W_RR)
        o->conns = 1, o->depth = 1;
    if (o->w == W_CRR)
        o->depth = 1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    int have_w = 0, have_peer = 0;
    if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
        return -1;
    o->server = !strcmp(argv[1], "server");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--kernel"))
            o->kernel = 1;
        else if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!v || parse_one(o, a, v, &have_w, &have_peer) < 0) {
            fprintf(stderr, "ust-bench: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
            return -1;
        } else
            i++;
    }
    if (!have_w || (!o->server && !have_peer)) {
        fprintf(stderr, "ust-bench: --workload%s is required\n", o->server ? "" : " and --connect");
        return -1;
    }
    apply_defaults(o);
    return 0;
}

/* ---- time, memory, latency histogram ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The kernel keeps its sockets in slab memory, not in our RSS: for
 * --kernel the hold figure is the machine's Slab growth (both ends). */
static uint64_t slab_bytes(void)
{
    char line[256];
    unsigned long long kb = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Slab: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* Log-linear buckets: 32 per power of two, so any value is kept within 3%. */
#define H_SUB 5
#define H_BUCKETS ((64 - H_SUB) << H_SUB)
struct hist {
    uint64_t n[H_BUCKETS];
    uint64_t count;
};

static unsigned hist_index(uint64_t v)
{
    if (v < (1u << H_SUB))
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    return ((e - H_SUB + 1) << H_SUB) | (unsigned)((v >> (e - H_SUB)) & ((1u << H_SUB) - 1));
}

static double hist_value(unsigned i)   /* the middle of bucket i */
{
    if (i < (1u << H_SUB))
        return i;
    unsigned e = (i >> H_SUB) + H_SUB - 1, m = i & ((1u << H_SUB) - 1);
    double lo = ldexp(1.0, (int)e) + ldexp((double)m, (int)(e - H_SUB));
    return lo + ldexp(0.5, (int)(e - H_SUB));
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    h->count++;
}

static double hist_quantile(const struct hist *h, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)h->count), seen = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= want && h->n[i])
            return hist_value(i);
    }
    return 0;
}

/* ---- shared state of one run ---- */

struct bench {
    const struct xport *x;
    struct opts o;
    struct ust_stack *stack;
    volatile sig_atomic_t *stop;
    int ep;
};

static int sock_nonblock_tcp(struct bench *b)
{
    int fd = b->x->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        int one = 1;
        b->x->setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static int ep_set(struct bench *b, int op, int fd, uint32_t events, uint64_t id)
{
    struct epoll_event ev = {.events = events, .data.u64 = id};
    return b->x->epoll_ctl(b->ep, op, fd, &ev);
}

/* ======================= server ======================= */

struct sconn {
    int fd;
    uint32_t off, len;            /* bytes read, not yet echoed */
    char buf[16384];
};

struct server {
    struct bench *b;
    struct sconn **conns;         /* by slot; epoll data = slot */
    uint32_t nconns, cap;
    uint32_t *free_slots, nfree;
    int *hold_fds;                /* hold: accepted descriptors only */
    uint32_t nhold, hold_cap;
    uint64_t rss_base, accepted, bytes;
    int lfd[1024];
    int nl;
};

static int server_listen(struct bench *b, int port, int type)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = b->x->socket(AF_INET, type | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    b->x->setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (b->x->bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (type == SOCK_STREAM && b->x->listen(fd, 4096) < 0)) {
        fprintf(stderr, "ust-bench: listen on port %d: %s\n", port, strerror(errno));
        b->x->close(fd);
        return -1;
    }
    return fd;
}

static int grow(void **arr, uint32_t *cap, size_t elem)
{
    uint32_t ncap = *cap ? *cap * 2 : 1024;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static void server_conn_close(struct server *sv, uint32_t slot)
{
    struct sconn *c = sv->conns[slot];
    sv->b->x->close(c->fd);
    free(c);
    sv->conns[slot] = NULL;
    sv->free_slots[sv->nfree++] = slot;
}

static void server_conn_add(struct server *sv, int fd)
{
    if (sv->b->o.w == W_HOLD) {   /* no state beyond the descriptor */
        if (sv->nhold == sv->hold_cap && grow((void **)&sv->hold_fds, &sv->hold_cap, sizeof(int)) < 0) {
            sv->b->x->close(fd);
            return;
        }
        sv->hold_fds[sv->nhold++] = fd;
        return;
    }
    if (!sv->nfree) {
        uint32_t old = sv->cap;
        if (grow((void **)&sv->conns, &sv->cap, sizeof(*sv->conns)) < 0)
            return (void)sv->b->x->close(fd);
        uint32_t *fs = realloc(sv->free_slots, sv->cap * sizeof(*fs));
        if (!fs)
            return (void)sv->b->x->close(fd);
        sv->free_slots = fs;
        for (uint32_t i = sv->cap; i > old; i--) {
            sv->conns[i - 1] = NULL;
            sv->free_slots[sv->nfree++] = i - 1;
        }
    }
    uint32_t slot = sv->free_slots[--sv->nfree];
    struct sconn *c = malloc(sizeof(*c));
    if (!c || ep_set(sv->b, EPOLL_CTL_ADD, fd, EPOLLIN, slot) < 0) {
        free(c);
        sv->b->x->close(fd);
        sv->free_slots[sv->nfree++] = slot;
        return;
    }
    c->fd = fd, c->off = c->len = 0;
    sv->conns[slot] = c;
}

static void server_accept(struct server *sv, int lfd)
{
    for (int i = 0; i < EVENTS_MAX; i++) {
        int fd = sv->b->x->accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0)
            return;
        sv->accepted++;
        server_conn_add(sv, fd);
    }
}

/* Echo what was read; keep the rest and wait for EPOLLOUT when the send
 * buffer is full (reads stop meanwhile: backpressure). 0 ok, -1 close. */
static int server_flush(struct server *sv, struct sconn *c, uint32_t slot)
{
    while (c->len) {
        ssize_t n = sv->b->x->write(c->fd, c->buf + c->off, c->len);
        if (n < 0) {
            if (errno != EAGAIN)
                return -1;
            return ep_set(sv->b, EPOLL_CTL_MOD, c->fd, EPOLLOUT, slot);
        }
        c->off += (uint32_t)n, c->len -= (uint32_t)n;
    }
    c->off = 0;
    return 0;
}

static void server_conn_event(struct server *sv, uint32_t slot, uint32_t events)
{
    struct sconn *c = sv->conns[slot];
    if (!c)
        return;
    if (c->len) {
        if (server_flush(sv, c, slot) < 0)
            return server_conn_close(sv, slot);
        if (c->len)
            return;
        if (ep_set(sv->b, EPOLL_CTL_MOD, c->fd, EPOLLIN, slot) < 0)
            return server_conn_close(sv, slot);
    }
    (void)events;
    for (int i = 0; i < 8; i++) {
        static char sink[RX_CHUNK];
        int discard = sv->b->o.w == W_STREAM;
        ssize_t n = sv->b->x->read(c->fd, discard ? sink : c->buf, discard ? sizeof(sink) : sizeof(c->buf));
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return server_conn_close(sv, slot);
        if (n < 0)
            return;
        sv->bytes += (uint64_t)n;
        if (discard)
            continue;
        c->off = 0, c->len = (uint32_t)n;
        if (server_flush(sv, c, slot) < 0)
            return server_conn_close(sv, slot);
        if (c->len)
            return;
    }
}

static void server_udp(struct server *sv, int fd)
{
    char buf[65536];
    for (int i = 0; i < EVENTS_MAX; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = sv->b->x->recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        sv->bytes += (uint64_t)n;
        sv->b->x->sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
}

/* hold: report bytes per held connection once the count settles. */
static void server_hold_report(struct server *sv, uint64_t *last_n, uint64_t *last_change, uint64_t t)
{
    if (sv->nhold != *last_n) {
        *last_n = sv->nhold, *last_change = t;
        return;
    }
    if (!*last_change || t - *last_change < 1000000000ull || !sv->nhold)
        return;
    uint64_t rss = rss_bytes();
    printf("server hold: conns %u rss_delta %llu bytes_per_conn %.0f\n", sv->nhold,
           (unsigned long long)(rss - sv->rss_base), (double)(rss - sv->rss_base) / sv->nhold);
    fflush(stdout);
    *last_change = 0;
}

static int server_open(struct server *sv)
{
    struct bench *b = sv->b;
    int ports = b->o.w == W_HOLD ? b->o.ports : 1;
    int type = b->o.w == W_UDP ? SOCK_DGRAM : SOCK_STREAM;
    for (int p = 0; p < ports; p++) {
        int fd = server_listen(b, b->o.port + p, type);
        if (fd < 0 || ep_set(b, EPOLL_CTL_ADD, fd, EPOLLIN, LISTEN_ID - (uint64_t)sv->nl) < 0)
            return -1;
        sv->lfd[sv->nl++] = fd;
    }
    fprintf(stderr, "ust-bench: %s server, workload %s, port %d%s (%s)\n", b->x->name, workload_names[b->o.w],
            b->o.port, ports > 1 ? "+" : "", b->o.w == W_UDP ? "udp" : "tcp");
    return 0;
}

static int server_run(struct bench *b)
{
    struct server sv = {.b = b};
    if (server_open(&sv) < 0)
        return 1;
    sv.rss_base = rss_bytes();
    uint64_t last_n = 0, last_change = 0;
    struct epoll_event ev[EVENTS_MAX];
    while (!*b->stop) {
        int n = b->x->epoll_wait(b->ep, ev, EVENTS_MAX, 100);
        for (int i = 0; i < n; i++) {
            uint64_t id = ev[i].data.u64;
            if (id > LISTEN_ID - 1024) {
                int fd = sv.lfd[LISTEN_ID - id];
                if (b->o.w == W_UDP)
                    server_udp(&sv, fd);
                else
                    server_accept(&sv, fd);
            } else {
                server_conn_event(&sv, (uint32_t)id, ev[i].events);
            }
        }
        if (b->o.w == W_HOLD)
            server_hold_report(&sv, &last_n, &last_change, now_ns());
    }
    fprintf(stderr, "ust-bench: server done: accepted %llu bytes %llu\n", (unsigned long long)sv.accepted,
            (unsigned long long)sv.bytes);
    for (uint32_t i = 0; i < sv.cap; i++)
        if (sv.conns[i])
            server_conn_close(&sv, i);
    for (uint32_t i = 0; i < sv.nhold; i++)
        b->x->close(sv.hold_fds[i]);
    free(sv.conns), free(sv.free_slots), free(sv.hold_fds);
    return 0;
}

/* ======================= client ======================= */

enum cstate { C_IDLE, C_CONNECTING, C_OPEN };

struct cconn {
    int fd;
    enum cstate st;
    uint64_t rx_acc;              /* bytes of the current response(s) */
    uint64_t tx_left;             /* request bytes still to write */
    uint64_t sent_ns;             /* rr: when the outstanding request started */
    uint32_t outstanding;         /* udp: datagrams in flight */
};

struct client {
    struct bench *b;
    struct cconn *c;
    uint32_t n, open;
    uint64_t t0, t_end;           /* measuring window */
    int measuring;
    uint64_t done, bytes, errors, exhausted;
    struct hist *lat;
    uint64_t hold_started, hold_rss0, hold_slab0;
    uint32_t hold_next, hold_inflight;
    uint32_t next_src;            /* crr: the next source address (--ip) */
};

static char txbuf[STREAM_CHUNK];

static void client_measure_start(struct client *cl)
{
    cl->t0 = now_ns();
    cl->t_end = cl->t0 + (uint64_t)(cl->b->o.duration * 1e9);
    cl->measuring = 1;
    cl->done = cl->bytes = 0;
}

/* Queue one more request on a connection (counted in tx_left). */
static void client_queue_request(struct client *cl, struct cconn *c)
{
    if (!c->tx_left && cl->lat)
        c->sent_ns = now_ns();
    c->tx_left += cl->b->o.size;
}

/* Write queued bytes. 0 ok (maybe EAGAIN), -1 error. */
static int client_write(struct client *cl, struct cconn *c, uint32_t id)
{
    const struct xport *x = cl->b->x;
    int stream = cl->b->o.w == W_STREAM;
    for (int i = 0; i < 64 && (stream || c->tx_left); i++) {   /* bounded: others get a turn */
        size_t want = stream ? sizeof(txbuf) : (size_t)(c->tx_left < sizeof(txbuf) ? c->tx_left : sizeof(txbuf));
        ssize_t n = x->write(c->fd, txbuf, want);
        if (n < 0) {
            if (errno != EAGAIN)
                return -1;
            return stream ? 0 : ep_set(cl->b, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLOUT, id);
        }
        if (stream)
            cl->bytes += (uint64_t)n;
        else
            c->tx_left -= (uint64_t)n;
    }
    if (stream || c->tx_left)
        return 0;
    return ep_set(cl->b, EPOLL_CTL_MOD, c->fd, EPOLLIN, id);
}

/* With several --ip, connections rotate over the source addresses; the
 * port is left to connect (IP_BIND_ADDRESS_NO_PORT), which checks the whole
 * 4-tuple, so each address adds its own ephemeral range. */
static int client_bind_source(struct client *cl, int fd)
{
    struct opts *o = &cl->b->o;
    if (o->nsrc < 2)
        return 0;
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(o->src[cl->next_src]);
    cl->next_src = cl->next_src + 1 == (uint32_t)o->nsrc ? 0 : cl->next_src + 1;
    if (cl->b->x->setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
        return -1;
    return cl->b->x->bind(fd, (struct sockaddr *)&a, sizeof(a));
}

static int client_connect_one(struct client *cl, struct cconn *c, uint32_t id)
{
    struct bench *b = cl->b;
    c->fd = sock_nonblock_tcp(b);
    if (c->fd < 0)
        return -1;
    if (client_bind_source(cl, c->fd) < 0 ||
        (b->x->connect(c->fd, (struct sockaddr *)&b->o.peer, sizeof(b->o.peer)) < 0 && errno != EINPROGRESS)) {
        int e = errno;
        b->x->close(c->fd);
        c->fd = -1;
        errno = e;
        return -1;
    }
    c->st = C_CONNECTING;
    c->rx_acc = c->tx_left = 0;
    return ep_set(b, EPOLL_CTL_ADD, c->fd, EPOLLOUT, id);
}

/* crr: a failed connect leaves the slot idle; it is retried each loop turn.
 * EADDRNOTAVAIL means every local port toward the server is taken (by
 * connections or TIME-WAIT records): counted apart. */
static void client_slot_start(struct client *cl, uint32_t id)
{
    struct cconn *c = &cl->c[id];
    c->st = C_IDLE;
    if (client_connect_one(cl, c, id) < 0) {
        if (errno == EADDRNOTAVAIL || errno == EADDRINUSE)
            cl->exhausted++;
        else
            cl->errors++;
        c->st = C_IDLE;
        c->fd = -1;
    }
}

static void client_close(struct client *cl, struct cconn *c)
{
    if (c->fd >= 0)
        cl->b->x->close(c->fd);
    if (c->st == C_OPEN)
        cl->open--;
    c->fd = -1;
    c->st = C_IDLE;
}

static void client_on_connected(struct client *cl, struct cconn *c, uint32_t id)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (cl->b->x->getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        cl->errors++;
        client_close(cl, c);
        return;
    }
    c->st = C_OPEN;
    cl->open++;
    if (cl->b->o.w == W_CRR || cl->b->o.w == W_STREAM || cl->measuring)
        for (uint32_t d = 0; d < cl->b->o.depth; d++)
            client_queue_request(cl, c);
    if (cl->b->o.w == W_CRR && !cl->measuring)
        client_measure_start(cl);
    if (client_write(cl, c, id) < 0) {
        cl->errors++;
        client_close(cl, c);
    }
}

/* Responses complete every size bytes: count them, send the next ones. */
static void client_on_responses(struct client *cl, struct cconn *c, uint32_t id, uint64_t got)
{
    uint32_t size = cl->b->o.size;
    c->rx_acc += got;
    while (c->rx_acc >= size) {
        c->rx_acc -= size;
        if (cl->lat)
            hist_add(cl->lat, now_ns() - c->sent_ns);
        cl->done++;
        if (cl->b->o.w == W_CRR) {   /* the client closes first */
            client_close(cl, c);
            client_slot_start(cl, id);
            return;
        }
        client_queue_request(cl, c);
    }
    if (c->tx_left && client_write(cl, c, id) < 0) {
        cl->errors++;
        client_close(cl, c);
    }
}

static void client_on_readable(struct client *cl, struct cconn *c, uint32_t id)
{
    static char buf[RX_CHUNK];
    for (int i = 0; i < 8 && c->st == C_OPEN; i++) {
        ssize_t n = cl->b->x->read(c->fd, buf, sizeof(buf));
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            cl->errors++;
            client_close(cl, c);
            if (cl->b->o.w == W_CRR)
                client_slot_start(cl, id);
            return;
        }
        client_on_responses(cl, c, id, (uint64_t)n);
    }
}

static void client_tcp_event(struct client *cl, uint32_t id, uint32_t events)
{
    struct cconn *c = &cl->c[id];
    if (c->st == C_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            client_on_connected(cl, c, id);
        return;
    }
    if (c->st != C_OPEN)
        return;
    if ((events & EPOLLOUT) && client_write(cl, c, id) < 0) {
        cl->errors++;
        client_close(cl, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        client_on_readable(cl, c, id);
}

/* All persistent connections are up: the measured window begins and each
 * connection gets its depth of requests. */
static void client_all_open(struct client *cl)
{
    client_measure_start(cl);
    if (cl->b->o.w == W_STREAM)
        return;
    for (uint32_t i = 0; i < cl->n; i++) {
        struct cconn *c = &cl->c[i];
        for (uint32_t d = 0; d < cl->b->o.depth; d++)
            client_queue_request(cl, c);
        if (client_write(cl, c, i) < 0) {
            cl->errors++;
            client_close(cl, c);
        }
    }
}

/* ---- udp ---- */

static void udp_send_window(struct client *cl, struct cconn *c)
{
    while (c->outstanding < cl->b->o.depth) {
        if (cl->b->x->write(c->fd, txbuf, cl->b->o.size) < 0)
            return;
        c->outstanding++;
    }
}

static void udp_on_readable(struct client *cl, struct cconn *c)
{
    static char buf[65536];
    for (int i = 0; i < EVENTS_MAX; i++) {
        ssize_t n = cl->b->x->read(c->fd, buf, sizeof(buf));
        if (n < 0)
            break;
        cl->done++;
        if (c->outstanding)
            c->outstanding--;
    }
    udp_send_window(cl, c);
}

static int udp_open(struct client *cl)
{
    struct bench *b = cl->b;
    struct cconn *c = &cl->c[0];
    c->fd = b->x->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0 || b->x->connect(c->fd, (struct sockaddr *)&b->o.peer, sizeof(b->o.peer)) < 0 ||
        ep_set(b, EPOLL_CTL_ADD, c->fd, EPOLLIN, 0) < 0)
        return -1;
    c->st = C_OPEN;
    cl->n = 1;
    client_measure_start(cl);
    udp_send_window(cl, c);
    return 0;
}

/* ---- hold ---- */

/* Tuple k: source port, then source address, then server port, so N
 * connections need ceil(N / 64512) (address, port) pairs. */
static int hold_bind(struct client *cl, int fd, uint32_t k, struct sockaddr_in *to)
{
    struct opts *o = &cl->b->o;
    *to = o->peer;
    if (!o->nsrc)   /* kernel without --ip: it picks the port */
        return 0;
    uint32_t rest = k / HOLD_SPORTS;
    uint32_t port_idx = rest / (uint32_t)o->nsrc;
    if (port_idx >= (uint32_t)o->ports) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    to->sin_port = htons((uint16_t)(ntohs(o->peer.sin_port) + port_idx));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(HOLD_SPORT_LO + k % HOLD_SPORTS))};
    a.sin_addr.s_addr = htonl(o->src[rest % (uint32_t)o->nsrc]);
    return cl->b->x->bind(fd, (struct sockaddr *)&a, sizeof(a));
}

static int hold_connect_next(struct client *cl)
{
    struct bench *b = cl->b;
    uint32_t k = cl->hold_next;
    struct sockaddr_in to;
    int fd = b->x->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (hold_bind(cl, fd, k, &to) < 0 ||
        (b->x->connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) ||
        ep_set(b, EPOLL_CTL_ADD, fd, EPOLLOUT, k) < 0) {
        int e = errno;
        b->x->close(fd);
        errno = e;
        return -1;
    }
    cl->c[k].fd = fd;
    cl->c[k].st = C_CONNECTING;
    cl->hold_next++;
    cl->hold_inflight++;
    return 0;
}

static void hold_fill(struct client *cl)
{
    while (cl->hold_next < cl->n && cl->hold_inflight < HOLD_INFLIGHT && !*cl->b->stop) {
        if (hold_connect_next(cl) < 0) {
            fprintf(stderr, "ust-bench: hold: connection %u: %s\n", cl->hold_next, strerror(errno));
            cl->errors++;
            cl->n = cl->hold_next;   /* stop at what we could open */
            return;
        }
    }
}

/* Once established, a held connection leaves epoll: an idle connection then
 * costs only what the stack keeps for it plus one descriptor. */
static void hold_event(struct client *cl, uint32_t k)
{
    struct cconn *c = &cl->c[k];
    if (c->st != C_CONNECTING)
        return;
    int err = 0;
    socklen_t len = sizeof(err);
    cl->hold_inflight--;
    cl->b->x->epoll_ctl(cl->b->ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (cl->b->x->getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        cl->errors++;
        cl->b->x->close(c->fd);
        c->fd = -1;
        c->st = C_IDLE;
        return;
    }
    c->st = C_OPEN;
    cl->open++;
}

/* ---- the client's loop and report ---- */

static int client_setup(struct client *cl)
{
    struct bench *b = cl->b;
    cl->n = b->o.w == W_UDP ? 1 : b->o.conns;
    cl->c = calloc(cl->n, sizeof(*cl->c));
    if (!cl->c)
        return -1;
    for (uint32_t i = 0; i < cl->n; i++)
        cl->c[i].fd = -1;
    if (b->o.w == W_RR && !(cl->lat = calloc(1, sizeof(*cl->lat))))
        return -1;
    memset(txbuf, 'x', sizeof(txbuf));
    if (b->o.w == W_UDP)
        return udp_open(cl);
    if (b->o.w == W_HOLD) {
        cl->hold_rss0 = rss_bytes();
        cl->hold_slab0 = slab_bytes();
        cl->hold_started = now_ns();
        hold_fill(cl);
        return 0;
    }
    for (uint32_t i = 0; i < cl->n; i++)
        client_slot_start(cl, i);
    return cl->errors || (b->o.w != W_CRR && cl->exhausted) ? -1 : 0;
}

static void client_dispatch(struct client *cl, struct epoll_event *ev)
{
    uint32_t id = (uint32_t)ev->data.u64;
    switch (cl->b->o.w) {
    case W_UDP:
        udp_on_readable(cl, &cl->c[0]);
        break;
    case W_HOLD:
        hold_event(cl, id);
        break;
    default:
        client_tcp_event(cl, id, ev->events);
    }
}

/* crr: slots whose connect failed (ports exhausted) try again. */
static void client_retry_idle(struct client *cl)
{
    if (cl->b->o.w != W_CRR)
        return;
    for (uint32_t i = 0; i < cl->n; i++)
        if (cl->c[i].st == C_IDLE)
            client_slot_start(cl, i);
}

static int client_phase_done(struct client *cl, uint64_t t)
{
    struct bench *b = cl->b;
    if (b->o.w == W_HOLD) {
        if (cl->open + cl->errors >= cl->n && !cl->t0) {
            client_measure_start(cl);   /* all up: hold them for --duration */
            cl->done = cl->open;
            cl->bytes = t;   /* setup finished at */
        }
        return cl->t0 && t >= cl->t_end;
    }
    if (!cl->measuring && b->o.w != W_CRR && cl->open == cl->n)
        client_all_open(cl);
    return cl->measuring && t >= cl->t_end;
}

static void client_loop(struct client *cl, uint64_t setup_deadline)
{
    struct bench *b = cl->b;
    struct epoll_event ev[EVENTS_MAX];
    int wait_ms = b->o.w == W_UDP ? 1 : 10;
    while (!*b->stop) {
        int n = b->x->epoll_wait(b->ep, ev, EVENTS_MAX, wait_ms);
        for (int i = 0; i < n; i++)
            client_dispatch(cl, &ev[i]);
        if (n == 0 && b->o.w == W_UDP) {   /* all in flight lost: send a fresh window */
            cl->c[0].outstanding = 0;
            udp_send_window(cl, &cl->c[0]);
        }
        if (b->o.w == W_HOLD)
            hold_fill(cl);
        if (n == 0 || cl->exhausted)
            client_retry_idle(cl);
        uint64_t t = now_ns();
        if (client_phase_done(cl, t))
            return;
        if (!cl->measuring && t > setup_deadline) {
            fprintf(stderr, "ust-bench: setup timed out: %u of %u connections open\n", cl->open, cl->n);
            return;
        }
    }
}

static double client_value(const struct client *cl, double secs)
{
    switch (cl->b->o.w) {
    case W_STREAM:
        return (double)cl->bytes * 8 / secs / 1e9;
    case W_HOLD:
        return (double)cl->open;
    default:
        return (double)cl->done / secs;
    }
}

static void client_report(struct client *cl)
{
    struct bench *b = cl->b;
    uint64_t t = now_ns();
    double secs = cl->t0 && t > cl->t0 ? (double)(t - cl->t0) / 1e9 : 0;
    if (!cl->measuring || secs <= 0) {
        fprintf(stderr, "ust-bench: no measurement\n");
        return;
    }
    char extra[512] = "";
    size_t len = 0;
    if (cl->lat)
        len += (size_t)snprintf(extra + len, sizeof(extra) - len, ",\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f",
                                hist_quantile(cl->lat, 0.5) / 1e3, hist_quantile(cl->lat, 0.99) / 1e3,
                                hist_quantile(cl->lat, 0.999) / 1e3);
    if (b->o.w == W_HOLD && cl->open) {
        double setup_s = (double)(cl->bytes - cl->hold_started) / 1e9;
        uint64_t rss = rss_bytes();
        len += (size_t)snprintf(extra + len, sizeof(extra) - len,
                                ",\"setup_rate\":%.0f,\"client_bytes_per_conn\":%.0f",
                                setup_s > 0 ? cl->open / setup_s : 0, (double)(rss - cl->hold_rss0) / cl->open);
        if (b->o.kernel)   /* per connection end: both ends' sockets are in the slab */
            len += (size_t)snprintf(extra + len, sizeof(extra) - len, ",\"kernel_slab_bytes_per_conn_end\":%.0f",
                                    ((double)slab_bytes() - (double)cl->hold_slab0) / 2 / cl->open);
        secs = 1;
    }
    if (b->o.w == W_CRR)
        len += (size_t)snprintf(extra + len, sizeof(extra) - len, ",\"ports_exhausted\":%llu",
                                (unsigned long long)cl->exhausted);
    double value = client_value(cl, secs);
    const char *unit = workload_units[b->o.w];
    char vbuf[32];   /* large rates as integers, small ones with 4 significant digits */
    snprintf(vbuf, sizeof(vbuf), value >= 1000 ? "%.0f" : "%.4g", value);
    printf("%s %s: %s %s (conns %u size %u depth %u, %.2f s, errors %llu)\n", b->x->name,
           workload_names[b->o.w], vbuf, unit, cl->n, b->o.size, b->o.depth, secs,
           (unsigned long long)cl->errors);
    if (b->o.json)
        printf("{\"workload\":\"%s\",\"transport\":\"%s\",\"value\":%s,\"unit\":\"%s\",\"conns\":%u,"
               "\"size\":%u,\"depth\":%u,\"seconds\":%.3f,\"errors\":%llu%s}\n",
               workload_names[b->o.w], b->x->name, vbuf, unit, cl->n, b->o.size, b->o.depth, secs,
               (unsigned long long)cl->errors, extra);
    fflush(stdout);
}

static int client_run(struct bench *b)
{
    struct client cl = {.b = b};
    int rc = 1;
    if (client_setup(&cl) < 0) {
        fprintf(stderr, "ust-bench: client setup: %s\n", strerror(errno));
    } else {
        client_loop(&cl, now_ns() + 30000000000ull + (b->o.w == W_HOLD ? 600000000000ull : 0));
        if (cl.measuring) {
            client_report(&cl);
            rc = 0;
        }
    }
    for (uint32_t i = 0; i < cl.n; i++)
        if (cl.c && cl.c[i].fd >= 0)
            b->x->close(cl.c[i].fd);
    free(cl.c);
    free(cl.lat);
    return rc;
}

/* ======================= program ======================= */

/* memif: the peer must be connected before the first packet matters. */
static int stack_wait_link(struct ust_stack *s, volatile sig_atomic_t *stop)
{
    uint64_t until = now_ns() + 10000000000ull;
    while (!ust_stack_link_up(s) && !*stop) {
        if (now_ns() > until)
            return -1;
        ust_socket_run(10);
    }
    return 0;
}

static int bench_run(struct bench *b)
{
    b->ep = b->x->epoll_create1(0);
    if (b->ep < 0) {
        perror("ust-bench: epoll_create1");
        return 1;
    }
    int rc = b->o.server ? server_run(b) : client_run(b);
    b->x->close(b->ep);
    return rc;
}

static int stack_open(struct bench *b, struct ust_config *cfg)
{
    b->stack = ust_stack_create(cfg);
    if (!b->stack || ust_socket_attach(b->stack) < 0) {
        fprintf(stderr, "ust-bench: cannot create the stack\n");
        return -1;
    }
    if (!b->o.server && stack_wait_link(b->stack, b->stop) < 0) {
        fprintf(stderr, "ust-bench: link did not come up\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct bench b = {.o = {.port = 5001, .ports = 1, .size = 64, .duration = 5}};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    collect_sources(argc, argv, &b.o);
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || parse_args(argc, argv, &b.o) < 0) {
        usage(stderr);
        return 2;
    }
    b.stop = ust_stop_on_signals();
    b.x = b.o.kernel ? &xport_kernel : &xport_ustack;
    int rc = 1;
    if (b.o.kernel || stack_open(&b, cfg) == 0)
        rc = bench_run(&b);
    if (b.stack) {
        if (ust_stack_stats_wanted(b.stack))
            ust_stack_print_stats(b.stack, stderr);
        ust_socket_detach(b.stack);
        ust_stack_destroy(b.stack);
    }
    ust_config_free(cfg);
    return rc;
}
