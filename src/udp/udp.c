#include "udp/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "net/sockaddr.h"
#include "net/stack.h"
#include "wire/checksum.h"
#include "wire/udp.h"

#define UDP_MAX_PAYLOAD (0xffff - IPV4_HDR_LEN - UDP_HDR_LEN)

static struct ust_udp **udp_bucket(struct ust_stack *s, uint16_t port)
{
    return &s->udp.buckets[port & (UDP_BUCKETS - 1)];
}

/* An exact local address beats the wildcard (RFC 1122 4.1.3.4 demux). */
static struct ust_udp *udp_lookup(struct ust_stack *s, uint32_t addr, uint16_t port)
{
    struct ust_udp *wild = NULL;
    for (struct ust_udp *u = *udp_bucket(s, port); u; u = u->hnext) {
        if (u->lport != port)
            continue;
        if (u->laddr == addr)
            return u;
        if (u->laddr == 0)
            wild = u;
    }
    return wild;
}

static int udp_port_taken(struct ust_stack *s, uint32_t addr, uint16_t port)
{
    for (struct ust_udp *u = *udp_bucket(s, port); u; u = u->hnext)
        if (u->lport == port && (u->laddr == 0 || addr == 0 || u->laddr == addr))
            return 1;
    return 0;
}

void udp_init(struct ust_stack *s) { memset(&s->udp, 0, sizeof(s->udp)); }

void udp_fini(struct ust_stack *s)
{
    for (uint32_t b = 0; b < UDP_BUCKETS; b++) {
        struct ust_udp *u = s->udp.buckets[b];
        while (u) {
            struct ust_udp *next = u->hnext;
            pktq_free_all(&u->rxq);
            free(u);
            u = next;
        }
        s->udp.buckets[b] = NULL;
    }
}

void udp_input(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip)
{
    struct udp_repr h;
    int verify = !(p->flags & PKT_F_CSUM_PARTIAL);
    uint32_t pseudo = p->len >= UDP_HDR_LEN
                          ? csum_pseudo_ipv4(ip->src, ip->dst, IPPROTO_UDP_, rd16(pkt_data(p) + 4))
                          : 0;
    int rc = udp_parse(pkt_data(p), p->len, pseudo, verify, &h);
    CTR_INC(&s->ctr, udp_rx);
    if (rc < 0) {
        if (rc == -WIRE_BAD_CSUM)
            CTR_INC(&s->ctr, udp_drop_csum);
        else
            CTR_INC(&s->ctr, udp_drop_malformed);
        pkt_free(p);
        return;
    }
    pkt_trim(p, h.len);
    struct ust_udp *u = udp_lookup(s, ip->dst, h.dport);
    if (!u) {
        CTR_INC(&s->ctr, udp_drop_noport);
        /* RFC 1122 4.1.3.1: SHOULD send Port Unreachable (never for broadcasts). */
        icmp_send_error(s, p, ip, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0);
        pkt_free(p);
        return;
    }
    if (u->rxq.len >= u->rxq_max) {
        CTR_INC(&s->ctr, udp_drop_rcvbuf);
        pkt_free(p);
        return;
    }
    pktq_push(&u->rxq, p);
    if (u->on_readable)
        u->on_readable(u, u->cb_arg);
}

void udp_error_input(struct ust_stack *s, const struct icmp_err *e)
{
    uint16_t sport = rd16(e->l4);
    struct ust_udp *u = udp_lookup(s, e->inner.src, sport);
    if (!u)
        return;
    if (e->type == ICMP_DEST_UNREACH)
        u->error = e->code == ICMP_PORT_UNREACH || e->code == ICMP_PROTO_UNREACH ? ECONNREFUSED
                   : e->code == ICMP_FRAG_NEEDED                                 ? EMSGSIZE
                                                                                 : EHOSTUNREACH;
    else
        u->error = EHOSTUNREACH;
}

struct ust_udp *ust_udp_open(struct ust_stack *s)
{
    struct ust_udp *u = calloc(1, sizeof(*u));
    if (!u) {
        errno = ENOMEM;
        return NULL;
    }
    u->stack = s;
    u->rxq_max = s->cfg.udp_rcvq;
    return u;
}

/* RFC 6056 3.3.1 (simple random search): a random start, then linear probing. */
static uint16_t udp_pick_port(struct ust_stack *s, uint32_t addr)
{
    uint32_t range = UDP_EPHEMERAL_HI - UDP_EPHEMERAL_LO + 1;
    uint32_t start = (uint32_t)xrand_next(&s->rng) % range;
    for (uint32_t i = 0; i < range; i++) {
        uint16_t port = (uint16_t)(UDP_EPHEMERAL_LO + (start + i) % range);
        if (!udp_port_taken(s, addr, port))
            return port;
    }
    return 0;
}

