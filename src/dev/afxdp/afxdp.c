/* AF_XDP backend:
 *   "afxdp:IFNAME[,queue=N][,mode=native|generic][,zerocopy=yes|no]
 *                [,steer=addrs|all][,queues=N]"
 *
 * +--------------------------------------------------------------------------+
 * | Memory: the UMEM is the stack's packet pool. pool_mem() maps the pool's  |
 * | data area here and start() registers it as the UMEM with one chunk per   |
 * | pool buffer (chunk size = the pool's room, 2 or 4 KiB, aligned chunks),  |
 * | so a frame's UMEM address is index * room + offset, and back.            |
 * |  - Receive: pool buffers are posted to the fill ring; an RX descriptor   |
 * |    names the chunk, whose struct pkt goes to the stack as it is (offset  |
 * |    and length set, no copy). The fill ring is topped up in batches of    |
 * |    AFX_FILL_BATCH back to fill_target (half the pool, at most the ring). |
 * |  - Transmit: a descriptor points at the pkt's own bytes; the pkt is      |
 * |    freed when its address comes back on the completion ring. A frame     |
 * |    from another pool (the stack's 64 KiB pool) is copied into a pool     |
 * |    buffer first. The TX ring full: the rest of the burst is dropped.     |
 * |  - need_wakeup (XDP_USE_NEED_WAKEUP): the kernel is kicked (sendto /     |
 * |    recvfrom) only when it asks for it, so a busy ring costs no syscall.  |
 * |    In copy mode it always asks on TX, and one sendto sends at most 32    |
 * |    frames (EAGAIN: more left), so a kick repeats while the ring drains.  |
 * |  - "Copy mode" (zerocopy=no, or no driver support) means the KERNEL      |
 * |    copies between its buffers and the UMEM; ustack copies nothing in     |
 * |    either mode. zerocopy unset: try zero copy, fall back to copy with a  |
 * |    message; zerocopy=yes: fail without it.                               |
 * |                                                                          |
 * | Steering (src/dev/afxdp/prog.c): ustack's own XDP program, attached      |
 * | once per interface and process (a registry counts the queues using it),  |
 * | redirects to the queue's socket only IPv4 to ustack's addresses and ARP  |
 * | asking for them (steer=addrs, the default), so the kernel keeps the      |
 * | interface's other traffic, its own addresses included. The addresses     |
 * | come from the stack through ops->addrs_set after start: a BPF hash map.  |
 * | steer=all gives the whole queue to ustack. The program is attached with  |
 * | bpf_xdp_attach() in one mode (mode=native: driver; generic: skb; unset:  |
 * | native, else generic), not through libxdp's dispatcher, which needs      |
 * | freplace support this project cannot count on; it is detached on close   |
 * | (SIGINT/SIGTERM reach here through ust_stack_destroy). A stale           |
 * | "ustack_xdp" program left by a killed process is replaced with a note;   |
 * | anyone else's program makes open fail.                                   |
 * |                                                                          |
 * | Several workers (queue=I,queues=N from ust_workers_run): worker I binds  |
 * | a socket to queue I and enters it at XSKMAP[I]; the first opens the      |
 * | program, the last to close detaches it. The NIC's RSS (a veth: the       |
 * | sender's TX queue) picks the queue, not ustack's hash, so the workers    |
 * | hand frames of flows they do not own over (src/api/workers.c). A queue   |
 * | the interface lacks fails at open (ETHTOOL_GCHANNELS), not at bind.      |
 * |                                                                          |
 * | Facts of this kernel (6.18, veth): native and generic XDP work in copy   |
 * | mode; zero copy answers EOPNOTSUPP; a queue without a socket passes its  |
 * | frames to the kernel; binding right after a close may give EBUSY for a   |
 * | moment (retried for up to a second). There is no checksum metadata:      |
 * | the peer must fill in its checksums (offloads off), as on a real wire.   |
 * | Multi-queue veth: native XDP sees the frame on the queue numbered like   |
 * | the sender's TX queue; generic XDP sees queue 0 for every frame, so      |
 * | there worker 0 receives all and hands the rest over                      |
 * | (tests/interop/afxdp_workers.sh).                                        |
 * |                                                                          |
 * | Statistics: XDP_STATISTICS, read every 100 ms: rx_dropped + rx_ring_full |
 * | -> dev_kernel_drops, rx_fill_ring_empty_descs -> dev_xdp_fill_empty,     |
 * | rx/tx_invalid_descs -> dev_xdp_invalid_descs.                            |
 * +--------------------------------------------------------------------------+
 *
 * Every descriptor the kernel hands back is checked (address inside the
 * UMEM, data inside its chunk) before its pkt is touched. */
