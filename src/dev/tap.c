/* TAP backend: "tap:IFNAME".
 *
 * +--------------------------------------------------------------------------+
 * | The tap interface IFNAME is the KERNEL's end of a point-to-point wire;  |
 * | ustack is the machine on the far side of that wire.                     |
 * |                                                                          |
 * |   kernel stack -- IFNAME (kernel's IP, kernel's MAC) ==wire== ustack     |
 * |                                                                          |
 * |  - Configure the kernel side's address on IFNAME (ip addr add ... dev   |
 * |    IFNAME); ustack's own address is its --ip, never set on IFNAME.      |
 * |  - IFNAME's MAC belongs to the kernel. ustack has no MAC of its own     |
 * |    here (DEV_F_HAS_MAC clear): the stack picks a random locally         |
 * |    administered one unless --mac is given.                               |
 * |  - The device is opened with IFF_TAP|IFF_NO_PI (bare Ethernet frames),  |
 * |    created if it does not exist and NOT made persistent, so it vanishes |
 * |    when ustack closes it. An existing persistent tap is attached to.    |
 * |    The interface is brought up (IFF_UP); its MTU becomes d->mtu.        |
 * |  - No IFF_VNET_HDR: the kernel segments and checksums everything before |
 * |    handing it over, so frames are at most MTU + header and complete.    |
 * |  - Receive: one read() per frame on a non-blocking fd, straight into a  |
 * |    pool buffer; a second iovec catches anything longer than the buffer, |
 * |    which is then dropped (dev_rx_oversize). Pool empty: the frame is    |
 * |    read into that scratch area and dropped (dev_rx_nobuf), the same     |
 * |    policy as the afpacket backend.                                       |
 * |  - Transmit: one write() per frame; EAGAIN (the tap queue is full)      |
 * |    drops the frame (dev_tx_drop).                                        |
 * +--------------------------------------------------------------------------+ */
#include "dev/dev.h"
#include "dev/netif.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define TAP_SCRATCH (64u * 1024 + 64)   /* larger than any frame a tap delivers */

struct tap {
    int fd;
    char ifname[IFNAMSIZ];
    uint8_t scratch[TAP_SCRATCH];
};

static int tap_option(void *ctx, const char *key, const char *val)
{
    struct tap *t = ctx;
    if (t->ifname[0] || val) {
        fprintf(stderr, "tap: unexpected option '%s' (want tap:IFNAME)\n", key);
        return -1;
    }
    if (strlen(key) >= IFNAMSIZ) {
        fprintf(stderr, "tap: interface name too long: %s\n", key);
        return -1;
    }
    strcpy(t->ifname, key);
    return 0;
}

static int tap_attach(struct tap *t)
{
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        fprintf(stderr, "tap: open /dev/net/tun: %s\n", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, t->ifname, IFNAMSIZ);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "tap: TUNSETIFF(%s): %s\n", t->ifname, strerror(errno));
        return -1;
    }
    /* The kernel may have completed a name pattern such as "tap%d". */
    memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ);
    t->ifname[IFNAMSIZ - 1] = '\0';
    return 0;
}

/* Bring the interface up and read its MTU, through an ordinary socket:
 * interface ioctls do not work on the tun fd itself. */
static int tap_link_up(struct dev *d, struct tap *t)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        fprintf(stderr, "tap: socket: %s\n", strerror(errno));
        return -1;
    }
    int mtu = -1;
    if (netif_set_up(s, t->ifname) == 0)
        mtu = netif_get_mtu(s, t->ifname);
    if (mtu < 0)
        fprintf(stderr, "tap: configuring %s: %s\n", t->ifname, strerror(errno));
    else
        d->mtu = (uint32_t)mtu;
    close(s);
    return mtu < 0 ? -1 : 0;
}

static void tap_release(struct tap *t)
{
    if (t->fd >= 0)
        close(t->fd);
    free(t);
}

static int tap_open(struct dev *d, const char *args)
{
    struct tap *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->fd = -1;
    if (dev_args_each(args, ',', tap_option, t) || !t->ifname[0]) {
        if (!t->ifname[0])
            fprintf(stderr, "tap: missing interface name (tap:IFNAME)\n");
        tap_release(t);
        return -1;
    }
    if (tap_attach(t) || tap_link_up(d, t)) {
        tap_release(t);
        return -1;
    }
    d->flags |= DEV_F_LINK_UP;
    d->flags &= ~(uint32_t)DEV_F_HAS_MAC;
    d->priv = t;
    return 0;
}

static int tap_start(struct dev *d)
{
    return d->pool ? 0 : -1;
}

/* Read one frame. Returns 1 with *out set (or NULL when it was dropped), 0
 * when nothing is waiting. */
static int tap_rx_one(struct dev *d, struct tap *t, struct pkt **out, uint64_t now)
{
    struct pkt *p = pkt_alloc(d->pool);
    uint32_t cap = p ? pkt_tailroom(p) : 0;
    if (cap > UINT16_MAX)
        cap = UINT16_MAX;
    struct iovec iov[2] = {
        {.iov_base = p ? pkt_data(p) : t->scratch, .iov_len = cap},
        {.iov_base = t->scratch, .iov_len = sizeof(t->scratch)},
    };
    ssize_t r = p ? readv(t->fd, iov, 2) : readv(t->fd, &iov[1], 1);
    *out = NULL;
    if (r <= 0) {
        pkt_free(p);
        return 0;               /* EAGAIN, or an error poll will report again */
    }
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
        return 1;
    }
    if ((size_t)r > cap) {
        CTR_INC(d->ctr, dev_rx_oversize);
        pkt_free(p);
        return 1;
    }
    p->len = (uint16_t)r;
    p->stamp = now;
    CTR_INC(d->ctr, dev_rx);
    CTR_ADD(d->ctr, dev_rx_bytes, p->len);
    *out = p;
    return 1;
}

static uint16_t tap_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct tap *t = d->priv;
    uint16_t n = 0;
    /* Bounded by max reads, received or dropped. */
    for (uint16_t tries = 0; tries < max; tries++) {
        struct pkt *p;
        if (!tap_rx_one(d, t, &p, now))
            break;
        if (p)
            pkts[n++] = p;
    }
    return n;
}

static uint16_t tap_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    (void)now;
    struct tap *t = d->priv;
    uint16_t sent = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = pkts[i];
        ssize_t w = write(t->fd, pkt_data(p), p->len);
        if (w == (ssize_t)p->len) {
            sent++;
            CTR_INC(d->ctr, dev_tx);
            CTR_ADD(d->ctr, dev_tx_bytes, p->len);
        } else {
            CTR_INC(d->ctr, dev_tx_drop);
        }
        pkt_free(p);
    }
    return sent;
}

static int tap_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct tap *t = d->priv;
    return dev_poll_one_fd(fds, max, t->fd);
}

static void tap_close(struct dev *d)
{
    if (d->priv)
        tap_release(d->priv);
    d->priv = NULL;
}

const struct dev_ops dev_tap_ops = {
    .kind = "tap",
    .open = tap_open,
    .start = tap_start,
    .rx_burst = tap_rx_burst,
    .tx_burst = tap_tx_burst,
    .poll_fds = tap_poll_fds,
    .close = tap_close,
};