static int udp_insert(struct ust_udp *u, uint32_t addr, uint16_t port)
{
    struct ust_stack *s = u->stack;
    if (addr && !ipv4_is_local(s, addr)) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    if (port == 0)
        port = udp_pick_port(s, addr);
    if (port == 0 || udp_port_taken(s, addr, port)) {
        errno = EADDRINUSE;
        return -1;
    }
    u->laddr = addr;
    u->lport = port;
    struct ust_udp **b = udp_bucket(s, port);
    u->hnext = *b;
    *b = u;
    s->udp.nsockets++;
    return 0;
}

int ust_udp_bind(struct ust_udp *u, const struct sockaddr *addr, socklen_t len)
{
    uint32_t a;
    uint16_t port;
    if (u->lport) {
        errno = EINVAL;
        return -1;
    }
    if (sockaddr_in_parse(addr, len, &a, &port) < 0)
        return -1;
    return udp_insert(u, a, port);
}

static struct pkt *udp_alloc_for(struct ust_stack *s, size_t len)
{
    size_t need = PKT_HEADROOM + len + UDP_HDR_LEN;
    struct pkt *p = need <= s->pool.room ? pkt_alloc(&s->pool) : pkt_alloc(&s->big_pool);
    if (!p)
        CTR_INC(&s->ctr, pool_empty);
    return p;
}

ssize_t ust_udp_sendto(struct ust_udp *u, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen)
{
    struct ust_stack *s = u->stack;
    uint32_t dst;
    uint16_t dport;
    struct ip_route rt;
    if (sockaddr_in_parse(to, tolen, &dst, &dport) < 0)
        return -1;
    if (len > UDP_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    if (dport == 0) {
        errno = EINVAL;
        return -1;
    }
    if (ipv4_route(s, dst, &rt) < 0) {
        errno = ENETUNREACH;
        return -1;
    }
    if (!u->lport && udp_insert(u, 0, 0) < 0)
        return -1;
    struct pkt *p = udp_alloc_for(s, len);
    if (!p) {
        errno = ENOBUFS;
        return -1;
    }
    uint8_t *h = pkt_put(p, (uint16_t)(UDP_HDR_LEN + len));
    uint32_t src = u->laddr ? u->laddr : rt.src;
    struct udp_repr r = {.sport = u->lport, .dport = dport, .len = (uint16_t)(UDP_HDR_LEN + len)};
    /* Sum the payload while copying it from the caller's (cached) buffer:
     * reading it back from the pkt would wait for a buffer the memif peer
     * may have touched last. */
    uint32_t sum = csum_copy(csum_pseudo_ipv4(src, dst, IPPROTO_UDP_, r.len), h + UDP_HDR_LEN, buf, len);
    udp_emit_sum(&r, h, r.len, sum);
    p->l4 = p->off;
    CTR_INC(&s->ctr, udp_tx);
    int rc = ipv4_output(s, p, src, dst, IPPROTO_UDP_, 0, 0, 0);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return (ssize_t)len;
}

ssize_t ust_udp_recvfrom(struct ust_udp *u, void *buf, size_t len, struct sockaddr *from, socklen_t *fromlen)
{
    struct pkt *p = pktq_pop(&u->rxq);
    if (!p) {
        errno = EAGAIN;
        return -1;
    }
    size_t n = p->len - UDP_HDR_LEN;
    if (n > len)
        n = len;
    memcpy(buf, pkt_data(p) + UDP_HDR_LEN, n);
    if (from && fromlen && *fromlen >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_addr.s_addr = htonl(rd32(p->buf + p->l3 + 12));
        in.sin_port = htons(rd16(pkt_data(p)));
        memcpy(from, &in, sizeof(in));
        *fromlen = sizeof(in);
    }
    pkt_free(p);
    return (ssize_t)n;
}

void ust_udp_set_callback(struct ust_udp *u, ust_udp_cb on_readable, void *arg)
{
    u->on_readable = on_readable;
    u->cb_arg = arg;
}

int ust_udp_error(struct ust_udp *u)
{
    int e = u->error;
    u->error = 0;
    return e;
}

void ust_udp_close(struct ust_udp *u)
{
    if (!u)
        return;
    struct ust_stack *s = u->stack;
    if (u->lport) {
        struct ust_udp **pp = udp_bucket(s, u->lport);
        while (*pp && *pp != u)
            pp = &(*pp)->hnext;
        if (*pp)
            *pp = u->hnext;
        s->udp.nsockets--;
    }
    pktq_free_all(&u->rxq);
    free(u);
}
