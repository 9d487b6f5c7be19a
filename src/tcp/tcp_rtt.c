/* Retransmission timeout estimation, RFC 6298. All integer: the smoothing
 * gains alpha = 1/8 and beta = 1/4 are applied as (7*srtt + r)/8 and
 * (3*rttvar + |srtt - r|)/4 in 64 bits, truncating. */
#include "tcp/tcp_rtt.h"

#define RTT_K 4u   /* RFC 6298 2.2 */

void rtt_init(struct tcp_rtt *r, uint32_t rto_min_us, uint32_t rto_max_us)
{
    if (rto_max_us < rto_min_us)
        rto_max_us = rto_min_us;
    *r = (struct tcp_rtt){
        .rto_min_us = rto_min_us,
        .rto_max_us = rto_max_us,
    };
    /* RFC 6298 2.1: 1 s until the first measurement, within our bounds. */
    uint32_t rto = TCP_RTO_INITIAL_US;
    if (rto < rto_min_us)
        rto = rto_min_us;
    if (rto > rto_max_us)
        rto = rto_max_us;
    r->rto_us = rto;
}

static uint32_t rtt_clamp_rto(const struct tcp_rtt *r, uint64_t rto)
{
    /* RFC 6298 2.4 (lower bound, Linux's 200 ms by default) and 2.5. */
    if (rto < r->rto_min_us)
        rto = r->rto_min_us;
    if (rto > r->rto_max_us)
        rto = r->rto_max_us;
    return (uint32_t)rto;
}

static void rtt_first_sample(struct tcp_rtt *r, uint32_t m)
{
    /* RFC 6298 2.2 */
    r->srtt_us = m;
    r->rttvar_us = m / 2;
}

static void rtt_next_sample(struct tcp_rtt *r, uint32_t m)
{
    /* RFC 6298 2.3: RTTVAR first, from the old SRTT. */
    uint32_t diff = r->srtt_us > m ? r->srtt_us - m : m - r->srtt_us;
    r->rttvar_us = (uint32_t)((3ull * r->rttvar_us + diff) / 4u);
    r->srtt_us = (uint32_t)((7ull * r->srtt_us + m) / 8u);
}

static void rtt_update_min(struct tcp_rtt *r, uint32_t m)
{
    /* A plain all-time minimum. Linux keeps a windowed minimum (10 s for
     * RACK, 5 min for TCP) so a route change to a longer path is noticed;
     * with a plain minimum RACK's reordering window may stay too small. */
    if (r->min_rtt_us == 0 || m < r->min_rtt_us)
        r->min_rtt_us = m;
}

void rtt_sample(struct tcp_rtt *r, uint32_t rtt_us)
{
    /* 0 would read as "no sample yet" in srtt and min_rtt. */
    uint32_t m = rtt_us ? rtt_us : 1;
    if (r->srtt_us == 0)
        rtt_first_sample(r, m);
    else
        rtt_next_sample(r, m);
    r->latest_us = m;
    rtt_update_min(r, m);
    uint64_t var_term = (uint64_t)RTT_K * r->rttvar_us;
    if (var_term < TCP_RTO_GRANULARITY_US)
        var_term = TCP_RTO_GRANULARITY_US;
    r->rto_us = rtt_clamp_rto(r, (uint64_t)r->srtt_us + var_term);
    /* RFC 6298 5.7 note: a valid sample after backoff collapses it. */
    r->backoff = 0;
}

uint32_t rtt_timeout_us(const struct tcp_rtt *r)
{
    /* RFC 6298 5.5, 2.5: doubled per expiration, never past the maximum. */
    uint64_t rto = r->rto_us;
    for (unsigned i = 0; i < r->backoff && rto < r->rto_max_us; i++)
        rto <<= 1;
    return rto > r->rto_max_us ? r->rto_max_us : (uint32_t)rto;
}

void rtt_backoff(struct tcp_rtt *r)
{
    /* Keeps counting past the cap: the core gives up after R2 expirations
     * (RFC 9293 3.8.3); only the counter's own range bounds it. */
    if (r->backoff < UINT8_MAX)
        r->backoff++;
}
