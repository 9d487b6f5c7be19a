/* IPv4 reassembly (RFC 791 "Fragmentation and Reassembly", RFC 815) with
 * bounded memory: a fixed array of sets made at init, fragments held as the
 * received frames (threaded through pkt.next, sorted by offset), one wheel
 * timer per set, the oldest set evicted when the table or the fragment budget
 * is full. Nothing is allocated after ipfrag_init. */
#include "net/ipfrag.h"

#include <stdlib.h>
#include <string.h>

/* The largest payload a datagram with a 20-byte header can carry. */
#define IPFRAG_MAX_PAYLOAD (65535u - IPV4_HDR_LEN)

struct ipfrag_set {
    struct ipfrag_set *hnext, **hpprev;   /* hash chain                      */
    struct ipfrag_set *older, *newer;     /* LRU by creation; free list: newer */
    struct ipfrag_table *table;           /* for the timer callback          */
    struct pkt *frags;                    /* sorted by offset                */
    struct timer timer;
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto;
    uint8_t nfrags;
    uint32_t bytes;                       /* payload bytes held              */
    uint32_t end;                         /* payload length, once known      */
    uint32_t max_end;                     /* highest offset + len held       */
    uint8_t has_end, has_first;
    uint8_t tos, ttl, df;                 /* from the offset-0 fragment      */
};

/* Per-fragment facts live in the frame's descriptor while the table owns it:
 * stamp = offset << 32 | length << 16 | MF, l4 = where the payload starts. */
static void frag_note(struct pkt *p, uint32_t off, uint32_t len, int mf, uint16_t payload_at)
{
    p->stamp = (uint64_t)off << 32 | (uint64_t)len << 16 | (mf ? 1u : 0u);
    p->l4 = payload_at;
}

static uint32_t frag_off(const struct pkt *p) { return (uint32_t)(p->stamp >> 32); }
static uint32_t frag_len(const struct pkt *p) { return (uint32_t)(p->stamp >> 16) & 0xffff; }
static int frag_mf(const struct pkt *p) { return (int)(p->stamp & 1); }

/* ---- table plumbing: hash, LRU, free list --------------------------------- */

static uint32_t ipfrag_hash(const struct ipfrag_table *t, uint32_t src, uint32_t dst, uint16_t id,
                            uint8_t proto)
{
    uint8_t k[11];
    wr32(k, src);
    wr32(k + 4, dst);
    wr16(k + 8, id);
    k[10] = proto;
    return (uint32_t)siphash24(&t->key, k, sizeof(k)) & t->hash_mask;
}

/* RFC 791: fragments belong together when source, destination, protocol and
 * identification all match. */
static struct ipfrag_set *set_find(const struct ipfrag_table *t, const struct ipv4_repr *ip)
{
    struct ipfrag_set *s = t->hash[ipfrag_hash(t, ip->src, ip->dst, ip->id, ip->proto)];
    for (; s; s = s->hnext)
        if (s->src == ip->src && s->dst == ip->dst && s->id == ip->id && s->proto == ip->proto)
            return s;
    return NULL;
}

static void lru_append(struct ipfrag_table *t, struct ipfrag_set *s)
{
    s->newer = NULL;
    s->older = t->lru_tail;
    if (t->lru_tail)
        t->lru_tail->newer = s;
    else
        t->lru_head = s;
    t->lru_tail = s;
}

static void lru_unlink(struct ipfrag_table *t, struct ipfrag_set *s)
{
    if (s->older)
        s->older->newer = s->newer;
    else
        t->lru_head = s->newer;
    if (s->newer)
        s->newer->older = s->older;
    else
        t->lru_tail = s->older;
    s->older = s->newer = NULL;
}

static void hash_link(struct ipfrag_table *t, struct ipfrag_set *s)
{
    struct ipfrag_set **b = &t->hash[ipfrag_hash(t, s->src, s->dst, s->id, s->proto)];
    s->hnext = *b;
    if (s->hnext)
        s->hnext->hpprev = &s->hnext;
    s->hpprev = b;
    *b = s;
}

