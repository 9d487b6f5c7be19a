/* TCP input: validate -> demux -> per-state handler -> the RFC 9293
 * 3.10.7.4 "segment arrives" steps for synchronized states. */
#include <errno.h>
#include <string.h>

#include "net/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_isn.h"
#include "wire/checksum.h"


static void tcp_conn_input(struct tcb *t, struct seg_in *in);

/* ---- validate and demux ---- */

static int tcp_validate(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip, struct seg_in *in)
{
    int verify = !(p->flags & PKT_F_CSUM_PARTIAL);
    uint32_t pseudo = csum_pseudo_ipv4(ip->src, ip->dst, IPPROTO_TCP_, p->len);
    int rc = tcp_parse(pkt_data(p), p->len, pseudo, verify, &in->h);
    if (rc < 0) {
        if (rc == -WIRE_BAD_CSUM)
            CTR_INC(&s->ctr, tcp_drop_csum);
        else
            CTR_INC(&s->ctr, tcp_drop_malformed);
        return -1;
    }
    /* RFC 1122 4.2.3.10: a SYN to a broadcast address is not for a connection. */
    if (!ipv4_is_local(s, ip->dst)) {
        CTR_INC(&s->ctr, tcp_drop_malformed);
        return -1;
    }
    pkt_pull(p, in->h.hdr_len);
    in->p = p;
    in->seg_len = p->len + !!(in->h.flags & TCP_SYN) + !!(in->h.flags & TCP_FIN);
    in->tuple.laddr = addr_from_v4(ip->dst);
    in->tuple.raddr = addr_from_v4(ip->src);
    in->tuple.lport = in->h.dport;
    in->tuple.rport = in->h.sport;
    return 0;
}

static void tcp_tw_input(struct ust_stack *s, struct tcp_tw *tw, struct seg_in *in)
{
    switch (tw_classify(tw, &in->h, in->seg_len)) {
    case TW_ACK:
        /* Only the peer's own FIN, resent, restarts the 2 MSL wait: a blind
         * FIN must not keep the record alive. */
        if (tw_is_fin_retransmit(tw, &in->h, in->seg_len))
            tw_restart(&s->tcp.tw, tw, s->now);
        tcp_send_ack_raw(s, &tw->tuple, tw->snd_nxt, tw->rcv_nxt, tw->rcv_wnd, tw->has_ts,
                         (uint32_t)(s->now / 1000000ULL) + tw->ts_offset, tw->ts_recent);
        return;
    case TW_REUSE: {
        /* RFC 6191: the new incarnation starts above the old one. */
        CTR_INC(&s->ctr, tcp_tw_reuse);
        tw_remove(&s->tcp.tw, tw);
        struct tcb *l = tcb_lookup_listener(s, &in->tuple.laddr, in->tuple.lport);
        if (l)
            tcp_listen_input(s, l, in);
        return;
    }
    case TW_DROP:
    default:
        if (in->h.flags & TCP_RST)
            CTR_INC(&s->ctr, tcp_tw_rst_ignored);
        return;
    }
}

void tcp_input(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip)
{
    struct seg_in in;
    CTR_INC(&s->ctr, tcp_rx);
    if (tcp_validate(s, p, ip, &in) < 0) {
        pkt_free(p);
        return;
    }
    struct tcb *t = tcb_lookup(s, &in.tuple);
    if (t) {
        tcp_conn_input(t, &in);
    } else {
        struct tcp_tw *tw = tw_lookup(&s->tcp.tw, &in.tuple);
        struct tcb *l;
        if (tw) {
            tcp_tw_input(s, tw, &in);
        } else if ((l = tcb_lookup_listener(s, &in.tuple.laddr, in.tuple.lport))) {
            tcp_listen_input(s, l, &in);
        } else {
            /* RFC 9293 3.10.7.1: CLOSED — everything but a RST draws a RST. */
            CTR_INC(&s->ctr, tcp_drop_noport);
            tcp_send_reset_reply(s, &in.tuple, &in.h, in.seg_len);
        }
    }
    if (in.p)
        pkt_free(in.p);
}

/* ---- options negotiated on SYN ---- */

/* RFC 7323 2.2/3.2, RFC 2018 2: each extension only when both sides offer it. */
void tcp_apply_syn_options(struct tcb *t, const struct tcp_opts *o)
{
    t->peer_mss = o->has_mss ? o->mss : TCP_MSS_DEFAULT;
    if (o->has_ws) {
        t->flags |= TF_WS_OK;
        t->snd_wscale = o->wscale > 14 ? 14 : o->wscale;   /* RFC 7323 2.3 */
    } else {
        t->snd_wscale = 0;
        t->rcv_wscale = 0;
    }
    if (o->sack_ok)
        t->flags |= TF_SACK_OK;
    if (o->has_ts) {
        t->flags |= TF_TS_OK;
        t->ts_recent = o->ts_val;
        t->ts_recent_ms = (uint32_t)(t->stack->now / 1000000ULL);
    }
    tcp_update_mss(t, t->stack->ip.mtu);
    tcp_cc_init(&t->cc, (t->flags & TF_NEWRENO) ? &tcp_cc_newreno : &tcp_cc_cubic, t->mss);
}

