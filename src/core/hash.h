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
