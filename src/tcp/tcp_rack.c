/* RACK-TLP (RFC 8985): time-based loss detection over the send queue, the
 * adaptive reordering window, and the tail loss probe timeout. */
#include "tcp/tcp_rack.h"

#include <string.h>

#include "tcp/tcp_seq.h"

#define RACK_PERSIST_RECOVERIES 16   /* RFC 8985 6.2 step 4 */
#define TLP_NO_SRTT_PTO_US 1000000u  /* RFC 8985 7.2: 1 s without an SRTT */
/* A floor under 2*SRTT: on a path of microseconds (a shared-memory wire) a
 * peer that is merely descheduled for a moment would draw a probe per
 * flight. 2 ms is the order of Linux's TCP_TIMEOUT_MIN, which it adds to
 * the PTO. */
#define TLP_MIN_PTO_US 2000u

void rack_init(struct tcp_rack *r)
{
    memset(r, 0, sizeof(*r));
    r->reo_wnd_mult = 1;   /* RFC 8985 6.1 */
    r->reo_wnd_persist = 0;
}

/* RFC 8985 6.2 RACK_sent_after(t1, seq1, t2, seq2): was (t1, seq1) sent
 * after (t2, seq2)? Ties in time (one burst) are broken by sequence. */
static int rack_sent_after(uint64_t t1, uint32_t seq1, uint64_t t2, uint32_t seq2)
{
    return t1 > t2 || (t1 == t2 && seq_gt(seq1, seq2));
}

/* RFC 8985 6.2 step 2, the filter in RACK_update(): a retransmitted
 * segment's sample is ambiguous (Karn) when the timestamp echoes an older
 * transmission, or when it came back sooner than min_RTT after the last
 * retransmission (so the ACK must be for the original). */
static int rack_sample_ambiguous(const struct pkt *seg, uint64_t rtt_ns, uint32_t min_rtt_us, int ts_ambiguous)
{
    if (!(seg->flags & TSEG_RETRANS))
        return 0;
    if (ts_ambiguous)
        return 1;
    return rtt_ns < (uint64_t)min_rtt_us * 1000u;
}

/* RFC 8985 6.2 step 2: remember the most recently sent delivered segment
 * and its RTT. Callers deliver in no particular order, so "the last one in
 * ascending xmit_ts order" becomes "only when sent after the current one". */
static void rack_update(struct tcp_rack *r, const struct pkt *seg, uint64_t rtt_ns)
{
    uint32_t end = tseg_end(seg);
    if (r->xmit_ts && !rack_sent_after(seg->stamp, end, r->xmit_ts, r->end_seq) &&
        !(seg->stamp == r->xmit_ts && end == r->end_seq))
        return;
    uint64_t rtt_us = rtt_ns / 1000u;
    r->rtt_us = rtt_us > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt_us;
    r->xmit_ts = seg->stamp;
    r->end_seq = end;
}

/* RFC 8985 6.2 step 3: an original transmission delivered below the
 * highest delivered sequence means the network reordered it. */
static void rack_detect_reordering(struct tcp_rack *r, const struct pkt *seg)
{
    uint32_t end = tseg_end(seg);
    if (!r->fack_valid || seq_gt(end, r->fack)) {
        r->fack = end;
        r->fack_valid = 1;
    } else if (seq_lt(end, r->fack) && !(seg->flags & TSEG_RETRANS)) {
        r->reordering_seen = 1;
    }
}

void rack_on_delivered(struct tcp_rack *r, const struct pkt *seg, uint64_t now, uint32_t min_rtt_us,
                       int ts_ambiguous)
{
    if (!tseg_sent(seg))
        return;
    if (min_rtt_us)
        r->min_rtt_us = min_rtt_us;
    rack_detect_reordering(r, seg);
    if (now < seg->stamp)
        return;   /* a clock that went backwards gives no sample */
    uint64_t rtt_ns = now - seg->stamp;
    if (rack_sample_ambiguous(seg, rtt_ns, r->min_rtt_us, ts_ambiguous))
        return;
    rack_update(r, seg, rtt_ns);
}