static void hash_unlink(struct ipfrag_set *s)
{
    *s->hpprev = s->hnext;
    if (s->hnext)
        s->hnext->hpprev = s->hpprev;
    s->hnext = NULL;
    s->hpprev = NULL;
}

/* Give back everything the set holds and return it to the free list. */
static void set_release(struct ipfrag_table *t, struct ipfrag_set *s)
{
    wheel_del(t->wheel, &s->timer);
    struct pkt *p = s->frags;
    while (p) {
        struct pkt *next = p->next;
        p->next = NULL;
        pkt_free(p);
        p = next;
    }
    t->held_frags -= s->nfrags;
    s->frags = NULL;
    s->nfrags = 0;
    hash_unlink(s);
    lru_unlink(t, s);
    s->newer = t->free_sets;
    t->free_sets = s;
    t->used_sets--;
}

static void set_drop(struct ipfrag_table *t, struct ipfrag_set *s, uint64_t *counter)
{
    (*counter)++;
    set_release(t, s);
}

/* The oldest set other than keep (which may be NULL). */
static struct ipfrag_set *set_oldest_except(const struct ipfrag_table *t, const struct ipfrag_set *keep)
{
    struct ipfrag_set *s = t->lru_head;
    if (s == keep)
        s = s->newer;
    return s;
}

/* RFC 791 reassembly timer. It runs from the set's first fragment and is not
 * restarted by later ones, so a sender trickling fragments cannot keep a set
 * alive. (RFC 1122 3.3.2's ICMP Time Exceeded is not sent from here.) */
static void set_expire(struct timer *tm, uint64_t now)
{
    (void)now;
    struct ipfrag_set *s = container_of(tm, struct ipfrag_set, timer);
    struct ipfrag_table *t = s->table;
    set_drop(t, s, &t->ctr->ip_frag_drop_timeout);
}

static struct ipfrag_set *set_create(struct ipfrag_table *t, const struct ipv4_repr *ip, uint64_t now)
{
    if (!t->free_sets)
        set_drop(t, t->lru_head, &t->ctr->ip_frag_drop_evicted);
    struct ipfrag_set *s = t->free_sets;
    t->free_sets = s->newer;
    memset(s, 0, sizeof(*s));
    s->table = t;
    s->src = ip->src;
    s->dst = ip->dst;
    s->id = ip->id;
    s->proto = ip->proto;
    timer_init(&s->timer, set_expire);
    hash_link(t, s);
    lru_append(t, s);
    t->used_sets++;
    wheel_add(t->wheel, &s->timer, now + t->timeout_ns);
    return s;
}

/* ---- init / fini ------------------------------------------------------------ */

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t v = 1;
    while (v < n && v < (1u << 31))
        v <<= 1;
    return v;
}

int ipfrag_init(struct ipfrag_table *t, uint32_t max_sets, uint32_t max_frags, uint64_t timeout_ns,
                struct pkt_pool *big_pool, struct wheel *wheel, struct ust_counters *ctr)
{
    memset(t, 0, sizeof(*t));
    if (max_sets == 0 || max_frags == 0 || !big_pool || !wheel || !ctr)
        return -1;
    uint32_t buckets = pow2_at_least(max_sets);
    t->sets = calloc(max_sets, sizeof(*t->sets));
    t->hash = calloc(buckets, sizeof(*t->hash));
    if (!t->sets || !t->hash) {
        ipfrag_fini(t);
        return -1;
    }
    t->hash_mask = buckets - 1;
    t->max_sets = max_sets;
    t->max_frags = max_frags;
    t->timeout_ns = timeout_ns;
    t->big_pool = big_pool;
    t->wheel = wheel;
    t->ctr = ctr;
    rand_bytes(&t->key, sizeof(t->key));
    for (uint32_t i = max_sets; i-- > 0;) {
        t->sets[i].newer = t->free_sets;
        t->free_sets = &t->sets[i];
    }
    return 0;
}

