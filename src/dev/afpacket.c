/* AF_PACKET backend: "afpacket:IFNAME[,qdisc_bypass=0|1][,tov=MS]".
 *
 * +--------------------------------------------------------------------------+
 * | What it does                                                             |
 * |  - One AF_PACKET SOCK_RAW socket bound to IFNAME with ETH_P_ALL, using   |
 * |    TPACKET_V3 for both rings (one mmap: RX ring first, then TX ring).    |
 * |  - RX: a block-based ring. Frames are COPIED into pool buffers; a block  |
 * |    goes back to the kernel (TP_STATUS_KERNEL) only once every frame in   |
 * |    it has been taken, so one block may span several rx_burst calls.     |
 * |    A partly filled block reaches us when it fills or when the retire     |
 * |    timer fires: `tov` ms (default 1; the kernel rounds up to a jiffy).   |
 * |    That timer bounds the extra latency at low packet rates.              |
 * |  - TX: frames are copied into TX ring slots (tpacket3_hdr, data at       |
 * |    TPACKET_ALIGN(sizeof(tpacket3_hdr)), tp_next_offset 0) and the ring   |
 * |    is kicked with one non-blocking sendto() per burst. A full ring drops |
 * |    the rest of the burst (dev_tx_drop). PACKET_LOSS is set so a frame   |
 * |    the kernel rejects is skipped instead of stalling the ring.          |
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
 * +--------------------------------------------------------------------------+
 *
 * The ring headers are kernel ABI structs in host byte order, so they are
 * read through struct pointers (the wire-format rule is about frames); each
 * status word is read with acquire and written with release ordering, since
 * the kernel reads and writes the same memory concurrently. */
#include "dev/dev.h"
#include "dev/netif.h"

#include <errno.h>
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
#define AFP_TX_BLOCK_SIZE (64u * 1024)
#define AFP_TX_BLOCK_NR   8u
#define AFP_TX_FRAME_MIN  2048u
#define AFP_STATS_PERIOD_NS 100000000ull
#define AFP_TOV_DEFAULT_MS 1u
#define AFP_TOV_MAX_MS 1000u
#define AFP_VLAN_HLEN 4u
/* Where frame data starts in a TX slot when PACKET_TX_HAS_OFF is not set. */
#define AFP_TX_DATA_OFF ((uint32_t)TPACKET_ALIGN(sizeof(struct tpacket3_hdr)))

struct afp {
    int fd;
    uint8_t *map;
    size_t map_len;
    char ifname[IFNAMSIZ];
    int qdisc_bypass;
    unsigned tov_ms;
    /* receive ring */
    uint8_t *rx;
    uint32_t rx_blk;          /* block being consumed                          */
    uint8_t *rx_frame;        /* next frame in it; NULL: block not opened yet  */
    uint32_t rx_left;         /* frames of the block not consumed yet          */
    /* transmit ring */
    uint8_t *tx;
    uint32_t tx_frame_size;
    uint32_t tx_frames_per_block;
    uint32_t tx_frame_nr;
    uint32_t tx_head;         /* next slot to fill                             */
    uint64_t next_service;
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
        return 0;
    }
    fprintf(stderr, "afpacket: unknown option '%s' (want IFNAME[,qdisc_bypass=0|1][,tov=MS])\n",
            key);
    return -1;
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

/* TX slot size: the largest frame the kernel accepts (MTU + Ethernet header
 * + one VLAN tag) after the slot header, rounded to a power of two. */
static uint32_t afp_tx_frame_size(uint32_t mtu)
{
    uint32_t need = AFP_TX_DATA_OFF + mtu + ETH_HLEN + AFP_VLAN_HLEN;
    uint32_t size = AFP_TX_FRAME_MIN;
    while (size < need && size < AFP_TX_BLOCK_SIZE)
        size *= 2;
    return size;
}

