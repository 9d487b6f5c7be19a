/* devcheck: drive one device backend directly, below the stack, for the
 * interop tests of the backends (tests/interop/dev_*.sh).
 *
 *   devcheck --dev SPEC --mode sendraw|recvraw|recvudp [--count N]
 *            [--timeout MS] [--go FILE] [--stats]
 *
 * sendraw  sends N broadcast frames of ethertype 0x88B5 (IEEE local
 *          experimental) carrying the test pattern below.
 * recvraw  receives until N distinct 0x88B5 frames arrived (or the timeout),
 *          checks each payload, prints "recvraw count=C bad=B", exits 0 when
 *          C == N and B == 0.
 * recvudp  waits for one IPv4/UDP frame and prints
 *          "recvudp csum_partial=0|1 len=L", exit 0 when one arrived.
 *
 * Test pattern (payload = bytes after the 14-byte Ethernet header):
 *   [0..3] sequence number (big endian), [4..5] payload length (big
 *   endian), [6..] byte i is (seq + i) & 0xff. The payload length of
 *   sequence s is 46 + (s * 97) % 1000, so sizes vary from the minimum
 *   frame to 1060 bytes.
 *
 * After the device has started it prints "READY mac=MAC mtu=M" (flushed), so
 * a script can wait for it before sending. With --go FILE it then waits
 * (at most the timeout) until FILE exists before running the mode: a tap
 * device exists only once devcheck made it, and a script may need to set it
 * up (a receiver bound to it, its MTU) before frames flow. */
#include "core/counters.h"
#include "core/pkt.h"
#include "dev/dev.h"
#include "wire/wire.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DC_ETHERTYPE 0x88B5
#define DC_HDR 14
#define DC_BURST 32
#define DC_MAX_COUNT 100000
#define DC_POOL_COUNT 1024
#define DC_POOL_ROOM 2048

struct dc_opts {
    const char *dev;
    const char *mode;
    const char *go;
    uint32_t count;
    uint32_t timeout_ms;
    int stats;
};

static volatile sig_atomic_t dc_stop;

static void dc_on_signal(int sig)
{
    (void)sig;
    dc_stop = 1;
}

static uint64_t dc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t dc_payload_len(uint32_t seq)
{
    return (uint16_t)(46 + (seq * 97u) % 1000u);
}

/* ---- frames ------------------------------------------------------------- */

static void dc_fill(uint8_t *f, const uint8_t src[6], uint32_t seq, uint16_t plen)
{
    memset(f, 0xff, 6);                  /* broadcast */
    memcpy(f + 6, src, 6);
    wr16(f + 12, DC_ETHERTYPE);
    uint8_t *pl = f + DC_HDR;
    wr32(pl, seq);
    wr16(pl + 4, plen);
    for (uint32_t i = 6; i < plen; i++)
        pl[i] = (uint8_t)(seq + i);
}

/* 1: a well-formed pattern frame (seq in *seq); 0: bad pattern. */
static int dc_check(const uint8_t *f, uint16_t len, uint32_t *seq)
{
    if (len < DC_HDR + 6)
        return 0;
    const uint8_t *pl = f + DC_HDR;
    uint16_t plen = (uint16_t)(len - DC_HDR);
    *seq = rd32(pl);
    if (rd16(pl + 4) != plen || plen != dc_payload_len(*seq))
        return 0;
    for (uint32_t i = 6; i < plen; i++)
        if (pl[i] != (uint8_t)(*seq + i))
            return 0;
    return 1;
}

/* ---- device loop helpers ------------------------------------------------ */

static void dc_wait(struct dev *d, int ms)
{
    struct pollfd fds[4];
    int n = d->ops->poll_fds ? d->ops->poll_fds(d, fds, 4) : 0;
    if (n > 0)
        (void)poll(fds, (nfds_t)n, ms);
    else
        usleep((useconds_t)ms * 1000);
}

static void dc_service(struct dev *d, uint64_t now)
{
    if (d->ops->service)
        (void)d->ops->service(d, now);
}

/* ---- modes -------------------------------------------------------------- */

