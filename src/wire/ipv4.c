/* IPv4 header (RFC 791) parse/emit and dotted-quad text form. */
#include "wire/ipv4.h"

#include "wire/checksum.h"

#include <stdio.h>

#define IPV4_OFF_VER_IHL 0
#define IPV4_OFF_TOS 1
#define IPV4_OFF_TOTAL_LEN 2
#define IPV4_OFF_ID 4
#define IPV4_OFF_FLAGS_FRAG 6
#define IPV4_OFF_TTL 8
#define IPV4_OFF_PROTO 9
#define IPV4_OFF_CSUM 10
#define IPV4_OFF_SRC 12
#define IPV4_OFF_DST 16

#define IPV4_VERSION 4
#define IPV4_MIN_IHL 5

/* The header checks both parsers share: version and header length, within
 * buf. Returns the header length. */
static int ipv4_check_header(const uint8_t *buf, size_t len)
{
    if (len < IPV4_HDR_LEN)
        return -WIRE_TRUNCATED;
    if (buf[IPV4_OFF_VER_IHL] >> 4 != IPV4_VERSION)
        return -WIRE_BAD_VERSION;
    size_t hdr_len = (size_t)(buf[IPV4_OFF_VER_IHL] & 0x0f) * 4;
    if (hdr_len < IPV4_HDR_LEN)
        return -WIRE_BAD_HDRLEN;
    if (hdr_len > len)
        return -WIRE_TRUNCATED;
    return (int)hdr_len;
}

/* Structure checks of a whole datagram in the order a reader would do them;
 * the first failure names the reason (counted by the caller). */
static int ipv4_check_lengths(const uint8_t *buf, size_t len)
{
    int hdr_len = ipv4_check_header(buf, len);
    if (hdr_len < 0)
        return hdr_len;
    uint16_t total_len = rd16(buf + IPV4_OFF_TOTAL_LEN);
    if (total_len < (size_t)hdr_len)
        return -WIRE_BAD_LEN;
    if (total_len > len)
        return -WIRE_TRUNCATED;
    return hdr_len;
}

/* Field decoding shared by both parsers; the header is already checked. */
static void ipv4_decode_fields(const uint8_t *buf, int hdr_len, struct ipv4_repr *r)
{
    uint16_t ff = rd16(buf + IPV4_OFF_FLAGS_FRAG);
    r->hdr_len = (uint8_t)hdr_len;
    r->tos = buf[IPV4_OFF_TOS];
    r->total_len = rd16(buf + IPV4_OFF_TOTAL_LEN);
    r->id = rd16(buf + IPV4_OFF_ID);
    /* The reserved flag (RFC 791; RFC 3514's "evil bit") is ignored on
     * receipt, as Linux does: robustness principle, RFC 1122 1.2.2. */
    r->df = (ff & IPV4_FLAG_DF) != 0;
    r->mf = (ff & IPV4_FLAG_MF) != 0;
    r->frag_off = (uint16_t)((ff & IPV4_FRAG_MASK) * 8);
    r->ttl = buf[IPV4_OFF_TTL];
    r->proto = buf[IPV4_OFF_PROTO];
    r->src = rd32(buf + IPV4_OFF_SRC);
    r->dst = rd32(buf + IPV4_OFF_DST);
}

int ipv4_parse(const uint8_t *buf, size_t len, struct ipv4_repr *r)
{
    int hdr_len = ipv4_check_lengths(buf, len);
    if (hdr_len < 0)
        return hdr_len;
    /* RFC 1122 3.2.1.2: a datagram whose header checksum fails is dropped. */
    if (csum_buf(buf, (size_t)hdr_len) != 0)
        return -WIRE_BAD_CSUM;
    ipv4_decode_fields(buf, hdr_len, r);
    return hdr_len;
}

/* RFC 792 / RFC 1812 4.3.2.3: an ICMP error quotes the offending header plus
 * at least 8 bytes of its data, so total_len may exceed what is here, and a
 * router may have rewritten the TTL without fixing the checksum: neither is
 * checked. */
int ipv4_parse_quoted(const uint8_t *buf, size_t len, struct ipv4_repr *r)
{
    int hdr_len = ipv4_check_header(buf, len);
    if (hdr_len < 0)
        return hdr_len;
    ipv4_decode_fields(buf, hdr_len, r);
    return hdr_len;
}

int ipv4_emit(const struct ipv4_repr *r, uint8_t *buf, size_t len)
{
    if (len < IPV4_HDR_LEN)
        return -WIRE_TRUNCATED;
    uint16_t ff = (uint16_t)((r->frag_off / 8) & IPV4_FRAG_MASK);
    if (r->df)
        ff |= IPV4_FLAG_DF;
    if (r->mf)
        ff |= IPV4_FLAG_MF;

    /* The checksum is summed from the values, not read back from buf: on a
     * shared-memory wire buf may still be in flight to this core (the peer
     * read it last), and a load of bytes just stored would wait for it.
     * Each byte field is read on its own: a caller's repr is usually fresh
     * byte stores, which one wider load could not take forwarded. */
    uint8_t tos = r->tos, ttl = r->ttl, proto = r->proto;
    uint32_t sum = csum_pseudo_ipv4(r->src, r->dst, 0, 0);
    sum += (uint32_t)(IPV4_VERSION << 4 | IPV4_MIN_IHL) * 256u + tos;
    sum += (uint32_t)r->total_len + r->id + ff;
    sum += (uint32_t)ttl * 256u + proto;
    buf[IPV4_OFF_VER_IHL] = IPV4_VERSION << 4 | IPV4_MIN_IHL;
    buf[IPV4_OFF_TOS] = tos;
    wr16(buf + IPV4_OFF_TOTAL_LEN, r->total_len);
    wr16(buf + IPV4_OFF_ID, r->id);
    wr16(buf + IPV4_OFF_FLAGS_FRAG, ff);
    buf[IPV4_OFF_TTL] = ttl;
    buf[IPV4_OFF_PROTO] = proto;
    wr16(buf + IPV4_OFF_CSUM, csum_fold(sum));
    wr32(buf + IPV4_OFF_SRC, r->src);
    wr32(buf + IPV4_OFF_DST, r->dst);
    return IPV4_HDR_LEN;
}

/* One decimal octet 0..255 without sign, space or leading zero (inet_aton
 * would read "010" as octal 8: we refuse rather than guess). Returns the
 * number of characters used, 0 on error. */
static int ipv4_parse_octet(const char *s, unsigned *out)
{
    unsigned v = 0;
    int n = 0;

    while (n < 4 && s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + (unsigned)(s[n] - '0');
        n++;
    }
    if (n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0'))
        return 0;
    *out = v;
    return n;
}

int ipv4_aton(const char *s, uint32_t *addr)
{
    uint32_t a = 0;

    if (s == NULL)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned octet;
        int n = ipv4_parse_octet(s, &octet);
        if (n == 0)
            return -1;
        s += n;
        if (*s != (i < 3 ? '.' : '\0'))
            return -1;
        s++;
        a = a << 8 | octet;
    }
    *addr = a;
    return 0;
}

void ipv4_ntoa(uint32_t addr, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
             addr & 0xff);
}
