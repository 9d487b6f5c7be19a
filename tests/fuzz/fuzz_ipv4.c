/* libFuzzer: ipv4_parse and ipv4_parse_quoted on any bytes. An accepted
 * datagram is rebuilt with ipv4_emit (20-byte header, options dropped) plus
 * its payload, and must parse back to the same fields. The quoted-header
 * parser must accept whatever ipv4_parse accepts, with the same fields, and
 * never report a header longer than the input. */
#include "wire/checksum.h"
#include "wire/ipv4.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[65536];

static void ipv4_check_header_bits(const struct ipv4_repr *r, const uint8_t *data)
{
    if (r->hdr_len < IPV4_HDR_LEN || r->hdr_len > IPV4_MAX_HDR_LEN || r->hdr_len % 4 != 0)
        abort();
    if (r->total_len < r->hdr_len || r->frag_off % 8 != 0)
        abort();
    if (csum_buf(data, r->hdr_len) != 0)
        abort();
}

static int ipv4_repr_same(const struct ipv4_repr *a, const struct ipv4_repr *b)
{
    return a->hdr_len == b->hdr_len && a->tos == b->tos && a->total_len == b->total_len &&
           a->id == b->id && a->df == b->df && a->mf == b->mf &&
           a->frag_off == b->frag_off && a->ttl == b->ttl && a->proto == b->proto &&
           a->src == b->src && a->dst == b->dst;
}

/* Returns what ipv4_parse_quoted said, after checking it is sane. */
static int ipv4_check_quoted(const uint8_t *data, size_t size, struct ipv4_repr *q)
{
    int rc = ipv4_parse_quoted(data, size, q);
    if (rc < 0) {
        if (rc != -WIRE_TRUNCATED && rc != -WIRE_BAD_VERSION && rc != -WIRE_BAD_HDRLEN)
            abort();
        return rc;
    }
    if (rc != q->hdr_len || (size_t)rc > size || rc < IPV4_HDR_LEN ||
        rc > IPV4_MAX_HDR_LEN || rc % 4 != 0 || q->frag_off % 8 != 0)
        abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ipv4_repr r, q;
    int qrc = ipv4_check_quoted(data, size, &q);
    int rc = ipv4_parse(data, size, &r);
    if (rc < 0)
        return 0;
    if (qrc != rc || !ipv4_repr_same(&q, &r))
        abort();
    if (rc != r.hdr_len || r.total_len > size)
        abort();
    ipv4_check_header_bits(&r, data);

    size_t payload = (size_t)r.total_len - r.hdr_len;
    struct ipv4_repr e = r;
    e.total_len = (uint16_t)(IPV4_HDR_LEN + payload);
    if (ipv4_emit(&e, out, sizeof out) != IPV4_HDR_LEN)
        abort();
    memcpy(out + IPV4_HDR_LEN, data + r.hdr_len, payload);

    struct ipv4_repr b;
    if (ipv4_parse(out, e.total_len, &b) != IPV4_HDR_LEN)
        abort();
    if (b.hdr_len != IPV4_HDR_LEN || b.total_len != e.total_len || b.tos != r.tos ||
        b.id != r.id || b.df != r.df || b.mf != r.mf || b.frag_off != r.frag_off ||
        b.ttl != r.ttl || b.proto != r.proto || b.src != r.src || b.dst != r.dst)
        abort();
    /* Without options the bytes match too, but for the checksum (0 and ffff
     * both verify) and the reserved flag, which emit never sets. */
    if (r.hdr_len == IPV4_HDR_LEN) {
        uint8_t a[IPV4_HDR_LEN];
        memcpy(a, data, sizeof a);
        a[6] &= 0x7f;
        a[10] = a[11] = 0;
        out[10] = out[11] = 0;
        if (memcmp(a, out, sizeof a) != 0)
            abort();
    }
    return 0;
}
