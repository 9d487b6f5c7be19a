/* The shared stack options (DESIGN.md "Conventions"), parsed once for every
 * program from the command line and USTACK_* environment variables. */
#ifndef UST_API_CONFIG_H
#define UST_API_CONFIG_H

#include <stdint.h>

#include "ustack/ustack.h"

#define CFG_MAX_ADDRS 16
#define CFG_MAX_NEIGH 64
#define CFG_DEV_LEN 512

struct cfg_addr {
    uint32_t addr;            /* host order */
    uint8_t prefix;
};

struct cfg_neigh {
    uint32_t ip;
    uint8_t mac[6];
};

struct ust_config {
    char dev[CFG_DEV_LEN];
    struct cfg_addr addrs[CFG_MAX_ADDRS];
    int naddrs;
    uint32_t gw;                      /* 0 = none */
    uint8_t mac[6];
    int has_mac;
    struct cfg_neigh neigh[CFG_MAX_NEIGH];
    int nneigh;
    uint32_t mtu;                     /* 0 = the device's, else 1500 */
    uint32_t workers;
    char pcap[256];
    int stats;
    int busy_poll;
    /* pools and limits */
    uint32_t pkts;                    /* frame buffers                       */
    uint32_t big_pkts;                /* 64 KiB buffers (reassembly, big UDP) */
    uint32_t arp_entries;
    uint32_t arp_pending;             /* packets waiting for ARP, per stack  */
    uint32_t frag_sets;
    uint32_t frag_frags;
    uint32_t frag_timeout_ms;
    uint32_t udp_rcvq;                /* datagrams queued per UDP socket     */
    uint32_t icmp_rate;               /* ICMP errors per second              */
    uint32_t tcp_conns;               /* TCBs (address space reserved, touched lazily) */
    uint32_t tcp_sndbuf, tcp_rcvbuf;  /* default buffer sizes, bytes        */
    uint32_t tcp_sndbuf_max, tcp_rcvbuf_max;   /* autotuning ceilings     */
    uint32_t tcp_syn_backlog;         /* half-open per listener before SYN cookies */
    uint32_t tcp_ooo_max;             /* out-of-order buffers per stack     */
    uint32_t tcp_tw_max;              /* TIME-WAIT records                  */
    uint32_t tcp_time_wait_s;         /* TIME-WAIT length                   */
};

void config_defaults(struct ust_config *cfg);

#endif
