/* TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018). */
#include "harness.h"
#include "wire/checksum.h"
#include "wire/tcp.h"

#define SRC 0x0a000001u
#define DST 0x0a000002u

static uint32_t pseudo(size_t l4_len)
{
    return csum_pseudo_ipv4(SRC, DST, 6, (uint16_t)l4_len);
}

/* A SYN as Linux sends it: 50000 -> 80, seq 01020304, window 64240, options
 * MSS 1460, SACK permitted, TS 1/0, NOP, WS 7. Checksum 7165 over the pseudo
 * header 10.0.0.1 -> 10.0.0.2, length 40, worked out by hand from RFC 9293 3.1. */
static const uint8_t syn[40] = {
    0xc3, 0x50, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0x71, 0x65, 0x00, 0x00,
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

/* A segment with the given option bytes (a multiple of 4 long) and a valid
 * checksum; returns its length. */
static size_t build(uint8_t *b, const uint8_t *opts, size_t olen)
{
    memset(b, 0, TCP_HDR_LEN);
    wr16(b, 1000);
    wr16(b + 2, 2000);
    wr32(b + 4, 0x11111111);
    wr32(b + 8, 0x22222222);
    b[12] = (uint8_t)((TCP_HDR_LEN + olen) / 4 << 4);
    b[13] = TCP_ACK;
    wr16(b + 14, 512);
    if (olen)
        memcpy(b + TCP_HDR_LEN, opts, olen);
    size_t len = TCP_HDR_LEN + olen;
    wr16(b + 16, csum_fold(csum_add(pseudo(len), b, len)));
    return len;
}

static int parse_opts(const uint8_t *opts, size_t olen, struct tcp_repr *r)
{
    uint8_t b[TCP_MAX_HDR_LEN];
    size_t len = build(b, opts, olen);
    return tcp_parse(b, len, pseudo(len), 1, r);
}

TEST(parse_known_syn)
{
    struct tcp_repr r;
    CHECK_EQ(tcp_parse(syn, sizeof syn, pseudo(40), 1, &r), 40);
    CHECK_EQ(r.sport, 50000);
    CHECK_EQ(r.dport, 80);
    CHECK_EQ(r.seq, 0x01020304);
    CHECK_EQ(r.ack, 0);
    CHECK_EQ(r.hdr_len, 40);
    CHECK_EQ(r.flags, TCP_SYN);
    CHECK_EQ(r.win, 64240);
    CHECK_EQ(r.csum, 0x7165);
    CHECK_EQ(r.urg, 0);
    CHECK(r.opt.has_mss && r.opt.mss == 1460);
    CHECK(r.opt.has_ws && r.opt.wscale == 7);
    CHECK(r.opt.sack_ok);
    CHECK(r.opt.has_ts && r.opt.ts_val == 1 && r.opt.ts_ecr == 0);
    CHECK_EQ(r.opt.sack_count, 0);
}

TEST(emit_known_syn)
{
    struct tcp_repr r = {
        .sport = 50000, .dport = 80, .seq = 0x01020304, .flags = TCP_SYN, .win = 64240,
        .hdr_len = 99, .csum = 0xdead,   /* both ignored and computed */
        .opt = {.has_mss = 1, .mss = 1460, .sack_ok = 1, .has_ts = 1, .ts_val = 1,
                .has_ws = 1, .wscale = 7},
    };
    CHECK_EQ(tcp_opts_len(&r.opt), 20);
    uint8_t out[64];
    memset(out, 0xee, sizeof out);
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, pseudo(40)), 40);
    CHECK_MEM(out, syn, sizeof syn);
    CHECK_EQ(out[40], 0xee);
}

TEST(emit_data_ts_layout)
{
    /* NOP NOP TS: the data-segment shape (RFC 7323 Appendix A). */
    struct tcp_repr r = {.flags = TCP_ACK, .opt = {.has_ts = 1, .ts_val = 0x01020304,
                                                   .ts_ecr = 0x05060708}};
    const uint8_t want[12] = {1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t out[64];
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, 0), 32);
    CHECK_EQ(out[12], 8 << 4);
    CHECK_MEM(out + 20, want, sizeof want);
}

