/* TIME-WAIT records: table mechanics (hash, FIFO expiry, recycling,
 * restart) and the per-segment decisions (RFC 9293 3.10.7.4, RFC 1337,
 * RFC 6191, RFC 7323). */
#include <time.h>

#include "harness.h"
#include "tcp/tcp_timewait.h"

#define SEC 1000000000ULL
#define MSL2 (60 * SEC)

static struct tcp_tuple tup(uint32_t n)
{
    struct tcp_tuple t = {.laddr = addr_from_v4(0x0a000001), .raddr = addr_from_v4(0x0a100000 + (n >> 16)),
                          .lport = 80, .rport = (uint16_t)n};
    return t;
}

static struct tcp_tw *ins(struct tcp_tw_table *t, uint32_t n, uint64_t now)
{
    struct tcp_tuple k = tup(n);
    return tw_insert(t, &k, 1000 + n, 5000 + n, 0, 0, 0, 100, now);
}

static int present(struct tcp_tw_table *t, uint32_t n)
{
    struct tcp_tuple k = tup(n);
    return tw_lookup(t, &k) != NULL;
}

TEST(init_rejects_zero_and_fini_is_safe)
{
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, 0, MSL2), -1);
    tw_fini(&t);
    CHECK(ins(&t, 1, 0) == NULL);
    CHECK_EQ(tw_next_expiry(&t), UINT64_MAX);
    CHECK_EQ(tw_init(&t, 5, MSL2), 0);
    CHECK_EQ(t.mask, 7);
    tw_fini(&t);
}

TEST(insert_lookup_remove)
{
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, 16, MSL2), 0);
    struct tcp_tw *a = ins(&t, 1, 0);
    ins(&t, 2, 0);
    CHECK(a != NULL);
    CHECK_EQ(t.used, 2);
    struct tcp_tuple k = tup(1);
    CHECK(tw_lookup(&t, &k) == a);
    CHECK_EQ(a->snd_nxt, 1001);
    CHECK_EQ(a->rcv_nxt, 5001);
    CHECK_EQ(a->expires, MSL2);
    CHECK(!present(&t, 3));
    /* Same ports, other address: a different tuple. */
    k.laddr = addr_from_v4(0x0a000002);
    CHECK(tw_lookup(&t, &k) == NULL);
    tw_remove(&t, a);
    CHECK(!present(&t, 1));
    CHECK(present(&t, 2));
    CHECK_EQ(t.used, 1);
    tw_remove(&t, a);   /* a second remove is harmless */
    CHECK_EQ(t.used, 1);
    tw_fini(&t);
}

TEST(insert_same_tuple_replaces)
{
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, 4, MSL2), 0);
    ins(&t, 1, 0);
    struct tcp_tuple k = tup(1);
    struct tcp_tw *b = tw_insert(&t, &k, 7, 8, 1, 9, 0, 0, 10);
    CHECK_EQ(t.used, 1);
    CHECK(tw_lookup(&t, &k) == b);
    CHECK_EQ(b->rcv_nxt, 8);
    CHECK_EQ(tw_next_expiry(&t), 10 + MSL2);
    tw_fini(&t);
}

TEST(fifo_expiry_exact)
{
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, 16, MSL2), 0);
    for (uint32_t i = 0; i < 10; i++)
        ins(&t, i, i * SEC);
    CHECK_EQ(tw_next_expiry(&t), MSL2);
    CHECK_EQ(tw_expire(&t, MSL2 - 1), 0);
    CHECK_EQ(tw_expire(&t, MSL2), 1);
    CHECK(!present(&t, 0));
    CHECK(present(&t, 1));
    CHECK_EQ(tw_next_expiry(&t), MSL2 + SEC);
    CHECK_EQ(tw_expire(&t, MSL2 + 4 * SEC), 4);
    CHECK(!present(&t, 4));
    CHECK(present(&t, 5));
    CHECK_EQ(tw_expire(&t, UINT64_MAX), 5);
    CHECK_EQ(t.used, 0);
    CHECK_EQ(tw_next_expiry(&t), UINT64_MAX);
    /* Freed records are reused. */
    for (uint32_t i = 0; i < 16; i++)
        CHECK(ins(&t, 100 + i, 0) != NULL);
    CHECK_EQ(t.recycled, 0);
    tw_fini(&t);
}

