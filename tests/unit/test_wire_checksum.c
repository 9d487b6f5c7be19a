/* The fast Internet checksum against a byte-at-a-time reference (RFC 1071),
 * the pseudo header and the RFC 1624 incremental updates. */
#include "harness.h"
#include "wire/checksum.h"
#include "wire/wire.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng_next();
}

/* RFC 1071 read literally: big-endian 16-bit words, odd byte padded. */
static uint32_t naive_sum(uint32_t sum, const uint8_t *p, size_t len)
{
    uint64_t a = sum;
    for (size_t i = 0; i + 1 < len; i += 2)
        a += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        a += (uint32_t)p[len - 1] << 8;
    while (a >> 16)
        a = (a & 0xffff) + (a >> 16);
    return (uint32_t)a;
}

static uint16_t naive_csum(const uint8_t *p, size_t len)
{
    return (uint16_t)~naive_sum(0, p, len);
}

TEST(rfc1071_example)
{
    /* RFC 1071 3: these bytes sum to ddf2 (after the end-around carries). */
    const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    CHECK_EQ(csum_fold(csum_add(0, b, sizeof b)), (uint16_t)~0xddf2);
    CHECK_EQ(csum_buf(b, sizeof b), 0x220d);
}

TEST(empty_and_zero)
{
    const uint8_t z[4] = {0};
    CHECK_EQ(csum_add(0, z, 0), 0);
    CHECK_EQ(csum_buf(z, 0), 0xffff);
    CHECK_EQ(csum_buf(z, sizeof z), 0xffff);
    CHECK_EQ(csum_add(1234, NULL, 0), 1234);
}

TEST(odd_byte_is_high_half)
{
    const uint8_t b[] = {0x12, 0x34, 0x56};
    /* 0x1234 + 0x5600 */
    CHECK_EQ(csum_fold(csum_add(0, b, 3)), (uint16_t)~0x6834);
    const uint8_t one[] = {0xab};
    CHECK_EQ(csum_buf(one, 1), (uint16_t)~0xab00);
}

TEST(random_all_lengths_and_alignments)
{
    static uint8_t buf[2000 + 16];
    for (size_t len = 0; len <= 2000; len++) {
        for (size_t align = 0; align < 8; align++) {
            uint8_t *p = buf + align;
            rng_fill(p, len);
            uint32_t seed = rng_next();
            CHECK_EQ(csum_buf(p, len), naive_csum(p, len));
            /* The accumulator may differ in representation, never in value. */
            CHECK_EQ(csum_fold(csum_add(seed, p, len)), (uint16_t)~naive_sum(seed, p, len));
        }
    }
}

/* csum_copy is csum_add plus a copy: every length, both alignments, a
 * running sum carried in, and the bytes land unchanged. */
TEST(copy_and_sum_equals_sum_then_copy)
{
    static uint8_t src[1100], dst[1100];
    for (size_t len = 0; len <= 1090; len += (len < 80 ? 1 : 37)) {
        for (size_t a = 0; a < 2; a++) {
            rng_fill(src, sizeof src);
            memset(dst, 0xa5, sizeof dst);
            uint32_t start = rng_next() & 0xffffff;
            uint32_t want = csum_add(start, src + a, len);
            CHECK_EQ(csum_fold(csum_copy(start, dst + a, src + a, len)), csum_fold(want));
            CHECK_MEM(dst + a, src + a, len);
            CHECK_EQ(dst[a + len], 0xa5);   /* nothing written past the end */
        }
    }
    /* Large copies take the streaming-store path when the destination is
     * 16-byte aligned, the cached one otherwise. */
    static uint8_t bsrc[65600], bdst[65600] __attribute__((aligned(64)));
    const size_t lens[] = {4095, 4096, 4097, 5000, 9001, 65000};
    const size_t aligns[] = {0, 1, 16, 33};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (size_t j = 0; j < sizeof(aligns) / sizeof(aligns[0]); j++) {
            size_t len = lens[i], a = aligns[j];
            rng_fill(bsrc, len + 64);
            memset(bdst, 0x5a, sizeof bdst);
            uint32_t want = csum_add(7, bsrc + 3, len);
            CHECK_EQ(csum_fold(csum_copy(7, bdst + a, bsrc + 3, len)), csum_fold(want));
            CHECK_MEM(bdst + a, bsrc + 3, len);
            CHECK_EQ(bdst[a + len], 0x5a);
        }
    }
}

TEST(all_ones_no_overflow)
{
    static uint8_t buf[65536 + 3];
    memset(buf, 0xff, sizeof buf);
    CHECK_EQ(csum_buf(buf, sizeof buf), naive_csum(buf, sizeof buf));
    CHECK_EQ(csum_fold(csum_add(0xffffffffu, buf, sizeof buf)),
             (uint16_t)~naive_sum(0xffffffffu, buf, sizeof buf));
}

