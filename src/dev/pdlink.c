/* The harness link: see pdlink.h.
 *
 * Each direction is a ring of PDLINK_QLEN fixed slots of mtu bytes, so no
 * memory is allocated after pdlink_create. Packets are copied in and out:
 * the harness never holds a buffer of the stack's pool, and the pool never
 * sees the harness's threads. */
#include "dev/pdlink.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define PDLINK_NAME_MAX 32
#define PDLINK_MAX_LINKS 8

struct pdlink_ring {
    uint8_t *data;              /* PDLINK_QLEN slots of mtu bytes           */
    uint32_t len[PDLINK_QLEN];
    uint64_t stamp[PDLINK_QLEN];
    uint32_t head, count;
};

struct pdlink {
    char name[PDLINK_NAME_MAX];
    uint32_t mtu;
    pthread_mutex_t mu;         /* guards everything below                  */
    pthread_cond_t sent;        /* the stack sent a packet, or cancelled    */
    struct pdlink_ring to_stack, from_stack;
    struct dev *dev;            /* the stack's device, NULL while closed    */
    int rx_fd;                  /* eventfd: readable while to_stack is non-empty */
    int cancelled;
};

/* The registry only maps names to links for dev_open. */
static pthread_mutex_t pdlink_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pdlink *pdlink_reg[PDLINK_MAX_LINKS];

static uint8_t *ring_slot(struct pdlink_ring *r, uint32_t mtu, uint32_t i)
{
    return r->data + (size_t)((r->head + i) % PDLINK_QLEN) * mtu;
}

static int ring_push(struct pdlink_ring *r, uint32_t mtu, const void *buf, uint32_t len, uint64_t stamp)
{
    if (r->count == PDLINK_QLEN || len > mtu)
        return -1;
    uint32_t at = (r->head + r->count) % PDLINK_QLEN;
    memcpy(ring_slot(r, mtu, r->count), buf, len);
    r->len[at] = len;
    r->stamp[at] = stamp;
    r->count++;
    return 0;
}

static void ring_drop_head(struct pdlink_ring *r)
{
    r->head = (r->head + 1) % PDLINK_QLEN;
    r->count--;
}

static int pdlink_register(struct pdlink *l)
{
    int slot = -1;
    pthread_mutex_lock(&pdlink_reg_mu);
    for (int i = 0; i < PDLINK_MAX_LINKS; i++) {
        if (pdlink_reg[i] && strcmp(pdlink_reg[i]->name, l->name) == 0) {
            pthread_mutex_unlock(&pdlink_reg_mu);
            errno = EEXIST;
            return -1;
        }
        if (!pdlink_reg[i] && slot < 0)
            slot = i;
    }
    if (slot >= 0)
        pdlink_reg[slot] = l;
    pthread_mutex_unlock(&pdlink_reg_mu);
    if (slot < 0)
        errno = ENFILE;
    return slot < 0 ? -1 : 0;
}

static struct pdlink *pdlink_find(const char *name)
{
    struct pdlink *found = NULL;
    pthread_mutex_lock(&pdlink_reg_mu);
    for (int i = 0; i < PDLINK_MAX_LINKS && !found; i++)
        if (pdlink_reg[i] && strcmp(pdlink_reg[i]->name, name) == 0)
            found = pdlink_reg[i];
    pthread_mutex_unlock(&pdlink_reg_mu);
    return found;
}

static void pdlink_unregister(struct pdlink *l)
{
    pthread_mutex_lock(&pdlink_reg_mu);
    for (int i = 0; i < PDLINK_MAX_LINKS; i++)
        if (pdlink_reg[i] == l)
            pdlink_reg[i] = NULL;
    pthread_mutex_unlock(&pdlink_reg_mu);
}

static int pdlink_init_sync(struct pdlink *l)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return -1;
    /* pdlink_take's deadline is on ust_now_ns's clock. */
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(&l->sent, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return -1;
    pthread_mutex_init(&l->mu, NULL);
    return 0;
}