TEST(full_table_recycles_oldest)
{
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, 4, MSL2), 0);
    for (uint32_t i = 0; i < 4; i++)
        ins(&t, i, i);
    CHECK_EQ(t.recycled, 0);
    CHECK(ins(&t, 10, 100) != NULL);
    CHECK_EQ(t.recycled, 1);
    CHECK_EQ(t.used, 4);
    CHECK(!present(&t, 0));
    CHECK(present(&t, 1) && present(&t, 10));
    ins(&t, 11, 101);
    CHECK(!present(&t, 1));
    CHECK_EQ(t.recycled, 2);
    CHECK_EQ(tw_next_expiry(&t), 2 + MSL2);
    tw_fini(&t);
}

TEST(restart_moves_to_tail)
{
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, 4, MSL2), 0);
    struct tcp_tw *a = ins(&t, 1, 0);
    ins(&t, 2, SEC);
    ins(&t, 3, 2 * SEC);
    tw_restart(&t, a, 10 * SEC);
    CHECK_EQ(a->expires, 10 * SEC + MSL2);
    CHECK(t.fifo_tail == a);
    CHECK_EQ(tw_next_expiry(&t), SEC + MSL2);
    CHECK_EQ(tw_expire(&t, 2 * SEC + MSL2), 2);
    CHECK(present(&t, 1));
    /* Full table: the restarted record is now the youngest, so not recycled. */
    ins(&t, 4, 11 * SEC);
    ins(&t, 5, 11 * SEC);
    ins(&t, 6, 11 * SEC);
    ins(&t, 7, 11 * SEC);
    CHECK(!present(&t, 1));   /* it was oldest after all three others went */
    CHECK_EQ(t.recycled, 1);
    /* Restart of the only record, and of the tail. */
    struct tcp_tw_table u;
    CHECK_EQ(tw_init(&u, 2, MSL2), 0);
    struct tcp_tw *x = ins(&u, 1, 0);
    tw_restart(&u, x, 5);
    CHECK(u.fifo_head == x && u.fifo_tail == x);
    CHECK_EQ(tw_expire(&u, 5 + MSL2), 1);
    tw_fini(&u);
    tw_fini(&t);
}

/* A record after a passive close by the peer: its FIN was seq 4999. */
static struct tcp_tw rec(int has_ts)
{
    struct tcp_tw tw = {.snd_nxt = 9000, .rcv_nxt = 5000, .has_ts = (uint8_t)has_ts, .ts_recent = 777,
                        .rcv_wnd = 1000};
    return tw;
}

static struct tcp_repr seg(uint8_t flags, uint32_t seq, uint32_t ack, int ts, uint32_t tsval)
{
    struct tcp_repr s = {.flags = flags, .seq = seq, .ack = ack, .win = 1000};
    s.opt.has_ts = (uint8_t)ts;
    s.opt.ts_val = tsval;
    return s;
}

TEST(classify_rst_dropped)
{
    struct tcp_tw tw = rec(1);
    struct tcp_repr s = seg(TCP_RST | TCP_ACK, 5000, 9000, 1, 800);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_DROP);
    s = seg(TCP_RST, 1, 0, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_DROP);
    tw = rec(0);
    s = seg(TCP_RST, 5000, 0, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_DROP);
}

TEST(classify_fin_retransmission_acked)
{
    struct tcp_tw tw = rec(1);
    struct tcp_repr s = seg(TCP_FIN | TCP_ACK, 4999, 9000, 1, 780);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
    CHECK(tw_is_fin_retransmit(&tw, &s, 1));
    /* FIN with its last data again. */
    s.seq = 4899;
    CHECK_EQ(tw_classify(&tw, &s, 101), TW_ACK);
    CHECK(tw_is_fin_retransmit(&tw, &s, 101));
    /* A FIN elsewhere draws an ACK but is no retransmission. */
    s.seq = 123456;
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
    CHECK(!tw_is_fin_retransmit(&tw, &s, 1));
    tw = rec(0);
    s = seg(TCP_FIN | TCP_ACK, 4999, 9000, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
    CHECK(tw_is_fin_retransmit(&tw, &s, 1));
}

TEST(classify_paws_old_duplicate_acked)
{
    struct tcp_tw tw = rec(1);
    struct tcp_repr s = seg(TCP_ACK, 5000, 9000, 1, 700);   /* in window, TSval older */
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_ACK);
    s = seg(TCP_ACK | TCP_PSH, 4000, 9000, 1, 700);
    CHECK_EQ(tw_classify(&tw, &s, 100), TW_ACK);
    /* Wraparound: 777 - 2^31 + 1 is "older". */
    s = seg(TCP_ACK, 5000, 9000, 1, 777u + 0x80000001u);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_ACK);
}

