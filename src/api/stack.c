/* The stack's life cycle and its run-to-completion loop. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/forward.h"
#include "api/statexport.h"
#include "api/workers.h"
#include "ustack/coro.h"
#include "net/link.h"
#include "net/stack.h"
#include "wire/eth.h"

#define BIG_ROOM (PKT_HEADROOM + 65536)
#define WAIT_MAX_NS (1000000000ULL)     /* wake at least once a second */
#define DEV_SERVICE_MAX_NS (50000000ULL) /* control plane checked 20 times a second */

uint64_t ust_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void stack_flush(struct ust_stack *s)
{
    if (!s->txq_len)
        return;
    if (pcap_enabled(&s->pcap)) {
        for (uint16_t i = 0; i < s->txq_len; i++)
            if (pcap_write(&s->pcap, pkt_data(s->txq[i]), s->txq[i]->len, s->now) < 0)
                CTR_INC(&s->ctr, pcap_errors);
    }
    /* Backends count dev_tx/dev_rx themselves: only they know what left. */
    s->dev.ops->tx_burst(&s->dev, s->txq, s->txq_len, s->now);
    s->txq_len = 0;
    s->did_work = 1;
}

/* Frames go out in bursts of STACK_TX_EARLY while a loop turn is still
 * producing: on a shared-memory wire the peer's core starts on the first
 * ones instead of waiting for the whole turn (the two sides overlap rather
 * than take turns). */
void stack_xmit(struct ust_stack *s, struct pkt *p)
{
    p->flags |= PKT_F_OUTGOING;
    s->txq[s->txq_len++] = p;
    if (s->txq_len >= STACK_TX_EARLY)
        stack_flush(s);
}

static void stack_pick_mac(struct ust_stack *s)
{
    if (s->cfg.has_mac) {
        memcpy(s->mac, s->cfg.mac, 6);
    } else if (s->dev.flags & DEV_F_HAS_MAC) {
        memcpy(s->mac, s->dev.mac, 6);
    } else {
        /* A random unicast, locally administered address (IEEE 802 U/L bit). */
        rand_bytes(s->mac, 6);
        s->mac[0] = (uint8_t)((s->mac[0] & 0xfe) | 0x02);
    }
}

static int stack_make_pools(struct ust_stack *s)
{
    uint32_t room = PKT_ROOM_DEFAULT;
    if (s->ip.mtu + 14 + PKT_HEADROOM > room)
        room = s->ip.mtu + 14 + PKT_HEADROOM;
    size_t bytes = (size_t)s->cfg.pkts * room;
    void *mem = s->dev.ops->pool_mem ? s->dev.ops->pool_mem(&s->dev, bytes) : NULL;
    if (pkt_pool_init(&s->pool, s->cfg.pkts, room, mem) < 0)
        return -1;
    if (pkt_pool_init(&s->big_pool, s->cfg.big_pkts, BIG_ROOM, NULL) < 0)
        return -1;
    s->dev.pool = &s->pool;
    return 0;
}

static int stack_open_dev(struct ust_stack *s)
{
    if (!s->cfg.dev[0]) {
        fprintf(stderr, "ustack: no device: give --dev KIND:ARGS (or USTACK_DEV)\n");
        return -1;
    }
    if (dev_open(&s->dev, s->cfg.dev, &s->ctr) < 0)
        return -1;
    s->l3_only = (s->dev.flags & DEV_F_L3) != 0;
    s->ip.mtu = s->cfg.mtu ? s->cfg.mtu : s->dev.mtu ? s->dev.mtu : 1500;
    return 0;
}

/* A backend that steers in the kernel (afxdp) learns our addresses. */
static int stack_tell_dev_addrs(struct ust_stack *s)
{
    uint32_t a[IP_MAX_ADDRS];
    if (!s->dev.ops->addrs_set)
        return 0;
    for (int i = 0; i < s->ip.naddrs; i++)
        a[i] = s->ip.addrs[i].addr;
    return s->dev.ops->addrs_set(&s->dev, a, s->ip.naddrs);
}

