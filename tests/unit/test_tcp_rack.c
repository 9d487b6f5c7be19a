/* RACK-TLP (RFC 8985): time-based loss marking after rtt + reo_wnd, the
 * reordering window and its D-SACK adaptation, the Karn filter for
 * retransmissions, and the tail loss probe timeout. */
#include "harness.h"
#include "tcp/tcp_rack.h"
#include "tcp/tcp_sack.h"

#define US UINT64_C(1000)
#define MS UINT64_C(1000000)

static struct pkt_pool pool;

static int pool_up(void) { return pkt_pool_init(&pool, 256, 2048, NULL); }

static int pool_down(struct pkt_queue *q)
{
    pktq_free_all(q);
    int ok = pool.avail == pool.count;
    pkt_pool_fini(&pool);
    return ok;
}

static struct pkt *seg_add(struct pkt_queue *q, uint32_t seq, uint16_t len, uint64_t stamp)
{
    struct pkt *p = pkt_alloc(&pool);
    p->aux = seq;
    p->len = len;
    p->stamp = stamp;
    pktq_push(q, p);
    return p;
}

/* Segment i covers [1000 i, 1000 (i+1)) and was sent at (i+1) ms. */
static void segs_add(struct pkt_queue *q, struct pkt **out, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = seg_add(q, (uint32_t)i * 1000, 1000, (uint64_t)(i + 1) * MS);
}

static void sack(struct tcp_rack *r, struct pkt *seg, uint64_t now)
{
    seg->flags |= TSEG_SACKED;
    rack_on_delivered(r, seg, now, 0, 0);
}

#define LOST(p) (((p)->flags & TSEG_LOST) != 0)

TEST(init_values)
{
    struct tcp_rack r;
    memset(&r, 0xAB, sizeof(r));
    rack_init(&r);
    CHECK_EQ(r.reo_wnd_mult, 1);
    CHECK_EQ(r.reo_wnd_persist, 0);
    CHECK_EQ(r.reordering_seen, 0);
    CHECK_EQ(r.xmit_ts, 0);
    CHECK_EQ(r.fack_valid, 0);
}

/* A segment sent before a delivered one is lost exactly once
 * xmit_ts + RACK.rtt + reo_wnd has passed, not a nanosecond earlier. */
TEST(loss_after_rtt_plus_reo_wnd)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[3];
    struct tcp_rack r;
    rack_init(&r);
    segs_add(&q, s, 3);
    sack(&r, s[1], 12 * MS);   /* sent at 2 ms: RACK.rtt = 10 ms */
    CHECK_EQ(r.rtt_us, 10000);
    CHECK_EQ(r.xmit_ts, 2 * MS);
    CHECK_EQ(r.end_seq, 2000);
    uint64_t timer = 1;
    /* s[0] sent at 1 ms: deadline 1 + 10 + 2 (reo_wnd) = 13 ms. */
    CHECK_EQ(rack_detect_loss(&r, &q, 12 * MS, 2000, &timer), 0);
    CHECK_EQ(timer, 13 * MS);
    CHECK_EQ(rack_detect_loss(&r, &q, 13 * MS - 1, 2000, &timer), 0);
    CHECK(!LOST(s[0]));
    CHECK_EQ(rack_detect_loss(&r, &q, 13 * MS, 2000, &timer), 1);
    CHECK(LOST(s[0]));
    CHECK_EQ(timer, 0);
    /* s[2] was sent after the delivered one: never a candidate. */
    CHECK(!LOST(s[2]));
    CHECK_EQ(rack_detect_loss(&r, &q, 100 * MS, 2000, &timer), 0);   /* already lost */
    CHECK(!LOST(s[2]));
    CHECK(pool_down(&q));
}

/* With no delivery yet, nothing is a candidate; unsent, SACKed and lost
 * segments are skipped; the timer is the earliest pending deadline. */
TEST(candidates_and_earliest_timer)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[6];
    struct tcp_rack r;
    rack_init(&r);
    segs_add(&q, s, 5);
    s[5] = seg_add(&q, 5000, 1000, 0);   /* not sent yet */
    uint64_t timer = 1;
    CHECK_EQ(rack_detect_loss(&r, &q, 1000 * MS, 0, &timer), 0);
    CHECK_EQ(timer, 0);
    s[1]->flags |= TSEG_SACKED;
    s[2]->flags |= TSEG_LOST;
    sack(&r, s[4], 15 * MS);   /* sent at 5 ms: rtt 10 ms */
    /* Deadlines: s[0] 11 ms, s[3] 14 ms. */
    CHECK_EQ(rack_detect_loss(&r, &q, 10 * MS, 0, &timer), 0);
    CHECK_EQ(timer, 11 * MS);
    CHECK_EQ(rack_detect_loss(&r, &q, 11 * MS, 0, &timer), 1);
    CHECK(LOST(s[0]) && !LOST(s[3]));
    CHECK_EQ(timer, 14 * MS);
    CHECK_EQ(rack_detect_loss(&r, &q, 14 * MS, 0, NULL), 1);
    CHECK(LOST(s[3]) && !LOST(s[5]) && !LOST(s[1]));
    CHECK(pool_down(&q));
}