/* ---- SYN-SENT (RFC 9293 3.10.7.3) ---- */

static void tcp_synsent_input(struct tcb *t, struct seg_in *in)
{
    struct ust_stack *s = t->stack;
    const struct tcp_repr *h = &in->h;
    int ack_ok = 0;
    if (h->flags & TCP_ACK) {
        if (seq_leq(h->ack, t->iss) || seq_gt(h->ack, t->snd_nxt)) {
            tcp_send_reset_reply(s, &in->tuple, h, in->seg_len);
            return;
        }
        ack_ok = 1;
    }
    if (h->flags & TCP_RST) {
        /* RFC 5961 3.2 in SYN-SENT: only a RST acknowledging our SYN counts. */
        if (ack_ok) {
            CTR_INC(&s->ctr, tcp_rst_rx);
            tcp_drop(t, ECONNREFUSED);
        }
        return;
    }
    if (!(h->flags & TCP_SYN))
        return;
    t->irs = h->seq;
    t->rcv_nxt = h->seq + 1;
    t->rcv_adv = t->rcv_nxt;
    tcp_apply_syn_options(t, &h->opt);
    t->snd_wnd = h->win;   /* RFC 7323 2.2: the window in a SYN is never scaled */
    t->snd_wl1 = h->seq;
    t->snd_wl2 = h->ack;
    t->max_snd_wnd = t->snd_wnd;
    if (ack_ok) {
        t->snd_una = h->ack;
        if (t->rtt.backoff == 0 && t->syn_retries == 0)
            rtt_sample(&t->rtt, (uint32_t)((s->now - t->last_send) / 1000));
        tcp_established(t);
        t->flags |= TF_ACK_NOW;
        tcp_output(t);
        return;
    }
    /* Simultaneous open: SYN-RECEIVED, answer with SYN,ACK on our ISS. */
    tcp_set_state(t, TCP_SYN_RECEIVED);
    tcp_send_syn(t);
    tcp_arm_rexmt(t);
}

/* ---- synchronized states (RFC 9293 3.10.7.4) ---- */

static uint32_t tcp_rcv_wnd(const struct tcb *t)
{
    return seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
}

/* First: the sequence number test (the four cases of RFC 9293 3.10.7.4). */
static int tcp_seq_acceptable(const struct tcb *t, const struct seg_in *in)
{
    uint32_t wnd = tcp_rcv_wnd(t), seq = in->h.seq;
    if (in->seg_len == 0) {
        if (wnd == 0)
            return seq == t->rcv_nxt;
        return seq_in(seq, t->rcv_nxt, t->rcv_nxt + wnd);
    }
    if (wnd == 0)
        return 0;
    return seq_in(seq, t->rcv_nxt, t->rcv_nxt + wnd) ||
           seq_in(seq + in->seg_len - 1, t->rcv_nxt, t->rcv_nxt + wnd);
}

/* RFC 9293 3.10.7.4: "If the RCV.WND is zero, no segments will be
 * acceptable, but special allowance should be made to accept valid ACKs,
 * URGs, and RSTs." A segment from our left edge up to the largest window we
 * could have offered is processed for those; its data is trimmed away. */
static int tcp_zero_window_allowance(const struct tcb *t, const struct seg_in *in)
{
    if (tcp_rcv_wnd(t) != 0 || !(in->h.flags & (TCP_ACK | TCP_RST)))
        return 0;
    return seq_in(in->h.seq, t->rcv_nxt, t->rcv_nxt + (65535u << t->rcv_wscale) + 1);
}

/* RFC 7323 5.3 PAWS: R1-R3. Returns 0 when the segment is to be dropped. */
static int tcp_paws_ok(struct tcb *t, const struct seg_in *in)
{
    if (!(t->flags & TF_TS_OK) || !in->h.opt.has_ts || (in->h.flags & TCP_RST))
        return 1;
    uint32_t now_ms = (uint32_t)(t->stack->now / 1000000ULL);
    /* A ts_recent idle for more than 24 days is invalid (RFC 7323 5.5). */
    if (now_ms - t->ts_recent_ms > 24u * 24 * 3600 * 1000)
        return 1;
    return !seq_lt(in->h.opt.ts_val, t->ts_recent);
}

/* RFC 2883 4.1.1: payload that lies (partly) below rcv_nxt was received
 * twice; report the duplicate part as a D-SACK in the ACK it draws. */
