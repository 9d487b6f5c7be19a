/* ARP for IPv4 over Ethernet (RFC 826). */
#include "harness.h"
#include "wire/arp.h"

/* "Who has 10.0.0.2? Tell 10.0.0.1" as it appears after the Ethernet header. */
static const uint8_t request[ARP_LEN] = {
    0x00, 0x01,                           /* htype Ethernet */
    0x08, 0x00,                           /* ptype IPv4 */
    0x06, 0x04,                           /* hlen, plen */
    0x00, 0x01,                           /* op request */
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01,   /* sha */
    0x0a, 0x00, 0x00, 0x01,               /* spa 10.0.0.1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,   /* tha unknown */
    0x0a, 0x00, 0x00, 0x02,               /* tpa 10.0.0.2 */
};

TEST(parse_request)
{
    struct arp_repr r;
    CHECK_EQ(arp_parse(request, sizeof request, &r), ARP_LEN);
    CHECK_EQ(r.op, ARP_OP_REQUEST);
    const uint8_t sha[ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x01};
    const uint8_t zero[ETH_ALEN] = {0};
    CHECK_MEM(r.sha, sha, ETH_ALEN);
    CHECK_MEM(r.tha, zero, ETH_ALEN);
    CHECK_EQ(r.spa, 0x0a000001);
    CHECK_EQ(r.tpa, 0x0a000002);
}

TEST(parse_allows_trailing_padding)
{
    uint8_t frame[46] = {0};   /* minimum Ethernet payload */
    memcpy(frame, request, ARP_LEN);
    struct arp_repr r;
    CHECK_EQ(arp_parse(frame, sizeof frame, &r), ARP_LEN);
}

TEST(parse_truncated)
{
    struct arp_repr r;
    for (size_t len = 0; len < ARP_LEN; len++)
        CHECK_EQ(arp_parse(request, len, &r), -WIRE_TRUNCATED);
}

static int parse_with_byte(size_t off, uint8_t v)
{
    uint8_t b[ARP_LEN];
    struct arp_repr r;
    memcpy(b, request, ARP_LEN);
    b[off] = v;
    return arp_parse(b, ARP_LEN, &r);
}

TEST(parse_unsupported)
{
    CHECK_EQ(parse_with_byte(1, 6), -WIRE_UNSUPPORTED);      /* htype IEEE 802 */
    CHECK_EQ(parse_with_byte(0, 1), -WIRE_UNSUPPORTED);      /* htype 0x0101 */
    CHECK_EQ(parse_with_byte(2, 0x86), -WIRE_UNSUPPORTED);   /* ptype 0x8600 */
    CHECK_EQ(parse_with_byte(3, 0xdd), -WIRE_UNSUPPORTED);   /* ptype 0x08dd */
    CHECK_EQ(parse_with_byte(4, 8), -WIRE_UNSUPPORTED);      /* hlen */
    CHECK_EQ(parse_with_byte(5, 16), -WIRE_UNSUPPORTED);     /* plen */
    CHECK_EQ(parse_with_byte(7, 0), -WIRE_UNSUPPORTED);      /* op 0 */
    CHECK_EQ(parse_with_byte(7, 3), -WIRE_UNSUPPORTED);      /* RARP request */
    CHECK_EQ(parse_with_byte(6, 1), -WIRE_UNSUPPORTED);      /* op 0x0101 */
    CHECK_EQ(parse_with_byte(7, ARP_OP_REPLY), ARP_LEN);
}

TEST(emit_known_bytes)
{
    struct arp_repr r = {.op = ARP_OP_REQUEST, .spa = 0x0a000001, .tpa = 0x0a000002};
    const uint8_t sha[ETH_ALEN] = {0x02, 0, 0, 0, 0, 0x01};
    memcpy(r.sha, sha, ETH_ALEN);
    uint8_t out[ARP_LEN + 4];
    memset(out, 0xee, sizeof out);
    CHECK_EQ(arp_emit(&r, out, sizeof out), ARP_LEN);
    CHECK_MEM(out, request, ARP_LEN);
    CHECK_EQ(out[ARP_LEN], 0xee);
}

TEST(emit_reply_round_trip)
{
    struct arp_repr r = {.op = ARP_OP_REPLY, .spa = 0xc0a80101, .tpa = 0xc0a801fe};
    const uint8_t a[ETH_ALEN] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    const uint8_t b[ETH_ALEN] = {0x0a, 0x66, 0x77, 0x88, 0x99, 0xaa};
    memcpy(r.sha, a, ETH_ALEN);
    memcpy(r.tha, b, ETH_ALEN);
    uint8_t out[ARP_LEN];
    CHECK_EQ(arp_emit(&r, out, sizeof out), ARP_LEN);
    struct arp_repr back;
    memset(&back, 0x5a, sizeof back);
    CHECK_EQ(arp_parse(out, sizeof out, &back), ARP_LEN);
    CHECK_EQ(back.op, r.op);
    CHECK_EQ(back.spa, r.spa);
    CHECK_EQ(back.tpa, r.tpa);
    CHECK_MEM(back.sha, a, ETH_ALEN);
    CHECK_MEM(back.tha, b, ETH_ALEN);
}

TEST(emit_truncated)
{
    struct arp_repr r = {.op = ARP_OP_REQUEST};
    uint8_t out[ARP_LEN];
    CHECK_EQ(arp_emit(&r, out, ARP_LEN - 1), -WIRE_TRUNCATED);
}

HARNESS_MAIN()
