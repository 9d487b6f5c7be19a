/* AF_PACKET backend:
 *   "afpacket:IFNAME[,rx=v2|v3][,qdisc_bypass=0|1][,tov=MS][,queue=I,queues=N]"
 *
 * +--------------------------------------------------------------------------+
 * | What it does                                                             |
 * |  - One AF_PACKET SOCK_RAW socket bound to IFNAME with ETH_P_ALL and one  |
 * |    mmap holding the RX ring, then the TX ring. PACKET_VERSION covers    |
 * |    both rings of a socket, so `rx` picks the TPACKET version of both.   |
 * |  - rx=v2 (default): a frame ring (tpacket2_hdr). Each slot has its own  |
 * |    status word; the kernel marks a slot TP_STATUS_USER and wakes poll()  |
 * |    as soon as one frame is in it. rx_burst copies up to `max` ready      |
 * |    slots into pool buffers and gives each back (TP_STATUS_KERNEL) at    |
 * |    once. Slots are sized for MTU + headers (2 KiB for MTU 1500).         |
 * |  - rx=v3: a block ring (tpacket3_hdr frames packed into 64 KiB blocks). |
 * |    The kernel hands over a block only when it is full or its retire      |
 * |    timer fires: `tov` ms (default 1, at least one jiffy). Frames are     |
 * |    copied out; a block goes back once every frame in it is taken, so    |
 * |    one block may span several rx_burst calls.                            |
 * |                                                                          |
 * |  Why v2 is the default: with v3 a lone frame waits for the retire timer. |
 * |  poll() is woken only when a block is closed, and busy polling sees     |
 * |  nothing either, because the block status stays TP_STATUS_KERNEL while  |
 * |  it fills. tov cannot go below 1 ms, so there is no V3 setting that     |
 * |  releases a part-filled block promptly. Measured here (2 cores,         |
 * |  kernel 6.18, veth between two namespaces, a python3 UDP echo in the    |
 * |  kernel, ust-udpping 64-byte datagrams, 20000 round trips):             |
 * |      rx=v3:  999 round trips/s (1001 us each), --busy-poll 998/s        |
 * |      rx=v2:  27459 round trips/s (36 us), --busy-poll 33297/s (30 us)   |
 * |  Bulk TCP (256 MiB through ust-echo and back, socat in the kernel, 9    |
 * |  runs each): v2 160-182 MB/s (mean 172), v3 166-183 MB/s (mean 175),   |
 * |  the same within the noise of this machine. v3 remains for high-rate   |
 * |  receive-only use, where fewer status handoffs per frame may count.     |
 * |                                                                          |
 * |  - TX: frames are copied into TX ring slots (tpacket2_hdr, or           |
 * |    tpacket3_hdr with tp_next_offset 0; data at                          |
 * |    TPACKET_ALIGN(sizeof(header))) and the ring is kicked with one       |
 * |    non-blocking sendto() per burst. A full ring drops the rest of the   |
 * |    burst (dev_tx_drop). PACKET_LOSS is set so a frame the kernel        |
 * |    rejects is skipped instead of stalling the ring.                      |
 * |  - PACKET_QDISC_BYPASS (default on): frames go straight to the driver.  |
 * |  - PACKET_IGNORE_OUTGOING: our own transmissions are not looped back.   |
 * |  - Not promiscuous: ustack uses the interface's own MAC (SIOCGIFHWADDR) |
 * |    and MTU (SIOCGIFMTU).                                                 |
 * |  - Pool empty on receive: the frame is DROPPED and counted              |
 * |    (dev_rx_nobuf); the ring keeps moving so the kernel does not start   |
 * |    dropping everything behind one stuck frame.                           |
 * |  - PACKET_STATISTICS drops are added to dev_kernel_drops by service(),   |
 * |    at most every 100 ms.                                                 |
 * |                                                                          |
 * | What it expects of the peer (the kernel on the other end of a veth)     |
 * |  - TX checksum offload ON in the peer (the veth default): its UDP/TCP   |
 * |    checksums arrive unfilled, marked TP_STATUS_CSUMNOTREADY. Such frames |
 * |    get PKT_F_CSUM_PARTIAL (counted dev_rx_csum_partial) and the stack    |
 * |    skips L4 checksum verification for them. They never left the machine,|
 * |    so nothing could have corrupted them. `ethtool -K PEER tx off` makes |
 * |    the peer fill checksums in.                                           |
 * |  - GSO/TSO in the peer can hand over frames larger than the MTU. Frames  |
 * |    longer than a pool buffer (room - PKT_HEADROOM) are dropped and       |
 * |    counted (dev_rx_oversize), as are frames the ring truncated          |
 * |    (tp_snaplen < tp_len). Turn off `tso gso` in the peer for TCP.       |
 * |  - No VLANs: frames whose tag the kernel stripped (TP_STATUS_VLAN_VALID) |
 * |    are dropped (eth_drop_type), never taken for untagged ones.          |
 * |                                                                          |
 * | Several workers (queue=I,queues=N, added by ust_workers_run)             |
 * |  - Each worker opens its own socket and rings; all N join one           |
 * |    PACKET_FANOUT group (id from the pid) of type PACKET_FANOUT_CBPF,   |
 * |    in worker order, so member I is worker I. The classic BPF program   |
 * |    (steer_bpf_build, src/net/steer.c) computes ustack's own flow hash  |
 * |    mod N, so the kernel puts a TCP/UDP flow on the worker that owns it |
 * |    and a client connect can choose a source port landing on its worker.|
 * |  - A fanout delivers each frame to ONE socket. Frames without a flow go |
 * |    to worker 0: ARP (which the receiving worker copies to all others   |
 * |    through the handoff rings, each worker keeping its own ARP cache),  |
 * |    ICMP errors (hashed by the outer addresses: the software steering   |
 * |    hands them to the owner of the flow they quote) and fragments      |
 * |    (hashed by addresses only; reassembled there, then handed over).    |
 * |  - Until all N sockets joined, and if the kernel's choice ever differs, |
 * |    the software check in the receive path hands the frame over.        |
 * +--------------------------------------------------------------------------+
 *
 * The ring headers are kernel ABI structs in host byte order, so they are
 * read through struct pointers (the wire-format rule is about frames); each
 * status word is read with acquire and written with release ordering, since
 * the kernel reads and writes the same memory concurrently. */
