/* The fault-injecting device, over the in-memory link: end "f" is
 * fault:OPTS+memlink:NAME, end "p" is the plain memlink peer. */
#include "harness.h"

#include "dev/dev.h"
#include "dev/memlink.h"
#include "wire/wire.h"

#define POOL_COUNT 512
#define FRAME_LEN 64
#define MS 1000000ULL

struct end {
    struct pkt_pool pool;
    struct ust_counters ctr;
    struct dev dev;
};

struct pair {
    struct end f, p;
};

static int end_open(struct end *e, const char *spec)
{
    memset(e, 0, sizeof(*e));
    if (pkt_pool_init(&e->pool, POOL_COUNT, PKT_ROOM_DEFAULT, NULL))
        return -1;
    if (dev_open(&e->dev, spec, &e->ctr)) {
        pkt_pool_fini(&e->pool);
        return -1;
    }
    e->dev.pool = &e->pool;
    return e->dev.ops->start(&e->dev);
}

/* Opens "fault:OPTS+memlink:fltN" and its plain peer. A fresh link name
 * each time, so a test that fails half way does not break the next ones. */
static int pair_open(struct pair *pr, const char *opts)
{
    static int serial;
    char spec[256];
    serial++;
    snprintf(spec, sizeof(spec), "fault:%s+memlink:flt%d,end=a,qlen=4096", opts, serial);
    if (end_open(&pr->f, spec))
        return -1;
    snprintf(spec, sizeof(spec), "memlink:flt%d,end=b,qlen=4096", serial);
    return end_open(&pr->p, spec);
}

/* Closes both and reports whether every buffer came home. */
static int pair_close(struct pair *pr)
{
    dev_close(&pr->f.dev);
    dev_close(&pr->p.dev);
    int ok = pr->f.pool.avail == POOL_COUNT && pr->p.pool.avail == POOL_COUNT;
    pkt_pool_fini(&pr->f.pool);
    pkt_pool_fini(&pr->p.pool);
    return ok;
}

static struct pkt *frame(struct end *e, uint32_t seq)
{
    struct pkt *p = pkt_alloc(&e->pool);
    if (!p)
        return NULL;
    uint8_t *b = pkt_put(p, FRAME_LEN);
    for (int i = 0; i < FRAME_LEN; i++)
        b[i] = (uint8_t)(i * 13);
    wr32(b + 14, seq);
    return p;
}

/* Sends seqs first..first+n-1 from e in one burst (n <= 64). */
static void send_range(struct end *e, uint32_t first, uint16_t n, uint64_t now)
{
    struct pkt *out[64];
    uint16_t k = 0;
    for (uint16_t i = 0; i < n && i < 64; i++)
        if ((out[k] = frame(e, first + i)) != NULL)
            k++;
    e->dev.ops->tx_burst(&e->dev, out, k, now);
}

/* Receives everything due at now; records seqs (up to cap), returns count. */
static uint32_t recv_seqs(struct end *e, uint32_t *seqs, uint32_t cap, uint64_t now)
{
    uint32_t total = 0;
    struct pkt *in[64];
    uint16_t n;
    while ((n = e->dev.ops->rx_burst(&e->dev, in, 64, now)) > 0) {
        for (uint16_t i = 0; i < n; i++) {
            if (seqs && total < cap)
                seqs[total] = rd32(pkt_data(in[i]) + 14);
            total++;
            pkt_free(in[i]);
        }
    }
    return total;
}

TEST(loss_one_drops_everything_both_ways)
{
    struct pair pr;
    CHECK(pair_open(&pr, "loss=1") == 0);
    send_range(&pr.f, 0, 50, 0);
    CHECK_EQ(memlink_pending(&pr.p.dev), 0);
    send_range(&pr.p, 0, 50, 0);
    CHECK_EQ(memlink_pending(&pr.f.dev), -1);   /* f is the wrapper, not a memlink */
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 0), 0);
    CHECK_EQ(pr.f.ctr.fault_drop, 100);
    CHECK(pair_close(&pr));
}

