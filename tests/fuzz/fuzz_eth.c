/* libFuzzer: eth_parse on any bytes; emit(parse(x)) reproduces the header. */
#include "wire/eth.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct eth_repr r;
    int rc = eth_parse(data, size, &r);
    if (rc < 0) {
        if (rc != -WIRE_TRUNCATED || size >= ETH_HDR_LEN)
            abort();
        return 0;
    }
    if (rc != ETH_HDR_LEN)
        abort();
    uint8_t out[ETH_HDR_LEN];
    if (eth_emit(&r, out, sizeof out) != ETH_HDR_LEN || memcmp(out, data, ETH_HDR_LEN) != 0)
        abort();
    return 0;
}
