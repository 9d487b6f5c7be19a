/* SACK: receiver block selection (RFC 2018 4 and the section 5 examples,
 * D-SACK per RFC 2883) and the sender scoreboard (marking, validation, the
 * RFC 6675 pipe, IsLost, NextSeg rule 1). Queues are built by hand from a
 * small packet pool, exactly as the TCP core lays them out. */
#include "harness.h"
#include "tcp/tcp_sack.h"

#define MS UINT64_C(1000000)

static struct pkt_pool pool;

static int pool_up(void) { return pkt_pool_init(&pool, 256, 2048, NULL); }

/* Free every queue and check nothing leaked from the pool. */
static int pool_down(struct pkt_queue *a, struct pkt_queue *b)
{
    if (a)
        pktq_free_all(a);
    if (b)
        pktq_free_all(b);
    int ok = pool.avail == pool.count;
    pkt_pool_fini(&pool);
    return ok;
}

/* ---- receiver helpers ---- */

/* Insert [seq, seq+len) into the out-of-order queue in sequence order, as
 * the core does (no overlaps). */
static void ooo_insert(struct pkt_queue *q, uint32_t seq, uint16_t len)
{
    struct pkt *p = pkt_alloc(&pool), *prev = NULL, *cur = q->head;
    p->aux = seq;
    p->len = len;
    while (cur && seq_lt(cur->aux, seq)) {
        prev = cur;
        cur = cur->next;
    }
    p->next = cur;
    if (prev)
        prev->next = p;
    else
        q->head = p;
    if (!cur)
        q->tail = p;
    q->len++;
}

/* A segment arrives out of order: queue it and update the blocks. */
static void rcv_ooo(struct tcp_sack_rcv *s, struct pkt_queue *q, uint32_t rcv_nxt, uint32_t seq, uint16_t len)
{
    ooo_insert(q, seq, len);
    sack_rcv_update(s, q, rcv_nxt, seq, seq + len);
}

/* In-order data up to *rcv_nxt + len arrives: pull what became contiguous
 * from the queue, then advance. */
static void rcv_in_order(struct tcp_sack_rcv *s, struct pkt_queue *q, uint32_t *rcv_nxt, uint16_t len)
{
    *rcv_nxt += len;
    struct pkt *p;
    while ((p = q->head) && seq_leq(p->aux, *rcv_nxt)) {
        if (seq_gt(p->aux + p->len, *rcv_nxt))
            *rcv_nxt = p->aux + p->len;
        pkt_free(pktq_pop(q));
    }
    sack_rcv_advance(s, q, *rcv_nxt);
}

/* Take the blocks (max 4) and compare with an expected list of pairs. */
static int take_is(struct tcp_sack_rcv *s, int max, const uint32_t *want, int nwant)
{
    struct tcp_sack_block out[TCP_MAX_SACK];
    int n = sack_rcv_take(s, out, max);
    if (n != nwant)
        return 0;
    for (int i = 0; i < n; i++)
        if (out[i].left != want[2 * i] || out[i].right != want[2 * i + 1])
            return 0;
    return 1;
}

/* RFC 2018 5, case 2: the first of eight 500-byte segments from 5000 is
 * lost; each later one extends the single block 5500-... */
TEST(rfc2018_case2_one_growing_block)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    for (uint32_t seq = 5500; seq < 9000; seq += 500) {
        rcv_ooo(&s, &q, 5000, seq, 500);
        uint32_t want[] = {5500, seq + 500};
        CHECK(take_is(&s, 4, want, 1));
    }
    CHECK(pool_down(&q, NULL));
}

/* RFC 2018 5, case 3: segments 2, 4, 6 and 8 are lost (the first arrives,
 * ACK 5500). Newest block first, then the ones reported before. */
TEST(rfc2018_case3_block_order)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    uint32_t rcv_nxt = 5500;
    rcv_ooo(&s, &q, rcv_nxt, 6000, 500);
    uint32_t w1[] = {6000, 6500};
    CHECK(take_is(&s, 4, w1, 1));
    rcv_ooo(&s, &q, rcv_nxt, 7000, 500);
    uint32_t w2[] = {7000, 7500, 6000, 6500};
    CHECK(take_is(&s, 4, w2, 2));
    rcv_ooo(&s, &q, rcv_nxt, 8000, 500);
    uint32_t w3[] = {8000, 8500, 7000, 7500, 6000, 6500};
    CHECK(take_is(&s, 4, w3, 3));
    /* The 4th segment (6500) arrives: two blocks merge, newest first. */
    rcv_ooo(&s, &q, rcv_nxt, 6500, 500);
    uint32_t w4[] = {6000, 7500, 8000, 8500};
    CHECK(take_is(&s, 4, w4, 2));
    /* The 2nd segment (5500) arrives: ACK 7500, one block left. */
    ooo_insert(&q, 5500, 500);   /* the core pulls it through the queue */
    rcv_in_order(&s, &q, &rcv_nxt, 0);
    CHECK_EQ(rcv_nxt, 7500);
    uint32_t w5[] = {8000, 8500};
    CHECK(take_is(&s, 4, w5, 1));
    CHECK(pool_down(&q, NULL));
}

