/* Several workers: threads, one stack each, and the packet handoff between
 * them (docs/WORKERS.md).
 *
 * Handoff: worker A gives worker B a packet by pushing the pointer on ring
 * fwd[A][B]. B copies it into a buffer of its own pool, processes the copy
 * and pushes the original back on ret[A][B]; A frees it. So every pool is
 * only ever touched by its own thread, and each ring has exactly one
 * producer and one consumer. A bounds the packets it has in flight to B by
 * the ring size, so ret[A][B] can never be full. */
#include "api/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/spsc.h"
#include "net/ipv4.h"
#include "net/link.h"
#include "net/stack.h"
#include "net/steer.h"
#include "ustack/workers.h"

#define WK_MAX 64
#define WK_RING 1024              /* packets in flight from one worker to another */
#define WK_DRAIN_MAX 256          /* handoffs taken per ring per poll              */
#define WK_STOP_CHECK_NS 20000000 /* the main thread looks at *stop this often     */

enum wk_kind { WK_FRAME = 1, WK_DATAGRAM = 2 };

struct wk_group;

struct wk_node {
    struct wk_group *g;
    uint32_t index;
    struct ust_stack *s;
    pthread_t thread;
    struct spsc_bell bell;
    uint32_t inflight[WK_MAX];    /* ours, not yet returned, per destination      */
    uint8_t ring_due[WK_MAX];     /* pushed to this worker since its bell rang    */
};

struct wk_group {
    uint32_t n;
    struct ust_config cfg;
    ust_worker_setup_fn setup;
    ust_worker_loop_fn loop;      /* NULL: the built-in poll loop                 */
    ust_worker_fini_fn fini;
    void *arg;
    volatile sig_atomic_t *user_stop;
    _Atomic int stop;
    _Atomic int failed;
    pthread_mutex_t turn_lock;    /* start-up only: stacks are made in order    */
    pthread_cond_t turn_cond;
    uint32_t turn;
    pthread_barrier_t started, stopped, drained;
    struct spsc *fwd;             /* fwd[from * n + to]                           */
    struct spsc *ret;             /* ret[from * n + to]: `to` gives back to `from` */
    struct wk_node nodes[WK_MAX];
};

static struct spsc *wk_fwd(struct wk_group *g, uint32_t from, uint32_t to) { return &g->fwd[from * g->n + to]; }
static struct spsc *wk_ret(struct wk_group *g, uint32_t from, uint32_t to) { return &g->ret[from * g->n + to]; }

/* ---- handing packets over ----------------------------------------------- */

static void wk_handoff(struct ust_stack *s, struct pkt *p, uint32_t to, enum wk_kind kind)
{
    struct wk_node *me = s->wk;
    /* aux is ours to set: the taker reads it (after the ring's acquire) to
     * know where the packet enters its stack. */
    p->aux = kind;
    if (me->inflight[to] >= WK_RING || spsc_push(wk_fwd(me->g, me->index, to), p) < 0) {
        CTR_INC(&s->ctr, steer_drop);
        pkt_free(p);
        return;
    }
    me->inflight[to]++;
    me->ring_due[to] = 1;
    CTR_INC(&s->ctr, steer_tx);
}

static void wk_copy_arp(struct ust_stack *s, const struct pkt *p)
{
    struct wk_node *me = s->wk;
    for (uint32_t j = 0; j < me->g->n; j++) {
        if (j == me->index)
            continue;
        struct pkt *c = pkt_clone(p);
        if (!c) {
            CTR_INC(&s->ctr, steer_drop);
            continue;
        }
        CTR_INC(&s->ctr, steer_arp_copies);
        wk_handoff(s, c, j, WK_FRAME);
    }
}

int workers_steer_frame(struct ust_stack *s, struct pkt *p)
{
    struct wk_node *me = s->wk;
    int owner = steer_frame_owner(pkt_data(p), p->len, s->l3_only, me->g->n);
    if (owner == STEER_ALL) {
        wk_copy_arp(s, p);   /* every worker keeps its own ARP cache */
        return 0;
    }
    if (owner < 0 || (uint32_t)owner == me->index)
        return 0;
    wk_handoff(s, p, (uint32_t)owner, WK_FRAME);
    return 1;
}

