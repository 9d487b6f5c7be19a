/* Retransmission timer computation (RFC 6298) with Karn's algorithm left to
 * the caller (it only feeds samples from segments never retransmitted, or
 * from timestamps, RFC 7323 4). Microseconds throughout. */
#ifndef UST_TCP_RTT_H
#define UST_TCP_RTT_H

#include <stdint.h>

#define TCP_RTO_INITIAL_US 1000000u   /* RFC 6298 2.1 */
#define TCP_RTO_MIN_US 200000u        /* Linux's floor; RFC 6298 2.4 says 1 s, "MAY" lower */
#define TCP_RTO_MAX_US 120000000u     /* RFC 6298 2.5: at least 60 s */
/* RFC 6298 G, the clock granularity. Timers run on a wheel of ~1.05 ms
 * ticks that fire at most one tick late, so a 1 ms G never makes the RTO
 * effectively shorter than SRTT plus one tick. */
#define TCP_RTO_GRANULARITY_US 1000u

struct tcp_rtt {
    uint32_t srtt_us;         /* 0 = no sample yet */
    uint32_t rttvar_us;
    uint32_t rto_us;          /* current RTO, before backoff */
    uint32_t min_rtt_us;      /* lowest sample seen (RACK uses it) */
    uint32_t latest_us;
    uint8_t backoff;          /* number of consecutive RTO expirations */
    uint32_t rto_min_us, rto_max_us;
};

void rtt_init(struct tcp_rtt *r, uint32_t rto_min_us, uint32_t rto_max_us);
/* RFC 6298 2.2/2.3 (first and later measurements), 2.4 bounds. Clears backoff. */
void rtt_sample(struct tcp_rtt *r, uint32_t rtt_us);
/* The timeout to arm now: rto << backoff, capped at rto_max (RFC 6298 5.5). */
uint32_t rtt_timeout_us(const struct tcp_rtt *r);
/* RFC 6298 5.5: the timer expired; double (bounded count). */
void rtt_backoff(struct tcp_rtt *r);

#endif
