/* TCP timers: four logical deadlines per connection multiplexed on one wheel
 * timer (so arming and cancelling never walk anything), plus one wheel timer
 * for the whole TIME-WAIT table. */
#include <errno.h>

#include "net/stack.h"
#include "tcp/tcp.h"

#define PERSIST_MIN_NS (200ULL * 1000000ULL)
#define PERSIST_MAX_NS (60ULL * 1000000000ULL)
#define MAX_ACK_DELAY_US 200000u      /* RFC 8985 7.2 WCDelAckT */

void tcp_timer_rearm(struct tcb *t)
{
    uint64_t next = 0;
    for (int k = 0; k < TT_COUNT; k++)
        if (t->deadline[k] && (!next || t->deadline[k] < next))
            next = t->deadline[k];
    struct wheel *w = &t->stack->wheel;
    if (!next)
        wheel_del(w, &t->timer);
    else if (!timer_pending(&t->timer) || t->timer.expires != next)
        wheel_add(w, &t->timer, next);
}

void tcp_timer_set(struct tcb *t, enum tcp_timer_kind k, uint64_t when)
{
    t->deadline[k] = when ? when : 1;
    tcp_timer_rearm(t);
}

void tcp_timer_clear(struct tcb *t, enum tcp_timer_kind k)
{
    if (!t->deadline[k])
        return;
    t->deadline[k] = 0;
    tcp_timer_rearm(t);
}

static uint64_t tcp_rto_ns(const struct tcb *t) { return (uint64_t)rtt_timeout_us(&t->rtt) * 1000ULL; }

/* RFC 6298 5.1/5.2/5.3: running while data is outstanding, restarted when
 * new data is acknowledged; RFC 8985 7.2: a tail loss probe first. */
void tcp_arm_rexmt(struct tcb *t)
{
    struct ust_stack *s = t->stack;
    int outstanding = t->snd_nxt != t->snd_una;
    if (!outstanding) {
        tcp_timer_clear(t, TT_REXMT);
        if (t->probe_mode == PROBE_TLP || t->probe_mode == PROBE_REORDER) {
            t->probe_mode = PROBE_NONE;
            tcp_timer_clear(t, TT_PROBE);
        }
        return;
    }
    if (t->probe_mode == PROBE_PERSIST) {
        /* RFC 9293 3.8.6.1: while the window is shut, the persist timer
         * alone resends the probe octet, backing off; an RTO (or a TLP
         * taking over TT_PROBE) would probe at the wrong pace. */
        tcp_timer_clear(t, TT_REXMT);
        return;
    }
    tcp_timer_set(t, TT_REXMT, s->now + tcp_rto_ns(t));
    /* TLP when not in recovery, no probe outstanding, and SACK is usable. */
    if (t->state == TCP_ESTABLISHED && (t->flags & TF_SACK_OK) && !(t->flags & (TF_IN_RECOVERY | TF_TLP_OUT)) &&
        t->probe_mode != PROBE_REORDER && t->rtt.srtt_us) {
        uint32_t flight_segs = (t->snd_nxt - t->snd_una + t->mss - 1) / t->mss;
        uint32_t pto = tlp_pto_us(t->rtt.srtt_us, flight_segs, MAX_ACK_DELAY_US, rtt_timeout_us(&t->rtt));
        tcp_arm_probe(t, PROBE_TLP, s->now + (uint64_t)pto * 1000ULL);
    }
}

void tcp_arm_probe(struct tcb *t, enum tcp_probe_mode mode, uint64_t when)
{
    t->probe_mode = (uint8_t)mode;
    tcp_timer_set(t, TT_PROBE, when);
}

void tcp_arm_persist(struct tcb *t)
{
    uint64_t d = tcp_rto_ns(t) << t->persist_backoff;
    if (d < PERSIST_MIN_NS)
        d = PERSIST_MIN_NS;
    if (d > PERSIST_MAX_NS)
        d = PERSIST_MAX_NS;
    tcp_arm_probe(t, PROBE_PERSIST, t->stack->now + d);
}

void tcp_arm_keepalive(struct tcb *t)
{
    if (!(t->flags & TF_KEEPALIVE))
        return;
    uint64_t idle = (uint64_t)(t->keep_probes ? t->keep_intvl_s : t->keep_idle_s) * 1000000000ULL;
    tcp_timer_set(t, TT_KEEPALIVE, t->stack->now + idle);
}

