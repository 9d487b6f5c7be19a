/* UDP header (RFC 768). */
#include "wire/udp.h"

#include "wire/checksum.h"

#define UDP_OFF_SPORT 0
#define UDP_OFF_DPORT 2
#define UDP_OFF_LEN 4
#define UDP_OFF_CSUM 6

int udp_parse(const uint8_t *buf, size_t len, uint32_t pseudo, int verify, struct udp_repr *r)
{
    if (len < UDP_HDR_LEN)
        return -WIRE_TRUNCATED;
    uint16_t dlen = rd16(buf + UDP_OFF_LEN);
    if (dlen < UDP_HDR_LEN)
        return -WIRE_BAD_LEN;
    if (dlen > len)
        return -WIRE_TRUNCATED;
    uint16_t csum = rd16(buf + UDP_OFF_CSUM);
    /* RFC 768: a zero checksum means the sender computed none. Bytes past
     * the length field (padding) are not covered. */
    if (verify && csum != 0 && csum_fold(csum_add(pseudo, buf, dlen)) != 0)
        return -WIRE_BAD_CSUM;
    r->sport = rd16(buf + UDP_OFF_SPORT);
    r->dport = rd16(buf + UDP_OFF_DPORT);
    r->len = dlen;
    r->csum = csum;
    return UDP_HDR_LEN;
}

int udp_emit_sum(const struct udp_repr *r, uint8_t *buf, size_t len, uint32_t sum)
{
    if (len < UDP_HDR_LEN || r->len > len)
        return -WIRE_TRUNCATED;
    if (r->len < UDP_HDR_LEN)
        return -WIRE_BAD_LEN;
    /* The header, checksum field 0; the end-around carry keeps it a
     * one's-complement sum (sum may be any 32-bit accumulator). */
    uint64_t a = (uint64_t)sum + r->sport + r->dport + r->len;
    uint16_t csum = csum_fold((uint32_t)a + (uint32_t)(a >> 32));
    wr16(buf + UDP_OFF_SPORT, r->sport);
    wr16(buf + UDP_OFF_DPORT, r->dport);
    wr16(buf + UDP_OFF_LEN, r->len);
    /* RFC 768: a computed zero is sent as all ones, 0 meaning "none". */
    wr16(buf + UDP_OFF_CSUM, csum ? csum : 0xffff);
    return UDP_HDR_LEN;
}

int udp_emit(const struct udp_repr *r, uint8_t *buf, size_t len, uint32_t pseudo)
{
    if (len < UDP_HDR_LEN || r->len > len || r->len < UDP_HDR_LEN)
        return udp_emit_sum(r, buf, len, 0);   /* the same refusal */
    return udp_emit_sum(r, buf, len, csum_add(pseudo, buf + UDP_HDR_LEN, r->len - UDP_HDR_LEN));
}
