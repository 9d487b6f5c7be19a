#include "net/ipv4.h"

#include <errno.h>
#include <string.h>

#include "net/link.h"
#include "api/workers.h"
#include "net/stack.h"
#include "wire/checksum.h"

void ipv4_iface_init(struct ust_stack *s)
{
    struct ip_iface *ip = &s->ip;
    ip->naddrs = 0;
    for (int i = 0; i < s->cfg.naddrs && i < IP_MAX_ADDRS; i++) {
        struct ip_ifaddr *a = &ip->addrs[ip->naddrs++];
        a->addr = s->cfg.addrs[i].addr;
        a->prefix = s->cfg.addrs[i].prefix;
        a->mask = a->prefix ? ~0u << (32 - a->prefix) : 0;
        a->bcast = a->prefix >= 31 ? 0xffffffffu : (a->addr | ~a->mask);
    }
    ip->gw = s->cfg.gw;
    ip->rt_last_valid = 0;
    /* Start each destination's IDs at a random point (RFC 6864 4.1). */
    rand_bytes(ip->ids, sizeof(ip->ids));
}

int ipv4_is_local(const struct ust_stack *s, uint32_t addr)
{
    for (int i = 0; i < s->ip.naddrs; i++)
        if (s->ip.addrs[i].addr == addr)
            return 1;
    return 0;
}

int ipv4_is_broadcast(const struct ust_stack *s, uint32_t addr)
{
    if (addr == 0xffffffffu)
        return 1;
    for (int i = 0; i < s->ip.naddrs; i++)
        if (s->ip.addrs[i].prefix < 31 && s->ip.addrs[i].bcast == addr)
            return 1;
    return 0;
}

/* Longest prefix among connected subnets, else the default gateway. */
int ipv4_route(const struct ust_stack *s, uint32_t dst, struct ip_route *rt)
{
    const struct ip_ifaddr *best = NULL;
    for (int i = 0; i < s->ip.naddrs; i++) {
        const struct ip_ifaddr *a = &s->ip.addrs[i];
        if ((dst & a->mask) == (a->addr & a->mask) && (!best || a->prefix > best->prefix))
            best = a;
    }
    rt->broadcast = 0;
    if (dst == 0xffffffffu && s->ip.naddrs) {
        rt->next_hop = dst;
        rt->src = s->ip.addrs[0].addr;
        rt->broadcast = 1;
        return 0;
    }
    if (best) {
        rt->next_hop = dst;
        rt->src = best->addr;
        rt->broadcast = best->prefix < 31 && dst == best->bcast;
        return 0;
    }
    if (!s->ip.gw)
        return -1;
    for (int i = 0; i < s->ip.naddrs; i++) {
        const struct ip_ifaddr *a = &s->ip.addrs[i];
        if ((s->ip.gw & a->mask) == (a->addr & a->mask)) {
            rt->next_hop = s->ip.gw;
            rt->src = a->addr;
            return 0;
        }
    }
    return -1;
}

uint16_t ipv4_next_id(struct ust_stack *s, uint32_t src, uint32_t dst, uint8_t proto, int df)
{
    uint32_t key[3] = {src, dst, proto};
    uint32_t b;
    if (df) {
        /* RFC 6864 4.1: an atomic datagram's ID is never used for
         * reassembly, so the cheap keyed hash picks its counter (every
         * TCP segment takes this path); the PRF is kept for datagrams that
         * may be fragmented (RFC 7739). */
        uint64_t w[2] = {(uint64_t)src << 32 | dst, proto};
        b = (uint32_t)hash_words_keyed(&s->fast_key, w, 2);
    } else {
        struct ip_iface *ip = &s->ip;
        if (!ip->id_cached || ip->id_src != src || ip->id_dst != dst || ip->id_proto != proto) {
            ip->id_bucket = (uint16_t)(siphash24(&s->key, key, sizeof(key)) & (IP_ID_BUCKETS - 1));
            ip->id_src = src, ip->id_dst = dst, ip->id_proto = proto, ip->id_cached = 1;
        }
        b = ip->id_bucket;
    }
    return s->ip.ids[b & (IP_ID_BUCKETS - 1)]++;
}

