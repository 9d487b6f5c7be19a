/* The stack instance: one per thread, owning one device queue, its pools and
 * every table. Internal; applications see struct ust_stack as opaque. */
#ifndef UST_NET_STACK_H
#define UST_NET_STACK_H

#include <stdint.h>

#include "api/config.h"
#include "core/counters.h"
#include "core/hash.h"
#include "core/pcap.h"
#include "core/pkt.h"
#include "core/wheel.h"
#include "dev/dev.h"
#include "net/arp.h"
#include "net/icmp.h"
#include "net/ipfrag.h"
#include "net/ipv4.h"
#include "tcp/tcp.h"
#include "udp/udp.h"

#define STACK_BURST 64
#define STACK_PREFETCH 4   /* frames of a burst whose headers are fetched ahead */
#define STACK_TXQ 256
#define STACK_TX_EARLY 32   /* flush the TX queue at this many frames */

struct wk_node;

struct ust_stack {
    uint64_t now;                     /* ns, set by every ust_stack_poll       */
    struct ust_counters ctr;
    struct dev dev;
    struct pkt_pool pool;             /* frames                              */
    struct pkt_pool big_pool;         /* up to 64 KiB: reassembly, large UDP */
    struct wheel wheel;
    struct ip_iface ip;               /* addresses, routes, MTU, IDs         */
    struct arp_cache arp;
    struct ipfrag_table frag;
    struct icmp_state icmp;
    struct udp_table udp;
    struct tcp_stack tcp;
    struct hash_key key;              /* secret for hashes and IDs           */
    struct hash_key fast_key;    /* hash_words_keyed only (buckets, IP ID counters): the
                                    SipHash key above never meets the cheap hash */
    uint64_t rng;                     /* xorshift state                      */
    uint8_t mac[6];
    uint8_t l3_only;                  /* device carries bare IP (no Ethernet) */
    uint8_t did_work;                 /* last poll moved a packet            */
    uint8_t link_up;                  /* device was up at the last poll      */
    uint16_t txq_len;
    struct pkt *txq[STACK_TXQ];
    uint64_t dev_next;                /* next time the device wants service  */
    struct pcap_writer pcap;
    struct ust_config cfg;
    struct wk_node *wk;               /* NULL unless one of several workers  */
};

/* Queue a complete frame for the end-of-poll transmit burst (flushes early
 * when the queue is full). Takes ownership. */
void stack_xmit(struct ust_stack *s, struct pkt *p);
void stack_flush(struct ust_stack *s);
/* ust_stack_create for worker wk of a group (src/api/workers.c). */
struct ust_stack *stack_create_worker(const struct ust_config *cfg, struct wk_node *wk);

#endif
