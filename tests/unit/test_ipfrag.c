/* IPv4 reassembly: byte-exact results in any order and with duplicates,
 * overlaps / oversize / inconsistent ends / bad lengths dropped and counted,
 * timeouts on a virtual clock, eviction under a flood of incomplete sets, the
 * fragment budget, and no packet buffer leaked after any test. */
#include "core/counters.h"
#include "core/pkt.h"
#include "core/wheel.h"
#include "harness.h"
#include "net/ipfrag.h"
#include "wire/checksum.h"
#include "wire/ipv4.h"

#define MS UINT64_C(1000000)
#define SEC (1000 * MS)
#define LINK_HDR 14              /* a fake Ethernet header in front of each frame */
#define SMALL_COUNT 1024
#define BIG_COUNT 4
#define MAX_FRAGS_OUT 256

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

struct fixture {
    struct pkt_pool small, big;
    struct wheel wheel;
    struct ust_counters ctr;
    struct ipfrag_table t;
    uint64_t now;
};

static struct fixture fx;

static int fixture_init(uint32_t max_sets, uint32_t max_frags)
{
    memset(&fx, 0, sizeof(fx));
    fx.now = 1000 * SEC;
    if (pkt_pool_init(&fx.small, SMALL_COUNT, 2048, NULL) < 0 ||
        pkt_pool_init(&fx.big, BIG_COUNT, PKT_HEADROOM + 65536, NULL) < 0)
        return -1;
    wheel_init(&fx.wheel, fx.now);
    return ipfrag_init(&fx.t, max_sets, max_frags, 5 * SEC, &fx.big, &fx.wheel, &fx.ctr);
}

/* Every buffer back in its pool once the table lets go of everything. */
static int fixture_fini_no_leak(void)
{
    ipfrag_fini(&fx.t);
    int ok = fx.small.avail == fx.small.count && fx.big.avail == fx.big.count && fx.wheel.count == 0;
    pkt_pool_fini(&fx.small);
    pkt_pool_fini(&fx.big);
    return ok;
}

/* What one datagram's fragments share. */
struct dgram {
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto, ttl, tos;
    uint8_t opt_len;             /* IPv4 options on every fragment (multiple of 4) */
};

static const struct dgram DG = {0x0a000002, 0x0a000001, 0x1234, IPPROTO_UDP_, 61, 0x10, 0};

/* One frame: link header, IPv4 header (with options when asked), payload.
 * The header is written byte by byte here so the test does not trust the
 * emitter it checks; ipv4_parse then gives the repr a real input path has. */
static struct pkt *frag_make(const struct dgram *d, const uint8_t *data, uint32_t off, uint32_t len, int mf,
                             struct ipv4_repr *ip)
{
    struct pkt *p = pkt_alloc(&fx.small);
    if (!p)
        return NULL;
    uint32_t hl = IPV4_HDR_LEN + d->opt_len;
    uint8_t *f = pkt_put(p, (uint16_t)(LINK_HDR + hl + len));
    memset(f, 0xee, LINK_HDR);
    uint8_t *h = f + LINK_HDR;
    h[0] = (uint8_t)(0x40 | hl / 4);
    h[1] = d->tos;
    wr16(h + 2, (uint16_t)(hl + len));
    wr16(h + 4, d->id);
    wr16(h + 6, (uint16_t)((mf ? IPV4_FLAG_MF : 0) | off / 8));
    h[8] = d->ttl;
    h[9] = d->proto;
    wr16(h + 10, 0);
    wr32(h + 12, d->src);
    wr32(h + 16, d->dst);
    memset(h + IPV4_HDR_LEN, 1, d->opt_len);          /* NOP options */
    wr16(h + 10, csum_buf(h, hl));
    memcpy(h + hl, data + off, len);
    p->l2 = p->off;
    p->l3 = (uint16_t)(p->off + LINK_HDR);
    if (ipv4_parse(h, hl + len, ip) < 0) {
        pkt_free(p);
        return NULL;
    }
    return p;
}

struct frag_list {
    struct pkt *p[MAX_FRAGS_OUT];
    struct ipv4_repr ip[MAX_FRAGS_OUT];
    uint32_t n;
};