/* SYN, SYN,ACK retransmission (RFC 6298 5.7 keeps 3 s / 1 s initial RTO). */
static int tcp_syn_timeout(struct tcb *t)
{
    int limit = t->state == TCP_SYN_SENT ? TCP_SYN_RETRIES : TCP_SYNACK_RETRIES;
    if (++t->syn_retries > limit) {
        CTR_INC(&t->stack->ctr, tcp_timeouts);
        tcp_drop(t, ETIMEDOUT);
        return 1;
    }
    rtt_backoff(&t->rtt);
    tcp_send_syn(t);
    tcp_timer_set(t, TT_REXMT, t->stack->now + tcp_rto_ns(t));
    return 0;
}

/* RFC 6298 5.4-5.6 with RFC 5681 3.1 (loss window) and F-RTO (RFC 5682):
 * resend the first outstanding segment only, then let the next ACKs tell
 * whether the timeout was spurious. */
static int tcp_rto_fired(struct tcb *t)
{
    struct ust_stack *s = t->stack;
    if (t->rtt.backoff >= TCP_RETRIES2) {
        CTR_INC(&s->ctr, tcp_timeouts);
        tcp_drop(t, ETIMEDOUT);
        return 1;
    }
    CTR_INC(&s->ctr, tcp_rto);
    uint32_t flight = t->snd_nxt - t->snd_una;
    if (!t->frto_stage) {
        t->cc.prior_cwnd = t->cc.cwnd;
        t->cc.prior_ssthresh = t->cc.ssthresh;
    }
    t->cc.ops->on_rto(&t->cc, flight, s->now);
    t->flags &= ~(TF_IN_RECOVERY | TF_TLP_OUT);
    t->recover = t->snd_nxt;
    t->dupacks = 0;
    rtt_backoff(&t->rtt);
    struct pkt *first = t->sndq.head != t->snd_unsent ? t->sndq.head : NULL;
    if (first) {
        /* F-RTO only for the first timeout of an episode with new data ready. */
        t->frto_stage = (t->rtt.backoff == 1 && t->snd_unsent) ? 2 : 0;
        t->frto_snd_nxt = t->snd_nxt;
        tcp_mark_lost_from(t, first, t->frto_stage == 0);
        tcp_retransmit_seg(t, first, t->mss);
        first->flags &= (uint16_t)~TSEG_LOST;
    } else if ((t->flags & TF_FIN_SENT) && t->snd_una != t->snd_nxt) {
        tcp_retransmit_fin(t);
    }
    tcp_timer_set(t, TT_REXMT, s->now + tcp_rto_ns(t));
    return 0;
}

/* RFC 8985 7.3: send one new segment if possible, else the last one again. */
static void tcp_tlp_fired(struct tcb *t)
{
    struct pkt *seg = t->snd_unsent;
    CTR_INC(&t->stack->ctr, tcp_tlp);
    t->flags |= TF_TLP_OUT;
    if (seg && seq_leq(tseg_end(seg), t->snd_una + t->snd_wnd)) {
        t->cc.cwnd += t->mss;   /* allow exactly this one new segment */
        tcp_output(t);
        t->cc.cwnd -= t->mss;
        return;
    }
    struct pkt *last = NULL;
    for (struct pkt *p = t->sndq.head; p && p != t->snd_unsent; p = p->next)
        last = p;
    if (last && !(last->flags & TSEG_SACKED))
        tcp_retransmit_seg(t, last, t->mss);
    else if ((t->flags & TF_FIN_SENT) && t->snd_una != t->snd_nxt)
        tcp_retransmit_fin(t);
    tcp_timer_set(t, TT_REXMT, t->stack->now + tcp_rto_ns(t));
}

/* RFC 9293 3.8.6.1: probe a zero window with one octet of new data (or the
 * octet already sent as a probe), backing off like the RTO. */
static void tcp_persist_fired(struct tcb *t)
{
    CTR_INC(&t->stack->ctr, tcp_zero_window_probes);
    struct pkt *head = t->sndq.head;
    if (head && head != t->snd_unsent) {
        tcp_retransmit_seg(t, head, 1);
    } else if (t->snd_unsent) {
        uint32_t saved = t->snd_wnd;
        t->snd_wnd = t->snd_nxt - t->snd_una + 1;   /* room for exactly one byte */
        uint32_t saved_mss = t->mss;
        t->mss = 1;
        uint32_t saved_flags = t->flags;
        t->flags |= TF_NODELAY;
        tcp_output(t);
        t->flags = (t->flags & ~TF_NODELAY) | (saved_flags & TF_NODELAY);
        t->mss = (uint16_t)saved_mss;
        t->snd_wnd = saved;
    }
    tcp_timer_clear(t, TT_REXMT);
    if (t->persist_backoff < 16)
        t->persist_backoff++;
    tcp_arm_persist(t);
}

