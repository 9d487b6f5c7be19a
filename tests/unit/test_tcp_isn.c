/* ISNs (RFC 6528), SYN cookies and their timestamp options, and ephemeral
 * port candidates (RFC 6056 Algorithm 3). */
#include "harness.h"
#include "tcp/tcp_isn.h"

#define SEC 1000000000ULL
#define STEP (64 * SEC)

static const struct hash_key key = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
static const uint16_t mss_table[8] = {536, 1220, 1380, 1440, 1452, 1460, 4312, 8960};

static struct tcp_tuple tuple_v4(uint32_t l, uint16_t lp, uint32_t r, uint16_t rp)
{
    struct tcp_tuple t = {.laddr = addr_from_v4(l), .raddr = addr_from_v4(r), .lport = lp, .rport = rp};
    return t;
}

static struct tcp_tuple tuple_random(uint64_t *rng)
{
    uint64_t a = xrand_next(rng), b = xrand_next(rng);
    return tuple_v4((uint32_t)a, (uint16_t)(a >> 32), (uint32_t)b, (uint16_t)(b >> 32));
}

static const uint64_t T0 = 1000 * STEP + 5 * SEC;

TEST(isn_same_inputs_same_value)
{
    struct tcp_tuple t = tuple_v4(0x0a000001, 80, 0x0a000002, 40000);
    CHECK_EQ(tcp_isn(&key, &t, T0), tcp_isn(&key, &t, T0));
}

TEST(isn_differs_per_tuple)
{
    struct tcp_tuple a = tuple_v4(0x0a000001, 80, 0x0a000002, 40000);
    struct tcp_tuple b = a, c = a, d = a, e = a;
    b.rport++;
    c.lport++;
    d.raddr = addr_from_v4(0x0a000003);
    e.laddr = addr_from_v4(0x0a000009);
    uint32_t ia = tcp_isn(&key, &a, T0);
    CHECK(ia != tcp_isn(&key, &b, T0));
    CHECK(ia != tcp_isn(&key, &c, T0));
    CHECK(ia != tcp_isn(&key, &d, T0));
    CHECK(ia != tcp_isn(&key, &e, T0));
    struct hash_key k2 = {1, 2};
    CHECK(ia != tcp_isn(&k2, &a, T0));
}

TEST(isn_advances_250000_per_second)
{
    struct tcp_tuple t = tuple_v4(0x0a000001, 80, 0x0a000002, 40000);
    uint32_t i0 = tcp_isn(&key, &t, T0);
    CHECK_EQ((uint32_t)(tcp_isn(&key, &t, T0 + SEC) - i0), 250000);
    CHECK_EQ((uint32_t)(tcp_isn(&key, &t, T0 + 4000) - i0), 1);
    CHECK_EQ((uint32_t)(tcp_isn(&key, &t, T0 + 3999) - i0), 0);
    /* M wraps modulo 2^32 after 2^32 * 4 us (about 4.8 hours). */
    CHECK_EQ((uint32_t)(tcp_isn(&key, &t, T0 + 4000ULL * (1ULL << 32)) - i0), 0);
}

TEST(cookie_round_trip_each_mss)
{
    struct tcp_tuple t = tuple_v4(0xc0a80001, 443, 0xc0a80002, 51000);
    for (int i = 0; i < 8; i++) {
        uint16_t got = 0;
        uint32_t c = syncookie_make(&key, &t, 0x11223344, mss_table[i], T0);
        CHECK_EQ(syncookie_check(&key, &t, 0x11223344, c, T0, &got), 0);
        CHECK_EQ(got, mss_table[i]);
        /* One more than the entry still maps to it; one less to the entry below. */
        c = syncookie_make(&key, &t, 0x11223344, (uint16_t)(mss_table[i] + 1), T0);
        CHECK_EQ(syncookie_check(&key, &t, 0x11223344, c, T0, &got), 0);
        CHECK_EQ(got, mss_table[i]);
        if (i > 0) {
            c = syncookie_make(&key, &t, 0x11223344, (uint16_t)(mss_table[i] - 1), T0);
            CHECK_EQ(syncookie_check(&key, &t, 0x11223344, c, T0, &got), 0);
            CHECK_EQ(got, mss_table[i - 1]);
        }
    }
}

TEST(cookie_mss_extremes)
{
    struct tcp_tuple t = tuple_v4(0xc0a80001, 443, 0xc0a80002, 51000);
    uint16_t got = 0;
    uint32_t c = syncookie_make(&key, &t, 7, 0, T0);
    CHECK_EQ(syncookie_check(&key, &t, 7, c, T0, &got), 0);
    CHECK_EQ(got, 536);
    c = syncookie_make(&key, &t, 7, 65535, T0);
    CHECK_EQ(syncookie_check(&key, &t, 7, c, T0, &got), 0);
    CHECK_EQ(got, 8960);
}

