/* core/hash: SipHash-2-4 against its published test vector, and the cheap
 * keyed table hash (hash_words_keyed): deterministic, keyed, and spreading
 * tuples a remote sender controls (ports, address low bytes) evenly over
 * the low bits that pick a bucket. */
#include "core/hash.h"
#include "harness.h"

/* SipHash paper, appendix A: key 00..0f, message 00..0e (15 bytes). */
TEST(siphash24_matches_the_paper_vector)
{
    struct hash_key k = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    uint8_t msg[15];
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    CHECK_EQ(siphash24(&k, msg, sizeof(msg)), 0xa129ca6149be45e5ULL);
}

/* Words shaped like a TCP 4-tuple over IPv4-mapped addresses. */
static void tuple_words(uint64_t w[5], uint32_t raddr, uint16_t rport, uint16_t lport)
{
    w[0] = 0;
    w[1] = 0xffff0000ULL | (uint64_t)0x0a000001 << 32;
    w[2] = 0;
    w[3] = 0xffff0000ULL | (uint64_t)raddr << 32;
    w[4] = (uint64_t)lport | (uint64_t)rport << 16;
}

TEST(keyed_hash_is_deterministic_and_depends_on_key_and_input)
{
    struct hash_key a = {1, 2}, b = {1, 3}, c = {4, 2};
    uint64_t w[5], v[5];
    tuple_words(w, 0x0a000002, 40000, 80);
    tuple_words(v, 0x0a000002, 40001, 80);
    CHECK_EQ(hash_words_keyed(&a, w, 5), hash_words_keyed(&a, w, 5));
    CHECK(hash_words_keyed(&a, w, 5) != hash_words_keyed(&b, w, 5));
    CHECK(hash_words_keyed(&a, w, 5) != hash_words_keyed(&c, w, 5));
    CHECK(hash_words_keyed(&a, w, 5) != hash_words_keyed(&a, v, 5));
    CHECK(hash_words_keyed(&a, w, 5) != hash_words_keyed(&a, w, 4));   /* length counts */
    uint64_t zero[2] = {0, 0};
    CHECK(hash_words_keyed(&a, zero, 1) != hash_words_keyed(&a, zero, 2));
}

/* Every input bit should flip about half of the low 20 output bits. */
TEST(keyed_hash_low_bits_avalanche)
{
    struct hash_key k = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    uint64_t w[5];
    tuple_words(w, 0xc0a80001, 12345, 443);
    uint64_t h0 = hash_words_keyed(&k, w, 5);
    for (int word = 0; word < 5; word++) {
        for (int bit = 0; bit < 64; bit++) {
            w[word] ^= 1ULL << bit;
            uint64_t d = (hash_words_keyed(&k, w, 5) ^ h0) & 0xfffff;
            w[word] ^= 1ULL << bit;
            int flips = __builtin_popcountll(d);
            CHECK(flips >= 2 && flips <= 18);
        }
    }
}

/* 65,536 tuples differing only in what a sender picks (its port, the low
 * byte of its address) over 4,096 buckets: 16 expected per bucket. */
static int max_bucket_load(const struct hash_key *k, int vary_addr)
{
    static uint16_t load[4096];
    memset(load, 0, sizeof(load));
    int max = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint64_t w[5];
        if (vary_addr)
            tuple_words(w, 0x0a000000 | (i & 0xff), (uint16_t)(50000 + (i >> 8)), 80);
        else
            tuple_words(w, 0x0a000002, (uint16_t)i, 80);
        uint32_t b = (uint32_t)hash_words_keyed(k, w, 5) & 4095;
        if (++load[b] > max)
            max = load[b];
    }
    return max;
}

TEST(keyed_hash_spreads_sender_chosen_tuples)
{
    struct hash_key k;
    for (int round = 0; round < 4; round++) {
        rand_bytes(&k, sizeof(k));
        CHECK(max_bucket_load(&k, 0) <= 48);
        CHECK(max_bucket_load(&k, 1) <= 48);
    }
}

HARNESS_MAIN()