/* Never more than four blocks, and the caller's max (3 with timestamps)
 * keeps the newest ones; a filled hole merges runs and goes first. */
TEST(rcv_block_limit_and_recency)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    for (uint32_t i = 0; i < 6; i++)
        rcv_ooo(&s, &q, 1000, 2000 + 1000 * i, 100);
    CHECK_EQ(s.count, 4);
    uint32_t w3[] = {7000, 7100, 6000, 6100, 5000, 5100};
    CHECK(take_is(&s, 3, w3, 3));
    uint32_t w4[] = {7000, 7100, 6000, 6100, 5000, 5100, 4000, 4100};
    CHECK(take_is(&s, 4, w4, 4));
    /* Refilling an old hole puts that run first; the rest keep their order. */
    rcv_ooo(&s, &q, 1000, 2100, 900);
    uint32_t w5[] = {2000, 3100, 7000, 7100, 6000, 6100, 5000, 5100};
    CHECK(take_is(&s, 4, w5, 4));
    CHECK(take_is(&s, 0, NULL, 0));
    CHECK(pool_down(&q, NULL));
}

/* rcv_nxt moving up drops blocks at or below it; all gone when it passes
 * the queue. */
TEST(rcv_advance_drops_blocks)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    uint32_t rcv_nxt = 1000;
    rcv_ooo(&s, &q, rcv_nxt, 3000, 1000);
    rcv_ooo(&s, &q, rcv_nxt, 2000, 500);
    uint32_t w1[] = {2000, 2500, 3000, 4000};
    CHECK(take_is(&s, 4, w1, 2));
    rcv_in_order(&s, &q, &rcv_nxt, 1000);   /* fills 1000-2000, pulls 2000-2500 */
    CHECK_EQ(rcv_nxt, 2500);
    uint32_t w2[] = {3000, 4000};
    CHECK(take_is(&s, 4, w2, 1));
    rcv_in_order(&s, &q, &rcv_nxt, 500);    /* fills the last hole */
    CHECK_EQ(rcv_nxt, 4000);
    CHECK_EQ(s.count, 0);
    CHECK(take_is(&s, 4, NULL, 0));
    CHECK(pool_down(&q, NULL));
}

/* Blocks near the sequence wrap: runs merge across 2^32. */
TEST(rcv_wraparound)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    uint32_t rcv_nxt = 0xFFFFF000u;
    rcv_ooo(&s, &q, rcv_nxt, 0xFFFFFC00u, 0x400);
    rcv_ooo(&s, &q, rcv_nxt, 0x0u, 0x200);
    uint32_t w[] = {0xFFFFFC00u, 0x200};
    CHECK(take_is(&s, 4, w, 1));
    CHECK(pool_down(&q, NULL));
}

/* RFC 2883 4: a duplicate inside queued data is reported first, its
 * containing block second, and only in one ACK. */
TEST(rcv_dsack_first_and_once)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    rcv_ooo(&s, &q, 1000, 2000, 500);
    rcv_ooo(&s, &q, 1000, 3000, 500);
    rcv_ooo(&s, &q, 1000, 4000, 500);
    sack_rcv_dsack(&s, 2000, 2500);
    CHECK(s.dsack);
    uint32_t w1[] = {2000, 2500, 2000, 2500, 4000, 4500};
    CHECK(take_is(&s, 3, w1, 3));
    CHECK(!s.dsack);
    /* The containing block was just reported, so it is now the most
     * recently reported one (RFC 2018 4). */
    uint32_t w2[] = {2000, 2500, 4000, 4500, 3000, 3500};
    CHECK(take_is(&s, 4, w2, 3));
    /* A duplicate below rcv_nxt: D-SACK first, then the usual blocks. */
    sack_rcv_dsack(&s, 500, 700);
    uint32_t w3[] = {500, 700, 2000, 2500, 4000, 4500, 3000, 3500};
    CHECK(take_is(&s, 4, w3, 4));
    CHECK(take_is(&s, 4, w2, 3));
    CHECK(pool_down(&q, NULL));
}

