/* ICMPv4 messages (RFC 792; next-hop MTU from RFC 1191). */
#include "wire/icmp.h"

#include "wire/checksum.h"

#include <limits.h>
#include <string.h>

#define ICMP_OFF_TYPE 0
#define ICMP_OFF_CODE 1
#define ICMP_OFF_CSUM 2
#define ICMP_OFF_REST 4
#define ICMP_OFF_ID 4
#define ICMP_OFF_SEQ 6
#define ICMP_OFF_MTU 6   /* RFC 1191 4: low-order 16 bits of the second word */

static int icmp_is_echo(uint8_t type)
{
    return type == ICMP_ECHO_REQUEST || type == ICMP_ECHO_REPLY;
}

static int icmp_is_frag_needed(uint8_t type, uint8_t code)
{
    return type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED;
}

int icmp_parse(const uint8_t *buf, size_t len, struct icmp_repr *r)
{
    if (len < ICMP_HDR_LEN)
        return -WIRE_TRUNCATED;
    /* RFC 792: the checksum covers the whole ICMP message. */
    if (csum_buf(buf, len) != 0)
        return -WIRE_BAD_CSUM;
    r->type = buf[ICMP_OFF_TYPE];
    r->code = buf[ICMP_OFF_CODE];
    r->rest = rd32(buf + ICMP_OFF_REST);
    r->id = icmp_is_echo(r->type) ? rd16(buf + ICMP_OFF_ID) : 0;
    r->seq = icmp_is_echo(r->type) ? rd16(buf + ICMP_OFF_SEQ) : 0;
    r->mtu = icmp_is_frag_needed(r->type, r->code) ? rd16(buf + ICMP_OFF_MTU) : 0;
    r->payload = buf + ICMP_HDR_LEN;
    r->payload_len = len - ICMP_HDR_LEN;
    return ICMP_HDR_LEN;
}

/* The second word depends on the type (RFC 792 message formats). */
static uint32_t icmp_rest_word(const struct icmp_repr *r)
{
    if (icmp_is_echo(r->type))
        return (uint32_t)r->id << 16 | r->seq;
    if (r->type == ICMP_DEST_UNREACH)
        return r->code == ICMP_FRAG_NEEDED ? r->mtu : 0;   /* "unused" must be 0 */
    return r->rest;
}

int icmp_emit(const struct icmp_repr *r, uint8_t *buf, size_t len)
{
    if (len < ICMP_HDR_LEN || r->payload_len > len - ICMP_HDR_LEN)
        return -WIRE_TRUNCATED;
    if (r->payload_len > (size_t)INT_MAX - ICMP_HDR_LEN)
        return -WIRE_BAD_LEN;
    size_t total = ICMP_HDR_LEN + r->payload_len;

    if (r->payload_len && r->payload != buf + ICMP_HDR_LEN)
        memmove(buf + ICMP_HDR_LEN, r->payload, r->payload_len);
    buf[ICMP_OFF_TYPE] = r->type;
    buf[ICMP_OFF_CODE] = r->code;
    wr16(buf + ICMP_OFF_CSUM, 0);
    wr32(buf + ICMP_OFF_REST, icmp_rest_word(r));
    wr16(buf + ICMP_OFF_CSUM, csum_buf(buf, total));
    return (int)total;
}
