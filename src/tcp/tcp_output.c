/* TCP output: building segments, sending data within the congestion and
 * receive windows, retransmissions, ACKs and resets. */
#include <errno.h>
#include <string.h>

#include "net/stack.h"
#include "tcp/tcp.h"
#include "wire/checksum.h"

uint32_t tcp_ts_now(const struct tcb *t)
{
    /* RFC 7323 5.4: a 1 ms clock with a random per-connection offset. */
    return (uint32_t)(t->stack->now / 1000000ULL) + t->ts_offset;
}

/* RFC 6675 "pipe": segments marked lost (by RACK, DupThresh or an RTO) are
 * not in flight, retransmissions are; the FIN counts as one byte. */
uint32_t tcp_flight(const struct tcb *t)
{
    if (t->snd_nxt == t->snd_una)
        return 0;
    /* No segment marked: everything sent and not acknowledged is in flight,
     * and the walk below would add up exactly that (the SYN excepted). */
    if (!(t->flags & TF_SB_MARKS))
        return t->snd_nxt - t->snd_una - (t->state == TCP_SYN_SENT || t->state == TCP_SYN_RECEIVED ? 1u : 0u);
    uint32_t fin = (t->flags & TF_FIN_SENT) ? 1 : 0;
    return sack_pipe(&t->sndq, t->snd_nxt) + fin;
}

/* RFC 9293 3.8.6.2.2 receiver SWS avoidance, RFC 7323 2.3 scaling, and the
 * rule not to shrink the window: the right edge never moves left. Under
 * packet-pool pressure the window stops opening (DESIGN: degrade by
 * shrinking advertised windows before dropping anything). */
uint16_t tcp_window_to_advertise(struct tcb *t)
{
    struct ust_stack *s = t->stack;
    uint32_t space = t->rcvbuf > t->rcv_mem ? t->rcvbuf - t->rcv_mem : 0;
    if (t->flags & TF_RCV_SHUT)
        space = t->rcvbuf;
    if (s->pool.avail < s->pool.count / 8)
        space = 0;
    uint32_t max_wnd = 65535u << t->rcv_wscale;
    if (space > max_wnd)
        space = max_wnd;
    uint32_t edge = t->rcv_nxt + space;
    uint32_t threshold = t->rcvbuf / 2 < t->mss ? t->rcvbuf / 2 : t->mss;
    if (seq_lt(edge, t->rcv_adv) || (seq_gt(edge, t->rcv_adv) && edge - t->rcv_adv < threshold &&
                                     seq_gt(t->rcv_adv, t->rcv_nxt)))
        edge = seq_max(t->rcv_adv, t->rcv_nxt);
    uint32_t wnd = (edge - t->rcv_nxt) >> t->rcv_wscale;
    if (wnd > 65535)
        wnd = 65535;
    /* The scaled window is rounded down, so it can end short of an edge
     * offered before: keep accepting up to that edge (RFC 7323 2.4; RFC
     * 9293 3.8.6.2.2: the receiver must not shrink the window). */
    uint32_t adv = t->rcv_nxt + (wnd << t->rcv_wscale);
    if (seq_gt(adv, t->rcv_adv) || seq_lt(t->rcv_adv, t->rcv_nxt))
        t->rcv_adv = adv;
    return (uint16_t)wnd;
}

/* SACK blocks ride only in the room the MSS leaves: a full-sized segment
 * must still fit the path MTU (RFC 6691: the MSS excludes options). */
static int tcp_sack_room(const struct tcb *t, const struct tcp_opts *o, uint32_t payload)
{
    uint32_t budget = t->stack->ip.mtu - IPV4_HDR_LEN - TCP_HDR_LEN;
    uint32_t used = (uint32_t)tcp_opts_len(o) + payload;
    if (used + 2 + 8 > budget)
        return 0;
    int n = (int)((budget - used - 2) / 8);
    return n > TCP_MAX_SACK ? TCP_MAX_SACK : n;
}

static void tcp_fill_options(struct tcb *t, uint8_t flags, struct tcp_opts *o, uint32_t payload)
{
    memset(o, 0, sizeof(*o));
    if (flags & TCP_SYN) {
        /* RFC 9293 3.7.1: announce what we can receive; RFC 7323, 2018 offers. */
        o->has_mss = 1;
        o->mss = (uint16_t)(t->stack->ip.mtu - IPV4_HDR_LEN - TCP_HDR_LEN);
        if (t->state == TCP_SYN_SENT || (t->flags & TF_WS_OK)) {
            o->has_ws = 1;
            o->wscale = t->rcv_wscale;
        }
        o->sack_ok = t->state == TCP_SYN_SENT || (t->flags & TF_SACK_OK);
        o->has_ts = t->state == TCP_SYN_SENT || (t->flags & TF_TS_OK);
    } else if (t->flags & TF_TS_OK) {
        o->has_ts = 1;
    }
    if (o->has_ts) {
        o->ts_val = tcp_ts_now(t);
        o->ts_ecr = (flags & TCP_ACK) ? t->ts_recent : 0;
    }
    if ((t->flags & TF_SACK_OK) && !(flags & TCP_SYN) && (flags & TCP_ACK)) {
        int room = tcp_sack_room(t, o, payload);
        if (o->has_ts && room > 3)
            room = 3;
        if (room > 0)
            o->sack_count = (uint8_t)sack_rcv_take(&t->sack_rcv, o->sack, room);
    }
}

