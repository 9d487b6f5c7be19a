/* IPv4 header (RFC 791, RFC 1122 3.2.1) and dotted-quad text. */
#include "harness.h"
#include "wire/checksum.h"
#include "wire/ipv4.h"

/* A UDP datagram 192.168.0.1 -> 192.168.0.199, DF, TTL 64, 115 bytes; the
 * checksum b861 is the well-known value for exactly these bytes. */
static const uint8_t known_hdr[IPV4_HDR_LEN] = {
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
    0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
};

static uint8_t pkt[2048];

static void load_known(void)
{
    memset(pkt, 0x5a, sizeof pkt);
    memcpy(pkt, known_hdr, sizeof known_hdr);
}

static void fix_csum(uint8_t *b)
{
    size_t hl = (size_t)(b[0] & 0x0f) * 4;
    wr16(b + 10, 0);
    wr16(b + 10, csum_buf(b, hl));
}

TEST(parse_known)
{
    struct ipv4_repr r;
    load_known();
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
    CHECK_EQ(r.hdr_len, 20);
    CHECK_EQ(r.tos, 0);
    CHECK_EQ(r.total_len, 115);
    CHECK_EQ(r.id, 0);
    CHECK_EQ(r.df, 1);
    CHECK_EQ(r.mf, 0);
    CHECK_EQ(r.frag_off, 0);
    CHECK_EQ(r.ttl, 64);
    CHECK_EQ(r.proto, IPPROTO_UDP_);
    CHECK_EQ(r.src, 0xc0a80001);
    CHECK_EQ(r.dst, 0xc0a800c7);
    CHECK(!ipv4_is_fragment(&r));
}

TEST(parse_allows_trailing_bytes)
{
    struct ipv4_repr r;
    load_known();
    CHECK_EQ(ipv4_parse(pkt, 1500, &r), 20);
    CHECK_EQ(r.total_len, 115);
}

TEST(reject_truncated_header)
{
    struct ipv4_repr r;
    load_known();
    for (size_t len = 0; len < IPV4_HDR_LEN; len++) {
        CHECK_EQ(ipv4_parse(pkt, len, &r), -WIRE_TRUNCATED);
        CHECK_EQ(ipv4_parse_quoted(pkt, len, &r), -WIRE_TRUNCATED);
    }
}

/* Both parsers: a quoted header must be IPv4 too (RFC 792). */
TEST(reject_version)
{
    struct ipv4_repr r;
    static const uint8_t versions[] = {0, 1, 5, 6, 15};
    for (size_t i = 0; i < sizeof versions; i++) {
        load_known();
        pkt[0] = (uint8_t)(versions[i] << 4 | 5);
        fix_csum(pkt);
        CHECK_EQ(ipv4_parse(pkt, 115, &r), -WIRE_BAD_VERSION);
        CHECK_EQ(ipv4_parse_quoted(pkt, 28, &r), -WIRE_BAD_VERSION);
    }
}

/* Both parsers. */
TEST(reject_ihl_below_5)
{
    struct ipv4_repr r;
    for (uint8_t ihl = 0; ihl < 5; ihl++) {
        load_known();
        pkt[0] = (uint8_t)(0x40 | ihl);
        CHECK_EQ(ipv4_parse(pkt, 115, &r), -WIRE_BAD_HDRLEN);
        CHECK_EQ(ipv4_parse_quoted(pkt, 28, &r), -WIRE_BAD_HDRLEN);
    }
}

TEST(reject_ihl_past_buffer)
{
    struct ipv4_repr r;
    load_known();
    pkt[0] = 0x46;   /* 24-byte header in a 23-byte buffer */
    wr16(pkt + 2, 23);
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 23, &r), -WIRE_TRUNCATED);
    CHECK_EQ(ipv4_parse(pkt, 24, &r), -WIRE_BAD_LEN);   /* total 23 < 24 */
    wr16(pkt + 2, 24);
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 24, &r), 24);
}

TEST(reject_total_len_below_header)
{
    struct ipv4_repr r;
    load_known();
    wr16(pkt + 2, 19);
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), -WIRE_BAD_LEN);
    wr16(pkt + 2, 0);
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), -WIRE_BAD_LEN);
    wr16(pkt + 2, 20);   /* header only: valid */
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
}

TEST(reject_total_len_past_buffer)
{
    struct ipv4_repr r;
    load_known();
    CHECK_EQ(ipv4_parse(pkt, 114, &r), -WIRE_TRUNCATED);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
}

TEST(reject_bad_checksum)
{
    struct ipv4_repr r;
    for (size_t byte = 0; byte < IPV4_HDR_LEN; byte++) {
        if (byte == 0 || byte == 2 || byte == 3)
            continue;   /* those fail the length checks first */
        load_known();
        pkt[byte] ^= 0x04;
        CHECK_EQ(ipv4_parse(pkt, 115, &r), -WIRE_BAD_CSUM);
    }
    load_known();
    pkt[50] ^= 0xff;   /* the payload is not covered */
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
}

