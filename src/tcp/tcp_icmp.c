/* ICMP errors for TCP (RFC 1122 4.2.3.9, RFC 5927): validated against the
 * sequence numbers in flight so a blind attacker cannot forge them. */
#include <errno.h>

#include "net/stack.h"
#include "tcp/tcp.h"

static void tcp_pmtu_reduce(struct tcb *t, uint16_t mtu)
{
    struct ust_stack *s = t->stack;
    /* RFC 1191 5: a router that does not say uses the plateau below; ours
     * is simply the minimum IPv4 MTU. RFC 5927 5.2: never below the floor. */
    uint32_t path = mtu >= 68 ? mtu : 576;
    uint16_t old = t->mss;
    tcp_update_mss(t, path);
    if (t->mss >= old) {
        t->mss = old;
        t->cc.mss = old;
        return;
    }
    CTR_INC(&s->ctr, tcp_pmtu_updates);
    /* Resend what is in flight in smaller segments (split on retransmit). */
    tcp_mark_lost_from(t, t->sndq.head, 1);
    tcp_output(t);
}

void tcp_error_input(struct ust_stack *s, const struct icmp_err *e)
{
    struct tcp_tuple tuple = {
        .laddr = addr_from_v4(e->inner.src), .raddr = addr_from_v4(e->inner.dst),
        .lport = rd16(e->l4), .rport = rd16(e->l4 + 2),
    };
    struct tcb *t = tcb_lookup(s, &tuple);
    if (!t)
        return;
    uint32_t seq = rd32(e->l4 + 4);
    /* RFC 5927 4.1 / RFC 5961: the quoted sequence must be one in flight. */
    if (!seq_in(seq, t->snd_una, t->snd_nxt + (t->snd_una == t->snd_nxt))) {
        CTR_INC(&s->ctr, tcp_icmp_ignored);
        return;
    }
    if (e->type == ICMP_DEST_UNREACH && e->code == ICMP_FRAG_NEEDED) {
        tcp_pmtu_reduce(t, e->mtu);
        return;
    }
    int err = e->type == ICMP_TIME_EXCEEDED ? EHOSTUNREACH
              : (e->code == ICMP_PORT_UNREACH || e->code == ICMP_PROTO_UNREACH) ? ECONNREFUSED
                                                                                : EHOSTUNREACH;
    /* RFC 1122 4.2.3.9 / RFC 5461: soft errors, except that a connection
     * still opening cannot succeed after a hard refusal. */
    if (t->state == TCP_SYN_SENT && err == ECONNREFUSED) {
        tcp_drop(t, err);
        return;
    }
    t->soft_error = (uint16_t)err;
}