int workers_steer_datagram(struct ust_stack *s, struct pkt *p)
{
    struct wk_node *me = s->wk;
    int owner = steer_ipv4_owner(pkt_data(p), p->len, me->g->n);
    if (owner < 0 || (uint32_t)owner == me->index)
        return 0;
    wk_handoff(s, p, (uint32_t)owner, WK_DATAGRAM);
    return 1;
}

int workers_port_is_mine(const struct ust_stack *s, const struct tcp_tuple *t)
{
    const struct wk_node *me = s->wk;
    uint32_t h = steer_hash(addr_v4(&t->laddr), addr_v4(&t->raddr), t->lport, t->rport);
    return steer_pick(h, me->g->n) == me->index;
}

/* ---- taking packets over ------------------------------------------------ */

/* Our own copy: the original belongs to the other worker's pool. */
static struct pkt *wk_copy_in(struct ust_stack *s, const struct pkt *src)
{
    struct pkt_pool *pool = (uint32_t)src->len + PKT_HEADROOM <= s->pool.room ? &s->pool : &s->big_pool;
    if ((uint32_t)src->len + PKT_HEADROOM > pool->room)
        return NULL;
    struct pkt *p = pkt_alloc(pool);
    if (!p)
        return NULL;
    memcpy(pkt_data(p), pkt_data(src), src->len);
    p->len = src->len;
    p->flags = src->flags & PKT_F_CSUM_PARTIAL;
    p->stamp = src->stamp;
    return p;
}

static void wk_take(struct ust_stack *s, struct pkt *src)
{
    enum wk_kind kind = (enum wk_kind)src->aux;
    struct pkt *p = wk_copy_in(s, src);
    if (!p) {
        CTR_INC(&s->ctr, steer_drop);
        return;
    }
    CTR_INC(&s->ctr, steer_rx);
    if (kind == WK_DATAGRAM) {
        p->l3 = p->off;
        ipv4_input(s, p);
    } else {
        link_input(s, p);
    }
}

static int wk_drain_from(struct ust_stack *s, uint32_t from)
{
    struct wk_node *me = s->wk;
    struct spsc *in = wk_fwd(me->g, from, me->index), *back = wk_ret(me->g, from, me->index);
    int n = 0;
    struct pkt *p;
    while (n < WK_DRAIN_MAX && (p = spsc_pop(in))) {
        wk_take(s, p);
        /* Cannot fail: `from` never has more in flight than the ring holds. */
        (void)spsc_push(back, p);
        n++;
    }
    if (n)
        me->ring_due[from] = 1;   /* it may be waiting for buffers */
    return n;
}

static int wk_reclaim_from(struct ust_stack *s, uint32_t to)
{
    struct wk_node *me = s->wk;
    struct spsc *back = wk_ret(me->g, me->index, to);
    int n = 0;
    struct pkt *p;
    while ((p = spsc_pop(back))) {
        me->inflight[to]--;
        pkt_free(p);
        n++;
    }
    return n;
}

static void wk_ring_due(struct wk_node *me)
{
    for (uint32_t j = 0; j < me->g->n; j++) {
        if (me->ring_due[j]) {
            me->ring_due[j] = 0;
            spsc_bell_ring(&me->g->nodes[j].bell);
        }
    }
}

void workers_poll(struct ust_stack *s)
{
    struct wk_node *me = s->wk;
    int moved = 0;
    for (uint32_t j = 0; j < me->g->n; j++) {
        if (j == me->index)
            continue;
        moved += wk_drain_from(s, j);
        moved += wk_reclaim_from(s, j);
    }
    if (moved)
        s->did_work = 1;
    wk_ring_due(me);
}

int workers_poll_fds(struct ust_stack *s, struct pollfd *fds, int max)
{
    if (max < 1)
        return 0;
    fds[0] = (struct pollfd){.fd = s->wk->bell.fd, .events = POLLIN};
    return 1;
}

void workers_woken(struct ust_stack *s) { spsc_bell_clear(&s->wk->bell); }

/* ---- public queries ----------------------------------------------------- */

unsigned ust_config_workers(const struct ust_config *cfg) { return cfg->workers; }

int ust_stack_worker(const struct ust_stack *s) { return s->wk ? (int)s->wk->index : 0; }

int ust_stack_workers(const struct ust_stack *s) { return s->wk ? (int)s->wk->g->n : 1; }

