/* Initial sequence numbers, SYN cookies and ephemeral port choice: the three
 * numbers TCP must make unpredictable to an off-path attacker. All three are
 * a keyed SipHash-2-4 of the connection's addresses, each input prefixed by a
 * distinct domain byte so the same per-stack key never gives the same value
 * for two purposes.
 *
 * SYN cookie layout (our ISN when we keep no state for a SYN, RFC 4987 3.6):
 *
 *   31      27 26  24 23                             0
 *   +---------+------+--------------------------------+
 *   | t mod 32| mssi |  SipHash(tuple, peer ISN, t,   |
 *   |         |      |          mssi) low 24 bits     |
 *   +---------+------+--------------------------------+
 *
 *   t    = now_ns / 64 s. The check tries t, t-1 and t-2 (the 5 bits only pick
 *          which of the three), so a cookie lives 128..192 s; the hash covers
 *          the full 64-bit t, so a cookie does not come back to life when the
 *          5-bit field wraps after 32 steps.
 *   mssi = index into syncookie_mss_table: the largest entry <= the MSS
 *          the peer offered. It is inside the hash, so it cannot be raised.
 *   A forger without the key succeeds with probability about 3 / 2^24 per
 *   guess (three counters tried); the caller rate-limits and counts failures.
 *
 * Options in the timestamp (when the peer sent TSopt; it echoes our TSval in
 * TSecr of the completing ACK, as Linux does): the low 6 bits of our TSval:
 *
 *   bit 5   : 1 = "this TSval carries cookie options" (always set by encode)
 *   bit 4   : SACK-permitted
 *   bits 3-0: window scale 0..14, 15 = the peer sent no WS option
 *
 * The clock's low 6 bits are replaced; if that moves the TSval ahead of the
 * clock, 64 is subtracted, so the TSval is within 63 ticks below the clock and
 * every later TSval of the connection (taken from the clock) is >= it, which
 * keeps the peer's PAWS check (RFC 7323 5) from rejecting our next segments. */
#include "tcp/tcp_isn.h"

#include <string.h>

enum isn_domain {
    ISN_DOMAIN_ISN = 1,
    ISN_DOMAIN_COOKIE = 2,
    ISN_DOMAIN_PORT = 3,
};

#define COOKIE_STEP_NS (64ULL * 1000000000ULL)
#define COOKIE_MAX_AGE 2
#define COOKIE_T_SHIFT 27
#define COOKIE_T_MASK 0x1fu
#define COOKIE_MSS_SHIFT 24
#define COOKIE_MSS_MASK 0x7u
#define COOKIE_HASH_MASK 0x00ffffffu

#define COOKIE_TS_BITS 6
#define COOKIE_TS_MASK ((1u << COOKIE_TS_BITS) - 1)
#define COOKIE_TS_PRESENT 0x20u
#define COOKIE_TS_SACK 0x10u
#define COOKIE_TS_WS_MASK 0x0fu
#define COOKIE_WS_NONE 15
#define TCP_MAX_WSCALE 14      /* RFC 7323 2.3 */

/* Sorted. 536: the IPv4 default (RFC 9293 3.7.1); 1220: IPv6 minimum MTU
 * 1280 - 60; 1440/1452/1460: Ethernet behind tunnels, PPPoE, plain; 4312 and
 * 8960: common jumbo frames (with room for options), 1380 for VPN paths. */
static const uint16_t syncookie_mss_table[8] = {536, 1220, 1380, 1440, 1452, 1460, 4312, 8960};

/* Hash input: a fixed layout written byte by byte, so struct padding or
 * host order never changes the result. */
struct isn_msg {
    uint8_t b[1 + 16 + 16 + 2 + 2 + 4 + 8 + 1];
    size_t len;
};

static void msg_put(struct isn_msg *m, const void *p, size_t n)
{
    memcpy(m->b + m->len, p, n);
    m->len += n;
}

static void msg_put_u16(struct isn_msg *m, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    msg_put(m, b, 2);
}

static void msg_put_u32(struct isn_msg *m, uint32_t v)
{
    msg_put_u16(m, (uint16_t)(v >> 16));
    msg_put_u16(m, (uint16_t)v);
}

static void msg_put_u64(struct isn_msg *m, uint64_t v)
{
    msg_put_u32(m, (uint32_t)(v >> 32));
    msg_put_u32(m, (uint32_t)v);
}

static void msg_put_tuple(struct isn_msg *m, uint8_t domain, const struct tcp_tuple *t)
{
    m->len = 0;
    msg_put(m, &domain, 1);
    msg_put(m, t->laddr.b, 16);
    msg_put(m, t->raddr.b, 16);
    msg_put_u16(m, t->lport);
    msg_put_u16(m, t->rport);
}

/* RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
 * M incremented every 4 microseconds. */
uint32_t tcp_isn(const struct hash_key *key, const struct tcp_tuple *t, uint64_t now_ns)
{
    struct isn_msg m;
    msg_put_tuple(&m, ISN_DOMAIN_ISN, t);
    uint32_t f = (uint32_t)siphash24(key, m.b, m.len);
    return (uint32_t)(now_ns / 4000) + f;
}

