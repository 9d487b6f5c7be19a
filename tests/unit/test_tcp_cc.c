/* Congestion control: RFC 6928 initial window, NewReno (RFC 5681/6582) and
 * CUBIC (RFC 9438) against a floating-point reference of its window curve. */
#include <math.h>

#include "harness.h"
#include "tcp/tcp_cc.h"

#define MSS 1460u
#define MS 1000000ull    /* ns */

/* One RTT of ACK clocking: a cwnd's worth of segments acked, one ACK per
 * `per_ack` segments, spread evenly over the RTT. */
static void ack_one_rtt(struct tcp_cc *cc, uint64_t *now, uint64_t rtt_ns, uint32_t per_ack, int app_limited)
{
    uint32_t segs = cc->cwnd / cc->mss;
    uint32_t acks = segs / per_ack ? segs / per_ack : 1;
    for (uint32_t i = 0; i < acks; i++) {
        *now += rtt_ns / acks;
        cc->ops->on_ack(cc, per_ack * cc->mss, (uint32_t)(rtt_ns / 1000), app_limited, *now);
    }
}

TEST(initial_window_rfc6928)
{
    CHECK_EQ(tcp_cc_initial_window(536), 5360);      /* 10 * 536 */
    CHECK_EQ(tcp_cc_initial_window(1460), 14600);
    CHECK_EQ(tcp_cc_initial_window(4000), 14600);    /* the 14600 cap */
    CHECK_EQ(tcp_cc_initial_window(8960), 17920);    /* 2 * MSS floor */
    struct tcp_cc cc;
    tcp_cc_init(&cc, &tcp_cc_newreno, 536);
    CHECK_EQ(cc.cwnd, 5360);
    CHECK(cc.ssthresh >= TCP_CC_CWND_MAX);
    tcp_cc_init(&cc, &tcp_cc_cubic, 8960);
    CHECK_EQ(cc.cwnd, 17920);
    CHECK(cc.ops == &tcp_cc_cubic);
}

TEST(find_by_name)
{
    CHECK(tcp_cc_find("cubic") == &tcp_cc_cubic);
    CHECK(tcp_cc_find("newreno") == &tcp_cc_newreno);
    CHECK(tcp_cc_find("reno") == &tcp_cc_newreno);
    CHECK(tcp_cc_find("bbr") == NULL);
    CHECK(tcp_cc_find(NULL) == NULL);
    CHECK(strcmp(tcp_cc_cubic.name, "cubic") == 0);
}

TEST(newreno_slow_start_doubles_per_rtt)
{
    struct tcp_cc cc;
    uint64_t now = 0;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    ack_one_rtt(&cc, &now, 10 * MS, 1, 0);
    CHECK_EQ(cc.cwnd, 20 * MSS);
    ack_one_rtt(&cc, &now, 10 * MS, 1, 0);
    CHECK_EQ(cc.cwnd, 40 * MSS);
    /* delayed ACKs (one per two segments): ABC with L = 2 SMSS still doubles */
    ack_one_rtt(&cc, &now, 10 * MS, 2, 0);
    CHECK_EQ(cc.cwnd, 80 * MSS);
    /* a stretch ACK buys at most L = 2 SMSS (RFC 3465 2.3) */
    cc.ops->on_ack(&cc, 10 * MSS, 0, 0, now);
    CHECK_EQ(cc.cwnd, 82 * MSS);
}

TEST(newreno_slow_start_stops_at_ssthresh)
{
    struct tcp_cc cc;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    cc.ssthresh = 15 * MSS;
    for (int i = 0; i < 10; i++)
        cc.ops->on_ack(&cc, MSS, 0, 0, 0);
    /* 5 ACKs reach ssthresh; the other 5 MSS are counted for CA */
    CHECK_EQ(cc.cwnd, 15 * MSS);
    CHECK_EQ(cc.bytes_acked, 5 * MSS);
}