void ust_worker_print_stats(const struct ust_stack *s, FILE *out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem)
        return;
    ust_stack_print_stats(s, mem);
    fclose(mem);
    int w = ust_stack_worker(s);
    for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        fprintf(out, "w%d %.*s\n", w, nl ? (int)(nl - line) : (int)strlen(line), line);
    }
    free(buf);
}

/* ---- threads ------------------------------------------------------------ */

/* One worker's copy of the configuration: its device spec names its queue,
 * so the backend opens that queue (afpacket: joins the fanout group as
 * member `queue`; memif: serves ring pair `queue`). */
static int wk_config(const struct wk_group *g, uint32_t i, struct ust_config *cfg)
{
    *cfg = g->cfg;
    if (g->n == 1)
        return 0;
    size_t used = strlen(cfg->dev);
    int w = snprintf(cfg->dev + used, sizeof(cfg->dev) - used, ",queue=%u,queues=%u", i, g->n);
    if (w < 0 || (size_t)w >= sizeof(cfg->dev) - used) {
        fprintf(stderr, "ustack: device spec too long for --workers\n");
        return -1;
    }
    /* One capture file per worker: they write at the same time. */
    used = strlen(cfg->pcap);
    if (used) {
        w = snprintf(cfg->pcap + used, sizeof(cfg->pcap) - used, ".w%u", i);
        if (w < 0 || (size_t)w >= sizeof(cfg->pcap) - used) {
            fprintf(stderr, "ustack: --pcap name too long for --workers\n");
            return -1;
        }
    }
    return 0;
}

/* Stacks are made one after the other in worker order: an AF_PACKET fanout
 * group numbers its members in the order they join. */
static void wk_create_in_turn(struct wk_node *me)
{
    struct wk_group *g = me->g;
    pthread_mutex_lock(&g->turn_lock);
    while (g->turn != me->index)
        pthread_cond_wait(&g->turn_cond, &g->turn_lock);
    pthread_mutex_unlock(&g->turn_lock);
    struct ust_config cfg;
    if (!atomic_load(&g->failed) && wk_config(g, me->index, &cfg) == 0)
        me->s = stack_create_worker(&cfg, g->n > 1 ? me : NULL);
    if (me->s && g->setup && g->setup(me->s, (int)me->index, g->arg) != 0) {
        fprintf(stderr, "ustack: worker %u: setup failed\n", me->index);
        ust_stack_destroy(me->s);
        me->s = NULL;
    }
    if (!me->s)
        atomic_store(&g->failed, 1);
    pthread_mutex_lock(&g->turn_lock);
    g->turn++;
    pthread_cond_broadcast(&g->turn_cond);
    pthread_mutex_unlock(&g->turn_lock);
}

static void wk_loop(struct wk_node *me)
{
    struct ust_stack *s = me->s;
    if (me->g->loop) {
        me->g->loop(s, (int)me->index, me->g->arg, me->g->user_stop);
        return;
    }
    while (!atomic_load_explicit(&me->g->stop, memory_order_relaxed)) {
        uint64_t next = ust_stack_poll(s, ust_now_ns());
        ust_stack_wait(s, next);
    }
}

/* Give back what others handed us without processing it, then (after
 * everyone did) free what came back: no buffer of ours stays in a ring once
 * our pools go away. */
static void wk_teardown(struct wk_node *me)
{
    struct wk_group *g = me->g;
    if (g->n > 1 && me->s) {
        for (uint32_t j = 0; j < g->n; j++) {
            struct pkt *p;
            while (j != me->index && (p = spsc_pop(wk_fwd(g, j, me->index))))
                (void)spsc_push(wk_ret(g, j, me->index), p);
        }
    }
    pthread_barrier_wait(&g->drained);
    if (g->n > 1 && me->s)
        for (uint32_t j = 0; j < g->n; j++)
            if (j != me->index)
                wk_reclaim_from(me->s, j);
    if (me->s && g->fini)
        g->fini(me->s, (int)me->index, g->arg);
    ust_stack_destroy(me->s);
    me->s = NULL;
}

static void *wk_main(void *arg)
{
    struct wk_node *me = arg;
    struct wk_group *g = me->g;
    wk_create_in_turn(me);
    pthread_barrier_wait(&g->started);
    if (!atomic_load(&g->failed))
        wk_loop(me);
    pthread_barrier_wait(&g->stopped);
    wk_teardown(me);
    return NULL;
}

/* ---- the group ---------------------------------------------------------- */