#include "dev/dev.h"
#include "dev/netif.h"
#include "net/steer.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define AFP_RX_BLOCK_SIZE (64u * 1024)   /* holds any frame up to 64 KiB      */
#define AFP_RX_BLOCK_NR   64u            /* 4 MiB of receive ring             */
#define AFP_RX_FRAME_SIZE 2048u          /* V3 only uses it for a sanity check */
#define AFP_RX_FRAME_MIN  2048u          /* V2 slot size for MTU 1500         */
#define AFP_TX_BLOCK_SIZE (64u * 1024)
#define AFP_TX_BLOCK_NR   8u
#define AFP_TX_FRAME_MIN  2048u
#define AFP_STATS_PERIOD_NS 100000000ull
#define AFP_TOV_DEFAULT_MS 1u
#define AFP_TOV_MAX_MS 1000u
#define AFP_VLAN_HLEN 4u
/* Where frame data starts in a TX slot when PACKET_TX_HAS_OFF is not set:
 * the version's tp_hdrlen minus the sockaddr_ll the kernel counts in it. */
#define AFP_TX_DATA_OFF_V2 ((uint32_t)TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))
#define AFP_TX_DATA_OFF_V3 ((uint32_t)TPACKET_ALIGN(sizeof(struct tpacket3_hdr)))
/* Room the kernel leaves in a V2 RX slot before the MAC header: the slot
 * header plus sockaddr_ll, then at least 16 bytes for the link header. */
#define AFP_RX_MAC_ROOM_V2 ((uint32_t)TPACKET_ALIGN(TPACKET2_HDRLEN) + 16u)

enum afp_rx_mode { AFP_RX_V2 = 2, AFP_RX_V3 = 3 };
#define AFP_RX_MODE_DEFAULT AFP_RX_V2