TEST(newreno_avoidance_one_mss_per_rtt)
{
    struct tcp_cc cc;
    uint64_t now = 0;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    cc.cwnd = 20 * MSS;
    cc.ssthresh = 10 * MSS;
    ack_one_rtt(&cc, &now, 10 * MS, 1, 0);
    CHECK_EQ(cc.cwnd, 21 * MSS);
    ack_one_rtt(&cc, &now, 10 * MS, 1, 0);
    CHECK_EQ(cc.cwnd, 22 * MSS);
    ack_one_rtt(&cc, &now, 10 * MS, 2, 0);
    CHECK_EQ(cc.cwnd, 23 * MSS);
}

TEST(newreno_app_limited_no_growth)
{
    struct tcp_cc cc;
    uint64_t now = 0;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    ack_one_rtt(&cc, &now, 10 * MS, 1, 1);
    CHECK_EQ(cc.cwnd, 10 * MSS);
    cc.ssthresh = 5 * MSS;
    ack_one_rtt(&cc, &now, 10 * MS, 1, 1);
    CHECK_EQ(cc.cwnd, 10 * MSS);
}

TEST(newreno_loss_halves_and_exit)
{
    struct tcp_cc cc;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    cc.cwnd = 40 * MSS;
    cc.prior_cwnd = cc.cwnd;
    cc.prior_ssthresh = cc.ssthresh;
    cc.ops->on_loss(&cc, 40 * MSS, 0);
    CHECK_EQ(cc.ssthresh, 20 * MSS);            /* RFC 5681 eq. 4 */
    cc.ops->on_recovery_exit(&cc, 0);
    CHECK_EQ(cc.cwnd, 20 * MSS);                /* RFC 6582 3.2 step 3 (2) */
    cc.ops->on_loss(&cc, 3 * MSS, 0);
    CHECK_EQ(cc.ssthresh, 2 * MSS);             /* floor 2 SMSS */
}

TEST(newreno_rto_and_undo)
{
    struct tcp_cc cc;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    cc.cwnd = 40 * MSS;
    cc.ssthresh = 50 * MSS;
    cc.prior_cwnd = cc.cwnd;
    cc.prior_ssthresh = cc.ssthresh;
    cc.ops->on_rto(&cc, 30 * MSS, 0);
    CHECK_EQ(cc.cwnd, MSS);                     /* loss window */
    CHECK_EQ(cc.ssthresh, 15 * MSS);
    cc.ops->on_rto(&cc, 10 * MSS, 0);           /* repeated: ssthresh held */
    CHECK_EQ(cc.ssthresh, 15 * MSS);
    tcp_cc_undo(&cc);                           /* F-RTO: spurious */
    CHECK_EQ(cc.cwnd, 40 * MSS);
    CHECK_EQ(cc.ssthresh, 50 * MSS);
}

TEST(after_idle_restarts_at_iw)
{
    struct tcp_cc cc;
    tcp_cc_init(&cc, &tcp_cc_newreno, MSS);
    cc.cwnd = 100 * MSS;
    cc.ssthresh = 60 * MSS;
    tcp_cc_after_idle(&cc);
    CHECK_EQ(cc.cwnd, 14600);
    CHECK_EQ(cc.ssthresh, 60 * MSS);
    cc.cwnd = 5 * MSS;
    tcp_cc_after_idle(&cc);
    CHECK_EQ(cc.cwnd, 5 * MSS);                 /* min(IW, cwnd) */
    tcp_cc_init(&cc, &tcp_cc_cubic, MSS);
    cc.cwnd = 100 * MSS;
    tcp_cc_after_idle(&cc);
    CHECK_EQ(cc.cwnd, 14600);
    CHECK_EQ(cc.u.cubic.epoch_start, 0);
}

/* ---- CUBIC ---- */

/* RFC 9438 eq. 1 with windows in segments, t in seconds. */
static double cubic_ref(double w_max, double cwnd_epoch, double t)
{
    double k = cbrt((w_max - cwnd_epoch) / 0.4);
    return 0.4 * pow(t - k, 3) + w_max;
}

/* A CUBIC connection in CA at `segs` segments that has just lost a packet
 * and finished recovery at time *now. */