static void tcp_dsack_old(struct tcb *t, uint32_t seq, uint32_t len)
{
    if (!(t->flags & TF_SACK_OK) || len == 0 || !seq_lt(seq, t->rcv_nxt) || t->rcv_nxt - seq > t->rcvbuf)
        return;   /* nothing old, or too old to be a real duplicate */
    uint32_t end = seq_lt(seq + len, t->rcv_nxt) ? seq + len : t->rcv_nxt;
    CTR_INC(&t->stack->ctr, tcp_dup_segments);
    sack_rcv_dsack(&t->sack_rcv, seq, end);
}

/* Drop what lies before rcv_nxt or beyond the window (RFC 9293 3.10.7.4:
 * "segments with higher beginning sequence numbers ... held", trimmed to fit). */
static void tcp_trim_to_window(struct tcb *t, struct seg_in *in)
{
    struct tcp_repr *h = &in->h;
    if (seq_lt(h->seq, t->rcv_nxt)) {
        uint32_t cut = t->rcv_nxt - h->seq;
        if (h->flags & TCP_SYN) {
            h->flags &= (uint8_t)~TCP_SYN;
            h->seq++;
            cut--;
        }
        uint32_t data_cut = cut < in->p->len ? cut : in->p->len;
        tcp_dsack_old(t, h->seq, data_cut);
        pkt_pull(in->p, (uint16_t)data_cut);
        h->seq += data_cut;
        if (cut > data_cut && (h->flags & TCP_FIN))
            h->flags &= (uint8_t)~TCP_FIN;    /* an old FIN */
    }
    uint32_t wnd_end = t->rcv_nxt + tcp_rcv_wnd(t);
    if (seq_gt(h->seq + in->p->len, wnd_end)) {
        uint32_t keep = seq_gt(wnd_end, h->seq) ? wnd_end - h->seq : 0;
        pkt_trim(in->p, (uint16_t)keep);
        h->flags &= (uint8_t)~TCP_FIN;
        t->flags |= TF_ACK_NOW;   /* tell the sender our window again */
        CTR_INC(&t->stack->ctr, tcp_drop_rcvbuf);
    }
}

/* RFC 5961 3.2/4.2/5.2: answer suspicious segments with an ACK that only the
 * true peer can act on. */
static void tcp_challenge_ack(struct tcb *t)
{
    CTR_INC(&t->stack->ctr, tcp_challenge_ack);
    tcp_send_ack(t);
}

/* Second: the RST bit (RFC 5961 3.2 instead of RFC 9293's in-window rule). */
static int tcp_rst_step(struct tcb *t, struct seg_in *in)
{
    if (in->h.seq != t->rcv_nxt) {
        tcp_challenge_ack(t);
        return 1;
    }
    CTR_INC(&t->stack->ctr, tcp_rst_rx);
    /* A passive open reset in SYN-RECEIVED just goes away (back to LISTEN). */
    if (t->state == TCP_SYN_RECEIVED && t->listener)
        tcp_drop(t, 0);
    else
        tcp_drop(t, (t->state == TCP_CLOSE_WAIT || t->state >= TCP_CLOSING) ? EPIPE : ECONNRESET);
    return 1;
}

/* ---- the ACK (fifth step) ---- */

static void tcp_rtt_from_ack(struct tcb *t, const struct seg_in *in, const struct pkt *newest_acked)
{
    uint32_t rtt_us = 0;
    if ((t->flags & TF_TS_OK) && in->h.opt.has_ts && in->h.opt.ts_ecr) {
        uint32_t ms = tcp_ts_now(t) - in->h.opt.ts_ecr;   /* RFC 7323 4.1 */
        if (ms < 60000)
            rtt_us = ms ? ms * 1000 : 100;
    } else if (newest_acked && !(newest_acked->flags & TSEG_RETRANS) && tseg_sent(newest_acked)) {
        rtt_us = (uint32_t)((t->stack->now - newest_acked->stamp) / 1000);   /* Karn */
    }
    if (rtt_us)
        rtt_sample(&t->rtt, rtt_us);
}

/* Free acknowledged segments, tell RACK about them; returns bytes acked. */
static uint32_t tcp_clean_acked(struct tcb *t, uint32_t ack, struct pkt **newest)
{
    uint32_t freed = 0;
    struct pkt *seg;
    *newest = NULL;
    while ((seg = t->sndq.head) && seq_leq(tseg_end(seg), ack) && seg != t->snd_unsent) {
        if (!(seg->flags & TSEG_SACKED))
            rack_on_delivered(&t->rack, seg, t->stack->now, t->rtt.min_rtt_us, 0);
        pktq_pop(&t->sndq);
        freed += seg->len;
        if (*newest)
            pkt_free(*newest);
        *newest = seg;   /* kept until the RTT sample is taken */
    }
    seg = t->sndq.head;
    if (seg && seg != t->snd_unsent && seq_lt(tseg_seq(seg), ack)) {
        uint32_t cut = ack - tseg_seq(seg);   /* partially acked segment */
        pkt_pull(seg, (uint16_t)cut);
        seg->aux += cut;
        freed += cut;
    }
    t->snd_queued -= freed;
    /* Every segment that could carry a mark lies below sb_marks_end: once
     * that is acknowledged (or nothing sent is left) the scoreboard is clean
     * again, also in the middle of a long transfer. */
    if (t->sndq.head == t->snd_unsent ||
        (!seq_lt(ack, t->sb_marks_end) && !(t->sndq.head->flags & (TSEG_SACKED | TSEG_LOST | TSEG_RETRANS))))
        t->flags &= ~TF_SB_MARKS;
    return freed;
}

