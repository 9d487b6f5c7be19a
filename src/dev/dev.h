/* One ops table for every packet I/O backend (memif, tap, afpacket, the
 * in-memory link, the fault-injecting wrapper; afxdp and dpdk later).
 *
 * Life cycle: dev_open(spec) parses "KIND:ARGS" and calls ops->open; the
 * stack then makes its packet pool, placing the data area in memory from
 * ops->pool_mem when the backend offers it (shared regions, UMEM), and calls
 * ops->start. rx_burst/tx_burst move packets; ops->service runs the control
 * plane (connection handshakes) once per loop; ops->poll_fds tells the loop
 * what to sleep on when idle. Backend types never leave the backend. */
#ifndef UST_DEV_DEV_H
#define UST_DEV_DEV_H

#include <poll.h>
#include <stdint.h>

#include "core/pkt.h"
#include "core/counters.h"

#define DEV_F_L3       0x1   /* frames are bare IPv4 packets: no Ethernet, no ARP */
#define DEV_F_LINK_UP  0x2   /* ready to carry frames (memif: connected)        */
#define DEV_F_HAS_MAC  0x4   /* mac[] holds the interface's own address         */
#define DEV_F_SERVICE_ON_WORK 0x8 /* ask service() again after frames moved: it alone
                                     knows whether to keep polling (dpdk: no fd) */

struct dev;

struct dev_ops {
    const char *kind;
    /* Parse args (the part after "KIND:") and acquire resources. Sets
     * d->mtu when the device knows it and d->mac + DEV_F_HAS_MAC when it has
     * an address of its own. Returns 0 or -1 with a message on stderr. */
    int (*open)(struct dev *d, const char *args);
    /* Optional: memory (bytes long) for the packet pool's data area, e.g. a
     * shared region, so frames move without copies. NULL: the stack allocates. */
    void *(*pool_mem)(struct dev *d, size_t bytes);
    /* Called once the pool exists; d->pool is set. */
    int (*start)(struct dev *d);
    /* Receive up to max frames into pkts (buffers from d->pool, frame at
     * pkt_data). Returns the number received. */
    uint16_t (*rx_burst)(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now);
    /* Send n frames. Always takes ownership of all n: frames it cannot send
     * are freed and counted (ctr dev_tx_drop). Returns the number sent. */
    uint16_t (*tx_burst)(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now);
    /* Optional: control plane work; returns the next time (ns) it wants to
     * run, or UINT64_MAX. */
    uint64_t (*service)(struct dev *d, uint64_t now);
    /* Descriptors to sleep on when idle (POLLIN); returns how many were set. */
    int (*poll_fds)(struct dev *d, struct pollfd *fds, int max);
    /* Optional: the stack's IPv4 addresses (host order), told after start,
     * for a backend that steers in the kernel (afxdp's XDP program). */
    int (*addrs_set)(struct dev *d, const uint32_t *ipv4, int n);
    void (*close)(struct dev *d);
};

struct dev {
    const struct dev_ops *ops;
    void *priv;
    struct pkt_pool *pool;
    struct ust_counters *ctr;
    uint32_t flags;
    uint32_t mtu;             /* 0 = not known by the backend                  */
    uint8_t mac[6];
    uint16_t queue;           /* device queue served by this stack             */
};

/* "KIND:ARGS" -> an opened device, or -1 (message on stderr). The fault
 * wrapper's spec is "fault:OPTS+INNER-SPEC". */
int dev_open(struct dev *d, const char *spec, struct ust_counters *ctr);
void dev_close(struct dev *d);

/* Registry used by dev_open: each backend file defines one of these. */
extern const struct dev_ops dev_memif_ops;
extern const struct dev_ops dev_tap_ops;
extern const struct dev_ops dev_afpacket_ops;
extern const struct dev_ops dev_fault_ops;
extern const struct dev_ops dev_dpdk_ops;     /* dpdk/dpdk.c, or dpdk_absent.c */
extern const struct dev_ops dev_memlink_ops;
extern const struct dev_ops dev_afxdp_ops;   /* src/dev/afxdp/, or afxdp_absent.c */

/* poll_fds for a backend that sleeps on a single descriptor. */
int dev_poll_one_fd(struct pollfd *fds, int max, int fd);

/* Split "key=value,key=value" style argument lists. Calls fn for each item
 * (value NULL when there is no '='); stops at the first non-zero return. */
int dev_args_each(const char *args, char sep,
                  int (*fn)(void *ctx, const char *key, const char *val), void *ctx);

#endif