struct afp {
    int fd;
    uint8_t *map;
    size_t map_len;
    char ifname[IFNAMSIZ];
    int qdisc_bypass;
    enum afp_rx_mode mode;    /* TPACKET version of both rings                 */
    unsigned tov_ms;
    int tov_set;
    /* receive ring */
    uint8_t *rx;
    uint32_t rx_blk;          /* V3: block being consumed                      */
    uint8_t *rx_frame;        /* V3: next frame in it; NULL: not opened yet    */
    uint32_t rx_left;         /* V3: frames of the block not consumed yet      */
    uint32_t rx_frame_size;   /* V2: slot size                                 */
    uint32_t rx_frames_per_block;
    uint32_t rx_frame_nr;
    uint32_t rx_head;         /* V2: next slot to look at                      */
    /* transmit ring */
    uint8_t *tx;
    uint32_t tx_data_off;
    uint32_t tx_frame_size;
    uint32_t tx_frames_per_block;
    uint32_t tx_frame_nr;
    uint32_t tx_head;         /* next slot to fill                             */
    uint64_t next_service;
    unsigned queue, queues;   /* this worker's fanout member and the group size */
};

/* ---- options ------------------------------------------------------------ */

static int afp_parse_uint(const char *key, const char *val, unsigned max, unsigned *out)
{
    char *end;
    if (!val || !*val)
        goto bad;
    errno = 0;
    unsigned long v = strtoul(val, &end, 10);
    if (errno || *end || v > max)
        goto bad;
    *out = (unsigned)v;
    return 0;
bad:
    fprintf(stderr, "afpacket: bad value for %s (0..%u)\n", key, max);
    return -1;
}

static int afp_option(void *ctx, const char *key, const char *val)
{
    struct afp *a = ctx;
    if (!a->ifname[0] && !val) {
        if (strlen(key) >= IFNAMSIZ) {
            fprintf(stderr, "afpacket: interface name too long: %s\n", key);
            return -1;
        }
        strcpy(a->ifname, key);
        return 0;
    }
    unsigned v;
    if (strcmp(key, "qdisc_bypass") == 0) {
        if (afp_parse_uint(key, val, 1, &v))
            return -1;
        a->qdisc_bypass = (int)v;
        return 0;
    }
    if (strcmp(key, "tov") == 0) {
        if (afp_parse_uint(key, val, AFP_TOV_MAX_MS, &v))
            return -1;
        if (v == 0) {
            fprintf(stderr, "afpacket: tov must be at least 1 ms\n");
            return -1;
        }
        a->tov_ms = v;
        a->tov_set = 1;
        return 0;
    }
    if (strcmp(key, "queue") == 0)
        return afp_parse_uint(key, val, 63, &a->queue);
    if (strcmp(key, "queues") == 0) {
        if (afp_parse_uint(key, val, 64, &a->queues))
            return -1;
        if (a->queues == 0) {
            fprintf(stderr, "afpacket: queues must be at least 1\n");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "rx") == 0) {
        if (val && strcmp(val, "v2") == 0)
            a->mode = AFP_RX_V2;
        else if (val && strcmp(val, "v3") == 0)
            a->mode = AFP_RX_V3;
        else {
            fprintf(stderr, "afpacket: bad value for rx (v2 or v3)\n");
            return -1;
        }
        return 0;
    }
    fprintf(stderr, "afpacket: unknown option '%s' "
            "(want IFNAME[,rx=v2|v3][,qdisc_bypass=0|1][,tov=MS][,queue=I,queues=N])\n", key);
    return -1;
}

/* Options that only make sense together, checked once all are known. */
static int afp_options_check(const struct afp *a)
{
    if (!a->ifname[0]) {
        fprintf(stderr, "afpacket: missing interface name (afpacket:IFNAME)\n");
        return -1;
    }
    if (a->queue >= a->queues) {
        fprintf(stderr, "afpacket: queue %u out of range (queues=%u)\n", a->queue, a->queues);
        return -1;
    }
    if (a->tov_set && a->mode != AFP_RX_V3) {
        fprintf(stderr, "afpacket: tov applies to rx=v3 only\n");
        return -1;
    }
    return 0;
}

/* ---- interface facts ---------------------------------------------------- */

static int afp_read_link(struct dev *d, struct afp *a, int *ifindex)
{
    int mtu;
    if ((*ifindex = netif_get_index(a->fd, a->ifname)) < 0) {
        fprintf(stderr, "afpacket: SIOCGIFINDEX(%s): %s\n", a->ifname, strerror(errno));
        return -1;
    }
    if (netif_get_mac(a->fd, a->ifname, d->mac)) {
        if (errno == EPFNOSUPPORT)
            fprintf(stderr, "afpacket: %s is not an Ethernet interface\n", a->ifname);
        else
            fprintf(stderr, "afpacket: SIOCGIFHWADDR(%s): %s\n", a->ifname, strerror(errno));
        return -1;
    }
    d->flags |= DEV_F_HAS_MAC;
    if ((mtu = netif_get_mtu(a->fd, a->ifname)) < 0) {
        fprintf(stderr, "afpacket: SIOCGIFMTU(%s): %s\n", a->ifname, strerror(errno));
        return -1;
    }
    d->mtu = (uint32_t)mtu;
    return 0;
}

