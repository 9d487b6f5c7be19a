/* Per-stack counters: received, sent and dropped by reason, per layer.
 * One X-macro list so that the struct, the names printed by --stats and the
 * exported snapshot can never disagree. To add a counter add one line. */
#ifndef UST_CORE_COUNTERS_H
#define UST_CORE_COUNTERS_H

#include <stdint.h>
#include <stdio.h>

#define UST_COUNTERS(X)                                                        \
    X(dev_rx)              /* frames received from the device               */ \
    X(dev_tx)              /* frames handed to the device                   */ \
    X(dev_rx_bytes)                                                            \
    X(dev_tx_bytes)                                                            \
    X(dev_rx_nobuf)        /* receive dropped: packet pool empty            */ \
    X(dev_rx_oversize)     /* receive dropped: frame larger than a buffer   */ \
    X(dev_rx_csum_partial) /* frames with an unfilled local L4 checksum     */ \
    X(dev_tx_drop)         /* transmit dropped: ring full or device down    */ \
    X(dev_kernel_drops)    /* drops the kernel reports (PACKET_STATISTICS)  */ \
    X(fault_drop)          /* fault wrapper: dropped on purpose             */ \
    X(fault_dup)                                                               \
    X(fault_reorder)                                                           \
    X(fault_corrupt)                                                           \
    X(fault_delay)                                                             \
    X(eth_rx)                                                                  \
    X(eth_tx)                                                                  \
    X(eth_drop_short)                                                          \
    X(eth_drop_not_us)     /* unicast to another MAC                        */ \
    X(eth_drop_type)       /* unsupported ethertype (VLAN, IPv6, ...)       */ \
    X(arp_rx)                                                                  \
    X(arp_tx)                                                                  \
    X(arp_rx_request)                                                          \
    X(arp_rx_reply)                                                            \
    X(arp_tx_request)                                                          \
    X(arp_tx_reply)                                                            \
    X(arp_drop_malformed)                                                      \
    X(arp_drop_not_us)     /* neither for us nor a known neighbour          */ \
    X(arp_drop_bogus_sender) /* sender is broadcast/multicast/zero/us       */ \
    X(arp_cache_full)      /* no entry free, none evictable                 */ \
    X(arp_pending_drop)    /* packet waiting for resolution dropped         */ \
    X(arp_resolve_fail)    /* neighbour never answered                      */ \
    X(ip_rx)                                                                   \
    X(ip_tx)                                                                   \
    X(ip_drop_truncated)                                                       \
    X(ip_drop_version)                                                         \
    X(ip_drop_hdrlen)                                                          \
    X(ip_drop_len)                                                             \
    X(ip_drop_csum)                                                            \
    X(ip_drop_not_us)                                                          \
    X(ip_drop_src)         /* martian source (broadcast, multicast, ours)   */ \
    X(ip_drop_proto)       /* no handler for the protocol                   */ \
    X(ip_drop_noroute)                                                         \
    X(ip_drop_ttl)                                                             \
    X(ip_drop_tx_nobuf)                                                        \
    X(ip_frag_tx)          /* fragments sent                                */ \
    X(ip_frag_rx)          /* fragments received                            */ \
    X(ip_frag_reassembled)                                                     \
    X(ip_frag_drop_overlap)                                                    \
    X(ip_frag_drop_oversize)                                                   \
    X(ip_frag_drop_timeout)                                                    \
    X(ip_frag_drop_evicted) /* oldest set evicted to make room              */ \
    X(ip_frag_drop_bad)    /* malformed fragment (bad length/offset)        */ \
    X(ip_frag_drop_toomany) /* set needs more than IPFRAG_MAX_PER_SET frags  */ \
    X(ip_frag_drop_df)     /* too big and DF set: not sent                  */ \
    X(icmp_rx)                                                                 \
    X(icmp_tx)                                                                 \
    X(icmp_rx_echo)                                                            \
    X(icmp_tx_echo_reply)                                                      \
    X(icmp_rx_unreach)                                                         \
    X(icmp_rx_frag_needed)                                                     \
    X(icmp_tx_port_unreach)                                                    \
    X(icmp_ratelimited)                                                        \
    X(icmp_drop_malformed)                                                     \
    X(icmp_drop_csum)                                                          \
    X(icmp_drop_type)      /* types we do not act on                        */ \
    X(udp_rx)                                                                  \
    X(udp_tx)                                                                  \
    X(udp_drop_malformed)                                                      \
    X(udp_drop_csum)                                                           \
    X(udp_drop_noport)                                                         \
    X(udp_drop_rcvbuf)     /* socket receive queue full                     */ \
    X(pool_empty)          /* packet allocations that failed                */ \
    X(pcap_errors)

struct ust_counters {
#define UST_COUNTER_FIELD(name) uint64_t name;
    UST_COUNTERS(UST_COUNTER_FIELD)
#undef UST_COUNTER_FIELD
};

#define CTR_INC(c, name) ((c)->name++)
#define CTR_ADD(c, name, n) ((c)->name += (n))

/* Print every non-zero counter as "name value" lines (all when all != 0). */
void counters_print(const struct ust_counters *c, FILE *out, int all);
/* Value of a counter by name; -1 when the name is unknown. */
int counters_get(const struct ust_counters *c, const char *name, uint64_t *value);

#endif
