/* The send queue: one packet buffer per segment, so the send buffer is
 * also the retransmission scoreboard (SACK, RACK and loss marks live on the
 * segments themselves; nothing else is allocated per segment).
 *
 * A segment in tcb->sndq is a struct pkt used as follows:
 *   pkt_data(p), p->len   the payload bytes (never headers: a transmit copies
 *                          the payload into a fresh frame)
 *   p->aux                 sequence number of the first payload byte
 *   p->stamp               time (ns) of the latest transmission; 0 = never sent
 *   p->flags               the TSEG_* bits below
 * Segments are in sequence order; the queue holds data from snd_una to the
 * end of what the application wrote. SYN and FIN are not in the queue: they
 * are tracked by the TCB (they occupy one sequence number each). */
#ifndef UST_TCP_SEG_H
#define UST_TCP_SEG_H

#include "core/pkt.h"
#include "tcp/tcp_seq.h"

#define TSEG_SACKED  0x0100   /* covered entirely by a SACK block            */
#define TSEG_LOST    0x0200   /* deemed lost (RACK, RFC 6675), not yet resent */
#define TSEG_RETRANS 0x0400   /* retransmitted at least once                 */
#define TSEG_TLP     0x0800   /* sent as a tail loss probe                   */

static inline uint32_t tseg_seq(const struct pkt *p) { return p->aux; }
static inline uint32_t tseg_end(const struct pkt *p) { return p->aux + p->len; }
static inline int tseg_sent(const struct pkt *p) { return p->stamp != 0; }

#endif
