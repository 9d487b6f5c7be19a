/* RFC 6298 retransmission timer: exact integer expectations. */
#include "harness.h"
#include "tcp/tcp_rtt.h"

static void rtt_default(struct tcp_rtt *r)
{
    rtt_init(r, TCP_RTO_MIN_US, TCP_RTO_MAX_US);
}

TEST(init_state)
{
    struct tcp_rtt r;
    rtt_default(&r);
    CHECK_EQ(r.srtt_us, 0);
    CHECK_EQ(r.rto_us, 1000000);           /* RFC 6298 2.1 */
    CHECK_EQ(rtt_timeout_us(&r), 1000000);
    CHECK_EQ(r.backoff, 0);
    CHECK_EQ(r.min_rtt_us, 0);             /* 0 = unknown for RACK */
}

TEST(first_sample)
{
    struct tcp_rtt r;
    rtt_default(&r);
    rtt_sample(&r, 100000);
    CHECK_EQ(r.srtt_us, 100000);           /* SRTT = R */
    CHECK_EQ(r.rttvar_us, 50000);          /* RTTVAR = R/2 */
    CHECK_EQ(r.rto_us, 300000);            /* R + 4 * R/2 */
    CHECK_EQ(r.latest_us, 100000);
    CHECK_EQ(r.min_rtt_us, 100000);
}

TEST(first_sample_bounded_below)
{
    struct tcp_rtt r;
    rtt_default(&r);
    rtt_sample(&r, 10000);                 /* 10 + 20 ms < 200 ms floor */
    CHECK_EQ(r.srtt_us, 10000);
    CHECK_EQ(r.rttvar_us, 5000);
    CHECK_EQ(r.rto_us, TCP_RTO_MIN_US);
}

TEST(later_samples_exact)
{
    struct tcp_rtt r;
    rtt_default(&r);
    rtt_sample(&r, 100000);
    rtt_sample(&r, 120000);
    /* RTTVAR = 3/4 * 50000 + 1/4 * |100000 - 120000| = 42500 (old SRTT) */
    CHECK_EQ(r.rttvar_us, 42500);
    CHECK_EQ(r.srtt_us, 102500);           /* 7/8 * 100000 + 1/8 * 120000 */
    CHECK_EQ(r.rto_us, 102500 + 4 * 42500);
    rtt_sample(&r, 80000);
    CHECK_EQ(r.rttvar_us, (3 * 42500 + 22500) / 4);
    CHECK_EQ(r.srtt_us, (7 * 102500 + 80000) / 8);   /* 99687, truncated */
    CHECK_EQ(r.rto_us, 99687 + 4 * 37500);
    CHECK_EQ(r.min_rtt_us, 80000);
    CHECK_EQ(r.latest_us, 80000);
}

TEST(granularity_term)
{
    struct tcp_rtt r;
    rtt_init(&r, 0, TCP_RTO_MAX_US);
    for (int i = 0; i < 100; i++)
        rtt_sample(&r, 1000);
    CHECK_EQ(r.srtt_us, 1000);
    CHECK_EQ(r.rttvar_us, 0);
    CHECK_EQ(r.rto_us, 1000 + TCP_RTO_GRANULARITY_US);   /* max(G, K*RTTVAR) */
}

TEST(upper_bound)
{
    struct tcp_rtt r;
    rtt_init(&r, 200000, 60000000);
    rtt_sample(&r, 50000000);              /* 50 s + 100 s > 60 s */
    CHECK_EQ(r.rto_us, 60000000);
    rtt_sample(&r, UINT32_MAX);            /* no overflow in the sums */
    CHECK_EQ(r.rto_us, 60000000);
    CHECK(r.srtt_us > 50000000);
}

TEST(backoff_doubles_and_caps)
{
    struct tcp_rtt r;
    rtt_init(&r, 200000, 10000000);
    rtt_sample(&r, 100000);                /* rto 300 ms */
    rtt_backoff(&r);
    CHECK_EQ(r.backoff, 1);
    CHECK_EQ(rtt_timeout_us(&r), 600000);
    rtt_backoff(&r);
    CHECK_EQ(rtt_timeout_us(&r), 1200000);
    rtt_backoff(&r);
    rtt_backoff(&r);
    rtt_backoff(&r);
    CHECK_EQ(rtt_timeout_us(&r), 9600000);
    rtt_backoff(&r);
    CHECK_EQ(rtt_timeout_us(&r), 10000000);   /* capped at rto_max */
    for (int i = 0; i < 300; i++)
        rtt_backoff(&r);
    CHECK_EQ(r.backoff, 255);              /* saturates, never wraps to 0 */
    CHECK_EQ(rtt_timeout_us(&r), 10000000);
    CHECK_EQ(r.rto_us, 300000);            /* the base RTO is untouched */
}

TEST(sample_clears_backoff)
{
    struct tcp_rtt r;
    rtt_default(&r);
    rtt_backoff(&r);
    rtt_backoff(&r);
    CHECK_EQ(rtt_timeout_us(&r), 4000000);   /* initial 1 s doubled twice */
    rtt_sample(&r, 100000);
    CHECK_EQ(r.backoff, 0);
    CHECK_EQ(rtt_timeout_us(&r), 300000);
}

TEST(min_rtt_is_lowest_sample)
{
    struct tcp_rtt r;
    rtt_default(&r);
    rtt_sample(&r, 50000);
    rtt_sample(&r, 30000);
    rtt_sample(&r, 40000);
    CHECK_EQ(r.min_rtt_us, 30000);
    CHECK_EQ(r.latest_us, 40000);
    rtt_sample(&r, 0);                     /* "0 us" is kept apart from "none" */
    CHECK_EQ(r.min_rtt_us, 1);
    CHECK(r.srtt_us > 0);
}

TEST(init_sanitises_bounds)
{
    struct tcp_rtt r;
    rtt_init(&r, 3000000, 1000000);        /* min above max */
    CHECK_EQ(r.rto_max_us, 3000000);
    CHECK_EQ(r.rto_us, 3000000);
    rtt_sample(&r, 1000);
    CHECK_EQ(rtt_timeout_us(&r), 3000000);
    rtt_init(&r, 0, 500000);               /* max below the 1 s initial */
    CHECK_EQ(r.rto_us, 500000);
}

HARNESS_MAIN()
