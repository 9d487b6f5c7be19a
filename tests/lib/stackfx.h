/* A stack under test on the in-memory link with a virtual clock; the test
 * plays the peer (10.0.0.1, MAC 02:00:00:00:00:01) forging frames and
 * reading what the stack (10.0.0.2, 02:00:00:00:00:02) sends back. */
#ifndef UST_TEST_STACKFX_H
#define UST_TEST_STACKFX_H

#include <stddef.h>
#include <stdint.h>

#include "net/stack.h"

#define FX_US_IP   0x0a000002u
#define FX_PEER_IP 0x0a000001u

extern const uint8_t fx_us_mac[6];
extern const uint8_t fx_peer_mac[6];

struct fixture {
    struct ust_stack *s;
    struct dev peer;
    struct pkt_pool peer_pool;
    struct ust_counters peer_ctr;
    uint64_t now;
    struct ust_udp *echo;
};

/* Open a stack with optional extra "--opt=value" arguments (NULL-ended). */
int fx_open_args(struct fixture *fx, const char *const *extra);
static inline int fx_open(struct fixture *fx, const char *extra)
{
    const char *args[2] = {extra, NULL};
    return fx_open_args(fx, args);
}
/* Drain, then check that every buffer is back in its pool; destroys. 0 = no leak. */
int fx_close(struct fixture *fx);

void fx_poll(struct fixture *fx);
void fx_advance(struct fixture *fx, uint64_t ns);
void fx_send(struct fixture *fx, const uint8_t *frame, size_t len);
size_t fx_recv(struct fixture *fx, uint8_t *buf, size_t cap);
void fx_drain(struct fixture *fx);
uint64_t fx_ctr(struct fixture *fx, const char *name);
/* Teach the stack the peer's MAC (an ARP request from it). */
void fx_learn_peer(struct fixture *fx);

/* Frame builders: the payload of build_ip is already at f + 34. */
size_t fx_build_eth(uint8_t *f, const uint8_t *dst, uint16_t type);
size_t fx_build_arp(uint8_t *f, uint16_t op, uint32_t spa, const uint8_t *sha, uint32_t tpa);
size_t fx_build_ip(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto, uint16_t id, uint16_t frag_off, int mf,
                   size_t plen);
size_t fx_build_udp(uint8_t *f, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len);

/* ---- TCP ---- */

struct fx_seg {
    struct tcp_repr h;
    const uint8_t *data;
    size_t len;
};

/* Send a TCP segment from the peer (h: ports, seq, ack, flags, win, opt). */
void fx_tcp_send(struct fixture *fx, const struct tcp_repr *h, const void *data, size_t len);
/* The next TCP segment from the stack, parsed (checksum verified) into seg
 * with its payload copied to buf. Skips ARP frames. 0 = one was there. */
int fx_tcp_recv(struct fixture *fx, struct fx_seg *seg, uint8_t *buf, size_t cap);

#endif