/* A pending D-SACK survives an out-of-order arrival and stays first; a
 * take with max 0 does not consume it; an empty range is ignored. */
TEST(rcv_dsack_survives_update)
{
    CHECK(pool_up() == 0);
    struct tcp_sack_rcv s = {0};
    struct pkt_queue q = {0};
    rcv_ooo(&s, &q, 1000, 2000, 500);
    sack_rcv_dsack(&s, 800, 900);
    sack_rcv_dsack(&s, 900, 900);
    rcv_ooo(&s, &q, 1000, 3000, 500);
    CHECK(take_is(&s, 0, NULL, 0));
    CHECK(s.dsack);
    uint32_t w[] = {800, 900, 3000, 3500, 2000, 2500};
    CHECK(take_is(&s, 4, w, 3));
    uint32_t w2[] = {3000, 3500, 2000, 2500};
    CHECK(take_is(&s, 4, w2, 2));
    CHECK(pool_down(&q, NULL));
}

/* ---- sender helpers ---- */

static struct pkt *seg_add(struct pkt_queue *q, uint32_t seq, uint16_t len, uint64_t stamp, uint16_t flags)
{
    struct pkt *p = pkt_alloc(&pool);
    p->aux = seq;
    p->len = len;
    p->stamp = stamp;
    p->flags = flags;
    pktq_push(q, p);
    return p;
}

/* n segments of len bytes from seq, sent 1 ms apart from 1 ms. */
static void segs_add(struct pkt_queue *q, struct pkt **out, uint32_t seq, uint16_t len, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = seg_add(q, seq + (uint32_t)i * len, len, (uint64_t)(i + 1) * MS, 0);
}

static void mark(struct pkt_queue *q, uint32_t una, uint32_t nxt, const uint32_t *b, int n, struct tcp_rack *r,
                 struct sack_result *res)
{
    struct tcp_sack_block blk[TCP_MAX_SACK];
    for (int i = 0; i < n; i++)
        blk[i] = (struct tcp_sack_block){b[2 * i], b[2 * i + 1]};
    sack_mark(q, una, nxt, blk, n, r, 100 * MS, res);
}

#define SACKED(p) (((p)->flags & TSEG_SACKED) != 0)
#define LOST(p) (((p)->flags & TSEG_LOST) != 0)

TEST(snd_mark_covered_segments)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[5];
    struct tcp_rack rack;
    rack_init(&rack);
    segs_add(&q, s, 1000, 1000, 5);
    s[2]->flags |= TSEG_LOST;
    struct sack_result r;
    uint32_t b[] = {3000, 5000};
    mark(&q, 1000, 6000, b, 1, &rack, &r);
    CHECK(!SACKED(s[0]) && !SACKED(s[1]) && SACKED(s[2]) && SACKED(s[3]) && !SACKED(s[4]));
    CHECK(!LOST(s[2]));   /* SACK wins over an earlier loss mark */
    CHECK_EQ(r.newly_sacked, 2000);
    CHECK_EQ(r.sacked_total, 2000);
    CHECK_EQ(r.highest_sacked, 5000);
    CHECK_EQ(r.dsack, 0);
    /* RACK heard of the newest one: s[3], sent at 4 ms, delivered at 100. */
    CHECK_EQ(rack.end_seq, 5000);
    CHECK_EQ(rack.xmit_ts, 4 * MS);
    CHECK_EQ(rack.rtt_us, 96000);
    /* The same block again adds nothing; a second block adds s[4]. */
    uint32_t b2[] = {5000, 6000, 3000, 5000};
    mark(&q, 1000, 6000, b2, 2, &rack, &r);
    CHECK_EQ(r.newly_sacked, 1000);
    CHECK_EQ(r.sacked_total, 3000);
    CHECK_EQ(r.highest_sacked, 6000);
    mark(&q, 1000, 6000, b2, 2, &rack, &r);
    CHECK_EQ(r.newly_sacked, 0);
    /* No blocks at all: nothing changes, highest_sacked still reported. */
    mark(&q, 1000, 6000, NULL, 0, &rack, &r);
    CHECK_EQ(r.sacked_total, 3000);
    CHECK_EQ(r.highest_sacked, 6000);
    CHECK(pool_down(&q, NULL));
}