/* Split payload into fragments of frag_size bytes (a multiple of 8). */
static int frag_split(const struct dgram *d, const uint8_t *data, uint32_t plen, uint32_t frag_size,
                      struct frag_list *out)
{
    out->n = 0;
    for (uint32_t off = 0; off < plen; off += frag_size) {
        uint32_t len = plen - off < frag_size ? plen - off : frag_size;
        if (out->n == MAX_FRAGS_OUT)
            return -1;
        out->p[out->n] = frag_make(d, data, off, len, off + len < plen, &out->ip[out->n]);
        if (!out->p[out->n])
            return -1;
        out->n++;
    }
    return 0;
}

static struct pkt *feed(struct pkt *p, const struct ipv4_repr *ip, struct ipv4_repr *out)
{
    return ipfrag_input(&fx.t, p, ip, fx.now, out);
}

static void fill_random(uint8_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        b[i] = (uint8_t)rng_next();
}

static void shuffle(uint32_t *v, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = rng_next() % i;
        uint32_t x = v[i - 1];
        v[i - 1] = v[j];
        v[j] = x;
    }
}

/* The reassembled datagram: a clean 20-byte header and the exact payload. */
static void check_whole(struct pkt *q, const struct ipv4_repr *out, const struct dgram *d, const uint8_t *data,
                        uint32_t plen, HARNESS_ARGS)
{
    CHECK(q != NULL);
    CHECK(q->pool == &fx.big);
    CHECK_EQ(q->l3, q->off);
    CHECK_EQ(q->l4, q->off + IPV4_HDR_LEN);
    CHECK_EQ(q->len, IPV4_HDR_LEN + plen);
    const uint8_t *h = pkt_data(q);
    struct ipv4_repr r;
    CHECK_EQ(ipv4_parse(h, q->len, &r), IPV4_HDR_LEN);    /* checksum verifies */
    CHECK_EQ(h[0], 0x45);
    CHECK_EQ(r.total_len, IPV4_HDR_LEN + plen);
    CHECK_EQ(r.mf, 0);
    CHECK_EQ(r.frag_off, 0);
    CHECK_EQ(r.id, d->id);
    CHECK_EQ(r.src, d->src);
    CHECK_EQ(r.dst, d->dst);
    CHECK_EQ(r.proto, d->proto);
    CHECK_EQ(r.ttl, d->ttl);
    CHECK_EQ(r.tos, d->tos);
    CHECK_MEM(h + IPV4_HDR_LEN, data, plen);
    CHECK_EQ(out->hdr_len, IPV4_HDR_LEN);
    CHECK_EQ(out->total_len, r.total_len);
    CHECK_EQ(out->src, d->src);
    CHECK_EQ(out->id, d->id);
    CHECK_EQ(out->mf, 0);
    CHECK_EQ(out->frag_off, 0);
}

/* Feed fragments in the given order; only the last one may complete. */
static struct pkt *feed_order(struct frag_list *fl, const uint32_t *order, uint32_t n, struct ipv4_repr *out,
                              HARNESS_ARGS)
{
    struct pkt *q = NULL;
    for (uint32_t i = 0; i < n; i++) {
        q = feed(fl->p[order[i]], &fl->ip[order[i]], out);
        if (i + 1 < n && q) {
            fprintf(stderr, "  completed early at %u of %u\n", i, n);
            *harness_failed = 1;
            pkt_free(q);
            return NULL;
        }
    }
    return q;
}

static void reassemble_in_order_kind(int kind, const struct dgram *d, uint32_t plen, uint32_t fsize, HARNESS_ARGS)
{
    static uint8_t data[65536];
    static struct frag_list fl;
    static uint32_t order[MAX_FRAGS_OUT];
    fill_random(data, plen);
    CHECK(frag_split(d, data, plen, fsize, &fl) == 0);
    for (uint32_t i = 0; i < fl.n; i++)
        order[i] = kind == 1 ? fl.n - 1 - i : i;
    if (kind == 2)
        shuffle(order, fl.n);
    struct ipv4_repr out;
    struct pkt *q = feed_order(&fl, order, fl.n, &out, HARNESS_PASS);
    CHECK_OK();
    check_whole(q, &out, d, data, plen, HARNESS_PASS);
    pkt_free(q);
    CHECK_OK();
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK_EQ(fx.t.held_frags, 0);
}

TEST(in_order)
{
    CHECK(fixture_init(16, 128) == 0);
    reassemble_in_order_kind(0, &DG, 4000, 1480, HARNESS_PASS);
    CHECK_OK();
    CHECK_EQ(fx.ctr.ip_frag_reassembled, 1);
    CHECK(fixture_fini_no_leak());
}

