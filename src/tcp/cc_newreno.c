/* NewReno congestion control: RFC 5681 window arithmetic with the RFC 6582
 * recovery exit. Recovery pacing itself is PRR's (tcp_prr.c). */
#include "tcp/tcp_cc.h"

static void newreno_init(struct tcp_cc *cc)
{
    cc->bytes_acked = 0;
}

static void newreno_on_ack(struct tcp_cc *cc, uint32_t acked, uint32_t rtt_us, int app_limited, uint64_t now)
{
    (void)rtt_us;
    (void)now;
    /* RFC 7661 4.3 (non-validated phase): no growth while cwnd is unused. */
    if (app_limited || acked == 0)
        return;
    if (cc->cwnd < cc->ssthresh)
        acked = tcp_cc_slow_start(cc, acked);
    if (acked)
        tcp_cc_reno_avoid(cc, acked);
}

static uint32_t newreno_half_flight(const struct tcp_cc *cc, uint32_t flight)
{
    /* RFC 5681 3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS). */
    uint32_t half = flight / 2;
    uint64_t floor = 2ull * cc->mss;
    return half > floor ? half : (uint32_t)floor;
}

static void newreno_on_loss(struct tcp_cc *cc, uint32_t flight, uint64_t now)
{
    (void)now;
    cc->ssthresh = newreno_half_flight(cc, flight);
    /* RFC 6582 3.2 step 2 inflates cwnd to ssthresh + 3*SMSS; with PRR
     * pacing recovery (RFC 6937) cwnd is not used for sending until the
     * exit, so it simply holds the target. */
    cc->cwnd = cc->ssthresh;
    cc->bytes_acked = 0;
}

static void newreno_on_recovery_exit(struct tcp_cc *cc, uint64_t now)
{
    (void)now;
    /* RFC 6582 3.2 step 3, option (2): cwnd = ssthresh. Option (1) guards
     * against a burst when FlightSize is small; PRR already brought pipe
     * to ssthresh at the end of recovery (RFC 6937 3), so there is none. */
    cc->cwnd = cc->ssthresh;
    cc->bytes_acked = 0;
}

static void newreno_on_rto(struct tcp_cc *cc, uint32_t flight, uint64_t now)
{
    (void)now;
    /* RFC 5681 3.1: ssthresh per eq. 4 only when the segment has not been
     * resent by the timer already; a repeated timeout finds cwnd at the
     * loss window and keeps ssthresh. */
    if (cc->cwnd > cc->mss)
        cc->ssthresh = newreno_half_flight(cc, flight);
    cc->cwnd = cc->mss;   /* loss window LW = 1 SMSS */
    cc->bytes_acked = 0;
}

const struct tcp_cc_ops tcp_cc_newreno = {
    .name = "newreno",
    .init = newreno_init,
    .on_ack = newreno_on_ack,
    .on_loss = newreno_on_loss,
    .on_recovery_exit = newreno_on_recovery_exit,
    .on_rto = newreno_on_rto,
};
