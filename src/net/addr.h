/* IP addresses, IPv6-ready from the start: 16 bytes, IPv4 held in the
 * IPv4-mapped form ::ffff:a.b.c.d (RFC 4291 2.5.5.2). */
#ifndef UST_NET_ADDR_H
#define UST_NET_ADDR_H

#include <stdint.h>
#include <string.h>

#include "core/hash.h"

union ip_addr {
    uint8_t b[16];
    uint32_t w[4];
};

static inline union ip_addr addr_from_v4(uint32_t v4)
{
    union ip_addr a = {.b = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
                             (uint8_t)(v4 >> 24), (uint8_t)(v4 >> 16), (uint8_t)(v4 >> 8), (uint8_t)v4}};
    return a;
}

static inline uint32_t addr_v4(const union ip_addr *a)
{
    return (uint32_t)a->b[12] << 24 | (uint32_t)a->b[13] << 16 | (uint32_t)a->b[14] << 8 | a->b[15];
}

static inline int addr_eq(const union ip_addr *a, const union ip_addr *b)
{
    return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

/* The unspecified address, in either family (:: or ::ffff:0.0.0.0). */
static inline int addr_is_any(const union ip_addr *a)
{
    union ip_addr v4any = addr_from_v4(0);
    return (!a->w[0] && !a->w[1] && !a->w[2] && !a->w[3]) || addr_eq(a, &v4any);
}

/* The 4-tuple of a connection, seen from our side. */
struct tcp_tuple {
    union ip_addr laddr, raddr;
    uint16_t lport, rport;
};

static inline int tuple_eq(const struct tcp_tuple *a, const struct tcp_tuple *b)
{
    return a->lport == b->lport && a->rport == b->rport && addr_eq(&a->laddr, &b->laddr) &&
           addr_eq(&a->raddr, &b->raddr);
}

/* Bucket hash of a 4-tuple for the connection and TIME-WAIT tables: the
 * keyed multiply-fold (core/hash.h), cheap enough for every segment and
 * every port tried by connect, keyed so a peer cannot aim at one bucket. */
static inline uint32_t tuple_hash_keyed(const struct hash_key *key, const struct tcp_tuple *t)
{
    uint64_t w[5];
    memcpy(w, &t->laddr, 16);
    memcpy(w + 2, &t->raddr, 16);
    w[4] = (uint64_t)t->lport | (uint64_t)t->rport << 16;
    return (uint32_t)hash_words_keyed(key, w, 5);
}

#endif
