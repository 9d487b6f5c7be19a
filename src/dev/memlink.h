/* The in-memory link ("memlink:NAME[,end=a|b][,latency_us=N][,qlen=N][,mtu=N][,l3]"):
 * two devices in one process opened with the same NAME are wired together,
 * for deterministic tests on a virtual clock. Single-threaded: both ends must
 * be driven from the same thread.
 *
 * Options apply to the end that names them and to the frames it SENDS:
 * latency_us delays them, qlen bounds how many may be in flight toward the
 * peer (excess counted dev_tx_drop), mtu drops larger frames on transmit.
 * The end is chosen automatically (a, then b) when not given. */
#ifndef UST_DEV_MEMLINK_H
#define UST_DEV_MEMLINK_H

#include <stdint.h>

#include "dev/dev.h"

#define MEMLINK_MAX_LINKS 16
#define MEMLINK_QLEN_DEFAULT 256
#define MEMLINK_QLEN_MAX 65536

/* Frames in flight toward d (sent by its peer, not yet received by d);
 * -1 if d is not a memlink device. */
int memlink_pending(struct dev *d);
/* Release time (ns) of the oldest frame in flight toward d, or UINT64_MAX
 * when there is none (or d is not a memlink device). */
uint64_t memlink_next_release(struct dev *d);

#endif