static void pdlink_free_mem(struct pdlink *l)
{
    if (l->rx_fd >= 0)
        close(l->rx_fd);
    free(l->to_stack.data);
    free(l->from_stack.data);
    free(l);
}

struct pdlink *pdlink_create(const char *name, uint32_t mtu)
{
    if (!name || !*name || strlen(name) >= PDLINK_NAME_MAX || mtu < 68 || mtu > PDLINK_MTU_MAX) {
        errno = EINVAL;
        return NULL;
    }
    struct pdlink *l = calloc(1, sizeof(*l));
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    strcpy(l->name, name);
    l->mtu = mtu;
    l->rx_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->to_stack.data = malloc((size_t)PDLINK_QLEN * mtu);
    l->from_stack.data = malloc((size_t)PDLINK_QLEN * mtu);
    if (l->rx_fd < 0 || !l->to_stack.data || !l->from_stack.data || pdlink_init_sync(l) < 0) {
        pdlink_free_mem(l);
        errno = ENOMEM;
        return NULL;
    }
    if (pdlink_register(l) < 0) {
        int e = errno;
        pthread_cond_destroy(&l->sent);
        pthread_mutex_destroy(&l->mu);
        pdlink_free_mem(l);
        errno = e;
        return NULL;
    }
    return l;
}

void pdlink_cancel(struct pdlink *l)
{
    pthread_mutex_lock(&l->mu);
    l->cancelled = 1;
    pthread_cond_broadcast(&l->sent);
    pthread_mutex_unlock(&l->mu);
}

void pdlink_destroy(struct pdlink *l)
{
    if (!l)
        return;
    pdlink_cancel(l);
    pdlink_unregister(l);
    pthread_cond_destroy(&l->sent);
    pthread_mutex_destroy(&l->mu);
    pdlink_free_mem(l);
}

static void pdlink_signal_rx(struct pdlink *l)
{
    uint64_t one = 1;
    /* Only fails when the counter would overflow: it is readable anyway. */
    if (write(l->rx_fd, &one, sizeof(one)) < 0)
        return;
}

static void pdlink_drain_rx(struct pdlink *l)
{
    uint64_t v;
    if (read(l->rx_fd, &v, sizeof(v)) < 0)
        return;     /* EAGAIN: already drained */
}

