/* ICMPv4 (RFC 792, RFC 1191). */
#ifndef UST_WIRE_ICMP_H
#define UST_WIRE_ICMP_H

#include "wire/wire.h"

#define ICMP_HDR_LEN 8
#define ICMP_ECHO_REPLY   0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT     5
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12

/* Destination unreachable codes */
#define ICMP_NET_UNREACH   0
#define ICMP_HOST_UNREACH  1
#define ICMP_PROTO_UNREACH 2
#define ICMP_PORT_UNREACH  3
#define ICMP_FRAG_NEEDED   4

struct icmp_repr {
    uint8_t type, code;
    uint16_t id, seq;         /* echo request/reply                            */
    uint16_t mtu;             /* dest unreach / frag needed: next-hop MTU      */
    uint32_t rest;            /* the raw 4 bytes after the checksum            */
    const uint8_t *payload;   /* parse: points into buf; emit: data to copy    */
    size_t payload_len;
};

/* Verifies the checksum over the whole message (len bytes). Returns 8. */
int icmp_parse(const uint8_t *buf, size_t len, struct icmp_repr *r);

/* Writes the header, copies payload (memmove, so payload may already sit at
 * buf + 8) and fills the checksum. For echo types id/seq are written, for
 * unreachable the mtu (code 4) or zero, otherwise `rest`. Returns 8 + payload_len. */
int icmp_emit(const struct icmp_repr *r, uint8_t *buf, size_t len);

#endif
