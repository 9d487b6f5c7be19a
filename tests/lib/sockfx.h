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

/* Pool, connection and link sizes of the two stacks (qlen 0: the link's
 * default). */
struct sfx_size {
    unsigned pkts, conns, qlen;
};

/* 0 on success; srv is the current stack afterwards. */
int sfx_open(struct sockfx *f);
/* The same with sizes of the caller's (e.g. thousands of connections). */
int sfx_open_sized(struct sockfx *f, const struct sfx_size *sz);
/* sfx_open, then a listener on srv at port, a blocking client on cli
 * connected to it and the server's end accepted with accept_flags (peer, if
 * not NULL, gets the client's address). cli is current afterwards. 0 = all
 * of it worked. */
int sfx_open_pair(struct sockfx *f, uint16_t port, int accept_flags, int *lfd, int *cfd, int *sfd,
                  struct sockaddr_in *peer);
/* The virtual clock the fixture installs (ust_socket_set_clock). */
uint64_t sfx_now(void *arg);
void sfx_idle(void *arg, uint64_t deadline);
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
