/* ICMPv4: echo, errors out (rate limited), errors in (passed up to the
 * transport that owns the flow). */
#ifndef UST_NET_ICMP_H
#define UST_NET_ICMP_H

#include <stdint.h>

#include "core/pkt.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"

struct ust_stack;

struct icmp_state {
    /* Token bucket for errors we send (RFC 1812 4.3.2.8). */
    uint64_t tokens_ns;               /* credit, in ns of "send time"        */
    uint64_t last_ns;
    uint64_t cost_ns;                 /* 1e9 / rate                          */
    uint64_t burst_ns;
};

/* What an incoming ICMP error tells a transport about one of its flows. */
struct icmp_err {
    uint8_t type, code;
    uint16_t mtu;                     /* frag needed: next-hop MTU (0 if absent) */
    struct ipv4_repr inner;           /* the offending packet's IP header     */
    const uint8_t *l4;                /* its first bytes of transport header  */
    uint16_t l4_len;                  /* at least 8 (RFC 792)                 */
};

void icmp_init(struct ust_stack *s, uint32_t errors_per_sec);

/* Input: p holds the ICMP message at pkt_data, l3 at its IP header. Takes ownership. */
void icmp_input(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip);

/* Send an error about the received packet orig (l3 set; not consumed),
 * unless RFC 1122 3.2.2 forbids it (errors about errors, broadcasts,
 * non-initial fragments, martian sources) or the rate limit says no. */
void icmp_send_error(struct ust_stack *s, const struct pkt *orig, const struct ipv4_repr *ip,
                     uint8_t type, uint8_t code, uint16_t mtu);

#endif
