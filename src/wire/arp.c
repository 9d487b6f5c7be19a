/* ARP for IPv4 over Ethernet (RFC 826). */
#include "wire/arp.h"

#include <string.h>

#define ARP_OFF_HTYPE 0
#define ARP_OFF_PTYPE 2
#define ARP_OFF_HLEN 4
#define ARP_OFF_PLEN 5
#define ARP_OFF_OP 6
#define ARP_OFF_SHA 8
#define ARP_OFF_SPA 14
#define ARP_OFF_THA 18
#define ARP_OFF_TPA 24

#define ARP_HTYPE_ETHER 1
#define ARP_PLEN_IPV4 4

/* RFC 826 "Packet Reception": ignore hardware and protocol types we do not
 * speak; the lengths must match the types or the address offsets are wrong. */
static int arp_speaks(const uint8_t *buf)
{
    uint16_t op = rd16(buf + ARP_OFF_OP);

    return rd16(buf + ARP_OFF_HTYPE) == ARP_HTYPE_ETHER &&
           rd16(buf + ARP_OFF_PTYPE) == ETHERTYPE_IPV4 && buf[ARP_OFF_HLEN] == ETH_ALEN &&
           buf[ARP_OFF_PLEN] == ARP_PLEN_IPV4 && (op == ARP_OP_REQUEST || op == ARP_OP_REPLY);
}

int arp_parse(const uint8_t *buf, size_t len, struct arp_repr *r)
{
    if (len < ARP_LEN)
        return -WIRE_TRUNCATED;
    if (!arp_speaks(buf))
        return -WIRE_UNSUPPORTED;
    r->op = rd16(buf + ARP_OFF_OP);
    memcpy(r->sha, buf + ARP_OFF_SHA, ETH_ALEN);
    r->spa = rd32(buf + ARP_OFF_SPA);
    memcpy(r->tha, buf + ARP_OFF_THA, ETH_ALEN);
    r->tpa = rd32(buf + ARP_OFF_TPA);
    return ARP_LEN;
}

int arp_emit(const struct arp_repr *r, uint8_t *buf, size_t len)
{
    if (len < ARP_LEN)
        return -WIRE_TRUNCATED;
    wr16(buf + ARP_OFF_HTYPE, ARP_HTYPE_ETHER);
    wr16(buf + ARP_OFF_PTYPE, ETHERTYPE_IPV4);
    buf[ARP_OFF_HLEN] = ETH_ALEN;
    buf[ARP_OFF_PLEN] = ARP_PLEN_IPV4;
    wr16(buf + ARP_OFF_OP, r->op);
    memcpy(buf + ARP_OFF_SHA, r->sha, ETH_ALEN);
    wr32(buf + ARP_OFF_SPA, r->spa);
    memcpy(buf + ARP_OFF_THA, r->tha, ETH_ALEN);
    wr32(buf + ARP_OFF_TPA, r->tpa);
    return ARP_LEN;
}
