/* The in-memory link and the device registry (dev_open, dev_args_each). */
#include "harness.h"

#include "dev/dev.h"
#include "dev/memlink.h"
#include "wire/wire.h"

#define POOL_COUNT 64

struct end {
    struct pkt_pool pool;
    struct ust_counters ctr;
    struct dev dev;
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

static void end_close(struct end *e)
{
    dev_close(&e->dev);
    pkt_pool_fini(&e->pool);
}

/* A 64-byte frame whose bytes 14..17 carry seq. */
static struct pkt *frame(struct end *e, uint32_t seq, uint16_t len)
{
    struct pkt *p = pkt_alloc(&e->pool);
    if (!p)
        return NULL;
    uint8_t *b = pkt_put(p, len);
    for (uint16_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 7 + seq);
    if (len >= 18)
        wr32(b + 14, seq);
    return p;
}

static uint16_t send_seq(struct end *e, uint32_t seq, uint16_t len, uint64_t now)
{
    struct pkt *p = frame(e, seq, len);
    return p ? e->dev.ops->tx_burst(&e->dev, &p, 1, now) : 0;
}

static uint16_t recv_all(struct end *e, uint32_t *seqs, uint16_t max, uint64_t now)
{
    struct pkt *in[POOL_COUNT];
    uint16_t n = e->dev.ops->rx_burst(&e->dev, in, max < POOL_COUNT ? max : POOL_COUNT, now);
    for (uint16_t i = 0; i < n; i++) {
        if (seqs)
            seqs[i] = in[i]->len >= 18 ? rd32(pkt_data(in[i]) + 14) : UINT32_MAX;
        pkt_free(in[i]);
    }
    return n;
}

TEST(both_directions_in_order)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:bd") == 0);
    CHECK(end_open(&b, "memlink:bd") == 0);
    CHECK(a.dev.flags & DEV_F_LINK_UP);
    CHECK(b.dev.flags & DEV_F_LINK_UP);
    for (uint32_t i = 0; i < 3; i++)
        CHECK_EQ(send_seq(&a, 100 + i, 64, 0), 1);
    CHECK_EQ(send_seq(&b, 7, 60, 0), 1);
    CHECK_EQ(memlink_pending(&b.dev), 3);
    CHECK_EQ(memlink_pending(&a.dev), 1);
    /* In flight, the frames still occupy the sender's buffers. */
    CHECK_EQ(a.pool.avail, POOL_COUNT - 3);

    struct pkt *in[8];
    CHECK_EQ(b.dev.ops->rx_burst(&b.dev, in, 8, 0), 3);
    for (uint32_t i = 0; i < 3; i++) {
        CHECK(in[i]->pool == &b.pool);
        CHECK_EQ(in[i]->len, 64);
        CHECK_EQ(rd32(pkt_data(in[i]) + 14), 100 + i);
        CHECK_EQ(pkt_data(in[i])[20], (uint8_t)(20 * 7 + 100 + i));
        pkt_free(in[i]);
    }
    uint32_t seq;
    CHECK_EQ(recv_all(&a, &seq, 8, 0), 1);
    CHECK_EQ(seq, 7);
    CHECK_EQ(a.ctr.dev_tx, 3);
    CHECK_EQ(a.ctr.dev_tx_bytes, 192);
    CHECK_EQ(b.ctr.dev_rx, 3);
    CHECK_EQ(a.ctr.dev_rx, 1);
    CHECK_EQ(a.pool.avail, POOL_COUNT);
    CHECK_EQ(b.pool.avail, POOL_COUNT);
    end_close(&a);
    end_close(&b);
}

TEST(latency_holds_until_release)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:lat,end=a,latency_us=100") == 0);
    CHECK(end_open(&b, "memlink:lat,end=b") == 0);
    CHECK_EQ(send_seq(&a, 1, 64, 1000), 1);
    CHECK_EQ(send_seq(&a, 2, 64, 2000), 1);
    CHECK_EQ(memlink_pending(&b.dev), 2);
    CHECK_EQ(memlink_next_release(&b.dev), 1000 + 100000);
    CHECK_EQ(recv_all(&b, NULL, 8, 100999), 0);
    uint32_t seq[2];
    CHECK_EQ(recv_all(&b, seq, 8, 101000), 1);
    CHECK_EQ(seq[0], 1);
    CHECK_EQ(memlink_next_release(&b.dev), 102000);
    CHECK_EQ(recv_all(&b, seq, 8, 500000), 1);
    CHECK_EQ(seq[0], 2);
    CHECK_EQ(memlink_next_release(&b.dev), UINT64_MAX);
    /* b's own latency is zero: its frames are due at once. */
    CHECK_EQ(send_seq(&b, 3, 64, 7), 1);
    CHECK_EQ(memlink_next_release(&a.dev), 7);
    CHECK_EQ(recv_all(&a, NULL, 8, 7), 1);
    end_close(&a);
    end_close(&b);
}