static uint32_t cookie_hash(const struct hash_key *key, const struct tcp_tuple *t, uint32_t peer_isn,
                            uint64_t counter, uint8_t mssi)
{
    struct isn_msg m;
    msg_put_tuple(&m, ISN_DOMAIN_COOKIE, t);
    msg_put_u32(&m, peer_isn);
    msg_put_u64(&m, counter);
    msg_put(&m, &mssi, 1);
    return (uint32_t)siphash24(key, m.b, m.len) & COOKIE_HASH_MASK;
}

static uint32_t cookie_build(const struct hash_key *key, const struct tcp_tuple *t, uint32_t peer_isn,
                             uint64_t counter, uint8_t mssi)
{
    return ((uint32_t)counter & COOKIE_T_MASK) << COOKIE_T_SHIFT | (uint32_t)mssi << COOKIE_MSS_SHIFT |
           cookie_hash(key, t, peer_isn, counter, mssi);
}

/* The largest table MSS not above what the peer offered; an offer below the
 * smallest entry still gets 536, the size every IPv4 host must accept
 * (RFC 9293 3.7.1), as a stateful SYN would with a clamp. */
static uint8_t cookie_mss_index(uint16_t mss)
{
    uint8_t i = 0;
    while (i + 1 < 8 && syncookie_mss_table[i + 1] <= mss)
        i++;
    return i;
}

uint32_t syncookie_make(const struct hash_key *key, const struct tcp_tuple *t, uint32_t peer_isn, uint16_t mss,
                        uint64_t now_ns)
{
    return cookie_build(key, t, peer_isn, now_ns / COOKIE_STEP_NS, cookie_mss_index(mss));
}

int syncookie_check(const struct hash_key *key, const struct tcp_tuple *t, uint32_t peer_isn, uint32_t cookie,
                    uint64_t now_ns, uint16_t *mss)
{
    uint64_t now_t = now_ns / COOKIE_STEP_NS;
    uint32_t t_bits = cookie >> COOKIE_T_SHIFT & COOKIE_T_MASK;
    uint8_t mssi = (uint8_t)(cookie >> COOKIE_MSS_SHIFT & COOKIE_MSS_MASK);
    for (uint64_t age = 0; age <= COOKIE_MAX_AGE && age <= now_t; age++) {
        uint64_t counter = now_t - age;
        if (((uint32_t)counter & COOKIE_T_MASK) != t_bits)
            continue;
        if (cookie_build(key, t, peer_isn, counter, mssi) != cookie)
            return -1;
        if (mss)
            *mss = syncookie_mss_table[mssi];
        return 0;
    }
    return -1;
}

static uint32_t cookie_ts_bits(const struct syncookie_opts *o)
{
    uint32_t ws = o->wscale == COOKIE_WS_NONE ? COOKIE_WS_NONE
                  : o->wscale > TCP_MAX_WSCALE ? TCP_MAX_WSCALE
                                               : o->wscale;
    return COOKIE_TS_PRESENT | (o->sack_ok ? COOKIE_TS_SACK : 0) | ws;
}

uint32_t syncookie_ts_encode(uint32_t ts_clock, const struct syncookie_opts *o)
{
    uint32_t ts = (ts_clock & ~COOKIE_TS_MASK) | cookie_ts_bits(o);
    /* Never ahead of the clock (see the file comment: PAWS at the peer). */
    if ((int32_t)(ts - ts_clock) > 0)
        ts -= 1u << COOKIE_TS_BITS;
    return ts;
}

/* An echo without the marker bit was not made by syncookie_ts_encode: report
 * no options (has_ts = 0), the safe reading of a cookie ACK we cannot trust
 * to carry them. */
void syncookie_ts_decode(uint32_t ts_ecr, struct syncookie_opts *o)
{
    o->mss = 0;
    if (!(ts_ecr & COOKIE_TS_PRESENT)) {
        o->wscale = COOKIE_WS_NONE;
        o->sack_ok = 0;
        o->has_ts = 0;
        return;
    }
    o->wscale = (uint8_t)(ts_ecr & COOKIE_TS_WS_MASK);
    o->sack_ok = (ts_ecr & COOKIE_TS_SACK) != 0;
    o->has_ts = 1;
}

/* RFC 6056 3.3.3: offset = F(local_IP, remote_IP, remote_port, secret_key);
 * port = min + (next_ephemeral + offset) % num_ephemeral. */
uint16_t tcp_port_candidate(const struct hash_key *key, const union ip_addr *laddr, const union ip_addr *raddr,
                            uint16_t rport, uint32_t counter, uint16_t lo, uint16_t hi)
{
    if (lo > hi) {
        uint16_t tmp = lo;
        lo = hi;
        hi = tmp;
    }
    struct isn_msg m = {.len = 0};
    uint8_t domain = ISN_DOMAIN_PORT;
    msg_put(&m, &domain, 1);
    msg_put(&m, laddr->b, 16);
    msg_put(&m, raddr->b, 16);
    msg_put_u16(&m, rport);
    uint32_t offset = (uint32_t)siphash24(key, m.b, m.len);
    uint32_t num = (uint32_t)hi - lo + 1;
    return (uint16_t)(lo + (uint32_t)(((uint64_t)offset + counter) % num));
}
