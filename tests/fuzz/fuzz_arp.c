/* libFuzzer: arp_parse on any bytes; an accepted packet re-emits byte for byte
 * (every field of a supported ARP packet is either fixed or in the repr). */
#include "wire/arp.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arp_repr r;
    int rc = arp_parse(data, size, &r);
    if (rc < 0)
        return 0;
    if (rc != ARP_LEN || size < ARP_LEN)
        abort();
    if (r.op != ARP_OP_REQUEST && r.op != ARP_OP_REPLY)
        abort();
    uint8_t out[ARP_LEN];
    if (arp_emit(&r, out, sizeof out) != ARP_LEN || memcmp(out, data, ARP_LEN) != 0)
        abort();
    struct arp_repr back;
    if (arp_parse(out, sizeof out, &back) != ARP_LEN || back.op != r.op || back.spa != r.spa ||
        back.tpa != r.tpa || memcmp(back.sha, r.sha, ETH_ALEN) != 0 ||
        memcmp(back.tha, r.tha, ETH_ALEN) != 0)
        abort();
    return 0;
}