TEST(chained_even_chunks_equal_whole)
{
    uint8_t buf[1500];
    rng_fill(buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 2) {
        uint32_t s = csum_add(0, buf, cut);
        s = csum_add(s, buf + cut, sizeof buf - cut);
        CHECK_EQ(csum_fold(s), csum_buf(buf, sizeof buf));
    }
}

TEST(stored_checksum_verifies)
{
    uint8_t buf[301];
    for (int round = 0; round < 200; round++) {
        size_t len = 4 + rng_next() % 297;
        rng_fill(buf, len);
        wr16(buf + 2, 0);
        wr16(buf + 2, csum_buf(buf, len));
        CHECK_EQ(csum_buf(buf, len), 0);
    }
}

TEST(pseudo_ipv4_matches_bytes)
{
    for (int round = 0; round < 1000; round++) {
        uint32_t src = rng_next(), dst = rng_next();
        uint8_t proto = (uint8_t)rng_next();
        uint16_t l4 = (uint16_t)rng_next();
        uint8_t ph[12];
        wr32(ph, src);
        wr32(ph + 4, dst);
        ph[8] = 0;
        ph[9] = proto;
        wr16(ph + 10, l4);
        CHECK_EQ(csum_fold(csum_pseudo_ipv4(src, dst, proto, l4)), naive_csum(ph, sizeof ph));
        /* And it chains in front of data like any accumulator. */
        uint8_t data[9];
        rng_fill(data, sizeof data);
        uint8_t all[21];
        memcpy(all, ph, 12);
        memcpy(all + 12, data, 9);
        CHECK_EQ(csum_fold(csum_add(csum_pseudo_ipv4(src, dst, proto, l4), data, 9)),
                 naive_csum(all, sizeof all));
    }
}

TEST(update16_equals_recompute)
{
    uint8_t hdr[20];
    for (int round = 0; round < 20000; round++) {
        rng_fill(hdr, sizeof hdr);
        wr16(hdr + 10, 0);
        uint16_t c = csum_buf(hdr, sizeof hdr);
        size_t off = 2 * (rng_next() % 10);
        if (off == 10)
            continue;
        uint16_t oldv = rd16(hdr + off), newv = (uint16_t)rng_next();
        if (round % 7 == 0)
            newv = oldv;   /* no-op update keeps the checksum */
        wr16(hdr + off, newv);
        CHECK_EQ(csum_update16(c, oldv, newv), csum_buf(hdr, sizeof hdr));
    }
}

TEST(update32_equals_recompute)
{
    uint8_t hdr[20];
    for (int round = 0; round < 20000; round++) {
        rng_fill(hdr, sizeof hdr);
        wr16(hdr + 10, 0);
        uint16_t c = csum_buf(hdr, sizeof hdr);
        size_t off = 12 + 4 * (rng_next() % 2);   /* an address */
        uint32_t oldv = rd32(hdr + off), newv = rng_next();
        wr32(hdr + off, newv);
        CHECK_EQ(csum_update32(c, oldv, newv), csum_buf(hdr, sizeof hdr));
    }
}

TEST(update_keeps_packet_verifying)
{
    /* TTL decrement as a router does it (RFC 1624 4 example shape). */
    uint8_t hdr[20];
    rng_fill(hdr, sizeof hdr);
    wr16(hdr + 10, 0);
    wr16(hdr + 10, csum_buf(hdr, sizeof hdr));
    for (int i = 0; i < 300; i++) {
        uint16_t oldw = rd16(hdr + 8);
        hdr[8]--;
        wr16(hdr + 10, csum_update16(rd16(hdr + 10), oldw, rd16(hdr + 8)));
        CHECK_EQ(csum_buf(hdr, sizeof hdr), 0);
    }
}

TEST(strerror_names)
{
    CHECK(strcmp(wire_strerror(-WIRE_BAD_CSUM), "bad checksum") == 0);
    CHECK(strcmp(wire_strerror(WIRE_TRUNCATED), "truncated") == 0);
    CHECK(strcmp(wire_strerror(WIRE_OK), "ok") == 0);
    CHECK(strcmp(wire_strerror(WIRE_ERR_MAX), "unknown error") == 0);
    CHECK(strcmp(wire_strerror(-1000), "unknown error") == 0);
    CHECK(strcmp(wire_strerror(-2147483647 - 1), "unknown error") == 0);
    for (int e = 0; e < WIRE_ERR_MAX; e++)
        CHECK(wire_strerror(e) != NULL && wire_strerror(-e) == wire_strerror(e));
}

HARNESS_MAIN()
