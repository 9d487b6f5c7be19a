/* Read-only views of a TCB for the socket layer (tcp_sock.h). */
#include "tcp/tcp_sock.h"

#include <string.h>

#include "net/stack.h"
#include "tcp/tcp.h"

#define TCB_C(c) ((const struct tcb *)(const void *)(c))

unsigned tcp_sock_poll(const struct ust_tcp *c)
{
    const struct tcb *t = TCB_C(c);
    unsigned m = 0;
    switch (t->state) {
    case TCP_LISTEN:
        return TSP_LISTEN | (t->acceptq_len ? TSP_ACCEPTQ : 0);
    case TCP_SYN_SENT:
    case TCP_SYN_RECEIVED:
        m |= TSP_CONNECTING;
        break;
    case TCP_CLOSED:
        m |= TSP_CLOSED;
        break;
    default:
        m |= TSP_SYNCED;
        break;
    }
    if (t->rcv_queued)
        m |= TSP_DATA;
    if (t->flags & TF_RCV_FIN)
        m |= TSP_RCV_FIN | TSP_SYNCED;
    if (t->flags & TF_FIN_QUEUED)
        m |= TSP_FIN_QUEUED;
    if (t->error)
        m |= TSP_ERROR;
    if (ust_tcp_sendable(c))
        m |= TSP_SENDABLE;
    return m;
}

size_t tcp_sock_peek(const struct ust_tcp *c, size_t off, void *buf, size_t len)
{
    const struct tcb *t = TCB_C(c);
    size_t done = 0;
    for (const struct pkt *p = t->rcvq.head; p && done < len; p = p->next) {
        if (off >= p->len) {
            off -= p->len;
            continue;
        }
        size_t avail = p->len - off;
        size_t n = len - done < avail ? len - done : avail;
        memcpy((uint8_t *)buf + done, pkt_data(p) + off, n);
        done += n;
        off = 0;
    }
    return done;
}

/* Linux's TCP_* state numbers (include/net/tcp_states.h), for tcpi_state. */
static uint8_t tcp_sock_linux_state(int st)
{
    static const uint8_t map[] = {
        [TCP_CLOSED] = 7, [TCP_LISTEN] = 10, [TCP_SYN_SENT] = 2, [TCP_SYN_RECEIVED] = 3,
        [TCP_ESTABLISHED] = 1, [TCP_FIN_WAIT_1] = 4, [TCP_FIN_WAIT_2] = 5, [TCP_CLOSE_WAIT] = 8,
        [TCP_CLOSING] = 11, [TCP_LAST_ACK] = 9, [TCP_TIME_WAIT] = 6,
    };
    return st >= 0 && st <= TCP_TIME_WAIT ? map[st] : 7;
}

static uint32_t segs(uint32_t bytes, uint32_t mss)
{
    return mss ? (bytes + mss - 1) / mss : 0;
}

void tcp_sock_info(const struct ust_tcp *c, struct tcp_sock_info *o)
{
    const struct tcb *t = TCB_C(c);
    const struct ust_stack *s = t->stack;
    memset(o, 0, sizeof(*o));
    o->state = tcp_sock_linux_state(t->state);
    o->ca_state = (t->flags & TF_IN_RECOVERY) ? 3 /* TCP_CA_Recovery */ : 0;
    o->backoff = t->rtt.backoff;
    o->retransmits = t->rtt.backoff;
    o->probes = t->keep_probes;
    o->options = (uint8_t)(((t->flags & TF_TS_OK) ? TSI_OPT_TIMESTAMPS : 0) |
                           ((t->flags & TF_SACK_OK) ? TSI_OPT_SACK : 0) |
                           ((t->flags & TF_WS_OK) ? TSI_OPT_WSCALE : 0));
    if (t->flags & TF_WS_OK) {
        o->snd_wscale = t->snd_wscale;
        o->rcv_wscale = t->rcv_wscale;
    }
    o->rto_us = rtt_timeout_us(&t->rtt);
    o->ato_us = (uint32_t)(TCP_DELACK_NS / 1000);
    o->snd_mss = t->mss;
    o->rcv_mss = t->peer_mss ? t->peer_mss : t->mss;
    o->advmss = s->ip.mtu - 40;
    o->pmtu = s->ip.mtu;
    o->unacked = segs(t->snd_nxt - t->snd_una, t->mss);
    o->rtt_us = t->rtt.srtt_us;
    o->rttvar_us = t->rtt.rttvar_us;
    o->min_rtt_us = t->rtt.min_rtt_us;
    o->snd_cwnd = t->mss ? t->cc.cwnd / t->mss : 0;
    o->snd_ssthresh = t->cc.ssthresh >= TCP_CC_SSTHRESH_INF ? 0x7fffffffu : segs(t->cc.ssthresh, t->mss);
    o->rcv_space = t->rcvbuf;
    o->snd_wnd = t->snd_wnd;
    if (t->last_send && s->now >= t->last_send)
        o->last_data_sent_ms = (uint32_t)((s->now - t->last_send) / 1000000ULL);
}

const char *tcp_sock_cc_name(const struct ust_tcp *c)
{
    const struct tcb *t = TCB_C(c);
    if (t->cc.ops)
        return t->cc.ops->name;
    return (t->flags & TF_NEWRENO) ? "newreno" : "cubic";
}