TEST(emit_data_ts_sack_layout)
{
    struct tcp_repr r = {.flags = TCP_ACK,
                         .opt = {.has_ts = 1, .ts_val = 1, .ts_ecr = 2, .sack_count = 3,
                                 .sack = {{10, 20}, {30, 40}, {50, 60}}}};
    uint8_t out[64];
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, 0), 56);
    const uint8_t want[36] = {
        8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
        5, 26, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40, 0, 0, 0, 50, 0, 0, 0, 60,
    };
    CHECK_MEM(out + 20, want, sizeof want);
    /* SACK alone gets the NOP NOP in front. */
    r.opt.has_ts = 0;
    r.opt.sack_count = 1;
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, 0), 32);
    const uint8_t want1[12] = {1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20};
    CHECK_MEM(out + 20, want1, sizeof want1);
}

TEST(emit_syn_sack_perm_only_and_ws_only)
{
    struct tcp_repr r = {.flags = TCP_SYN, .opt = {.sack_ok = 1}};
    uint8_t out[64];
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, 0), 24);
    const uint8_t want[4] = {1, 1, 4, 2};
    CHECK_MEM(out + 20, want, 4);
    r.opt = (struct tcp_opts){.has_ws = 1, .wscale = 14};
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, 0), 24);
    const uint8_t want_ws[4] = {1, 3, 3, 14};
    CHECK_MEM(out + 20, want_ws, 4);
    r.opt = (struct tcp_opts){0};
    CHECK_EQ(tcp_opts_len(&r.opt), 0);
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 0, 0), 20);
    CHECK_EQ(out[12], 5 << 4);
}

/* Walks an emitted option area: only known kinds and NOP padding, no EOL. */
static int opts_are_clean(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (p[i] == TCPOPT_NOP) {
            i++;
            continue;
        }
        if (p[i] != TCPOPT_MSS && p[i] != TCPOPT_WS && p[i] != TCPOPT_SACK_PERM &&
            p[i] != TCPOPT_TS && p[i] != TCPOPT_SACK)
            return 0;
        if (i + 1 >= len || p[i + 1] < 2)
            return 0;
        i += p[i + 1];
    }
    return i == len;
}

static void check_combo(HARNESS_ARGS, unsigned mask, unsigned nsack)
{
    struct tcp_repr r = {
        .sport = 443, .dport = 61000, .seq = 0xfffffff0u + mask, .ack = 0x80000000u ^ nsack,
        .flags = (uint8_t)(mask * 17), .win = (uint16_t)(mask * 4099), .urg = (uint16_t)nsack,
        .opt = {.has_mss = mask & 1, .has_ws = (mask >> 1) & 1, .sack_ok = (mask >> 2) & 1,
                .has_ts = (mask >> 3) & 1, .mss = 536 + mask, .wscale = (uint8_t)mask,
                .ts_val = 0xa0a0a0a0u ^ mask, .ts_ecr = 0x0b0b0b0bu ^ nsack,
                .sack_count = (uint8_t)nsack},
    };
    for (unsigned i = 0; i < TCP_MAX_SACK; i++) {
        r.opt.sack[i].left = 1000 * (i + 1) + mask;
        r.opt.sack[i].right = 1000 * (i + 1) + 500 + nsack;
    }
    uint8_t out[TCP_MAX_HDR_LEN + 7];
    for (size_t i = 0; i < 7; i++)
        out[sizeof out - 7 + i] = (uint8_t)(0x31 * i);   /* payload placeholder */
    size_t olen = tcp_opts_len(&r.opt);
    CHECK(olen % 4 == 0 && olen <= TCP_MAX_HDR_LEN - TCP_HDR_LEN);
    size_t payload = sizeof out - TCP_HDR_LEN - olen;
    size_t total = TCP_HDR_LEN + olen + payload;
    CHECK_EQ(tcp_emit(&r, out, sizeof out, payload, pseudo(total)), (int)(TCP_HDR_LEN + olen));
    CHECK(opts_are_clean(out + TCP_HDR_LEN, olen));

    struct tcp_repr b;
    memset(&b, 0x6b, sizeof b);
    CHECK_EQ(tcp_parse(out, total, pseudo(total), 1, &b), (int)(TCP_HDR_LEN + olen));
    CHECK_EQ(b.sport, r.sport);
    CHECK_EQ(b.dport, r.dport);
    CHECK_EQ(b.seq, r.seq);
    CHECK_EQ(b.ack, r.ack);
    CHECK_EQ(b.flags, r.flags);
    CHECK_EQ(b.win, r.win);
    CHECK_EQ(b.urg, r.urg);
    CHECK_EQ(b.hdr_len, TCP_HDR_LEN + olen);
    CHECK_EQ(b.opt.has_mss, r.opt.has_mss);
    CHECK_EQ(b.opt.has_ws, r.opt.has_ws);
    CHECK_EQ(b.opt.sack_ok, r.opt.sack_ok);
    CHECK_EQ(b.opt.has_ts, r.opt.has_ts);
    if (r.opt.has_mss)
        CHECK_EQ(b.opt.mss, r.opt.mss);
    if (r.opt.has_ws)
        CHECK_EQ(b.opt.wscale, r.opt.wscale);
    if (r.opt.has_ts) {
        CHECK_EQ(b.opt.ts_val, r.opt.ts_val);
        CHECK_EQ(b.opt.ts_ecr, r.opt.ts_ecr);
    }
    /* All blocks are sent unless they do not fit; then as many as fit. */
    CHECK(b.opt.sack_count <= nsack);
    if (b.opt.sack_count < nsack)
        CHECK(b.hdr_len + 8 > TCP_MAX_HDR_LEN);
    for (unsigned i = 0; i < b.opt.sack_count; i++) {
        CHECK_EQ(b.opt.sack[i].left, r.opt.sack[i].left);
        CHECK_EQ(b.opt.sack[i].right, r.opt.sack[i].right);
    }
}

