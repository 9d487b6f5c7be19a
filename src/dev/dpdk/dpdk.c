/* DPDK backend:
 *   "dpdk:EAL ARGS[;port=N][;rxd=N][;txd=N][;mbufs=N][;mbuf=BYTES][;spin=US][;intr=0|1]"
 *
 * +--------------------------------------------------------------------------+
 * | The spec                                                                 |
 * |  - Everything before the first ';' is the EAL command line, split on     |
 * |    spaces (no quoting), e.g.                                             |
 * |      dpdk:--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=eth1 -l 0|
 * |  - After it, ';'-separated options: port (default 0: the first port the  |
 * |    EAL found), rxd/txd (ring descriptors per queue, default 1024, the    |
 * |    driver may adjust them), mbufs (per queue mempool, default 4095),    |
 * |    mbuf (data bytes of each, default 2048), spin and intr (see below).  |
 * |  - ",queue=I,queues=N" at the very end is what ust_workers_run appends   |
 * |    for worker I of N; it is recognised before anything else is split,   |
 * |    since EAL arguments (--vdev=...,iface=...) contain commas themselves.|
 * |                                                                          |
 * | What it does                                                             |
 * |  - The EAL is initialised once per process, by the first open, with the |
 * |    first spec's EAL arguments (later opens reuse it). rte_eal_init pins  |
 * |    the calling thread to its first lcore; the thread's CPU affinity is   |
 * |    put back afterwards, because ustack places its own threads (worker   |
 * |    threads are not EAL lcores; the ethdev burst calls and mempools with  |
 * |    no per-lcore cache work from any thread).                            |
 * |  - The first open also configures the port with `queues` RX and TX      |
 * |    queues (RSS over IP/TCP/UDP when there are several and the driver    |
 * |    hashes; otherwise the workers' software steering hands frames over), |
 * |    one mbuf pool per queue (only its worker allocates and frees from    |
 * |    it), and starts it. Each dev then serves queue `queue`.              |
 * |  - net_af_packet joins its sockets to a fanout group with the DEFRAG   |
 * |    flag, so the kernel hands over IPv4 datagrams reassembled, longer   |
 * |    than the MTU, in chained mbufs. Such a datagram is cut into MTU-    |
 * |    sized fragments again here (RFC 791 3.2) and the stack reassembles  |
 * |    them as it would from any NIC; other frames longer than a buffer    |
 * |    are dropped (dev_rx_oversize). The driver cannot chain mbufs, and   |
 * |    its ring slots (framesz, default 2048) truncate longer datagrams,   |
 * |    so for IPv4 fragments up to ~16 KiB give the vdev                   |
 * |    framesz=16384,blocksz=16384 and this backend mbuf=16384 (and fewer |
 * |    mbufs, e.g. mbufs=1023, or more -m memory).                          |
 * |  - net_af_xdp makes each queue's mbuf pool its UMEM: it registers the   |
 * |    pool's memory from the first object for (objects x object size)     |
 * |    bytes. Its pools are therefore made packed (dpdk_pool_make), in one  |
 * |    piece, and with objects of at most a page (the default mbuf=2048;   |
 * |    the kernel's limit on a UMEM chunk), else the open fails saying so. |
 * |  - net_tap creates its TAP interface in the process's network         |
 * |    namespace, with the port's own MAC address.                          |
 * |  - rte_mbuf never leaves this file: rx_burst copies each frame into a   |
 * |    ustack buffer and frees the mbufs in bulk; tx_burst copies frames    |
 * |    into mbufs taken in bulk and sends them with rte_eth_tx_burst,       |
 * |    retrying a full ring a few times before dropping (dev_tx_drop).       |
 * |  - MAC from rte_eth_macaddr_get, MTU from rte_eth_dev_get_mtu, link     |
 * |    state (DEV_F_LINK_UP) and statistics read in service() every 100 ms. |
 * |    Port-wide statistics are added by the queue-0 dev only, so workers   |
 * |    do not count them N times: imissed -> dev_kernel_drops, rx_nombuf    |
 * |    -> dev_nic_rx_nombuf, ierrors + oerrors -> dev_nic_errors.          |
 * |  - Rx interrupts (intr=1, the default): the port is configured with    |
 * |    them and each dev puts its queue's interrupt in an epoll set whose  |
 * |    fd poll_fds hands the loop, so an idle stack sleeps until a frame   |
 * |    comes. Of the virtual devices only net_tap has them (its queue fd); |
 * |    idle ust-udpecho on net_tap: ~20 wakeups/s instead of ~930/s. (The  |
 * |    latency is unchanged: net_tap also sends a signal per frame, which   |
 * |    cut the 1 ms nap short already.)                                      |
 * |    A port that will not start with them is started without; a driver   |
 * |    that has none (net_af_packet, net_af_xdp) is polled as below.       |
 * |  - Without an interrupt there is no descriptor to sleep on. service()  |
 * |    tells the loop when to look again: at once (spin) while a frame went |
 * |    in or out within the last `spin` us (default 1000), so a request/    |
 * |    reply exchange runs at busy-poll speed; after that quiet time every |
 * |    millisecond, so an idle stack costs little CPU but the first frame  |
 * |    after a pause can wait up to 1 ms. --busy-poll spins always;        |
 * |    spin=0 never spins. The spin needs the loop to ask service() again  |
 * |    right after traffic (stack.c: dev_next reset when did_work); without |
 * |    that only --busy-poll avoids the 1 ms steps. Measured (ust-udpping,  |
 * |    64 bytes, python echo in the kernel over veth, net_af_packet, 20000):|
 * |      spin=0 921 round trips/s (1086 us), spin=200 17338/s (58 us, 23%  |
 * |      CPU), spin=1000 38093/s (26 us, 68% CPU), --busy-poll 31627/s.    |
 * |  - Closing the last dev stops the port; the port is closed and the EAL  |
 * |    cleaned up (rte_eal_cleanup) at process exit, because the EAL cannot |
 * |    be initialised twice in one process and a stack may be made again.  |
 * +--------------------------------------------------------------------------+
 */
