/* The worker group's hooks into the stack (internal). A stack with
 * s->wk == NULL is alone and none of these are called. */
#ifndef UST_API_WORKERS_H
#define UST_API_WORKERS_H

#include <poll.h>

#include "core/pkt.h"
#include "net/addr.h"

struct ust_stack;

/* Receive path, before link_input: 1 when the frame belongs to another
 * worker and was handed over (or dropped and counted), 0 to process it here.
 * ARP is copied to every other worker and processed here too. */
int workers_steer_frame(struct ust_stack *s, struct pkt *p);
/* After reassembly (p->l3 == p->off, a whole datagram): 1 when handed over. */
int workers_steer_datagram(struct ust_stack *s, struct pkt *p);
/* Would a connection with this tuple be steered to this worker? (source
 * port choice for active opens) */
int workers_port_is_mine(const struct ust_stack *s, const struct tcp_tuple *t);
/* Once per poll: take packets other workers handed over, get back our own
 * that they are done with, ring the bells of workers we handed packets to. */
void workers_poll(struct ust_stack *s);
/* The descriptor to sleep on besides the device's; after waking, clear it. */
int workers_poll_fds(struct ust_stack *s, struct pollfd *fds, int max);
void workers_woken(struct ust_stack *s);

#endif
