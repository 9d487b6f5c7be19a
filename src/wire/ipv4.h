/* IPv4 header (RFC 791). */
#ifndef UST_WIRE_IPV4_H
#define UST_WIRE_IPV4_H

#include "wire/wire.h"

#define IPV4_HDR_LEN 20           /* without options */
#define IPV4_MAX_HDR_LEN 60
#define IPV4_FLAG_DF 0x4000
#define IPV4_FLAG_MF 0x2000
#define IPV4_FRAG_MASK 0x1fff
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_  6
#define IPPROTO_UDP_  17

struct ipv4_repr {
    uint8_t hdr_len;          /* bytes, options included (parse); emit writes 20 */
    uint8_t tos;
    uint16_t total_len;
    uint16_t id;
    uint8_t df, mf;           /* flags */
    uint16_t frag_off;        /* bytes (the field times 8) */
    uint8_t ttl;
    uint8_t proto;
    uint32_t src, dst;        /* host order */
};

/* Full validation (RFC 1122 3.2.1): version 4, header length 20..60 and within
 * buf, total length >= header and <= buf, header checksum. The reserved flag
 * bit (RFC 3514's "evil bit") is ignored, as Linux does. Options are skipped,
 * not interpreted. Returns the header length. Trailing bytes past total_len
 * (Ethernet padding) are allowed: callers trim to total_len. */
int ipv4_parse(const uint8_t *buf, size_t len, struct ipv4_repr *r);

/* The header quoted inside an ICMP error (RFC 792): only its first bytes
 * follow, so total_len may exceed len and the checksum is not checked;
 * version and header length still must be sane (-WIRE_BAD_VERSION,
 * -WIRE_BAD_HDRLEN below 20, -WIRE_TRUNCATED past len, as ipv4_parse).
 * Returns the header length. */
int ipv4_parse_quoted(const uint8_t *buf, size_t len, struct ipv4_repr *r);

/* Writes a 20-byte header with its checksum; total_len must be set. */
int ipv4_emit(const struct ipv4_repr *r, uint8_t *buf, size_t len);

static inline int ipv4_is_fragment(const struct ipv4_repr *r) { return r->mf || r->frag_off; }

/* Dotted quad <-> host order. ipv4_aton returns 0 on success. */
int ipv4_aton(const char *s, uint32_t *addr);
void ipv4_ntoa(uint32_t addr, char out[16]);

#endif