TEST(round_trip_every_option_combination)
{
    for (unsigned mask = 0; mask < 16; mask++) {
        for (unsigned nsack = 0; nsack <= TCP_MAX_SACK; nsack++) {
            check_combo(HARNESS_PASS, mask, nsack);
            if (*harness_failed)
                fprintf(stderr, "  (mask %u, sack %u)\n", mask, nsack);
            CHECK_OK();
        }
    }
}

TEST(sack_blocks_trimmed_to_fit)
{
    /* MSS + TS + SACK-perm + WS take 20 bytes: two blocks fit, not four. */
    struct tcp_opts o = {.has_mss = 1, .has_ts = 1, .sack_ok = 1, .has_ws = 1, .sack_count = 4};
    CHECK_EQ(tcp_opts_len(&o), 40);
    o.sack_count = 2;
    CHECK_EQ(tcp_opts_len(&o), 40);
    o.sack_count = 1;
    CHECK_EQ(tcp_opts_len(&o), 32);
    /* TS + 4 blocks: three fit. */
    struct tcp_opts d = {.has_ts = 1, .sack_count = 4};
    CHECK_EQ(tcp_opts_len(&d), 36);
    /* Alone, all four fit; a count above 4 is clamped. */
    struct tcp_opts s = {.sack_count = 4};
    CHECK_EQ(tcp_opts_len(&s), 36);
    s.sack_count = 200;
    CHECK_EQ(tcp_opts_len(&s), 36);
}

TEST(reject_header_lengths)
{
    uint8_t b[64];
    struct tcp_repr r;
    size_t len = build(b, NULL, 0);
    for (size_t l = 0; l < TCP_HDR_LEN; l++)
        CHECK_EQ(tcp_parse(b, l, 0, 0, &r), -WIRE_TRUNCATED);
    for (uint8_t doff = 0; doff < 5; doff++) {
        b[12] = (uint8_t)(doff << 4);
        CHECK_EQ(tcp_parse(b, len, 0, 0, &r), -WIRE_BAD_HDRLEN);
    }
    b[12] = 6 << 4;   /* 24-byte header in 20 bytes */
    CHECK_EQ(tcp_parse(b, len, 0, 0, &r), -WIRE_TRUNCATED);
    b[12] = 15 << 4;
    CHECK_EQ(tcp_parse(b, 59, 0, 0, &r), -WIRE_TRUNCATED);
}

TEST(reject_bad_checksum)
{
    uint8_t b[64];
    struct tcp_repr r;
    const uint8_t opts[4] = {2, 4, 5, 0xb4};
    size_t len = build(b, opts, 4);
    CHECK_EQ(tcp_parse(b, len, pseudo(len), 1, &r), 24);
    for (size_t i = 0; i < len; i++) {
        if (i == 12)
            continue;   /* data offset: fails the length check first */
        b[i] ^= 0x08;
        CHECK_EQ(tcp_parse(b, len, pseudo(len), 1, &r), -WIRE_BAD_CSUM);
        b[i] ^= 0x08;
    }
    CHECK_EQ(tcp_parse(b, len, pseudo(len + 1), 1, &r), -WIRE_BAD_CSUM);
    b[5] ^= 1;
    CHECK_EQ(tcp_parse(b, len, pseudo(len), 0, &r), 24);   /* verify off */
    /* A damaged segment counts as damaged even when its options are bad too. */
    b[21] = 0;   /* MSS length 0 */
    CHECK_EQ(tcp_parse(b, len, pseudo(len), 1, &r), -WIRE_BAD_CSUM);
    CHECK_EQ(tcp_parse(b, len, pseudo(len), 0, &r), -WIRE_BAD_OPTION);
}