#include "dev/dev.h"
#include "dev/netif.h"
#include "dev/afxdp/prog.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

#define AFX_RING          2048u     /* descriptors in each of the four rings */
#define AFX_FILL_BATCH    32u       /* refill once this many are missing     */
#define AFX_REFILL_MAX    256u      /* buffers posted per refill call        */
#define AFX_TX_CHUNK      64u
#define AFX_KICK_MAX      (AFX_RING / 32u) /* sendto()s per TX kick, copy mode */
#define AFX_MAX_QUEUES    64u
#define AFX_MAX_ADDRS     64u       /* entries of the address map            */
#define AFX_MAX_IFACES    8u        /* interfaces with our program, per process */
#define AFX_BIND_TRIES    50
#define AFX_BIND_WAIT_NS  20000000L /* 20 ms between EBUSY retries           */
#define AFX_STATS_PERIOD_NS 100000000ull
#define AFX_PROG_NAME     "ustack_xdp"
#define AFX_LOG_LEN       4096

enum afx_mode { AFX_MODE_AUTO, AFX_MODE_NATIVE, AFX_MODE_GENERIC };
enum afx_zc { AFX_ZC_AUTO, AFX_ZC_YES, AFX_ZC_NO };

/* One attached program per interface, shared by the process's queues. */
struct afx_prog {
    int ifindex;              /* 0: slot free                                  */
    int refs;
    int prog_fd, addrs_fd, xsks_fd;
    uint32_t mode_flag;       /* XDP_FLAGS_DRV_MODE or XDP_FLAGS_SKB_MODE      */
};

static struct afx_prog afx_progs[AFX_MAX_IFACES];
static pthread_mutex_t afx_progs_lock = PTHREAD_MUTEX_INITIALIZER;

struct afx {
    char ifname[IFNAMSIZ];
    int ifindex;
    int ctl_fd;               /* AF_INET socket for interface ioctls          */
    unsigned queue, queues;
    enum afx_mode mode;
    enum afx_zc zc;
    enum afxdp_steer steer;
    struct afx_prog *prog;
    uint8_t *area;            /* the UMEM = the pool's data area              */
    size_t area_len;          /* mapped length (whole pages)                 */
    struct xsk_umem *umem;
    struct xsk_socket *xsk;
    int fd;
    struct xsk_ring_prod fill, tx;
    struct xsk_ring_cons comp, rx;
    uint32_t fill_target;     /* buffers the kernel should hold for receive   */
    uint32_t fill_held;       /* posted to the fill ring, not yet received    */
    uint32_t tx_held;         /* on the TX ring, not yet completed            */
    uint64_t next_service;
    struct xdp_statistics st; /* last values read (the kernel's are totals)  */
};

/* ---- options ------------------------------------------------------------ */

static int afx_parse_uint(const char *key, const char *val, unsigned max, unsigned *out)
{
    char *end;
    if (val && *val) {
        errno = 0;
        unsigned long v = strtoul(val, &end, 10);
        if (!errno && !*end && v <= max) {
            *out = (unsigned)v;
            return 0;
        }
    }
    fprintf(stderr, "afxdp: bad value for %s (0..%u)\n", key, max);
    return -1;
}