void ipfrag_fini(struct ipfrag_table *t)
{
    while (t->lru_head)
        set_release(t, t->lru_head);
    free(t->sets);
    free(t->hash);
    t->sets = NULL;
    t->hash = NULL;
    t->free_sets = NULL;
    t->used_sets = 0;
}

/* ---- one fragment ------------------------------------------------------------- */

/* Where the fragment's payload is and how long it is; -1 if the frame does not
 * hold what the header claims or the fragment cannot be part of a datagram. */
static int frag_measure(const struct pkt *p, const struct ipv4_repr *ip, uint32_t *len)
{
    if (ip->hdr_len < IPV4_HDR_LEN || ip->total_len < ip->hdr_len || p->l3 < p->off ||
        (uint32_t)p->l3 + ip->total_len > (uint32_t)p->off + p->len ||
        (uint32_t)p->l3 + ip->total_len > UINT16_MAX)
        return -1;
    *len = (uint32_t)ip->total_len - ip->hdr_len;
    /* RFC 791: every fragment but the last carries a multiple of 8 octets
     * (offsets count 8-octet units). An empty fragment adds nothing. */
    if (*len == 0 || (ip->mf && (*len & 7)))
        return -1;
    return 0;
}

enum frag_fit {
    FIT_NEW,        /* goes in at *at                                          */
    FIT_DUP,        /* same offset, length and MF as one held: a retransmission */
    FIT_OVERLAP,    /* shares bytes with a held fragment                       */
    FIT_BAD_END,    /* disagrees with the datagram's end                       */
};

/* Find where [off, off+len) goes in the sorted list and whether it may. */
static enum frag_fit set_fit(struct ipfrag_set *s, uint32_t off, uint32_t len, int mf, struct pkt ***at)
{
    uint32_t end = off + len;
    struct pkt **link = &s->frags;
    while (*link && frag_off(*link) < off)
        link = &(*link)->next;
    struct pkt *next = *link;
    if (next && frag_off(next) == off && frag_len(next) == len)
        return frag_mf(next) == mf ? FIT_DUP : FIT_BAD_END;
    /* Any shared byte drops the set: overlaps are how fragment attacks
     * rewrite headers past filters (RFC 1858, RFC 5722). */
    if (next && end > frag_off(next))
        return FIT_OVERLAP;
    if (link != &s->frags) {
        struct pkt *prev = container_of(link, struct pkt, next);
        if (frag_off(prev) + frag_len(prev) > off)
            return FIT_OVERLAP;
    }
    if (s->has_end && (end > s->end || (!mf && end != s->end)))
        return FIT_BAD_END;
    if (!mf && end < s->max_end)
        return FIT_BAD_END;
    *at = link;
    return FIT_NEW;
}

static void set_add(struct ipfrag_table *t, struct ipfrag_set *s, struct pkt **at, struct pkt *p,
                    const struct ipv4_repr *ip, uint32_t len)
{
    uint32_t end = ip->frag_off + len;
    frag_note(p, ip->frag_off, len, ip->mf, (uint16_t)(p->l3 + ip->hdr_len));
    p->next = *at;
    *at = p;
    s->nfrags++;
    t->held_frags++;
    s->bytes += len;
    if (end > s->max_end)
        s->max_end = end;
    if (!ip->mf) {
        s->end = end;
        s->has_end = 1;
    }
    if (ip->frag_off == 0) {
        /* RFC 791: the reassembled header is the first fragment's. */
        s->has_first = 1;
        s->tos = ip->tos;
        s->ttl = ip->ttl;
        s->df = ip->df;
    }
}

/* Make room for one more held fragment by evicting the oldest other sets.
 * Returns -1 when only s itself is left to evict (s is then dropped). */
static int frag_budget_make_room(struct ipfrag_table *t, struct ipfrag_set *s)
{
    while (t->held_frags >= t->max_frags) {
        struct ipfrag_set *victim = set_oldest_except(t, s);
        if (!victim) {
            set_drop(t, s, &t->ctr->ip_frag_drop_evicted);
            return -1;
        }
        set_drop(t, victim, &t->ctr->ip_frag_drop_evicted);
    }
    return 0;
}