TEST(cookie_round_trip_random_tuples)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 10000; i++) {
        struct tcp_tuple t = tuple_random(&rng);
        uint32_t isn = (uint32_t)xrand_next(&rng);
        uint16_t mss = (uint16_t)xrand_next(&rng), got = 0;
        uint64_t now = xrand_next(&rng) >> 4;
        uint32_t c = syncookie_make(&key, &t, isn, mss, now);
        CHECK_EQ(syncookie_check(&key, &t, isn, c, now, &got), 0);
        CHECK(got <= mss || got == 536);
    }
}

TEST(cookie_rejects_wrong_inputs)
{
    uint64_t rng = 42;
    int accepted = 0;
    for (int i = 0; i < 2000; i++) {
        struct tcp_tuple t = tuple_random(&rng);
        uint32_t isn = (uint32_t)xrand_next(&rng);
        uint32_t c = syncookie_make(&key, &t, isn, 1460, T0);
        struct tcp_tuple u = t;
        u.rport ^= 1;
        struct tcp_tuple v = t;
        v.raddr.b[15] ^= 0x80;
        struct hash_key k2 = {key.k0 ^ 1, key.k1};
        accepted += syncookie_check(&key, &u, isn, c, T0, NULL) == 0;
        accepted += syncookie_check(&key, &v, isn, c, T0, NULL) == 0;
        accepted += syncookie_check(&key, &t, isn + 1, c, T0, NULL) == 0;
        accepted += syncookie_check(&k2, &t, isn, c, T0, NULL) == 0;
        accepted += syncookie_check(&key, &t, isn, c ^ 1, T0, NULL) == 0;
        /* The MSS bits are under the hash: raising them is caught. */
        accepted += syncookie_check(&key, &t, isn, c ^ (1u << 24), T0, NULL) == 0;
    }
    /* 12000 forgeries at ~3/2^24 each: zero expected. */
    CHECK_EQ(accepted, 0);
}

TEST(cookie_rejects_random_forgeries)
{
    struct tcp_tuple t = tuple_v4(0xc0a80001, 443, 0xc0a80002, 51000);
    uint64_t rng = 7;
    int accepted = 0;
    for (int i = 0; i < 100000; i++)
        accepted += syncookie_check(&key, &t, 1234, (uint32_t)xrand_next(&rng), T0, NULL) == 0;
    /* 100000 * 3/2^24 ~= 0.018 expected. */
    CHECK(accepted <= 1);
}

TEST(cookie_age_window)
{
    struct tcp_tuple t = tuple_v4(0xc0a80001, 443, 0xc0a80002, 51000);
    uint16_t got;
    uint32_t c = syncookie_make(&key, &t, 99, 1460, T0);
    CHECK_EQ(syncookie_check(&key, &t, 99, c, T0, &got), 0);
    CHECK_EQ(syncookie_check(&key, &t, 99, c, T0 + 64 * SEC, &got), 0);
    CHECK_EQ(syncookie_check(&key, &t, 99, c, T0 + 128 * SEC, &got), 0);
    CHECK_EQ(syncookie_check(&key, &t, 99, c, T0 + 200 * SEC, &got), -1);
    CHECK_EQ(syncookie_check(&key, &t, 99, c, T0 + 32 * STEP, &got), -1);   /* 5-bit field wrapped */
    /* From the future: a cookie made one or more steps after now. */
    uint32_t fut = syncookie_make(&key, &t, 99, 1460, T0 + STEP);
    CHECK_EQ(syncookie_check(&key, &t, 99, fut, T0, &got), -1);
    fut = syncookie_make(&key, &t, 99, 1460, T0 + 2 * STEP);
    CHECK_EQ(syncookie_check(&key, &t, 99, fut, T0, &got), -1);
}

TEST(cookie_near_time_zero)
{
    /* The counter must not wrap below 0 when the clock starts near 0. */
    struct tcp_tuple t = tuple_v4(1, 2, 3, 4);
    uint32_t c = syncookie_make(&key, &t, 5, 1460, 0);
    CHECK_EQ(syncookie_check(&key, &t, 5, c, 0, NULL), 0);
    CHECK_EQ(syncookie_check(&key, &t, 5, c, 2 * STEP, NULL), 0);
    CHECK_EQ(syncookie_check(&key, &t, 5, c, 3 * STEP, NULL), -1);
}