static int afp_setup_rings(struct afp *a, uint32_t mtu)
{
    int ver = TPACKET_V3, one = 1;
    if (afp_setopt(a, PACKET_VERSION, &ver, sizeof(ver), "PACKET_VERSION V3") ||
        afp_setopt(a, PACKET_LOSS, &one, sizeof(one), "PACKET_LOSS"))
        return -1;

    struct tpacket_req3 rx = {
        .tp_block_size = AFP_RX_BLOCK_SIZE,
        .tp_block_nr = AFP_RX_BLOCK_NR,
        .tp_frame_size = AFP_RX_FRAME_SIZE,
        .tp_frame_nr = AFP_RX_BLOCK_NR * (AFP_RX_BLOCK_SIZE / AFP_RX_FRAME_SIZE),
        .tp_retire_blk_tov = a->tov_ms,
    };
    if (afp_setopt(a, PACKET_RX_RING, &rx, sizeof(rx), "PACKET_RX_RING"))
        return -1;

    a->tx_frame_size = afp_tx_frame_size(mtu);
    a->tx_frames_per_block = AFP_TX_BLOCK_SIZE / a->tx_frame_size;
    a->tx_frame_nr = a->tx_frames_per_block * AFP_TX_BLOCK_NR;
    /* For a V3 TX ring the retire timer, private area and feature word must
     * be zero. */
    struct tpacket_req3 tx = {
        .tp_block_size = AFP_TX_BLOCK_SIZE,
        .tp_block_nr = AFP_TX_BLOCK_NR,
        .tp_frame_size = a->tx_frame_size,
        .tp_frame_nr = a->tx_frame_nr,
    };
    if (afp_setopt(a, PACKET_TX_RING, &tx, sizeof(tx), "PACKET_TX_RING"))
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
    if (dev_args_each(args, ',', afp_option, a) || !a->ifname[0]) {
        if (!a->ifname[0])
            fprintf(stderr, "afpacket: missing interface name (afpacket:IFNAME)\n");
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
    if (afp_read_link(d, a, &ifindex) || afp_setup_rings(a, d->mtu) || afp_bind(a, ifindex)) {
        afp_release(a);
        return -1;
    }
    afp_refresh_link_up(d, a);
    d->priv = a;
    return 0;
}

static int afp_start(struct dev *d)
{
    return d->pool ? 0 : -1;
}

/* ---- receive ------------------------------------------------------------ */

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

/* Copy one ring frame into a pool buffer; NULL when it is dropped. */
static struct pkt *afp_rx_copy(struct dev *d, const struct tpacket3_hdr *h, uint64_t now)
{
    uint32_t cap = d->pool->room - PKT_HEADROOM;
    if (cap > UINT16_MAX)
        cap = UINT16_MAX;
    if (h->tp_snaplen < h->tp_len || h->tp_snaplen > cap) {
        CTR_INC(d->ctr, dev_rx_oversize);
        return NULL;
    }
    if (h->tp_status & TP_STATUS_VLAN_VALID) {
        CTR_INC(d->ctr, eth_drop_type);
        return NULL;
    }
    struct pkt *p = pkt_alloc(d->pool);
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
        return NULL;
    }
    memcpy(pkt_data(p), (const uint8_t *)h + h->tp_mac, h->tp_snaplen);
    p->len = (uint16_t)h->tp_snaplen;
    p->stamp = now;
    if (h->tp_status & TP_STATUS_CSUMNOTREADY) {
        p->flags |= PKT_F_CSUM_PARTIAL;
        CTR_INC(d->ctr, dev_rx_csum_partial);
    }
    CTR_INC(d->ctr, dev_rx);
    CTR_ADD(d->ctr, dev_rx_bytes, p->len);
    return p;
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

static uint16_t afp_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
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
        struct pkt *p = afp_rx_copy(d, h, now);
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

/* ---- transmit ----------------------------------------------------------- */

static struct tpacket3_hdr *afp_tx_slot(const struct afp *a, uint32_t i)
{
    uint32_t blk = i / a->tx_frames_per_block, in = i % a->tx_frames_per_block;
    return (struct tpacket3_hdr *)(a->tx + (size_t)blk * AFP_TX_BLOCK_SIZE +
                                   (size_t)in * a->tx_frame_size);
}

static int afp_tx_slot_free(const struct tpacket3_hdr *h)
{
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    /* WRONG_FORMAT cannot stay with PACKET_LOSS set, but a slot in that state
     * is done with either way. */
    return st == TP_STATUS_AVAILABLE || st == TP_STATUS_WRONG_FORMAT;
}

/* Queue one frame in the ring; 0 when it has no room or the frame is too big. */
static int afp_tx_one(struct dev *d, struct afp *a, const struct pkt *p)
{
    struct tpacket3_hdr *h = afp_tx_slot(a, a->tx_head);
    if (!afp_tx_slot_free(h) || p->len > a->tx_frame_size - AFP_TX_DATA_OFF ||
        p->len > d->mtu + ETH_HLEN + AFP_VLAN_HLEN)
        return 0;
    memcpy((uint8_t *)h + AFP_TX_DATA_OFF, pkt_data(p), p->len);
    h->tp_len = p->len;
    h->tp_snaplen = p->len;
    h->tp_next_offset = 0;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
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
    /* Reading the statistics also resets them in the kernel: add, not set. */
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof(st);
    if (getsockopt(a->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
        CTR_ADD(d->ctr, dev_kernel_drops, st.tp_drops);
    afp_refresh_link_up(d, a);
    a->next_service = now + AFP_STATS_PERIOD_NS;
    return a->next_service;
}

static int afp_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct afp *a = d->priv;
    if (max < 1)
        return 0;
    fds[0] = (struct pollfd){.fd = a->fd, .events = POLLIN};
    return 1;
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
