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
    X(tcp_rx)              /* segments received                             */ \
    X(tcp_tx)              /* segments sent                                 */ \
    X(tcp_drop_malformed)                                                      \
    X(tcp_drop_csum)                                                           \
    X(tcp_drop_noport)     /* no connection or listener: RST sent           */ \
    X(tcp_drop_unacceptable) /* failed the sequence test (RFC 9293 3.10.7.4) */ \
    X(tcp_drop_paws)       /* PAWS: old timestamp (RFC 7323 5)              */ \
    X(tcp_drop_listen_overflow) /* accept queue full                       */ \
    X(tcp_drop_nomem)      /* no TCB or buffer                              */ \
    X(tcp_drop_ooo_full)   /* out-of-order queue bound reached              */ \
    X(tcp_drop_rcvbuf)     /* beyond the receive window or buffer           */ \
    X(tcp_challenge_ack)   /* RFC 5961 challenge ACKs sent                  */ \
    X(tcp_rst_rx)                                                              \
    X(tcp_rst_tx)                                                              \
    X(tcp_active_opens)                                                        \
    X(tcp_passive_opens)                                                       \
    X(tcp_syncookies_sent)                                                     \
    X(tcp_syncookies_ok)                                                       \
    X(tcp_syncookies_failed)                                                   \
    X(tcp_retransmits)     /* segments retransmitted                        */ \
    X(tcp_rto)             /* retransmission timeouts                       */ \
    X(tcp_fast_retransmits) /* recoveries entered                           */ \
    X(tcp_rack_lost)       /* segments RACK marked lost                     */ \
    X(tcp_tlp)             /* tail loss probes sent                         */ \
    X(tcp_frto_spurious)   /* RTOs found spurious by F-RTO (undone)          */ \
    X(tcp_dsack_rx)                                                            \
    X(tcp_ooo_segments)    /* segments queued out of order                  */ \
    X(tcp_dup_segments)    /* wholly duplicate segments                     */ \
    X(tcp_delayed_acks)                                                        \
    X(tcp_zero_window_probes)                                                  \
    X(tcp_keepalive_probes)                                                    \
    X(tcp_timeouts)        /* connections given up after retries            */ \
    X(tcp_pmtu_updates)    /* MSS lowered by ICMP fragmentation needed      */ \
    X(tcp_icmp_ignored)    /* ICMP errors failing the sequence check        */ \
    X(tcp_tw_reuse)        /* TIME-WAIT tuple reused by a new SYN (RFC 6191) */ \
    X(tcp_tw_recycled)     /* TIME-WAIT table full: oldest dropped          */ \
    X(tcp_tw_rst_ignored)  /* RFC 1337                                      */ \
    X(pool_empty)          /* packet allocations that failed                */ \
    X(pcap_errors)                                                             \
    X(steer_tx)            /* handed to the worker that owns the flow       */ \
    X(steer_rx)            /* taken over from another worker                */ \
    X(steer_arp_copies)    /* ARP frames copied to the other workers        */ \
    X(steer_drop)          /* handoff dropped: ring full or no buffer       */ \
    X(dev_xdp_fill_empty)  /* AF_XDP: frames the kernel found no fill buffer for */ \
    X(dev_xdp_invalid_descs) /* AF_XDP: ring descriptors the kernel rejected */ \
    X(dev_nic_rx_nombuf)   /* DPDK: receive drops, the driver's mbuf pool empty */ \
    X(dev_nic_errors)      /* DPDK: the port's receive + transmit errors    */

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