/* Build and send one segment: flags, sequence seq, len payload bytes taken
 * from seg starting at byte off (seg NULL for none). */
static int tcp_send_segment(struct tcb *t, uint32_t seq, uint8_t flags, const struct pkt *seg, uint32_t off,
                            uint32_t len)
{
    struct ust_stack *s = t->stack;
    struct pkt *p = pkt_alloc(&s->pool);
    if (!p) {
        CTR_INC(&s->ctr, pool_empty);
        return -ENOBUFS;
    }
    struct tcp_repr r = {.sport = t->tuple.lport, .dport = t->tuple.rport, .seq = seq, .flags = flags};
    if (flags & TCP_ACK)
        r.ack = t->rcv_nxt;
    if (flags & TCP_SYN) {
        /* RFC 7323 2.2: the window of a SYN is never scaled. */
        r.win = (uint16_t)(t->rcvbuf < 65535 ? t->rcvbuf : 65535);
        if (flags & TCP_ACK)
            t->rcv_adv = t->rcv_nxt + r.win;
    } else {
        r.win = tcp_window_to_advertise(t);
    }
    tcp_fill_options(t, flags, &r.opt, len);
    size_t hlen = TCP_HDR_LEN + tcp_opts_len(&r.opt);
    uint8_t *h = pkt_put(p, (uint16_t)(hlen + len));
    if (!h) {
        pkt_free(p);
        return -EMSGSIZE;
    }
    uint32_t src = addr_v4(&t->tuple.laddr), dst = addr_v4(&t->tuple.raddr);
    uint32_t sum = csum_pseudo_ipv4(src, dst, IPPROTO_TCP_, (uint16_t)(hlen + len));
    if (len)   /* the payload is read once: copied and summed together */
        sum = csum_copy(sum, h + hlen, pkt_data(seg) + off, len);
    tcp_emit_summed(&r, h, hlen + len, len, sum);
    if (flags & TCP_ACK) {
        t->last_ack_sent = t->rcv_nxt;
        t->flags &= ~(TF_ACK_NOW | TF_DELACK);
        t->deadline[TT_DELACK] = 0;
    }
    if (flags & TCP_RST)
        CTR_INC(&s->ctr, tcp_rst_tx);
    CTR_INC(&s->ctr, tcp_tx);
    t->last_send = s->now;
    /* RFC 1191 / RFC 9293 3.7.2: DF on every segment; PMTU errors lower the MSS. */
    ipv4_output(s, p, src, dst, IPPROTO_TCP_, 0, 0, IPO_DF);
    return 0;
}

void tcp_send_ack(struct tcb *t) { tcp_send_segment(t, t->snd_nxt, TCP_ACK, NULL, 0, 0); }

void tcp_send_syn(struct tcb *t)
{
    uint8_t flags = TCP_SYN | (t->state == TCP_SYN_RECEIVED ? TCP_ACK : 0);
    tcp_send_segment(t, t->iss, flags, NULL, 0, 0);
    t->flags |= TF_SYN_SENT;
    if (t->snd_nxt == t->iss)
        t->snd_nxt = t->iss + 1;
}

void tcp_send_reset(struct tcb *t) { tcp_send_segment(t, t->snd_nxt, TCP_RST | TCP_ACK, NULL, 0, 0); }

/* Segments sent without a TCB: RSTs for closed ports, ACKs for TIME-WAIT and
 * challenge ACKs. */
