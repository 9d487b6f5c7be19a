/* memif-probe: a device-level round-trip check over any --dev (meant for
 * memif). Probe mode sends numbered UDP-in-Ethernet frames and counts the
 * ones that come back with MACs, IPv4 addresses and UDP ports swapped (what
 * dpdk-testpmd --forward-mode=5tswap does). Echo mode is that reflector
 * itself, so two ustack devices can be measured against each other.
 *
 *   memif-probe --dev memif:/tmp/m.sock [--count N] [--window W] [--size BYTES]
 *               [--timeout-ms T] [--min-ratio R]
 *   memif-probe --dev memif:/tmp/m.sock,role=server --echo [--timeout-ms T]
 *
 * Prints "sent N received N bad N lost N elapsed_ms T rate_fps R". Exit 0 when
 * at least min-ratio (default 1.0) of the frames came back and none was bad. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev/dev.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/ipv4.h"
#include "wire/udp.h"

#define PROBE_POOL 4096
#define PROBE_ROOM 2048
#define PROBE_BURST 32
#define PROBE_SPORT 40000
#define PROBE_DPORT 7
#define PROBE_SRC_IP 0x0a000001u     /* 10.0.0.1 */
#define PROBE_DST_IP 0x0a000002u     /* 10.0.0.2 */
#define PROBE_STALL_NS 100000000ull  /* nothing back for this long: reopen the window */
#define PROBE_SEQ_OFF (ETH_HDR_LEN + IPV4_HDR_LEN + UDP_HDR_LEN)

static const uint8_t probe_src_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t probe_dst_mac[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };

struct probe_opts {
    const char *dev;
    uint32_t count, window, size, timeout_ms;
    double min_ratio;
    int echo;
};

struct probe_stats {
    uint64_t sent, received, bad, reordered;
    uint32_t next_seq_back;
};

static volatile sig_atomic_t probe_stop;

static void probe_on_signal(int sig) { (void)sig; probe_stop = 1; }

static uint64_t probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void probe_usage(void)
{
    fprintf(stderr, "usage: memif-probe --dev SPEC [--echo] [--count N] [--window W] "
                    "[--size BYTES] [--timeout-ms T] [--min-ratio R]\n");
}

static int probe_parse(int argc, char **argv, struct probe_opts *o)
{
    static const struct option longs[] = {
        { "dev", required_argument, NULL, 'd' }, { "count", required_argument, NULL, 'n' },
        { "window", required_argument, NULL, 'w' }, { "size", required_argument, NULL, 's' },
        { "timeout-ms", required_argument, NULL, 't' }, { "min-ratio", required_argument, NULL, 'r' },
        { "echo", no_argument, NULL, 'e' }, { NULL, 0, NULL, 0 },
    };
    *o = (struct probe_opts){ .count = 100000, .window = 256, .size = 60,
                              .timeout_ms = 10000, .min_ratio = 1.0 };
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'd': o->dev = optarg; break;
        case 'n': o->count = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'w': o->window = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 's': o->size = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 't': o->timeout_ms = (uint32_t)strtoul(optarg, NULL, 0); break;
        case 'r': o->min_ratio = strtod(optarg, NULL); break;
        case 'e': o->echo = 1; break;
        default: return -1;
        }
    }
    if (!o->dev || o->window == 0 || o->size < PROBE_SEQ_OFF + 4 || o->size > 1514)
        return -1;
    return 0;
}