/* RFC 8985 6.2 step 4: grow the window once per round that sees a D-SACK;
 * keep it grown for 16 recoveries. */
void rack_on_dsack(struct tcp_rack *r, uint32_t snd_una, uint32_t snd_nxt)
{
    if (r->dsack_round_valid && seq_geq(snd_una, r->dsack_round))
        r->dsack_round_valid = 0;   /* that round is over */
    if (r->dsack_round_valid)
        return;
    r->dsack_round = snd_nxt;
    r->dsack_round_valid = 1;
    if (r->reo_wnd_mult < UINT32_MAX)
        r->reo_wnd_mult++;
    r->reo_wnd_persist = RACK_PERSIST_RECOVERIES;
}

/* RFC 8985 6.2 step 4: "reo_wnd_persist -= 1; if <= 0: reo_wnd_mult = 1". */
void rack_on_recovery_exit(struct tcp_rack *r)
{
    if (r->reo_wnd_persist > 0)
        r->reo_wnd_persist--;
    if (r->reo_wnd_persist == 0)
        r->reo_wnd_mult = 1;
}

uint32_t rack_reo_wnd_us(const struct tcp_rack *r, uint32_t min_rtt_us, uint32_t srtt_us, int in_recovery,
                         int dupthresh_sacked)
{
    /* RFC 8985 6.2 step 4: without evidence of reordering, a recovery or
     * DupThresh SACKed segments means loss, so wait no longer. */
    if (!r->reordering_seen && (in_recovery || dupthresh_sacked))
        return 0;
    uint64_t wnd = (uint64_t)r->reo_wnd_mult * (min_rtt_us / 4u);
    return wnd < srtt_us ? (uint32_t)wnd : srtt_us;
}

/* RFC 8985 6.2 step 5 candidate: sent, not SACKed, not already lost. */
static int rack_candidate(const struct pkt *seg)
{
    return tseg_sent(seg) && !(seg->flags & (TSEG_SACKED | TSEG_LOST));
}

uint32_t rack_detect_loss(struct tcp_rack *r, struct pkt_queue *sndq, uint64_t now, uint32_t reo_wnd_us,
                          uint64_t *timer_at)
{
    uint32_t lost = 0;
    uint64_t earliest = 0;
    uint64_t wait_ns = ((uint64_t)r->rtt_us + reo_wnd_us) * 1000u;
    if (r->xmit_ts) {
        for (struct pkt *seg = sndq->head; seg; seg = seg->next) {
            if (!rack_candidate(seg) || !rack_sent_after(r->xmit_ts, r->end_seq, seg->stamp, tseg_end(seg)))
                continue;
            uint64_t deadline = seg->stamp + wait_ns;
            if (deadline <= now) {
                seg->flags |= TSEG_LOST;
                lost++;
            } else if (!earliest || deadline < earliest) {
                /* The RFC arms the timer for the latest deadline (max of
                 * "remaining"); the earliest marks each segment when its
                 * own time comes, and the timer re-arms for the rest. */
                earliest = deadline;
            }
        }
    }
    if (timer_at)
        *timer_at = earliest;
    return lost;
}

uint32_t tlp_pto_us(uint32_t srtt_us, uint32_t flight_segs, uint32_t max_ack_delay_us, uint32_t rto_us)
{
    uint64_t pto = TLP_NO_SRTT_PTO_US;
    if (srtt_us) {
        pto = 2ull * srtt_us;
        /* RFC 8985 7.2: a lone segment may wait out the peer's delayed ACK.
         * No flight at all is treated the same (the longer, safer PTO). */
        if (flight_segs <= 1)
            pto += max_ack_delay_us;
        if (pto < TLP_MIN_PTO_US)
            pto = TLP_MIN_PTO_US;
    }
    /* RFC 8985 7.2: "if the RTO timer would fire earlier, use it". 0 = none. */
    if (rto_us && pto > rto_us)
        pto = rto_us;
    return pto > UINT32_MAX ? UINT32_MAX : (uint32_t)pto;
}