/* A failed lookup leaves the flag as it was. */
static void afp_refresh_link_up(struct dev *d, struct afp *a)
{
    int up = netif_is_up(a->fd, a->ifname);
    if (up > 0)
        d->flags |= DEV_F_LINK_UP;
    else if (up == 0)
        d->flags &= ~(uint32_t)DEV_F_LINK_UP;
}

/* ---- socket and rings --------------------------------------------------- */

static int afp_setopt(struct afp *a, int opt, const void *v, socklen_t len, const char *what)
{
    if (setsockopt(a->fd, SOL_PACKET, opt, v, len) < 0) {
        fprintf(stderr, "afpacket: %s: %s\n", what, strerror(errno));
        return -1;
    }
    return 0;
}

/* Smallest power of two from `min` that holds `need`, at most a block. */
static uint32_t afp_slot_size(uint32_t need, uint32_t min)
{
    uint32_t size = min;
    while (size < need && size < AFP_TX_BLOCK_SIZE)
        size *= 2;
    return size;
}

/* TX slot: the largest frame the kernel accepts (MTU + Ethernet header + one
 * VLAN tag) after the slot header. */
static uint32_t afp_tx_frame_size(const struct afp *a, uint32_t mtu)
{
    return afp_slot_size(a->tx_data_off + mtu + ETH_HLEN + AFP_VLAN_HLEN, AFP_TX_FRAME_MIN);
}

/* V2 RX slot: a full-MTU frame after the header the kernel puts in front.
 * Anything longer (GSO from the peer) arrives truncated and is dropped. */
static uint32_t afp_rx_frame_size_v2(uint32_t mtu)
{
    return afp_slot_size(AFP_RX_MAC_ROOM_V2 + mtu + ETH_HLEN + AFP_VLAN_HLEN, AFP_RX_FRAME_MIN);
}

/* Both request layouts start with the four tpacket_req fields; V2 reads
 * only those, V3 also the retire timer, private size and feature word. */
static int afp_ring_request(struct afp *a, int opt, const union tpacket_req_u *req,
                            const char *what)
{
    socklen_t len = a->mode == AFP_RX_V3 ? sizeof(req->req3) : sizeof(req->req);
    return afp_setopt(a, opt, req, len, what);
}

static int afp_request_rx(struct afp *a, uint32_t mtu)
{
    union tpacket_req_u req;
    memset(&req, 0, sizeof(req));
    if (a->mode == AFP_RX_V3) {
        req.req3.tp_block_size = AFP_RX_BLOCK_SIZE;
        req.req3.tp_block_nr = AFP_RX_BLOCK_NR;
        req.req3.tp_frame_size = AFP_RX_FRAME_SIZE;
        req.req3.tp_frame_nr = AFP_RX_BLOCK_NR * (AFP_RX_BLOCK_SIZE / AFP_RX_FRAME_SIZE);
        req.req3.tp_retire_blk_tov = a->tov_ms;
    } else {
        a->rx_frame_size = afp_rx_frame_size_v2(mtu);
        a->rx_frames_per_block = AFP_RX_BLOCK_SIZE / a->rx_frame_size;
        a->rx_frame_nr = a->rx_frames_per_block * AFP_RX_BLOCK_NR;
        req.req.tp_block_size = AFP_RX_BLOCK_SIZE;
        req.req.tp_block_nr = AFP_RX_BLOCK_NR;
        req.req.tp_frame_size = a->rx_frame_size;
        req.req.tp_frame_nr = a->rx_frame_nr;
    }
    return afp_ring_request(a, PACKET_RX_RING, &req, "PACKET_RX_RING");
}

/* For a V3 TX ring the retire timer, private area and feature word must be
 * zero, which the memset gives. */