static int dc_sendraw(struct dev *d, const struct dc_opts *o)
{
    uint32_t seq = 0;
    uint64_t drops0 = d->ctr->dev_tx_drop;
    while (seq < o->count && !dc_stop) {
        struct pkt *batch[DC_BURST];
        uint16_t n = 0;
        while (n < DC_BURST && seq < o->count) {
            struct pkt *p = pkt_alloc(d->pool);
            if (!p)
                break;
            uint16_t plen = dc_payload_len(seq);
            uint8_t *f = pkt_put(p, (uint16_t)(DC_HDR + plen));
            if (!f) {
                pkt_free(p);
                break;
            }
            dc_fill(f, d->mac, seq++, plen);
            batch[n++] = p;
        }
        if (n == 0)
            break;
        uint64_t now = dc_now_ns();
        d->ops->tx_burst(d, batch, n, now);
        dc_service(d, now);
        usleep(500);      /* pace: the receiving raw socket is no ring */
    }
    uint64_t drops = d->ctr->dev_tx_drop - drops0;
    printf("sendraw sent=%u tx_drop=%llu\n", seq, (unsigned long long)drops);
    return seq == o->count && drops == 0 ? 0 : 1;
}

struct dc_rx_state {
    uint8_t *seen;
    uint32_t count, bad;
};

static void dc_take_raw(struct dc_rx_state *s, const struct dc_opts *o, const struct pkt *p)
{
    const uint8_t *f = pkt_data(p);
    if (p->len < DC_HDR || rd16(f + 12) != DC_ETHERTYPE)
        return;
    uint32_t seq;
    if (!dc_check(f, p->len, &seq) || seq >= o->count || s->seen[seq]) {
        s->bad++;
        return;
    }
    s->seen[seq] = 1;
    s->count++;
}

static int dc_recvraw(struct dev *d, const struct dc_opts *o)
{
    struct dc_rx_state s = {.seen = calloc(o->count ? o->count : 1, 1)};
    if (!s.seen)
        return 1;
    uint64_t deadline = dc_now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
    uint64_t now;
    while (s.count < o->count && !dc_stop && (now = dc_now_ns()) < deadline) {
        struct pkt *pk[DC_BURST];
        uint16_t n = d->ops->rx_burst(d, pk, DC_BURST, now);
        for (uint16_t i = 0; i < n; i++) {
            dc_take_raw(&s, o, pk[i]);
            pkt_free(pk[i]);
        }
        dc_service(d, now);
        if (n == 0)
            dc_wait(d, 10);
    }
    dc_service(d, dc_now_ns());
    printf("recvraw count=%u bad=%u\n", s.count, s.bad);
    free(s.seen);
    return s.count == o->count && s.bad == 0 ? 0 : 1;
}

/* 1 when p is an IPv4 UDP frame (first fragment or whole). */
static int dc_is_udp(const struct pkt *p)
{
    const uint8_t *f = pkt_data(p);
    if (p->len < DC_HDR + 20 || rd16(f + 12) != 0x0800)
        return 0;
    const uint8_t *ip = f + DC_HDR;
    return (ip[0] >> 4) == 4 && ip[9] == 17;
}

static int dc_recvudp(struct dev *d, const struct dc_opts *o)
{
    uint64_t deadline = dc_now_ns() + (uint64_t)o->timeout_ms * 1000000ull;
    uint64_t now;
    int found = 0;
    while (!found && !dc_stop && (now = dc_now_ns()) < deadline) {
        struct pkt *pk[DC_BURST];
        uint16_t n = d->ops->rx_burst(d, pk, DC_BURST, now);
        for (uint16_t i = 0; i < n; i++) {
            if (!found && dc_is_udp(pk[i])) {
                found = 1;
                printf("recvudp csum_partial=%d len=%u\n",
                       (pk[i]->flags & PKT_F_CSUM_PARTIAL) ? 1 : 0, pk[i]->len);
            }
            pkt_free(pk[i]);
        }
        dc_service(d, now);
        if (n == 0)
            dc_wait(d, 10);
    }
    if (!found)
        printf("recvudp none\n");
    return found ? 0 : 1;
}

/* ---- setup -------------------------------------------------------------- */