TEST(options_skipped_ihl_6_to_15)
{
    for (uint8_t ihl = 6; ihl <= 15; ihl++) {
        size_t hl = (size_t)ihl * 4;
        load_known();
        pkt[0] = (uint8_t)(0x40 | ihl);
        wr16(pkt + 2, (uint16_t)(hl + 8));
        /* Options are not interpreted: record route, garbage, whatever. */
        pkt[20] = 7;
        pkt[21] = (uint8_t)(hl - 20);
        for (size_t i = 22; i < hl; i++)
            pkt[i] = (uint8_t)(i * 37);
        fix_csum(pkt);
        struct ipv4_repr r;
        CHECK_EQ(ipv4_parse(pkt, hl + 8, &r), (int)hl);
        CHECK_EQ(r.hdr_len, hl);
        CHECK_EQ(r.total_len, hl + 8);
        CHECK_EQ(r.src, 0xc0a80001);
        CHECK_EQ(r.dst, 0xc0a800c7);
        /* The checksum covers the options. */
        pkt[hl - 1] ^= 0x10;
        CHECK_EQ(ipv4_parse(pkt, hl + 8, &r), -WIRE_BAD_CSUM);
    }
}

TEST(fragment_fields)
{
    struct ipv4_repr r;
    load_known();
    wr16(pkt + 6, IPV4_FLAG_MF | 185);   /* offset 185 * 8 = 1480 */
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
    CHECK_EQ(r.mf, 1);
    CHECK_EQ(r.df, 0);
    CHECK_EQ(r.frag_off, 1480);
    CHECK(ipv4_is_fragment(&r));

    wr16(pkt + 6, IPV4_FRAG_MASK);   /* last fragment at the largest offset */
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
    CHECK_EQ(r.mf, 0);
    CHECK_EQ(r.frag_off, 0x1fff * 8);
    CHECK(ipv4_is_fragment(&r));

    wr16(pkt + 6, IPV4_FLAG_MF);   /* first fragment */
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
    CHECK_EQ(r.frag_off, 0);
    CHECK(ipv4_is_fragment(&r));
}

TEST(reserved_flag_ignored)
{
    struct ipv4_repr r;
    load_known();
    wr16(pkt + 6, 0x8000 | IPV4_FLAG_DF);
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &r), 20);
    CHECK_EQ(r.df, 1);
    CHECK_EQ(r.mf, 0);
    CHECK_EQ(r.frag_off, 0);
}

TEST(emit_known_bytes)
{
    struct ipv4_repr r = {
        .tos = 0, .total_len = 115, .id = 0, .df = 1, .ttl = 64,
        .proto = IPPROTO_UDP_, .src = 0xc0a80001, .dst = 0xc0a800c7,
        .hdr_len = 44,   /* ignored: emit always writes 20 */
    };
    uint8_t out[32];
    memset(out, 0xcc, sizeof out);
    CHECK_EQ(ipv4_emit(&r, out, sizeof out), 20);
    CHECK_MEM(out, known_hdr, IPV4_HDR_LEN);
    CHECK_EQ(out[20], 0xcc);
}

TEST(emit_round_trip_fragment)
{
    struct ipv4_repr r = {
        .tos = 0xb8, .total_len = 1500, .id = 0xbeef, .mf = 1, .frag_off = 2960,
        .ttl = 1, .proto = IPPROTO_TCP_, .src = 0x0a000001, .dst = 0xffffffff,
    };
    memset(pkt, 0, sizeof pkt);
    CHECK_EQ(ipv4_emit(&r, pkt, sizeof pkt), 20);
    CHECK_EQ(csum_buf(pkt, 20), 0);
    struct ipv4_repr b;
    CHECK_EQ(ipv4_parse(pkt, 1500, &b), 20);
    CHECK_EQ(b.hdr_len, 20);
    CHECK_EQ(b.tos, r.tos);
    CHECK_EQ(b.total_len, r.total_len);
    CHECK_EQ(b.id, r.id);
    CHECK_EQ(b.df, 0);
    CHECK_EQ(b.mf, 1);
    CHECK_EQ(b.frag_off, 2960);
    CHECK_EQ(b.ttl, 1);
    CHECK_EQ(b.proto, IPPROTO_TCP_);
    CHECK_EQ(b.src, r.src);
    CHECK_EQ(b.dst, r.dst);
}

TEST(emit_truncated)
{
    struct ipv4_repr r = {.total_len = 20};
    uint8_t out[20];
    CHECK_EQ(ipv4_emit(&r, out, 19), -WIRE_TRUNCATED);
}

TEST(aton_valid)
{
    uint32_t a;
    CHECK_EQ(ipv4_aton("0.0.0.0", &a), 0);
    CHECK_EQ(a, 0);
    CHECK_EQ(ipv4_aton("255.255.255.255", &a), 0);
    CHECK_EQ(a, 0xffffffff);
    CHECK_EQ(ipv4_aton("10.0.0.1", &a), 0);
    CHECK_EQ(a, 0x0a000001);
    CHECK_EQ(ipv4_aton("192.168.100.200", &a), 0);
    CHECK_EQ(a, 0xc0a864c8);
}

