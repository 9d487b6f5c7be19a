#include "net/icmp.h"

#include <string.h>

#include "net/stack.h"
#include "wire/checksum.h"
#include "wire/icmp.h"

#define ICMP_ERR_MAX_LEN 576          /* RFC 1812 4.3.2.3: the error datagram fits in 576 */
#define ICMP_BURST 50                 /* errors that may go out back to back */

void icmp_init(struct ust_stack *s, uint32_t errors_per_sec)
{
    struct icmp_state *st = &s->icmp;
    st->cost_ns = 1000000000ULL / (errors_per_sec ? errors_per_sec : 1);
    st->burst_ns = st->cost_ns * ICMP_BURST;
    st->tokens_ns = st->burst_ns;
    st->last_ns = s->now;
}

/* Token bucket in units of time, so refilling needs no division. */
static int icmp_rate_allows(struct ust_stack *s)
{
    struct icmp_state *st = &s->icmp;
    uint64_t elapsed = s->now - st->last_ns;
    st->last_ns = s->now;
    st->tokens_ns = st->tokens_ns + elapsed > st->burst_ns ? st->burst_ns : st->tokens_ns + elapsed;
    if (st->tokens_ns < st->cost_ns) {
        CTR_INC(&s->ctr, icmp_ratelimited);
        return 0;
    }
    st->tokens_ns -= st->cost_ns;
    return 1;
}

/* Echo reply in place: the request's buffer becomes the reply, so a
 * reassembled 64 KiB ping costs no copy. Type 8 -> 0 changes one 16-bit
 * word, so the checksum is updated incrementally (RFC 1624). */
static void icmp_echo_reply(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip)
{
    uint8_t *m = pkt_data(p);
    uint16_t old_word = rd16(m);
    m[0] = ICMP_ECHO_REPLY;
    wr16(m + 2, csum_update16(rd16(m + 2), old_word, rd16(m)));
    CTR_INC(&s->ctr, icmp_tx_echo_reply);
    CTR_INC(&s->ctr, icmp_tx);
    ipv4_output(s, p, ip->dst, ip->src, IPPROTO_ICMP_, ip->tos, 0, 0);
}

/* RFC 1122 3.2.2: pass an error up to the transport named in the quoted header. */
static void icmp_error_up(struct ust_stack *s, const struct icmp_repr *m)
{
    struct icmp_err e = {.type = m->type, .code = m->code, .mtu = m->mtu};
    int hl = ipv4_parse_quoted(m->payload, m->payload_len, &e.inner);
    if (hl < 0 || m->payload_len < (size_t)hl + 8) {
        CTR_INC(&s->ctr, icmp_drop_malformed);
        return;
    }
    e.l4 = m->payload + hl;
    e.l4_len = (uint16_t)(m->payload_len - (size_t)hl);
    if (!ipv4_is_local(s, e.inner.src)) {
        CTR_INC(&s->ctr, icmp_drop_malformed);   /* not about anything we sent */
        return;
    }
    switch (e.inner.proto) {
    case IPPROTO_UDP_:
        udp_error_input(s, &e);
        return;
    case IPPROTO_TCP_:
        tcp_error_input(s, &e);
        return;
    default:
        return;
    }
}

void icmp_input(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip)
{
    struct icmp_repr m;
    CTR_INC(&s->ctr, icmp_rx);
    int rc = icmp_parse(pkt_data(p), p->len, &m);
    if (rc < 0) {
        if (rc == -WIRE_BAD_CSUM)
            CTR_INC(&s->ctr, icmp_drop_csum);
        else
            CTR_INC(&s->ctr, icmp_drop_malformed);
        pkt_free(p);
        return;
    }
    switch (m.type) {
    case ICMP_ECHO_REQUEST:
        CTR_INC(&s->ctr, icmp_rx_echo);
        /* RFC 1122 3.2.2.6 lets a host ignore broadcast echoes: smurf amplifiers. */
        if (!ipv4_is_local(s, ip->dst))
            break;
        icmp_echo_reply(s, p, ip);
        return;
    case ICMP_DEST_UNREACH:
        CTR_INC(&s->ctr, icmp_rx_unreach);
        if (m.code == ICMP_FRAG_NEEDED)
            CTR_INC(&s->ctr, icmp_rx_frag_needed);
        icmp_error_up(s, &m);
        break;
    case ICMP_TIME_EXCEEDED:
    case ICMP_PARAM_PROBLEM:
        icmp_error_up(s, &m);
        break;
    default:
        CTR_INC(&s->ctr, icmp_drop_type);
    }
    pkt_free(p);
}

static int icmp_error_forbidden(const struct ust_stack *s, const struct pkt *orig, const struct ipv4_repr *ip)
{
    if (ip->frag_off != 0 || !ipv4_is_local(s, ip->dst))   /* non-first fragment, broadcast */
        return 1;
    if (ip->src == 0 || (ip->src >> 28) == 0xe || ipv4_is_broadcast(s, ip->src))
        return 1;
    if (ip->proto == IPPROTO_ICMP_) {
        /* Never answer an error with an error; queries are fine. */
        const uint8_t *m = orig->buf + orig->l3 + ip->hdr_len;
        uint8_t type = ip->total_len > ip->hdr_len ? m[0] : 0xff;
        if (type != ICMP_ECHO_REQUEST && type != ICMP_ECHO_REPLY)
            return 1;
    }
    return 0;
}

void icmp_send_error(struct ust_stack *s, const struct pkt *orig, const struct ipv4_repr *ip,
                     uint8_t type, uint8_t code, uint16_t mtu)
{
    if (icmp_error_forbidden(s, orig, ip) || !icmp_rate_allows(s))
        return;
    struct pkt *p = pkt_alloc(&s->pool);
    if (!p) {
        CTR_INC(&s->ctr, pool_empty);
        return;
    }
    /* Quote as much of the original as fits in 576 bytes (RFC 1812 4.3.2.3). */
    size_t quote = ip->total_len;
    size_t room = ICMP_ERR_MAX_LEN - IPV4_HDR_LEN - ICMP_HDR_LEN;
    if (quote > room)
        quote = room;
    struct icmp_repr m = {.type = type, .code = code, .mtu = mtu,
                          .payload = orig->buf + orig->l3, .payload_len = quote};
    uint8_t *buf = pkt_put(p, (uint16_t)(ICMP_HDR_LEN + quote));
    icmp_emit(&m, buf, ICMP_HDR_LEN + quote);
    if (type == ICMP_DEST_UNREACH && code == ICMP_PORT_UNREACH)
        CTR_INC(&s->ctr, icmp_tx_port_unreach);
    CTR_INC(&s->ctr, icmp_tx);
    ipv4_output(s, p, ip->dst, ip->src, IPPROTO_ICMP_, 0, 0, 0);
}
