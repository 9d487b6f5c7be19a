/* Proportional Rate Reduction, RFC 6937 3.1, with the PRR-SSRB bound and
 * the RFC 9937 (6937bis) rule that the fast retransmit always goes out. */
#include "tcp/tcp_prr.h"

void prr_start(struct tcp_prr *p, uint32_t flight)
{
    /* RFC 6937 3.1 "On entering recovery": RecoverFS = snd.nxt - snd.una. */
    p->recover_fs = flight;
    p->delivered = 0;
    p->out = 0;
}

static uint32_t prr_add_sat(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

/* pipe > ssthresh: send in proportion to what was delivered, so that when
 * all of RecoverFS has been delivered, ssthresh has been sent. The CEIL is
 * taken in whole segments, as in the RFC's examples (and Linux, which
 * counts packets): in bytes it would allow half a segment on the first
 * ACK of a halving and hold the fast retransmit back a whole ACK. */
static int64_t prr_proportional(const struct tcp_prr *p, uint32_t ssthresh, uint32_t mss)
{
    uint64_t fs = p->recover_fs ? p->recover_fs : 1;   /* hostile: no div by 0 */
    uint64_t seg = mss ? mss : 1;
    uint64_t den = fs * seg;
    uint64_t prod = (uint64_t)p->delivered * ssthresh;   /* < 2^64 */
    uint64_t segs = prod / den + (prod % den != 0);      /* CEIL */
    uint64_t bytes = segs * seg;
    if (segs > UINT32_MAX || bytes > UINT32_MAX)   /* hostile sizes: saturate */
        bytes = UINT32_MAX;
    return (int64_t)bytes - (int64_t)p->out;
}

/* pipe <= ssthresh: PRR-SSRB, grow back towards ssthresh no faster than
 * slow start (one extra MSS per ACK beyond what was delivered). */
static int64_t prr_slow_start_bound(const struct tcp_prr *p, uint32_t delivered, uint32_t pipe, uint32_t ssthresh,
                                    uint32_t mss)
{
    int64_t limit = (int64_t)p->delivered - (int64_t)p->out;
    if (limit < (int64_t)delivered)
        limit = delivered;
    limit += mss;
    int64_t room = (int64_t)ssthresh - (int64_t)pipe;
    return room < limit ? room : limit;
}

uint32_t prr_on_ack(struct tcp_prr *p, uint32_t delivered, uint32_t pipe, uint32_t ssthresh, uint32_t mss)
{
    p->delivered = prr_add_sat(p->delivered, delivered);
    int64_t sndcnt = pipe > ssthresh ? prr_proportional(p, ssthresh, mss)
                                     : prr_slow_start_bound(p, delivered, pipe, ssthresh, mss);
    /* RFC 9937 4: force the fast retransmit on entering recovery. */
    if (p->out == 0 && sndcnt <= 0)
        sndcnt = mss;
    if (sndcnt < 0)
        sndcnt = 0;
    return sndcnt > UINT32_MAX ? UINT32_MAX : (uint32_t)sndcnt;
}