static int stack_init_tables(struct ust_stack *s)
{
    if (arp_init(s, s->cfg.arp_entries, s->cfg.arp_pending) < 0)
        return -1;
    if (ipfrag_init(&s->frag, s->cfg.frag_sets, s->cfg.frag_frags,
                    (uint64_t)s->cfg.frag_timeout_ms * 1000000ULL, &s->big_pool, &s->wheel, &s->ctr) < 0)
        return -1;
    for (int i = 0; i < s->cfg.nneigh; i++)
        if (arp_add_static(s, s->cfg.neigh[i].ip, s->cfg.neigh[i].mac) < 0)
            return -1;
    icmp_init(s, s->cfg.icmp_rate);
    udp_init(s);
    return tcp_init(s);
}

static void stack_service_dev(struct ust_stack *s)
{
    if (s->dev.ops->service && s->now >= s->dev_next) {
        s->dev_next = s->dev.ops->service(&s->dev, s->now);
        /* The control plane also reacts to its sockets (a memif peer
         * connecting): look at it at least this often even when busy polling. */
        if (s->dev_next > s->now + DEV_SERVICE_MAX_NS)
            s->dev_next = s->now + DEV_SERVICE_MAX_NS;
    }
    /* Announce ourselves whenever the link comes up (a memif or memlink peer
     * may connect long after we started). */
    uint8_t up = (s->dev.flags & DEV_F_LINK_UP) != 0;
    if (up && !s->link_up)
        arp_announce(s);
    s->link_up = up;
}

struct ust_stack *ust_stack_create(const struct ust_config *cfg)
{
    if (cfg->workers != 1) {
        fprintf(stderr, "ustack: --workers %u: start workers with ust_workers_run\n", cfg->workers);
        return NULL;
    }
    return stack_create_worker(cfg, NULL);
}

struct ust_stack *stack_create_worker(const struct ust_config *cfg, struct wk_node *wk)
{
    struct ust_stack *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *cfg;
    s->wk = wk;
    s->now = ust_now_ns();
    rand_bytes(&s->key, sizeof(s->key));
    rand_bytes(&s->fast_key, sizeof(s->fast_key));
    rand_bytes(&s->rng, sizeof(s->rng));
    s->rng |= 1;
    wheel_init(&s->wheel, s->now);
    ipv4_iface_init(s);
    if (stack_open_dev(s) < 0) {
        free(s);
        return NULL;
    }
    stack_pick_mac(s);
    if (stack_make_pools(s) < 0 || s->dev.ops->start(&s->dev) < 0 ||
        stack_tell_dev_addrs(s) < 0 || stack_init_tables(s) < 0) {
        ust_stack_destroy(s);
        return NULL;
    }
    if (cfg->pcap[0] &&
        pcap_open(&s->pcap, cfg->pcap, s->l3_only ? PCAP_LINKTYPE_RAW : PCAP_LINKTYPE_ETHERNET, s->now) < 0) {
        fprintf(stderr, "ustack: cannot write %s: %s\n", cfg->pcap, strerror(errno));
        ust_stack_destroy(s);
        return NULL;
    }
    statexport_open(s);   /* optional: without shared memory only ust-stat is lost */
    stack_service_dev(s);
    stack_flush(s);
    return s;
}

void ust_stack_destroy(struct ust_stack *s)
{
    if (!s)
        return;
    ust_coro_shutdown(s);   /* no-op when no coroutine ever ran here */
    statexport_close(s);
    stack_flush(s);
    tcp_fini(s);
    udp_fini(s);
    ipfrag_fini(&s->frag);
    arp_fini(s);
    if (s->dev.ops)
        dev_close(&s->dev);
    pcap_close(&s->pcap);
    pkt_pool_fini(&s->big_pool);
    pkt_pool_fini(&s->pool);
    free(s);
}

