/* UDP header (RFC 768). */
#ifndef UST_WIRE_UDP_H
#define UST_WIRE_UDP_H

#include "wire/wire.h"

#define UDP_HDR_LEN 8

struct udp_repr {
    uint16_t sport, dport;
    uint16_t len;             /* header + payload, from the length field */
    uint16_t csum;
};

/* len is the IP payload length. Checks 8 <= length field <= len. When
 * verify is set and the checksum field is not 0 (0 = none, IPv4 only), the
 * checksum over the pseudo header accumulator `pseudo` (csum_pseudo_ipv4 with
 * l4_len = the length field) plus the datagram must verify. Returns 8. */
int udp_parse(const uint8_t *buf, size_t len, uint32_t pseudo, int verify, struct udp_repr *r);

/* Writes the header for a datagram of r->len bytes whose payload already sits
 * at buf + 8, with the full checksum (0 is sent as 0xffff). Returns 8. */
int udp_emit(const struct udp_repr *r, uint8_t *buf, size_t len, uint32_t pseudo);

/* The same with the payload already summed: sum is the pseudo header
 * accumulator plus csum_add (or csum_copy) over the payload. Nothing is read
 * from buf, so a buffer still arriving in this core's cache does not stall
 * the sender on a load of what it just stored. Returns 8. */
int udp_emit_sum(const struct udp_repr *r, uint8_t *buf, size_t len, uint32_t sum);

#endif