static void tcp_send_raw(struct ust_stack *s, const struct tcp_tuple *tuple, uint32_t seq, uint32_t ack,
                         uint8_t flags, uint16_t wnd, int has_ts, uint32_t tsval, uint32_t tsecr)
{
    struct pkt *p = pkt_alloc(&s->pool);
    if (!p) {
        CTR_INC(&s->ctr, pool_empty);
        return;
    }
    struct tcp_repr r = {.sport = tuple->lport, .dport = tuple->rport, .seq = seq, .ack = ack,
                         .flags = flags, .win = wnd};
    r.opt.has_ts = (uint8_t)has_ts;
    r.opt.ts_val = tsval;
    r.opt.ts_ecr = tsecr;
    size_t hlen = TCP_HDR_LEN + tcp_opts_len(&r.opt);
    uint8_t *h = pkt_put(p, (uint16_t)hlen);
    uint32_t src = addr_v4(&tuple->laddr), dst = addr_v4(&tuple->raddr);
    tcp_emit(&r, h, hlen, 0, csum_pseudo_ipv4(src, dst, IPPROTO_TCP_, (uint16_t)hlen));
    CTR_INC(&s->ctr, tcp_tx);
    if (flags & TCP_RST)
        CTR_INC(&s->ctr, tcp_rst_tx);
    ipv4_output(s, p, src, dst, IPPROTO_TCP_, 0, 0, IPO_DF);
}

void tcp_send_ack_raw(struct ust_stack *s, const struct tcp_tuple *tuple, uint32_t seq, uint32_t ack,
                      uint16_t wnd, int has_ts, uint32_t tsval, uint32_t tsecr)
{
    tcp_send_raw(s, tuple, seq, ack, TCP_ACK, wnd, has_ts, tsval, tsecr);
}

/* RFC 9293 3.10.7.1: "If the ACK bit is off, sequence number zero is used,
 * <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; if the ACK bit is on,
 * <SEQ=SEG.ACK><CTL=RST>". Never in reply to a RST. */
void tcp_send_reset_reply(struct ust_stack *s, const struct tcp_tuple *tuple, const struct tcp_repr *seg,
                          uint32_t seg_len)
{
    if (seg->flags & TCP_RST)
        return;
    if (seg->flags & TCP_ACK)
        tcp_send_raw(s, tuple, seg->ack, 0, TCP_RST, 0, 0, 0, 0);
    else
        tcp_send_raw(s, tuple, 0, seg->seq + seg_len, TCP_RST | TCP_ACK, 0, 0, 0, 0);
}

/* Split seg so that it holds at most len bytes; the rest becomes a new
 * segment right after it (after a PMTU drop the queue holds segments larger
 * than the new MSS). */
static int tcp_seg_split(struct tcb *t, struct pkt *seg, uint32_t len)
{
    struct pkt *tail = pkt_alloc(&t->stack->pool);
    if (!tail)
        return -ENOBUFS;
    uint32_t rest = seg->len - len;
    memcpy(pkt_put(tail, (uint16_t)rest), pkt_data(seg) + len, rest);
    tail->aux = seg->aux + len;
    tail->stamp = seg->stamp;
    tail->flags = seg->flags;
    seg->len = (uint16_t)len;
    tail->next = seg->next;
    seg->next = tail;
    if (t->sndq.tail == seg)
        t->sndq.tail = tail;
    t->sndq.len++;
    return 0;
}

/* Send seg again (whole, or its first max_len bytes after splitting). */
int tcp_retransmit_seg(struct tcb *t, struct pkt *seg, uint32_t max_len)
{
    if (seg->len > max_len && tcp_seg_split(t, seg, max_len) < 0)
        return -ENOBUFS;
    int fin = (t->flags & TF_FIN_SENT) && !seg->next && t->snd_unsent == NULL;
    uint8_t flags = TCP_ACK | (fin ? TCP_FIN : 0) | (seg->next ? 0 : TCP_PSH);
    int rc = tcp_send_segment(t, tseg_seq(seg), flags, seg, 0, seg->len);
    if (rc < 0)
        return rc;
    seg->flags = (uint16_t)((seg->flags & ~TSEG_LOST) | TSEG_RETRANS);
    tcp_sb_mark(t);
    seg->stamp = t->stack->now;
    CTR_INC(&t->stack->ctr, tcp_retransmits);
    return 0;
}

/* Bytes congestion control lets us send now. RFC 3042 limited transmit:
 * each of the first two duplicate ACKs lets one new segment go beyond
 * cwnd ("FlightSize <= cwnd + 2*SMSS"), so a small window still gets the
 * third duplicate ACK that starts fast retransmit. */
static uint32_t tcp_cwnd_budget(const struct tcb *t)
{
    if (t->flags & TF_IN_RECOVERY)
        return t->prr.out < t->prr_budget_limit ? t->prr_budget_limit - t->prr.out : 0;
    uint32_t flight = tcp_flight(t);
    uint32_t lt = t->dupacks < TCP_DUPTHRESH ? (uint32_t)t->dupacks * t->mss : 0;
    return t->cc.cwnd + lt > flight ? t->cc.cwnd + lt - flight : 0;
}