/* RFC 9293 3.10.7.4 fifth step: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ
 * and SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND ...". */
static int tcp_update_window(struct tcb *t, const struct seg_in *in)
{
    const struct tcp_repr *h = &in->h;
    /* RFC 9293's rule, plus: a segment acknowledging more than the one
     * that last set the window also updates it. A peer's retransmission
     * carries an older SEG.SEQ but its newest ACK and window; ignoring it
     * would keep a stale window measured from the new SND.UNA and let us
     * send beyond what the peer offers (seen over a lossy ring). */
    if (!(seq_lt(t->snd_wl1, h->seq) || (t->snd_wl1 == h->seq && seq_leq(t->snd_wl2, h->ack)) ||
          seq_lt(t->snd_wl2, h->ack)))
        return 0;
    uint32_t wnd = (uint32_t)h->win << t->snd_wscale;
    int changed = wnd != t->snd_wnd;
    t->snd_wnd = wnd;
    t->snd_wl1 = h->seq;
    t->snd_wl2 = h->ack;
    if (wnd > t->max_snd_wnd)
        t->max_snd_wnd = wnd;
    if (wnd && t->probe_mode == PROBE_PERSIST) {
        t->probe_mode = PROBE_NONE;
        t->persist_backoff = 0;
        tcp_timer_clear(t, TT_PROBE);
        /* Probe octets sent into the shut window were dropped: resend now. */
        tcp_mark_lost_from(t, t->sndq.head, 1);
    }
    return changed;
}

/* Mark seg (or, with all, every sent un-SACKed segment from seg on) lost. */
void tcp_mark_lost_from(struct tcb *t, struct pkt *seg, int all)
{
    tcp_sb_mark(t);
    for (; seg && seg != t->snd_unsent; seg = seg->next) {
        if (!(seg->flags & TSEG_SACKED))
            seg->flags |= TSEG_LOST;
        if (!all)
            return;
    }
}

void tcp_enter_recovery(struct tcb *t)
{
    uint32_t flight = t->snd_nxt - t->snd_una;
    t->flags |= TF_IN_RECOVERY | TF_CC_UNDO_OK;
    t->recover = t->snd_nxt;
    t->cc.prior_cwnd = t->cc.cwnd;
    t->cc.prior_ssthresh = t->cc.ssthresh;
    t->cc.ops->on_loss(&t->cc, flight, t->stack->now);
    prr_start(&t->prr, flight);
    t->prr_budget_limit = 0;
    CTR_INC(&t->stack->ctr, tcp_fast_retransmits);
}

static void tcp_exit_recovery(struct tcb *t)
{
    t->flags &= ~TF_IN_RECOVERY;
    t->cc.ops->on_recovery_exit(&t->cc, t->stack->now);
    rack_on_recovery_exit(&t->rack);
    t->dupacks = 0;
}

/* RFC 8985 6.2 step 4: "the number of SACKed segments >= DupThresh"
 * decides whether the reordering window may be zero. */
static uint32_t tcp_sacked_segs(const struct tcb *t)
{
    uint32_t n = 0;
    for (const struct pkt *p = t->sndq.head; p && p != t->snd_unsent && n < TCP_DUPTHRESH; p = p->next)
        n += (p->flags & TSEG_SACKED) != 0;
    return n;
}

