/* Connection tables: TCBs from a lazily touched array, an O(1) hash on the
 * 4-tuple, listeners by port, ephemeral ports (RFC 6056 algorithm 3). */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "api/workers.h"
#include "net/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_isn.h"

#define TCP_EPHEMERAL_LO 32768        /* Linux's default range */
#define TCP_EPHEMERAL_HI 60999

/* Per segment: the cheap keyed hash (core/hash.h), not SipHash; the key
 * still keeps remote senders from aiming tuples at one bucket. */
static struct tcb **tcb_bucket(struct ust_stack *s, const struct tcp_tuple *t)
{
    return &s->tcp.buckets[tuple_hash_keyed(&s->fast_key, t) & s->tcp.mask];
}

int tcp_tables_init(struct ust_stack *s, uint32_t max_conns)
{
    struct tcp_stack *ts = &s->tcp;
    size_t bytes = (size_t)max_conns * sizeof(struct tcb);
    /* Reserved, not committed: pages are touched only as connections appear. */
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    ts->tcbs = m;
    ts->max_conns = max_conns;
    uint32_t nb = 1024;
    while (nb < max_conns && nb < (1u << 26))
        nb <<= 1;
    void *b = mmap(NULL, (size_t)nb * sizeof(struct tcb *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (b == MAP_FAILED)
        return -1;
    ts->buckets = b;
    ts->mask = nb - 1;
    return 0;
}

void tcp_tables_fini(struct ust_stack *s)
{
    struct tcp_stack *ts = &s->tcp;
    if (ts->tcbs)
        munmap(ts->tcbs, (size_t)ts->max_conns * sizeof(struct tcb));
    if (ts->buckets)
        munmap(ts->buckets, (size_t)(ts->mask + 1) * sizeof(struct tcb *));
    ts->tcbs = NULL;
    ts->buckets = NULL;
}

struct tcb *tcb_alloc(struct ust_stack *s)
{
    struct tcp_stack *ts = &s->tcp;
    struct tcb *t = ts->free_list;
    if (t)
        ts->free_list = t->hnext;
    else if (ts->bump < ts->max_conns)
        t = &ts->tcbs[ts->bump++];
    else
        return NULL;
    memset(t, 0, sizeof(*t));
    ts->used++;
    return t;
}

void tcb_free(struct ust_stack *s, struct tcb *t)
{
    tcp_tune_release(t);
    t->state = TCP_CLOSED;
    t->hnext = s->tcp.free_list;
    s->tcp.free_list = t;
    s->tcp.used--;
}

struct tcb *tcb_lookup(struct ust_stack *s, const struct tcp_tuple *t)
{
    for (struct tcb *c = *tcb_bucket(s, t); c; c = c->hnext)
        if (tuple_eq(&c->tuple, t))
            return c;
    return NULL;
}

void tcb_hash_insert(struct ust_stack *s, struct tcb *t)
{
    struct tcb **b = tcb_bucket(s, &t->tuple);
    t->hnext = *b;
    *b = t;
}

void tcb_hash_remove(struct ust_stack *s, struct tcb *t)
{
    struct tcb **pp = tcb_bucket(s, &t->tuple);
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = t->hnext;
    t->hnext = NULL;
}

/* An exact local address beats the wildcard. */
struct tcb *tcb_lookup_listener(struct ust_stack *s, const union ip_addr *laddr, uint16_t lport)
{
    struct tcb *wild = NULL;
    for (struct tcb *l = s->tcp.listeners[lport & 1023]; l; l = l->hnext) {
        if (l->tuple.lport != lport)
            continue;
        if (addr_eq(&l->tuple.laddr, laddr))
            return l;
        if (addr_is_any(&l->tuple.laddr))
            wild = l;
    }
    return wild;
}

int tcb_listener_insert(struct ust_stack *s, struct tcb *t)
{
    for (struct tcb *l = s->tcp.listeners[t->tuple.lport & 1023]; l; l = l->hnext)
        if (l->tuple.lport == t->tuple.lport &&
            (addr_eq(&l->tuple.laddr, &t->tuple.laddr) || addr_is_any(&l->tuple.laddr) ||
             addr_is_any(&t->tuple.laddr)))
            return -EADDRINUSE;
    t->hnext = s->tcp.listeners[t->tuple.lport & 1023];
    s->tcp.listeners[t->tuple.lport & 1023] = t;
    return 0;
}

void tcb_listener_remove(struct ust_stack *s, struct tcb *t)
{
    struct tcb **pp = &s->tcp.listeners[t->tuple.lport & 1023];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = t->hnext;
    t->hnext = NULL;
}

int tcp_port_in_use(struct ust_stack *s, const union ip_addr *laddr, uint16_t lport)
{
    return tcb_lookup_listener(s, laddr, lport) != NULL;
}

/* RFC 6056 3.3.3: a hashed starting point per destination and a counter, so
 * ports are hard to guess yet connections to one server spread out. A port
 * is free for this destination when no connection or TIME-WAIT record holds
 * the exact 4-tuple and no listener owns it. */
/* TIME-WAIT held by our side of a tuple may be taken over by a new connect
 * when both incarnations use timestamps and the record is at least a second
 * old: PAWS then rejects old duplicates, as RFC 6191 argues for the
 * passive side (Linux's tcp_tw_reuse). The new ISS starts a window above
 * the old sequence space so the two cannot overlap. */
#define TW_REUSE_AGE_NS 1000000000ULL

static int tcp_tw_reusable(struct ust_stack *s, const struct tcp_tw *tw, uint32_t *iss_floor)
{
    uint64_t entered = tw->expires - s->tcp.tw.duration_ns;
    if (!tw->has_ts || s->now < entered + TW_REUSE_AGE_NS)
        return 0;
    *iss_floor = tw->snd_nxt + 65535 + 2;
    return 1;
}

int tcp_tuple_free(struct ust_stack *s, const struct tcp_tuple *t, uint32_t *iss_floor)
{
    *iss_floor = 0;
    if (tcb_lookup(s, t) || tcp_port_in_use(s, &t->laddr, t->lport))
        return 0;
    struct tcp_tw *tw = tw_lookup(&s->tcp.tw, t);
    if (!tw)
        return 1;
    if (!tcp_tw_reusable(s, tw, iss_floor))
        return 0;
    tw_remove(&s->tcp.tw, tw);
    CTR_INC(&s->ctr, tcp_tw_reuse);
    return 1;
}

int tcp_pick_port(struct ust_stack *s, struct tcp_tuple *t, uint32_t *iss_floor)
{
    uint32_t range = TCP_EPHEMERAL_HI - TCP_EPHEMERAL_LO + 1;
    uint16_t first = tcp_port_candidate(&s->key, &t->laddr, &t->raddr, t->rport, s->tcp.port_counter,
                                        TCP_EPHEMERAL_LO, TCP_EPHEMERAL_HI);
    uint32_t port = first;
    for (uint32_t i = 0; i < range; i++, port = port == TCP_EPHEMERAL_HI ? TCP_EPHEMERAL_LO : port + 1) {
        t->lport = (uint16_t)port;
        if ((!s->wk || workers_port_is_mine(s, t)) && tcp_tuple_free(s, t, iss_floor)) {
            s->tcp.port_counter += i + 1;
            return 0;
        }
    }
    return -EADDRNOTAVAIL;
}