#include "dev/dev.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/ipv4.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_epoll.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

#define DPDK_MAX_QUEUES   64u
#define DPDK_MAX_EAL_ARGS 64
#define DPDK_SPEC_MAX     512u
#define DPDK_RXD_DEFAULT  1024u
#define DPDK_TXD_DEFAULT  1024u
#define DPDK_DESC_MAX     16384u
#define DPDK_MBUFS_DEFAULT 4095u    /* 2^n - 1 suits the mempool's ring        */
#define DPDK_MBUFS_MAX    1048575u
#define DPDK_BURST_MAX    64u
#define DPDK_TX_TRIES     4         /* rte_eth_tx_burst attempts on a full ring */
#define DPDK_STATS_PERIOD_NS 100000000ull
#define DPDK_IDLE_POLL_NS 1000000ull
#define DPDK_SPIN_DEFAULT_US 1000u
#define DPDK_SPIN_MAX_US  1000000u

/* IPv4 header fields rewritten when a reassembled datagram is cut up again
 * (RFC 791 section 3.1), offsets from the start of the IPv4 header. */
#define IP_OFF_VER_IHL   0
#define IP_OFF_TOTAL_LEN 2
#define IP_OFF_FRAG      6
#define IP_OFF_CSUM      10
#define ETH_OFF_TYPE     12

/* Options of one spec. */
struct dpdk_opts {
    char eal[DPDK_SPEC_MAX];
    unsigned port, rxd, txd, mbufs, mbuf_bytes, spin_us, intr;
    unsigned queue, queues;
};

/* Process-wide: the EAL and the port are shared by every worker's dev. */
static struct {
    pthread_mutex_t lock;
    int eal_ready;
    int port_ready;            /* configured, queues set up                   */
    int port_started;
    int rx_intr;               /* configured with Rx queue interrupts         */
    uint16_t port;
    unsigned queues;
    unsigned users;            /* open devs                                   */
    struct rte_mempool *pools[DPDK_MAX_QUEUES];
    char *argv[DPDK_MAX_EAL_ARGS + 1];
    char argbuf[DPDK_SPEC_MAX];
} dpdk_g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* One dev: one queue of the shared port. */
struct dpdk_dev {
    uint16_t port, queue;
    struct rte_mempool *pool;
    uint64_t next_stats;
    uint64_t spin_ns;            /* keep polling this long after traffic     */
    uint64_t last_traffic;       /* ns: last frame in or out                 */
    int intr_fd;                 /* epoll fd holding the queue's Rx interrupt, or -1 */
    int intr_armed;              /* poll_fds enabled it: acknowledge on waking */
    struct rte_eth_stats last;   /* port-wide totals already counted (queue 0) */
};

/* ---- options ------------------------------------------------------------ */

static int dpdk_parse_uint(const char *key, const char *val, unsigned min, unsigned max,
                           unsigned *out)
{
    char *end;
    if (val && *val) {
        errno = 0;
        unsigned long v = strtoul(val, &end, 10);
        if (!errno && !*end && v >= min && v <= max) {
            *out = (unsigned)v;
            return 0;
        }
    }
    fprintf(stderr, "dpdk: bad value for %s (%u..%u)\n", key, min, max);
    return -1;
}

static int dpdk_option(void *ctx, const char *key, const char *val)
{
    struct dpdk_opts *o = ctx;
    if (strcmp(key, "port") == 0)
        return dpdk_parse_uint(key, val, 0, RTE_MAX_ETHPORTS - 1, &o->port);
    if (strcmp(key, "rxd") == 0)
        return dpdk_parse_uint(key, val, 1, DPDK_DESC_MAX, &o->rxd);
    if (strcmp(key, "txd") == 0)
        return dpdk_parse_uint(key, val, 1, DPDK_DESC_MAX, &o->txd);
    if (strcmp(key, "mbufs") == 0)
        return dpdk_parse_uint(key, val, 64, DPDK_MBUFS_MAX, &o->mbufs);
    if (strcmp(key, "mbuf") == 0)
        return dpdk_parse_uint(key, val, 2048, UINT16_MAX - RTE_PKTMBUF_HEADROOM, &o->mbuf_bytes);
    if (strcmp(key, "spin") == 0)
        return dpdk_parse_uint(key, val, 0, DPDK_SPIN_MAX_US, &o->spin_us);
    if (strcmp(key, "intr") == 0)
        return dpdk_parse_uint(key, val, 0, 1, &o->intr);
    fprintf(stderr, "dpdk: unknown option '%s' "
            "(want dpdk:EAL ARGS[;port=N][;rxd=N][;txd=N][;mbufs=N][;mbuf=BYTES][;spin=US][;intr=0|1])\n",
            key);
    return -1;
}