static void dc_usage(FILE *out)
{
    fprintf(out, "usage: devcheck --dev KIND:ARGS --mode sendraw|recvraw|recvudp\n"
                 "                [--count N (default 100, max %d)] [--timeout MS (default 5000)]\n"
                 "                [--go FILE (start when FILE exists)] [--stats]\n", DC_MAX_COUNT);
}

static int dc_parse(int argc, char **argv, struct dc_opts *o)
{
    static const struct option lo[] = {
        {"dev", required_argument, 0, 'd'},   {"mode", required_argument, 0, 'm'},
        {"count", required_argument, 0, 'n'}, {"timeout", required_argument, 0, 't'},
        {"stats", no_argument, 0, 's'},       {"help", no_argument, 0, 'h'},
        {"go", required_argument, 0, 'g'},
        {0, 0, 0, 0},
    };
    *o = (struct dc_opts){.count = 100, .timeout_ms = 5000};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'd': o->dev = optarg; break;
        case 'm': o->mode = optarg; break;
        case 'n': o->count = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': o->timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': o->stats = 1; break;
        case 'g': o->go = optarg; break;
        case 'h': dc_usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (!o->dev || !o->mode || o->count == 0 || o->count > DC_MAX_COUNT)
        return -1;
    return 0;
}

/* No MAC from the device (tap): a random locally administered unicast one. */
static void dc_pick_mac(struct dev *d)
{
    if (d->flags & DEV_F_HAS_MAC)
        return;
    srand((unsigned)(dc_now_ns() ^ (uint64_t)getpid()));
    for (int i = 0; i < 6; i++)
        d->mac[i] = (uint8_t)rand();
    d->mac[0] = (uint8_t)((d->mac[0] & 0xfe) | 0x02);
}

/* Wait for the go file, at most the timeout, in 10 ms steps. */
static int dc_wait_go(const struct dc_opts *o)
{
    if (!o->go)
        return 0;
    for (uint32_t waited = 0; waited < o->timeout_ms && !dc_stop; waited += 10) {
        if (access(o->go, F_OK) == 0)
            return 0;
        usleep(10000);
    }
    fprintf(stderr, "devcheck: %s did not appear\n", o->go);
    return -1;
}

static int dc_run(struct dev *d, const struct dc_opts *o)
{
    if (dc_wait_go(o))
        return 1;
    if (strcmp(o->mode, "sendraw") == 0)
        return dc_sendraw(d, o);
    if (strcmp(o->mode, "recvraw") == 0)
        return dc_recvraw(d, o);
    if (strcmp(o->mode, "recvudp") == 0)
        return dc_recvudp(d, o);
    fprintf(stderr, "devcheck: unknown mode %s\n", o->mode);
    return 2;
}

int main(int argc, char **argv)
{
    struct dc_opts o;
    if (dc_parse(argc, argv, &o)) {
        dc_usage(stderr);
        return 2;
    }
    signal(SIGINT, dc_on_signal);
    signal(SIGTERM, dc_on_signal);
    static struct ust_counters ctr;
    struct dev d;
    if (dev_open(&d, o.dev, &ctr))
        return 2;
    struct pkt_pool pool;
    if (pkt_pool_init(&pool, DC_POOL_COUNT, DC_POOL_ROOM, NULL)) {
        dev_close(&d);
        return 2;
    }
    d.pool = &pool;
    int rc = 2;
    if (d.ops->start && d.ops->start(&d)) {
        fprintf(stderr, "devcheck: start failed\n");
        goto out;
    }
    dc_pick_mac(&d);
    printf("READY mac=%02x:%02x:%02x:%02x:%02x:%02x mtu=%u\n", d.mac[0], d.mac[1], d.mac[2],
           d.mac[3], d.mac[4], d.mac[5], d.mtu);
    fflush(stdout);
    rc = dc_run(&d, &o);
    if (o.stats)
        counters_print(&ctr, stdout, 0);
    if (pool.avail != pool.count) {
        fprintf(stderr, "devcheck: %u packet buffers leaked\n", pool.count - pool.avail);
        rc = rc ? rc : 1;
    }
out:
    dev_close(&d);
    pkt_pool_fini(&pool);
    fflush(stdout);
    return rc;
}
