/* Ethernet II header. */
#ifndef UST_WIRE_ETH_H
#define UST_WIRE_ETH_H

#include "wire/wire.h"

#define ETH_ALEN 6
#define ETH_HDR_LEN 14
#define ETH_MIN_FRAME 60          /* without FCS: shorter frames are padded */
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_IPV6 0x86DD

struct eth_repr {
    uint8_t dst[ETH_ALEN];
    uint8_t src[ETH_ALEN];
    uint16_t type;
};

int eth_parse(const uint8_t *buf, size_t len, struct eth_repr *r);
int eth_emit(const struct eth_repr *r, uint8_t *buf, size_t len);

static inline int eth_is_broadcast(const uint8_t *a)
{
    return (a[0] & a[1] & a[2] & a[3] & a[4] & a[5]) == 0xff;
}
static inline int eth_is_multicast(const uint8_t *a) { return a[0] & 1; }
extern const uint8_t eth_broadcast[ETH_ALEN];

/* "aa:bb:cc:dd:ee:ff" -> 0, else -1. */
int eth_aton(const char *s, uint8_t mac[ETH_ALEN]);
/* Writes 18 bytes including the NUL. */
void eth_ntoa(const uint8_t mac[ETH_ALEN], char out[18]);

#endif
