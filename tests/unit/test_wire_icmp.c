/* ICMPv4 messages (RFC 792, RFC 1191). */
#include "harness.h"
#include "wire/checksum.h"
#include "wire/icmp.h"

/* Echo request id 0x1234 seq 1 "abcd": words 0800 1234 0001 6162 6364 sum to
 * defb, so the checksum is 2104. */
static const uint8_t echo_req[] = {
    0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, 'a', 'b', 'c', 'd',
};

/* Fragmentation needed, next-hop MTU 1400 (0x0578), quoting 4 header bytes:
 * 0304 + 0578 + 4500 + 001c = 4d98, checksum b267. */
static const uint8_t frag_needed[] = {
    0x03, 0x04, 0xb2, 0x67, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x00, 0x1c,
};

TEST(parse_echo_request)
{
    struct icmp_repr r;
    CHECK_EQ(icmp_parse(echo_req, sizeof echo_req, &r), ICMP_HDR_LEN);
    CHECK_EQ(r.type, ICMP_ECHO_REQUEST);
    CHECK_EQ(r.code, 0);
    CHECK_EQ(r.id, 0x1234);
    CHECK_EQ(r.seq, 1);
    CHECK_EQ(r.rest, 0x12340001);
    CHECK_EQ(r.mtu, 0);
    CHECK(r.payload == echo_req + 8);
    CHECK_EQ(r.payload_len, 4);
}

TEST(parse_frag_needed)
{
    struct icmp_repr r;
    CHECK_EQ(icmp_parse(frag_needed, sizeof frag_needed, &r), ICMP_HDR_LEN);
    CHECK_EQ(r.type, ICMP_DEST_UNREACH);
    CHECK_EQ(r.code, ICMP_FRAG_NEEDED);
    CHECK_EQ(r.mtu, 1400);
    CHECK_EQ(r.id, 0);
    CHECK_EQ(r.seq, 0);
    CHECK_EQ(r.payload_len, 4);
    CHECK_EQ(r.payload[0], 0x45);
}

TEST(parse_truncated)
{
    struct icmp_repr r;
    for (size_t len = 0; len < ICMP_HDR_LEN; len++)
        CHECK_EQ(icmp_parse(echo_req, len, &r), -WIRE_TRUNCATED);
}

TEST(parse_bad_checksum)
{
    struct icmp_repr r;
    for (size_t i = 0; i < sizeof echo_req; i++) {
        uint8_t b[sizeof echo_req];
        memcpy(b, echo_req, sizeof b);
        b[i] ^= 0x20;
        CHECK_EQ(icmp_parse(b, sizeof b, &r), -WIRE_BAD_CSUM);
    }
    /* The checksum covers the whole message: a cut message fails too. */
    CHECK_EQ(icmp_parse(echo_req, sizeof echo_req - 2, &r), -WIRE_BAD_CSUM);
}

TEST(emit_echo_known_bytes)
{
    struct icmp_repr r = {
        .type = ICMP_ECHO_REQUEST, .id = 0x1234, .seq = 1,
        .rest = 0xdeadbeef,   /* ignored for echo */
        .payload = (const uint8_t *)"abcd", .payload_len = 4,
    };
    uint8_t out[16];
    memset(out, 0x77, sizeof out);
    CHECK_EQ(icmp_emit(&r, out, sizeof out), 12);
    CHECK_MEM(out, echo_req, sizeof echo_req);
    CHECK_EQ(out[12], 0x77);
}

TEST(emit_frag_needed_known_bytes)
{
    const uint8_t quote[] = {0x45, 0x00, 0x00, 0x1c};
    struct icmp_repr r = {
        .type = ICMP_DEST_UNREACH, .code = ICMP_FRAG_NEEDED, .mtu = 1400,
        .rest = 0xffffffff, .payload = quote, .payload_len = sizeof quote,
    };
    uint8_t out[12];
    CHECK_EQ(icmp_emit(&r, out, sizeof out), 12);
    CHECK_MEM(out, frag_needed, sizeof frag_needed);
}