/* RACK (RFC 8985) plus the RFC 6675 / NewReno DupThresh rule. */
static int tcp_detect_losses(struct tcb *t, int dupack)
{
    struct ust_stack *s = t->stack;
    uint32_t lost = 0;
    uint64_t timer_at = 0;
    int sacked3 = 0;
    /* Without marks nothing is SACKed and the send order is the sequence
     * order, so neither DupThresh nor RACK can find a loss: skip the walks. */
    int marks = (t->flags & TF_SB_MARKS) != 0;
    if ((t->flags & TF_SACK_OK) && marks) {
        lost += sack_mark_lost_dupthresh(&t->sndq, t->snd_nxt, t->mss);
        sacked3 = tcp_sacked_segs(t) >= TCP_DUPTHRESH;
    } else if (!(t->flags & TF_SACK_OK) && dupack && t->dupacks == TCP_DUPTHRESH && t->sndq.head &&
               t->sndq.head != t->snd_unsent && seq_gt(t->snd_una, t->recover - 1)) {
        /* RFC 6582 3.2 step 2: three duplicates outside a recovery episode. */
        tcp_mark_lost_from(t, t->sndq.head, 0);
        lost++;
    }
    uint32_t reo = rack_reo_wnd_us(&t->rack, t->rtt.min_rtt_us, t->rtt.srtt_us, (t->flags & TF_IN_RECOVERY) != 0,
                                   sacked3);
    uint32_t rack_lost = marks ? rack_detect_loss(&t->rack, &t->sndq, s->now, reo, &timer_at) : 0;
    CTR_ADD(&s->ctr, tcp_rack_lost, rack_lost);
    lost += rack_lost;
    if (lost)
        tcp_sb_mark(t);
    if (timer_at)
        tcp_arm_probe(t, PROBE_REORDER, timer_at);
    return lost > 0;
}

/* RFC 5682 2.1 step 2b: "transmit up to two new (previously unsent)
 * segments", whatever the loss window after the RTO allows. */
static void tcp_frto_send_new(struct tcb *t)
{
    uint32_t saved = t->cc.cwnd;
    t->cc.cwnd = tcp_flight(t) + 2u * t->mss;
    tcp_output(t);
    t->cc.cwnd = saved;
}

/* F-RTO (RFC 5682 2.1, the basic algorithm) after an RTO: decide whether
 * the timeout was spurious from the two ACKs that follow it. */
static void tcp_frto_step(struct tcb *t, uint32_t acked, int dupack)
{
    if (t->frto_stage == 2) {
        if (acked && seq_lt(t->snd_una, t->frto_snd_nxt) && t->snd_unsent) {
            t->frto_stage = 3;     /* step 2b: send new data, wait one more ACK */
            tcp_frto_send_new(t);
            return;
        }
    } else if (t->frto_stage == 3) {
        if (acked && !dupack) {
            /* Step 3b: new data acked without retransmissions: spurious RTO. */
            CTR_INC(&t->stack->ctr, tcp_frto_spurious);
            tcp_cc_undo(&t->cc);
            t->frto_stage = 0;
            return;
        }
    } else {
        return;
    }
    /* Step 2a/3a: the RTO was real; resend everything outstanding. */
    t->frto_stage = 0;
    tcp_mark_lost_from(t, t->sndq.head, 1);
}

static void tcp_recovery_on_ack(struct tcb *t, uint32_t acked, const struct sack_result *sr)
{
    if (seq_geq(t->snd_una, t->recover)) {
        tcp_exit_recovery(t);
        return;
    }
    /* RFC 6582 3.2 step 5: a partial ACK without SACK resends the next hole. */
    if (!(t->flags & TF_SACK_OK) && acked && t->sndq.head != t->snd_unsent)
        tcp_mark_lost_from(t, t->sndq.head, 0);
    uint32_t delivered = acked + sr->newly_sacked;
    uint32_t sndcnt = prr_on_ack(&t->prr, delivered, tcp_flight(t), t->cc.ssthresh, t->mss);
    t->prr_budget_limit = t->prr.out + sndcnt;
}

static int tcp_is_dupack(const struct tcb *t, const struct seg_in *in, int wnd_changed)
{
    /* RFC 5681 2: the five conditions; a zero window means these are
     * answers to window probes, not signs of loss. */
    return in->h.ack == t->snd_una && in->p->len == 0 && !(in->h.flags & (TCP_SYN | TCP_FIN)) && !wnd_changed &&
           t->snd_nxt != t->snd_una && t->snd_wnd != 0;
}

static void tcp_ack_congestion(struct tcb *t, const struct seg_in *in, uint32_t acked, const struct sack_result *sr,
                               int dupack, uint32_t flight_before)
{
    if (dupack)
        t->dupacks++;
    else if (acked)
        t->dupacks = 0;
    if (t->frto_stage)
        tcp_frto_step(t, acked, dupack);
    int lost = t->snd_nxt != t->snd_una && tcp_detect_losses(t, dupack);
    if (t->flags & TF_IN_RECOVERY) {
        tcp_recovery_on_ack(t, acked, sr);
    } else if (lost && seq_geq(t->snd_una, t->recover)) {
        tcp_enter_recovery(t);
        tcp_recovery_on_ack(t, acked, sr);
    } else if (acked) {
        int app_limited = flight_before + t->mss < t->cc.cwnd;
        t->cc.ops->on_ack(&t->cc, acked, t->rtt.latest_us, app_limited, t->stack->now);
    }
    (void)in;
}

