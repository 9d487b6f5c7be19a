/* The Internet checksum (RFC 1071) with incremental update (RFC 1624). */
#ifndef UST_WIRE_CHECKSUM_H
#define UST_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add len bytes at data to a running 32-bit one's-complement accumulator.
 * The data is taken as a sequence of big-endian 16-bit words; an odd final
 * byte is padded with zero. Chaining partial sums is only valid when every
 * chunk but the last has an even length. */
uint32_t csum_add(uint32_t sum, const void *data, size_t len);

/* Copy len bytes from src to dst (not overlapping) and add them to sum as
 * csum_add would: one pass over a payload being sent instead of two. */
uint32_t csum_copy(uint32_t sum, void *dst, const void *src, size_t len);
/* Fold the accumulator to 16 bits and complement it: the value to store in a
 * checksum field (host byte order). A packet verifies when folding the sum
 * over all of it (checksum field included) gives 0. */
static inline uint16_t csum_fold(uint32_t sum)
{
    /* Inline: it runs several times per packet. Two end-around folds take
     * any 32-bit value to 16 bits (the first leaves at most 0x1fffe). A
     * nonzero sum never folds to 0, so "negative zero" stays (RFC 1071). */
    sum = (sum & 0xffffu) + (sum >> 16);
    sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

/* The one's-complement checksum of a whole buffer. */
static inline uint16_t csum_buf(const void *data, size_t len) { return csum_fold(csum_add(0, data, len)); }

/* Accumulator of the IPv4 pseudo header (RFC 768, RFC 9293 3.1). Addresses
 * host order; l4_len is the transport header plus payload length. */
uint32_t csum_pseudo_ipv4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len);

/* RFC 1624 eqn. 3: new checksum after a 16-bit field changed old -> new. */
uint16_t csum_update16(uint16_t csum, uint16_t old_val, uint16_t new_val);
uint16_t csum_update32(uint16_t csum, uint32_t old_val, uint32_t new_val);

#endif
