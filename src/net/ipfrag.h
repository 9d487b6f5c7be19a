/* IPv4 reassembly (RFC 791, RFC 815) with bounded memory.
 *
 * Fragments are held as received frames (no copy) per set keyed by
 * (src, dst, proto, id). Bounds: at most max_sets sets and max_frags held
 * fragments per stack; a set that would exceed 65535 bytes, or whose fragments
 * overlap (RFC 5722's rule for IPv6, applied here too: overlaps are a known
 * attack and never legitimate), is dropped whole. A set not completed within
 * the timeout is dropped. When a new set finds the table full the OLDEST
 * incomplete set is evicted, so a flood of never-completed sets cannot lock
 * out legitimate traffic (Linux keeps them for 30 s). */
#ifndef UST_NET_IPFRAG_H
#define UST_NET_IPFRAG_H

#include <stdint.h>

#include "core/counters.h"
#include "core/hash.h"
#include "core/pkt.h"
#include "core/wheel.h"
#include "wire/ipv4.h"

struct ipfrag_set;

struct ipfrag_table {
    struct ipfrag_set *sets;          /* max_sets entries, allocated at init */
    struct ipfrag_set **hash;         /* buckets                             */
    uint32_t hash_mask;
    uint32_t max_sets, max_frags;
    uint32_t used_sets, held_frags;
    uint64_t timeout_ns;
    struct ipfrag_set *lru_head, *lru_tail;   /* oldest first                */
    struct ipfrag_set *free_sets;
    struct pkt_pool *big_pool;        /* where reassembled datagrams go       */
    struct wheel *wheel;
    struct ust_counters *ctr;
    struct hash_key key;              /* secret from ipfrag_init: a sender cannot
                                         aim its sets at one bucket          */
};

/* A set needing more fragments than this is dropped whole. */
#define IPFRAG_MAX_PER_SET 64

int ipfrag_init(struct ipfrag_table *t, uint32_t max_sets, uint32_t max_frags, uint64_t timeout_ns,
                struct pkt_pool *big_pool, struct wheel *wheel, struct ust_counters *ctr);
void ipfrag_fini(struct ipfrag_table *t);

/* Take one fragment. p holds the frame with p->l3 at the IPv4 header, ip is
 * its parsed header and p->len ends at the datagram's total length (padding
 * trimmed). Ownership of p passes to the table. When the set completes,
 * returns a new pkt from big_pool holding the whole datagram: a 20-byte IPv4
 * header (copied from the first fragment, options dropped, MF/offset cleared,
 * total_len set, checksum recomputed) then the payload, with l3 = off and
 * l4 = off + 20; *out_ip is filled with its parsed header. Otherwise NULL. */
struct pkt *ipfrag_input(struct ipfrag_table *t, struct pkt *p, const struct ipv4_repr *ip,
                         uint64_t now, struct ipv4_repr *out_ip);

#endif
