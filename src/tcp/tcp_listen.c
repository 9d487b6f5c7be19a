/* LISTEN (RFC 9293 3.10.7.2): passive opens, a bounded SYN backlog per
 * listener, and SYN cookies (RFC 4987 3.6) once it is full. */
#include <errno.h>
#include <string.h>

#include "net/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_isn.h"



/* A child TCB for the connection the SYN (or a valid cookie) asks for. */
static struct tcb *tcp_child_new(struct ust_stack *s, struct tcb *l, const struct seg_in *in)
{
    struct tcb *t = tcb_alloc(s);
    if (!t) {
        CTR_INC(&s->ctr, tcp_drop_nomem);
        return NULL;
    }
    tcp_init_tcb(s, t);
    t->tuple = in->tuple;
    t->listener = l;
    t->flags |= l->flags & (TF_NODELAY | TF_KEEPALIVE | TF_NEWRENO | TF_RCVBUF_LOCK | TF_SNDBUF_LOCK);
    t->sndbuf = l->sndbuf;
    t->rcvbuf = l->rcvbuf;
    t->mss_clamp = l->mss_clamp;
    t->keep_idle_s = l->keep_idle_s;
    t->keep_intvl_s = l->keep_intvl_s;
    t->keep_cnt = l->keep_cnt;
    t->rcv_wscale = TCP_RCV_WSCALE;
    t->irs = in->h.seq;
    t->rcv_nxt = in->h.seq + 1;
    t->rcv_adv = t->rcv_nxt;
    t->ts_offset = tcp_ts_offset(s, &t->tuple);
    tcb_hash_insert(s, t);
    return t;
}

static void tcp_send_cookie_synack(struct ust_stack *s, struct tcb *l, const struct seg_in *in)
{
    /* Borrow a stack-allocated TCB shape to build the SYN,ACK: no state kept. */
    struct tcb tmp;
    memset(&tmp, 0, sizeof(tmp));
    tcp_init_tcb(s, &tmp);
    tmp.tuple = in->tuple;
    tmp.ts_offset = tcp_ts_offset(s, &tmp.tuple);
    tmp.state = TCP_SYN_RECEIVED;
    tmp.rcvbuf = l->rcvbuf;
    tmp.rcv_wscale = TCP_RCV_WSCALE;
    tmp.rcv_nxt = in->h.seq + 1;
    tcp_apply_syn_options(&tmp, &in->h.opt);
    uint16_t mss = in->h.opt.has_mss ? in->h.opt.mss : TCP_MSS_DEFAULT;
    tmp.iss = syncookie_make(&s->key, &in->tuple, in->h.seq, mss, s->now);
    tmp.snd_nxt = tmp.iss;
    if (tmp.flags & TF_TS_OK) {
        /* The options we would forget ride in our timestamp (tcp_isn.h). */
        /* RFC 7323 2.3: a shift above 14 is used as 14; 15 means "none" here. */
        uint8_t ws = in->h.opt.wscale > 14 ? 14 : in->h.opt.wscale;
        struct syncookie_opts o = {.mss = mss, .wscale = in->h.opt.has_ws ? ws : 15,
                                   .sack_ok = in->h.opt.sack_ok, .has_ts = 1};
        uint32_t clock = tcp_ts_now(&tmp);
        tmp.ts_offset += syncookie_ts_encode(clock, &o) - clock;
    }
    tcp_send_syn(&tmp);
    CTR_INC(&s->ctr, tcp_syncookies_sent);
}

/* The ACK completing a cookie handshake: rebuild the connection from it. */
static void tcp_cookie_ack(struct ust_stack *s, struct tcb *l, struct seg_in *in)
{
    uint16_t mss;
    if (syncookie_check(&s->key, &in->tuple, in->h.seq - 1, in->h.ack - 1, s->now, &mss) < 0) {
        CTR_INC(&s->ctr, tcp_syncookies_failed);
        tcp_send_reset_reply(s, &in->tuple, &in->h, in->seg_len);
        return;
    }
    if (l->acceptq_len >= l->backlog) {
        CTR_INC(&s->ctr, tcp_drop_listen_overflow);
        return;
    }
    in->h.seq--;   /* as if the SYN were here: rcv_nxt = seq */
    struct tcb *t = tcp_child_new(s, l, in);
    in->h.seq++;
    if (!t)
        return;
    struct tcp_opts o = {.has_mss = 1, .mss = mss};
    struct syncookie_opts so = {0};
    if (in->h.opt.has_ts)
        syncookie_ts_decode(in->h.opt.ts_ecr, &so);
    if (so.has_ts) {
        o.has_ts = 1;
        o.ts_val = in->h.opt.ts_val;
        o.sack_ok = so.sack_ok;
        o.has_ws = so.wscale != 15;
        o.wscale = so.wscale;
    }
    tcp_apply_syn_options(t, &o);
    t->iss = in->h.ack - 1;
    t->snd_una = t->snd_nxt = in->h.ack;
    t->snd_wnd = (uint32_t)in->h.win << t->snd_wscale;
    t->snd_wl1 = in->h.seq;
    t->snd_wl2 = in->h.ack;
    t->max_snd_wnd = t->snd_wnd;
    /* The cookie SYN,ACK offered the unscaled window (tcp_send_segment):
     * the peer may already be sending into it. */
    t->rcv_adv = t->rcv_nxt + (t->rcvbuf < 65535 ? t->rcvbuf : 65535);
    CTR_INC(&s->ctr, tcp_syncookies_ok);
    CTR_INC(&s->ctr, tcp_passive_opens);
    l->syn_pending++;   /* balanced by tcp_established */
    tcp_set_state(t, TCP_SYN_RECEIVED);
    tcp_established(t);
}

static void tcp_listen_syn(struct ust_stack *s, struct tcb *l, const struct seg_in *in)
{
    if (l->acceptq_len >= l->backlog) {
        CTR_INC(&s->ctr, tcp_drop_listen_overflow);
        return;
    }
    /* Degrade in order (DESIGN): past the SYN backlog, or with the pools
     * short, answer with a cookie and keep nothing. */
    if (l->syn_pending >= s->tcp.syn_backlog || s->tcp.used + 1 >= s->tcp.max_conns ||
        s->pool.avail < s->pool.count / 8) {
        tcp_send_cookie_synack(s, l, in);
        return;
    }
    struct tcb *t = tcp_child_new(s, l, in);
    if (!t)
        return;
    tcp_apply_syn_options(t, &in->h.opt);
    t->iss = tcp_isn(&s->key, &t->tuple, s->now);
    t->snd_una = t->snd_nxt = t->iss;
    t->snd_wnd = in->h.win;
    t->snd_wl1 = in->h.seq;
    t->max_snd_wnd = t->snd_wnd;
    l->syn_pending++;
    CTR_INC(&s->ctr, tcp_passive_opens);
    tcp_set_state(t, TCP_SYN_RECEIVED);
    tcp_send_syn(t);
    tcp_arm_rexmt(t);
}

void tcp_listen_input(struct ust_stack *s, struct tcb *l, struct seg_in *in)
{
    const struct tcp_repr *h = &in->h;
    if (h->flags & TCP_RST)
        return;                                   /* first: ignore RSTs */
    if (h->flags & TCP_ACK) {
        if (!(h->flags & TCP_SYN) && !(h->flags & TCP_FIN))
            tcp_cookie_ack(s, l, in);             /* second: a cookie, or RST */
        else
            tcp_send_reset_reply(s, &in->tuple, h, in->seg_len);
        return;
    }
    if (h->flags & TCP_SYN)
        tcp_listen_syn(s, l, in);                 /* third */
}