TEST(classify_pure_ack)
{
    struct tcp_tw tw = rec(1);
    /* Acceptable and nothing new: silent, no ACK loop. */
    struct tcp_repr s = seg(TCP_ACK, 5000, 9000, 1, 800);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_DROP);
    /* Out of window (old duplicate): ACK. */
    s.seq = 4000;
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_ACK);
    s.seq = 5000 + 1000;
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_ACK);
    /* Acknowledges something never sent: ACK (RFC 9293 3.10.7.4). */
    s = seg(TCP_ACK, 5000, 9001, 1, 800);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_ACK);
    /* Timestamps were in use and this one has none: RFC 7323 3.2 drop. */
    s = seg(TCP_ACK, 4000, 9000, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_DROP);
    /* No ACK bit, no SYN, no RST: dropped. */
    s = seg(0, 5000, 0, 1, 800);
    CHECK_EQ(tw_classify(&tw, &s, 0), TW_DROP);
}

TEST(classify_syn_with_timestamps)
{
    struct tcp_tw tw = rec(1);
    struct tcp_repr s = seg(TCP_SYN, 100, 0, 1, 778);   /* newer TSval, low seq */
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_REUSE);
    s = seg(TCP_SYN, 100, 0, 1, 777u + 0x7fffffffu);    /* newer across the wrap */
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_REUSE);
    /* Older TSval: RFC 6191 would drop; RFC 9293 3.10.7.4 challenge ACK. */
    s = seg(TCP_SYN, 100000, 0, 1, 776);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
    /* Equal TSval: falls back to the sequence number (RFC 6191 2). */
    s = seg(TCP_SYN, 5001, 0, 1, 777);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_REUSE);
    s = seg(TCP_SYN, 5000, 0, 1, 777);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
    /* Old incarnation had timestamps, the new SYN has none: by sequence. */
    s = seg(TCP_SYN, 6000, 0, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_REUSE);
    s = seg(TCP_SYN, 4000, 0, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
}

TEST(classify_syn_without_timestamps)
{
    struct tcp_tw tw = rec(0);
    struct tcp_repr s = seg(TCP_SYN, 5001, 0, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_REUSE);
    s.seq = 5000 + 0x7fffffffu;
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_REUSE);
    s.seq = 5000;
    CHECK(tw_classify(&tw, &s, 1) != TW_REUSE);
    s.seq = 4999;
    CHECK(tw_classify(&tw, &s, 1) != TW_REUSE);
    s.seq = 5000 + 0x80000000u;   /* "behind" modulo 2^32 */
    CHECK(tw_classify(&tw, &s, 1) != TW_REUSE);
    /* A SYN carrying timestamps when the old one had none: still by sequence. */
    s = seg(TCP_SYN, 4000, 0, 1, 999999);
    CHECK(tw_classify(&tw, &s, 1) != TW_REUSE);
    /* SYN,ACK is never a new connection request. */
    s = seg(TCP_SYN | TCP_ACK, 6000, 9000, 0, 0);
    CHECK_EQ(tw_classify(&tw, &s, 1), TW_ACK);
}

static double elapsed_s(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

TEST(many_records_bounded_time)
{
    enum { N = 100000 };
    struct tcp_tw_table t;
    CHECK_EQ(tw_init(&t, N, MSL2), 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint32_t i = 0; i < N; i++)
        CHECK(ins(&t, i, i * 1000ULL) != NULL);
    CHECK_EQ(t.used, N);
    for (uint32_t i = 0; i < N; i += 97)
        CHECK(present(&t, i));
    /* Another N inserts on a full table recycle N records, oldest first. */
    for (uint32_t i = N; i < 2 * N; i++)
        ins(&t, i, MSL2 / 2 + i);
    CHECK_EQ(t.recycled, N);
    CHECK(!present(&t, N - 1));
    CHECK(present(&t, N));
    CHECK_EQ(tw_expire(&t, MSL2 / 2 + MSL2 + N + N / 2 - 1), N / 2);
    CHECK_EQ(tw_expire(&t, UINT64_MAX), N / 2);
    CHECK_EQ(t.used, 0);
    /* Generous bound (sanitizers, a loaded 2-core box): the point is no O(n^2). */
    CHECK(elapsed_s(&t0) < 5.0);
    tw_fini(&t);
}

HARNESS_MAIN()
