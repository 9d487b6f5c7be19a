/* The fault-injecting device: "fault:OPTS+INNER-SPEC" wraps any other
 * device and loses, corrupts, duplicates, delays and reorders its frames.
 *
 * OPTS (comma separated, all optional):
 *   loss=P reorder=P dup=P corrupt=P   probabilities 0..1, per frame
 *   delay=MS                           hold every frame MS (may be fractional)
 *   hold_ms=MS                         longest a reordered frame waits for a
 *                                      successor before it goes anyway (2)
 *   qlen=N                             delay queue bound per direction (1024);
 *                                      overflow is counted fault_drop
 *   blackout=START_MS:LEN_MS           drop everything in that window, timed
 *                                      from the first call (repeatable, max 8)
 *   seed=N                             PRNG seed (1): runs are reproducible
 *   dir=rx|tx|both                     which directions to impair (both)
 *
 * Time is only the `now` handed in, so a virtual clock drives it exactly.
 * Frames that wait (delay, reorder) leave when a later call passes their
 * time: tx ones from tx_burst or service (which returns their deadline),
 * rx ones from rx_burst. The inner device shares this device's pool and
 * counters. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/dev.h"
#include "wire/eth.h"

#define FAULT_BLACKOUT_MAX 8
#define FAULT_QLEN_DEFAULT 1024
#define FAULT_QLEN_MAX 65536
#define FAULT_HOLD_NS_DEFAULT 2000000ULL
#define FAULT_BURST 64
#define FAULT_DIR_RX 0x1
#define FAULT_DIR_TX 0x2
#define FAULT_SPEC_MAX 512

struct fault_dir {
    struct pkt_queue delayq;     /* pkt.stamp = release time, in order       */
    struct pkt *held;            /* reorder: waits for the next frame        */
    uint64_t held_until;
    struct pkt_queue out;        /* rx: impaired frames not yet handed up    */
};

struct fault_window {
    uint64_t start_ns, len_ns;
};

struct fault {
    struct dev inner;
    double loss, reorder, dup, corrupt;
    uint64_t delay_ns, hold_ns;
    uint32_t qlen;
    int dirs;
    uint64_t rng;
    struct fault_window blackout[FAULT_BLACKOUT_MAX];
    int n_blackout;
    uint64_t t0;                 /* first `now` seen: blackouts count from it */
    int t0_set;
    struct fault_dir rx, tx;
};

/* ---- randomness: splitmix64, so a seed replays the same faults ---- */

