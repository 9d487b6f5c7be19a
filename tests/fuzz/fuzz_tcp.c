/* libFuzzer: tcp_parse on any bytes (first byte: verify flag). An accepted
 * segment is re-emitted with its payload; the options emit writes are the
 * fewest bytes possible, so the copy is never longer and parses back to the
 * same header and options. */
#include "wire/checksum.h"
#include "wire/tcp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SRC 0x0a000001u
#define DST 0x0a000002u

static uint8_t out[65536];

static uint32_t tcp_pseudo(size_t len)
{
    return csum_pseudo_ipv4(SRC, DST, 6, (uint16_t)len);
}

static void tcp_compare_opts(const struct tcp_opts *a, const struct tcp_opts *b)
{
    if (a->has_mss != b->has_mss || a->has_ws != b->has_ws || a->sack_ok != b->sack_ok ||
        a->has_ts != b->has_ts || a->sack_count != b->sack_count)
        abort();
    if ((a->has_mss && a->mss != b->mss) || (a->has_ws && a->wscale != b->wscale))
        abort();
    if (a->has_ts && (a->ts_val != b->ts_val || a->ts_ecr != b->ts_ecr))
        abort();
    if (a->sack_count > TCP_MAX_SACK)
        abort();
    for (unsigned i = 0; i < a->sack_count; i++)
        if (a->sack[i].left != b->sack[i].left || a->sack[i].right != b->sack[i].right)
            abort();
}

static void tcp_compare(const struct tcp_repr *a, const struct tcp_repr *b)
{
    if (a->sport != b->sport || a->dport != b->dport || a->seq != b->seq || a->ack != b->ack ||
        a->flags != b->flags || a->win != b->win || a->urg != b->urg)
        abort();
    tcp_compare_opts(&a->opt, &b->opt);
}

static void tcp_reemit(const struct tcp_repr *r, const uint8_t *d, size_t len)
{
    size_t payload = len - r->hdr_len;
    size_t olen = tcp_opts_len(&r->opt);
    size_t hdr = TCP_HDR_LEN + olen;
    if (olen % 4 != 0 || hdr > r->hdr_len)
        abort();
    memcpy(out + hdr, d + r->hdr_len, payload);
    if (tcp_emit(r, out, hdr + payload, payload, tcp_pseudo(hdr + payload)) != (int)hdr)
        abort();
    struct tcp_repr b;
    if (tcp_parse(out, hdr + payload, tcp_pseudo(hdr + payload), 1, &b) != (int)hdr)
        abort();
    tcp_compare(r, &b);
    if (b.hdr_len != hdr || memcmp(out + hdr, d + r->hdr_len, payload) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > sizeof out - TCP_MAX_HDR_LEN)
        return 0;
    int verify = data[0] & 1;
    const uint8_t *d = data + 1;
    size_t len = size - 1;

    struct tcp_repr r;
    int rc = tcp_parse(d, len, tcp_pseudo(len), verify, &r);
    if (rc < 0)
        return 0;
    if (rc != r.hdr_len || r.hdr_len < TCP_HDR_LEN || r.hdr_len > TCP_MAX_HDR_LEN ||
        r.hdr_len % 4 != 0 || r.hdr_len > len)
        abort();
    if (verify) {
        /* Verification only ever removes results, never changes them. */
        struct tcp_repr u;
        if (tcp_parse(d, len, 0, 0, &u) != rc)
            abort();
        tcp_compare(&r, &u);
    }
    tcp_reemit(&r, d, len);
    return 0;
}
