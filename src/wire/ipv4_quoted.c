#include "wire/ipv4.h"

int ipv4_parse_quoted(const uint8_t *buf, size_t len, struct ipv4_repr *r)
{
    if (len < IPV4_HDR_LEN)
        return -WIRE_TRUNCATED;
    if (buf[0] >> 4 != 4)
        return -WIRE_BAD_VERSION;
    size_t hl = (size_t)(buf[0] & 0xf) * 4;
    if (hl < IPV4_HDR_LEN || hl > len)
        return -WIRE_BAD_HDRLEN;
    r->hdr_len = (uint8_t)hl;
    r->tos = buf[1];
    r->total_len = rd16(buf + 2);
    r->id = rd16(buf + 4);
    uint16_t ff = rd16(buf + 6);
    r->df = (ff & IPV4_FLAG_DF) != 0;
    r->mf = (ff & IPV4_FLAG_MF) != 0;
    r->frag_off = (uint16_t)((ff & IPV4_FRAG_MASK) * 8);
    r->ttl = buf[8];
    r->proto = buf[9];
    r->src = rd32(buf + 12);
    r->dst = rd32(buf + 16);
    return (int)hl;
}