/* val must be one of the names; its index goes to *out. */
static int afx_parse_word(const char *key, const char *val, const char *const *names, int n,
                          int *out)
{
    for (int i = 0; val && i < n; i++)
        if (strcmp(val, names[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "afxdp: bad value for %s\n", key);
    return -1;
}

static int afx_option(void *ctx, const char *key, const char *val)
{
    static const char *const modes[] = {"native", "generic"};
    static const char *const yesno[] = {"yes", "no"};
    static const char *const steers[] = {"addrs", "all"};
    struct afx *a = ctx;
    int w;
    if (!a->ifname[0] && !val) {
        if (strlen(key) >= IFNAMSIZ) {
            fprintf(stderr, "afxdp: interface name too long: %s\n", key);
            return -1;
        }
        strcpy(a->ifname, key);
        return 0;
    }
    if (strcmp(key, "queue") == 0)
        return afx_parse_uint(key, val, AFX_MAX_QUEUES - 1, &a->queue);
    if (strcmp(key, "queues") == 0)
        return afx_parse_uint(key, val, AFX_MAX_QUEUES, &a->queues);
    if (strcmp(key, "mode") == 0) {
        if (afx_parse_word(key, val, modes, 2, &w))
            return -1;
        a->mode = w == 0 ? AFX_MODE_NATIVE : AFX_MODE_GENERIC;
        return 0;
    }
    if (strcmp(key, "zerocopy") == 0) {
        if (afx_parse_word(key, val, yesno, 2, &w))
            return -1;
        a->zc = w == 0 ? AFX_ZC_YES : AFX_ZC_NO;
        return 0;
    }
    if (strcmp(key, "steer") == 0) {
        if (afx_parse_word(key, val, steers, 2, &w))
            return -1;
        a->steer = w == 0 ? AFXDP_STEER_ADDRS : AFXDP_STEER_ALL;
        return 0;
    }
    fprintf(stderr, "afxdp: unknown option '%s' (want IFNAME[,queue=N][,mode=native|generic]"
            "[,zerocopy=yes|no][,steer=addrs|all])\n", key);
    return -1;
}

/* ---- the XDP program, one per interface --------------------------------- */

static void afx_prog_close_fds(struct afx_prog *p)
{
    if (p->prog_fd >= 0)
        close(p->prog_fd);
    if (p->addrs_fd >= 0)
        close(p->addrs_fd);
    if (p->xsks_fd >= 0)
        close(p->xsks_fd);
    memset(p, 0, sizeof(*p));
}

static int afx_prog_make(struct afx_prog *p, enum afxdp_steer steer)
{
    char log[AFX_LOG_LEN];
    p->addrs_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ustack_addrs", 4, 1, AFX_MAX_ADDRS, NULL);
    p->xsks_fd = bpf_map_create(BPF_MAP_TYPE_XSKMAP, "ustack_xsks", 4, 4, AFX_MAX_QUEUES, NULL);
    if (p->addrs_fd < 0 || p->xsks_fd < 0) {
        fprintf(stderr, "afxdp: cannot create BPF maps: %s\n", strerror(errno));
        return -1;
    }
    p->prog_fd = afxdp_prog_load(steer, p->addrs_fd, p->xsks_fd, log, sizeof(log));
    if (p->prog_fd < 0) {
        fprintf(stderr, "afxdp: cannot load the XDP program: %s\n%s", strerror(errno), log);
        return -1;
    }
    return 0;
}

/* Is the program attached in this mode a stale one of ours? Then its fd. */
static int afx_prog_stale(int ifindex, uint32_t mode_flag)
{
    uint32_t id = 0;
    if (bpf_xdp_query_id(ifindex, (int)mode_flag, &id) || !id)
        return -1;
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return -1;
    struct bpf_prog_info info;
    uint32_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && strcmp(info.name, AFX_PROG_NAME) == 0)
        return fd;
    close(fd);
    return -1;
}

static int afx_prog_attach_mode(struct afx_prog *p, uint32_t mode_flag, const char *ifname)
{
    int err = bpf_xdp_attach(p->ifindex, p->prog_fd, XDP_FLAGS_UPDATE_IF_NOEXIST | mode_flag, NULL);
    if (err == -EBUSY || err == -EEXIST) {
        int old = afx_prog_stale(p->ifindex, mode_flag);
        if (old >= 0) {
            fprintf(stderr, "afxdp: %s: replacing a stale %s program\n", ifname, AFX_PROG_NAME);
            LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old);
            err = bpf_xdp_attach(p->ifindex, p->prog_fd, XDP_FLAGS_REPLACE | mode_flag, &opts);
            close(old);
        }
    }
    if (err == 0)
        p->mode_flag = mode_flag;
    return err;
}