static int afp_request_tx(struct afp *a, uint32_t mtu)
{
    a->tx_data_off = a->mode == AFP_RX_V3 ? AFP_TX_DATA_OFF_V3 : AFP_TX_DATA_OFF_V2;
    a->tx_frame_size = afp_tx_frame_size(a, mtu);
    a->tx_frames_per_block = AFP_TX_BLOCK_SIZE / a->tx_frame_size;
    a->tx_frame_nr = a->tx_frames_per_block * AFP_TX_BLOCK_NR;
    union tpacket_req_u req;
    memset(&req, 0, sizeof(req));
    req.req.tp_block_size = AFP_TX_BLOCK_SIZE;
    req.req.tp_block_nr = AFP_TX_BLOCK_NR;
    req.req.tp_frame_size = a->tx_frame_size;
    req.req.tp_frame_nr = a->tx_frame_nr;
    return afp_ring_request(a, PACKET_TX_RING, &req, "PACKET_TX_RING");
}

/* PACKET_VERSION covers both rings of the socket, so rx=v2 makes the TX
 * ring V2 as well (tpacket2_hdr slots). */
static int afp_setup_rings(struct afp *a, uint32_t mtu)
{
    int ver = a->mode == AFP_RX_V3 ? TPACKET_V3 : TPACKET_V2, one = 1;
    if (afp_setopt(a, PACKET_VERSION, &ver, sizeof(ver), "PACKET_VERSION") ||
        afp_setopt(a, PACKET_LOSS, &one, sizeof(one), "PACKET_LOSS") ||
        afp_request_rx(a, mtu) || afp_request_tx(a, mtu))
        return -1;

    size_t rx_len = (size_t)AFP_RX_BLOCK_SIZE * AFP_RX_BLOCK_NR;
    a->map_len = rx_len + (size_t)AFP_TX_BLOCK_SIZE * AFP_TX_BLOCK_NR;
    void *m = mmap(NULL, a->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, a->fd, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "afpacket: mmap rings: %s\n", strerror(errno));
        a->map = NULL;
        return -1;
    }
    a->map = m;
    a->rx = a->map;
    a->tx = a->map + rx_len;
    return 0;
}