TEST(loss_half_is_about_half)
{
    struct pair pr;
    CHECK(pair_open(&pr, "loss=0.5,seed=42") == 0);
    uint32_t got = 0;
    for (uint32_t i = 0; i < 10000; i += 50) {
        send_range(&pr.f, i, 50, i);
        got += recv_seqs(&pr.p, NULL, 0, i);
    }
    CHECK(got >= 4000 && got <= 6000);
    CHECK_EQ(pr.f.ctr.fault_drop, 10000 - got);
    CHECK(pair_close(&pr));
}

TEST(same_seed_same_faults)
{
    uint32_t got[2];
    for (int run = 0; run < 2; run++) {
        struct pair pr;
        CHECK(pair_open(&pr, "loss=0.3,seed=7") == 0);
        uint32_t seqs[200];
        send_range(&pr.f, 0, 64, 0);
        send_range(&pr.f, 64, 64, 0);
        got[run] = recv_seqs(&pr.p, seqs, 200, 0);
        uint32_t sum = 0;
        for (uint32_t i = 0; i < got[run] && i < 200; i++)
            sum = sum * 31 + seqs[i];
        got[run] = got[run] * 1000003u + sum;
        CHECK(pair_close(&pr));
    }
    CHECK_EQ(got[0], got[1]);
}

TEST(dup_one_doubles)
{
    struct pair pr;
    CHECK(pair_open(&pr, "dup=1") == 0);
    send_range(&pr.f, 0, 10, 0);
    uint32_t seqs[32];
    CHECK_EQ(recv_seqs(&pr.p, seqs, 32, 0), 20);
    for (uint32_t i = 0; i < 10; i++) {
        CHECK_EQ(seqs[2 * i], i);
        CHECK_EQ(seqs[2 * i + 1], i);
    }
    CHECK_EQ(pr.f.ctr.fault_dup, 10);
    send_range(&pr.p, 100, 5, 0);          /* the receive side too */
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 0), 10);
    CHECK_EQ(pr.f.ctr.fault_dup, 15);
    CHECK(pair_close(&pr));
}

TEST(delay_holds_until_virtual_time_passes)
{
    struct pair pr;
    CHECK(pair_open(&pr, "delay=5") == 0);
    send_range(&pr.f, 1, 1, 1000);
    CHECK_EQ(memlink_pending(&pr.p.dev), 0);
    CHECK_EQ(pr.f.ctr.fault_delay, 1);
    /* service reports when the held frame is due. */
    CHECK(pr.f.dev.ops->service(&pr.f.dev, 2000) == 1000 + 5 * MS);
    CHECK(pr.f.dev.ops->service(&pr.f.dev, 1000 + 5 * MS - 1) == 1000 + 5 * MS);
    CHECK_EQ(memlink_pending(&pr.p.dev), 0);
    pr.f.dev.ops->service(&pr.f.dev, 1000 + 5 * MS);
    CHECK_EQ(memlink_pending(&pr.p.dev), 1);
    CHECK(pr.f.dev.ops->service(&pr.f.dev, 1000 + 5 * MS) == UINT64_MAX);

    /* Receive direction: held inside the wrapper until rx_burst passes it. */
    send_range(&pr.p, 2, 1, 10 * MS);
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 10 * MS), 0);
    CHECK(pr.f.dev.ops->service(&pr.f.dev, 10 * MS) == 15 * MS);
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 15 * MS - 1), 0);
    uint32_t seq = 0;
    CHECK_EQ(recv_seqs(&pr.f, &seq, 1, 15 * MS), 1);
    CHECK_EQ(seq, 2);
    CHECK(pair_close(&pr));
}

TEST(delay_queue_is_bounded)
{
    struct pair pr;
    CHECK(pair_open(&pr, "delay=1,qlen=8") == 0);
    send_range(&pr.f, 0, 20, 0);
    CHECK_EQ(pr.f.ctr.fault_delay, 8);
    CHECK_EQ(pr.f.ctr.fault_drop, 12);
    pr.f.dev.ops->service(&pr.f.dev, MS);
    CHECK_EQ(recv_seqs(&pr.p, NULL, 0, MS), 8);
    CHECK(pair_close(&pr));
}