/* RFC 6675 NextSeg rule 1 with PRR/cwnd pacing: resend lost segments first. */
static uint32_t tcp_output_lost(struct tcb *t, uint32_t budget)
{
    struct pkt *seg;
    if (!(t->flags & TF_SB_MARKS))
        return budget;   /* nothing is marked lost: no walk */
    while (budget > 0 && (seg = sack_next_lost(&t->sndq))) {
        if (tcp_retransmit_seg(t, seg, t->mss) < 0)
            break;
        budget = seg->len < budget ? budget - seg->len : 0;
        if (t->flags & TF_IN_RECOVERY)
            prr_sent(&t->prr, seg->len);
    }
    return budget;
}

/* Nagle (RFC 9293 3.7.4, RFC 896): hold a small segment while data is
 * unacknowledged, unless it is the last before our FIN. */
static int tcp_nagle_holds(const struct tcb *t, const struct pkt *seg)
{
    if (seg->len >= t->mss || (t->flags & TF_NODELAY) || t->snd_nxt == t->snd_una)
        return 0;
    return !(seg->next == NULL && (t->flags & TF_FIN_QUEUED));
}

/* How much of seg the peer's window takes now (at most one MSS), 0 = wait.
 * RFC 9293 3.8.6.2.1 sender SWS avoidance: a segment cut to the window
 * goes only when the window is at least half the largest the peer ever
 * offered, so a peer with a tiny buffer is still served at full speed
 * while a closing window does not draw a train of small segments. */
static uint32_t tcp_wnd_room(const struct tcb *t, const struct pkt *seg)
{
    uint32_t wnd_end = t->snd_una + t->snd_wnd;
    uint32_t room = seq_gt(wnd_end, tseg_seq(seg)) ? wnd_end - tseg_seq(seg) : 0;
    uint32_t want = seg->len < t->mss ? seg->len : t->mss;
    if (room >= want)
        return want;
    return room >= t->max_snd_wnd / 2 ? room : 0;
}

static void tcp_output_new(struct tcb *t, uint32_t budget)
{
    struct pkt *seg;
    while ((seg = t->snd_unsent) && budget >= (seg->len < t->mss ? seg->len : t->mss)) {
        uint32_t room = tcp_wnd_room(t, seg);
        if (room == 0)
            break;   /* receive window: the persist timer takes over if it stays shut */
        if (tcp_nagle_holds(t, seg))
            break;
        if (seg->len > room && tcp_seg_split(t, seg, room) < 0)
            break;
        int fin = seg->next == NULL && (t->flags & TF_FIN_QUEUED);
        uint8_t flags = TCP_ACK | (seg->next ? 0 : TCP_PSH) | (fin ? TCP_FIN : 0);
        if (tcp_send_segment(t, tseg_seq(seg), flags, seg, 0, seg->len) < 0)
            break;
        seg->stamp = t->stack->now;
        t->snd_nxt = tseg_end(seg) + (fin ? 1 : 0);
        if (fin)
            t->flags |= TF_FIN_SENT;
        t->snd_unsent = seg->next;
        budget -= seg->len;
        if (t->flags & TF_IN_RECOVERY)
            prr_sent(&t->prr, seg->len);
    }
}

static void tcp_output_fin(struct tcb *t)
{
    if (!(t->flags & TF_FIN_QUEUED) || (t->flags & TF_FIN_SENT) || t->snd_unsent)
        return;
    tcp_send_segment(t, t->snd_nxt, TCP_ACK | TCP_FIN, NULL, 0, 0);
    t->snd_nxt++;
    t->flags |= TF_FIN_SENT;
}

/* Resend our FIN alone (its data is all acknowledged). */
void tcp_retransmit_fin(struct tcb *t) { tcp_send_segment(t, t->snd_nxt - 1, TCP_ACK | TCP_FIN, NULL, 0, 0); }

void tcp_output(struct tcb *t)
{
    if (t->state < TCP_ESTABLISHED) {
        if (t->flags & TF_ACK_NOW && t->state == TCP_SYN_RECEIVED)
            tcp_send_ack(t);
        return;
    }
    uint32_t nxt_before = t->snd_nxt;
    if (t->state != TCP_TIME_WAIT) {
        uint32_t budget = tcp_cwnd_budget(t);
        budget = tcp_output_lost(t, budget);
        tcp_output_new(t, budget);
        tcp_output_fin(t);
    }
    if (t->snd_nxt != nxt_before || tcp_flight(t))
        tcp_arm_rexmt(t);
    /* Zero window with data waiting and nothing in flight: probe (RFC 9293 3.8.6.1). */
    if (t->snd_unsent && t->snd_nxt == t->snd_una && !t->deadline[TT_PROBE])
        tcp_arm_persist(t);
    if (t->flags & TF_ACK_NOW)
        tcp_send_ack(t);
}
