/* UDP header (RFC 768). */
#include "harness.h"
#include "wire/checksum.h"
#include "wire/udp.h"

#define SRC 0x0a000001u   /* 10.0.0.1 */
#define DST 0x0a000002u   /* 10.0.0.2 */

/* 1234 -> 53, 12 bytes, "abcd". Pseudo header 0a00 0001 0a00 0002 0011 000c
 * sums to 1420, header 04d2 0035 000c to 0513, payload 6162 6364 to c4c6:
 * ddf9 in all, checksum 2206. */
static const uint8_t dgram[] = {
    0x04, 0xd2, 0x00, 0x35, 0x00, 0x0c, 0x22, 0x06, 'a', 'b', 'c', 'd',
};

static uint32_t pseudo(uint16_t l4_len)
{
    return csum_pseudo_ipv4(SRC, DST, 17, l4_len);
}

TEST(parse_known_verified)
{
    struct udp_repr r;
    CHECK_EQ(udp_parse(dgram, sizeof dgram, pseudo(12), 1, &r), UDP_HDR_LEN);
    CHECK_EQ(r.sport, 1234);
    CHECK_EQ(r.dport, 53);
    CHECK_EQ(r.len, 12);
    CHECK_EQ(r.csum, 0x2206);
}

TEST(parse_bad_checksum)
{
    struct udp_repr r;
    uint8_t b[sizeof dgram];
    memcpy(b, dgram, sizeof b);
    b[10] ^= 1;
    CHECK_EQ(udp_parse(b, sizeof b, pseudo(12), 1, &r), -WIRE_BAD_CSUM);
    CHECK_EQ(udp_parse(b, sizeof b, pseudo(12), 0, &r), UDP_HDR_LEN);   /* not asked */
    /* A wrong pseudo header (other address) fails as well. */
    CHECK_EQ(udp_parse(dgram, sizeof dgram, csum_pseudo_ipv4(SRC, DST + 1, 17, 12), 1, &r),
             -WIRE_BAD_CSUM);
}

TEST(checksum_zero_means_none)
{
    struct udp_repr r;
    uint8_t b[sizeof dgram];
    memcpy(b, dgram, sizeof b);
    wr16(b + 6, 0);
    b[9] ^= 0x55;   /* even corrupted: nothing to verify against */
    CHECK_EQ(udp_parse(b, sizeof b, pseudo(12), 1, &r), UDP_HDR_LEN);
    CHECK_EQ(r.csum, 0);
}

TEST(length_field_checks)
{
    struct udp_repr r;
    uint8_t b[64];
    memset(b, 0, sizeof b);
    memcpy(b, dgram, sizeof dgram);
    for (size_t len = 0; len < UDP_HDR_LEN; len++)
        CHECK_EQ(udp_parse(b, len, 0, 0, &r), -WIRE_TRUNCATED);
    for (uint16_t f = 0; f < UDP_HDR_LEN; f++) {
        wr16(b + 4, f);
        CHECK_EQ(udp_parse(b, sizeof b, 0, 0, &r), -WIRE_BAD_LEN);
    }
    wr16(b + 4, 12);
    CHECK_EQ(udp_parse(b, 11, 0, 0, &r), -WIRE_TRUNCATED);   /* field past IP payload */
    CHECK_EQ(udp_parse(b, 12, 0, 0, &r), UDP_HDR_LEN);
    wr16(b + 4, 8);   /* empty datagram */
    CHECK_EQ(udp_parse(b, 12, 0, 0, &r), UDP_HDR_LEN);
    CHECK_EQ(r.len, 8);
    wr16(b + 4, 0xffff);
    CHECK_EQ(udp_parse(b, sizeof b, 0, 0, &r), -WIRE_TRUNCATED);
}

TEST(padding_past_length_not_covered)
{
    struct udp_repr r;
    uint8_t b[46];   /* a minimum Ethernet payload's worth */
    memset(b, 0xa5, sizeof b);
    memcpy(b, dgram, sizeof dgram);
    CHECK_EQ(udp_parse(b, sizeof b, pseudo(12), 1, &r), UDP_HDR_LEN);
    CHECK_EQ(r.len, 12);
}

TEST(emit_known_bytes)
{
    uint8_t out[12];
    memset(out, 0, sizeof out);
    memcpy(out + 8, "abcd", 4);
    struct udp_repr r = {.sport = 1234, .dport = 53, .len = 12, .csum = 0x1111};
    CHECK_EQ(udp_emit(&r, out, sizeof out, pseudo(12)), UDP_HDR_LEN);
    CHECK_MEM(out, dgram, sizeof dgram);
}

TEST(computed_zero_sent_as_ffff)
{
    /* Pick the payload word so that the whole sum is ffff: the checksum
     * would be 0, which means "none", so RFC 768 sends ffff instead. */
    uint8_t out[10];
    struct udp_repr r = {.sport = 0x1111, .dport = 0x2222, .len = 10};
    wr16(out, r.sport);
    wr16(out + 2, r.dport);
    wr16(out + 4, r.len);
    wr16(out + 6, 0);
    wr16(out + 8, 0);
    uint16_t partial = (uint16_t)~csum_fold(csum_add(pseudo(10), out, 10));
    wr16(out + 8, (uint16_t)(0xffff - partial));
    CHECK_EQ(udp_emit(&r, out, sizeof out, pseudo(10)), UDP_HDR_LEN);
    CHECK_EQ(rd16(out + 6), 0xffff);
    struct udp_repr b;
    CHECK_EQ(udp_parse(out, sizeof out, pseudo(10), 1, &b), UDP_HDR_LEN);
    CHECK_EQ(b.csum, 0xffff);
}

TEST(emit_round_trip_odd_length)
{
    uint8_t out[1473];
    for (size_t i = 8; i < sizeof out; i++)
        out[i] = (uint8_t)(i * 131);
    struct udp_repr r = {.sport = 65535, .dport = 1, .len = sizeof out};
    CHECK_EQ(udp_emit(&r, out, sizeof out, pseudo(sizeof out)), UDP_HDR_LEN);
    CHECK(rd16(out + 6) != 0);
    struct udp_repr b;
    CHECK_EQ(udp_parse(out, sizeof out, pseudo(sizeof out), 1, &b), UDP_HDR_LEN);
    CHECK_EQ(b.sport, 65535);
    CHECK_EQ(b.dport, 1);
    CHECK_EQ(b.len, sizeof out);
}

TEST(emit_length_checks)
{
    uint8_t out[16];
    struct udp_repr r = {.len = 16};
    CHECK_EQ(udp_emit(&r, out, 15, 0), -WIRE_TRUNCATED);
    CHECK_EQ(udp_emit(&r, out, 7, 0), -WIRE_TRUNCATED);
    r.len = 7;
    CHECK_EQ(udp_emit(&r, out, sizeof out, 0), -WIRE_BAD_LEN);
    r.len = 8;
    CHECK_EQ(udp_emit(&r, out, sizeof out, pseudo(8)), UDP_HDR_LEN);
}

HARNESS_MAIN()
