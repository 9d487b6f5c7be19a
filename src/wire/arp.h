/* ARP for IPv4 over Ethernet (RFC 826). */
#ifndef UST_WIRE_ARP_H
#define UST_WIRE_ARP_H

#include "wire/eth.h"

#define ARP_LEN 28
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY   2

struct arp_repr {
    uint16_t op;
    uint8_t sha[ETH_ALEN];
    uint32_t spa;             /* host order */
    uint8_t tha[ETH_ALEN];
    uint32_t tpa;             /* host order */
};

/* Accepts only htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4 and op
 * request/reply; anything else is WIRE_UNSUPPORTED. Returns ARP_LEN. */
int arp_parse(const uint8_t *buf, size_t len, struct arp_repr *r);
int arp_emit(const struct arp_repr *r, uint8_t *buf, size_t len);

#endif
