/* libFuzzer: icmp_parse on any bytes. An accepted message is re-emitted from
 * its repr and must parse back the same; for types whose second word emit
 * copies verbatim the bytes must match too. */
#include "wire/checksum.h"
#include "wire/icmp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[1 << 17];

static int icmp_rest_verbatim(const struct icmp_repr *r)
{
    if (r->type != ICMP_DEST_UNREACH)
        return 1;
    return r->code == ICMP_FRAG_NEEDED && r->rest >> 16 == 0;
}

static void icmp_compare(const struct icmp_repr *a, const struct icmp_repr *b)
{
    if (a->type != b->type || a->code != b->code || a->id != b->id || a->seq != b->seq ||
        a->mtu != b->mtu || a->payload_len != b->payload_len)
        abort();
    if (a->payload_len && memcmp(a->payload, b->payload, a->payload_len) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct icmp_repr r;
    int rc = icmp_parse(data, size, &r);
    if (rc < 0)
        return 0;
    if (rc != ICMP_HDR_LEN || r.payload != data + ICMP_HDR_LEN ||
        r.payload_len != size - ICMP_HDR_LEN || size > sizeof out)
        abort();
    int n = icmp_emit(&r, out, size);
    if (n < 0 || (size_t)n != size || csum_buf(out, size) != 0)
        abort();
    struct icmp_repr b;
    if (icmp_parse(out, size, &b) != ICMP_HDR_LEN)
        abort();
    icmp_compare(&r, &b);
    if (icmp_rest_verbatim(&r)) {
        /* Everything but the checksum (0 and ffff both verify) is equal. */
        if (b.rest != r.rest || memcmp(out, data, 2) != 0 ||
            memcmp(out + 4, data + 4, size - 4) != 0)
            abort();
    }
    return 0;
}