/* Our FIN is acknowledged once snd_una passes it. */
static int tcp_fin_acked(const struct tcb *t)
{
    return (t->flags & TF_FIN_SENT) && t->snd_una == t->snd_nxt;
}

static void tcp_ack_state_changes(struct tcb *t)
{
    if (!tcp_fin_acked(t))
        return;
    switch (t->state) {
    case TCP_FIN_WAIT_1:
        tcp_set_state(t, TCP_FIN_WAIT_2);
        if (t->flags & TF_APP_CLOSED)
            tcp_timer_set(t, TT_KEEPALIVE, t->stack->now + TCP_FIN_WAIT2_NS);
        break;
    case TCP_CLOSING:
        tcp_enter_time_wait(t);
        break;
    case TCP_LAST_ACK:
        tcp_done(t);
        break;
    default:
        break;
    }
}

/* Returns 1 when the segment must not be processed further. */
static int tcp_ack_step(struct tcb *t, struct seg_in *in)
{
    struct ust_stack *s = t->stack;
    const struct tcp_repr *h = &in->h;
    if (t->state == TCP_SYN_RECEIVED) {
        if (!seq_in(h->ack, t->snd_una + 1, t->snd_nxt + 1)) {
            tcp_send_reset_reply(s, &in->tuple, h, in->seg_len);
            return 1;
        }
        t->snd_una = h->ack;
        t->snd_wnd = (uint32_t)h->win << t->snd_wscale;
        t->snd_wl1 = h->seq;
        t->snd_wl2 = h->ack;
        t->max_snd_wnd = t->snd_wnd;
        tcp_established(t);
        return 0;
    }
    /* RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT]. */
    if (seq_gt(h->ack, t->snd_nxt) || seq_lt(h->ack, t->snd_una - t->max_snd_wnd)) {
        tcp_challenge_ack(t);
        return 1;
    }
    uint32_t flight_before = t->snd_nxt - t->snd_una;
    struct sack_result sr = {0};
    if ((t->flags & TF_SACK_OK) && h->opt.sack_count) {
        sack_mark(&t->sndq, t->snd_una, t->snd_nxt, h->opt.sack, h->opt.sack_count, &t->rack, s->now, &sr);
        if (sr.newly_sacked)
            tcp_sb_mark(t);
        if (sr.dsack) {
            CTR_INC(&s->ctr, tcp_dsack_rx);
            rack_on_dsack(&t->rack, t->snd_una, t->snd_nxt);
        }
    }
    uint32_t acked = 0;
    if (seq_gt(h->ack, t->snd_una)) {
        struct pkt *newest;
        /* SYN and FIN occupy sequence space but no queue bytes. */
        acked = tcp_clean_acked(t, h->ack, &newest);
        tcp_rtt_from_ack(t, in, newest);
        pkt_free(newest);
        t->snd_una = h->ack;
        t->keep_probes = 0;
        t->rtt.backoff = 0;
        t->flags &= ~TF_TLP_OUT;
        if (t->flags & TF_SND_BLOCKED && t->snd_queued < t->sndbuf) {
            t->flags &= ~TF_SND_BLOCKED;
            tcp_notify(t, UST_TCP_WRITABLE);
        }
    }
    int wnd_changed = tcp_update_window(t, in);
    /* RFC 5681 2 (b): an ACK that advances SND.UNA is never a duplicate
     * (snd_una was already moved, so compare through acked). */
    tcp_ack_congestion(t, in, acked, &sr, !acked && tcp_is_dupack(t, in, wnd_changed), flight_before);
    if (acked)
        tcp_arm_rexmt(t);
    tcp_ack_state_changes(t);
    return t->state == TCP_CLOSED || t->state == TCP_TIME_WAIT;
}

/* ---- data (seventh step) ---- */

/* Append in-order payload to the receive queue; small payloads are copied
 * into the tail buffer so a flood of tiny segments cannot pin the pool. */
static void tcp_queue_in_order(struct tcb *t, struct pkt *p)
{
    struct pkt *tail = t->rcvq.tail;
    uint32_t len = p->len;
    if (tail && len <= 256 && pkt_tailroom(tail) >= len) {
        memcpy(pkt_put(tail, (uint16_t)len), pkt_data(p), len);
        pkt_free(p);
    } else {
        pktq_push(&t->rcvq, p);
    }
    t->rcv_queued += len;
    t->rcv_mem += len;
    t->rcv_nxt += len;
}

/* Move segments that became in order from the out-of-order queue. Returns
 * 1 if a queued FIN became in order. */
