/* RACK-TLP loss detection (RFC 8985): a segment is lost when a segment sent
 * sufficiently later has been delivered, so reordering within the
 * reordering window is never taken for loss; and a tail loss probe turns a
 * tail drop into a fast recovery instead of an RTO. */
#ifndef UST_TCP_RACK_H
#define UST_TCP_RACK_H

#include <stdint.h>

#include "core/pkt.h"
#include "tcp/tcp_seg.h"

struct tcp_rack {
    uint64_t xmit_ts;         /* RACK.xmit_ts: send time of the most recently
                                 sent segment known delivered (ns)          */
    uint32_t end_seq;         /* RACK.end_seq                                */
    uint32_t rtt_us;          /* RACK.rtt                                    */
    uint32_t reo_wnd_mult;    /* RACK.reo_wnd_mult (RFC 8985 6.2 step 4)     */
    uint32_t reo_wnd_persist;
    uint32_t dsack_round;     /* snd_nxt when the last D-SACK adjusted it    */
    uint8_t dsack_round_valid;
    uint8_t reordering_seen;  /* RACK.reordering_seen                        */
    uint8_t segs_sacked_ge3;  /* helper for the reo_wnd = 0 rule             */
    uint8_t fack_valid;       /* fack holds a delivered segment's end        */
    uint32_t fack;            /* RACK.fack: highest end_seq delivered (6.2 step 3) */
    uint32_t min_rtt_us;      /* last non-zero min_rtt given to rack_on_delivered,
                                 used when a caller (sack_mark) passes 0    */
};

void rack_init(struct tcp_rack *r);

/* RFC 8985 6.2 step 2 (and 3): seg was newly acknowledged or SACKed at now.
 * Ignores samples that Karn's rule makes ambiguous: a retransmitted segment
 * whose delivery came too soon after its last transmission (RACK's
 * "rtt < min_rtt" test) or via ts_ecr when the timestamp echoes an older
 * transmission (ts_ambiguous != 0). min_rtt_us 0 means "unknown here": the
 * last non-zero value passed in is used (sack_mark has no RTT state). */
void rack_on_delivered(struct tcp_rack *r, const struct pkt *seg, uint64_t now, uint32_t min_rtt_us,
                       int ts_ambiguous);

/* RFC 8985 6.2 step 4: a D-SACK was received. snd_nxt marks the round. */
void rack_on_dsack(struct tcp_rack *r, uint32_t snd_una, uint32_t snd_nxt);
/* Called when loss recovery ends, to age reo_wnd_persist (step 4). */
void rack_on_recovery_exit(struct tcp_rack *r);

/* RFC 8985 6.2 step 4: the reordering window in us. */
uint32_t rack_reo_wnd_us(const struct tcp_rack *r, uint32_t min_rtt_us, uint32_t srtt_us, int in_recovery,
                         int dupthresh_sacked);

/* RFC 8985 6.2 step 5: mark TSEG_LOST every sent, un-SACKed, not-yet-lost
 * segment sent before RACK.xmit_ts (or at it with a lower end_seq) whose
 * xmit_ts + rtt + reo_wnd has passed. Returns how many were newly marked;
 * *timer_at (ns) is the earliest time a remaining candidate would be lost
 * (the reordering timer), 0 if none. */
uint32_t rack_detect_loss(struct tcp_rack *r, struct pkt_queue *sndq, uint64_t now, uint32_t reo_wnd_us,
                          uint64_t *timer_at);

/* RFC 8985 7.2: the probe timeout. srtt_us 0 means no sample: 1 s. flight_segs
 * is the number of segments in flight (1 adds the delayed-ACK allowance). */
uint32_t tlp_pto_us(uint32_t srtt_us, uint32_t flight_segs, uint32_t max_ack_delay_us, uint32_t rto_us);

#endif
