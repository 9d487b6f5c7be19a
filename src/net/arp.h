/* ARP neighbour cache (RFC 826, RFC 1122 2.3.2). A bounded hash table of
 * entries moving INCOMPLETE -> REACHABLE -> STALE -> PROBE; every entry owns a
 * wheel timer, so nothing walks the table. Packets waiting for resolution
 * are queued per entry within a per-stack bound. */
#ifndef UST_NET_ARP_H
#define UST_NET_ARP_H

#include <stdint.h>

#include "core/pkt.h"
#include "core/wheel.h"

struct ust_stack;

enum arp_state {
    ARP_FREE = 0,
    ARP_INCOMPLETE,       /* request sent, no answer yet                */
    ARP_REACHABLE,        /* confirmed recently                         */
    ARP_STALE,            /* usable; confirm on next use                */
    ARP_PROBE,            /* in use, unicast request sent to confirm    */
    ARP_PERMANENT,        /* static (--neigh)                           */
};

#define ARP_REACHABLE_NS (30ULL * 1000000000ULL)   /* RFC 4861-like default    */
#define ARP_STALE_GC_NS  (60ULL * 1000000000ULL)   /* unused stale entry freed */
#define ARP_RETRANS_NS   (1000000000ULL)           /* 1 s between requests     */
#define ARP_MAX_PROBES   3
#define ARP_PENDING_PER_ENTRY 16

struct arp_entry {
    struct arp_entry *hnext;          /* hash chain / free list          */
    uint32_t ip;
    uint8_t mac[6];
    uint8_t state;
    uint8_t probes;
    uint64_t confirmed;               /* ns */
    struct timer timer;
    struct pkt_queue pending;
    struct ust_stack *stack;
};

struct arp_cache {
    struct arp_entry *entries;
    struct arp_entry **buckets;
    struct arp_entry *free_list;
    uint32_t nbuckets_mask;
    uint32_t max_entries, used;
    uint32_t pending_total, pending_max;
};

int arp_init(struct ust_stack *s, uint32_t max_entries, uint32_t pending_max);
void arp_fini(struct ust_stack *s);

/* A static entry (never expires). 0 or -1 when the table is full. */
int arp_add_static(struct ust_stack *s, uint32_t ip, const uint8_t mac[6]);

/* Input: p holds the ARP message at pkt_data. Takes ownership. */
void arp_input(struct ust_stack *s, struct pkt *p);

/* Send p (an IP packet at pkt_data) to next_hop: prepends Ethernet and
 * transmits when the neighbour is known, else queues it and resolves.
 * Takes ownership. */
void arp_output(struct ust_stack *s, struct pkt *p, uint32_t next_hop);

/* Gratuitous ARP for each of our addresses (RFC 5227 announcement form). */
void arp_announce(struct ust_stack *s);

/* Look up a neighbour's MAC without side effects; 0 when usable. */
int arp_lookup(struct ust_stack *s, uint32_t ip, uint8_t mac[6]);

#endif