static int afx_prog_attach(struct afx_prog *p, enum afx_mode mode, const char *ifname)
{
    int err;
    if (mode != AFX_MODE_GENERIC) {
        err = afx_prog_attach_mode(p, XDP_FLAGS_DRV_MODE, ifname);
        if (err == 0 || mode == AFX_MODE_NATIVE)
            goto done;
        fprintf(stderr, "afxdp: %s: native XDP unavailable (%s), using generic XDP\n",
                ifname, strerror(-err));
    }
    err = afx_prog_attach_mode(p, XDP_FLAGS_SKB_MODE, ifname);
done:
    if (err == -EBUSY || err == -EEXIST)
        fprintf(stderr, "afxdp: %s already has another XDP program "
                "(`ip link set dev %s xdp off` removes it)\n", ifname, ifname);
    else if (err)
        fprintf(stderr, "afxdp: %s: cannot attach the XDP program: %s\n", ifname, strerror(-err));
    return err ? -1 : 0;
}

static struct afx_prog *afx_prog_find(int ifindex)
{
    for (unsigned i = 0; i < AFX_MAX_IFACES; i++)
        if (afx_progs[i].ifindex == ifindex)
            return &afx_progs[i];
    return NULL;
}

/* The interface's program, loaded and attached by its first user. */
static struct afx_prog *afx_prog_get(const struct afx *a)
{
    pthread_mutex_lock(&afx_progs_lock);
    struct afx_prog *p = afx_prog_find(a->ifindex);
    if (p) {
        p->refs++;
        goto out;
    }
    p = afx_prog_find(0);
    if (!p) {
        fprintf(stderr, "afxdp: more than %u interfaces in one process\n", AFX_MAX_IFACES);
        goto out;
    }
    *p = (struct afx_prog){.ifindex = a->ifindex, .refs = 1, .prog_fd = -1, .addrs_fd = -1,
                           .xsks_fd = -1};
    if (afx_prog_make(p, a->steer) || afx_prog_attach(p, a->mode, a->ifname)) {
        afx_prog_close_fds(p);
        p = NULL;
    }
out:
    pthread_mutex_unlock(&afx_progs_lock);
    return p;
}

/* The last user detaches the program: only ours (XDP_FLAGS_REPLACE with our
 * fd), never one somebody attached since. */
static void afx_prog_put(struct afx_prog *p)
{
    pthread_mutex_lock(&afx_progs_lock);
    if (--p->refs == 0) {
        LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = p->prog_fd);
        int err = bpf_xdp_detach(p->ifindex, XDP_FLAGS_REPLACE | p->mode_flag, &opts);
        if (err && err != -EEXIST)
            fprintf(stderr, "afxdp: cannot detach the XDP program: %s\n", strerror(-err));
        afx_prog_close_fds(p);
    }
    pthread_mutex_unlock(&afx_progs_lock);
}

/* ---- open, pool memory, start ------------------------------------------- */

static void afx_release(struct afx *a)
{
    if (a->xsk)
        xsk_socket__delete(a->xsk);
    if (a->umem)
        xsk_umem__delete(a->umem);
    if (a->prog)
        afx_prog_put(a->prog);
    if (a->area)
        munmap(a->area, a->area_len);
    if (a->ctl_fd >= 0)
        close(a->ctl_fd);
    free(a);
}

static int afx_read_link(struct dev *d, struct afx *a)
{
    int mtu;
    if ((a->ifindex = netif_get_index(a->ctl_fd, a->ifname)) < 0) {
        fprintf(stderr, "afxdp: no interface %s: %s\n", a->ifname, strerror(errno));
        return -1;
    }
    if (netif_get_mac(a->ctl_fd, a->ifname, d->mac)) {
        fprintf(stderr, "afxdp: %s: no Ethernet address: %s\n", a->ifname, strerror(errno));
        return -1;
    }
    d->flags |= DEV_F_HAS_MAC;
    if ((mtu = netif_get_mtu(a->ctl_fd, a->ifname)) < 0) {
        fprintf(stderr, "afxdp: SIOCGIFMTU(%s): %s\n", a->ifname, strerror(errno));
        return -1;
    }
    d->mtu = (uint32_t)mtu;
    if (netif_is_up(a->ctl_fd, a->ifname) > 0)
        d->flags |= DEV_F_LINK_UP;
    return 0;
}

/* The interface's receive queues (ETHTOOL_GCHANNELS: rx-only plus combined
 * channels), or 0 when the driver does not say. */
static unsigned afx_rx_queues(const struct afx *a)
{
    struct ethtool_channels ch = {.cmd = ETHTOOL_GCHANNELS};
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, a->ifname);
    ifr.ifr_data = (char *)&ch;
    if (ioctl(a->ctl_fd, SIOCETHTOOL, &ifr) != 0)
        return 0;
    return ch.rx_count + ch.combined_count;
}