TEST(snd_partial_coverage_does_not_mark)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[5];
    segs_add(&q, s, 1000, 1000, 5);
    struct sack_result r;
    uint32_t b[] = {3000, 3500, 4500, 5500, 1500, 2999};
    mark(&q, 1000, 6000, b, 3, NULL, &r);
    for (int i = 0; i < 5; i++)
        CHECK(!SACKED(s[i]));
    CHECK_EQ(r.newly_sacked, 0);
    CHECK_EQ(r.highest_sacked, 1000);
    uint32_t b2[] = {2500, 4500};   /* covers only s[2] entirely */
    mark(&q, 1000, 6000, b2, 1, NULL, &r);
    CHECK(!SACKED(s[1]) && SACKED(s[2]) && !SACKED(s[3]));
    CHECK_EQ(r.newly_sacked, 1000);
    CHECK(pool_down(&q, NULL));
}

/* Blocks beyond snd_nxt, below snd_una, empty or reversed are ignored. */
TEST(snd_invalid_blocks_ignored)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[5];
    segs_add(&q, s, 1000, 1000, 5);
    struct sack_result r;
    /* First block valid and not a D-SACK, so the rest are judged alone. */
    uint32_t b[] = {2000, 3000, 5000, 7000, 500, 2000, 4000, 4000};
    mark(&q, 1000, 6000, b, 4, NULL, &r);
    CHECK(SACKED(s[1]));
    CHECK(!SACKED(s[0]) && !SACKED(s[2]) && !SACKED(s[3]) && !SACKED(s[4]));
    CHECK_EQ(r.dsack, 0);
    uint32_t b2[] = {5000, 4000, 6000, 1000, 1000, 0x80001000u};
    mark(&q, 1000, 6000, b2, 3, NULL, &r);
    CHECK_EQ(r.newly_sacked, 0);
    CHECK_EQ(r.sacked_total, 1000);
    /* n beyond TCP_MAX_SACK is clamped, not read past the array. */
    struct tcp_sack_block blk[TCP_MAX_SACK] = {{4000, 5000}, {4000, 5000}, {4000, 5000}, {4000, 5000}};
    sack_mark(&q, 1000, 6000, blk, 100, NULL, 0, &r);
    CHECK(SACKED(s[3]));
    CHECK(pool_down(&q, NULL));
}

TEST(snd_wraparound)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[4];
    uint32_t una = 0xFFFFF800u;   /* segments at -2048, -1024, 0, 1024 */
    segs_add(&q, s, una, 1024, 4);
    uint32_t nxt = una + 4096;
    struct sack_result r;
    uint32_t b[] = {0xFFFFFC00u, 0x400u};   /* straddles 2^32 */
    mark(&q, una, nxt, b, 1, NULL, &r);
    CHECK(!SACKED(s[0]) && SACKED(s[1]) && SACKED(s[2]) && !SACKED(s[3]));
    CHECK_EQ(r.highest_sacked, 0x400u);
    /* Beyond snd_nxt after the wrap: ignored. */
    uint32_t b2[] = {0x400u, 0x1000u};
    mark(&q, una, nxt, b2, 1, NULL, &r);
    CHECK(!SACKED(s[3]));
    /* Left edge far below snd_una (looks huge unsigned): ignored. */
    uint32_t b3[] = {0x400u, 0x800u, 0x7FFFFFFFu, 0x800u};
    mark(&q, una, nxt, b3, 2, NULL, &r);
    CHECK(SACKED(s[3]));
    CHECK_EQ(r.newly_sacked, 1024);
    CHECK(pool_down(&q, NULL));
}

/* RFC 2883 4: a first block below snd_una, or inside the second block, is
 * a D-SACK; it marks nothing itself. */
TEST(snd_dsack_detection)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[5];
    segs_add(&q, s, 1000, 1000, 5);
    struct sack_result r;
    uint32_t below[] = {500, 1000};
    mark(&q, 1000, 6000, below, 1, NULL, &r);
    CHECK_EQ(r.dsack, 1);
    CHECK_EQ(r.newly_sacked, 0);
    uint32_t inside[] = {3000, 4000, 3000, 5000};
    mark(&q, 1000, 6000, inside, 2, NULL, &r);
    CHECK_EQ(r.dsack, 1);
    CHECK(SACKED(s[2]) && SACKED(s[3]));   /* from the second block */
    uint32_t plain[] = {5000, 6000, 3000, 5000};
    mark(&q, 1000, 6000, plain, 2, NULL, &r);
    CHECK_EQ(r.dsack, 0);
    CHECK(SACKED(s[4]));
    CHECK(pool_down(&q, NULL));
}

