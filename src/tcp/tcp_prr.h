/* Proportional Rate Reduction (RFC 6937): how much may be sent on each ACK
 * during loss recovery so that cwnd glides down to ssthresh. */
#ifndef UST_TCP_PRR_H
#define UST_TCP_PRR_H

#include <stdint.h>

struct tcp_prr {
    uint32_t recover_fs;      /* flight size at the start of recovery */
    uint32_t delivered;       /* prr_delivered */
    uint32_t out;             /* prr_out */
};

/* At the start of recovery (RFC 6937 3.1 "On entering recovery"). */
void prr_start(struct tcp_prr *p, uint32_t flight);
/* On every ACK in recovery: delivered = bytes newly acked or SACKed by it,
 * pipe = RFC 6675 pipe after it. Returns sndcnt: bytes that may be sent now
 * (RFC 6937 3.1 with the PRR-SSRB bound; the proportional part rounded up
 * to whole segments; at least one MSS while nothing was sent yet, RFC 9937 4). */
uint32_t prr_on_ack(struct tcp_prr *p, uint32_t delivered, uint32_t pipe, uint32_t ssthresh, uint32_t mss);
/* Account bytes actually sent during recovery. */
static inline void prr_sent(struct tcp_prr *p, uint32_t bytes) { p->out += bytes; }

#endif