/* Cut the ",queue=I,queues=N" that ust_workers_run appends off the end. */
static int dpdk_strip_queue_suffix(char *spec, struct dpdk_opts *o)
{
    char *at = strrchr(spec, ',');
    if (!at || strncmp(at, ",queues=", 8) != 0)
        return 0;
    *at = '\0';
    char *q = strrchr(spec, ',');
    if (!q || strncmp(q, ",queue=", 7) != 0) {
        *at = ',';
        return 0;
    }
    if (dpdk_parse_uint("queues", at + 8, 1, DPDK_MAX_QUEUES, &o->queues) ||
        dpdk_parse_uint("queue", q + 7, 0, DPDK_MAX_QUEUES - 1, &o->queue))
        return -1;
    *q = '\0';
    if (o->queue >= o->queues) {
        fprintf(stderr, "dpdk: queue %u out of range (queues=%u)\n", o->queue, o->queues);
        return -1;
    }
    return 0;
}

static int dpdk_parse(const char *args, struct dpdk_opts *o)
{
    char spec[DPDK_SPEC_MAX];
    *o = (struct dpdk_opts){.rxd = DPDK_RXD_DEFAULT, .txd = DPDK_TXD_DEFAULT,
                            .mbufs = DPDK_MBUFS_DEFAULT, .queues = 1,
                            .spin_us = DPDK_SPIN_DEFAULT_US, .intr = 1,
                            .mbuf_bytes = RTE_MBUF_DEFAULT_DATAROOM};
    if (strlen(args) >= sizeof(spec)) {
        fprintf(stderr, "dpdk: spec too long\n");
        return -1;
    }
    strcpy(spec, args);
    if (dpdk_strip_queue_suffix(spec, o))
        return -1;
    char *semi = strchr(spec, ';');
    if (semi) {
        *semi = '\0';
        if (dev_args_each(semi + 1, ';', dpdk_option, o))
            return -1;
    }
    strcpy(o->eal, spec);
    if (!strpbrk(o->eal, "-")) {
        fprintf(stderr, "dpdk: no EAL arguments (want dpdk:EAL ARGS[;port=N], e.g. "
                "'dpdk:--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=eth1 -l 0')\n");
        return -1;
    }
    return 0;
}

/* ---- EAL ---------------------------------------------------------------- */

/* Split the EAL string on spaces into the static argv (the EAL may keep
 * pointers into it). Returns argc or -1. */