TEST(reverse_order)
{
    CHECK(fixture_init(16, 128) == 0);
    reassemble_in_order_kind(1, &DG, 3001, 1000, HARNESS_PASS);   /* odd last fragment */
    CHECK_OK();
    CHECK(fixture_fini_no_leak());
}

TEST(random_order_many_sizes)
{
    CHECK(fixture_init(16, 128) == 0);
    static const uint32_t sizes[] = {8, 16, 64, 512, 1480};
    for (int trial = 0; trial < 200; trial++) {
        struct dgram d = DG;
        d.id = (uint16_t)trial;
        uint32_t fsize = sizes[trial % 5];
        uint32_t plen = 1 + rng_next() % (fsize * 60 < 65515 ? fsize * 60 : 65515);
        reassemble_in_order_kind(2, &d, plen, fsize, HARNESS_PASS);
        CHECK_OK();
    }
    CHECK_EQ(fx.ctr.ip_frag_reassembled, 200);
    CHECK(fixture_fini_no_leak());
}

TEST(largest_datagram)
{
    CHECK(fixture_init(16, 128) == 0);
    reassemble_in_order_kind(2, &DG, 65515, 1480, HARNESS_PASS);
    CHECK_OK();
    CHECK(fixture_fini_no_leak());
}

TEST(options_in_fragments_are_dropped_from_result)
{
    CHECK(fixture_init(16, 128) == 0);
    struct dgram d = DG;
    d.opt_len = 8;
    reassemble_in_order_kind(2, &d, 2500, 800, HARNESS_PASS);
    CHECK_OK();
    CHECK(fixture_fini_no_leak());
}

/* Exact duplicates are retransmissions: dropped quietly, the set goes on. */
TEST(duplicates_reassemble)
{
    CHECK(fixture_init(16, 128) == 0);
    static uint8_t data[6000];
    static struct frag_list fl, dup;
    fill_random(data, sizeof(data));
    for (int trial = 0; trial < 50; trial++) {
        struct dgram d = DG;
        d.id = (uint16_t)(100 + trial);
        CHECK(frag_split(&d, data, sizeof(data), 512, &fl) == 0);
        CHECK(frag_split(&d, data, sizeof(data), 512, &dup) == 0);
        uint32_t order[2 * 16];
        uint32_t n = fl.n;
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
        shuffle(order, n);
        /* Feed all but the last of the shuffled originals, each followed
         * (sometimes) by a duplicate of something already sent. */
        struct ipv4_repr out;
        for (uint32_t i = 0; i + 1 < n; i++) {
            CHECK(feed(fl.p[order[i]], &fl.ip[order[i]], &out) == NULL);
            uint32_t j = order[rng_next() % (i + 1)];
            if (dup.p[j]) {
                CHECK(feed(dup.p[j], &dup.ip[j], &out) == NULL);
                dup.p[j] = NULL;
            }
        }
        struct pkt *q = feed(fl.p[order[n - 1]], &fl.ip[order[n - 1]], &out);
        check_whole(q, &out, &d, data, sizeof(data), HARNESS_PASS);
        pkt_free(q);
        CHECK_OK();
        for (uint32_t i = 0; i < n; i++)
            pkt_free(dup.p[i]);
        CHECK_EQ(fx.t.used_sets, 0);
    }
    CHECK_EQ(fx.ctr.ip_frag_drop_overlap, 0);
    CHECK_EQ(fx.ctr.ip_frag_reassembled, 50);
    CHECK(fixture_fini_no_leak());
}

