/* Keyed hashing and randomness. SipHash-2-4 (Aumasson & Bernstein, 2012)
 * keeps table placement and IP IDs unpredictable to a remote sender; the
 * xorshift generator serves non-security choices (jitter, test impairment). */
#ifndef UST_CORE_HASH_H
#define UST_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

struct hash_key {
    uint64_t k0, k1;
};

uint64_t siphash24(const struct hash_key *key, const void *data, size_t len);

/* A cheap keyed hash for table placement on the per-packet path (connection
 * lookup per segment), where SipHash costs too much. Each pair of 64-bit
 * words is xored with the secret and folded through one 64x64->128 bit
 * multiply (high half xor low half), chained; a last fold spreads every
 * input bit into the low bits that pick the bucket. Like Linux's
 * jhash-with-secret it is no MAC: it only keeps bucket placement
 * unpredictable to a remote sender who does not know the key, which is what
 * defeats hash flooding. Not for ISNs, cookies or anything that must resist
 * key recovery: use siphash24 there. */
static inline uint64_t hash_fold(uint64_t a, uint64_t b)
{
    unsigned __int128 p = (unsigned __int128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static inline uint64_t hash_words_keyed(const struct hash_key *key, const uint64_t *w, size_t n)
{
    /* Odd constants from the fractional digits of pi (nothing up the sleeve). */
    const uint64_t c0 = 0x243f6a8885a308d3ULL, c1 = 0x13198a2e03707345ULL, c2 = 0xa4093822299f31d1ULL;
    uint64_t h = key->k0 ^ (n * c0);
    size_t i = 0;
    for (; i + 1 < n; i += 2)
        h = hash_fold(w[i] ^ key->k1 ^ c1, w[i + 1] ^ h ^ c2);
    if (i < n)
        h = hash_fold(w[i] ^ key->k1 ^ c2, h ^ c1);
    return hash_fold(h ^ key->k0 ^ c0, key->k1 ^ c1);
}

/* Fill buf from the kernel's CSPRNG (getrandom); falls back to the clock
 * mixed through SipHash only if getrandom is unavailable. */
void rand_bytes(void *buf, size_t len);

/* xorshift64*: fast, statistically fine, not for secrets. State must not be 0. */
static inline uint64_t xrand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