static int tcp_pull_ooo(struct tcb *t)
{
    struct pkt *p;
    int fin = 0;
    while ((p = t->oooq.head) && seq_leq(p->aux, t->rcv_nxt)) {
        pktq_pop(&t->oooq);
        t->stack->tcp.ooo_pkts--;
        t->rcv_mem -= p->len;
        uint32_t end = p->aux + p->len;
        if (seq_leq(end, t->rcv_nxt) && !(p->flags & OOO_F_FIN)) {
            pkt_free(p);
            continue;
        }
        pkt_pull(p, (uint16_t)(t->rcv_nxt - p->aux));
        fin = (p->flags & OOO_F_FIN) != 0;
        if (p->len)
            tcp_queue_in_order(t, p);
        else
            pkt_free(p);
        if (fin)
            break;
    }
    return fin;
}

/* Insert [seq, seq+len) into the out-of-order queue, trimmed against what
 * is already there (the queue never holds overlapping data). */
static void tcp_queue_ooo(struct tcb *t, struct seg_in *in)
{
    struct ust_stack *s = t->stack;
    struct pkt *p = in->p, *prev = NULL, *cur = t->oooq.head;
    uint32_t seq = in->h.seq;
    for (;;) {
        while (cur && seq_leq(cur->aux + cur->len, seq)) {
            prev = cur;
            cur = cur->next;
        }
        if (!cur || seq_gt(cur->aux, seq))
            break;
        if (seq_geq(cur->aux + cur->len, seq + p->len)) {
            CTR_INC(&s->ctr, tcp_dup_segments);
            sack_rcv_dsack(&t->sack_rcv, seq, seq + p->len);
            return;   /* wholly inside an existing segment */
        }
        /* It starts inside cur: keep only what lies beyond cur. */
        uint32_t cut = cur->aux + cur->len - seq;
        pkt_pull(p, (uint16_t)cut);
        seq += cut;
        prev = cur;
        cur = cur->next;
    }
    if (t->oooq.len >= TCP_MAX_OOO_PER_CONN || s->tcp.ooo_pkts >= s->tcp.ooo_max) {
        CTR_INC(&s->ctr, tcp_drop_ooo_full);
        return;
    }
    if (cur && seq_lt(cur->aux, seq + p->len))
        pkt_trim(p, (uint16_t)(cur->aux - seq));   /* keep the part before cur */
    p->aux = seq;
    p->flags = (uint16_t)((p->flags & ~OOO_F_FIN) | ((in->h.flags & TCP_FIN) && !cur ? OOO_F_FIN : 0));
    p->next = cur;
    if (prev)
        prev->next = p;
    else
        t->oooq.head = p;
    if (!cur)
        t->oooq.tail = p;
    t->oooq.len++;
    s->tcp.ooo_pkts++;
    t->rcv_mem += p->len;
    CTR_INC(&s->ctr, tcp_ooo_segments);
    sack_rcv_update(&t->sack_rcv, &t->oooq, t->rcv_nxt, seq, seq + p->len);
    in->p = NULL;
}

/* RFC 5681 4.2 / RFC 9293 3.8.6.3: ACK at least every second full-sized
 * segment, otherwise within the delayed-ACK time. */
static void tcp_schedule_ack(struct tcb *t, uint32_t len)
{
    if (len >= t->mss && ++t->rcv_unacked_segs >= 2) {
        t->flags |= TF_ACK_NOW;
        t->rcv_unacked_segs = 0;
        return;
    }
    if (!(t->flags & TF_DELACK)) {
        t->flags |= TF_DELACK;
        tcp_timer_set(t, TT_DELACK, t->stack->now + TCP_DELACK_NS);
    }
}

/* Returns 1 when a FIN is now in order (queued FIN pulled, or this one). */
static int tcp_data_step(struct tcb *t, struct seg_in *in)
{
    struct pkt *p = in->p;
    uint32_t len = p->len;
    int fin = (in->h.flags & TCP_FIN) != 0;
    if (len == 0)
        return fin && in->h.seq == t->rcv_nxt;
    if (t->state != TCP_ESTABLISHED && t->state != TCP_FIN_WAIT_1 && t->state != TCP_FIN_WAIT_2)
        return 0;   /* RFC 9293 3.10.7.4 seventh: ignore text after a FIN */
    if (in->h.seq != t->rcv_nxt) {
        tcp_queue_ooo(t, in);
        t->flags |= TF_ACK_NOW;   /* RFC 5681 4.2: immediately on out-of-order */
        return 0;
    }
    int had_ooo = t->oooq.len > 0;
    if (t->flags & TF_RCV_SHUT) {
        t->rcv_nxt += len;        /* SHUT_RD: accept and discard */
    } else {
        tcp_queue_in_order(t, p);
        in->p = NULL;
    }
    if (had_ooo) {
        fin |= tcp_pull_ooo(t);
        t->flags |= TF_ACK_NOW;   /* a hole was filled */
    }
    sack_rcv_advance(&t->sack_rcv, &t->oooq, t->rcv_nxt);
    tcp_notify(t, UST_TCP_READABLE);
    tcp_schedule_ack(t, len);
    return fin;
}

