#include "net/arp.h"

#include <stdlib.h>
#include <string.h>

#include "net/link.h"
#include "net/stack.h"
#include "wire/arp.h"
#include "wire/eth.h"

static uint32_t arp_bucket(const struct ust_stack *s, uint32_t ip)
{
    /* Keyed, so a sender cannot aim all its addresses at one chain; the
     * same cheap keyed hash as the TCB table (looked up per packet sent). */
    uint64_t w = ip;
    return (uint32_t)hash_words_keyed(&s->fast_key, &w, 1) & s->arp.nbuckets_mask;
}

static struct arp_entry *arp_find(struct ust_stack *s, uint32_t ip)
{
    for (struct arp_entry *e = s->arp.buckets[arp_bucket(s, ip)]; e; e = e->hnext)
        if (e->ip == ip)
            return e;
    return NULL;
}

static void arp_drop_pending(struct ust_stack *s, struct arp_entry *e)
{
    struct pkt *p;
    while ((p = pktq_pop(&e->pending))) {
        CTR_INC(&s->ctr, arp_pending_drop);
        s->arp.pending_total--;
        pkt_free(p);
    }
}

static void arp_release(struct ust_stack *s, struct arp_entry *e)
{
    struct arp_entry **pp = &s->arp.buckets[arp_bucket(s, e->ip)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    wheel_del(&s->wheel, &e->timer);
    arp_drop_pending(s, e);
    e->state = ARP_FREE;
    e->hnext = s->arp.free_list;
    s->arp.free_list = e;
    s->arp.used--;
}

static void arp_send(struct ust_stack *s, uint16_t op, const uint8_t eth_dst[6], const uint8_t tha[6],
                     uint32_t spa, uint32_t tpa)
{
    struct pkt *p = pkt_alloc(&s->pool);
    if (!p) {
        CTR_INC(&s->ctr, pool_empty);
        return;
    }
    struct arp_repr a = {.op = op, .spa = spa, .tpa = tpa};
    memcpy(a.sha, s->mac, 6);
    memcpy(a.tha, tha, 6);
    arp_emit(&a, pkt_put(p, ARP_LEN), ARP_LEN);
    CTR_INC(&s->ctr, arp_tx);
    if (op == ARP_OP_REQUEST)
        CTR_INC(&s->ctr, arp_tx_request);
    else
        CTR_INC(&s->ctr, arp_tx_reply);
    link_output_eth(s, p, eth_dst, ETHERTYPE_ARP);
}

/* The source address for a request to ip: ours on that subnet. */
static uint32_t arp_source_for(const struct ust_stack *s, uint32_t ip)
{
    struct ip_route rt;
    if (ipv4_route(s, ip, &rt) == 0)
        return rt.src;
    return s->ip.naddrs ? s->ip.addrs[0].addr : 0;
}

static const uint8_t zero_mac[6];

static void arp_request(struct ust_stack *s, struct arp_entry *e, int unicast)
{
    arp_send(s, ARP_OP_REQUEST, unicast ? e->mac : eth_broadcast, zero_mac, arp_source_for(s, e->ip), e->ip);
}

static void arp_flush_pending(struct ust_stack *s, struct arp_entry *e)
{
    struct pkt *p;
    while ((p = pktq_pop(&e->pending))) {
        s->arp.pending_total--;
        link_output_eth(s, p, e->mac, ETHERTYPE_IPV4);
    }
}

/* One timer per entry drives every transition that time causes. */
static void arp_timer_fired(struct timer *t, uint64_t now)
{
    struct arp_entry *e = container_of(t, struct arp_entry, timer);
    struct ust_stack *s = e->stack;
    switch (e->state) {
    case ARP_INCOMPLETE:
    case ARP_PROBE:
        if (e->probes >= ARP_MAX_PROBES) {
            CTR_INC(&s->ctr, arp_resolve_fail);
            arp_release(s, e);
            return;
        }
        e->probes++;
        arp_request(s, e, e->state == ARP_PROBE);
        wheel_add(&s->wheel, &e->timer, now + ARP_RETRANS_NS);
        return;
    case ARP_REACHABLE:
        e->state = ARP_STALE;
        wheel_add(&s->wheel, &e->timer, now + ARP_STALE_GC_NS);
        return;
    case ARP_STALE:
        arp_release(s, e);
        return;
    default:
        return;
    }
}

/* Reuse the entry idle the longest: only a STALE one may go, so neither a
 * resolution in progress nor a static entry is ever pushed out by a flood. */
static struct arp_entry *arp_evict_stale(struct ust_stack *s)
{
    struct arp_cache *c = &s->arp;
    struct arp_entry *victim = NULL;
    /* A bounded sample, not a scan of the table. */
    uint32_t start = (uint32_t)xrand_next(&s->rng) % c->max_entries;
    for (uint32_t i = 0; i < 32 && i < c->max_entries; i++) {
        struct arp_entry *e = &c->entries[(start + i) % c->max_entries];
        if (e->state == ARP_STALE && (!victim || e->confirmed < victim->confirmed))
            victim = e;
    }
    if (victim)
        arp_release(s, victim);
    return victim;
}

static struct arp_entry *arp_create(struct ust_stack *s, uint32_t ip)
{
    struct arp_cache *c = &s->arp;
    if (!c->free_list && !arp_evict_stale(s)) {
        CTR_INC(&s->ctr, arp_cache_full);
        return NULL;
    }
    struct arp_entry *e = c->free_list;
    c->free_list = e->hnext;
    memset(e, 0, sizeof(*e));
    e->ip = ip;
    e->stack = s;
    timer_init(&e->timer, arp_timer_fired);
    uint32_t b = arp_bucket(s, ip);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    c->used++;
    return e;
}

static void arp_confirm(struct ust_stack *s, struct arp_entry *e, const uint8_t mac[6])
{
    if (e->state == ARP_PERMANENT)
        return;
    memcpy(e->mac, mac, 6);
    e->state = ARP_REACHABLE;
    e->probes = 0;
    e->confirmed = s->now;
    wheel_add(&s->wheel, &e->timer, s->now + ARP_REACHABLE_NS);
    arp_flush_pending(s, e);
}

int arp_init(struct ust_stack *s, uint32_t max_entries, uint32_t pending_max)
{
    struct arp_cache *c = &s->arp;
    uint32_t nb = 1;
    while (nb < max_entries)
        nb <<= 1;
    c->entries = calloc(max_entries, sizeof(*c->entries));
    c->buckets = calloc(nb, sizeof(*c->buckets));
    if (!c->entries || !c->buckets)
        return -1;
    c->nbuckets_mask = nb - 1;
    c->max_entries = max_entries;
    c->pending_max = pending_max;
    for (uint32_t i = max_entries; i-- > 0;) {
        c->entries[i].hnext = c->free_list;
        c->free_list = &c->entries[i];
    }
    return 0;
}

void arp_fini(struct ust_stack *s)
{
    struct arp_cache *c = &s->arp;
    for (uint32_t i = 0; c->entries && i < c->max_entries; i++)
        if (c->entries[i].state != ARP_FREE)
            arp_release(s, &c->entries[i]);
    free(c->entries);
    free(c->buckets);
    memset(c, 0, sizeof(*c));
}

int arp_add_static(struct ust_stack *s, uint32_t ip, const uint8_t mac[6])
{
    struct arp_entry *e = arp_find(s, ip);
    if (!e)
        e = arp_create(s, ip);
    if (!e)
        return -1;
    wheel_del(&s->wheel, &e->timer);
    memcpy(e->mac, mac, 6);
    e->state = ARP_PERMANENT;
    arp_flush_pending(s, e);
    return 0;
}

int arp_lookup(struct ust_stack *s, uint32_t ip, uint8_t mac[6])
{
    struct arp_entry *e = arp_find(s, ip);
    if (!e || e->state == ARP_INCOMPLETE || e->state == ARP_FREE)
        return -1;
    memcpy(mac, e->mac, 6);
    return 0;
}

/* A sender address we must never learn: RFC 5227 2.1.1 conflicts aside,
 * these can only be spoofed or broken. */
static int arp_sender_bogus(const struct ust_stack *s, const struct arp_repr *a)
{
    return eth_is_multicast(a->sha) || a->spa == 0 || ipv4_is_broadcast(s, a->spa) ||
           ipv4_is_local(s, a->spa) || (a->spa >> 28) == 0xe;
}

/* Only neighbours on a connected subnet can ever be a next hop. */
static int arp_on_link(const struct ust_stack *s, uint32_t ip)
{
    for (int i = 0; i < s->ip.naddrs; i++)
        if ((ip & s->ip.addrs[i].mask) == (s->ip.addrs[i].addr & s->ip.addrs[i].mask))
            return 1;
    return 0;
}

/* RFC 826 "Packet Reception": merge the sender into the table if present,
 * add it only when the message is for us. */
static void arp_learn(struct ust_stack *s, const struct arp_repr *a, int for_us)
{
    struct arp_entry *e = arp_find(s, a->spa);
    if (!e && for_us && arp_on_link(s, a->spa))
        e = arp_create(s, a->spa);
    if (e)
        arp_confirm(s, e, a->sha);
}

void arp_input(struct ust_stack *s, struct pkt *p)
{
    struct arp_repr a;
    CTR_INC(&s->ctr, arp_rx);
    if (arp_parse(pkt_data(p), p->len, &a) < 0) {
        CTR_INC(&s->ctr, arp_drop_malformed);
        pkt_free(p);
        return;
    }
    pkt_free(p);
    if (a.op == ARP_OP_REQUEST)
        CTR_INC(&s->ctr, arp_rx_request);
    else
        CTR_INC(&s->ctr, arp_rx_reply);
    if (arp_sender_bogus(s, &a)) {
        CTR_INC(&s->ctr, arp_drop_bogus_sender);
        return;
    }
    int for_us = ipv4_is_local(s, a.tpa);
    if (!for_us && !arp_find(s, a.spa)) {
        CTR_INC(&s->ctr, arp_drop_not_us);
        return;
    }
    arp_learn(s, &a, for_us);
    if (for_us && a.op == ARP_OP_REQUEST)
        arp_send(s, ARP_OP_REPLY, a.sha, a.sha, a.tpa, a.spa);
}

static void arp_enqueue(struct ust_stack *s, struct arp_entry *e, struct pkt *p)
{
    if (e->pending.len >= ARP_PENDING_PER_ENTRY || s->arp.pending_total >= s->arp.pending_max) {
        CTR_INC(&s->ctr, arp_pending_drop);
        pkt_free(p);
        return;
    }
    pktq_push(&e->pending, p);
    s->arp.pending_total++;
}

void arp_output(struct ust_stack *s, struct pkt *p, uint32_t next_hop)
{
    struct arp_entry *e = arp_find(s, next_hop);
    if (e && e->state != ARP_INCOMPLETE) {
        /* RFC 1122 2.3.2.1: revalidate a stale entry by unicast while using it. */
        if (e->state == ARP_STALE) {
            e->state = ARP_PROBE;
            e->probes = 1;
            arp_request(s, e, 1);
            wheel_add(&s->wheel, &e->timer, s->now + ARP_RETRANS_NS);
        }
        link_output_eth(s, p, e->mac, ETHERTYPE_IPV4);
        return;
    }
    if (!e) {
        e = arp_create(s, next_hop);
        if (!e) {
            CTR_INC(&s->ctr, arp_pending_drop);
            pkt_free(p);
            return;
        }
        e->state = ARP_INCOMPLETE;
        e->probes = 1;
        arp_request(s, e, 0);
        wheel_add(&s->wheel, &e->timer, s->now + ARP_RETRANS_NS);
    }
    arp_enqueue(s, e, p);
}

void arp_announce(struct ust_stack *s)
{
    if (s->l3_only)
        return;
    for (int i = 0; i < s->ip.naddrs; i++) {
        uint32_t a = s->ip.addrs[i].addr;
        arp_send(s, ARP_OP_REQUEST, eth_broadcast, zero_mac, a, a);
    }
}