TEST(emit_port_unreach_zeroes_unused)
{
    struct icmp_repr r = {
        .type = ICMP_DEST_UNREACH, .code = ICMP_PORT_UNREACH, .mtu = 1400, .rest = 0xffffffff,
    };
    uint8_t out[8];
    CHECK_EQ(icmp_emit(&r, out, sizeof out), 8);
    CHECK_EQ(rd32(out + 4), 0);
    CHECK_EQ(csum_buf(out, 8), 0);
}

TEST(emit_other_types_write_rest)
{
    struct icmp_repr r = {.type = ICMP_REDIRECT, .code = 1, .rest = 0x0a0000fe};
    uint8_t out[8];
    CHECK_EQ(icmp_emit(&r, out, sizeof out), 8);
    struct icmp_repr b;
    CHECK_EQ(icmp_parse(out, 8, &b), 8);
    CHECK_EQ(b.type, ICMP_REDIRECT);
    CHECK_EQ(b.code, 1);
    CHECK_EQ(b.rest, 0x0a0000fe);
    CHECK_EQ(b.payload_len, 0);
}

TEST(emit_payload_in_place_and_overlapping)
{
    /* Payload already at buf + 8 (echo reply reusing the request buffer). */
    uint8_t buf[64];
    for (size_t i = 0; i < 40; i++)
        buf[8 + i] = (uint8_t)i;
    struct icmp_repr r = {.type = ICMP_ECHO_REPLY, .id = 7, .seq = 9,
                          .payload = buf + 8, .payload_len = 40};
    CHECK_EQ(icmp_emit(&r, buf, sizeof buf), 48);
    for (size_t i = 0; i < 40; i++)
        CHECK_EQ(buf[8 + i], i);
    CHECK_EQ(csum_buf(buf, 48), 0);

    /* Payload overlapping the destination (quoting from lower in a buffer). */
    for (size_t i = 0; i < 40; i++)
        buf[4 + i] = (uint8_t)(100 + i);
    r.payload = buf + 4;
    CHECK_EQ(icmp_emit(&r, buf, sizeof buf), 48);
    for (size_t i = 0; i < 40; i++)
        CHECK_EQ(buf[8 + i], 100 + i);
    struct icmp_repr b;
    CHECK_EQ(icmp_parse(buf, 48, &b), 8);
    CHECK_EQ(b.type, ICMP_ECHO_REPLY);
    CHECK_EQ(b.id, 7);
    CHECK_EQ(b.seq, 9);
}

TEST(emit_truncated)
{
    uint8_t out[16];
    struct icmp_repr r = {.type = ICMP_ECHO_REQUEST, .payload = out, .payload_len = 9};
    CHECK_EQ(icmp_emit(&r, out, 16), -WIRE_TRUNCATED);
    CHECK_EQ(icmp_emit(&r, out, 7), -WIRE_TRUNCATED);
    r.payload_len = 8;
    CHECK_EQ(icmp_emit(&r, out, 16), 16);
    r.payload_len = (size_t)-1;   /* would wrap 8 + len */
    CHECK_EQ(icmp_emit(&r, out, 16), -WIRE_TRUNCATED);
}

TEST(emit_parse_round_trip_odd_payload)
{
    uint8_t payload[33], out[41];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(0xf0 ^ i);
    struct icmp_repr r = {.type = ICMP_ECHO_REQUEST, .id = 0xffff, .seq = 0xfffe,
                          .payload = payload, .payload_len = sizeof payload};
    CHECK_EQ(icmp_emit(&r, out, sizeof out), 41);
    struct icmp_repr b;
    CHECK_EQ(icmp_parse(out, 41, &b), 8);
    CHECK_EQ(b.id, 0xffff);
    CHECK_EQ(b.seq, 0xfffe);
    CHECK_EQ(b.payload_len, 33);
    CHECK_MEM(b.payload, payload, 33);
}

HARNESS_MAIN()