int pdlink_inject(struct pdlink *l, const void *buf, size_t len)
{
    if (len == 0 || len > l->mtu) {
        errno = EMSGSIZE;
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    int rc = -1;
    if (!l->dev)
        errno = ENOTCONN;
    else if (ring_push(&l->to_stack, l->mtu, buf, (uint32_t)len, 0) < 0)
        errno = ENOBUFS;
    else
        rc = 0;
    /* Signalled under the lock so the stack's drain cannot swallow it. */
    if (rc == 0)
        pdlink_signal_rx(l);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int pdlink_wait_sent(struct pdlink *l, uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000ULL),
                          .tv_nsec = (long)(deadline_ns % 1000000000ULL)};
    while (!l->from_stack.count && !l->cancelled) {
        int rc = pthread_cond_timedwait(&l->sent, &l->mu, &ts);
        if (rc == ETIMEDOUT && !l->from_stack.count && !l->cancelled) {
            errno = EAGAIN;
            return -1;
        }
    }
    if (l->cancelled) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int pdlink_take(struct pdlink *l, void *buf, size_t cap, size_t *len, uint64_t *stamp_ns,
                uint64_t deadline_ns)
{
    pthread_mutex_lock(&l->mu);
    if (pdlink_wait_sent(l, deadline_ns) < 0) {
        pthread_mutex_unlock(&l->mu);
        *len = 0;
        return -1;
    }
    struct pdlink_ring *r = &l->from_stack;
    uint32_t n = r->len[r->head];
    if (n > cap)
        n = (uint32_t)cap;
    memcpy(buf, ring_slot(r, l->mtu, 0), n);
    *len = n;
    *stamp_ns = r->stamp[r->head];
    ring_drop_head(r);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int pdlink_rx_fd(const struct pdlink *l) { return l->rx_fd; }

uint32_t pdlink_tx_pending(struct pdlink *l)
{
    pthread_mutex_lock(&l->mu);
    uint32_t n = l->from_stack.count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* ---- the stack's side: the device ops ---- */

static int pdlink_open(struct dev *d, const char *args)
{
    struct pdlink *l = args ? pdlink_find(args) : NULL;
    if (!l) {
        fprintf(stderr, "pdlink: no link '%s' (pdlink:NAME is created by a test harness)\n",
                args ? args : "");
        return -1;
    }
    pthread_mutex_lock(&l->mu);
    int busy = l->dev != NULL;
    if (!busy)
        l->dev = d;
    pthread_mutex_unlock(&l->mu);
    if (busy) {
        fprintf(stderr, "pdlink: link '%s' is already open\n", args);
        return -1;
    }
    d->priv = l;
    d->mtu = l->mtu;
    d->flags |= DEV_F_L3 | DEV_F_LINK_UP;
    return 0;
}

static int pdlink_start(struct dev *d)
{
    (void)d;
    return 0;
}

/* Copy the oldest waiting packet into a buffer of the stack's pool; the
 * packet leaves the ring either way (dropped ones are counted). */
static struct pkt *pdlink_take_rx(struct dev *d, struct pdlink *l)
{
    struct pdlink_ring *r = &l->to_stack;
    uint32_t n = r->len[r->head];
    struct pkt *p = pkt_alloc(d->pool);
    if (!p) {
        CTR_INC(d->ctr, dev_rx_nobuf);
    } else if (n > p->room - PKT_HEADROOM) {
        CTR_INC(d->ctr, dev_rx_oversize);
        pkt_free(p);
        p = NULL;
    } else {
        memcpy(pkt_put(p, (uint16_t)n), ring_slot(r, l->mtu, 0), n);
        CTR_INC(d->ctr, dev_rx);
        CTR_ADD(d->ctr, dev_rx_bytes, n);
    }
    ring_drop_head(r);
    return p;
}

static uint16_t pdlink_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    struct pdlink *l = d->priv;
    uint16_t got = 0;
    if (!d->pool)
        return 0;
    pthread_mutex_lock(&l->mu);
    while (got < max && l->to_stack.count) {
        struct pkt *p = pdlink_take_rx(d, l);
        if (p) {
            p->stamp = now;
            pkts[got++] = p;
        }
    }
    if (!l->to_stack.count)
        pdlink_drain_rx(l);
    pthread_mutex_unlock(&l->mu);
    return got;
}

static uint16_t pdlink_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    struct pdlink *l = d->priv;
    uint16_t sent = 0;
    pthread_mutex_lock(&l->mu);
    for (uint16_t i = 0; i < n; i++) {
        if (ring_push(&l->from_stack, l->mtu, pkt_data(pkts[i]), pkts[i]->len, now) == 0) {
            sent++;
            CTR_INC(d->ctr, dev_tx);
            CTR_ADD(d->ctr, dev_tx_bytes, pkts[i]->len);
        } else {
            CTR_INC(d->ctr, dev_tx_drop);
        }
    }
    if (sent)
        pthread_cond_broadcast(&l->sent);
    pthread_mutex_unlock(&l->mu);
    for (uint16_t i = 0; i < n; i++)
        pkt_free(pkts[i]);
    return sent;
}

static int pdlink_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct pdlink *l = d->priv;
    if (max < 1)
        return 0;
    fds[0] = (struct pollfd){.fd = l->rx_fd, .events = POLLIN};
    return 1;
}

static void pdlink_close(struct dev *d)
{
    struct pdlink *l = d->priv;
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->dev = NULL;
    l->to_stack.head = l->to_stack.count = 0;
    pdlink_drain_rx(l);
    pthread_mutex_unlock(&l->mu);
    d->priv = NULL;
}

const struct dev_ops dev_pdlink_ops = {
    .kind = "pdlink",
    .open = pdlink_open,
    .start = pdlink_start,
    .rx_burst = pdlink_rx_burst,
    .tx_burst = pdlink_tx_burst,
    .poll_fds = pdlink_poll_fds,
    .close = pdlink_close,
};
