#include "core/hash.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct sip_state {
    uint64_t v0, v1, v2, v3;
};

static inline void sip_round(struct sip_state *s)
{
    s->v0 += s->v1; s->v1 = rotl64(s->v1, 13); s->v1 ^= s->v0; s->v0 = rotl64(s->v0, 32);
    s->v2 += s->v3; s->v3 = rotl64(s->v3, 16); s->v3 ^= s->v2;
    s->v0 += s->v3; s->v3 = rotl64(s->v3, 21); s->v3 ^= s->v0;
    s->v2 += s->v1; s->v1 = rotl64(s->v1, 17); s->v1 ^= s->v2; s->v2 = rotl64(s->v2, 32);
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline void sip_compress(struct sip_state *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

uint64_t siphash24(const struct hash_key *key, const void *data, size_t len)
{
    const uint8_t *p = data;
    struct sip_state s = {
        key->k0 ^ 0x736f6d6570736575ULL, key->k1 ^ 0x646f72616e646f6dULL,
        key->k0 ^ 0x6c7967656e657261ULL, key->k1 ^ 0x7465646279746573ULL,
    };
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8)
        sip_compress(&s, load_le64(p + i));
    /* Last block: remaining bytes, length in the top byte. */
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)p[full + i] << (8 * i);
    sip_compress(&s, b);
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void rand_bytes(void *buf, size_t len)
{
    uint8_t *out = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == len)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct hash_key k = {(uint64_t)ts.tv_nsec, (uint64_t)ts.tv_sec};
    for (uint64_t ctr = 0; got < len; ctr++) {
        uint64_t v = siphash24(&k, &ctr, sizeof(ctr));
        size_t n = len - got < 8 ? len - got : 8;
        memcpy(out + got, &v, n);
        got += n;
    }
}