/* Segments of one burst share a send time: the lower sequence counts as
 * sent earlier (RACK_sent_after's tie break). */
TEST(same_stamp_ordered_by_sequence)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct tcp_rack r;
    rack_init(&r);
    struct pkt *a = seg_add(&q, 0, 1000, 5 * MS);
    struct pkt *b = seg_add(&q, 1000, 1000, 5 * MS);
    struct pkt *c = seg_add(&q, 2000, 1000, 5 * MS);
    sack(&r, b, 15 * MS);
    CHECK_EQ(rack_detect_loss(&r, &q, 15 * MS, 0, NULL), 1);
    CHECK(LOST(a) && !LOST(c));
    CHECK(pool_down(&q));
}

/* RFC 8985 6.2 steps 3-4: an original delivered below RACK.fack is
 * reordering; from then on reo_wnd > 0 even in recovery, and a segment
 * that was merely reordered is delivered before it is marked lost. */
TEST(reordering_opens_window)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[4];
    struct tcp_rack r;
    rack_init(&r);
    segs_add(&q, s, 4);
    uint32_t min_rtt = 8000, srtt = 10000;
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, srtt, 1, 0), 0);   /* in recovery */
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, srtt, 0, 1), 0);   /* DupThresh SACKed */
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, srtt, 0, 0), 2000);
    sack(&r, s[1], 12 * MS);
    CHECK_EQ(r.reordering_seen, 0);
    sack(&r, s[0], 12 * MS + 500 * US);   /* arrived after a later one */
    CHECK_EQ(r.reordering_seen, 1);
    CHECK_EQ(r.xmit_ts, 2 * MS);          /* s[0] was sent earlier: not newer */
    uint32_t reo = rack_reo_wnd_us(&r, min_rtt, srtt, 1, 1);
    CHECK_EQ(reo, 2000);
    /* s[3] delivered first; s[2] (deadline 3 + 10 + 2 = 15 ms) is pending. */
    sack(&r, s[3], 14 * MS);
    uint64_t timer;
    CHECK_EQ(rack_detect_loss(&r, &q, 14 * MS, reo, &timer), 0);
    CHECK_EQ(timer, 15 * MS);
    sack(&r, s[2], 14 * MS + 600 * US);   /* the reordered segment shows up */
    CHECK_EQ(rack_detect_loss(&r, &q, 15 * MS, reo, &timer), 0);
    CHECK(!LOST(s[2]));
    CHECK_EQ(timer, 0);
    /* The window never exceeds SRTT. */
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, 1000, 0, 0), 1000);   /* capped by SRTT */
    CHECK(pool_down(&q));
}

/* A retransmission delivered below fack is not taken for reordering. */
TEST(retransmission_is_not_reordering)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[2];
    struct tcp_rack r;
    rack_init(&r);
    segs_add(&q, s, 2);
    sack(&r, s[1], 12 * MS);
    s[0]->flags |= TSEG_RETRANS;
    s[0]->stamp = 20 * MS;
    sack(&r, s[0], 40 * MS);
    CHECK_EQ(r.reordering_seen, 0);
    CHECK_EQ(r.xmit_ts, 20 * MS);   /* the retransmission is the newest sent */
    CHECK_EQ(r.rtt_us, 20000);
    CHECK(pool_down(&q));
}

/* RFC 8985 6.2 step 2: a retransmitted segment acknowledged sooner than
 * min_RTT after the retransmission (the ACK was for the original), or with
 * an ambiguous timestamp echo, gives no sample. */
TEST(spurious_rtt_filter)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct tcp_rack r;
    rack_init(&r);
    struct pkt *a = seg_add(&q, 0, 1000, 100 * MS);
    a->flags |= TSEG_RETRANS;
    rack_on_delivered(&r, a, 101 * MS, 10000, 0);
    CHECK_EQ(r.xmit_ts, 0);
    CHECK_EQ(r.rtt_us, 0);
    rack_on_delivered(&r, a, 120 * MS, 10000, 1);   /* ts_ecr says "older copy" */
    CHECK_EQ(r.xmit_ts, 0);
    /* sack_mark passes min_rtt 0: the last known min_rtt still filters. */
    rack_on_delivered(&r, a, 105 * MS, 0, 0);
    CHECK_EQ(r.xmit_ts, 0);
    rack_on_delivered(&r, a, 115 * MS, 0, 0);
    CHECK_EQ(r.xmit_ts, 100 * MS);
    CHECK_EQ(r.rtt_us, 15000);
    /* An original transmission is never filtered, however quick. */
    struct pkt *b = seg_add(&q, 1000, 1000, 200 * MS);
    rack_on_delivered(&r, b, 201 * MS, 10000, 0);
    CHECK_EQ(r.xmit_ts, 200 * MS);
    CHECK_EQ(r.rtt_us, 1000);
    /* An older delivery does not move RACK back. */
    struct pkt *c = seg_add(&q, 2000, 1000, 150 * MS);
    rack_on_delivered(&r, c, 250 * MS, 10000, 0);
    CHECK_EQ(r.xmit_ts, 200 * MS);
    CHECK_EQ(r.end_seq, 2000);
    CHECK_EQ(r.rtt_us, 1000);
    CHECK(pool_down(&q));
}

