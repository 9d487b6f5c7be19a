/* The stack's counters and connection list, exported in shared memory for
 * tools/ust-stat (the nstat / ss of ustack) without stopping the stack.
 *
 * Each stack owns one POSIX shm object, /dev/shm/ustack.<pid> for the first
 * stack of a process and ustack.<pid>.<n> for the others (workers), created
 * at ust_stack_create and unlinked at ust_stack_destroy.
 *
 * Cost: nothing per packet. statexport_publish is called once per poll and
 * returns after one comparison unless STATX_CHECK_NS has passed; then it
 * copies the counters (about 1 KiB) at most every STATX_COUNTERS_NS, and
 * walks the connection table only when a reader asked for it (a reader
 * bumps `request`), at most every STATX_CONNS_MIN_NS and at most
 * STATX_MAX_CONNS entries. A stack nobody watches never walks its table.
 * Memory: the object is about 3 MiB of address space, sparse: pages are
 * touched only as entries are written.
 *
 * Consistency: each snapshot is a seqlock. The writer makes the sequence odd,
 * writes, makes it even (release); a reader copies between two loads of the
 * sequence and retries when it was odd or changed. The writer never waits. */
#ifndef UST_API_STATEXPORT_H
#define UST_API_STATEXPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/counters.h"

struct ust_stack;

#define STATX_MAGIC 0x3130787461747375ULL        /* "ustatx01" little-endian */
#define STATX_VERSION 1
#define STATX_MAX_CONNS 65536u
#define STATX_MAX_STACKS 256                     /* per process            */
#define STATX_CHECK_NS (10ULL * 1000000ULL)      /* look for readers        */
#define STATX_COUNTERS_NS (100ULL * 1000000ULL)  /* counters refreshed      */
#define STATX_CONNS_MIN_NS (50ULL * 1000000ULL)  /* table walks at most 20/s */
#define STATX_NAME_LEN 48

/* One connection, as ss shows it. Addresses are IPv6 or IPv4-mapped. */
struct statx_conn {
    uint8_t laddr[16], raddr[16];
    uint16_t lport, rport;            /* host order                           */
    uint8_t state;                    /* enum tcp_state (tcp/tcp.h)           */
    uint8_t pad[3];
    uint32_t recvq;                   /* unread bytes; listener: accept queue */
    uint32_t sendq;                   /* unacked + unsent; listener: backlog  */
};

struct statx_shm {
    uint64_t magic;                   /* written last: the rest is valid      */
    uint32_t version, header_size;
    uint32_t counter_count, conn_size;
    uint32_t conn_max, pad0;
    int64_t pid;
    _Atomic uint64_t request;         /* readers increment to ask for a snapshot */
    _Atomic uint64_t served;          /* last request answered (both snapshots)  */
    /* counters snapshot */
    _Atomic uint64_t ctr_seq;
    uint64_t ctr_time;                /* stack clock (CLOCK_MONOTONIC ns)     */
    struct ust_counters ctr;
    /* connections snapshot */
    _Atomic uint64_t conn_seq;
    uint64_t conn_time;
    uint32_t conn_count;              /* entries in conns[]                   */
    uint32_t conn_total;              /* connections the stack holds          */
    struct statx_conn conns[STATX_MAX_CONNS];
};

/* ---- writer: called by the stack (api/stack.c) ---- */

/* Create the shm object for s. Idempotent; -1 (errno set) when shared memory
 * is unavailable, which the stack may ignore: publish and close then do nothing. */
int statexport_open(struct ust_stack *s);
/* From the poll loop; rate-limited inside (see above). */
void statexport_publish(struct ust_stack *s, uint64_t now);
/* Unmap and unlink. Safe when open failed or was never called. */
void statexport_close(struct ust_stack *s);
/* The object's name ("/ustack.<pid>[.<n>]"), NULL when s exports nothing. */
const char *statexport_name(const struct ust_stack *s);

/* ---- reader: tools/ust-stat ---- */

/* Map an existing object read-write (to send requests); checks its layout
 * matches this build. NULL with a message in err on failure. */
struct statx_shm *statx_attach(const char *name, char *err, size_t errlen);
void statx_detach(struct statx_shm *m);
/* Ask the stack for fresh snapshots and wait up to timeout_ms for it to
 * answer (it answers from its poll loop). 0 = answered, -1 = timed out. */
int statx_request(struct statx_shm *m, unsigned timeout_ms);
/* Consistent copies (seqlock reads); -1 if the writer kept changing them. */
int statx_read_counters(const struct statx_shm *m, struct ust_counters *out, uint64_t *time_ns);
/* Copies up to max entries; returns how many, -1 on failure; *total gets
 * how many connections the stack had. */
int statx_read_conns(const struct statx_shm *m, struct statx_conn *out, uint32_t max, uint32_t *total);

#endif