static void ipv4_count_parse_error(struct ust_stack *s, int err)
{
    switch (-err) {
    case WIRE_BAD_VERSION: CTR_INC(&s->ctr, ip_drop_version); break;
    case WIRE_BAD_HDRLEN: CTR_INC(&s->ctr, ip_drop_hdrlen); break;
    case WIRE_BAD_LEN: CTR_INC(&s->ctr, ip_drop_len); break;
    case WIRE_BAD_CSUM: CTR_INC(&s->ctr, ip_drop_csum); break;
    default: CTR_INC(&s->ctr, ip_drop_truncated); break;
    }
}

/* RFC 1122 3.2.1.3: silently discard packets from a source that cannot be a
 * single host (broadcast, multicast, class E, 0/8 other than 0.0.0.0 and 127/8
 * from the wire), and our own addresses coming back. */
static int ipv4_martian_source(const struct ust_stack *s, uint32_t src)
{
    uint8_t top = (uint8_t)(src >> 24);
    return top >= 224 || top == 127 || (top == 0 && src != 0) || ipv4_is_broadcast(s, src) ||
           ipv4_is_local(s, src);
}

static void ipv4_deliver(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip)
{
    p->l4 = (uint16_t)(p->l3 + ip->hdr_len);
    p->off = p->l4;
    p->len = (uint16_t)(ip->total_len - ip->hdr_len);
    switch (ip->proto) {
    case IPPROTO_ICMP_:
        icmp_input(s, p, ip);
        return;
    case IPPROTO_UDP_:
        udp_input(s, p, ip);
        return;
    case IPPROTO_TCP_:
        tcp_input(s, p, ip);
        return;
    default:
        /* RFC 1122 3.2.2.1: SHOULD send Protocol Unreachable. */
        CTR_INC(&s->ctr, ip_drop_proto);
        icmp_send_error(s, p, ip, ICMP_DEST_UNREACH, ICMP_PROTO_UNREACH, 0);
        pkt_free(p);
    }
}

void ipv4_input(struct ust_stack *s, struct pkt *p)
{
    struct ipv4_repr ip;
    CTR_INC(&s->ctr, ip_rx);
    int hl = ipv4_parse(pkt_data(p), p->len, &ip);
    if (hl < 0) {
        ipv4_count_parse_error(s, hl);
        pkt_free(p);
        return;
    }
    pkt_trim(p, ip.total_len);   /* drop Ethernet padding */
    if (!ipv4_is_local(s, ip.dst) && !ipv4_is_broadcast(s, ip.dst)) {
        CTR_INC(&s->ctr, ip_drop_not_us);   /* a host does not forward (RFC 1122 3.3.1) */
        pkt_free(p);
        return;
    }
    if (ipv4_martian_source(s, ip.src)) {
        CTR_INC(&s->ctr, ip_drop_src);
        pkt_free(p);
        return;
    }
    if (ipv4_is_fragment(&ip)) {
        CTR_INC(&s->ctr, ip_frag_rx);
        struct ipv4_repr whole;
        p = ipfrag_input(&s->frag, p, &ip, s->now, &whole);
        if (!p)
            return;
        ip = whole;
        if (s->wk && workers_steer_datagram(s, p))
            return;   /* reassembled here, owned by another worker */
    }
    ipv4_deliver(s, p, &ip);
}

/* Copy one fragment's worth of p (payload bytes [off, off+len)) behind a
 * fresh header. RFC 791 "Fragmentation": every fragment but the last has MF
 * and a payload that is a multiple of 8 bytes. */
