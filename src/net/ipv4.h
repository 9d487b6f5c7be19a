/* IPv4: input validation and demux, routing (connected subnets plus a default
 * gateway), output with fragmentation, per-destination IDs. */
#ifndef UST_NET_IPV4_H
#define UST_NET_IPV4_H

#include <stdint.h>

#include "core/pkt.h"
#include "wire/ipv4.h"

struct ust_stack;

#define IP_MAX_ADDRS 16
#define IP_ID_BUCKETS 2048            /* power of two */
#define IP_DEFAULT_TTL 64

struct ip_ifaddr {
    uint32_t addr, mask, bcast;       /* host order */
    uint8_t prefix;
};

struct ip_iface {
    struct ip_ifaddr addrs[IP_MAX_ADDRS];
    int naddrs;
    uint32_t gw;                      /* 0 = no default route */
    uint32_t mtu;
    /* RFC 6864 4.1 wants IDs unique per (src, dst, proto) within the MSL.
     * A counter per destination bucket (hashed with a secret) gives that
     * without per-destination state and without a global, predictable
     * sequence an off-path observer could count. */
    uint16_t ids[IP_ID_BUCKETS];
    /* The last destination ipv4_output routed (addresses and gateway are
     * fixed once the stack starts): most traffic goes to a few peers, and
     * the longest-prefix scan runs over up to IP_MAX_ADDRS subnets. */
    uint32_t rt_last_dst;
    uint8_t rt_last_valid;
    uint8_t rt_last_broadcast;
    uint32_t rt_last_next_hop, rt_last_src;
    /* The last (src, dst, proto) that took the PRF and its bucket: a flow
     * sending a burst of fragmentable datagrams (UDP) hashes once. */
    uint32_t id_src, id_dst;
    uint16_t id_bucket;
    uint8_t id_proto, id_cached;
};

struct ip_route {
    uint32_t next_hop;                /* host order; the destination itself on-link */
    uint32_t src;                     /* source address to use               */
    uint8_t broadcast;                /* send to the link's broadcast address */
};

/* Output options. */
#define IPO_DF 0x1                    /* do not fragment; too big = EMSGSIZE */

void ipv4_iface_init(struct ust_stack *s);
int ipv4_is_local(const struct ust_stack *s, uint32_t addr);
int ipv4_is_broadcast(const struct ust_stack *s, uint32_t addr);

/* Route dst; 0 or -1 when there is no route. */
int ipv4_route(const struct ust_stack *s, uint32_t dst, struct ip_route *rt);

/* Input: p holds an IPv4 packet at pkt_data with p->l3 set. Takes ownership. */
void ipv4_input(struct ust_stack *s, struct pkt *p);

/* Output: p holds the transport header and payload at pkt_data (headroom
 * left in front). Prepends the IPv4 header, fragments above the MTU (unless
 * IPO_DF), and hands the packet(s) to the link. src 0 = the route's source.
 * Takes ownership. Returns 0 or a negative errno (-ENETUNREACH, -EMSGSIZE,
 * -ENOBUFS). */
int ipv4_output(struct ust_stack *s, struct pkt *p, uint32_t src, uint32_t dst, uint8_t proto,
                uint8_t tos, uint8_t ttl, unsigned flags);

/* The IPv4 ID to use toward dst for proto (df: the datagram is atomic). */
uint16_t ipv4_next_id(struct ust_stack *s, uint32_t src, uint32_t dst, uint8_t proto, int df);

#endif
