/* Connection life cycle: initial values, state changes, events for the
 * application, teardown. */
#include <errno.h>
#include <string.h>

#include "net/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_isn.h"

static const char *const state_names[] = {
    "CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
    "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT",
};

const char *tcp_state_name(int st)
{
    return st >= 0 && st <= TCP_TIME_WAIT ? state_names[st] : "?";
}

static void tcp_timer_fired(struct timer *tm, uint64_t now);

void tcp_init_tcb(struct ust_stack *s, struct tcb *t)
{
    t->stack = s;
    t->mss = TCP_MSS_DEFAULT;
    t->sndbuf = s->tcp.sndbuf_default;
    t->rcvbuf = s->tcp.rcvbuf_default;
    t->keep_idle_s = 7200;
    t->keep_intvl_s = 75;
    t->keep_cnt = 9;
    rtt_init(&t->rtt, TCP_RTO_MIN_US, TCP_RTO_MAX_US);
    rack_init(&t->rack);
    timer_init(&t->timer, tcp_timer_fired);
}

/* RFC 7323 5.4: a per-connection random offset for TSval, derived from the
 * tuple with the stack's secret so it costs no system call per SYN. */
uint32_t tcp_ts_offset(struct ust_stack *s, const struct tcp_tuple *tuple)
{
    struct {
        struct tcp_tuple t;
        uint32_t salt;
    } in = {*tuple, 0x7473u};
    return (uint32_t)siphash24(&s->key, &in, sizeof(in));
}

static void tcp_timer_fired(struct timer *tm, uint64_t now)
{
    struct tcb *t = container_of(tm, struct tcb, timer);
    tcp_timers_run(t, now);
}

void tcp_set_state(struct tcb *t, enum tcp_state st) { t->state = (uint8_t)st; }

/* Queue events; they reach the application after the burst (tcp_deliver_events). */
void tcp_notify(struct tcb *t, unsigned events)
{
    struct tcp_stack *ts = &t->stack->tcp;
    t->ev_pending |= (uint8_t)events;
    if (t->flags & TF_READY_LISTED)
        return;
    t->flags |= TF_READY_LISTED;
    t->ready_next = NULL;
    if (ts->ready_tail)
        ts->ready_tail->ready_next = t;
    else
        ts->ready_head = t;
    ts->ready_tail = t;
}

static void tcp_ready_unlink(struct ust_stack *s, struct tcb *t)
{
    struct tcp_stack *ts = &s->tcp;
    if (!(t->flags & TF_READY_LISTED))
        return;
    struct tcb *prev = NULL;
    for (struct tcb *c = ts->ready_head; c; prev = c, c = c->ready_next) {
        if (c != t)
            continue;
        if (prev)
            prev->ready_next = c->ready_next;
        else
            ts->ready_head = c->ready_next;
        if (ts->ready_tail == c)
            ts->ready_tail = prev;
        break;
    }
    t->flags &= ~TF_READY_LISTED;
}

void tcp_deliver_events(struct ust_stack *s)
{
    struct tcp_stack *ts = &s->tcp;
    /* Pop from the live list: a callback may close (and free) any other
     * connection, which unlinks it. Events raised by callbacks join the
     * tail; the bound keeps a callback that re-arms itself from spinning. */
    uint32_t budget = ts->used * 2 + 64;
    struct tcb *t;
    while (budget-- && (t = ts->ready_head)) {
        ts->ready_head = t->ready_next;
        if (!ts->ready_head)
            ts->ready_tail = NULL;
        unsigned ev = t->ev_pending;
        t->ev_pending = 0;
        t->flags &= ~TF_READY_LISTED;
        if (ev && t->cb && !(t->flags & TF_APP_CLOSED))
            t->cb((struct ust_tcp *)t, ev, t->cb_arg);
    }
}

void tcp_free_buffers(struct tcb *t)
{
    pktq_free_all(&t->sndq);
    pktq_free_all(&t->rcvq);
    t->stack->tcp.ooo_pkts -= t->oooq.len;
    pktq_free_all(&t->oooq);
    t->snd_unsent = NULL;
    t->snd_queued = t->rcv_queued = t->rcv_mem = 0;
}

static void tcp_unlink_child(struct tcb *t)
{
    struct tcb *l = t->listener;
    if (!l)
        return;
    if (t->state == TCP_SYN_RECEIVED && l->syn_pending)
        l->syn_pending--;
    struct tcb **pp = &l->acceptq_head;
    struct tcb *prev = NULL;
    while (*pp && *pp != t) {
        prev = *pp;
        pp = &(*pp)->accept_next;
    }
    if (*pp) {
        *pp = t->accept_next;
        if (l->acceptq_tail == t)
            l->acceptq_tail = prev;
        l->acceptq_len--;
    }
    t->listener = NULL;
    /* A closed listener lingers only for its half-open children. */
    if ((l->flags & TF_LISTEN_GONE) && !l->syn_pending && !l->acceptq_len)
        tcb_free(t->stack, l);
}