static void stack_receive(struct ust_stack *s)
{
    struct pkt *burst[STACK_BURST];
    uint16_t n = s->dev.ops->rx_burst(&s->dev, burst, STACK_BURST, s->now);
    if (!n)
        return;
    s->did_work = 1;
    for (uint16_t i = 0; i < n && i < STACK_PREFETCH; i++)
        pkt_prefetch(burst[i]);
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = burst[i];
        if (i + STACK_PREFETCH < n)
            pkt_prefetch(burst[i + STACK_PREFETCH]);
        if (pcap_enabled(&s->pcap) && pcap_write(&s->pcap, pkt_data(p), p->len, s->now) < 0)
            CTR_INC(&s->ctr, pcap_errors);
        if (s->wk && workers_steer_frame(s, p))
            continue;   /* another worker owns it */
        link_input(s, p);
    }
}

uint64_t ust_stack_poll(struct ust_stack *s, uint64_t now_ns)
{
    s->now = now_ns;
    s->did_work = 0;
    stack_service_dev(s);
    stack_receive(s);
    if (s->wk)
        workers_poll(s);
    uint64_t next = wheel_run(&s->wheel, now_ns);
    tcp_deliver_events(s);
    /* Calls other threads forwarded to this stack (src/api/forward.h). */
    uint64_t fwd = sockfwd_stack_serve(s);
    stack_flush(s);
    statexport_publish(s, now_ns);
    if (s->did_work && (s->dev.flags & DEV_F_SERVICE_ON_WORK))
        s->dev_next = now_ns;
    /* Callbacks run after wheel_run may have armed earlier timers. */
    uint64_t wheel_next = wheel_next_deadline(&s->wheel);
    if (wheel_next < next)
        next = wheel_next;
    if (s->dev.ops->service && s->dev_next < next)
        next = s->dev_next;
    return fwd < next ? fwd : next;
}

void ust_stack_wait(struct ust_stack *s, uint64_t deadline_ns)
{
    if (s->did_work || s->cfg.busy_poll)
        return;
    uint64_t now = ust_now_ns();
    if (deadline_ns <= now)
        return;
    /* Only now: poll_fds means "about to sleep" (memif unmasks its
     * interrupts and re-checks its rings there). */
    struct pollfd fds[8];
    int n = s->dev.ops->poll_fds ? s->dev.ops->poll_fds(&s->dev, fds, 8) : 0;
    if (s->wk)
        n += workers_poll_fds(s, fds + n, 8 - n);
    n += sockfwd_poll_fds(s, fds + n, 8 - n);
    uint64_t wait = deadline_ns - now;
    if (wait > WAIT_MAX_NS)
        wait = WAIT_MAX_NS;
    /* Round up so we never wake just before the deadline and spin. */
    int ms = (int)((wait + 999999) / 1000000);
    if (n > 0) {
        /* Whatever woke us may be control traffic: service the device next. */
        if (poll(fds, (nfds_t)n, ms) > 0)
            s->dev_next = 0;
        if (s->wk)
            workers_woken(s);
    }
    else {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};   /* backend without fds */
        nanosleep(&ts, NULL);
    }
}

void ust_stack_run(struct ust_stack *s, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        uint64_t next = ust_stack_poll(s, ust_now_ns());
        ust_stack_wait(s, next);
    }
}

void ust_stack_print_stats(const struct ust_stack *s, FILE *out) { counters_print(&s->ctr, out, 0); }

int ust_stack_counter(const struct ust_stack *s, const char *name, uint64_t *value)
{
    return counters_get(&s->ctr, name, value);
}

int ust_stack_stats_wanted(const struct ust_stack *s) { return s->cfg.stats; }

int ust_stack_link_up(const struct ust_stack *s) { return (s->dev.flags & DEV_F_LINK_UP) != 0; }