TEST(aton_rejects)
{
    static const char *const bad[] = {
        "", "1", "1.2", "1.2.3", "1.2.3.4.", "1.2.3.4.5", "256.0.0.1", "1.2.3.256",
        "1.2.3.1000", "01.2.3.4", "1.2.3.04", "1.2.3.00", "0x1.2.3.4", "1..3.4", ".1.2.3",
        "1.2.3.4 ", " 1.2.3.4", "+1.2.3.4", "-1.2.3.4", "1.2.3.-4", "1,2,3,4",
        "16909060", "1.2.3.4/24", "0000000001.2.3.4",
    };
    uint32_t a = 0x12345678;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(ipv4_aton(bad[i], &a), -1);
        CHECK_EQ(a, 0x12345678);
    }
    CHECK_EQ(ipv4_aton(NULL, &a), -1);
}

TEST(ntoa_and_back)
{
    char s[16];
    static const uint32_t addrs[] = {0, 0xffffffff, 0x0a000001, 0xc0a864c8, 0x7f000001};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        memset(s, 'x', sizeof s);
        ipv4_ntoa(addrs[i], s);
        uint32_t back;
        CHECK_EQ(ipv4_aton(s, &back), 0);
        CHECK_EQ(back, addrs[i]);
    }
    ipv4_ntoa(0xffffffff, s);
    CHECK(strcmp(s, "255.255.255.255") == 0);
    ipv4_ntoa(0x0a000001, s);
    CHECK(strcmp(s, "10.0.0.1") == 0);
}

/* ---- the header quoted in an ICMP error (RFC 792) ---- */

TEST(quoted_header_with_total_len_past_buffer)
{
    struct ipv4_repr r;
    load_known();
    /* The header and 8 bytes of a 115-byte datagram, as an ICMP error quotes
     * it; a router's TTL rewrite has also broken the checksum. */
    pkt[8] = 1;
    CHECK_EQ(ipv4_parse(pkt, 28, &r), -WIRE_TRUNCATED);
    memset(&r, 0, sizeof r);
    CHECK_EQ(ipv4_parse_quoted(pkt, 28, &r), 20);
    CHECK_EQ(r.hdr_len, 20);
    CHECK_EQ(r.total_len, 115);
    CHECK_EQ(r.df, 1);
    CHECK_EQ(r.ttl, 1);
    CHECK_EQ(r.proto, IPPROTO_UDP_);
    CHECK_EQ(r.src, 0xc0a80001);
    CHECK_EQ(r.dst, 0xc0a800c7);
}

TEST(quoted_decodes_same_fields_as_parse)
{
    struct ipv4_repr a, b;
    load_known();
    wr16(pkt + 4, 0xbeef);
    wr16(pkt + 6, IPV4_FLAG_MF | 0x8000 | 37);   /* reserved flag ignored by both */
    pkt[1] = 0x2e;
    fix_csum(pkt);
    CHECK_EQ(ipv4_parse(pkt, 115, &a), 20);
    CHECK_EQ(ipv4_parse_quoted(pkt, 115, &b), 20);
    CHECK(a.hdr_len == b.hdr_len && a.tos == b.tos && a.total_len == b.total_len &&
          a.id == b.id && a.df == b.df && a.mf == b.mf && a.frag_off == b.frag_off &&
          a.ttl == b.ttl && a.proto == b.proto && a.src == b.src && a.dst == b.dst);
    CHECK_EQ(b.id, 0xbeef);
    CHECK_EQ(b.tos, 0x2e);
    CHECK_EQ(b.mf, 1);
    CHECK_EQ(b.df, 0);
    CHECK_EQ(b.frag_off, 37 * 8);
}

TEST(quoted_options_header)
{
    struct ipv4_repr r;
    load_known();
    pkt[0] = 0x47;   /* 28-byte header: 8 bytes of options */
    CHECK_EQ(ipv4_parse_quoted(pkt, 36, &r), 28);
    CHECK_EQ(r.hdr_len, 28);
}

TEST(quoted_truncated)
{
    struct ipv4_repr r;
    load_known();
    /* A header length past the bytes quoted is truncation, as in ipv4_parse
     * (shorter than 20 bytes: reject_truncated_header). */
    pkt[0] = 0x46;
    CHECK_EQ(ipv4_parse_quoted(pkt, 23, &r), -WIRE_TRUNCATED);
    CHECK_EQ(ipv4_parse_quoted(pkt, 24, &r), 24);
    pkt[0] = 0x4f;
    CHECK_EQ(ipv4_parse_quoted(pkt, 59, &r), -WIRE_TRUNCATED);
    CHECK_EQ(ipv4_parse_quoted(pkt, 60, &r), 60);
}

HARNESS_MAIN()