TEST(reorder_changes_order_loses_nothing)
{
    struct pair pr;
    CHECK(pair_open(&pr, "reorder=0.2,seed=3") == 0);
    static uint32_t seqs[1200];
    static uint8_t seen[1000];
    uint32_t got = 0;
    for (uint32_t i = 0; i < 1000; i += 50) {
        send_range(&pr.f, i, 50, i);
        got += recv_seqs(&pr.p, seqs + got, 1200 - got, i);
    }
    pr.f.dev.ops->service(&pr.f.dev, 1000 * MS);   /* a last held frame */
    got += recv_seqs(&pr.p, seqs + got, 1200 - got, 1000 * MS);
    CHECK_EQ(got, 1000);
    uint32_t inversions = 0;
    for (uint32_t i = 0; i < got; i++) {
        CHECK(seqs[i] < 1000 && !seen[seqs[i]]);
        seen[seqs[i]] = 1;
        if (i && seqs[i] < seqs[i - 1])
            inversions++;
    }
    /* Each held frame follows its successor: one inversion per hold, except
     * a hold at the very end, which nothing followed. */
    CHECK(inversions > 100);
    CHECK(inversions == pr.f.ctr.fault_reorder || inversions + 1 == pr.f.ctr.fault_reorder);
    CHECK(pair_close(&pr));
}

TEST(reorder_held_frame_follows_next)
{
    struct pair pr;
    CHECK(pair_open(&pr, "reorder=1,hold_ms=1") == 0);
    send_range(&pr.f, 0, 1, 0);              /* held */
    CHECK_EQ(memlink_pending(&pr.p.dev), 0);
    send_range(&pr.f, 1, 1, 10);             /* goes, then the held one */
    uint32_t seqs[4];
    CHECK_EQ(recv_seqs(&pr.p, seqs, 4, 10), 2);
    CHECK_EQ(seqs[0], 1);
    CHECK_EQ(seqs[1], 0);
    send_range(&pr.f, 2, 1, 20);             /* held; nothing follows */
    CHECK(pr.f.dev.ops->service(&pr.f.dev, 30) == 20 + MS);
    pr.f.dev.ops->service(&pr.f.dev, 20 + MS);
    CHECK_EQ(recv_seqs(&pr.p, seqs, 4, 20 + MS), 1);
    CHECK_EQ(seqs[0], 2);
    CHECK(pair_close(&pr));
}

static int popcount8(uint8_t v)
{
    int n = 0;
    for (; v; v &= (uint8_t)(v - 1))
        n++;
    return n;
}

TEST(corrupt_flips_exactly_one_bit_past_ethernet)
{
    struct pair pr;
    CHECK(pair_open(&pr, "corrupt=1,seed=9") == 0);
    uint8_t want[FRAME_LEN];
    for (uint32_t round = 0; round < 200; round++) {
        send_range(&pr.f, round, 1, round);
        struct pkt *in;
        CHECK_EQ(pr.p.dev.ops->rx_burst(&pr.p.dev, &in, 1, round), 1);
        CHECK_EQ(in->len, FRAME_LEN);
        for (int i = 0; i < FRAME_LEN; i++)
            want[i] = (uint8_t)(i * 13);
        wr32(want + 14, round);
        int bits = 0, first = -1;
        for (int i = 0; i < FRAME_LEN; i++) {
            int b = popcount8(pkt_data(in)[i] ^ want[i]);
            if (b && first < 0)
                first = i;
            bits += b;
        }
        pkt_free(in);
        CHECK_EQ(bits, 1);
        CHECK(first >= 14);
    }
    CHECK_EQ(pr.f.ctr.fault_corrupt, 200);
    CHECK(pair_close(&pr));
}

TEST(blackout_window_drops_all)
{
    struct pair pr;
    CHECK(pair_open(&pr, "blackout=10:5,blackout=30:1") == 0);
    uint64_t t0 = 1000 * MS;
    uint32_t got = 0;
    for (uint32_t ms = 0; ms < 40; ms++) {
        send_range(&pr.f, ms, 1, t0 + ms * MS);
        got += recv_seqs(&pr.p, NULL, 0, t0 + ms * MS);
    }
    CHECK_EQ(got, 40 - 5 - 1);
    CHECK_EQ(pr.f.ctr.fault_drop, 6);
    CHECK(pair_close(&pr));
}