/* Release the TCB once neither the protocol nor the application needs it. */
void tcp_done(struct tcb *t)
{
    struct ust_stack *s = t->stack;
    if (t->state != TCP_CLOSED && t->state != TCP_TIME_WAIT)
        tcb_hash_remove(s, t);
    tcp_unlink_child(t);   /* before CLOSED: it reads the state for syn_pending */
    t->state = TCP_CLOSED;
    for (int k = 0; k < TT_COUNT; k++)
        t->deadline[k] = 0;
    wheel_del(&s->wheel, &t->timer);
    /* A child never accepted, or a handle the application closed, goes now;
     * one the application holds stays (CLOSED) until ust_tcp_close. */
    if ((t->flags & TF_APP_CLOSED) || !(t->flags & TF_ACCEPTED)) {
        tcp_free_buffers(t);
        tcp_ready_unlink(s, t);
        tcb_free(s, t);
    } else {
        /* The application still holds the handle: what it has not read
         * yet stays readable (then EOF); nothing will be sent any more. */
        pktq_free_all(&t->sndq);
        t->snd_unsent = NULL;
        t->snd_queued = 0;
        s->tcp.ooo_pkts -= t->oooq.len;
        t->rcv_mem -= t->rcv_mem - t->rcv_queued;
        pktq_free_all(&t->oooq);
        tcp_notify(t, UST_TCP_CLOSED);
    }
}

void tcp_drop(struct tcb *t, int err)
{
    if (err) {
        t->error = (uint16_t)err;
        tcp_notify(t, UST_TCP_ERROR | UST_TCP_READABLE | UST_TCP_WRITABLE);
    }
    tcp_done(t);
}

/* RFC 9293 3.10.7.4: wait 2 MSL in a compact record instead of this TCB. */
void tcp_enter_time_wait(struct tcb *t)
{
    struct ust_stack *s = t->stack;
    uint16_t wnd = tcp_window_to_advertise(t);
    uint32_t snd_nxt = t->snd_nxt;
    uint64_t recycled = s->tcp.tw.recycled;
    tw_insert(&s->tcp.tw, &t->tuple, snd_nxt, t->rcv_nxt, (t->flags & TF_TS_OK) != 0, t->ts_recent,
              t->ts_offset, wnd, s->now);
    CTR_ADD(&s->ctr, tcp_tw_recycled, s->tcp.tw.recycled - recycled);
    tcp_tw_timer_update(s);
    tcb_hash_remove(s, t);
    t->state = TCP_TIME_WAIT;
    tcp_notify(t, UST_TCP_READABLE);
    tcp_done(t);
}

/* Effective send MSS (RFC 9293 3.7.1, RFC 6691): the peer's announced MSS,
 * our path MTU less headers, the application's clamp, less the option
 * bytes every segment carries (timestamps). */
void tcp_update_mss(struct tcb *t, uint32_t path_mtu)
{
    uint32_t mss = path_mtu - IPV4_HDR_LEN - TCP_HDR_LEN;
    if (t->peer_mss && t->peer_mss < mss)
        mss = t->peer_mss;
    if (t->mss_clamp && t->mss_clamp < mss)
        mss = t->mss_clamp;
    if (t->flags & TF_TS_OK)
        mss -= 12;
    if (mss < TCP_MSS_MIN)
        mss = TCP_MSS_MIN;
    t->mss = (uint16_t)mss;
    t->cc.mss = mss;
}

void tcp_established(struct tcb *t)
{
    tcp_set_state(t, TCP_ESTABLISHED);
    t->recover = t->snd_una;
    t->syn_retries = 0;
    t->rtt.backoff = 0;
    tcp_timer_clear(t, TT_REXMT);
    tcp_arm_keepalive(t);
    struct tcb *l = t->listener;
    if (l && (l->flags & TF_LISTEN_GONE)) {
        tcp_send_reset(t);
        tcp_done(t);
        return;
    }
    if (l) {
        /* Passive open completed: move to the accept queue. */
        if (l->syn_pending)
            l->syn_pending--;
        t->accept_next = NULL;
        if (l->acceptq_tail)
            l->acceptq_tail->accept_next = t;
        else
            l->acceptq_head = t;
        l->acceptq_tail = t;
        l->acceptq_len++;
        tcp_notify(l, UST_TCP_ACCEPT);
    } else {
        tcp_notify(t, UST_TCP_CONNECTED | UST_TCP_WRITABLE);
    }
}