static int dpdk_eal_argv(const char *eal)
{
    strcpy(dpdk_g.argbuf, eal);
    int argc = 0;
    dpdk_g.argv[argc++] = (char *)"ustack";
    for (char *save = NULL, *tok = strtok_r(dpdk_g.argbuf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        if (argc == DPDK_MAX_EAL_ARGS) {
            fprintf(stderr, "dpdk: more than %d EAL arguments\n", DPDK_MAX_EAL_ARGS - 1);
            return -1;
        }
        dpdk_g.argv[argc++] = tok;
    }
    dpdk_g.argv[argc] = NULL;
    return argc;
}

static void dpdk_at_exit(void)
{
    pthread_mutex_lock(&dpdk_g.lock);
    if (dpdk_g.port_ready) {
        if (dpdk_g.port_started)
            (void)rte_eth_dev_stop(dpdk_g.port);
        (void)rte_eth_dev_close(dpdk_g.port);
    }
    dpdk_g.port_ready = dpdk_g.port_started = 0;
    if (dpdk_g.eal_ready)
        (void)rte_eal_cleanup();
    dpdk_g.eal_ready = 0;
    pthread_mutex_unlock(&dpdk_g.lock);
}

/* rte_eal_init binds the calling thread to an lcore's CPUs; give it back
 * the affinity it had. */
static int dpdk_eal_init(const char *eal)
{
    if (dpdk_g.eal_ready)
        return 0;
    int argc = dpdk_eal_argv(eal);
    if (argc < 0)
        return -1;
    cpu_set_t cpus;
    int have_cpus = pthread_getaffinity_np(pthread_self(), sizeof(cpus), &cpus) == 0;
    if (rte_eal_init(argc, dpdk_g.argv) < 0) {
        fprintf(stderr, "dpdk: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
        return -1;
    }
    if (have_cpus)
        (void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
    dpdk_g.eal_ready = 1;
    atexit(dpdk_at_exit);
    return 0;
}

/* ---- port --------------------------------------------------------------- */

static int dpdk_port_check(const struct dpdk_opts *o, struct rte_eth_dev_info *info)
{
    if (rte_eth_dev_count_avail() == 0) {
        fprintf(stderr, "dpdk: the EAL found no port (give --vdev=... or bind a NIC to vfio-pci)\n");
        return -1;
    }
    if (!rte_eth_dev_is_valid_port((uint16_t)o->port)) {
        fprintf(stderr, "dpdk: no port %u (%u available)\n", o->port, rte_eth_dev_count_avail());
        return -1;
    }
    int rc = rte_eth_dev_info_get((uint16_t)o->port, info);
    if (rc != 0) {
        fprintf(stderr, "dpdk: port %u: dev_info: %s\n", o->port, rte_strerror(-rc));
        return -1;
    }
    if (o->queues > info->max_rx_queues || o->queues > info->max_tx_queues) {
        fprintf(stderr, "dpdk: port %u (%s) has %u rx / %u tx queues, %u workers need one each "
                "(net_af_packet: add qpairs=N to its --vdev)\n", o->port, info->driver_name,
                info->max_rx_queues, info->max_tx_queues, o->queues);
        return -1;
    }
    return 0;
}

/* Several queues: let the device spread flows by its RSS hash when it has one. */
static void dpdk_port_conf(const struct dpdk_opts *o, const struct rte_eth_dev_info *info,
                           int rx_intr, struct rte_eth_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->intr_conf.rxq = rx_intr ? 1 : 0;
    /* Frames longer than an mbuf (net_af_packet's reassembled datagrams)
     * arrive chained instead of being dropped by the driver. */
    conf->rxmode.offloads = info->rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER;
    uint64_t hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info->flow_type_rss_offloads;
    if (o->queues > 1 && hf) {
        conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf->rx_adv_conf.rss_conf.rss_hf = hf;
    }
}

/* The mbuf pool of one queue, made step by step (what rte_pktmbuf_pool_create
 * does) so that it can be packed: net_af_xdp registers the pool's memory
 * as its UMEM from the first object's page for populated_size * object size
 * bytes, so objects must lie back to back in one chunk. The default layout
 * keeps each object inside one page (one 2.3 KiB mbuf per 4 KiB page with
 * --no-huge, a gap at each 2 MiB with hugepages); the objects past the end
 * of the UMEM then carry frames the kernel rejects, and reception stops
 * once the pool has cycled to them. RTE_MEMPOOL_F_NO_IOVA_CONTIG packs
 * them. It is used only there: a NIC's DMA may need each mbuf IOVA-
 * contiguous. No per-lcore cache: worker threads are not EAL lcores. */
static struct rte_mempool *dpdk_pool_make(const char *name, unsigned n, unsigned bytes,
                                          int socket, int packed)
{
    struct rte_pktmbuf_pool_private priv = {.mbuf_data_room_size = (uint16_t)(bytes + RTE_PKTMBUF_HEADROOM)};
    struct rte_mempool *mp = rte_mempool_create_empty(
        name, n, (unsigned)sizeof(struct rte_mbuf) + priv.mbuf_data_room_size, 0, sizeof(priv),
        socket, packed ? RTE_MEMPOOL_F_NO_IOVA_CONTIG : 0);
    if (!mp)
        return NULL;
    int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
    if (rc == 0) {
        rte_pktmbuf_pool_init(mp, &priv);
        rc = rte_mempool_populate_default(mp);
    }
    if (rc < 0) {
        rte_errno = -rc;
        rte_mempool_free(mp);
        return NULL;
    }
    rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
    return mp;
}

/* net_af_xdp's limits on the pool that becomes its UMEM (see above): one
 * chunk, and the kernel takes UMEM chunks of at most a page. */
static int dpdk_pool_xdp_check(const struct rte_mempool *mp)
{
    size_t obj = (size_t)mp->header_size + mp->elt_size + mp->trailer_size;
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0 && obj > (size_t)page) {
        fprintf(stderr, "dpdk: net_af_xdp: mbufs of %zu bytes exceed a page (%ld): "
                "use the default mbuf size\n", obj, page);
        return -1;
    }
    if (mp->nb_mem_chunks != 1) {
        fprintf(stderr, "dpdk: net_af_xdp: the mbuf pool is in %u pieces of memory, its UMEM "
                "must be one: give the EAL more memory (-m) or use fewer mbufs\n", mp->nb_mem_chunks);
        return -1;
    }
    return 0;
}

static struct rte_mempool *dpdk_pool(uint16_t port, unsigned q, const struct dpdk_opts *o, int socket,
                                     int af_xdp)
{
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof(name), "ust_p%u_q%u", port, q);
    struct rte_mempool *mp = rte_mempool_lookup(name);
    if (mp)
        return mp;
    mp = dpdk_pool_make(name, o->mbufs, o->mbuf_bytes, socket, af_xdp);
    if (!mp) {
        fprintf(stderr, "dpdk: mbuf pool of %u: %s (with --no-huge give -m MB)\n", o->mbufs,
                rte_strerror(rte_errno));
        return NULL;
    }
    if (af_xdp && dpdk_pool_xdp_check(mp)) {
        rte_mempool_free(mp);
        return NULL;
    }
    return mp;
}

static int dpdk_queues_setup(const struct dpdk_opts *o, const struct rte_eth_dev_info *info,
                             uint16_t rxd, uint16_t txd)
{
    uint16_t port = (uint16_t)o->port;
    int socket = rte_eth_dev_socket_id(port);
    if (socket < 0)
        socket = SOCKET_ID_ANY;
    int af_xdp = info->driver_name && strcmp(info->driver_name, "net_af_xdp") == 0;
    for (unsigned q = 0; q < o->queues; q++) {
        dpdk_g.pools[q] = dpdk_pool(port, q, o, socket, af_xdp);
        if (!dpdk_g.pools[q])
            return -1;
        int rc = rte_eth_rx_queue_setup(port, (uint16_t)q, rxd, (unsigned)socket, NULL, dpdk_g.pools[q]);
        if (rc == 0)
            rc = rte_eth_tx_queue_setup(port, (uint16_t)q, txd, (unsigned)socket, NULL);
        if (rc != 0) {
            fprintf(stderr, "dpdk: port %u queue %u setup: %s%s\n", port, q, rte_strerror(-rc),
                    af_xdp ? " (net_af_xdp fills its ring with 2048 mbufs as it sets a queue up: "
                             "mbufs must be well above that, as the default 4095 is)" : "");
            return -1;
        }
    }
    return 0;
}

static int dpdk_port_setup(const struct dpdk_opts *o, int rx_intr)
{
    struct rte_eth_dev_info info;
    struct rte_eth_conf conf;
    uint16_t port = (uint16_t)o->port, rxd = (uint16_t)o->rxd, txd = (uint16_t)o->txd;
    if (dpdk_port_check(o, &info))
        return -1;
    dpdk_port_conf(o, &info, rx_intr, &conf);
    int rc = rte_eth_dev_configure(port, (uint16_t)o->queues, (uint16_t)o->queues, &conf);
    if (rc == 0)
        rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
    if (rc != 0) {
        fprintf(stderr, "dpdk: port %u configure: %s\n", port, rte_strerror(-rc));
        return -1;
    }
    if (dpdk_queues_setup(o, &info, rxd, txd))
        return -1;
    dpdk_g.port = port;
    dpdk_g.queues = o->queues;
    dpdk_g.rx_intr = rx_intr;
    dpdk_g.port_ready = 1;
    return 0;
}

static int dpdk_port_start(int quiet)
{
    if (dpdk_g.port_started)
        return 0;
    int rc = rte_eth_dev_start(dpdk_g.port);
    if (rc != 0) {
        if (!quiet)
            fprintf(stderr, "dpdk: port %u start: %s\n", dpdk_g.port, rte_strerror(-rc));
        return -1;
    }
    dpdk_g.port_started = 1;
    return 0;
}

/* First with Rx queue interrupts (intr=1, the default): drivers that have
 * none ignore the request, but a NIC whose interrupt vectors cannot be had
 * refuses to start; then once more without. */
static int dpdk_port_bringup(const struct dpdk_opts *o)
{
    if (o->intr) {
        if (dpdk_port_setup(o, 1) == 0 && dpdk_port_start(1) == 0)
            return 0;
        fprintf(stderr, "dpdk: port %u did not start with Rx interrupts; polling it instead\n", o->port);
        dpdk_g.port_ready = 0;
    }
    return dpdk_port_setup(o, 0) || dpdk_port_start(0);
}

/* The first open makes the port; later ones (other workers) must agree. */
static int dpdk_port_acquire(const struct dpdk_opts *o)
{
    if (!dpdk_g.port_ready)
        return dpdk_port_bringup(o);
    if (o->port != dpdk_g.port || o->queues != dpdk_g.queues) {
        fprintf(stderr, "dpdk: port %u with %u queues is already set up; cannot also use port %u "
                "with %u\n", dpdk_g.port, dpdk_g.queues, o->port, o->queues);
        return -1;
    }
    return dpdk_port_start(0);
}

/* ---- link ------------------------------------------------------------- */

static void dpdk_read_link(struct dev *d, uint16_t port)
{
    struct rte_ether_addr mac;
    uint16_t mtu;
    if (rte_eth_macaddr_get(port, &mac) == 0) {
        memcpy(d->mac, mac.addr_bytes, 6);
        d->flags |= DEV_F_HAS_MAC;
    }
    if (rte_eth_dev_get_mtu(port, &mtu) == 0)
        d->mtu = mtu;
    /* No fd to sleep on without Rx interrupts: after traffic the stack must
     * ask dpdk_service again at once, or it naps a whole DPDK_IDLE_POLL_NS
     * before the spin after traffic (spin=) takes over. */
    d->flags |= DEV_F_SERVICE_ON_WORK;
}

static void dpdk_refresh_link_up(struct dev *d, uint16_t port)
{
    struct rte_eth_link link;
    memset(&link, 0, sizeof(link));
    if (rte_eth_link_get_nowait(port, &link) != 0)
        return;
    if (link.link_status == RTE_ETH_LINK_UP)
        d->flags |= DEV_F_LINK_UP;
    else
        d->flags &= ~(uint32_t)DEV_F_LINK_UP;
}

static int dpdk_acquire(const struct dpdk_opts *o)
{
    pthread_mutex_lock(&dpdk_g.lock);
    int rc = dpdk_eal_init(o->eal) || dpdk_port_acquire(o) ? -1 : 0;
    if (rc == 0)
        dpdk_g.users++;
    pthread_mutex_unlock(&dpdk_g.lock);
    return rc;
}

static void dpdk_release(void)
{
    pthread_mutex_lock(&dpdk_g.lock);
    if (dpdk_g.users > 0 && --dpdk_g.users == 0 && dpdk_g.port_started) {
        int rc = rte_eth_dev_stop(dpdk_g.port);
        if (rc != 0)
            fprintf(stderr, "dpdk: port %u stop: %s\n", dpdk_g.port, rte_strerror(-rc));
        dpdk_g.port_started = 0;
    }
    pthread_mutex_unlock(&dpdk_g.lock);
}

/* ---- Rx interrupts ------------------------------------------------------ */

/* The queue's Rx interrupt in an epoll set of this dev's own, whose fd the
 * loop sleeps on; -1 when the port has none (net_af_packet, net_af_xdp:
 * polled as before). The EAL registers the interrupt's fd with a callback
 * of its own that rte_epoll_wait runs: it clears an eventfd (a NIC's MSI-X
 * vector) and leaves alone a descriptor that carries the frames themselves
 * (net_tap's queue fd, readable while frames wait). */
static int dpdk_intr_open(uint16_t port, uint16_t queue)
{
    if (!dpdk_g.rx_intr)
        return -1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    /* A driver without Rx interrupts makes ethdev log an error here; that
     * is only how we find out, so keep it quiet. */
    int logtype = rte_log_register("lib.ethdev"), level = 0;
    if (logtype >= 0) {
        level = rte_log_get_level((uint32_t)logtype);
        (void)rte_log_set_level((uint32_t)logtype, RTE_LOG_CRIT);
    }
    int rc = rte_eth_dev_rx_intr_ctl_q(port, queue, ep, RTE_INTR_EVENT_ADD, NULL);
    if (logtype >= 0 && level > 0)
        (void)rte_log_set_level((uint32_t)logtype, (uint32_t)level);
    if (rc != 0) {
        close(ep);
        return -1;
    }
    return ep;
}

static void dpdk_intr_close(struct dpdk_dev *x)
{
    if (x->intr_fd < 0)
        return;
    (void)rte_eth_dev_rx_intr_ctl_q(x->port, x->queue, x->intr_fd, RTE_INTR_EVENT_DEL, NULL);
    close(x->intr_fd);
    x->intr_fd = -1;
}

/* Back from sleep (or from a poll that did not sleep): take the events,
 * which clears the interrupt, and mask it again while we poll. */
static void dpdk_intr_ack(struct dpdk_dev *x)
{
    struct rte_epoll_event ev[4];
    (void)rte_epoll_wait(x->intr_fd, ev, 4, 0);
    (void)rte_eth_dev_rx_intr_disable(x->port, x->queue);   /* -ENOTSUP: nothing to mask */
    x->intr_armed = 0;
}

/* About to sleep: unmask the interrupt. A frame that came in before the
 * unmask raised none on a NIC; where the driver can count what waits, do
 * not sleep on the interrupt then (the loop falls back to a 1 ms nap).
 * net_tap cannot count, and needs not: its descriptor is the queue. */
static int dpdk_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct dpdk_dev *x = d->priv;
    if (x->intr_fd < 0)
        return 0;
    if (!x->intr_armed) {
        (void)rte_eth_dev_rx_intr_enable(x->port, x->queue);
        x->intr_armed = 1;
    }
    if (rte_eth_rx_queue_count(x->port, x->queue) > 0)
        return 0;
    return dev_poll_one_fd(fds, max, x->intr_fd);
}

