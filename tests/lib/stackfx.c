#include "stackfx.h"

#include <stdio.h>
#include <string.h>

#include "wire/arp.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/icmp.h"
#include "wire/udp.h"

const uint8_t fx_us_mac[6] = {0x02, 0, 0, 0, 0, 0x02};
const uint8_t fx_peer_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

static int fx_link_seq;

int fx_open_args(struct fixture *fx, const char *const *extra)
{
    char name[32], dev[96], peer_spec[64];
    memset(fx, 0, sizeof(*fx));
    snprintf(name, sizeof(name), "fx%d", fx_link_seq++);
    snprintf(dev, sizeof(dev), "memlink:%s,end=a", name);
    char *argv[32] = {"test", "--dev", dev, "--ip", "10.0.0.2/24", "--mac", "02:00:00:00:00:02",
                      "--gw", "10.0.0.254", "--pkts", "1024", "--tcp-conns", "4096", NULL};
    int argc = 13;
    for (int i = 0; extra && extra[i] && argc < 30; i++)
        argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0)
        return -1;
    fx->s = ust_stack_create(cfg);
    ust_config_free(cfg);
    if (!fx->s)
        return -1;
    snprintf(peer_spec, sizeof(peer_spec), "memlink:%s,end=b", name);
    if (dev_open(&fx->peer, peer_spec, &fx->peer_ctr) < 0)
        return -1;
    if (pkt_pool_init(&fx->peer_pool, 4096, 2048, NULL) < 0)
        return -1;
    fx->peer.pool = &fx->peer_pool;
    fx->peer.ops->start(&fx->peer);
    fx->now = fx->s->now;
    fx_poll(fx);   /* the link is up now that both ends are open */
    return 0;
}

void fx_poll(struct fixture *fx) { ust_stack_poll(fx->s, fx->now); }

void fx_advance(struct fixture *fx, uint64_t ns)
{
    uint64_t end = fx->now + ns;
    while (fx->now < end) {
        uint64_t step = end - fx->now < 1000000 ? end - fx->now : 1000000;
        fx->now += step;
        fx_poll(fx);
    }
}

void fx_send(struct fixture *fx, const uint8_t *frame, size_t len)
{
    struct pkt *p = pkt_alloc(&fx->peer_pool);
    memcpy(pkt_put(p, (uint16_t)len), frame, len);
    fx->peer.ops->tx_burst(&fx->peer, &p, 1, fx->now);
    fx_poll(fx);
}

size_t fx_recv(struct fixture *fx, uint8_t *buf, size_t cap)
{
    struct pkt *p;
    if (fx->peer.ops->rx_burst(&fx->peer, &p, 1, fx->now) != 1)
        return 0;
    size_t n = p->len < cap ? p->len : cap;
    memcpy(buf, pkt_data(p), n);
    pkt_free(p);
    return n;
}

void fx_drain(struct fixture *fx)
{
    uint8_t buf[2048];
    while (fx_recv(fx, buf, sizeof(buf)))
        ;
}

uint64_t fx_ctr(struct fixture *fx, const char *name)
{
    uint64_t v = 0;
    if (ust_stack_counter(fx->s, name, &v) < 0)
        fprintf(stderr, "  no counter %s\n", name);
    return v;
}

int fx_close(struct fixture *fx)
{
    fx_poll(fx);   /* flush what the last calls queued */
    fx_drain(fx);
    if (fx->echo)
        ust_udp_close(fx->echo);
    int leak = 0;
    struct ust_stack *s = fx->s;
    /* Buffers may legitimately sit in TCP queues of live connections: only
     * count what is neither in a pool nor owned by a connection. */
    tcp_fini(s);
    s->tcp.tcbs = NULL;
    leak = s->pool.avail != s->pool.count || s->big_pool.avail != s->big_pool.count;
    if (leak)
        fprintf(stderr, "  leak: pool %u/%u big %u/%u\n", s->pool.avail, s->pool.count, s->big_pool.avail,
                s->big_pool.count);
    ust_stack_destroy(s);
    dev_close(&fx->peer);
    leak |= fx->peer_pool.avail != fx->peer_pool.count;
    pkt_pool_fini(&fx->peer_pool);
    return leak ? -1 : 0;
}

