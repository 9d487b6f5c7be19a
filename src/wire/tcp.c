/* TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018). */
#include "wire/tcp.h"

#include "wire/checksum.h"

#include <string.h>

#define TCP_OFF_SPORT 0
#define TCP_OFF_DPORT 2
#define TCP_OFF_SEQ 4
#define TCP_OFF_ACK 8
#define TCP_OFF_DOFF 12   /* data offset in the high nibble */
#define TCP_OFF_FLAGS 13
#define TCP_OFF_WIN 14
#define TCP_OFF_CSUM 16
#define TCP_OFF_URG 18

#define TCP_MAX_OPTS_LEN (TCP_MAX_HDR_LEN - TCP_HDR_LEN)

#define TCPOLEN_MSS 4
#define TCPOLEN_WS 3
#define TCPOLEN_SACK_PERM 2
#define TCPOLEN_TS 10
#define TCPOLEN_SACK_BASE 2
#define TCPOLEN_SACK_BLOCK 8

/* ---- parse ---------------------------------------------------------------- */

static int tcp_parse_sack(const uint8_t *p, uint8_t olen, struct tcp_opts *o)
{
    /* RFC 2018 3: kind, length = 8n + 2, then n (left, right) edges. */
    if (olen < TCPOLEN_SACK_BASE + TCPOLEN_SACK_BLOCK ||
        (olen - TCPOLEN_SACK_BASE) % TCPOLEN_SACK_BLOCK != 0)
        return -WIRE_BAD_OPTION;
    unsigned n = (unsigned)(olen - TCPOLEN_SACK_BASE) / TCPOLEN_SACK_BLOCK;
    if (n > TCP_MAX_SACK)
        return -WIRE_BAD_OPTION;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *b = p + TCPOLEN_SACK_BASE + i * TCPOLEN_SACK_BLOCK;
        o->sack[i].left = rd32(b);
        o->sack[i].right = rd32(b + 4);
    }
    o->sack_count = (uint8_t)n;
    return 0;
}

/* One option of length olen (already known to fit). A known option with the
 * wrong length is malformed (RFC 9293 3.2: sizes are fixed); unknown ones are
 * skipped by length (RFC 9293 3.1, RFC 1122 4.2.2.5). A repeated option
 * overwrites the earlier one. */
static int tcp_parse_opt(const uint8_t *p, uint8_t olen, struct tcp_opts *o)
{
    switch (p[0]) {
    case TCPOPT_MSS:
        if (olen != TCPOLEN_MSS)
            return -WIRE_BAD_OPTION;
        o->has_mss = 1;
        o->mss = rd16(p + 2);
        return 0;
    case TCPOPT_WS:
        if (olen != TCPOLEN_WS)
            return -WIRE_BAD_OPTION;
        o->has_ws = 1;
        o->wscale = p[2];
        return 0;
    case TCPOPT_SACK_PERM:
        if (olen != TCPOLEN_SACK_PERM)
            return -WIRE_BAD_OPTION;
        o->sack_ok = 1;
        return 0;
    case TCPOPT_TS:
        if (olen != TCPOLEN_TS)
            return -WIRE_BAD_OPTION;
        o->has_ts = 1;
        o->ts_val = rd32(p + 2);
        o->ts_ecr = rd32(p + 6);
        return 0;
    case TCPOPT_SACK:
        return tcp_parse_sack(p, olen, o);
    default:
        return 0;
    }
}

static int tcp_parse_opts(const uint8_t *p, size_t len, struct tcp_opts *o)
{
    size_t i = 0;

    while (i < len) {
        if (p[i] == TCPOPT_EOL)
            break;   /* RFC 9293 3.1: the rest of the header is padding */
        if (p[i] == TCPOPT_NOP) {
            i++;
            continue;
        }
        if (len - i < 2)
            return -WIRE_BAD_OPTION;
        uint8_t olen = p[i + 1];
        /* RFC 9293 3.1: the length counts kind and length octets; a length
         * under 2 would loop forever, one past the header reads beyond it. */
        if (olen < 2 || olen > len - i)
            return -WIRE_BAD_OPTION;
        int rc = tcp_parse_opt(p + i, olen, o);
        if (rc < 0)
            return rc;
        i += olen;
    }
    return 0;
}

int tcp_parse(const uint8_t *buf, size_t len, uint32_t pseudo, int verify, struct tcp_repr *r)
{
    if (len < TCP_HDR_LEN)
        return -WIRE_TRUNCATED;
    size_t hdr_len = (size_t)(buf[TCP_OFF_DOFF] >> 4) * 4;
    if (hdr_len < TCP_HDR_LEN)
        return -WIRE_BAD_HDRLEN;
    if (hdr_len > len)
        return -WIRE_TRUNCATED;
    /* Checksum first: a damaged segment is counted as damaged, not as
     * carrying bad options. */
    if (verify && csum_fold(csum_add(pseudo, buf, len)) != 0)
        return -WIRE_BAD_CSUM;
    memset(&r->opt, 0, sizeof r->opt);
    int rc = tcp_parse_opts(buf + TCP_HDR_LEN, hdr_len - TCP_HDR_LEN, &r->opt);
    if (rc < 0)
        return rc;
    r->sport = rd16(buf + TCP_OFF_SPORT);
    r->dport = rd16(buf + TCP_OFF_DPORT);
    r->seq = rd32(buf + TCP_OFF_SEQ);
    r->ack = rd32(buf + TCP_OFF_ACK);
    r->hdr_len = (uint8_t)hdr_len;
    r->flags = buf[TCP_OFF_FLAGS];
    r->win = rd16(buf + TCP_OFF_WIN);
    r->csum = rd16(buf + TCP_OFF_CSUM);
    r->urg = rd16(buf + TCP_OFF_URG);
    return (int)hdr_len;
}

