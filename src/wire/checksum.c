/* The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * The one's-complement sum does not care about byte order (RFC 1071 2(B)):
 * summing 16-bit words in the CPU's native order and swapping the bytes of
 * the folded result gives the sum of big-endian words. So the hot loop loads
 * 64 bits at a time in native order (memcpy: any alignment) and swaps once. */
#include "wire/checksum.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Each 8-byte step adds two values below 2^32 to a 64-bit accumulator, so a
 * chunk of this many bytes can never overflow it; longer buffers are summed
 * chunk by chunk. */
#define CSUM_CHUNK ((size_t)1 << 30)

/* Fold any 64-bit one's-complement accumulator to 16 bits. A nonzero input
 * never folds to 0, so "negative zero" 0xffff is kept, as RFC 1071 expects. */
static uint16_t csum_fold64(uint64_t a)
{
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffffu) + (a >> 16);
    a = (a & 0xffffu) + (a >> 16);
    a = (a & 0xffffu) + (a >> 16);
    return (uint16_t)a;
}

static uint64_t csum_load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Native-order sum of len (< CSUM_CHUNK) bytes, 2^16 == 1 (mod 0xffff) makes
 * the 32-bit halves of a native 64-bit word sum like its 16-bit words. */
static uint64_t csum_sum_native(const uint8_t *p, size_t len)
{
    uint64_t a0 = 0, a1 = 0;

    for (; len >= 32; p += 32, len -= 32) {
        uint64_t v0 = csum_load64(p), v1 = csum_load64(p + 8);
        uint64_t v2 = csum_load64(p + 16), v3 = csum_load64(p + 24);
        a0 += (v0 & 0xffffffffu) + (v0 >> 32) + (v2 & 0xffffffffu) + (v2 >> 32);
        a1 += (v1 & 0xffffffffu) + (v1 >> 32) + (v3 & 0xffffffffu) + (v3 >> 32);
    }
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v = csum_load64(p);
        a0 += (v & 0xffffffffu) + (v >> 32);
    }
    if (len >= 4) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        a1 += v;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        a0 += v;
        p += 2;
        len -= 2;
    }
    if (len) {
        /* The odd byte is the first byte of a word whose second byte is 0. */
        uint8_t pad[2] = {p[0], 0};
        uint16_t v;
        memcpy(&v, pad, sizeof v);
        a1 += v;
    }
    return a0 + a1;   /* each is below 2^62 for a chunk: no overflow */
}

static uint32_t csum_add32(uint32_t sum, uint32_t v)
{
    sum += v;
    return sum + (sum < v);   /* end-around carry: 2^32 == 1 (mod 0xffff) */
}

uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len) {
        /* Chunks stay even so the word boundaries never shift. */
        size_t n = len < CSUM_CHUNK ? len : CSUM_CHUNK;
        uint16_t part = csum_fold64(csum_sum_native(p, n));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        part = (uint16_t)(part << 8 | part >> 8);
#endif
        sum = csum_add32(sum, part);
        p += n;
        len -= n;
    }
    return sum;
}

/* Four 32-bit lanes (GCC vector extension: SSE2 on x86-64, plain code
 * elsewhere). Each lane adds a 32-bit word split in its 16-bit halves, below
 * 2^17 a step, so CSUM_VEC_STEPS steps of two vectors stay below 2^32; the
 * lanes are then added into the 64-bit total. 2^16 == 1 (mod 0xffff): halves
 * sum like the words they came from. */
typedef uint32_t csum_v4 __attribute__((vector_size(16)));
#define CSUM_VEC_STEPS ((size_t)1 << 14)
#define CSUM_STREAM_MIN ((size_t)4096)   /* bytes: below, a cached copy is cheaper */

static uint64_t csum_v4_total(csum_v4 v)
{
    return (uint64_t)v[0] + v[1] + v[2] + v[3];
}

/* Copy and sum 32 bytes a step with vectors; the tail as csum_sum_native. */
static uint64_t csum_copy_native(uint8_t *d, const uint8_t *s, size_t len)
{
    uint64_t total = 0;
#ifdef __SSE2__
    /* A large payload is not read again here: its lines go straight out
     * (non-temporal stores) instead of first being fetched for ownership,
     * which on a shared-memory wire means from the peer's core. Streaming
     * stores want 16-byte alignment; d moves in steps of 32, so it keeps it. */
    int stream = len >= CSUM_STREAM_MIN && !((uintptr_t)d & 15);
#endif
    while (len >= 32) {
        size_t steps = len / 32 < CSUM_VEC_STEPS ? len / 32 : CSUM_VEC_STEPS;
        csum_v4 acc0 = {0, 0, 0, 0}, acc1 = {0, 0, 0, 0};
        for (size_t i = 0; i < steps; i++, s += 32, d += 32) {
            csum_v4 v0, v1;
            memcpy(&v0, s, 16);
            memcpy(&v1, s + 16, 16);
#ifdef __SSE2__
            if (stream) {
                _mm_stream_si128((__m128i *)d, (__m128i)v0);
                _mm_stream_si128((__m128i *)(d + 16), (__m128i)v1);
            } else
#endif
            {
                memcpy(d, &v0, 16);
                memcpy(d + 16, &v1, 16);
            }
            acc0 += (v0 & 0xffffu) + (v0 >> 16);
            acc1 += (v1 & 0xffffu) + (v1 >> 16);
        }
        total += csum_v4_total(acc0) + csum_v4_total(acc1);
        len -= steps * 32;
    }
#ifdef __SSE2__
    if (stream)
        _mm_sfence();   /* order the streamed stores before the frame is handed on */
#endif
    memcpy(d, s, len);
    return total + csum_sum_native(s, len);
}

uint32_t csum_copy(uint32_t sum, void *dst, const void *src, size_t len)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (len) {
        size_t n = len < CSUM_CHUNK ? len : CSUM_CHUNK;
        uint16_t part = csum_fold64(csum_copy_native(d, s, n));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        part = (uint16_t)(part << 8 | part >> 8);
#endif
        sum = csum_add32(sum, part);
        d += n;
        s += n;
        len -= n;
    }
    return sum;
}

uint32_t csum_pseudo_ipv4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len)
{
    /* RFC 768 / RFC 9293 3.1: src, dst, zero, protocol, length. */
    uint64_t a = (uint64_t)(src >> 16) + (src & 0xffffu) + (dst >> 16) + (dst & 0xffffu);
    a += proto;
    a += l4_len;
    return (uint32_t)a;   /* at most 4 * 0xffff + 0xff + 0xffff: fits */
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it never turns a
 * valid checksum into 0xffff where a full recomputation would give 0. */
uint16_t csum_update16(uint16_t csum, uint16_t old_val, uint16_t new_val)
{
    uint32_t a = (uint16_t)~csum;
    a += (uint16_t)~old_val;
    a += new_val;
    return csum_fold(a);
}

uint16_t csum_update32(uint16_t csum, uint32_t old_val, uint32_t new_val)
{
    uint32_t a = (uint16_t)~csum;
    a += (uint16_t)~(old_val >> 16);
    a += (uint16_t)~old_val;
    a += new_val >> 16;
    a += new_val & 0xffffu;
    return csum_fold(a);
}