/* Feeds [off, off+len) with MF as given, from a pattern payload. */
static struct pkt *feed_piece(const struct dgram *d, uint32_t off, uint32_t len, int mf, struct ipv4_repr *out)
{
    static uint8_t data[65536 + 64];
    for (uint32_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    struct ipv4_repr ip;
    struct pkt *p = frag_make(d, data, off, len, mf, &ip);
    if (!p)
        return NULL;
    return feed(p, &ip, out);
}

TEST(overlaps_drop_the_set)
{
    CHECK(fixture_init(16, 128) == 0);
    struct ipv4_repr out;
    struct dgram d = DG;
    /* Partial overlap with the previous fragment. */
    CHECK(feed_piece(&d, 0, 16, 1, &out) == NULL);
    CHECK(feed_piece(&d, 8, 16, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_overlap, 1);
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK_EQ(fx.t.held_frags, 0);
    /* Overlap with the following fragment. */
    d.id++;
    CHECK(feed_piece(&d, 16, 16, 1, &out) == NULL);
    CHECK(feed_piece(&d, 0, 24, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_overlap, 2);
    /* Same offset, different length. */
    d.id++;
    CHECK(feed_piece(&d, 0, 16, 1, &out) == NULL);
    CHECK(feed_piece(&d, 0, 8, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_overlap, 3);
    /* A fragment that covers one already held. */
    d.id++;
    CHECK(feed_piece(&d, 8, 8, 1, &out) == NULL);
    CHECK(feed_piece(&d, 0, 32, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_overlap, 4);
    CHECK_EQ(fx.t.used_sets, 0);
    /* After the drop a fresh, clean datagram with the same id reassembles. */
    CHECK(feed_piece(&d, 0, 16, 1, &out) == NULL);
    struct pkt *q = feed_piece(&d, 16, 5, 0, &out);
    CHECK(q != NULL);
    CHECK_EQ(out.total_len, 20 + 21);
    pkt_free(q);
    CHECK(fixture_fini_no_leak());
}

TEST(inconsistent_ends_drop_the_set)
{
    CHECK(fixture_init(16, 128) == 0);
    struct ipv4_repr out;
    struct dgram d = DG;
    /* Two last fragments with different ends. */
    CHECK(feed_piece(&d, 16, 8, 0, &out) == NULL);
    CHECK(feed_piece(&d, 32, 8, 0, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 1);
    CHECK_EQ(fx.t.used_sets, 0);
    /* Data beyond a known end. */
    d.id++;
    CHECK(feed_piece(&d, 16, 8, 0, &out) == NULL);
    CHECK(feed_piece(&d, 32, 8, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 2);
    /* A last fragment ending before data already held. */
    d.id++;
    CHECK(feed_piece(&d, 64, 8, 1, &out) == NULL);
    CHECK(feed_piece(&d, 8, 8, 0, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 3);
    /* Same range, MF disagrees. */
    d.id++;
    CHECK(feed_piece(&d, 8, 8, 1, &out) == NULL);
    CHECK(feed_piece(&d, 8, 8, 0, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 4);
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK_EQ(fx.ctr.ip_frag_drop_overlap, 0);
    CHECK(fixture_fini_no_leak());
}

TEST(oversize_drops_the_set)
{
    CHECK(fixture_init(16, 128) == 0);
    struct ipv4_repr out;
    CHECK(feed_piece(&DG, 0, 1480, 1, &out) == NULL);
    CHECK_EQ(fx.t.used_sets, 1);
    /* Offset 65512 + 8 bytes ends past 65515. */
    CHECK(feed_piece(&DG, 65512, 8, 0, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_oversize, 1);
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK_EQ(fx.t.held_frags, 0);
    /* Alone, it creates nothing. */
    CHECK(feed_piece(&DG, 65528, 8, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_oversize, 2);
    CHECK_EQ(fx.t.used_sets, 0);
    /* The exact maximum is fine. */
    CHECK(feed_piece(&DG, 65512, 3, 0, &out) == NULL);
    CHECK_EQ(fx.t.used_sets, 1);
    CHECK(fixture_fini_no_leak());
}

TEST(bad_lengths_are_dropped)
{
    CHECK(fixture_init(16, 128) == 0);
    struct ipv4_repr out;
    CHECK(feed_piece(&DG, 0, 12, 1, &out) == NULL);      /* MF, not a multiple of 8 */
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 1);
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK(feed_piece(&DG, 8, 0, 1, &out) == NULL);       /* empty */
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 2);
    CHECK_EQ(fx.t.used_sets, 0);
    /* A frame shorter than its header says. */
    static const uint8_t data[64];
    struct ipv4_repr ip;
    struct pkt *p = frag_make(&DG, data, 0, 16, 1, &ip);
    CHECK(p != NULL);
    p->len -= 4;
    CHECK(feed(p, &ip, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 3);
    CHECK_EQ(fx.t.used_sets, 0);
    /* A bad fragment of a live set leaves the set alone. */
    CHECK(feed_piece(&DG, 0, 8, 1, &out) == NULL);
    CHECK(feed_piece(&DG, 8, 4, 1, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_bad, 4);
    CHECK_EQ(fx.t.used_sets, 1);
    struct pkt *q = feed_piece(&DG, 8, 4, 0, &out);
    CHECK(q != NULL);
    CHECK_EQ(out.total_len, 32);
    pkt_free(q);
    CHECK(fixture_fini_no_leak());
}

TEST(timeout_on_virtual_clock)
{
    CHECK(fixture_init(16, 128) == 0);
    struct ipv4_repr out;
    uint64_t start = fx.now;
    CHECK(feed_piece(&DG, 0, 800, 1, &out) == NULL);
    fx.now += 2 * SEC;
    CHECK(feed_piece(&DG, 1600, 800, 1, &out) == NULL);   /* does not restart the timer */
    CHECK_EQ(fx.t.held_frags, 2);
    CHECK(fx.small.avail == SMALL_COUNT - 2);
    uint64_t dl = wheel_run(&fx.wheel, start + 5 * SEC - 2 * MS);
    CHECK_EQ(fx.t.used_sets, 1);
    CHECK(dl <= start + 5 * SEC + 2 * MS);
    /* Run at the deadlines the wheel gives, as the stack would. */
    for (int i = 0; i < 100 && fx.t.used_sets; i++) {
        CHECK(dl != UINT64_MAX);
        fx.now = dl > fx.now ? dl : fx.now;
        dl = wheel_run(&fx.wheel, fx.now);
    }
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK(fx.now >= start + 5 * SEC);
    CHECK(fx.now < start + 5 * SEC + 2 * MS);
    CHECK_EQ(fx.ctr.ip_frag_drop_timeout, 1);
    CHECK_EQ(fx.t.held_frags, 0);
    CHECK(fx.small.avail == SMALL_COUNT);
    CHECK_EQ(fx.wheel.count, 0);
    /* A fragment arriving later starts afresh and can complete. */
    CHECK(feed_piece(&DG, 0, 800, 1, &out) == NULL);
    struct pkt *q = feed_piece(&DG, 800, 10, 0, &out);
    CHECK(q != NULL);
    pkt_free(q);
    CHECK(fixture_fini_no_leak());
}

/* 10,000 never-completed sets: the table stays bounded, the oldest go, and a
 * legitimate datagram arriving afterwards still reassembles. */
TEST(flood_of_incomplete_sets)
{
    enum { SETS = 64, FRAGS = 200 };
    CHECK(fixture_init(SETS, FRAGS) == 0);
    struct ipv4_repr out;
    for (int i = 0; i < 10000; i++) {
        struct dgram d = DG;
        d.src = 0xc6120000 | (rng_next() & 0xffff);
        d.id = (uint16_t)rng_next();
        uint32_t pieces = 1 + rng_next() % 5;
        for (uint32_t k = 0; k < pieces; k++) {
            /* Never offset 0 + an end: incomplete by construction. */
            struct pkt *q = feed_piece(&d, 8 + 16 * k, 8, 1, &out);
            CHECK(q == NULL);
            CHECK(fx.t.held_frags <= FRAGS);
            CHECK(fx.t.used_sets <= SETS);
        }
        fx.now += 100 * 1000;    /* 100 us apart: no timeouts involved */
        wheel_run(&fx.wheel, fx.now);
    }
    CHECK(fx.ctr.ip_frag_drop_evicted >= 10000 - SETS);
    CHECK_EQ(fx.ctr.ip_frag_drop_timeout, 0);
    CHECK(fx.small.avail == SMALL_COUNT - fx.t.held_frags);

    static uint8_t data[5000];
    static struct frag_list fl;
    fill_random(data, sizeof(data));
    struct dgram good = DG;
    good.id = 4242;
    good.src = 0x0a0000fe;
    CHECK(frag_split(&good, data, sizeof(data), 1480, &fl) == 0);
    uint32_t order[] = {3, 1, 0, 2};
    CHECK_EQ(fl.n, 4);
    struct pkt *q = feed_order(&fl, order, 4, &out, HARNESS_PASS);
    CHECK_OK();
    check_whole(q, &out, &good, data, sizeof(data), HARNESS_PASS);
    pkt_free(q);
    CHECK_OK();
    CHECK(fixture_fini_no_leak());
}

/* The fragment budget evicts whole old sets, oldest first. */
TEST(fragment_budget_evicts_oldest)
{
    CHECK(fixture_init(16, 8) == 0);
    struct ipv4_repr out;
    struct dgram a = DG, b = DG, c = DG;
    a.id = 1;
    b.id = 2;
    c.id = 3;
    for (uint32_t k = 0; k < 3; k++)
        CHECK(feed_piece(&a, 8 + 16 * k, 8, 1, &out) == NULL);
    for (uint32_t k = 0; k < 3; k++)
        CHECK(feed_piece(&b, 8 + 16 * k, 8, 1, &out) == NULL);
    CHECK_EQ(fx.t.held_frags, 6);
    for (uint32_t k = 0; k < 3; k++)
        CHECK(feed_piece(&c, 8 + 16 * k, 8, 1, &out) == NULL);
    /* The ninth fragment evicted a (the oldest) whole. */
    CHECK_EQ(fx.ctr.ip_frag_drop_evicted, 1);
    CHECK_EQ(fx.t.used_sets, 2);
    CHECK_EQ(fx.t.held_frags, 6);
    /* b is still there and completes. */
    CHECK(feed_piece(&b, 0, 8, 1, &out) == NULL);
    CHECK(feed_piece(&b, 16, 8, 1, &out) == NULL);
    CHECK(feed_piece(&b, 32, 8, 1, &out) == NULL);
    struct pkt *q = feed_piece(&b, 48, 1, 0, &out);
    CHECK(q != NULL);
    CHECK_EQ(out.id, 2);
    pkt_free(q);
    CHECK(fx.t.held_frags <= 8);
    CHECK(fixture_fini_no_leak());
}

TEST(table_full_evicts_oldest)
{
    CHECK(fixture_init(4, 100) == 0);
    struct ipv4_repr out;
    struct dgram d = DG;
    for (int i = 0; i < 5; i++) {
        d.id = (uint16_t)(10 + i);
        CHECK(feed_piece(&d, 8, 8, 1, &out) == NULL);
        fx.now += MS;
    }
    CHECK_EQ(fx.t.used_sets, 4);
    CHECK_EQ(fx.ctr.ip_frag_drop_evicted, 1);
    /* id 10 was evicted: its first fragment now makes a new set. */
    d.id = 11;
    struct pkt *q = feed_piece(&d, 0, 8, 1, &out);
    CHECK(q == NULL);
    q = feed_piece(&d, 16, 8, 0, &out);
    CHECK(q != NULL);
    pkt_free(q);
    d.id = 10;
    CHECK(feed_piece(&d, 0, 8, 1, &out) == NULL);
    CHECK(feed_piece(&d, 16, 8, 0, &out) == NULL);        /* [8,16) is gone */
    CHECK(fixture_fini_no_leak());
}

TEST(too_many_fragments_in_one_set)
{
    CHECK(fixture_init(16, 1000) == 0);
    struct ipv4_repr out;
    for (uint32_t k = 0; k < IPFRAG_MAX_PER_SET; k++)
        CHECK(feed_piece(&DG, 8 * k, 8, 1, &out) == NULL);
    CHECK_EQ(fx.t.held_frags, IPFRAG_MAX_PER_SET);
    CHECK(feed_piece(&DG, 8 * IPFRAG_MAX_PER_SET, 8, 0, &out) == NULL);
    CHECK_EQ(fx.ctr.ip_frag_drop_toomany, 1);
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK_EQ(fx.t.held_frags, 0);
    CHECK(fixture_fini_no_leak());
}

TEST(big_pool_empty_drops_the_set)
{
    CHECK(fixture_init(16, 128) == 0);
    struct ipv4_repr out;
    struct pkt *hold[BIG_COUNT];
    for (int i = 0; i < BIG_COUNT; i++)
        hold[i] = pkt_alloc(&fx.big);
    CHECK(feed_piece(&DG, 0, 8, 1, &out) == NULL);
    CHECK(feed_piece(&DG, 8, 8, 0, &out) == NULL);
    CHECK_EQ(fx.ctr.pool_empty, 1);
    CHECK_EQ(fx.ctr.ip_frag_reassembled, 0);
    CHECK_EQ(fx.t.used_sets, 0);
    CHECK_EQ(fx.t.held_frags, 0);
    for (int i = 0; i < BIG_COUNT; i++)
        pkt_free(hold[i]);
    CHECK(fixture_fini_no_leak());
}

TEST(fini_frees_everything_held)
{
    CHECK(fixture_init(32, 256) == 0);
    struct ipv4_repr out;
    struct dgram d = DG;
    for (int i = 0; i < 20; i++) {
        d.id = (uint16_t)i;
        CHECK(feed_piece(&d, 0, 64, 1, &out) == NULL);
        CHECK(feed_piece(&d, 128, 64, 1, &out) == NULL);
    }
    CHECK_EQ(fx.t.held_frags, 40);
    CHECK_EQ(fx.wheel.count, 20);
    CHECK(fixture_fini_no_leak());
}

HARNESS_MAIN()