/* RFC 8985 6.2 step 4: a D-SACK raises reo_wnd_mult once per round and
 * keeps it for 16 recoveries. */
TEST(dsack_grows_window_and_persist_ages)
{
    struct tcp_rack r;
    rack_init(&r);
    r.reordering_seen = 1;
    uint32_t min_rtt = 8000, srtt = 100000;
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, srtt, 0, 0), 2000);
    rack_on_dsack(&r, 1000, 5000);
    CHECK_EQ(r.reo_wnd_mult, 2);
    CHECK_EQ(r.reo_wnd_persist, 16);
    rack_on_dsack(&r, 3000, 6000);    /* same round: snd_una < 5000 */
    CHECK_EQ(r.reo_wnd_mult, 2);
    rack_on_dsack(&r, 5000, 9000);    /* round over */
    CHECK_EQ(r.reo_wnd_mult, 3);
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, srtt, 1, 1), 6000);
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, 5000, 1, 1), 5000);   /* min(..., SRTT) */
    for (int i = 0; i < 15; i++)
        rack_on_recovery_exit(&r);
    CHECK_EQ(r.reo_wnd_mult, 3);
    CHECK_EQ(r.reo_wnd_persist, 1);
    rack_on_recovery_exit(&r);
    CHECK_EQ(r.reo_wnd_mult, 1);
    CHECK_EQ(r.reo_wnd_persist, 0);
    rack_on_recovery_exit(&r);        /* stays at the floor */
    CHECK_EQ(r.reo_wnd_mult, 1);
    CHECK_EQ(rack_reo_wnd_us(&r, min_rtt, srtt, 0, 0), 2000);
}

/* D-SACK round tracking across the sequence wrap. */
TEST(dsack_round_wraps)
{
    struct tcp_rack r;
    rack_init(&r);
    rack_on_dsack(&r, 0xFFFFFF00u, 0x100u);
    CHECK_EQ(r.reo_wnd_mult, 2);
    rack_on_dsack(&r, 0xFFFFFFF0u, 0x200u);
    CHECK_EQ(r.reo_wnd_mult, 2);
    rack_on_dsack(&r, 0x100u, 0x300u);
    CHECK_EQ(r.reo_wnd_mult, 3);
}

/* sack_mark feeds RACK, and RACK then marks the earlier hole. */
TEST(sack_mark_drives_rack)
{
    CHECK(pool_up() == 0);
    struct pkt_queue q = {0};
    struct pkt *s[3];
    struct tcp_rack r;
    rack_init(&r);
    segs_add(&q, s, 3);
    struct tcp_sack_block b = {1000, 3000};
    struct sack_result res;
    sack_mark(&q, 0, 3000, &b, 1, &r, 13 * MS, &res);
    CHECK_EQ(r.xmit_ts, 3 * MS);
    CHECK_EQ(r.rtt_us, 10000);
    CHECK_EQ(r.end_seq, 3000);
    CHECK_EQ(rack_detect_loss(&r, &q, 13 * MS, 0, NULL), 1);
    CHECK(LOST(s[0]));
    CHECK(pool_down(&q));
}

/* RFC 8985 7.2: PTO = 2 SRTT (+ max ack delay for a single segment),
 * 1 s without SRTT, never after the RTO. */
TEST(tlp_pto_values)
{
    CHECK_EQ(tlp_pto_us(10000, 1, 200000, 1000000), 220000);
    CHECK_EQ(tlp_pto_us(10000, 4, 200000, 1000000), 20000);
    CHECK_EQ(tlp_pto_us(0, 4, 200000, 3000000), 1000000);
    CHECK_EQ(tlp_pto_us(0, 1, 200000, 3000000), 1000000);
    CHECK_EQ(tlp_pto_us(300000, 4, 200000, 500000), 500000);   /* capped by RTO */
    CHECK_EQ(tlp_pto_us(100000, 1, 200000, 300000), 300000);
    CHECK_EQ(tlp_pto_us(0, 2, 200000, 200000), 200000);
    CHECK_EQ(tlp_pto_us(UINT32_MAX, 2, 200000, 0), UINT32_MAX);  /* no overflow */
    CHECK_EQ(tlp_pto_us(20, 4, 200000, 1000000), 2000);           /* 2 ms floor */
    CHECK_EQ(tlp_pto_us(20, 4, 200000, 1000), 1000);              /* RTO still caps */
}

HARNESS_MAIN()