TEST(payload_covered_by_checksum)
{
    uint8_t out[100];
    struct tcp_repr r = {.sport = 1, .dport = 2, .flags = TCP_ACK | TCP_PSH};
    for (size_t i = 20; i < 100; i++)
        out[i] = (uint8_t)i;
    CHECK_EQ(tcp_emit(&r, out, sizeof out, 79, pseudo(99)), 20);
    struct tcp_repr b;
    CHECK_EQ(tcp_parse(out, 99, pseudo(99), 1, &b), 20);
    out[98] ^= 1;
    CHECK_EQ(tcp_parse(out, 99, pseudo(99), 1, &b), -WIRE_BAD_CSUM);
}

TEST(malformed_option_lengths)
{
    struct tcp_repr r;
    static const struct {
        uint8_t bytes[8];
        const char *what;
    } bad[] = {
        {{2, 0, 5, 0xb4}, "MSS length 0"},
        {{2, 1, 5, 0xb4}, "MSS length 1"},
        {{30, 0, 1, 1}, "unknown length 0"},
        {{30, 1, 1, 1}, "unknown length 1"},
        {{2, 3, 5, 1}, "MSS length 3"},
        {{2, 5, 5, 0xb4, 0, 1, 1, 1}, "MSS length 5"},
        {{3, 2, 1, 1}, "WS length 2"},
        {{3, 4, 7, 0}, "WS length 4"},
        {{4, 3, 0, 1}, "SACK-perm length 3"},
        {{4, 4, 0, 0}, "SACK-perm length 4"},
        {{8, 8, 0, 0, 0, 1, 0, 0}, "TS length 8"},
        {{5, 2, 1, 1}, "SACK length 2"},
        {{5, 6, 0, 0, 0, 1, 1, 1}, "SACK length 6"},
        {{1, 1, 1, 2}, "kind at last byte, no length"},
        {{2, 8, 5, 0xb4}, "length past header"},
        {{30, 5, 0, 0}, "unknown, length past header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t olen = bad[i].bytes[4] || bad[i].bytes[5] || bad[i].bytes[6] || bad[i].bytes[7]
                          ? 8 : 4;
        int rc = parse_opts(bad[i].bytes, olen, &r);
        if (rc != -WIRE_BAD_OPTION)
            fprintf(stderr, "  case: %s\n", bad[i].what);
        CHECK_EQ(rc, -WIRE_BAD_OPTION);
    }
}

TEST(malformed_ts_and_sack_lengths)
{
    struct tcp_repr r;
    uint8_t o[40];
    /* TS of length 9, 11 inside a big enough area. */
    for (uint8_t l = 9; l <= 11; l += 2) {
        memset(o, TCPOPT_NOP, sizeof o);
        o[0] = TCPOPT_TS;
        o[1] = l;
        CHECK_EQ(parse_opts(o, 12, &r), -WIRE_BAD_OPTION);
    }
    /* SACK lengths that are not 8n + 2. */
    static const uint8_t sl[] = {3, 9, 11, 17, 19, 25, 33, 35};
    for (size_t i = 0; i < sizeof sl; i++) {
        memset(o, 0, sizeof o);
        o[0] = TCPOPT_SACK;
        o[1] = sl[i];
        CHECK_EQ(parse_opts(o, 40, &r), -WIRE_BAD_OPTION);
    }
    /* 8n + 2 for n = 1..4 is fine; n = 5 cannot fit in 40 bytes. */
    for (uint8_t n = 1; n <= 4; n++) {
        memset(o, 0, sizeof o);
        o[0] = TCPOPT_SACK;
        o[1] = (uint8_t)(2 + 8 * n);
        wr32(o + 2 + 8 * (n - 1), 77);
        CHECK_EQ(parse_opts(o, 40, &r), 60);
        CHECK_EQ(r.opt.sack_count, n);
        CHECK_EQ(r.opt.sack[n - 1].left, 77);
    }
    memset(o, 0, sizeof o);
    o[0] = TCPOPT_SACK;
    o[1] = 42;
    CHECK_EQ(parse_opts(o, 40, &r), -WIRE_BAD_OPTION);
}

TEST(unknown_options_skipped)
{
    struct tcp_repr r;
    /* Kind 30 (MPTCP) length 6, kind 254 (experimental) length 2, then MSS. */
    const uint8_t o[12] = {30, 6, 0xff, 0xff, 0xff, 0xff, 254, 2, 2, 4, 0x05, 0x78};
    CHECK_EQ(parse_opts(o, sizeof o, &r), 32);
    CHECK(r.opt.has_mss);
    CHECK_EQ(r.opt.mss, 1400);
    CHECK(!r.opt.has_ws && !r.opt.has_ts && !r.opt.sack_ok);
    CHECK_EQ(r.opt.sack_count, 0);
    /* The unknown option's body looks like an MSS option: it is not one. */
    const uint8_t o2[4] = {99, 4, 2, 4};
    CHECK_EQ(parse_opts(o2, sizeof o2, &r), 24);
    CHECK(!r.opt.has_mss);
}

TEST(eol_ends_the_list)
{
    struct tcp_repr r;
    /* MSS, EOL, then bytes that would be malformed and an option that
     * would be recognised: both are padding after EOL. */
    const uint8_t o[12] = {2, 4, 0x02, 0x18, 0, 2, 0, 3, 3, 9, 0, 0};
    CHECK_EQ(parse_opts(o, sizeof o, &r), 32);
    CHECK(r.opt.has_mss);
    CHECK_EQ(r.opt.mss, 536);
    CHECK(!r.opt.has_ws);
    /* EOL first: nothing at all. */
    const uint8_t o2[4] = {0, 2, 4, 5};
    CHECK_EQ(parse_opts(o2, sizeof o2, &r), 24);
    CHECK(!r.opt.has_mss);
    /* NOPs only. */
    const uint8_t o3[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_EQ(parse_opts(o3, sizeof o3, &r), 28);
}

TEST(options_cleared_between_parses)
{
    struct tcp_repr r;
    CHECK_EQ(tcp_parse(syn, sizeof syn, pseudo(40), 1, &r), 40);
    CHECK(r.opt.has_mss);
    uint8_t b[20];
    size_t len = build(b, NULL, 0);
    CHECK_EQ(tcp_parse(b, len, pseudo(len), 1, &r), 20);
    CHECK(!r.opt.has_mss && !r.opt.has_ws && !r.opt.sack_ok && !r.opt.has_ts);
    CHECK_EQ(r.opt.sack_count, 0);
}

TEST(wscale_kept_as_sent_and_duplicates)
{
    struct tcp_repr r;
    /* WS 20 is reported as sent (the receiver clamps). A repeated MSS: the
     * last one is reported. */
    const uint8_t o[12] = {1, 3, 3, 20, 2, 4, 0x01, 0x00, 2, 4, 0x02, 0x00};
    CHECK_EQ(parse_opts(o, sizeof o, &r), 32);
    CHECK(r.opt.has_ws);
    CHECK_EQ(r.opt.wscale, 20);
    CHECK_EQ(r.opt.mss, 512);
}

TEST(flags_and_reserved_bits)
{
    uint8_t b[20];
    struct tcp_repr r;
    build(b, NULL, 0);
    b[12] |= 0x0f;   /* reserved bits and AE: ignored */
    b[13] = 0xff;
    CHECK_EQ(tcp_parse(b, 20, 0, 0, &r), 20);
    CHECK_EQ(r.flags, TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG | TCP_ECE | TCP_CWR);
    CHECK_EQ(r.hdr_len, 20);
}

TEST(emit_truncated)
{
    struct tcp_repr r = {.opt = {.has_mss = 1, .mss = 1460}};
    uint8_t out[64];
    CHECK_EQ(tcp_emit(&r, out, 23, 0, 0), -WIRE_TRUNCATED);
    CHECK_EQ(tcp_emit(&r, out, 24, 1, 0), -WIRE_TRUNCATED);
    CHECK_EQ(tcp_emit(&r, out, 24, (size_t)-1, 0), -WIRE_TRUNCATED);
    CHECK_EQ(tcp_emit(&r, out, 24, 0, pseudo(24)), 24);
}

HARNESS_MAIN()