/* Bring the device up the way a stack does (dev.h life cycle). */
static int probe_dev_up(struct dev *d, struct pkt_pool *pool, struct ust_counters *ctr,
                        const char *spec, uint64_t deadline)
{
    if (dev_open(d, spec, ctr) != 0)
        return -1;
    void *mem = d->ops->pool_mem ? d->ops->pool_mem(d, (size_t)PROBE_POOL * PROBE_ROOM) : NULL;
    if (pkt_pool_init(pool, PROBE_POOL, PROBE_ROOM, mem) != 0)
        return -1;
    d->pool = pool;
    if (d->ops->start && d->ops->start(d) != 0)
        return -1;
    while (!(d->flags & DEV_F_LINK_UP) && !probe_stop && probe_now() < deadline) {
        if (d->ops->service)
            d->ops->service(d, probe_now());
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    if (!(d->flags & DEV_F_LINK_UP)) {
        fprintf(stderr, "memif-probe: link did not come up\n");
        return -1;
    }
    return 0;
}

/* One probe frame: Ethernet / IPv4 / UDP with the sequence number first. */
static struct pkt *probe_build(struct pkt_pool *pool, uint32_t size, uint32_t seq)
{
    struct pkt *p = pkt_alloc(pool);
    if (!p)
        return NULL;
    uint8_t *f = pkt_put(p, (uint16_t)size);
    memset(f, 0, size);
    uint16_t l4_len = (uint16_t)(size - ETH_HDR_LEN - IPV4_HDR_LEN);
    struct eth_repr e = { .type = ETHERTYPE_IPV4 };
    memcpy(e.dst, probe_dst_mac, ETH_ALEN);
    memcpy(e.src, probe_src_mac, ETH_ALEN);
    struct ipv4_repr ip = { .total_len = (uint16_t)(IPV4_HDR_LEN + l4_len), .id = (uint16_t)seq,
                            .df = 1, .ttl = 64, .proto = IPPROTO_UDP_,
                            .src = PROBE_SRC_IP, .dst = PROBE_DST_IP };
    struct udp_repr u = { .sport = PROBE_SPORT, .dport = PROBE_DPORT, .len = l4_len };
    wr32(f + PROBE_SEQ_OFF, seq);
    eth_emit(&e, f, size);
    ipv4_emit(&ip, f + ETH_HDR_LEN, size - ETH_HDR_LEN);
    udp_emit(&u, f + ETH_HDR_LEN + IPV4_HDR_LEN, l4_len,
             csum_pseudo_ipv4(ip.src, ip.dst, IPPROTO_UDP_, l4_len));
    return p;
}

/* A reply must be our frame with every address and port swapped and both
 * checksums still valid. Returns its sequence number or -1. */
static int64_t probe_check_reply(const struct pkt *p)
{
    const uint8_t *f = pkt_data(p);
    struct eth_repr e;
    struct ipv4_repr ip;
    struct udp_repr u;
    if (eth_parse(f, p->len, &e) < 0 || e.type != ETHERTYPE_IPV4 ||
        memcmp(e.dst, probe_src_mac, ETH_ALEN) || memcmp(e.src, probe_dst_mac, ETH_ALEN))
        return -1;
    int hl = ipv4_parse(f + ETH_HDR_LEN, p->len - ETH_HDR_LEN, &ip);
    if (hl != IPV4_HDR_LEN || ip.proto != IPPROTO_UDP_ ||
        ip.src != PROBE_DST_IP || ip.dst != PROBE_SRC_IP)
        return -1;
    uint16_t l4_len = (uint16_t)(ip.total_len - hl);
    uint32_t pseudo = csum_pseudo_ipv4(ip.src, ip.dst, IPPROTO_UDP_, l4_len);
    if (udp_parse(f + ETH_HDR_LEN + hl, l4_len, pseudo, 1, &u) < 0 ||
        u.sport != PROBE_DPORT || u.dport != PROBE_SPORT || l4_len < UDP_HDR_LEN + 4)
        return -1;
    return rd32(f + PROBE_SEQ_OFF);
}

static void probe_take_replies(struct dev *d, struct probe_stats *st, uint64_t *last_rx)
{
    struct pkt *in[PROBE_BURST];
    uint16_t n = d->ops->rx_burst(d, in, PROBE_BURST, probe_now());
    for (uint16_t i = 0; i < n; i++) {
        int64_t seq = probe_check_reply(in[i]);
        pkt_free(in[i]);
        if (seq < 0) {
            st->bad++;
            continue;
        }
        if ((uint32_t)seq != st->next_seq_back)
            st->reordered++;
        st->next_seq_back = (uint32_t)seq + 1;
        st->received++;
    }
    if (n)
        *last_rx = probe_now();
}

static void probe_send_some(struct dev *d, const struct probe_opts *o, struct probe_stats *st,
                            uint64_t *window_base)
{
    uint64_t in_flight = st->sent - st->received - *window_base;
    uint64_t want = o->count - st->sent;
    if (in_flight >= o->window || want == 0)
        return;
    if (want > o->window - in_flight)
        want = o->window - in_flight;
    if (want > PROBE_BURST)
        want = PROBE_BURST;
    struct pkt *out[PROBE_BURST];
    uint16_t n = 0;
    while (n < want && (out[n] = probe_build(d->pool, o->size, (uint32_t)(st->sent + n))))
        n++;
    d->ops->tx_burst(d, out, n, probe_now());   /* drops are counted by the device */
    st->sent += n;
}

static int probe_run(struct dev *d, const struct probe_opts *o, uint64_t deadline)
{
    struct probe_stats st = { 0 };
    uint64_t window_base = 0, start = probe_now(), last_rx = start;
    while (!probe_stop && probe_now() < deadline) {
        probe_send_some(d, o, &st, &window_base);
        probe_take_replies(d, &st, &last_rx);
        if (st.received + window_base >= o->count && st.sent >= o->count)
            break;
        if (probe_now() - last_rx > PROBE_STALL_NS) {
            /* The peer dropped some: forget them so the window reopens. */
            if (st.sent >= o->count)
                break;
            window_base = st.sent - st.received;
            last_rx = probe_now();
        }
        if (d->ops->service)
            d->ops->service(d, probe_now());
    }
    double secs = (double)(probe_now() - start) / 1e9;
    uint64_t lost = st.sent - st.received;
    printf("sent %llu received %llu bad %llu lost %llu reordered %llu elapsed_ms %.1f rate_fps %.0f\n",
           (unsigned long long)st.sent, (unsigned long long)st.received,
           (unsigned long long)st.bad, (unsigned long long)lost,
           (unsigned long long)st.reordered, secs * 1e3, secs > 0 ? (double)st.received / secs : 0.0);
    return st.bad == 0 && st.received >= (uint64_t)(o->min_ratio * o->count) ? 0 : 1;
}

/* Swap MACs, IPv4 addresses and UDP/TCP ports in place (checksums stay valid:
 * the one's-complement sum does not depend on word order). */
static void probe_swap(struct pkt *p)
{
    uint8_t *f = pkt_data(p), t[ETH_ALEN];
    if (p->len < ETH_HDR_LEN + IPV4_HDR_LEN + 4 || rd16(f + 12) != ETHERTYPE_IPV4)
        return;
    memcpy(t, f, ETH_ALEN);
    memcpy(f, f + ETH_ALEN, ETH_ALEN);
    memcpy(f + ETH_ALEN, t, ETH_ALEN);
    uint8_t *ip = f + ETH_HDR_LEN;
    uint32_t a = rd32(ip + 12);
    wr32(ip + 12, rd32(ip + 16));
    wr32(ip + 16, a);
    uint32_t hl = (uint32_t)(ip[0] & 0xf) * 4;
    if (hl < IPV4_HDR_LEN || ETH_HDR_LEN + hl + 4 > p->len || (ip[9] != IPPROTO_UDP_ && ip[9] != IPPROTO_TCP_))
        return;
    uint16_t port = rd16(ip + hl);
    wr16(ip + hl, rd16(ip + hl + 2));
    wr16(ip + hl + 2, port);
}

static int probe_echo(struct dev *d, uint64_t deadline)
{
    uint64_t echoed = 0;
    while (!probe_stop && probe_now() < deadline) {
        struct pkt *in[PROBE_BURST];
        uint16_t n = d->ops->rx_burst(d, in, PROBE_BURST, probe_now());
        for (uint16_t i = 0; i < n; i++)
            probe_swap(in[i]);
        if (n)
            echoed += d->ops->tx_burst(d, in, n, probe_now());
        if (d->ops->service)
            d->ops->service(d, probe_now());
    }
    printf("echoed %llu\n", (unsigned long long)echoed);
    return 0;
}

int main(int argc, char **argv)
{
    struct probe_opts o;
    if (probe_parse(argc, argv, &o) != 0) {
        probe_usage();
        return 2;
    }
    signal(SIGINT, probe_on_signal);
    signal(SIGTERM, probe_on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct dev d;
    struct pkt_pool pool = { 0 };
    struct ust_counters ctr = { 0 };
    uint64_t deadline = probe_now() + (uint64_t)o.timeout_ms * 1000000ull;
    int rc = 1;
    if (probe_dev_up(&d, &pool, &ctr, o.dev, deadline) == 0)
        rc = o.echo ? probe_echo(&d, deadline) : probe_run(&d, &o, deadline);
    printf("dev_tx %llu dev_rx %llu dev_tx_drop %llu dev_rx_oversize %llu\n",
           (unsigned long long)ctr.dev_tx, (unsigned long long)ctr.dev_rx,
           (unsigned long long)ctr.dev_tx_drop, (unsigned long long)ctr.dev_rx_oversize);
    dev_close(&d);
    pkt_pool_fini(&pool);
    return rc;
}