/* ---- open / close ------------------------------------------------------- */

static int dpdk_open(struct dev *d, const char *args)
{
    struct dpdk_opts o;
    if (dpdk_parse(args, &o) || dpdk_acquire(&o))
        return -1;
    struct dpdk_dev *x = calloc(1, sizeof(*x));
    if (!x) {
        dpdk_release();
        return -1;
    }
    x->port = (uint16_t)o.port;
    x->queue = (uint16_t)o.queue;
    x->pool = dpdk_g.pools[o.queue];
    x->spin_ns = (uint64_t)o.spin_us * 1000u;
    pthread_mutex_lock(&dpdk_g.lock);   /* workers open at once; the log level is global */
    x->intr_fd = dpdk_intr_open(x->port, x->queue);
    pthread_mutex_unlock(&dpdk_g.lock);
    if (x->queue == 0)
        (void)rte_eth_stats_get(x->port, &x->last);   /* count from now on */
    dpdk_read_link(d, x->port);
    dpdk_refresh_link_up(d, x->port);
    d->queue = x->queue;
    d->priv = x;
    return 0;
}

static int dpdk_start(struct dev *d)
{
    return d->pool ? 0 : -1;
}

static void dpdk_close(struct dev *d)
{
    if (!d->priv)
        return;
    dpdk_intr_close(d->priv);
    free(d->priv);
    d->priv = NULL;
    dpdk_release();
}

