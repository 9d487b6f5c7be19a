/* The harness link ("pdlink:NAME"): an L3 device (bare IPv4 packets, no
 * Ethernet, no ARP) whose frames go through two bounded in-process queues
 * to and from a test harness living in the same process — the packetdrill
 * adapter. Unlike memlink, the harness end is not a second stack but plain
 * calls, and it may run on other threads than the stack: every queue is
 * guarded by the link's own mutex, and a harness thread can sleep until the
 * stack transmits (pdlink_take).
 *
 * The harness creates the link (pdlink_create) before the stack opens the
 * device with the same NAME, and destroys it after the stack is gone. */
#ifndef UST_DEV_PDLINK_H
#define UST_DEV_PDLINK_H

#include <stddef.h>
#include <stdint.h>

#include "dev/dev.h"

#define PDLINK_QLEN 256             /* frames queued in each direction       */
#define PDLINK_MTU_DEFAULT 1500
#define PDLINK_MTU_MAX 65535

struct pdlink;

extern const struct dev_ops dev_pdlink_ops;

/* A new link NAME carrying packets of up to mtu bytes (68..65535). NULL and
 * errno: EEXIST (name taken), EINVAL, ENOMEM, ENFILE (too many links). */
struct pdlink *pdlink_create(const char *name, uint32_t mtu);
/* Wakes every pdlink_take waiter (they fail with ECANCELED), then frees the
 * link. The stack's device must be closed first. */
void pdlink_destroy(struct pdlink *l);
/* Make pdlink_take fail with ECANCELED from now on (threads still waiting
 * wake up); used before stopping the harness. */
void pdlink_cancel(struct pdlink *l);

/* Queue one packet toward the stack. 0, or -1 and errno: EMSGSIZE (empty or
 * larger than the MTU), ENOBUFS (queue full), ENOTCONN (no stack opened
 * the device yet). */
int pdlink_inject(struct pdlink *l, const void *buf, size_t len);
/* Take the oldest packet the stack sent, waiting until deadline_ns (on the
 * ust_now_ns clock) for one. Copies up to cap bytes (a longer packet is
 * truncated); *len is the number copied, *stamp_ns the time the stack sent
 * it (the now of its poll). 0, or -1 and errno: EAGAIN (deadline passed),
 * ECANCELED (pdlink_cancel). */
int pdlink_take(struct pdlink *l, void *buf, size_t cap, size_t *len, uint64_t *stamp_ns,
                uint64_t deadline_ns);
/* A descriptor that is readable while packets toward the stack wait. */
int pdlink_rx_fd(const struct pdlink *l);
/* Packets the stack sent that nobody took yet. */
uint32_t pdlink_tx_pending(struct pdlink *l);

#endif