/* ---- emit ------------------------------------------------------------------
 * Layout: [MSS] [NOP NOP if needed] [SACK-perm] [TS] [SACK] [NOP WS].
 * SACK-perm, TS and SACK are each 2 (mod 4) long, so two of them together
 * are 4-aligned and an odd one out gets a NOP NOP in front; WS gets one NOP.
 * This is the fewest bytes any encoding can take rounded up to 4, and gives
 * the usual shapes: SYN "MSS, SACK-perm, TS, NOP, WS" with the timestamp
 * values 4-aligned, and "NOP, NOP, TS" alone on data segments (the shape
 * RFC 7323 Appendix A suggests and header prediction looks for). */

static unsigned tcp_opts_pairable(const struct tcp_opts *o, unsigned nsack)
{
    return (o->sack_ok != 0) + (o->has_ts != 0) + (nsack != 0);
}

static size_t tcp_opts_len_with(const struct tcp_opts *o, unsigned nsack)
{
    size_t n = 0;

    if (o->has_mss)
        n += TCPOLEN_MSS;
    if (o->sack_ok)
        n += TCPOLEN_SACK_PERM;
    if (o->has_ts)
        n += TCPOLEN_TS;
    if (nsack)
        n += TCPOLEN_SACK_BASE + TCPOLEN_SACK_BLOCK * nsack;
    if (tcp_opts_pairable(o, nsack) & 1)
        n += 2;
    if (o->has_ws)
        n += 1 + TCPOLEN_WS;
    return n;
}

/* RFC 2018 3: send as many SACK blocks as fit in the option space left. */
static unsigned tcp_sack_fit(const struct tcp_opts *o)
{
    unsigned n = o->sack_count < TCP_MAX_SACK ? o->sack_count : TCP_MAX_SACK;

    while (n > 0 && tcp_opts_len_with(o, n) > TCP_MAX_OPTS_LEN)
        n--;
    return n;
}

size_t tcp_opts_len(const struct tcp_opts *o)
{
    return tcp_opts_len_with(o, tcp_sack_fit(o));
}

static size_t tcp_write_sack(const struct tcp_opts *o, unsigned nsack, uint8_t *p)
{
    p[0] = TCPOPT_SACK;
    p[1] = (uint8_t)(TCPOLEN_SACK_BASE + TCPOLEN_SACK_BLOCK * nsack);
    for (unsigned i = 0; i < nsack; i++) {
        uint8_t *b = p + TCPOLEN_SACK_BASE + i * TCPOLEN_SACK_BLOCK;
        wr32(b, o->sack[i].left);
        wr32(b + 4, o->sack[i].right);
    }
    return p[1];
}

static size_t tcp_write_opts(const struct tcp_opts *o, unsigned nsack, uint8_t *p)
{
    size_t i = 0;

    if (o->has_mss) {
        p[i] = TCPOPT_MSS;
        p[i + 1] = TCPOLEN_MSS;
        wr16(p + i + 2, o->mss);
        i += TCPOLEN_MSS;
    }
    if (tcp_opts_pairable(o, nsack) & 1) {
        p[i++] = TCPOPT_NOP;
        p[i++] = TCPOPT_NOP;
    }
    if (o->sack_ok) {
        p[i++] = TCPOPT_SACK_PERM;
        p[i++] = TCPOLEN_SACK_PERM;
    }
    if (o->has_ts) {
        p[i] = TCPOPT_TS;
        p[i + 1] = TCPOLEN_TS;
        wr32(p + i + 2, o->ts_val);
        wr32(p + i + 6, o->ts_ecr);
        i += TCPOLEN_TS;
    }
    if (nsack)
        i += tcp_write_sack(o, nsack, p + i);
    if (o->has_ws) {
        p[i++] = TCPOPT_NOP;
        p[i++] = TCPOPT_WS;
        p[i++] = TCPOLEN_WS;
        p[i++] = o->wscale;
    }
    return i;
}

int tcp_emit(const struct tcp_repr *r, uint8_t *buf, size_t len, size_t payload_len, uint32_t pseudo)
{
    size_t hdr_len = TCP_HDR_LEN + tcp_opts_len_with(&r->opt, tcp_sack_fit(&r->opt));
    if (len >= hdr_len && payload_len <= len - hdr_len)
        pseudo = csum_add(pseudo, buf + hdr_len, payload_len);   /* even offset: sums alike */
    return tcp_emit_summed(r, buf, len, payload_len, pseudo);
}

int tcp_emit_summed(const struct tcp_repr *r, uint8_t *buf, size_t len, size_t payload_len, uint32_t sum)
{
    unsigned nsack = tcp_sack_fit(&r->opt);
    size_t hdr_len = TCP_HDR_LEN + tcp_opts_len_with(&r->opt, nsack);

    if (len < hdr_len || payload_len > len - hdr_len)
        return -WIRE_TRUNCATED;
    wr16(buf + TCP_OFF_SPORT, r->sport);
    wr16(buf + TCP_OFF_DPORT, r->dport);
    wr32(buf + TCP_OFF_SEQ, r->seq);
    wr32(buf + TCP_OFF_ACK, r->ack);
    buf[TCP_OFF_DOFF] = (uint8_t)(hdr_len / 4 << 4);
    buf[TCP_OFF_FLAGS] = r->flags;
    wr16(buf + TCP_OFF_WIN, r->win);
    wr16(buf + TCP_OFF_CSUM, 0);
    wr16(buf + TCP_OFF_URG, r->urg);
    tcp_write_opts(&r->opt, nsack, buf + TCP_HDR_LEN);
    wr16(buf + TCP_OFF_CSUM, csum_fold(csum_add(sum, buf, hdr_len)));
    return (int)hdr_len;
}