/* ---- receive ------------------------------------------------------------ */

/* Bytes [off, off+len) of the mbuf chain into dst. */
static void dpdk_mbuf_copy(const struct rte_mbuf *m, uint32_t off, uint32_t len, uint8_t *dst)
{
    const void *src = rte_pktmbuf_read(m, off, len, dst);
    if (src && src != dst)
        memcpy(dst, src, len);   /* contiguous in the mbuf: read gave a pointer */
}

/* Copy one received mbuf into a pool buffer; NULL when it is dropped. */
static struct pkt *dpdk_rx_copy(struct dev *d, const struct rte_mbuf *m, uint64_t now)
{
    uint32_t cap = d->pool->room - PKT_HEADROOM;
    if (cap > UINT16_MAX)
        cap = UINT16_MAX;
    if (m->pkt_len > cap) {
        CTR_INC(d->ctr, dev_rx_oversize);
        return NULL;
    }
    if (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) {
        CTR_INC(d->ctr, eth_drop_type);   /* never take a tagged frame for untagged */
        return NULL;
    }
    struct pkt *p = pkt_alloc(d->pool);
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
        return NULL;
    }
    dpdk_mbuf_copy(m, 0, m->pkt_len, pkt_data(p));   /* one segment or a chain */
    p->len = (uint16_t)m->pkt_len;
    p->stamp = now;
    CTR_INC(d->ctr, dev_rx);
    CTR_ADD(d->ctr, dev_rx_bytes, p->len);
    return p;
}