static int afp_bind(struct afp *a, int ifindex)
{
    struct sockaddr_ll sll = {
        .sll_family = AF_PACKET,
        .sll_protocol = htons(ETH_P_ALL),
        .sll_ifindex = ifindex,
    };
    if (bind(a->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        fprintf(stderr, "afpacket: bind(%s): %s\n", a->ifname, strerror(errno));
        return -1;
    }
    int one = 1;
    if (afp_setopt(a, PACKET_IGNORE_OUTGOING, &one, sizeof(one), "PACKET_IGNORE_OUTGOING"))
        return -1;
    if (a->qdisc_bypass &&
        afp_setopt(a, PACKET_QDISC_BYPASS, &one, sizeof(one), "PACKET_QDISC_BYPASS"))
        return -1;
    return 0;
}

/* Join the workers' fanout group and install the steering program (see the
 * box at the top). Joining needs a bound socket. */
static int afp_join_fanout(struct afp *a)
{
    if (a->queues <= 1)
        return 0;
    uint32_t id = (uint32_t)getpid() & 0xffff;
    int val = (int)(id | ((uint32_t)PACKET_FANOUT_CBPF << 16));
    if (afp_setopt(a, PACKET_FANOUT, &val, sizeof(val), "PACKET_FANOUT"))
        return -1;
    struct steer_bpf_insn prog[STEER_BPF_MAX];
    struct sock_filter code[STEER_BPF_MAX];
    int len = steer_bpf_build(prog, a->queues);
    for (int i = 0; i < len; i++)
        code[i] = (struct sock_filter){.code = prog[i].code, .jt = prog[i].jt, .jf = prog[i].jf, .k = prog[i].k};
    struct sock_fprog fprog = {.len = (unsigned short)len, .filter = code};
    return afp_setopt(a, PACKET_FANOUT_DATA, &fprog, sizeof(fprog), "PACKET_FANOUT_DATA (cBPF)");
}

static void afp_release(struct afp *a)
{
    if (a->map)
        munmap(a->map, a->map_len);
    if (a->fd >= 0)
        close(a->fd);
    free(a);
}

static int afp_open(struct dev *d, const char *args)
{
    struct afp *a = calloc(1, sizeof(*a));
    if (!a)
        return -1;
    a->fd = -1;
    a->qdisc_bypass = 1;
    a->tov_ms = AFP_TOV_DEFAULT_MS;
    a->mode = AFP_RX_MODE_DEFAULT;
    a->queues = 1;
    if (dev_args_each(args, ',', afp_option, a) || afp_options_check(a)) {
        afp_release(a);
        return -1;
    }
    /* Protocol 0: nothing is queued to the socket before bind, so the ring
     * starts empty of frames from other interfaces. */
    a->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (a->fd < 0) {
        fprintf(stderr, "afpacket: socket: %s\n", strerror(errno));
        afp_release(a);
        return -1;
    }
    int ifindex = 0;
    if (afp_read_link(d, a, &ifindex) || afp_setup_rings(a, d->mtu) || afp_bind(a, ifindex) ||
        afp_join_fanout(a)) {
        afp_release(a);
        return -1;
    }
    afp_refresh_link_up(d, a);
    d->queue = (uint16_t)a->queue;
    d->priv = a;
    return 0;
}

static int afp_start(struct dev *d)
{
    return d->pool ? 0 : -1;
}

/* ---- receive ------------------------------------------------------------ */

/* The fields of a V2 or V3 frame header the copy needs. */
struct afp_rx_meta {
    uint32_t status, len, snaplen;
    const uint8_t *data;
};

/* Copy one ring frame into a pool buffer; NULL when it is dropped. */
static struct pkt *afp_rx_copy(struct dev *d, const struct afp_rx_meta *m, uint64_t now)
{
    uint32_t cap = d->pool->room - PKT_HEADROOM;
    if (cap > UINT16_MAX)
        cap = UINT16_MAX;
    if (m->snaplen < m->len || m->snaplen > cap) {
        CTR_INC(d->ctr, dev_rx_oversize);
        return NULL;
    }
    if (m->status & TP_STATUS_VLAN_VALID) {
        CTR_INC(d->ctr, eth_drop_type);
        return NULL;
    }
    struct pkt *p = pkt_alloc(d->pool);
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
        return NULL;
    }
    memcpy(pkt_data(p), m->data, m->snaplen);
    p->len = (uint16_t)m->snaplen;
    p->stamp = now;
    if (m->status & TP_STATUS_CSUMNOTREADY) {
        p->flags |= PKT_F_CSUM_PARTIAL;
        CTR_INC(d->ctr, dev_rx_csum_partial);
    }
    CTR_INC(d->ctr, dev_rx);
    CTR_ADD(d->ctr, dev_rx_bytes, p->len);
    return p;
}

/* -- V2: one status word per fixed-size slot -- */

static struct tpacket2_hdr *afp_rx_slot_v2(const struct afp *a, uint32_t i)
{
    uint32_t blk = i / a->rx_frames_per_block, in = i % a->rx_frames_per_block;
    return (struct tpacket2_hdr *)(a->rx + (size_t)blk * AFP_RX_BLOCK_SIZE +
                                   (size_t)in * a->rx_frame_size);
}

/* Take the slot's frame, if its header keeps the data inside the slot. */
static struct pkt *afp_rx_take_v2(struct dev *d, const struct afp *a,
                                  const struct tpacket2_hdr *h, uint32_t st, uint64_t now)
{
    if (h->tp_mac > a->rx_frame_size || h->tp_snaplen > a->rx_frame_size - h->tp_mac) {
        CTR_INC(d->ctr, dev_rx_oversize);
        return NULL;
    }
    struct afp_rx_meta m = {
        .status = st,
        .len = h->tp_len,
        .snaplen = h->tp_snaplen,
        .data = (const uint8_t *)h + h->tp_mac,
    };
    return afp_rx_copy(d, &m, now);
}

/* The kernel marks each slot TP_STATUS_USER as soon as it is filled and wakes
 * poll() for it, so a lone frame is visible at once. */
static uint16_t afp_rx_burst_v2(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct afp *a = d->priv;
    uint16_t n = 0;
    /* Bounded: every step gives one slot back, at most the whole ring. */
    for (uint32_t seen = 0; n < max && seen < a->rx_frame_nr; seen++) {
        struct tpacket2_hdr *h = afp_rx_slot_v2(a, a->rx_head);
        uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
        if (!(st & TP_STATUS_USER))
            break;
        struct pkt *p = afp_rx_take_v2(d, a, h, st, now);
        if (p)
            pkts[n++] = p;
        __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        a->rx_head = (a->rx_head + 1) % a->rx_frame_nr;
    }
    return n;
}

