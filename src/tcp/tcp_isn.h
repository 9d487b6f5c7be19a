/* Initial sequence numbers (RFC 6528), SYN cookies (RFC 4987 3.6), and
 * ephemeral port selection (RFC 6056). */
#ifndef UST_TCP_ISN_H
#define UST_TCP_ISN_H

#include <stdint.h>

#include "core/hash.h"
#include "net/addr.h"

/* RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, key),
 * M a 4-microsecond timer derived from now_ns. */
uint32_t tcp_isn(const struct hash_key *key, const struct tcp_tuple *t, uint64_t now_ns);

/* SYN cookies. The cookie is our ISN for a SYN we keep no state for. It
 * encodes a coarse time counter (64 s units), an index into a table of MSS
 * values and a keyed hash of the tuple, the peer's ISN and the counter.
 * When the peer offered timestamps, window scale and SACK-permitted are
 * kept in the low bits of our TSval (tcp_cookie_ts*), as Linux does. */
struct syncookie_opts {
    uint16_t mss;             /* decoded: one of the table's values      */
    uint8_t wscale;           /* 0..14, or 15 = peer sent no WS option    */
    uint8_t sack_ok;
    uint8_t has_ts;
};

uint32_t syncookie_make(const struct hash_key *key, const struct tcp_tuple *t, uint32_t peer_isn, uint16_t mss,
                        uint64_t now_ns);
/* Check the cookie = (ACK's ack number - 1) against the tuple and the peer
 * ISN (= ACK's seq - 1). Accepts cookies up to 2 counter steps old.
 * Returns 0 and the MSS, or -1. */
int syncookie_check(const struct hash_key *key, const struct tcp_tuple *t, uint32_t peer_isn, uint32_t cookie,
                    uint64_t now_ns, uint16_t *mss);
/* Options carried in our timestamp: build TSval from a clock value, and
 * decode from the echoed TSecr. */
uint32_t syncookie_ts_encode(uint32_t ts_clock, const struct syncookie_opts *o);
void syncookie_ts_decode(uint32_t ts_ecr, struct syncookie_opts *o);

/* RFC 6056 3.3.3 (Algorithm 3, "Simple Hash-Based"): the first candidate
 * port for a connection to raddr:rport from laddr, in [lo, hi]; the caller
 * then tries candidate, candidate+1, ... (wrapping) until one is free. A
 * per-stack counter (next_ephemeral) is advanced by the caller. */
uint16_t tcp_port_candidate(const struct hash_key *key, const union ip_addr *laddr, const union ip_addr *raddr,
                            uint16_t rport, uint32_t counter, uint16_t lo, uint16_t hi);

#endif
