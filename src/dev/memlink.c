/* The in-memory link: see memlink.h.
 *
 * A sent frame stays in the SENDER's buffer, queued toward the peer with its
 * release time in pkt.stamp; the receiving end copies it into a buffer of its
 * own pool when it is due and frees the sender's buffer. Copying at receive
 * time lets the two ends keep separate pools, as two real hosts would, and
 * keeps the sender's pool accounting honest while a frame is "on the wire". */
#include "dev/memlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/eth.h"

#define MEMLINK_NAME_MAX 32
#define MEMLINK_MTU_DEFAULT 1500
#define MEMLINK_MTU_MAX 65535

struct memlink_link;

struct memlink_end {
    struct memlink_link *link;
    struct dev *dev;             /* NULL while this end is not open          */
    struct pkt_queue toward;     /* frames in flight toward this end         */
    uint64_t latency_ns;         /* options of this end, for frames it sends */
    uint32_t qlen;
    uint32_t max_frame;
};

struct memlink_link {
    char name[MEMLINK_NAME_MAX];
    struct memlink_end end[2];
};

/* Process-wide registry; single-threaded by contract (memlink.h). */
static struct memlink_link memlink_links[MEMLINK_MAX_LINKS];

struct memlink_opts {
    char name[MEMLINK_NAME_MAX];
    int side;                    /* -1: first free end                       */
    uint64_t latency_ns;
    uint32_t qlen;
    uint32_t mtu;
    int l3;
};

static int memlink_parse_u64(const char *key, const char *val, uint64_t max, uint64_t *out)
{
    char *end;
    if (!val || !*val) {
        fprintf(stderr, "memlink: %s needs a value\n", key);
        return -1;
    }
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || *end || v > max || val[0] == '-') {
        fprintf(stderr, "memlink: bad %s '%s' (0..%llu)\n", key, val, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int memlink_parse_side(const char *val, int *side)
{
    if (val && strcmp(val, "a") == 0)
        *side = 0;
    else if (val && strcmp(val, "b") == 0)
        *side = 1;
    else {
        fprintf(stderr, "memlink: end must be a or b\n");
        return -1;
    }
    return 0;
}

static int memlink_opt(void *ctx, const char *key, const char *val)
{
    struct memlink_opts *o = ctx;
    uint64_t v;
    if (!val && strcmp(key, "l3") == 0 && o->name[0]) {
        o->l3 = 1;
        return 0;
    }
    if (!val && !o->name[0]) {
        if (strlen(key) >= MEMLINK_NAME_MAX) {
            fprintf(stderr, "memlink: name too long (max %d)\n", MEMLINK_NAME_MAX - 1);
            return -1;
        }
        strcpy(o->name, key);
        return 0;
    }
    if (strcmp(key, "end") == 0)
        return memlink_parse_side(val, &o->side);
    if (strcmp(key, "latency_us") == 0) {
        if (memlink_parse_u64(key, val, 3600ULL * 1000000, &v))
            return -1;
        o->latency_ns = v * 1000;
        return 0;
    }
    if (strcmp(key, "qlen") == 0) {
        if (memlink_parse_u64(key, val, MEMLINK_QLEN_MAX, &v))
            return -1;
        if (v == 0) {
            fprintf(stderr, "memlink: qlen must be > 0\n");
            return -1;
        }
        o->qlen = (uint32_t)v;
        return 0;
    }
    if (strcmp(key, "mtu") == 0) {
        /* RFC 791: every IPv4 link carries at least 68 octets. */
        if (memlink_parse_u64(key, val, MEMLINK_MTU_MAX, &v))
            return -1;
        if (v < 68) {
            fprintf(stderr, "memlink: mtu must be >= 68\n");
            return -1;
        }
        o->mtu = (uint32_t)v;
        return 0;
    }
    fprintf(stderr, "memlink: unknown option '%s'\n", key);
    return -1;
}

static struct memlink_link *memlink_lookup(const char *name, int create)
{
    struct memlink_link *free_slot = NULL;
    for (int i = 0; i < MEMLINK_MAX_LINKS; i++) {
        struct memlink_link *l = &memlink_links[i];
        if (l->name[0] && strcmp(l->name, name) == 0)
            return l;
        if (!l->name[0] && !free_slot)
            free_slot = l;
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    strcpy(free_slot->name, name);
    for (int s = 0; s < 2; s++)
        free_slot->end[s].link = free_slot;
    return free_slot;
}

static int memlink_pick_side(struct memlink_link *l, int want)
{
    if (want >= 0)
        return l->end[want].dev ? -1 : want;
    for (int s = 0; s < 2; s++)
        if (!l->end[s].dev)
            return s;
    return -1;
}

static struct memlink_end *memlink_peer(struct memlink_end *e)
{
    struct memlink_link *l = e->link;
    return e == &l->end[0] ? &l->end[1] : &l->end[0];
}

static void memlink_update_link_flags(struct memlink_link *l)
{
    int up = l->end[0].dev && l->end[1].dev;
    for (int s = 0; s < 2; s++) {
        struct dev *d = l->end[s].dev;
        if (!d)
            continue;
        if (up)
            d->flags |= DEV_F_LINK_UP;
        else
            d->flags &= ~(uint32_t)DEV_F_LINK_UP;
    }
}

static int memlink_open(struct dev *d, const char *args)
{
    struct memlink_opts o = { .side = -1, .qlen = MEMLINK_QLEN_DEFAULT,
                              .mtu = MEMLINK_MTU_DEFAULT };
    if (dev_args_each(args, ',', memlink_opt, &o))
        return -1;
    if (!o.name[0]) {
        fprintf(stderr, "memlink: missing link name (memlink:NAME[,end=a|b,...])\n");
        return -1;
    }
    struct memlink_link *l = memlink_lookup(o.name, 1);
    if (!l) {
        fprintf(stderr, "memlink: too many links (max %d)\n", MEMLINK_MAX_LINKS);
        return -1;
    }
    int side = memlink_pick_side(l, o.side);
    if (side < 0) {
        fprintf(stderr, "memlink: link '%s' has no free end\n", o.name);
        return -1;
    }
    struct memlink_end *e = &l->end[side];
    e->dev = d;
    e->latency_ns = o.latency_ns;
    e->qlen = o.qlen;
    e->max_frame = o.mtu + (o.l3 ? 0 : ETH_HDR_LEN);
    d->priv = e;
    d->mtu = o.mtu;
    if (o.l3)
        d->flags |= DEV_F_L3;
    memlink_update_link_flags(l);
    return 0;
}

static int memlink_start(struct dev *d)
{
    (void)d;
    return 0;
}

/* Copy one due frame into a buffer of the receiver's pool; frees the
 * sender's buffer either way. Returns the new buffer or NULL (counted). */
static struct pkt *memlink_take(struct dev *d, struct pkt *sent)
{
    struct pkt *p = pkt_alloc(d->pool);
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
    } else if (sent->len > p->room - PKT_HEADROOM) {
        CTR_INC(d->ctr, dev_rx_oversize);
        pkt_free(p);
        p = NULL;
    } else {
        memcpy(pkt_put(p, sent->len), pkt_data(sent), sent->len);
        p->stamp = sent->stamp;
        CTR_INC(d->ctr, dev_rx);
        CTR_ADD(d->ctr, dev_rx_bytes, sent->len);
    }
    pkt_free(sent);
    return p;
}

static uint16_t memlink_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct memlink_end *e = d->priv;
    uint16_t n = 0;
    if (!d->pool)
        return 0;
    while (n < max && e->toward.head && e->toward.head->stamp <= now) {
        struct pkt *p = memlink_take(d, pktq_pop(&e->toward));
        if (p)
            pkts[n++] = p;
    }
    return n;
}

static int memlink_tx_one(struct dev *d, struct memlink_end *e, struct pkt *p, uint64_t now)
{
    struct memlink_end *peer = memlink_peer(e);
    if (!peer->dev || p->len > e->max_frame || peer->toward.len >= e->qlen)
        return -1;
    uint64_t release = now + e->latency_ns;
    /* Keep the queue sorted even if a caller's clock steps back. */
    if (peer->toward.tail && peer->toward.tail->stamp > release)
        release = peer->toward.tail->stamp;
    p->stamp = release;
    pktq_push(&peer->toward, p);
    CTR_INC(d->ctr, dev_tx);
    CTR_ADD(d->ctr, dev_tx_bytes, p->len);
    return 0;
}

static uint16_t memlink_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    struct memlink_end *e = d->priv;
    uint16_t sent = 0;
    for (uint16_t i = 0; i < n; i++) {
        if (memlink_tx_one(d, e, pkts[i], now) == 0) {
            sent++;
        } else {
            CTR_INC(d->ctr, dev_tx_drop);
            pkt_free(pkts[i]);
        }
    }
    return sent;
}