/* -- V3: variable-size frames packed into blocks handed over whole -- */

static struct tpacket_block_desc *afp_rx_block(const struct afp *a, uint32_t i)
{
    return (struct tpacket_block_desc *)(a->rx + (size_t)i * AFP_RX_BLOCK_SIZE);
}

/* Hand the current block back and move to the next one. */
static void afp_rx_block_done(struct afp *a)
{
    struct tpacket_block_desc *b = afp_rx_block(a, a->rx_blk);
    __atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    a->rx_blk = (a->rx_blk + 1) % AFP_RX_BLOCK_NR;
    a->rx_frame = NULL;
    a->rx_left = 0;
}

/* Open the current block if the kernel has passed it to us. */
static int afp_rx_block_open(struct afp *a)
{
    struct tpacket_block_desc *b = afp_rx_block(a, a->rx_blk);
    uint32_t st = __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
    if (!(st & TP_STATUS_USER))
        return 0;
    uint32_t first = b->hdr.bh1.offset_to_first_pkt;
    a->rx_left = b->hdr.bh1.num_pkts;
    a->rx_frame = (uint8_t *)b + first;
    if (first >= AFP_RX_BLOCK_SIZE)
        a->rx_left = 0;           /* nonsense header: give the block back */
    return 1;
}

/* Is the frame header, and the data it points at, inside the block? */
static int afp_rx_frame_sane(const struct afp *a, const uint8_t *f)
{
    size_t off = (size_t)(f - (const uint8_t *)afp_rx_block(a, a->rx_blk));
    if (off + sizeof(struct tpacket3_hdr) > AFP_RX_BLOCK_SIZE)
        return 0;
    const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)f;
    return (size_t)h->tp_mac + h->tp_snaplen <= AFP_RX_BLOCK_SIZE - off;
}

/* Take the current frame of the block. */
static struct pkt *afp_rx_take_v3(struct dev *d, const struct tpacket3_hdr *h, uint64_t now)
{
    struct afp_rx_meta m = {
        .status = h->tp_status,
        .len = h->tp_len,
        .snaplen = h->tp_snaplen,
        .data = (const uint8_t *)h + h->tp_mac,
    };
    return afp_rx_copy(d, &m, now);
}

/* Step to the next frame of the block; a chain that stops early or points
 * outside the block ends the block. */
static void afp_rx_advance(struct afp *a, const struct tpacket3_hdr *h)
{
    size_t off = (size_t)(a->rx_frame - (uint8_t *)afp_rx_block(a, a->rx_blk));
    a->rx_left--;
    if (a->rx_left == 0)
        return;
    if (h->tp_next_offset == 0 || h->tp_next_offset >= AFP_RX_BLOCK_SIZE - off) {
        a->rx_left = 0;
        return;
    }
    a->rx_frame += h->tp_next_offset;
}

static uint16_t afp_rx_burst_v3(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct afp *a = d->priv;
    uint16_t n = 0;
    /* Bounded: each step consumes a frame or finishes a block, and at most
     * every block can be finished once per call. */
    uint32_t blocks_done = 0;
    while (n < max && blocks_done < AFP_RX_BLOCK_NR) {
        if (!a->rx_frame && !afp_rx_block_open(a))
            break;
        if (a->rx_left == 0 || !afp_rx_frame_sane(a, a->rx_frame)) {
            afp_rx_block_done(a);
            blocks_done++;
            continue;
        }
        const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)a->rx_frame;
        struct pkt *p = afp_rx_take_v3(d, h, now);
        if (p)
            pkts[n++] = p;
        afp_rx_advance(a, h);
    }
    /* Return a fully consumed block now rather than on the next call, so the
     * kernel has it as soon as possible. */
    if (a->rx_frame && a->rx_left == 0)
        afp_rx_block_done(a);
    return n;
}

static uint16_t afp_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    const struct afp *a = d->priv;
    if (a->mode == AFP_RX_V3)
        return afp_rx_burst_v3(d, pkts, max, now);
    return afp_rx_burst_v2(d, pkts, max, now);
}

/* ---- transmit ----------------------------------------------------------- */