static struct pkt *ipv4_make_fragment(struct ust_stack *s, const struct pkt *p, const struct ipv4_repr *ip,
                                      uint16_t off, uint16_t len, int more)
{
    struct pkt *f = pkt_alloc(&s->pool);
    if (!f) {
        CTR_INC(&s->ctr, pool_empty);
        return NULL;
    }
    uint8_t *h = pkt_put(f, (uint16_t)(IPV4_HDR_LEN + len));
    if (!h) {
        pkt_free(f);
        return NULL;
    }
    struct ipv4_repr fr = *ip;
    fr.total_len = (uint16_t)(IPV4_HDR_LEN + len);
    fr.frag_off = off;
    fr.mf = (uint8_t)more;
    ipv4_emit(&fr, h, IPV4_HDR_LEN);
    memcpy(h + IPV4_HDR_LEN, pkt_data(p) + IPV4_HDR_LEN + off, len);
    f->l3 = f->off;
    return f;
}

static int ipv4_fragment_out(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip,
                             const struct ip_route *rt)
{
    uint16_t payload = (uint16_t)(ip->total_len - IPV4_HDR_LEN);
    uint16_t chunk = (uint16_t)((s->ip.mtu - IPV4_HDR_LEN) & ~7u);
    int rc = 0;
    for (uint16_t off = 0; off < payload; off = (uint16_t)(off + chunk)) {
        uint16_t len = payload - off < chunk ? (uint16_t)(payload - off) : chunk;
        struct pkt *f = ipv4_make_fragment(s, p, ip, off, len, off + len < payload);
        if (!f) {
            rc = -ENOBUFS;
            break;
        }
        CTR_INC(&s->ctr, ip_frag_tx);
        CTR_INC(&s->ctr, ip_tx);
        link_output_ip(s, f, rt->next_hop, rt->broadcast);
    }
    pkt_free(p);
    return rc;
}

/* ipv4_route through the one-entry cache of the last destination. */
static int ipv4_route_last(struct ust_stack *s, uint32_t dst, struct ip_route *rt)
{
    struct ip_iface *ip = &s->ip;
    if (ip->rt_last_valid && ip->rt_last_dst == dst) {
        *rt = (struct ip_route){.next_hop = ip->rt_last_next_hop, .src = ip->rt_last_src,
                                .broadcast = ip->rt_last_broadcast};
        return 0;
    }
    if (ipv4_route(s, dst, rt) < 0)
        return -1;
    ip->rt_last_dst = dst;
    ip->rt_last_next_hop = rt->next_hop;
    ip->rt_last_src = rt->src;
    ip->rt_last_broadcast = rt->broadcast;
    ip->rt_last_valid = 1;
    return 0;
}

int ipv4_output(struct ust_stack *s, struct pkt *p, uint32_t src, uint32_t dst, uint8_t proto,
                uint8_t tos, uint8_t ttl, unsigned flags)
{
    struct ip_route rt;
    if (ipv4_route_last(s, dst, &rt) < 0) {
        CTR_INC(&s->ctr, ip_drop_noroute);
        pkt_free(p);
        return -ENETUNREACH;
    }
    uint32_t total = (uint32_t)p->len + IPV4_HDR_LEN;
    if (total > 0xffff || ((flags & IPO_DF) && total > s->ip.mtu)) {
        CTR_INC(&s->ctr, ip_frag_drop_df);
        pkt_free(p);
        return -EMSGSIZE;
    }
    uint8_t *h = pkt_push(p, IPV4_HDR_LEN);
    if (!h) {
        CTR_INC(&s->ctr, ip_drop_tx_nobuf);
        pkt_free(p);
        return -ENOBUFS;
    }
    struct ipv4_repr ip = {
        .hdr_len = IPV4_HDR_LEN, .tos = tos, .total_len = (uint16_t)total,
        .df = (flags & IPO_DF) ? 1 : 0, .ttl = ttl ? ttl : IP_DEFAULT_TTL, .proto = proto,
        .src = src ? src : rt.src, .dst = dst,
    };
    ip.id = ipv4_next_id(s, ip.src, dst, proto, ip.df);
    ipv4_emit(&ip, h, IPV4_HDR_LEN);
    p->l3 = p->off;
    if (total > s->ip.mtu)
        return ipv4_fragment_out(s, p, &ip, &rt);
    CTR_INC(&s->ctr, ip_tx);
    link_output_ip(s, p, rt.next_hop, rt.broadcast);
    return 0;
}
