/* UDP (RFC 768): a port table and the minimal socket calls of ustack.h. */
#ifndef UST_UDP_UDP_H
#define UST_UDP_UDP_H

#include <stdint.h>

#include "core/pkt.h"
#include "net/icmp.h"
#include "wire/ipv4.h"
#include "ustack/ustack.h"

struct ust_stack;

#define UDP_BUCKETS 1024              /* power of two */
#define UDP_EPHEMERAL_LO 49152        /* RFC 6335 dynamic range */
#define UDP_EPHEMERAL_HI 65535

struct ust_udp {
    struct ust_udp *hnext;
    struct ust_stack *stack;
    uint32_t laddr;                   /* 0 = any */
    uint16_t lport;                   /* 0 = not bound */
    uint16_t error;                   /* pending errno from ICMP */
    struct pkt_queue rxq;
    uint32_t rxq_max;
    ust_udp_cb on_readable;
    void *cb_arg;
};

struct udp_table {
    struct ust_udp *buckets[UDP_BUCKETS];
    uint32_t nsockets;
};

void udp_init(struct ust_stack *s);
void udp_fini(struct ust_stack *s);
/* p holds the UDP datagram at pkt_data (l3, l4 set). Takes ownership. */
void udp_input(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip);
void udp_error_input(struct ust_stack *s, const struct icmp_err *e);

#endif