static void wk_group_free(struct wk_group *g)
{
    uint32_t rings = g->n * g->n;
    for (uint32_t i = 0; g->fwd && i < rings; i++)
        spsc_fini(&g->fwd[i]);
    for (uint32_t i = 0; g->ret && i < rings; i++)
        spsc_fini(&g->ret[i]);
    free(g->fwd);
    free(g->ret);
    for (uint32_t i = 0; i < g->n; i++)
        spsc_bell_fini(&g->nodes[i].bell);
    pthread_barrier_destroy(&g->started);
    pthread_barrier_destroy(&g->stopped);
    pthread_barrier_destroy(&g->drained);
    pthread_cond_destroy(&g->turn_cond);
    pthread_mutex_destroy(&g->turn_lock);
    free(g);
}

static int wk_group_rings(struct wk_group *g)
{
    uint32_t rings = g->n * g->n;
    g->fwd = calloc(rings, sizeof(*g->fwd));
    g->ret = calloc(rings, sizeof(*g->ret));
    if (!g->fwd || !g->ret)
        return -1;
    for (uint32_t i = 0; i < rings; i++)
        if (spsc_init(&g->fwd[i], WK_RING) < 0 || spsc_init(&g->ret[i], WK_RING) < 0)
            return -1;
    for (uint32_t i = 0; i < g->n; i++)
        if (spsc_bell_init(&g->nodes[i].bell) < 0)
            return -1;
    return 0;
}

static struct wk_group *wk_group_new(const struct ust_config *cfg)
{
    struct wk_group *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->n = cfg->workers;
    g->cfg = *cfg;
    for (uint32_t i = 0; i < g->n; i++)
        g->nodes[i] = (struct wk_node){.g = g, .index = i, .bell = {.fd = -1}};
    pthread_mutex_init(&g->turn_lock, NULL);
    pthread_cond_init(&g->turn_cond, NULL);
    pthread_barrier_init(&g->started, NULL, g->n);
    pthread_barrier_init(&g->stopped, NULL, g->n);
    pthread_barrier_init(&g->drained, NULL, g->n);
    if (wk_group_rings(g) < 0) {
        fprintf(stderr, "ustack: workers: %s\n", strerror(errno));
        wk_group_free(g);
        return NULL;
    }
    return g;
}

/* Wait for the signal, then wake every worker so it sees the stop at once
 * rather than at its next deadline. */
static void wk_wait_stop(struct wk_group *g, volatile sig_atomic_t *stop)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = WK_STOP_CHECK_NS};
    while (!*stop && !atomic_load(&g->failed))
        nanosleep(&ts, NULL);
    atomic_store(&g->stop, 1);
    for (uint32_t i = 0; i < g->n; i++)
        spsc_bell_ring(&g->nodes[i].bell);
}

int ust_workers_run(const struct ust_config *cfg, ust_worker_setup_fn setup, ust_worker_fini_fn fini, void *arg,
                    volatile sig_atomic_t *stop)
{
    return ust_workers_run_loop(cfg, setup, NULL, fini, arg, stop);
}

int ust_workers_run_loop(const struct ust_config *cfg, ust_worker_setup_fn setup, ust_worker_loop_fn loop,
                         ust_worker_fini_fn fini, void *arg, volatile sig_atomic_t *stop)
{
    if (cfg->workers < 1 || cfg->workers > WK_MAX) {
        fprintf(stderr, "ustack: --workers must be 1..%d\n", WK_MAX);
        return -1;
    }
    struct wk_group *g = wk_group_new(cfg);
    if (!g)
        return -1;
    g->setup = setup;
    g->loop = loop;
    g->fini = fini;
    g->arg = arg;
    g->user_stop = stop;
    uint32_t started = 0;
    for (; started < g->n; started++)
        if (pthread_create(&g->nodes[started].thread, NULL, wk_main, &g->nodes[started]) != 0)
            break;
    if (started < g->n) {
        /* The barriers count n threads: without all of them nobody could
         * pass. Not recoverable cleanly; say so and give up. */
        fprintf(stderr, "ustack: workers: cannot start thread %u\n", started);
        abort();
    }
    wk_wait_stop(g, stop);
    for (uint32_t i = 0; i < g->n; i++)
        pthread_join(g->nodes[i].thread, NULL);
    int rc = atomic_load(&g->failed) ? -1 : 0;
    wk_group_free(g);
    return rc;
}