static void ts_round_trip(HARNESS_ARGS, uint32_t clock, uint8_t ws, uint8_t sack)
{
    struct syncookie_opts o = {.mss = 1460, .wscale = ws, .sack_ok = sack, .has_ts = 1}, d;
    uint32_t ts = syncookie_ts_encode(clock, &o);
    /* Never ahead of the clock, at most 63 ticks behind. */
    CHECK((int32_t)(clock - ts) >= 0 && (int32_t)(clock - ts) < 64);
    syncookie_ts_decode(ts, &d);
    CHECK_EQ(d.wscale, ws);
    CHECK_EQ(d.sack_ok, sack);
    CHECK_EQ(d.has_ts, 1);
}

TEST(cookie_ts_round_trip)
{
    static const uint32_t clocks[] = {0, 1, 63, 64, 1000, 0x7fffffff, 0xffffffc0, 0xffffffff, 123456789};
    for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++)
        for (uint8_t ws = 0; ws <= 15; ws++)
            for (uint8_t sack = 0; sack <= 1; sack++) {
                ts_round_trip(HARNESS_PASS, clocks[c], ws, sack);
                CHECK_OK();
            }
}

TEST(cookie_ts_clamps_wscale_and_rejects_unmarked)
{
    struct syncookie_opts o = {.wscale = 200, .sack_ok = 1, .has_ts = 1}, d;
    syncookie_ts_decode(syncookie_ts_encode(5000, &o), &d);
    CHECK_EQ(d.wscale, 14);   /* RFC 7323 2.3 */
    /* An echo without the marker bit was not ours: no options. */
    syncookie_ts_decode(0x1f, &d);
    CHECK_EQ(d.has_ts, 0);
    CHECK_EQ(d.wscale, 15);
    CHECK_EQ(d.sack_ok, 0);
}

TEST(port_candidate_in_range)
{
    uint64_t rng = 3;
    union ip_addr l = addr_from_v4(0x0a000001);
    for (int i = 0; i < 10000; i++) {
        union ip_addr r = addr_from_v4((uint32_t)xrand_next(&rng));
        uint16_t lo = (uint16_t)(xrand_next(&rng) | 1024), hi = (uint16_t)(lo + (xrand_next(&rng) & 0xfff));
        if (hi < lo)
            hi = 65535;
        uint16_t p = tcp_port_candidate(&key, &l, &r, (uint16_t)i, (uint32_t)i, lo, hi);
        CHECK(p >= lo && p <= hi);
    }
    union ip_addr r = addr_from_v4(0x0a000002);
    CHECK_EQ(tcp_port_candidate(&key, &l, &r, 80, 0, 5000, 5000), 5000);
    /* The full range (65536 ports, no 16-bit overflow): the counter wraps it exactly. */
    CHECK_EQ(tcp_port_candidate(&key, &l, &r, 80, 9, 0, 65535), tcp_port_candidate(&key, &l, &r, 80, 9 + 65536, 0, 65535));
    CHECK(tcp_port_candidate(&key, &l, &r, 80, 9, 0, 65535) != tcp_port_candidate(&key, &l, &r, 80, 10, 0, 65535));
    uint16_t p = tcp_port_candidate(&key, &l, &r, 80, 0, 60999, 32768);       /* swapped bounds */
    CHECK(p >= 32768 && p <= 60999);
}

TEST(port_candidate_varies_and_is_stable)
{
    union ip_addr l = addr_from_v4(0x0a000001), r = addr_from_v4(0x0a000002), r2 = addr_from_v4(0x0a000003);
    uint16_t a = tcp_port_candidate(&key, &l, &r, 80, 17, 32768, 60999);
    CHECK_EQ(tcp_port_candidate(&key, &l, &r, 80, 17, 32768, 60999), a);
    /* The counter steps through the range one by one (RFC 6056 3.3.3). */
    uint16_t b = tcp_port_candidate(&key, &l, &r, 80, 18, 32768, 60999);
    CHECK(b == a + 1 || (a == 60999 && b == 32768));
    /* Different destinations start at different offsets (with 28232 ports,
     * count differences over many to avoid a 1/28232 coincidence failing). */
    int diff_rport = 0, diff_raddr = 0;
    for (uint16_t i = 0; i < 64; i++) {
        uint16_t base = tcp_port_candidate(&key, &l, &r, (uint16_t)(1000 + i), 17, 32768, 60999);
        diff_rport += base != tcp_port_candidate(&key, &l, &r, (uint16_t)(2000 + i), 17, 32768, 60999);
        union ip_addr ri = addr_from_v4(0x0b000000u + i);
        diff_raddr += base != tcp_port_candidate(&key, &l, &ri, (uint16_t)(1000 + i), 17, 32768, 60999);
    }
    CHECK(diff_rport >= 62);
    CHECK(diff_raddr >= 62);
    CHECK(a != tcp_port_candidate(&key, &l, &r2, 80, 17, 32768, 60999) ||
          a != tcp_port_candidate(&key, &l, &r, 81, 17, 32768, 60999));
}

HARNESS_MAIN()
