/* The link layer: Ethernet in and out, or bare IP on L3 devices. */
#ifndef UST_NET_LINK_H
#define UST_NET_LINK_H

#include <stdint.h>

#include "core/pkt.h"

struct ust_stack;

/* A received frame (pkt_data at the link header). Takes ownership. */
void link_input(struct ust_stack *s, struct pkt *p);

/* Prepend an Ethernet header and transmit. Takes ownership. */
void link_output_eth(struct ust_stack *s, struct pkt *p, const uint8_t dst[6], uint16_t type);

/* Transmit an IPv4 packet (pkt_data at its header) toward next_hop: through
 * ARP on Ethernet, directly on L3 devices, to ff:ff:ff:ff:ff:ff when
 * broadcast. Takes ownership. */
void link_output_ip(struct ust_stack *s, struct pkt *p, uint32_t next_hop, int broadcast);

#endif
