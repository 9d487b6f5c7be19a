/* Two stacks on one in-memory link, both driven by the calling thread
 * through the socket API on a virtual clock: a ustack client talks to a
 * ustack server in one process, exactly and repeatably.
 *   srv: 10.0.0.2 (MAC ...:02)    cli: 10.0.0.1 (MAC ...:01) */
#ifndef UST_TEST_SOCKFX_H
#define UST_TEST_SOCKFX_H

#include <stdint.h>

#include "ustack/socket.h"

#define SFX_SRV_IP "10.0.0.2"
#define SFX_CLI_IP "10.0.0.1"

struct sockfx {
    struct ust_stack *srv, *cli;
    uint64_t now;           /* the virtual clock, ns */
    uint64_t idle_calls;
};

/* 0 on success; srv is the current stack afterwards. */
int sfx_open(struct sockfx *f);
/* Close every socket, let the stacks settle, check no packet buffer
 * leaked, destroy. 0 = clean. */
int sfx_close(struct sockfx *f);
/* Make s the stack new sockets are created on. */
void sfx_use(struct ust_stack *s);
/* Run both stacks for ns of virtual time. */
void sfx_run(struct sockfx *f, uint64_t ns);
/* A sockaddr_in for "a.b.c.d", port. */
struct sockaddr_in sfx_addr(const char *ip, uint16_t port);

#endif