/* One fragment: Ethernet + IPv4 header h (hlen bytes in all) then len bytes
 * of payload from `off` in the datagram; frag/mf are the fragment's own. */
static struct pkt *dpdk_rx_fragment(struct dev *d, const struct rte_mbuf *m, const uint8_t *h,
                                    uint32_t hlen, uint32_t off, uint32_t len, uint16_t frag,
                                    uint64_t now)
{
    struct pkt *p = pkt_alloc(d->pool);
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
        return NULL;
    }
    uint8_t *f = pkt_data(p), *ip = f + ETH_HDR_LEN;
    memcpy(f, h, hlen);
    dpdk_mbuf_copy(m, hlen + off, len, f + hlen);
    wr16(ip + IP_OFF_TOTAL_LEN, (uint16_t)(hlen - ETH_HDR_LEN + len));
    wr16(ip + IP_OFF_FRAG, frag);
    wr16(ip + IP_OFF_CSUM, 0);
    wr16(ip + IP_OFF_CSUM, csum_buf(ip, hlen - ETH_HDR_LEN));
    p->len = (uint16_t)(hlen + len);
    p->stamp = now;
    CTR_INC(d->ctr, dev_rx);
    CTR_ADD(d->ctr, dev_rx_bytes, p->len);
    return p;
}

/* A reassembled IPv4 datagram longer than a buffer: cut it into fragments of
 * at most the MTU (payload a multiple of 8, RFC 791 3.2) into pkts, at most
 * `room` of them. Returns how many; anything else is dropped and counted. */
static uint16_t dpdk_rx_refragment(struct dev *d, const struct rte_mbuf *m, struct pkt **pkts,
                                   uint16_t room, uint64_t now)
{
    uint8_t h[ETH_HDR_LEN + IPV4_MAX_HDR_LEN];
    uint32_t plen = m->pkt_len, mtu = d->mtu ? d->mtu : 1500;
    if (plen < ETH_HDR_LEN + IPV4_HDR_LEN)
        goto drop;
    uint32_t hcopy = plen < sizeof(h) ? plen : (uint32_t)sizeof(h);
    dpdk_mbuf_copy(m, 0, hcopy, h);
    const uint8_t *ip = h + ETH_HDR_LEN;
    uint32_t ihl = (uint32_t)(ip[IP_OFF_VER_IHL] & 0x0f) * 4u, total = rd16(ip + IP_OFF_TOTAL_LEN);
    uint16_t frag = rd16(ip + IP_OFF_FRAG);
    if (rd16(h + ETH_OFF_TYPE) != ETHERTYPE_IPV4 || (ip[IP_OFF_VER_IHL] >> 4) != 4 ||
        ihl < IPV4_HDR_LEN || total < ihl || ETH_HDR_LEN + total > plen || (frag & IPV4_FLAG_DF))
        goto drop;
    uint32_t cap = d->pool->room - PKT_HEADROOM, hlen = ETH_HDR_LEN + ihl;
    uint32_t chunk = ((mtu < cap - ETH_HDR_LEN ? mtu : cap - ETH_HDR_LEN) - ihl) & ~7u;
    uint32_t payload = total - ihl, base = (uint32_t)(frag & IPV4_FRAG_MASK) * 8u;
    if (chunk == 0 || (payload + chunk - 1) / chunk > room || base + payload > 0xffffu)
        goto drop;
    uint16_t n = 0;
    for (uint32_t off = 0; off < payload; off += chunk) {
        uint32_t len = payload - off < chunk ? payload - off : chunk;
        int more = off + len < payload || (frag & IPV4_FLAG_MF);
        uint16_t f = (uint16_t)(((base + off) / 8u) | (more ? IPV4_FLAG_MF : 0));
        struct pkt *p = dpdk_rx_fragment(d, m, h, hlen, off, len, f, now);
        if (!p)
            break;
        pkts[n++] = p;
    }
    return n;
drop:
    CTR_INC(d->ctr, dev_rx_oversize);
    return 0;
}

