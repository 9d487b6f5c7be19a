/* Congestion control glue: module lookup, initial window, undo, restart
 * after idle, and the slow start / byte counting steps both modules share. */
#include "tcp/tcp_cc.h"

#include <string.h>

const struct tcp_cc_ops *tcp_cc_find(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "cubic") == 0)
        return &tcp_cc_cubic;
    if (strcmp(name, "newreno") == 0 || strcmp(name, "reno") == 0)
        return &tcp_cc_newreno;
    return NULL;
}

uint32_t tcp_cc_initial_window(uint32_t mss)
{
    /* RFC 6928 2: min(10*MSS, max(2*MSS, 14600)), in 64 bits for huge MSS. */
    uint64_t lo = 2ull * mss > 14600u ? 2ull * mss : 14600u;
    uint64_t iw = 10ull * mss < lo ? 10ull * mss : lo;
    return iw > TCP_CC_CWND_MAX ? TCP_CC_CWND_MAX : (uint32_t)iw;
}

void tcp_cc_init(struct tcp_cc *cc, const struct tcp_cc_ops *ops, uint32_t mss)
{
    memset(cc, 0, sizeof(*cc));
    cc->ops = ops ? ops : &tcp_cc_cubic;
    cc->mss = mss ? mss : 1;
    cc->cwnd = tcp_cc_initial_window(cc->mss);
    cc->ssthresh = TCP_CC_SSTHRESH_INF;   /* RFC 5681 3.1 */
    cc->prior_cwnd = cc->cwnd;
    cc->prior_ssthresh = cc->ssthresh;
    if (cc->ops->init)
        cc->ops->init(cc);
}

void tcp_cc_undo(struct tcp_cc *cc)
{
    /* RFC 5682 3.1 / RFC 9438 4.9: the reduction was spurious, go back to
     * the window before it (never below what has been regrown since). */
    if (cc->cwnd < cc->prior_cwnd)
        cc->cwnd = cc->prior_cwnd;
    if (cc->ssthresh < cc->prior_ssthresh)
        cc->ssthresh = cc->prior_ssthresh;
    cc->bytes_acked = 0;
    if (cc->ops->on_undo)
        cc->ops->on_undo(cc);
}

void tcp_cc_after_idle(struct tcp_cc *cc)
{
    /* RFC 5681 4.1: RW = min(IW, cwnd); ssthresh is kept. */
    uint32_t rw = tcp_cc_initial_window(cc->mss);
    if (cc->cwnd > rw)
        cc->cwnd = rw;
    cc->bytes_acked = 0;
    if (cc->ops->on_idle)
        cc->ops->on_idle(cc);
}

uint32_t tcp_cc_slow_start(struct tcp_cc *cc, uint32_t acked)
{
    /* RFC 3465 2.3: L = 2*SMSS keeps slow start doubling per RTT with
     * delayed ACKs while bounding the burst from one stretch ACK. */
    uint64_t limit = 2ull * cc->mss;
    uint64_t inc = acked < limit ? acked : limit;
    uint64_t room = cc->ssthresh > cc->cwnd ? cc->ssthresh - cc->cwnd : 0;
    if (inc > room)
        inc = room;
    uint64_t cwnd = cc->cwnd + inc;
    cc->cwnd = cwnd > TCP_CC_CWND_MAX ? TCP_CC_CWND_MAX : (uint32_t)cwnd;
    if (cc->cwnd < cc->ssthresh && cc->cwnd < TCP_CC_CWND_MAX)
        return 0;
    /* Bytes that did not fit below ssthresh count for avoidance. */
    return inc < acked ? (uint32_t)(acked - inc) : 0;
}

void tcp_cc_reno_avoid(struct tcp_cc *cc, uint32_t acked)
{
    /* RFC 5681 3.1 (eq. 3 done by byte counting, RFC 3465 2.1): cwnd grows
     * by SMSS once a whole cwnd of bytes has been acknowledged; at most
     * once per ACK, so a stretch ACK cannot buy a burst. */
    uint64_t total = (uint64_t)cc->bytes_acked + acked;
    if (cc->cwnd && total >= cc->cwnd) {
        total -= cc->cwnd;
        uint64_t cwnd = (uint64_t)cc->cwnd + cc->mss;
        cc->cwnd = cwnd > TCP_CC_CWND_MAX ? TCP_CC_CWND_MAX : (uint32_t)cwnd;
    } else if (!cc->cwnd) {
        cc->cwnd = cc->mss;
    }
    if (total > cc->cwnd)
        total = cc->cwnd;
    cc->bytes_acked = (uint32_t)total;
}