static uint8_t *afp_tx_slot(const struct afp *a, uint32_t i)
{
    uint32_t blk = i / a->tx_frames_per_block, in = i % a->tx_frames_per_block;
    return a->tx + (size_t)blk * AFP_TX_BLOCK_SIZE + (size_t)in * a->tx_frame_size;
}

/* The slot's status word: first in tpacket2_hdr, mid-header in tpacket3_hdr. */
static uint32_t *afp_tx_status(const struct afp *a, uint8_t *slot)
{
    if (a->mode == AFP_RX_V3)
        return &((struct tpacket3_hdr *)slot)->tp_status;
    return &((struct tpacket2_hdr *)slot)->tp_status;
}

static int afp_tx_slot_free(const uint32_t *status)
{
    uint32_t st = __atomic_load_n(status, __ATOMIC_ACQUIRE);
    /* WRONG_FORMAT cannot stay with PACKET_LOSS set, but a slot in that state
     * is done with either way. */
    return st == TP_STATUS_AVAILABLE || st == TP_STATUS_WRONG_FORMAT;
}

static void afp_tx_set_len(const struct afp *a, uint8_t *slot, uint32_t len)
{
    if (a->mode == AFP_RX_V3) {
        struct tpacket3_hdr *h = (struct tpacket3_hdr *)slot;
        h->tp_len = len;
        h->tp_snaplen = len;
        h->tp_next_offset = 0;
    } else {
        struct tpacket2_hdr *h = (struct tpacket2_hdr *)slot;
        h->tp_len = len;
        h->tp_snaplen = len;
    }
}

/* Queue one frame in the ring; 0 when it has no room or the frame is too big. */
static int afp_tx_one(struct dev *d, struct afp *a, const struct pkt *p)
{
    uint8_t *slot = afp_tx_slot(a, a->tx_head);
    uint32_t *status = afp_tx_status(a, slot);
    if (!afp_tx_slot_free(status) || p->len > a->tx_frame_size - a->tx_data_off ||
        p->len > d->mtu + ETH_HLEN + AFP_VLAN_HLEN)
        return 0;
    memcpy(slot + a->tx_data_off, pkt_data(p), p->len);
    afp_tx_set_len(a, slot, p->len);
    __atomic_store_n(status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    a->tx_head = (a->tx_head + 1) % a->tx_frame_nr;
    return 1;
}

static uint16_t afp_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    (void)now;
    struct afp *a = d->priv;
    uint16_t sent = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = pkts[i];
        if (afp_tx_one(d, a, p)) {
            sent++;
            CTR_INC(d->ctr, dev_tx);
            CTR_ADD(d->ctr, dev_tx_bytes, p->len);
        } else {
            CTR_INC(d->ctr, dev_tx_drop);
        }
        pkt_free(p);
    }
    /* One kick per burst. Failures (ENOBUFS, EAGAIN) leave the slots marked
     * SEND_REQUEST; the next kick sends them. */
    if (sent)
        (void)sendto(a->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
    return sent;
}

/* ---- control ------------------------------------------------------------ */

static uint64_t afp_service(struct dev *d, uint64_t now)
{
    struct afp *a = d->priv;
    if (now < a->next_service)
        return a->next_service;
    /* Reading the statistics also resets them in the kernel: add, not set.
     * V2 sockets fill a tpacket_stats, V3 a tpacket_stats_v3. */
    union tpacket_stats_u st;
    memset(&st, 0, sizeof(st));
    socklen_t len = a->mode == AFP_RX_V3 ? sizeof(st.stats3) : sizeof(st.stats1);
    if (getsockopt(a->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
        CTR_ADD(d->ctr, dev_kernel_drops,
                a->mode == AFP_RX_V3 ? st.stats3.tp_drops : st.stats1.tp_drops);
    afp_refresh_link_up(d, a);
    a->next_service = now + AFP_STATS_PERIOD_NS;
    return a->next_service;
}

static int afp_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct afp *a = d->priv;
    return dev_poll_one_fd(fds, max, a->fd);
}

static void afp_close(struct dev *d)
{
    if (d->priv)
        afp_release(d->priv);
    d->priv = NULL;
}

const struct dev_ops dev_afpacket_ops = {
    .kind = "afpacket",
    .open = afp_open,
    .start = afp_start,
    .rx_burst = afp_rx_burst,
    .tx_burst = afp_tx_burst,
    .service = afp_service,
    .poll_fds = afp_poll_fds,
    .close = afp_close,
};