/* No overlaps are held, so the set is whole exactly when its bytes add up to
 * its end. Copies it into one big buffer and frees the set. */
static struct pkt *set_complete(struct ipfrag_table *t, struct ipfrag_set *s, uint64_t now,
                                struct ipv4_repr *out_ip)
{
    struct pkt *q = pkt_alloc(t->big_pool);
    if (!q) {
        set_drop(t, s, &t->ctr->pool_empty);
        return NULL;
    }
    uint8_t *d = pkt_put(q, (uint16_t)(IPV4_HDR_LEN + s->end));
    if (!d) {
        /* big_pool buffers smaller than this datagram */
        pkt_free(q);
        set_drop(t, s, &t->ctr->ip_frag_drop_oversize);
        return NULL;
    }
    struct ipv4_repr r = {
        .hdr_len = IPV4_HDR_LEN, .tos = s->tos, .total_len = (uint16_t)(IPV4_HDR_LEN + s->end),
        .id = s->id, .df = s->df, .mf = 0, .frag_off = 0, .ttl = s->ttl, .proto = s->proto,
        .src = s->src, .dst = s->dst,
    };
    ipv4_emit(&r, d, IPV4_HDR_LEN);
    for (struct pkt *p = s->frags; p; p = p->next)
        memcpy(d + IPV4_HDR_LEN + frag_off(p), p->buf + p->l4, frag_len(p));
    q->l3 = q->off;
    q->l4 = (uint16_t)(q->off + IPV4_HDR_LEN);
    q->stamp = now;
    *out_ip = r;
    t->ctr->ip_frag_reassembled++;
    set_release(t, s);
    return q;
}

static int set_is_complete(const struct ipfrag_set *s)
{
    return s->has_end && s->has_first && s->bytes == s->end;
}

/* The datagram may not exceed 65535 bytes (RFC 791 total length): a set that
 * says otherwise is dropped whole and nothing of it is remembered. */
static struct pkt *frag_drop_oversize(struct ipfrag_table *t, struct ipfrag_set *s, struct pkt *p)
{
    t->ctr->ip_frag_drop_oversize++;
    if (s)
        set_release(t, s);
    pkt_free(p);
    return NULL;
}

static struct pkt *frag_reject(struct ipfrag_table *t, struct ipfrag_set *s, struct pkt *p, enum frag_fit fit)
{
    if (fit == FIT_OVERLAP)
        set_drop(t, s, &t->ctr->ip_frag_drop_overlap);
    else if (fit == FIT_BAD_END)
        set_drop(t, s, &t->ctr->ip_frag_drop_bad);
    pkt_free(p);
    return NULL;
}

struct pkt *ipfrag_input(struct ipfrag_table *t, struct pkt *p, const struct ipv4_repr *ip,
                         uint64_t now, struct ipv4_repr *out_ip)
{
    uint32_t len;
    if (frag_measure(p, ip, &len) < 0) {
        t->ctr->ip_frag_drop_bad++;
        pkt_free(p);
        return NULL;
    }
    struct ipfrag_set *s = set_find(t, ip);
    if ((uint32_t)ip->frag_off + len > IPFRAG_MAX_PAYLOAD)
        return frag_drop_oversize(t, s, p);
    if (!s)
        s = set_create(t, ip, now);
    struct pkt **at = NULL;
    enum frag_fit fit = set_fit(s, ip->frag_off, len, ip->mf, &at);
    if (fit != FIT_NEW)
        return frag_reject(t, s, p, fit);
    if (s->nfrags >= IPFRAG_MAX_PER_SET) {
        set_drop(t, s, &t->ctr->ip_frag_drop_toomany);
        pkt_free(p);
        return NULL;
    }
    if (frag_budget_make_room(t, s) < 0) {
        pkt_free(p);
        return NULL;
    }
    set_add(t, s, at, p, ip, len);
    if (!set_is_complete(s))
        return NULL;
    return set_complete(t, s, now, out_ip);
}