static void cubic_after_loss(struct tcp_cc *cc, uint32_t segs, uint64_t *now)
{
    tcp_cc_init(cc, &tcp_cc_cubic, MSS);
    cc->cwnd = segs * MSS;
    cc->ssthresh = segs * MSS;
    cc->ops->on_loss(cc, cc->cwnd, *now);
    cc->ops->on_recovery_exit(cc, *now);
}

TEST(cubic_loss_multiplies_by_beta)
{
    struct tcp_cc cc;
    uint64_t now = 5 * MS;
    cubic_after_loss(&cc, 1000, &now);
    CHECK_EQ(cc.cwnd, 700 * MSS);
    CHECK_EQ(cc.ssthresh, 700 * MSS);
    CHECK_EQ(cc.u.cubic.w_max, 1000 * MSS);
    cc.cwnd = 2 * MSS;
    cc.ops->on_loss(&cc, 2 * MSS, now);
    CHECK_EQ(cc.ssthresh, 2 * MSS);             /* floor */
}

TEST(cubic_follows_curve)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    const uint64_t rtt = 100 * MS;
    cubic_after_loss(&cc, 1000, &now);
    uint64_t t0 = now;
    double k = cbrt(1000 * 0.3 / 0.4);
    double worst = 0;
    for (int r = 0; r < 200; r++) {
        ack_one_rtt(&cc, &now, rtt, 1, 0);
        double t = (double)(now - t0) / 1e9;
        double want = cubic_ref(1000, 700, t);
        double got = (double)cc.cwnd / MSS;
        double err = fabs(got - want) / want;
        if (err > worst)
            worst = err;
        CHECK(err < 0.01);
        if (fabs(t - k) < 0.05)                 /* plateau at W_max around t = K */
            CHECK(fabs(got - 1000) < 10);
    }
    CHECK(cc.cwnd > 1400 * MSS);                /* convex: 0.4 * (20 - K)^3 + 1000 */
    CHECK_EQ(cc.u.cubic.k_ms, (uint32_t)(k * 1000));
    printf("  cubic curve: worst relative error %.4f\n", worst);
}

TEST(cubic_reno_friendly_region)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    const uint64_t rtt = 1 * MS;                /* small RTT and window */
    cubic_after_loss(&cc, 20, &now);
    uint64_t t0 = now;
    for (int r = 0; r < 10; r++)
        ack_one_rtt(&cc, &now, rtt, 1, 0);
    double t = (double)(now - t0) / 1e9;
    double got = (double)cc.cwnd / MSS;
    /* W_est grows by alpha = 9/17 segment per RTT (RFC 9438 eq. 4) */
    CHECK(fabs(got - (14 + 10 * 9.0 / 17)) < 1.0);
    CHECK(got > cubic_ref(20, 14, t) + 4);
    /* once W_est passes cwnd_prior (20), alpha is 1: Reno's 1 MSS per RTT */
    for (int r = 0; r < 100; r++)
        ack_one_rtt(&cc, &now, rtt, 1, 0);
    got = (double)cc.cwnd / MSS;
    CHECK(got > 105 && got < 125);
}

TEST(cubic_fast_convergence)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    cubic_after_loss(&cc, 1000, &now);
    cc.ops->on_loss(&cc, cc.cwnd, now);         /* again, below W_max */
    CHECK_EQ(cc.u.cubic.w_max, 700 * MSS * 17 / 20);   /* cwnd (1 + beta) / 2 */
    CHECK_EQ(cc.cwnd, 490 * MSS);
}

TEST(cubic_app_limited_no_growth)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    cubic_after_loss(&cc, 1000, &now);
    ack_one_rtt(&cc, &now, 100 * MS, 1, 0);     /* starts the epoch */
    uint32_t w = cc.cwnd;
    for (int r = 0; r < 100; r++)               /* 10 s application-limited */
        ack_one_rtt(&cc, &now, 100 * MS, 1, 1);
    CHECK_EQ(cc.cwnd, w);
    /* the curve's clock was stopped: no jump to where t = 10 s would be */
    ack_one_rtt(&cc, &now, 100 * MS, 1, 0);
    CHECK(cc.cwnd < w + 20 * MSS);
}