size_t fx_build_eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    struct eth_repr e = {.type = type};
    memcpy(e.dst, dst, 6);
    memcpy(e.src, fx_peer_mac, 6);
    return (size_t)eth_emit(&e, f, ETH_HDR_LEN);
}

size_t fx_build_arp(uint8_t *f, uint16_t op, uint32_t spa, const uint8_t *sha, uint32_t tpa)
{
    size_t n = fx_build_eth(f, eth_broadcast, ETHERTYPE_ARP);
    struct arp_repr a = {.op = op, .spa = spa, .tpa = tpa};
    memcpy(a.sha, sha, 6);
    arp_emit(&a, f + n, ARP_LEN);
    memset(f + n + ARP_LEN, 0, 60 - n - ARP_LEN);
    return 60;
}

size_t fx_build_ip(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto, uint16_t id, uint16_t frag_off, int mf,
                   size_t plen)
{
    size_t n = fx_build_eth(f, fx_us_mac, ETHERTYPE_IPV4);
    struct ipv4_repr ip = {.hdr_len = 20, .total_len = (uint16_t)(20 + plen), .id = id, .ttl = 64,
                           .proto = proto, .src = src, .dst = dst, .frag_off = frag_off, .mf = (uint8_t)mf};
    ipv4_emit(&ip, f + n, 20);
    return n + 20 + plen;
}

size_t fx_build_udp(uint8_t *f, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    uint8_t *u = f + ETH_HDR_LEN + 20;
    memcpy(u + 8, data, len);
    struct udp_repr r = {.sport = sport, .dport = dport, .len = (uint16_t)(8 + len)};
    udp_emit(&r, u, r.len, csum_pseudo_ipv4(FX_PEER_IP, FX_US_IP, IPPROTO_UDP_, r.len));
    return fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_UDP_, 7, 0, 0, r.len);
}

void fx_learn_peer(struct fixture *fx)
{
    uint8_t f[64];
    fx_send(fx, f, fx_build_arp(f, ARP_OP_REQUEST, FX_PEER_IP, fx_peer_mac, FX_US_IP));
    fx_drain(fx);
}

void fx_tcp_send(struct fixture *fx, const struct tcp_repr *h, const void *data, size_t len)
{
    static uint8_t f[65536];
    size_t hlen = TCP_HDR_LEN + tcp_opts_len(&h->opt);
    uint8_t *t = f + ETH_HDR_LEN + 20;
    if (len)
        memcpy(t + hlen, data, len);
    tcp_emit(h, t, hlen + len, len, csum_pseudo_ipv4(FX_PEER_IP, FX_US_IP, IPPROTO_TCP_, (uint16_t)(hlen + len)));
    fx_send(fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_TCP_, 1, 0, 0, hlen + len));
}

int fx_tcp_recv(struct fixture *fx, struct fx_seg *seg, uint8_t *buf, size_t cap)
{
    static uint8_t f[65536];
    size_t n;
    while ((n = fx_recv(fx, f, sizeof(f)))) {
        struct eth_repr e;
        struct ipv4_repr ip;
        if (eth_parse(f, n, &e) < 0 || e.type != ETHERTYPE_IPV4)
            continue;
        int hl = ipv4_parse(f + 14, n - 14, &ip);
        if (hl < 0 || ip.proto != IPPROTO_TCP_)
            continue;
        size_t l4 = ip.total_len - (size_t)hl;
        const uint8_t *t = f + 14 + hl;
        if (tcp_parse(t, l4, csum_pseudo_ipv4(ip.src, ip.dst, IPPROTO_TCP_, (uint16_t)l4), 1, &seg->h) < 0)
            return -2;   /* the stack sent a bad segment */
        seg->len = l4 - seg->h.hdr_len;
        if (seg->len > cap)
            seg->len = cap;
        memcpy(buf, t + seg->h.hdr_len, seg->len);
        seg->data = buf;
        return 0;
    }
    return -1;
}