static uint16_t dpdk_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct dpdk_dev *x = d->priv;
    struct rte_mbuf *mb[DPDK_BURST_MAX];
    if (max > DPDK_BURST_MAX)
        max = DPDK_BURST_MAX;
    if (x->intr_armed)
        dpdk_intr_ack(x);
    uint16_t got = rte_eth_rx_burst(x->port, x->queue, mb, max), n = 0;
    for (uint16_t i = 0; i < got; i++) {
        if (mb[i]->pkt_len > d->pool->room - PKT_HEADROOM) {
            n = (uint16_t)(n + dpdk_rx_refragment(d, mb[i], pkts + n, (uint16_t)(max - n), now));
            continue;
        }
        struct pkt *p = dpdk_rx_copy(d, mb[i], now);
        if (p)
            pkts[n++] = p;
    }
    if (got) {
        rte_pktmbuf_free_bulk(mb, got);
        x->last_traffic = now;
    }
    return n;
}

/* ---- transmit ----------------------------------------------------------- */

/* Copy frames into mbufs; a frame that does not fit one mbuf is dropped.
 * Returns how many mbufs are filled (the first ones of mb). */
static uint16_t dpdk_tx_fill(struct dev *d, struct dpdk_dev *x, struct pkt **pkts, uint16_t n,
                             struct rte_mbuf **mb)
{
    if (rte_pktmbuf_alloc_bulk(x->pool, mb, n) != 0) {
        CTR_ADD(d->ctr, dev_tx_drop, n);   /* mbuf pool empty: the ring is stuck */
        return 0;
    }
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; i++) {
        char *dst = rte_pktmbuf_append(mb[k], pkts[i]->len);   /* NULL: no room */
        if (!dst) {
            CTR_INC(d->ctr, dev_tx_drop);
            continue;
        }
        memcpy(dst, pkt_data(pkts[i]), pkts[i]->len);
        k++;
    }
    if (k < n)
        rte_pktmbuf_free_bulk(mb + k, n - k);   /* the unused, still empty ones */
    return k;
}

static uint16_t dpdk_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    struct dpdk_dev *x = d->priv;
    struct rte_mbuf *mb[DPDK_BURST_MAX];
    uint16_t sent_total = 0;
    x->last_traffic = now;   /* a reply may follow: keep polling (spin) */
    for (uint16_t base = 0; base < n; base += DPDK_BURST_MAX) {
        unsigned left = (unsigned)(n - base);
        uint16_t chunk = (uint16_t)(left < DPDK_BURST_MAX ? left : DPDK_BURST_MAX);
        uint16_t k = dpdk_tx_fill(d, x, pkts + base, chunk, mb), sent = 0;
        for (int tries = 0; sent < k && tries < DPDK_TX_TRIES; tries++)
            sent += rte_eth_tx_burst(x->port, x->queue, mb + sent, (uint16_t)(k - sent));
        for (uint16_t i = 0; i < sent; i++)
            CTR_ADD(d->ctr, dev_tx_bytes, rte_pktmbuf_pkt_len(mb[i]));
        if (sent < k) {
            CTR_ADD(d->ctr, dev_tx_drop, (uint64_t)(k - sent));
            rte_pktmbuf_free_bulk(mb + sent, (unsigned)(k - sent));
        }
        CTR_ADD(d->ctr, dev_tx, sent);
        sent_total = (uint16_t)(sent_total + sent);
    }
    for (uint16_t i = 0; i < n; i++)
        pkt_free(pkts[i]);
    return sent_total;
}

/* ---- control ------------------------------------------------------------ */

static uint64_t dpdk_delta(uint64_t now_total, uint64_t *last)
{
    uint64_t d = now_total >= *last ? now_total - *last : 0;   /* reset: count afresh */
    *last = now_total;
    return d;
}

static void dpdk_read_stats(struct dev *d, struct dpdk_dev *x)
{
    struct rte_eth_stats st;
    if (x->queue != 0 || rte_eth_stats_get(x->port, &st) != 0)
        return;
    CTR_ADD(d->ctr, dev_kernel_drops, dpdk_delta(st.imissed, &x->last.imissed));
    CTR_ADD(d->ctr, dev_nic_rx_nombuf, dpdk_delta(st.rx_nombuf, &x->last.rx_nombuf));
    CTR_ADD(d->ctr, dev_nic_errors, dpdk_delta(st.ierrors, &x->last.ierrors) +
                                    dpdk_delta(st.oerrors, &x->last.oerrors));
}

/* Also the idle poll: ask the loop to come back at once while traffic is
 * recent (spin), else within DPDK_IDLE_POLL_NS when the queue has no
 * interrupt to sleep on; with one, a frame wakes the loop, so only the
 * statistics set the deadline. */
static uint64_t dpdk_service(struct dev *d, uint64_t now)
{
    struct dpdk_dev *x = d->priv;
    if (now >= x->next_stats) {
        dpdk_read_stats(d, x);
        dpdk_refresh_link_up(d, x->port);
        x->next_stats = now + DPDK_STATS_PERIOD_NS;
    }
    if (x->spin_ns && now - x->last_traffic < x->spin_ns)
        return now;
    if (x->intr_fd >= 0)
        return x->next_stats;
    uint64_t idle = now + DPDK_IDLE_POLL_NS;
    return idle < x->next_stats ? idle : x->next_stats;
}

const struct dev_ops dev_dpdk_ops = {
    .kind = "dpdk",
    .open = dpdk_open,
    .start = dpdk_start,
    .rx_burst = dpdk_rx_burst,
    .tx_burst = dpdk_tx_burst,
    .service = dpdk_service,
    .poll_fds = dpdk_poll_fds,
    .close = dpdk_close,
};