/* A queue the interface does not have would only fail later at bind with a
 * bare EINVAL (typically --workers N beyond the NIC's channels). */
static int afx_check_queue(const struct afx *a)
{
    unsigned n = afx_rx_queues(a);
    if (n == 0 || a->queue < n)
        return 0;
    fprintf(stderr, "afxdp: %s has %u receive queue%s, no queue %u: --workers N needs N queues "
            "(ethtool -L %s combined N; a veth: numrxqueues N numtxqueues N)\n",
            a->ifname, n, n == 1 ? "" : "s", a->queue, a->ifname);
    return -1;
}

static int afx_open(struct dev *d, const char *args)
{
    struct afx *a = calloc(1, sizeof(*a));
    if (!a)
        return -1;
    a->fd = -1;
    a->queues = 1;
    a->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (a->ctl_fd < 0 || dev_args_each(args, ',', afx_option, a)) {
        afx_release(a);
        return -1;
    }
    if (!a->ifname[0]) {
        fprintf(stderr, "afxdp: missing interface name (afxdp:IFNAME)\n");
        afx_release(a);
        return -1;
    }
    if (afx_read_link(d, a) || afx_check_queue(a) || !(a->prog = afx_prog_get(a))) {
        afx_release(a);
        return -1;
    }
    d->queue = (uint16_t)a->queue;
    d->priv = a;
    return 0;
}

/* The pool's data area: ours, so that it can become the UMEM. */
static void *afx_pool_mem(struct dev *d, size_t bytes)
{
    struct afx *a = d->priv;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (a->area || bytes == 0)
        return NULL;
    size_t len = (bytes + page - 1) / page * page;
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    a->area = m;
    a->area_len = len;
    return m;
}

static void afx_sleep_ns(long ns)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
    nanosleep(&ts, NULL);
}

/* One attempt at UMEM + socket with the given bind flags; undone on failure
 * (a failed bind leaves the UMEM's rings unusable for a retry). */
static int afx_socket_try(struct afx *a, const struct pkt_pool *pool, uint16_t bind_flags)
{
    struct xsk_umem_config ucfg = {
        .fill_size = AFX_RING, .comp_size = AFX_RING,
        .frame_size = pool->room, .frame_headroom = 0, .flags = 0,
    };
    int err = xsk_umem__create(&a->umem, a->area, (uint64_t)pool->count * pool->room,
                               &a->fill, &a->comp, &ucfg);
    if (err) {
        a->umem = NULL;
        return err;
    }
    struct xsk_socket_config scfg = {
        .rx_size = AFX_RING, .tx_size = AFX_RING,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .bind_flags = bind_flags,
    };
    err = xsk_socket__create(&a->xsk, a->ifname, a->queue, a->umem, &a->rx, &a->tx, &scfg);
    if (err) {
        a->xsk = NULL;
        xsk_umem__delete(a->umem);
        a->umem = NULL;
    }
    return err;
}

/* Binding right after another socket on the queue closed can answer EBUSY
 * for a moment: retry, bounded. */
static int afx_socket_bind(struct afx *a, const struct pkt_pool *pool, uint16_t bind_flags)
{
    int err = -EBUSY;
    for (int i = 0; i < AFX_BIND_TRIES && err == -EBUSY; i++) {
        if (i)
            afx_sleep_ns(AFX_BIND_WAIT_NS);
        err = afx_socket_try(a, pool, bind_flags);
    }
    return err;
}

static int afx_socket_open(struct afx *a, const struct pkt_pool *pool)
{
    int err = -EOPNOTSUPP;
    if (a->zc != AFX_ZC_NO) {
        err = afx_socket_bind(a, pool, XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY);
        if (err && a->zc == AFX_ZC_AUTO)
            fprintf(stderr, "afxdp: %s queue %u: zero copy not available (%s), "
                    "using copy mode\n", a->ifname, a->queue, strerror(-err));
    }
    if (err && a->zc != AFX_ZC_YES)
        err = afx_socket_bind(a, pool, XDP_USE_NEED_WAKEUP | XDP_COPY);
    if (err) {
        fprintf(stderr, "afxdp: %s queue %u: cannot bind an AF_XDP socket: %s\n",
                a->ifname, a->queue, strerror(-err));
        return -1;
    }
    a->fd = xsk_socket__fd(a->xsk);
    return 0;
}

