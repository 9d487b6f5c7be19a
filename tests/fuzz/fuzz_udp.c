/* libFuzzer: udp_parse on any bytes (first byte: verify flag). An accepted
 * datagram is re-emitted with a fresh checksum and must verify and parse back
 * the same. */
#include "wire/checksum.h"
#include "wire/udp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SRC 0xc0000201u
#define DST 0xc6336402u

static uint8_t out[65536];

static uint32_t udp_pseudo(const uint8_t *d, size_t len)
{
    uint16_t l4 = len >= UDP_HDR_LEN ? rd16(d + 4) : 0;
    return csum_pseudo_ipv4(SRC, DST, 17, l4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int verify = data[0] & 1;
    const uint8_t *d = data + 1;
    size_t len = size - 1;
    uint32_t pseudo = udp_pseudo(d, len);

    struct udp_repr r;
    int rc = udp_parse(d, len, pseudo, verify, &r);
    if (rc < 0) {
        struct udp_repr u;
        if (rc == -WIRE_BAD_CSUM && udp_parse(d, len, pseudo, 0, &u) != UDP_HDR_LEN)
            abort();
        return 0;
    }
    if (rc != UDP_HDR_LEN || r.len < UDP_HDR_LEN || r.len > len)
        abort();
    memcpy(out, d, r.len);
    if (udp_emit(&r, out, r.len, pseudo) != UDP_HDR_LEN)
        abort();
    struct udp_repr b;
    if (udp_parse(out, r.len, pseudo, 1, &b) != UDP_HDR_LEN)
        abort();
    if (b.sport != r.sport || b.dport != r.dport || b.len != r.len || b.csum == 0)
        abort();
    if (memcmp(out + UDP_HDR_LEN, d + UDP_HDR_LEN, r.len - UDP_HDR_LEN) != 0)
        abort();
    return 0;
}