static int tcp_probe_fired(struct tcb *t)
{
    enum tcp_probe_mode mode = (enum tcp_probe_mode)t->probe_mode;
    t->probe_mode = PROBE_NONE;
    switch (mode) {
    case PROBE_TLP:
        tcp_tlp_fired(t);
        break;
    case PROBE_PERSIST:
        if (t->snd_wnd == 0 || t->snd_una == t->snd_nxt)
            tcp_persist_fired(t);
        break;
    case PROBE_REORDER:
        /* RFC 8985 6.3: the reordering window passed: look again. */
        tcp_output(t);
        break;
    default:
        break;
    }
    return 0;
}

/* RFC 9293 3.8.4 (RFC 1122 4.2.3.6): probe an idle connection; a probe is
 * an ACK with SEG.SEQ = SND.NXT - 1 that the peer must answer. Also the
 * FIN-WAIT-2 limit for orphaned connections. */
static int tcp_keepalive_fired(struct tcb *t)
{
    struct ust_stack *s = t->stack;
    if (t->state == TCP_FIN_WAIT_2) {
        tcp_drop(t, 0);
        return 1;
    }
    if (!(t->flags & TF_KEEPALIVE) || t->state != TCP_ESTABLISHED)
        return 0;
    if (t->keep_probes >= t->keep_cnt) {
        CTR_INC(&s->ctr, tcp_timeouts);
        tcp_drop(t, ETIMEDOUT);
        return 1;
    }
    t->keep_probes++;
    CTR_INC(&s->ctr, tcp_keepalive_probes);
    tcp_send_ack_raw(s, &t->tuple, t->snd_una - 1, t->rcv_nxt, tcp_window_to_advertise(t),
                     (t->flags & TF_TS_OK) != 0, tcp_ts_now(t), t->ts_recent);
    tcp_arm_keepalive(t);
    return 0;
}

static int tcp_timer_dispatch(struct tcb *t, enum tcp_timer_kind k)
{
    switch (k) {
    case TT_REXMT:
        if (t->state == TCP_SYN_SENT || t->state == TCP_SYN_RECEIVED)
            return tcp_syn_timeout(t);
        if (t->snd_una == t->snd_nxt)
            return 0;
        return tcp_rto_fired(t);
    case TT_PROBE:
        return tcp_probe_fired(t);
    case TT_DELACK:
        if (t->flags & TF_DELACK) {
            CTR_INC(&t->stack->ctr, tcp_delayed_acks);
            tcp_send_ack(t);
        }
        return 0;
    case TT_KEEPALIVE:
        return tcp_keepalive_fired(t);
    default:
        return 0;
    }
}

void tcp_timers_run(struct tcb *t, uint64_t now)
{
    for (int k = 0; k < TT_COUNT; k++) {
        if (!t->deadline[k] || t->deadline[k] > now)
            continue;
        t->deadline[k] = 0;
        if (tcp_timer_dispatch(t, (enum tcp_timer_kind)k))
            return;   /* the connection is gone */
    }
    if (t->state != TCP_CLOSED)
        tcp_output(t);
    if (t->state != TCP_CLOSED)
        tcp_timer_rearm(t);
}

static void tcp_tw_timer_fired(struct timer *tm, uint64_t now)
{
    struct ust_stack *s = container_of(tm, struct ust_stack, tcp.tw_timer);
    tw_expire(&s->tcp.tw, now);
    tcp_tw_timer_update(s);
}

void tcp_tw_timer_update(struct ust_stack *s)
{
    uint64_t next = tw_next_expiry(&s->tcp.tw);
    if (!s->tcp.tw_timer.fn)
        timer_init(&s->tcp.tw_timer, tcp_tw_timer_fired);
    if (next == UINT64_MAX)
        wheel_del(&s->wheel, &s->tcp.tw_timer);
    else if (!timer_pending(&s->tcp.tw_timer) || s->tcp.tw_timer.expires > next)
        wheel_add(&s->wheel, &s->tcp.tw_timer, next);
}