TEST(cubic_rto_then_convex_from_cwnd)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    tcp_cc_init(&cc, &tcp_cc_cubic, MSS);
    cc.cwnd = 100 * MSS;
    cc.ssthresh = 100 * MSS;
    cc.prior_cwnd = cc.cwnd;
    cc.prior_ssthresh = cc.ssthresh;
    cc.ops->on_rto(&cc, 100 * MSS, now);
    CHECK_EQ(cc.cwnd, MSS);
    CHECK_EQ(cc.ssthresh, 70 * MSS);
    cc.ops->on_rto(&cc, 100 * MSS, now);        /* repeated: held */
    CHECK_EQ(cc.ssthresh, 70 * MSS);
    while (cc.cwnd < cc.ssthresh)
        ack_one_rtt(&cc, &now, 100 * MS, 1, 0);
    /* slow start stopped at ssthresh; the rest of that RTT's ACKs are CA */
    CHECK(cc.cwnd >= 70 * MSS && cc.cwnd < 71 * MSS);
    CHECK_EQ(cc.u.cubic.k_ms, 0);               /* RFC 9438 4.8 */
    CHECK_EQ(cc.u.cubic.w_max, 70 * MSS);
    /* timeout during recovery: already reduced for this episode */
    cc.cwnd = 100 * MSS;
    cc.ops->on_loss(&cc, cc.cwnd, now);
    cc.ops->on_rto(&cc, 100 * MSS, now);
    CHECK_EQ(cc.ssthresh, 70 * MSS);
}

TEST(cubic_undo_restores)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    tcp_cc_init(&cc, &tcp_cc_cubic, MSS);
    cc.cwnd = 100 * MSS;
    cc.ssthresh = 80 * MSS;
    cc.u.cubic.w_max = 120 * MSS;
    cc.prior_cwnd = cc.cwnd;
    cc.prior_ssthresh = cc.ssthresh;
    cc.ops->on_loss(&cc, cc.cwnd, now);
    CHECK_EQ(cc.cwnd, 70 * MSS);
    tcp_cc_undo(&cc);
    CHECK_EQ(cc.cwnd, 100 * MSS);
    CHECK_EQ(cc.ssthresh, 80 * MSS);
    CHECK_EQ(cc.u.cubic.w_max, 120 * MSS);
}

TEST(cubic_no_overflow_big_window_long_time)
{
    struct tcp_cc cc;
    uint64_t now = 1000 * MS;
    tcp_cc_init(&cc, &tcp_cc_cubic, MSS);
    cc.cwnd = 1u << 30;
    cc.ssthresh = cc.cwnd;
    cc.ops->on_loss(&cc, cc.cwnd, now);
    cc.ops->on_recovery_exit(&cc, now);
    uint32_t prev = cc.cwnd;
    for (int step = 0; step < 2000; step++) {
        now += 5000 * MS;                        /* ~2.8 hours in total */
        cc.ops->on_ack(&cc, cc.cwnd / 8, 100000, 0, now);
        CHECK(cc.cwnd >= prev);
        CHECK(cc.cwnd <= TCP_CC_CWND_MAX);
        prev = cc.cwnd;
    }
    CHECK_EQ(cc.cwnd, TCP_CC_CWND_MAX);
    /* tiny MSS with a huge W_max: K near its maximum, still exact */
    tcp_cc_init(&cc, &tcp_cc_cubic, 1);
    cc.cwnd = TCP_CC_CWND_MAX;
    cc.ssthresh = cc.cwnd;
    cc.ops->on_loss(&cc, cc.cwnd, now);
    cc.ops->on_recovery_exit(&cc, now);
    cc.ops->on_ack(&cc, 1, 0, 0, now);
    double k = cbrt((double)(TCP_CC_CWND_MAX - cc.ssthresh) / 0.4);
    CHECK(fabs((double)cc.u.cubic.k_ms - k * 1000) <= 1.0);
    now += 10ull * 3600 * 1000 * MS;             /* ten hours later */
    cc.ops->on_ack(&cc, UINT32_MAX, UINT32_MAX, 0, now);
    CHECK(cc.cwnd <= TCP_CC_CWND_MAX);
    CHECK(cc.cwnd >= cc.ssthresh);
}

HARNESS_MAIN()