/* The pool must be the UMEM: its own memory, chunks the kernel accepts. */
static int afx_pool_check(const struct afx *a, const struct pkt_pool *pool)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (!a->area || pool->mem != a->area || (size_t)pool->count * pool->room > a->area_len) {
        fprintf(stderr, "afxdp: the packet pool must live in pool_mem() memory\n");
        return -1;
    }
    if (pool->room < 2048 || pool->room > page || (pool->room & (pool->room - 1))) {
        fprintf(stderr, "afxdp: buffer size %u is not a power of two in 2048..%zu "
                "(lower --mtu)\n", pool->room, page);
        return -1;
    }
    return 0;
}

static void afx_refill(struct dev *d, struct afx *a);

static int afx_start(struct dev *d)
{
    struct afx *a = d->priv;
    if (!d->pool || afx_pool_check(a, d->pool) || afx_socket_open(a, d->pool))
        return -1;
    a->fill_target = d->pool->count / 2 < AFX_RING ? d->pool->count / 2 : AFX_RING;
    /* Post the receive buffers before frames can be steered to the socket. */
    for (uint32_t i = 0; i < AFX_RING / AFX_REFILL_MAX + 1; i++)
        afx_refill(d, a);
    int fd = a->fd;
    uint32_t q = a->queue;
    if (bpf_map_update_elem(a->prog->xsks_fd, &q, &fd, BPF_ANY)) {
        fprintf(stderr, "afxdp: cannot enter queue %u in the XSKMAP: %s\n", q, strerror(errno));
        return -1;
    }
    return 0;
}