TEST(rx_respects_burst_max)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:max") == 0);
    CHECK(end_open(&b, "memlink:max") == 0);
    for (uint32_t i = 0; i < 5; i++)
        CHECK_EQ(send_seq(&a, i, 64, 0), 1);
    uint32_t seq[8];
    CHECK_EQ(recv_all(&b, seq, 2, 0), 2);
    CHECK_EQ(seq[1], 1);
    CHECK_EQ(recv_all(&b, seq, 8, 0), 3);
    CHECK_EQ(seq[0], 2);
    end_close(&a);
    end_close(&b);
}

TEST(queue_bound_drops_and_counts)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:q,qlen=4") == 0);
    CHECK(end_open(&b, "memlink:q") == 0);
    struct pkt *out[6];
    for (uint32_t i = 0; i < 6; i++)
        CHECK((out[i] = frame(&a, i, 64)) != NULL);
    CHECK_EQ(a.dev.ops->tx_burst(&a.dev, out, 6, 0), 4);
    CHECK_EQ(memlink_pending(&b.dev), 4);
    CHECK_EQ(a.ctr.dev_tx_drop, 2);
    CHECK_EQ(a.pool.avail, POOL_COUNT - 4);
    CHECK_EQ(recv_all(&b, NULL, 8, 0), 4);
    CHECK_EQ(a.pool.avail, POOL_COUNT);
    end_close(&a);
    end_close(&b);
}

TEST(mtu_and_missing_peer_drop)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:mtu,mtu=100") == 0);
    CHECK_EQ(a.dev.mtu, 100);
    CHECK(!(a.dev.flags & DEV_F_LINK_UP));
    CHECK_EQ(send_seq(&a, 1, 64, 0), 0);      /* nobody at the other end */
    CHECK_EQ(a.ctr.dev_tx_drop, 1);
    CHECK(end_open(&b, "memlink:mtu") == 0);
    CHECK(a.dev.flags & DEV_F_LINK_UP);
    CHECK_EQ(send_seq(&a, 2, 114, 0), 1);     /* mtu + Ethernet header */
    CHECK_EQ(send_seq(&a, 3, 115, 0), 0);
    CHECK_EQ(a.ctr.dev_tx_drop, 2);
    end_close(&b);
    CHECK(!(a.dev.flags & DEV_F_LINK_UP));
    CHECK_EQ(a.pool.avail, POOL_COUNT);        /* in-flight frame freed */
    end_close(&a);
}

TEST(receiver_pool_empty_counts_nobuf)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:nobuf") == 0);
    CHECK(end_open(&b, "memlink:nobuf") == 0);
    struct pkt *hog[POOL_COUNT];
    for (int i = 0; i < POOL_COUNT; i++)
        CHECK((hog[i] = pkt_alloc(&b.pool)) != NULL);
    CHECK_EQ(send_seq(&a, 1, 64, 0), 1);
    CHECK_EQ(recv_all(&b, NULL, 8, 0), 0);
    CHECK_EQ(b.ctr.dev_rx_nobuf, 1);
    CHECK_EQ(a.pool.avail, POOL_COUNT);
    for (int i = 0; i < POOL_COUNT; i++)
        pkt_free(hog[i]);
    end_close(&a);
    end_close(&b);
}

TEST(close_frees_frames_in_flight)
{
    struct end a, b;
    CHECK(end_open(&a, "memlink:leak,latency_us=10") == 0);
    CHECK(end_open(&b, "memlink:leak,latency_us=10") == 0);
    for (uint32_t i = 0; i < 10; i++) {
        CHECK_EQ(send_seq(&a, i, 64, 0), 1);
        CHECK_EQ(send_seq(&b, i, 64, 0), 1);
    }
    CHECK_EQ(a.pool.avail, POOL_COUNT - 10);
    dev_close(&a.dev);
    CHECK_EQ(a.pool.avail, POOL_COUNT);
    CHECK_EQ(b.pool.avail, POOL_COUNT);
    CHECK_EQ(memlink_pending(&b.dev), 0);
    pkt_pool_fini(&a.pool);
    end_close(&b);
    /* Both ends closed: the name is free again. */
    CHECK(end_open(&a, "memlink:leak,end=b") == 0);
    end_close(&a);
}