static int memlink_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    (void)d, (void)fds, (void)max;
    return 0;    /* nothing to sleep on: a test drives the clock */
}

static void memlink_close(struct dev *d)
{
    struct memlink_end *e = d->priv;
    if (!e)
        return;
    struct memlink_end *peer = memlink_peer(e);
    /* Frames from this end still sit in its pool, which goes away with it;
     * frames toward it have nobody left to receive them. */
    pktq_free_all(&peer->toward);
    pktq_free_all(&e->toward);
    e->dev = NULL;
    d->priv = NULL;
    struct memlink_link *l = e->link;
    memlink_update_link_flags(l);
    if (!l->end[0].dev && !l->end[1].dev)
        memset(l, 0, sizeof(*l));
}

int memlink_pending(struct dev *d)
{
    if (!d || d->ops != &dev_memlink_ops || !d->priv)
        return -1;
    struct memlink_end *e = d->priv;
    return (int)e->toward.len;
}

uint64_t memlink_next_release(struct dev *d)
{
    if (!d || d->ops != &dev_memlink_ops || !d->priv)
        return UINT64_MAX;
    struct memlink_end *e = d->priv;
    return e->toward.head ? e->toward.head->stamp : UINT64_MAX;
}

const struct dev_ops dev_memlink_ops = {
    .kind = "memlink",
    .open = memlink_open,
    .start = memlink_start,
    .rx_burst = memlink_rx_burst,
    .tx_burst = memlink_tx_burst,
    .poll_fds = memlink_poll_fds,
    .close = memlink_close,
};