/* The stack's IPv4 addresses (host order) for the steering program. */
static int afx_addrs_set(struct dev *d, const uint32_t *ipv4, int n)
{
    struct afx *a = d->priv;
    uint8_t one = 1;
    for (int i = 0; i < n; i++) {
        uint32_t key = htonl(ipv4[i]);     /* as the program reads it off the wire */
        if (bpf_map_update_elem(a->prog->addrs_fd, &key, &one, BPF_ANY)) {
            fprintf(stderr, "afxdp: cannot add an address to the XDP map: %s\n", strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* ---- rings -------------------------------------------------------------- */

static void afx_kick_rx(struct afx *a)
{
    if (xsk_ring_prod__needs_wakeup(&a->fill))
        (void)recvfrom(a->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

static void afx_complete(struct dev *d, struct afx *a);

/* Free slots of the TX ring, read afresh (a full count means empty). */
static uint32_t afx_tx_free(struct afx *a) { return xsk_prod_nb_free(&a->tx, AFX_RING); }

/* In copy mode one sendto() sends only a small batch of the TX ring (32
 * frames on Linux 6.x) and answers EAGAIN when more are left, so a burst
 * larger than that needs several kicks, or the ring fills up and later
 * frames are dropped. Kick again while the kernel says "more" and the ring
 * keeps draining, at most AFX_KICK_MAX times: each call moves frames. A
 * completion ring gone full also answers EAGAIN, so completions are taken
 * between kicks. No progress, EBUSY, ENOBUFS, ENETDOWN: the device cannot
 * take more now; the frames stay on the ring for the next kick (next burst
 * or service). Zero copy: the first kick starts the driver, which drains
 * the ring by itself. */
static void afx_kick_tx(struct dev *d, struct afx *a)
{
    afx_complete(d, a);   /* a full completion ring also answers EAGAIN */
    uint32_t before = afx_tx_free(a);
    for (unsigned i = 0; i < AFX_KICK_MAX && xsk_ring_prod__needs_wakeup(&a->tx); i++) {
        if (sendto(a->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0 || errno != EAGAIN)
            return;
        afx_complete(d, a);
        uint32_t now = afx_tx_free(a);
        if (now <= before || now == AFX_RING)   /* stuck, or all sent */
            return;
        before = now;
    }
}

/* Top the fill ring up to fill_target, in batches. */
static void afx_refill(struct dev *d, struct afx *a)
{
    if (a->fill_held + AFX_FILL_BATCH > a->fill_target)
        return;
    uint32_t want = a->fill_target - a->fill_held, n = 0, idx;
    if (want > AFX_REFILL_MAX)
        want = AFX_REFILL_MAX;
    struct pkt *bufs[AFX_REFILL_MAX];
    while (n < want && (bufs[n] = pkt_alloc(d->pool)))
        n++;
    if (n && xsk_ring_prod__reserve(&a->fill, n, &idx) != n) {
        for (uint32_t i = 0; i < n; i++)      /* cannot happen: held <= ring */
            pkt_free(bufs[i]);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        *xsk_ring_prod__fill_addr(&a->fill, idx + i) = (uint64_t)bufs[i]->index * d->pool->room;
    if (n) {
        xsk_ring_prod__submit(&a->fill, n);
        a->fill_held += n;
    }
    afx_kick_rx(a);
}

/* The pool buffer a UMEM address belongs to, or NULL when it is outside. */
static struct pkt *afx_addr_pkt(const struct pkt_pool *pool, uint64_t addr)
{
    uint64_t index = addr / pool->room;
    return index < pool->count ? &pool->descs[index] : NULL;
}

/* Frames sent earlier are done: free their buffers. */
static void afx_complete(struct dev *d, struct afx *a)
{
    uint32_t idx, n = xsk_ring_cons__peek(&a->comp, AFX_RING, &idx);
    for (uint32_t i = 0; i < n; i++) {
        struct pkt *p = afx_addr_pkt(d->pool, *xsk_ring_cons__comp_addr(&a->comp, idx + i));
        if (p && p->refcnt)
            pkt_free(p);
    }
    if (n) {
        xsk_ring_cons__release(&a->comp, n);
        a->tx_held = n < a->tx_held ? a->tx_held - n : 0;
    }
}

/* ---- receive ------------------------------------------------------------ */

static struct pkt *afx_rx_take(struct dev *d, const struct xdp_desc *desc, uint64_t now)
{
    const struct pkt_pool *pool = d->pool;
    struct pkt *p = afx_addr_pkt(pool, desc->addr);
    if (!p || !p->refcnt) {
        CTR_INC(d->ctr, dev_xdp_invalid_descs);
        return NULL;
    }
    uint64_t off = desc->addr - (uint64_t)p->index * pool->room;
    if (off + desc->len > pool->room || desc->len < ETH_HLEN || desc->options) {
        CTR_INC(d->ctr, dev_rx_oversize);
        pkt_free(p);
        return NULL;
    }
    p->off = (uint16_t)off;
    p->len = (uint16_t)desc->len;
    p->flags = 0;
    p->l2 = p->l3 = p->l4 = 0;
    p->stamp = now;
    CTR_INC(d->ctr, dev_rx);
    CTR_ADD(d->ctr, dev_rx_bytes, p->len);
    return p;
}

static uint16_t afx_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct afx *a = d->priv;
    uint32_t idx, n = xsk_ring_cons__peek(&a->rx, max, &idx);
    uint16_t got = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct pkt *p = afx_rx_take(d, xsk_ring_cons__rx_desc(&a->rx, idx + i), now);
        if (p)
            pkts[got++] = p;
    }
    if (n) {
        xsk_ring_cons__release(&a->rx, n);
        a->fill_held = n < a->fill_held ? a->fill_held - n : 0;
    }
    afx_refill(d, a);
    return got;
}

/* ---- transmit ----------------------------------------------------------- */

/* p as a UMEM frame we may send, or NULL (freed, counted). A frame from
 * another pool is copied into one of ours. */
static struct pkt *afx_tx_frame(struct dev *d, struct pkt *p)
{
    if (p->len > d->mtu + ETH_HLEN || p->len < ETH_HLEN)
        goto drop;
    if (p->pool == d->pool)
        return p;
    struct pkt *q = pkt_alloc(d->pool);
    if (!q || pkt_tailroom(q) < p->len) {
        pkt_free(q);
        goto drop;
    }
    memcpy(pkt_data(q), pkt_data(p), p->len);
    q->len = p->len;
    q->flags = p->flags;
    pkt_free(p);
    return q;
drop:
    CTR_INC(d->ctr, dev_tx_drop);
    pkt_free(p);
    return NULL;
}

/* Up to AFX_TX_CHUNK frames onto the TX ring; what does not fit is dropped. */
static uint16_t afx_tx_chunk(struct dev *d, struct afx *a, struct pkt **pkts, uint16_t n)
{
    struct pkt *ok[AFX_TX_CHUNK];
    uint32_t m = 0, idx, room = d->pool->room;
    for (uint16_t i = 0; i < n; i++)
        if ((ok[m] = afx_tx_frame(d, pkts[i])))
            m++;
    uint32_t k = xsk_prod_nb_free(&a->tx, m);
    if (k > m)
        k = m;
    if (k && xsk_ring_prod__reserve(&a->tx, k, &idx) != k)
        k = 0;
    for (uint32_t i = 0; i < k; i++) {
        struct xdp_desc *desc = xsk_ring_prod__tx_desc(&a->tx, idx + i);
        desc->addr = (uint64_t)ok[i]->index * room + ok[i]->off;
        desc->len = ok[i]->len;
        desc->options = 0;
        CTR_ADD(d->ctr, dev_tx_bytes, ok[i]->len);
    }
    if (k) {
        xsk_ring_prod__submit(&a->tx, k);
        a->tx_held += k;
        CTR_ADD(d->ctr, dev_tx, k);
    }
    for (uint32_t i = k; i < m; i++) {
        CTR_INC(d->ctr, dev_tx_drop);
        pkt_free(ok[i]);
    }
    return (uint16_t)k;
}

static uint16_t afx_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    (void)now;
    struct afx *a = d->priv;
    uint16_t sent = 0;
    afx_complete(d, a);
    for (uint16_t i = 0; i < n; i += AFX_TX_CHUNK) {
        uint16_t c = (uint16_t)(n - i < (int)AFX_TX_CHUNK ? n - i : (int)AFX_TX_CHUNK);
        sent = (uint16_t)(sent + afx_tx_chunk(d, a, pkts + i, c));
    }
    if (sent)
        afx_kick_tx(d, a);
    return sent;
}

/* ---- control ------------------------------------------------------------ */

static uint64_t afx_delta(__u64 now, __u64 *last)
{
    uint64_t dlt = now >= *last ? now - *last : 0;
    *last = now;
    return dlt;
}

static void afx_read_stats(struct dev *d, struct afx *a)
{
    struct xdp_statistics st;
    socklen_t len = sizeof(st);
    memset(&st, 0, sizeof(st));
    if (getsockopt(a->fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0)
        return;
    CTR_ADD(d->ctr, dev_kernel_drops, afx_delta(st.rx_dropped, &a->st.rx_dropped) +
                                      afx_delta(st.rx_ring_full, &a->st.rx_ring_full));
    CTR_ADD(d->ctr, dev_xdp_fill_empty,
            afx_delta(st.rx_fill_ring_empty_descs, &a->st.rx_fill_ring_empty_descs));
    CTR_ADD(d->ctr, dev_xdp_invalid_descs,
            afx_delta(st.rx_invalid_descs, &a->st.rx_invalid_descs) +
            afx_delta(st.tx_invalid_descs, &a->st.tx_invalid_descs));
}

static uint64_t afx_service(struct dev *d, uint64_t now)
{
    struct afx *a = d->priv;
    /* Completions and a stalled TX ring are looked after even when no new
     * frames are sent, so buffers always come back. */
    afx_complete(d, a);
    if (a->tx_held)
        afx_kick_tx(d, a);
    afx_refill(d, a);
    if (now < a->next_service)
        return a->tx_held ? now + AFX_STATS_PERIOD_NS / 100 : a->next_service;
    afx_read_stats(d, a);
    int up = netif_is_up(a->ctl_fd, a->ifname);
    if (up > 0)
        d->flags |= DEV_F_LINK_UP;
    else if (up == 0)
        d->flags &= ~(uint32_t)DEV_F_LINK_UP;
    a->next_service = now + AFX_STATS_PERIOD_NS;
    return a->next_service;
}

static int afx_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct afx *a = d->priv;
    return dev_poll_one_fd(fds, max, a->fd);
}

/* Buffers still on the rings need no freeing: the pool goes with the stack.
 * The socket goes first, which also takes it out of the XSKMAP. */
static void afx_close(struct dev *d)
{
    if (d->priv)
        afx_release(d->priv);
    d->priv = NULL;
}

const struct dev_ops dev_afxdp_ops = {
    .kind = "afxdp",
    .open = afx_open,
    .pool_mem = afx_pool_mem,
    .start = afx_start,
    .rx_burst = afx_rx_burst,
    .tx_burst = afx_tx_burst,
    .service = afx_service,
    .poll_fds = afx_poll_fds,
    .addrs_set = afx_addrs_set,
    .close = afx_close,
};