/* Eighth step: the FIN, once in order. */
static void tcp_fin_step(struct tcb *t)
{
    t->rcv_nxt++;
    t->flags |= TF_ACK_NOW | TF_RCV_FIN;
    tcp_notify(t, UST_TCP_READABLE);
    switch (t->state) {
    case TCP_SYN_RECEIVED:
    case TCP_ESTABLISHED:
        tcp_set_state(t, TCP_CLOSE_WAIT);
        break;
    case TCP_FIN_WAIT_1:
        if (tcp_fin_acked(t)) {
            tcp_send_ack(t);
            tcp_enter_time_wait(t);
            return;
        }
        tcp_set_state(t, TCP_CLOSING);
        break;
    case TCP_FIN_WAIT_2:
        tcp_send_ack(t);
        tcp_enter_time_wait(t);
        return;
    default:
        break;
    }
}

/* Sixth step: urgent data is delivered inline (RFC 6093 recommends it);
 * we track the pointer so it is never lost (RFC 9293 3.8.5 MUSTs). */
static void tcp_urg_step(struct tcb *t, const struct seg_in *in)
{
    if (!(in->h.flags & TCP_URG) || t->state < TCP_ESTABLISHED || t->state > TCP_FIN_WAIT_2)
        return;
    uint32_t up = in->h.seq + in->h.urg;
    if (seq_gt(up, t->rcv_up))
        t->rcv_up = up;
}

/* Simultaneous open (RFC 9293 3.5 figure 7, line 4): in SYN-RECEIVED the
 * peer's SYN,ACK repeats its SYN (SEG.SEQ = IRS), so the sequence test
 * would refuse it, yet its ACK of our SYN is what completes the handshake.
 * Take the ACK part when it acknowledges exactly our SYN, as Linux does. */
static int tcp_simultaneous_synack(struct tcb *t, struct seg_in *in)
{
    const struct tcp_repr *h = &in->h;
    if (t->state != TCP_SYN_RECEIVED || t->listener || h->flags != (TCP_SYN | TCP_ACK) || h->seq != t->irs ||
        h->ack != t->snd_nxt)
        return 0;
    if (tcp_ack_step(t, in))
        return 1;
    t->flags |= TF_ACK_NOW;   /* the duplicate SYN is answered */
    tcp_output(t);
    return 1;
}

static void tcp_conn_input(struct tcb *t, struct seg_in *in)
{
    struct ust_stack *s = t->stack;
    if (t->state == TCP_SYN_SENT) {
        tcp_synsent_input(t, in);
        return;
    }
    if (t->state == TCP_SYN_RECEIVED && (in->h.flags & TCP_SYN) && !(in->h.flags & TCP_ACK) &&
        in->h.seq == t->irs) {
        tcp_send_syn(t);   /* our SYN,ACK was lost: the peer resent its SYN */
        tcp_arm_rexmt(t);
        return;
    }
    if (tcp_simultaneous_synack(t, in))
        return;
    if (!tcp_paws_ok(t, in)) {
        CTR_INC(&s->ctr, tcp_drop_paws);
        tcp_send_ack(t);
        return;
    }
    if (!tcp_seq_acceptable(t, in) && !tcp_zero_window_allowance(t, in)) {
        CTR_INC(&s->ctr, tcp_drop_unacceptable);
        if (!(in->h.flags & TCP_RST)) {
            tcp_dsack_old(t, in->h.seq, in->p->len);
            tcp_send_ack(t);
        }
        return;
    }
    t->keep_probes = 0;   /* RFC 9293 3.8.4: any acceptable segment answers a keepalive */
    /* RFC 7323 4.3: record TS.Recent from the segment at the left window edge. */
    if ((t->flags & TF_TS_OK) && in->h.opt.has_ts && seq_leq(in->h.seq, t->last_ack_sent) &&
        seq_geq(in->h.opt.ts_val, t->ts_recent)) {
        t->ts_recent = in->h.opt.ts_val;
        t->ts_recent_ms = (uint32_t)(s->now / 1000000ULL);
    }
    tcp_trim_to_window(t, in);
    if (in->h.flags & TCP_RST) {
        tcp_rst_step(t, in);
        return;
    }
    if (in->h.flags & TCP_SYN) {
        tcp_challenge_ack(t);   /* RFC 5961 4.2: SYN in a synchronized state */
        return;
    }
    if (!(in->h.flags & TCP_ACK))
        return;
    if (tcp_ack_step(t, in))
        return;
    tcp_urg_step(t, in);
    if (tcp_data_step(t, in)) {
        tcp_fin_step(t);
        if (t->state == TCP_CLOSED || t->state == TCP_TIME_WAIT)
            return;
    }
    if (t->state == TCP_ESTABLISHED || t->state == TCP_CLOSE_WAIT)
        tcp_arm_keepalive(t);
    tcp_output(t);
}