/* RFC 6675 SetPipe(): un-SACKed segments count once unless lost, and once
 * more when retransmitted; unsent data and data past snd_nxt do not. */
TEST(snd_pipe)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[5];
    segs_add(&q, s, 1000, 1000, 5);
    seg_add(&q, 6000, 1000, 0, 0);   /* queued, never sent */
    CHECK_EQ(sack_pipe(&q, 6000), 5000);
    s[3]->flags |= TSEG_SACKED;
    CHECK_EQ(sack_pipe(&q, 6000), 4000);
    s[0]->flags |= TSEG_LOST;
    CHECK_EQ(sack_pipe(&q, 6000), 3000);
    s[0]->flags = TSEG_RETRANS;      /* resent: original and copy in flight */
    CHECK_EQ(sack_pipe(&q, 6000), 5000);
    s[0]->flags = TSEG_RETRANS | TSEG_LOST;   /* the retransmission was lost too */
    CHECK_EQ(sack_pipe(&q, 6000), 4000);
    s[3]->flags |= TSEG_RETRANS;     /* SACKed retransmissions count nothing */
    CHECK_EQ(sack_pipe(&q, 6000), 4000);
    CHECK_EQ(sack_pipe(&q, 5000), 3000);   /* s[4] beyond snd_nxt */
    CHECK(pool_down(&q, NULL));
}

/* RFC 6675 IsLost() by segment count: three SACKed segments above. */
TEST(snd_islost_dupthresh_segments)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[8];
    segs_add(&q, s, 1000, 1000, 8);
    s[4]->flags |= TSEG_SACKED;
    s[6]->flags |= TSEG_SACKED;
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 9000, 1000), 0);   /* 2 segs, 2000 bytes: not > 2*SMSS */
    s[5]->flags |= TSEG_SACKED;
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 9000, 1000), 4);
    CHECK(LOST(s[0]) && LOST(s[1]) && LOST(s[2]) && LOST(s[3]));
    CHECK(!LOST(s[7]));   /* above the highest SACKed */
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 9000, 1000), 0);   /* idempotent */
    CHECK(sack_next_lost(&q) == s[0]);
    /* Resent segments are not marked again; the next lost one follows. */
    s[0]->flags = TSEG_RETRANS;
    s[1]->flags = TSEG_RETRANS;
    CHECK(sack_next_lost(&q) == s[2]);
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 9000, 1000), 0);
    CHECK(!LOST(s[0]) && !LOST(s[1]));
    s[2]->flags = s[3]->flags = TSEG_RETRANS;
    CHECK(sack_next_lost(&q) == NULL);
    CHECK(pool_down(&q, NULL));
}

/* IsLost() by bytes: two SACKed segments bigger than SMSS exceed
 * (DupThresh - 1) * SMSS; only segments below them are lost. */
TEST(snd_islost_dupthresh_bytes)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[5];
    segs_add(&q, s, 0, 1200, 5);   /* 1200-byte segments, SMSS 1000 */
    s[2]->flags |= TSEG_SACKED;
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 6000, 1000), 0);
    s[3]->flags |= TSEG_SACKED;
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 6000, 1000), 2);
    CHECK(LOST(s[0]) && LOST(s[1]) && !LOST(s[4]));
    /* With SMSS 1200 the same two SACKed segments are not enough. */
    s[0]->flags = s[1]->flags = 0;
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 6000, 1200), 0);
    CHECK(!LOST(s[0]) && !LOST(s[1]));
    CHECK(pool_down(&q, NULL));
}

/* An un-SACKed hole between SACKed segments: only segments with enough
 * SACKed above are lost, and mss 0 leaves the byte rule out. */
TEST(snd_islost_holes)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[7];
    segs_add(&q, s, 0, 100, 7);
    s[1]->flags |= TSEG_SACKED;
    s[3]->flags |= TSEG_SACKED;
    s[5]->flags |= TSEG_SACKED;
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 700, 0), 1);   /* s[0]: 3 above */
    CHECK(LOST(s[0]) && !LOST(s[2]) && !LOST(s[4]) && !LOST(s[6]));
    CHECK(sack_next_lost(&q) == s[0]);
    CHECK_EQ(sack_mark_lost_dupthresh(&q, 700, 50), 1);   /* bytes: 200 > 100 above s[2] */
    CHECK(LOST(s[2]) && !LOST(s[4]));
    CHECK(pool_down(&q, NULL));
}

HARNESS_MAIN()
