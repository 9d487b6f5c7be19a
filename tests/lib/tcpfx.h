/* Scripted TCP tests on top of stackfx: one connection whose peer the test
 * plays. The helpers keep the peer's own sequence state (what it sent, what
 * it acknowledges), so a test reads as the RFC's segment diagrams:
 *   tfx_send(x, TCP_ACK, "abc", 3);  tfx_expect(x, TCP_ACK, seq, ack, len). */
#ifndef UST_TEST_TCPFX_H
#define UST_TEST_TCPFX_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>

#include "stackfx.h"
#include "tcp/tcp.h"
#include "tcp/tcp_seg.h"

#define TFX_PEER_PORT 40000
#define TFX_US_PORT 7
#define TFX_PEER_ISN 1000000u
#define TFX_MS 1000000ULL

/* SYN options the peer offers. */
#define TFX_MSS  0x1
#define TFX_WS   0x2
#define TFX_SACK 0x4
#define TFX_TS   0x8
#define TFX_ALL  (TFX_MSS | TFX_WS | TFX_SACK | TFX_TS)

struct tfx {
    struct fixture fx;
    struct ust_tcp *l, *c;
    uint16_t lport, rport;           /* the stack's / the peer's port      */
    uint32_t iss;                    /* the stack's ISN                    */
    uint32_t seq;                    /* the peer's next sequence number    */
    uint32_t ack;                    /* what the peer acknowledges         */
    uint16_t win;                    /* window field the peer sends        */
    uint8_t peer_ws;
    int ts;                          /* timestamps negotiated              */
    uint32_t tsval;                  /* the peer's clock                   */
    uint32_t ts_recent;              /* the stack's last TSval             */
    unsigned events;
    struct fx_seg out;               /* the last segment received          */
    uint8_t buf[70000];
};

/* Open a stack (extra options NULL-ended, or NULL). 0 = ok. */
int tfx_open(struct tfx *x, const char *const *args);
/* LISTEN on TFX_US_PORT and complete a passive open with a SYN offering
 * opts (TFX_* bits, MSS mss, window scale ws); x->c is accepted. 0 = ok. */
int tfx_passive(struct tfx *x, unsigned opts, uint16_t mss, uint8_t ws);
/* Active open to the peer's port 80: SYN out, SYN,ACK in, ACK out. */
int tfx_active(struct tfx *x, unsigned opts, uint16_t mss, uint8_t ws);
/* A segment from the peer with the current seq/ack (and a timestamp when
 * negotiated). */
struct tcp_repr tfx_hdr(struct tfx *x, uint8_t flags);
/* Send it with len bytes of payload (pattern if data NULL); advances seq. */
void tfx_send(struct tfx *x, uint8_t flags, const void *data, size_t len);
/* Send an arbitrary header (seq/ack not advanced). */
void tfx_send_hdr(struct tfx *x, const struct tcp_repr *h, const void *data, size_t len);
/* The next segment from the stack into x->out; 0 = one was there. */
int tfx_recv(struct tfx *x);
/* 1 when the stack sent nothing. */
int tfx_quiet(struct tfx *x);
/* Checks the next segment: flags, seq, ack, payload length. Returns 0 on a
 * match, else prints what came and returns -1. */
int tfx_expect(struct tfx *x, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len);
/* The application sends n pattern bytes; returns what ust_tcp_send took. */
long tfx_app_send(struct tfx *x, size_t n);
/* Collect every pending segment; returns the count, fills seqs/lens. */
int tfx_collect(struct tfx *x, uint32_t *seqs, uint32_t *lens, int max);
/* The peer acknowledges up to ack (bare ACK with the current seq). */
void tfx_ack(struct tfx *x, uint32_t ack);
/* Advance the virtual clock. */
void tfx_advance(struct tfx *x, uint64_t ns);
/* Step the clock 1 ms at a time until the stack sends a segment (into
 * x->out) or max_ns passed. Returns the time waited, UINT64_MAX if none. */
uint64_t tfx_wait_seg(struct tfx *x, uint64_t max_ns);
/* Advance a long time in coarse steps (timers still fire in order). */
void tfx_advance_coarse(struct tfx *x, uint64_t ns, uint64_t step);
struct tcb *tfx_tcb(struct tfx *x);
/* Abort connections, close the listener, and check for leaks: 0 = none. */
int tfx_close(struct tfx *x);

#endif
