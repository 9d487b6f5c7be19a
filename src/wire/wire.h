/* Shared conventions of the wire layer.
 *
 * Every format has a plain struct ("repr") with fields in host byte order and
 * two pure functions: X_parse(buf, len, ..., &repr) and X_emit(&repr, buf, len, ...).
 * Parsers check every length once, return the header length (>= 0) on success
 * or a negated enum wire_err on failure, and never keep pointers into buf
 * except where a field says so (payload pointers). Emitters return the number
 * of bytes written or -WIRE_TRUNCATED when buf is too small. */
#ifndef UST_WIRE_WIRE_H
#define UST_WIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

enum wire_err {
    WIRE_OK = 0,
    WIRE_TRUNCATED,     /* buffer shorter than the header or a length field  */
    WIRE_BAD_VERSION,
    WIRE_BAD_HDRLEN,    /* header length field out of range                   */
    WIRE_BAD_LEN,       /* total/datagram length field inconsistent           */
    WIRE_BAD_CSUM,
    WIRE_BAD_OPTION,    /* malformed option list                              */
    WIRE_UNSUPPORTED,   /* well formed, but not something we speak            */
    WIRE_ERR_MAX
};

const char *wire_strerror(int err);   /* accepts err or -err */

/* Big-endian field access at a byte offset: no casts onto packet memory. */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

#endif