TEST(open_errors)
{
    struct end a, b, c;
    CHECK(end_open(&a, "memlink:err") == 0);
    CHECK(end_open(&b, "memlink:err") == 0);
    CHECK(end_open(&c, "memlink:err") != 0);                /* both ends taken */
    CHECK(c.dev.ops == NULL);
    end_close(&b);
    CHECK(end_open(&c, "memlink:err,end=a") != 0);          /* a is taken */
    CHECK(end_open(&c, "memlink:err,end=b") == 0);
    end_close(&c);
    end_close(&a);
    CHECK(end_open(&c, "memlink:x,end=c") != 0);
    CHECK(end_open(&c, "memlink:x,qlen=0") != 0);
    CHECK(end_open(&c, "memlink:x,qlen=-1") != 0);
    CHECK(end_open(&c, "memlink:x,latency_us=abc") != 0);
    CHECK(end_open(&c, "memlink:x,mtu=20") != 0);
    CHECK(end_open(&c, "memlink:x,color=red") != 0);
    CHECK(end_open(&c, "memlink:") != 0);
    CHECK(end_open(&c, "memlink:0123456789012345678901234567890123456789") != 0);
}

TEST(link_table_is_bounded)
{
    static struct end e[MEMLINK_MAX_LINKS + 1];
    char spec[64];
    for (int i = 0; i < MEMLINK_MAX_LINKS; i++) {
        snprintf(spec, sizeof(spec), "memlink:bound%d", i);
        CHECK(end_open(&e[i], spec) == 0);
    }
    CHECK(end_open(&e[MEMLINK_MAX_LINKS], "memlink:one-too-many") != 0);
    end_close(&e[3]);
    CHECK(end_open(&e[MEMLINK_MAX_LINKS], "memlink:one-too-many") == 0);
    end_close(&e[MEMLINK_MAX_LINKS]);
    for (int i = 0; i < MEMLINK_MAX_LINKS; i++)
        if (i != 3)
            end_close(&e[i]);
}

TEST(l3_flag)
{
    struct end a;
    CHECK(end_open(&a, "memlink:l3link,l3,mtu=576") == 0);
    CHECK(a.dev.flags & DEV_F_L3);
    end_close(&a);
}

TEST(dev_open_unknown_kind)
{
    struct dev d;
    struct ust_counters ctr;
    CHECK(dev_open(&d, "nosuch:foo", &ctr) != 0);
    CHECK(d.ops == NULL);
    CHECK(dev_open(&d, "", &ctr) != 0);
    CHECK(dev_open(&d, "memlinkx:foo", &ctr) != 0);
    dev_close(&d);       /* harmless on a device that never opened */
}

TEST(memlink_api_rejects_other_devices)
{
    struct dev d;
    memset(&d, 0, sizeof(d));
    CHECK_EQ(memlink_pending(&d), -1);
    CHECK(memlink_next_release(&d) == UINT64_MAX);
}

struct args_seen {
    int n;
    char keys[8][16];
    char vals[8][16];
    int has_val[8];
};

static int args_collect(void *ctx, const char *key, const char *val)
{
    struct args_seen *s = ctx;
    if (s->n == 8)
        return -1;
    snprintf(s->keys[s->n], 16, "%s", key);
    s->has_val[s->n] = val != NULL;
    snprintf(s->vals[s->n], 16, "%s", val ? val : "");
    s->n++;
    return strcmp(key, "stop") == 0 ? 7 : 0;
}

TEST(args_each_splits_items)
{
    struct args_seen s = { 0 };
    CHECK_EQ(dev_args_each("name,a=1,,b=,c=x=y,", ',', args_collect, &s), 0);
    CHECK_EQ(s.n, 4);
    CHECK(strcmp(s.keys[0], "name") == 0 && !s.has_val[0]);
    CHECK(strcmp(s.keys[1], "a") == 0 && strcmp(s.vals[1], "1") == 0);
    CHECK(strcmp(s.keys[2], "b") == 0 && s.has_val[2] && s.vals[2][0] == 0);
    CHECK(strcmp(s.keys[3], "c") == 0 && strcmp(s.vals[3], "x=y") == 0);

    memset(&s, 0, sizeof(s));
    CHECK_EQ(dev_args_each("a;stop;c", ';', args_collect, &s), 7);
    CHECK_EQ(s.n, 2);
    CHECK_EQ(dev_args_each("", ',', args_collect, &s), 0);
    CHECK_EQ(dev_args_each(NULL, ',', args_collect, &s), 0);

    char big[600];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    CHECK(dev_args_each(big, ',', args_collect, &s) != 0);
}

HARNESS_MAIN()
