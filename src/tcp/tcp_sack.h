/* SACK (RFC 2018) on both sides and the RFC 6675 scoreboard queries.
 * The sender's scoreboard is the send queue itself (tcp_seg.h). */
#ifndef UST_TCP_SACK_H
#define UST_TCP_SACK_H

#include <stdint.h>

#include "core/pkt.h"
#include "tcp/tcp_rack.h"
#include "tcp/tcp_seg.h"
#include "wire/tcp.h"

#define TCP_DUPTHRESH 3

/* ---- receiver: which blocks to report ---- */

struct tcp_sack_rcv {
    struct tcp_sack_block blocks[TCP_MAX_SACK];
    uint8_t count;
    uint8_t dsack;            /* blocks[0] is a D-SACK (RFC 2883), send once */
};

/* Out-of-order segments are kept in a queue of pkts in sequence order with
 * p->aux = first sequence number, p->len = payload length (possibly
 * overlapping is NOT allowed: the core trims before queueing).
 * After a segment [start, end) was queued out of order, rebuild the blocks
 * per RFC 2018 4: the first block covers the newest segment, then the blocks
 * reported most recently, each block a maximal contiguous run of the queue,
 * all above rcv_nxt. */
void sack_rcv_update(struct tcp_sack_rcv *s, const struct pkt_queue *ooo, uint32_t rcv_nxt, uint32_t start,
                     uint32_t end);
/* rcv_nxt advanced (in-order data arrived, maybe pulling from ooo): drop
 * blocks now at or below rcv_nxt and merge with the queue's runs. */
void sack_rcv_advance(struct tcp_sack_rcv *s, const struct pkt_queue *ooo, uint32_t rcv_nxt);
/* A duplicate segment [start, end) arrived: report it first as a D-SACK. */
void sack_rcv_dsack(struct tcp_sack_rcv *s, uint32_t start, uint32_t end);
/* Copy up to max blocks for the next outgoing segment; clears the D-SACK. */
int sack_rcv_take(struct tcp_sack_rcv *s, struct tcp_sack_block *out, int max);

/* ---- sender: apply SACK information to the send queue ---- */

struct sack_result {
    uint32_t newly_sacked;    /* bytes of segments newly marked SACKED */
    uint32_t sacked_total;    /* bytes marked SACKED in the queue after this */
    uint32_t highest_sacked;  /* end of the highest SACKed segment (snd_una if none) */
    uint8_t dsack;            /* the first block was a D-SACK (RFC 2883 4) */
};

/* Validate blocks against (snd_una, snd_nxt] (ignore invalid ones, RFC 2018
 * 3 and 5961-style sanity), mark segments entirely covered as TSEG_SACKED
 * (clearing TSEG_LOST), and for every newly SACKed segment tell RACK
 * (rack_on_delivered). */
void sack_mark(struct pkt_queue *sndq, uint32_t snd_una, uint32_t snd_nxt, const struct tcp_sack_block *blocks,
               int n, struct tcp_rack *rack, uint64_t now, struct sack_result *res);

/* RFC 6675 "pipe": bytes outstanding = sent segments neither SACKed nor
 * lost, plus every retransmitted one not SACKed. */
uint32_t sack_pipe(const struct pkt_queue *sndq, uint32_t snd_nxt);

/* RFC 6675 IsLost(): DupThresh discontiguous SACKed segments, or more than
 * (DupThresh - 1) * SMSS bytes SACKed, above seg. Marks such segments
 * TSEG_LOST; returns how many were newly marked. */
uint32_t sack_mark_lost_dupthresh(struct pkt_queue *sndq, uint32_t snd_nxt, uint32_t mss);

/* RFC 6675 NextSeg() rule 1: the first segment marked lost and not yet
 * retransmitted since (TSEG_LOST set), NULL if none. */
struct pkt *sack_next_lost(const struct pkt_queue *sndq);

#endif