TEST(dir_tx_leaves_rx_alone)
{
    struct pair pr;
    CHECK(pair_open(&pr, "loss=1,dir=tx") == 0);
    send_range(&pr.p, 0, 10, 0);
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 0), 10);
    send_range(&pr.f, 0, 10, 0);
    CHECK_EQ(recv_seqs(&pr.p, NULL, 0, 0), 0);
    CHECK(pair_close(&pr));

    CHECK(pair_open(&pr, "loss=1,dir=rx") == 0);
    send_range(&pr.f, 0, 10, 0);
    CHECK_EQ(recv_seqs(&pr.p, NULL, 0, 0), 10);
    send_range(&pr.p, 0, 10, 0);
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 0), 0);
    CHECK(pair_close(&pr));
}

TEST(close_frees_held_delayed_and_queued)
{
    struct pair pr;
    CHECK(pair_open(&pr, "delay=3,reorder=0.5,dup=0.5,seed=5") == 0);
    send_range(&pr.f, 0, 40, 0);
    send_range(&pr.p, 0, 40, 0);
    CHECK_EQ(recv_seqs(&pr.f, NULL, 0, 0), 0);
    /* Pull only a few so the wrapper keeps some ready frames queued. */
    struct pkt *in[2];
    uint16_t n = pr.f.dev.ops->rx_burst(&pr.f.dev, in, 2, 5 * MS);
    CHECK_EQ(n, 2);
    pkt_free(in[0]);
    pkt_free(in[1]);
    CHECK(pr.f.pool.avail < POOL_COUNT);
    CHECK(pair_close(&pr));
}

TEST(mtu_flags_and_service_sync_from_inner)
{
    struct pair pr;
    CHECK(end_open(&pr.f, "fault:loss=0+memlink:sync,mtu=9000") == 0);
    CHECK_EQ(pr.f.dev.mtu, 9000);
    CHECK(!(pr.f.dev.flags & DEV_F_LINK_UP));
    CHECK(end_open(&pr.p, "memlink:sync") == 0);
    pr.f.dev.ops->service(&pr.f.dev, 0);
    CHECK(pr.f.dev.flags & DEV_F_LINK_UP);
    struct pollfd fds[2];
    CHECK_EQ(pr.f.dev.ops->poll_fds(&pr.f.dev, fds, 2), 0);
    CHECK(pr.f.dev.ops->pool_mem(&pr.f.dev, 4096) == NULL);
    CHECK(pair_close(&pr));
}

TEST(nested_fault_specs)
{
    struct pair pr;
    CHECK(end_open(&pr.f, "fault:dup=1+fault:dup=1+memlink:nest") == 0);
    CHECK(end_open(&pr.p, "memlink:nest") == 0);
    send_range(&pr.f, 0, 3, 0);
    CHECK_EQ(recv_seqs(&pr.p, NULL, 0, 0), 12);
    CHECK(pair_close(&pr));
}

TEST(bad_specs_fail_cleanly)
{
    struct end e;
    CHECK(end_open(&e, "fault:loss=2+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:loss=-0.1+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:loss=abc+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:loss=0.1") != 0);
    CHECK(end_open(&e, "fault:loss=0.1+") != 0);
    CHECK(end_open(&e, "fault:bogus=1+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:dir=up+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:blackout=5+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:delay=x+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:qlen=99999999+memlink:bad") != 0);
    CHECK(end_open(&e, "fault:loss=0.1+nosuch:x") != 0);
    CHECK(end_open(&e, "fault:blackout=1:1,blackout=1:1,blackout=1:1,blackout=1:1,"
                       "blackout=1:1,blackout=1:1,blackout=1:1,blackout=1:1,"
                       "blackout=1:1+memlink:bad") != 0);
    /* The failed opens left the link name free for a good one. */
    CHECK(end_open(&e, "fault:loss=0.1,seed=0x10+memlink:bad,end=a") == 0);
    dev_close(&e.dev);
    pkt_pool_fini(&e.pool);
}

HARNESS_MAIN()