static uint64_t fault_rand(struct fault *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A probability of 0 draws nothing, so enabling one fault does not shift
 * the pattern of another for the same seed. */
static int fault_chance(struct fault *f, double p)
{
    if (p <= 0.0)
        return 0;
    return (double)(fault_rand(f) >> 11) * 0x1.0p-53 < p;
}

static uint32_t fault_below(struct fault *f, uint32_t n)
{
    return (uint32_t)(((fault_rand(f) >> 32) * (uint64_t)n) >> 32);
}

/* ---- options ---- */

static int fault_parse_prob(const char *key, const char *val, double *out)
{
    char *end;
    double v = val ? strtod(val, &end) : NAN;
    if (!val || end == val || *end || !(v >= 0.0 && v <= 1.0)) {
        fprintf(stderr, "fault: %s wants a probability 0..1, got '%s'\n", key, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

/* Milliseconds (fractional allowed, up to an hour) -> ns. */
static int fault_parse_ms(const char *key, const char *val, uint64_t *ns)
{
    char *end;
    double v = val ? strtod(val, &end) : NAN;
    if (!val || end == val || *end || !(v >= 0.0 && v <= 3600e3)) {
        fprintf(stderr, "fault: %s wants milliseconds, got '%s'\n", key, val ? val : "");
        return -1;
    }
    *ns = (uint64_t)(v * 1e6);
    return 0;
}

static int fault_parse_blackout(struct fault *f, const char *val)
{
    char start[64];
    const char *colon = val ? strchr(val, ':') : NULL;
    if (!colon || (size_t)(colon - val) >= sizeof(start)) {
        fprintf(stderr, "fault: blackout wants START_MS:LEN_MS\n");
        return -1;
    }
    if (f->n_blackout == FAULT_BLACKOUT_MAX) {
        fprintf(stderr, "fault: at most %d blackouts\n", FAULT_BLACKOUT_MAX);
        return -1;
    }
    memcpy(start, val, (size_t)(colon - val));
    start[colon - val] = '\0';
    struct fault_window *w = &f->blackout[f->n_blackout];
    if (fault_parse_ms("blackout start", start, &w->start_ns) ||
        fault_parse_ms("blackout length", colon + 1, &w->len_ns))
        return -1;
    f->n_blackout++;
    return 0;
}

static int fault_parse_uint(const char *key, const char *val, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = val ? strtoull(val, &end, 0) : 0;
    if (!val || !*val || *end || errno || v > max || val[0] == '-') {
        fprintf(stderr, "fault: bad %s '%s'\n", key, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

static int fault_parse_dir(struct fault *f, const char *val)
{
    if (val && strcmp(val, "rx") == 0)
        f->dirs = FAULT_DIR_RX;
    else if (val && strcmp(val, "tx") == 0)
        f->dirs = FAULT_DIR_TX;
    else if (val && strcmp(val, "both") == 0)
        f->dirs = FAULT_DIR_RX | FAULT_DIR_TX;
    else {
        fprintf(stderr, "fault: dir must be rx, tx or both\n");
        return -1;
    }
    return 0;
}

static int fault_opt(void *ctx, const char *key, const char *val)
{
    struct fault *f = ctx;
    uint64_t v;
    if (strcmp(key, "loss") == 0)
        return fault_parse_prob(key, val, &f->loss);
    if (strcmp(key, "reorder") == 0)
        return fault_parse_prob(key, val, &f->reorder);
    if (strcmp(key, "dup") == 0)
        return fault_parse_prob(key, val, &f->dup);
    if (strcmp(key, "corrupt") == 0)
        return fault_parse_prob(key, val, &f->corrupt);
    if (strcmp(key, "delay") == 0)
        return fault_parse_ms(key, val, &f->delay_ns);
    if (strcmp(key, "hold_ms") == 0)
        return fault_parse_ms(key, val, &f->hold_ns);
    if (strcmp(key, "blackout") == 0)
        return fault_parse_blackout(f, val);
    if (strcmp(key, "dir") == 0)
        return fault_parse_dir(f, val);
    if (strcmp(key, "seed") == 0)
        return fault_parse_uint(key, val, UINT64_MAX, &f->rng);
    if (strcmp(key, "qlen") == 0) {
        if (fault_parse_uint(key, val, FAULT_QLEN_MAX, &v))
            return -1;
        if (v == 0) {
            fprintf(stderr, "fault: qlen must be > 0\n");
            return -1;
        }
        f->qlen = (uint32_t)v;
        return 0;
    }
    fprintf(stderr, "fault: unknown option '%s'\n", key);
    return -1;
}

/* ---- the impairments ---- */

static void fault_clock(struct fault *f, uint64_t now)
{
    if (!f->t0_set) {
        f->t0 = now;
        f->t0_set = 1;
    }
}

static int fault_in_blackout(const struct fault *f, uint64_t now)
{
    uint64_t t = now - f->t0;
    for (int i = 0; i < f->n_blackout; i++)
        if (t >= f->blackout[i].start_ns && t - f->blackout[i].start_ns < f->blackout[i].len_ns)
            return 1;
    return 0;
}

/* Flip one bit past the link header, where a checksum must catch it.
 * Returns 0 when the frame has nothing past the header. */
static int fault_flip_bit(struct fault *f, const struct dev *d, struct pkt *p)
{
    uint32_t hdr = (d->flags & DEV_F_L3) ? 0 : ETH_HDR_LEN;
    if (p->len <= hdr)
        return 0;
    uint32_t at = hdr + fault_below(f, p->len - hdr);
    pkt_data(p)[at] ^= (uint8_t)(1u << fault_below(f, 8));
    return 1;
}

/* Loss, blackout, corruption and duplication: 0, 1 or 2 frames come out. */
static int fault_mangle(struct fault *f, struct dev *d, struct pkt *p, uint64_t now,
                        struct pkt *out[2])
{
    if (fault_in_blackout(f, now) || fault_chance(f, f->loss)) {
        CTR_INC(d->ctr, fault_drop);
        pkt_free(p);
        return 0;
    }
    if (fault_chance(f, f->corrupt) && fault_flip_bit(f, d, p))
        CTR_INC(d->ctr, fault_corrupt);
    out[0] = p;
    if (!fault_chance(f, f->dup))
        return 1;
    out[1] = pkt_clone(p);
    if (!out[1]) {
        CTR_INC(d->ctr, pool_empty);
        return 1;
    }
    CTR_INC(d->ctr, fault_dup);
    return 2;
}

/* Reordering: a chosen frame is held back and follows the next one. */
static void fault_reorder_step(struct fault *f, struct dev *d, struct fault_dir *dir,
                               struct pkt *p, uint64_t now, struct pkt_queue *ready)
{
    if (dir->held) {
        pktq_push(ready, p);
        pktq_push(ready, dir->held);
        dir->held = NULL;
    } else if (fault_chance(f, f->reorder)) {
        dir->held = p;
        dir->held_until = now + f->hold_ns;
        CTR_INC(d->ctr, fault_reorder);
    } else {
        pktq_push(ready, p);
    }
}

static void fault_enqueue(struct fault *f, struct dev *d, struct fault_dir *dir,
                          struct pkt *p, uint64_t now, struct pkt_queue *ready)
{
    if (!f->delay_ns) {
        fault_reorder_step(f, d, dir, p, now, ready);
        return;
    }
    if (dir->delayq.len >= f->qlen) {
        CTR_INC(d->ctr, fault_drop);
        pkt_free(p);
        return;
    }
    /* A constant delay over a monotonic clock keeps the FIFO sorted. */
    p->stamp = now + f->delay_ns;
    if (dir->delayq.tail && dir->delayq.tail->stamp > p->stamp)
        p->stamp = dir->delayq.tail->stamp;
    pktq_push(&dir->delayq, p);
    CTR_INC(d->ctr, fault_delay);
}

/* Move whatever has waited long enough to `ready`. */
static void fault_advance(struct fault *f, struct dev *d, struct fault_dir *dir,
                          uint64_t now, struct pkt_queue *ready)
{
    while (dir->delayq.head && dir->delayq.head->stamp <= now)
        fault_reorder_step(f, d, dir, pktq_pop(&dir->delayq), now, ready);
    if (dir->held && now >= dir->held_until) {
        pktq_push(ready, dir->held);
        dir->held = NULL;
    }
}

static void fault_impair(struct fault *f, struct dev *d, struct fault_dir *dir,
                         struct pkt **pkts, uint16_t n, uint64_t now, struct pkt_queue *ready)
{
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *out[2];
        int m = fault_mangle(f, d, pkts[i], now, out);
        for (int j = 0; j < m; j++)
            fault_enqueue(f, d, dir, out[j], now, ready);
    }
}

static uint64_t fault_dir_deadline(const struct fault_dir *dir)
{
    uint64_t t = dir->delayq.head ? dir->delayq.head->stamp : UINT64_MAX;
    if (dir->held && dir->held_until < t)
        t = dir->held_until;
    return t;
}

static void fault_dir_free(struct fault_dir *dir)
{
    pktq_free_all(&dir->delayq);
    pktq_free_all(&dir->out);
    pkt_free(dir->held);
    dir->held = NULL;
}

/* ---- ops ---- */

static int fault_split_spec(const char *args, char *opts, size_t cap, const char **inner)
{
    const char *plus = strchr(args, '+');
    if (!plus || !plus[1]) {
        fprintf(stderr, "fault: spec is fault:OPTS+INNERKIND:INNERARGS\n");
        return -1;
    }
    if ((size_t)(plus - args) >= cap) {
        fprintf(stderr, "fault: options too long\n");
        return -1;
    }
    memcpy(opts, args, (size_t)(plus - args));
    opts[plus - args] = '\0';
    *inner = plus + 1;
    return 0;
}

static int fault_open(struct dev *d, const char *args)
{
    char opts[FAULT_SPEC_MAX];
    const char *inner_spec;
    if (fault_split_spec(args, opts, sizeof(opts), &inner_spec))
        return -1;
    struct fault *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->dirs = FAULT_DIR_RX | FAULT_DIR_TX;
    f->qlen = FAULT_QLEN_DEFAULT;
    f->hold_ns = FAULT_HOLD_NS_DEFAULT;
    f->rng = 1;
    if (dev_args_each(opts, ',', fault_opt, f) || dev_open(&f->inner, inner_spec, d->ctr)) {
        free(f);
        return -1;
    }
    d->priv = f;
    d->mtu = f->inner.mtu;
    d->flags = f->inner.flags;
    memcpy(d->mac, f->inner.mac, sizeof(d->mac));
    return 0;
}

static void *fault_pool_mem(struct dev *d, size_t bytes)
{
    struct fault *f = d->priv;
    return f->inner.ops->pool_mem ? f->inner.ops->pool_mem(&f->inner, bytes) : NULL;
}

static int fault_start(struct dev *d)
{
    struct fault *f = d->priv;
    f->inner.pool = d->pool;
    f->inner.queue = d->queue;
    return f->inner.ops->start ? f->inner.ops->start(&f->inner) : 0;
}

static uint16_t fault_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct fault *f = d->priv;
    if (!(f->dirs & FAULT_DIR_RX))
        return f->inner.ops->rx_burst(&f->inner, pkts, max, now);
    fault_clock(f, now);
    fault_advance(f, d, &f->rx, now, &f->rx.out);
    if (f->rx.out.len < max) {
        struct pkt *in[FAULT_BURST];
        uint32_t want = max - f->rx.out.len;
        uint16_t got = f->inner.ops->rx_burst(&f->inner, in,
                                              (uint16_t)(want < FAULT_BURST ? want : FAULT_BURST), now);
        fault_impair(f, d, &f->rx, in, got, now, &f->rx.out);
    }
    uint16_t n = 0;
    while (n < max && f->rx.out.head)
        pkts[n++] = pktq_pop(&f->rx.out);
    return n;
}

/* Hand everything in `ready` to the inner device, a burst at a time. */
static uint32_t fault_send_ready(struct fault *f, struct pkt_queue *ready, uint64_t now)
{
    uint32_t sent = 0;
    while (ready->head) {
        struct pkt *burst[FAULT_BURST];
        uint16_t k = 0;
        while (k < FAULT_BURST && ready->head)
            burst[k++] = pktq_pop(ready);
        sent += f->inner.ops->tx_burst(&f->inner, burst, k, now);
    }
    return sent;
}

static uint16_t fault_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    struct fault *f = d->priv;
    if (!(f->dirs & FAULT_DIR_TX))
        return f->inner.ops->tx_burst(&f->inner, pkts, n, now);
    fault_clock(f, now);
    struct pkt_queue ready = { 0 };
    fault_advance(f, d, &f->tx, now, &ready);
    fault_impair(f, d, &f->tx, pkts, n, now, &ready);
    uint32_t sent = fault_send_ready(f, &ready, now);
    return (uint16_t)(sent < n ? sent : n);
}

static uint64_t fault_service(struct dev *d, uint64_t now)
{
    struct fault *f = d->priv;
    fault_clock(f, now);
    if (f->dirs & FAULT_DIR_TX) {
        struct pkt_queue ready = { 0 };
        fault_advance(f, d, &f->tx, now, &ready);
        fault_send_ready(f, &ready, now);
    }
    uint64_t next = f->inner.ops->service ? f->inner.ops->service(&f->inner, now) : UINT64_MAX;
    d->flags = f->inner.flags;
    uint64_t t = fault_dir_deadline(&f->tx);
    if (t < next)
        next = t;
    t = fault_dir_deadline(&f->rx);
    if (t < next)
        next = t;
    if (f->rx.out.head)
        next = now;
    return next;
}

static int fault_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct fault *f = d->priv;
    return f->inner.ops->poll_fds ? f->inner.ops->poll_fds(&f->inner, fds, max) : 0;
}

static void fault_close(struct dev *d)
{
    struct fault *f = d->priv;
    if (!f)
        return;
    fault_dir_free(&f->rx);
    fault_dir_free(&f->tx);
    dev_close(&f->inner);
    free(f);
    d->priv = NULL;
}

const struct dev_ops dev_fault_ops = {
    .kind = "fault",
    .open = fault_open,
    .pool_mem = fault_pool_mem,
    .start = fault_start,
    .rx_burst = fault_rx_burst,
    .tx_burst = fault_tx_burst,
    .service = fault_service,
    .poll_fds = fault_poll_fds,
    .close = fault_close,
};
