/* memif backend: the shared-memory packet interface of DPDK (net_memif),
 * VPP and libmemif, protocol version 2.0.
 *
 * Facts used (DPDK guides/nics/memif.html, drivers/net/memif/memif.h):
 * - Control messages are 128-byte records on a SOCK_SEQPACKET unix socket,
 *   fields in host byte order: a u16 type, then a packed body. File
 *   descriptors (region memfds, ring eventfds) travel as SCM_RIGHTS.
 * - The client (DPDK "slave") connects, waits for HELLO, then sends INIT,
 *   ADD_REGION per region, ADD_RING per ring, CONNECT, one message per ACK;
 *   the server ("master") answers CONNECT with CONNECTED.
 * - The client owns all memory: rings and buffers live in regions it creates.
 *   C2S ("S2M") rings: the client produces at head, the server consumes and
 *   returns slots by advancing tail. S2C ("M2S") rings: the client posts empty
 *   buffers at head, the server fills them and advances tail.
 * - A ring is { u32 cookie, u16 flags, u16 head @6, u16 tail @64,
 *   descriptors @128 }, 2^log2 descriptors of { u16 flags, u16 region,
 *   u32 length, u32 offset, u32 metadata }.
 *
 * ustack as client is zero-copy: the packet pool's data area is placed inside
 * a region through ops->pool_mem (region 0 after the rings; with several
 * workers, worker I's pool is region I), so a TX descriptor points at the
 * pkt buffer itself and RX buffers are posted straight from the pool; each
 * ring slot remembers the pkt it holds until the peer gives it back.
 * ustack as server copies between the client's buffers and its own pool (the
 * protocol gives the server no memory of its own in the client's regions).
 *
 * Queues (docs/WORKERS.md "memif"): `queues=N` makes a connection of N ring
 * pairs. Without `queue=`, one device serves all of them (it sends each frame
 * on the ring its flow's steering hash picks, src/net/steer.h). With
 * `queue=I` (what ust_workers_run appends for worker I), the N devices of one
 * process that name the same socket, id and role share ONE connection,
 * found in a process-wide registry: the device of queue 0 runs the control
 * plane, every device touches only its own ring pair. The control plane
 * publishes "up" by a release store of an odd generation number; each device
 * picks it up with an acquire load at its next burst and acknowledges every
 * change, and rings and regions are unmapped only once all devices have
 * acknowledged "down". The registry lock is taken on open/start/close only.
 *
 * Chained frames (MEMIF_DESC_FLAG_NEXT) are not assembled: a received chain
 * is dropped whole and counted as dev_rx_oversize, and a frame larger than
 * the peer's buffer is not sent (dev_tx_drop).
 *
 * Everything the peer writes (messages, descriptors, head/tail) is hostile:
 * each index, offset and length is checked before use and a peer caught
 * breaking the ring rules is disconnected. */
#include "dev/dev.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/hash.h"
#include "net/steer.h"

/* ---- protocol constants (memif.h, version 2.0) -------------------------- */

#define MEMIF_COOKIE        0x3E31F20u
#define MEMIF_VERSION       0x0200          /* major 2 << 8 | minor 0        */
#define MEMIF_MSG_LEN       128
#define MEMIF_NAME_LEN      32
#define MEMIF_SECRET_LEN    24
#define MEMIF_REASON_LEN    96
#define MEMIF_LOG2_MAX      14              /* largest ring either side accepts */
#define MEMIF_MODE_ETHERNET 0
#define MEMIF_ADD_RING_FLAG_C2S 1           /* MEMIF_MSG_ADD_RING_FLAG_S2M  */
#define MEMIF_RING_FLAG_MASK_INT 1          /* consumer does not want kicks */
#define MEMIF_DESC_FLAG_NEXT 1

enum memif_msg_type {
    MSG_NONE, MSG_ACK, MSG_HELLO, MSG_INIT, MSG_ADD_REGION, MSG_ADD_RING,
    MSG_CONNECT, MSG_CONNECTED, MSG_DISCONNECT,
};

/* Message field offsets: the u16 type, then the packed body at 2. */
#define MSG_TYPE              0
#define HELLO_NAME            2
#define HELLO_MIN_VERSION    34
#define HELLO_MAX_VERSION    36
#define HELLO_MAX_REGION     38     /* highest region index accepted        */
#define HELLO_MAX_S2C_RING   40     /* "max_m2s_ring": highest ring index    */
#define HELLO_MAX_C2S_RING   42     /* "max_s2m_ring"                       */
#define HELLO_MAX_LOG2       44     /* u8                                   */
#define INIT_VERSION          2
#define INIT_ID               4     /* u32                                  */
#define INIT_MODE             8     /* u8                                   */
#define INIT_SECRET           9
#define INIT_NAME            33
#define ADD_REGION_INDEX      2
#define ADD_REGION_SIZE       4     /* u64                                  */
#define ADD_RING_FLAGS        2
#define ADD_RING_INDEX        4
#define ADD_RING_REGION       6
#define ADD_RING_OFFSET       8     /* u32                                  */
#define ADD_RING_LOG2        12     /* u8                                   */
#define ADD_RING_PRIV_HDR    13     /* u16: private header size, we use 0    */
#define CONNECT_NAME          2
#define DISCONNECT_CODE       2     /* u32                                  */
#define DISCONNECT_REASON     6

/* Ring header offsets (head and tail sit on separate cache lines). */
#define RING_COOKIE   0
#define RING_FLAGS    4
#define RING_HEAD     6
#define RING_TAIL    64
#define RING_DESC   128

/* A descriptor is naturally aligned and lives in ring memory, not in packet
 * memory, so a struct is the clearest way to address its fields. */
struct memif_desc {
    uint16_t flags;
    uint16_t region;
    uint32_t length;
    uint32_t offset;
    uint32_t metadata;
};
_Static_assert(sizeof(struct memif_desc) == 16, "memif descriptor is 16 bytes");
_Static_assert(offsetof(struct memif_desc, offset) == 8, "memif descriptor layout");

/* ---- our limits ---------------------------------------------------------- */

#define MEMIF_MAX_QUEUES    8        /* ring pairs per connection            */
#define MEMIF_MAX_REGIONS   16       /* regions a client may hand a server    */
#define MEMIF_MAX_REGION_BYTES (1ull << 32)   /* descriptor offsets are u32   */
#define MEMIF_MSGS_PER_SERVICE 32
#define MEMIF_ACCEPTS_PER_SERVICE 8
#define MEMIF_RETRY_NS      1000000000ull     /* client reconnect period     */
#define MEMIF_HANDSHAKE_NS  5000000000ull     /* a handshake must finish by  */
#define MEMIF_WAIT_NS       1000000ull        /* recheck while waiting for queues */
#define MEMIF_PAGE          4096u
#define MEMIF_TX_BATCH      64
#define MEMIF_ACK_GONE      UINT32_MAX        /* the queue's device is closed */
#define MEMIF_MASK_AFTER    64      /* RX polls without sleeping before we mask kicks */

enum memif_role { ROLE_CLIENT, ROLE_SERVER };

enum memif_state {
    ST_DOWN,          /* client: no socket; server: listening, no peer        */
    ST_WAIT_HELLO,    /* client: connected, HELLO not yet received            */
    ST_WAIT_INIT,     /* server: peer accepted, HELLO sent                     */
    ST_HANDSHAKE,     /* client: sending INIT..ADD_RING one per ACK;
                         server: HELLO sent, taking INIT, regions, rings      */
    ST_WAIT_CONNECTED,/* client: CONNECT sent                                 */
    ST_UP,
    ST_DRAIN,         /* going down: waiting until every queue let go         */
};

struct memif_ring {
    uint8_t *hdr;               /* ring header in mapped memory; NULL: absent */
    struct memif_desc *desc;
    uint16_t size, mask;
    uint16_t head;              /* our copy of the index we produce           */
    uint16_t last;              /* oldest slot we have not consumed/reclaimed  */
    int irq_fd;                 /* eventfd shared with the peer               */
    uint8_t kicks_masked;       /* RX, irq=1: MASK_INT set, we poll without sleep */
    struct pkt **held;          /* client: the pkt each slot holds            */
};

/* One ring pair. The data fields belong to the queue's device; the control
 * plane sets the rings up and tears them down only while that device has
 * acknowledged "down". Own cache lines: two workers never share one. */
struct memif_queue {
    struct memif_ring c2s, s2c;
} __attribute__((aligned(64)));

struct memif_region {
    uint8_t *base;
    uint64_t size;
    int fd;
};

/* What a spec says; every device of a shared connection must say the same
 * (except queue). */
struct memif_cfg {
    enum memif_role role;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uint32_t id;
    uint8_t log2;               /* configured ring size                       */
    uint8_t irq;                /* we want kicks on our RX rings              */
    uint8_t has_queue;
    uint16_t queue;
    uint32_t bsize;
    uint16_t nq;                /* ring pairs                                 */
};

/* One memif connection: one control socket, one set of regions, nq ring
 * pairs, used by one device (no queue=) or by nq devices (queue=0..nq-1). */
struct memif_conn {
    struct memif_queue q[MEMIF_MAX_QUEUES];
    struct memif_cfg cfg;
    /* Registry (shared connections), under memif_registry_lock. */
    struct memif_conn *next;
    int refs;
    uint8_t attached[MEMIF_MAX_QUEUES];
    uint16_t ndevs;             /* devices that make the connection            */
    atomic_uint nstarted;       /* of them, how many have their pool placed    */
    /* Control plane: the owner device's thread only. */
    enum memif_state state;
    uint8_t log2_run;           /* negotiated (client) / announced (server)   */
    uint8_t ready;              /* all devices started                        */
    uint8_t created_path;
    uint16_t nrun;              /* ring pairs in use on this connection        */
    int listen_fd, ctl_fd;
    uint32_t step;              /* client: next handshake message to send     */
    uint64_t now, next_connect, deadline;
    size_t rings_bytes;         /* client: rings at the start of region 0     */
    uint8_t mac[6];             /* shared: every worker answers as one host    */
    /* Client: ours (region I holds queue I's pool; region 0 also the rings).
     * Server: the client's. Written before the generation goes up. */
    struct memif_region regions[MEMIF_MAX_REGIONS];
    uint16_t nregions;
    /* Published to the data path. */
    atomic_uint gen;            /* odd: up                                    */
    atomic_uint ack[MEMIF_MAX_QUEUES]; /* the generation each queue synced to */
    _Atomic(const char *) broken;      /* a data path caught the peer cheating */
};

/* One device: one queue of a shared connection, or all queues of its own. */
struct memif {
    struct dev *d;
    struct memif_conn *c;
    uint16_t qlo, qhi;          /* queues this device owns                     */
    uint16_t nserve;            /* of them, in use while up                    */
    uint16_t rr;                /* receive rotation over several queues        */
    uint32_t polls_awake;       /* RX polls since the loop last went to sleep  */
    uint16_t region;            /* client: region index of our pool            */
    uint8_t owner;              /* the control plane runs on this device       */
    uint8_t started;
    unsigned gen;               /* connection generation we are synced to      */
    const char *broken;         /* our data path found the peer misbehaving    */
    uint32_t buf_cap;           /* client: bytes posted per RX buffer         */
    uint32_t rx_post_max;       /* client: RX buffers kept posted per queue    */
    struct ust_counters own_ctr; /* used when the device has no counters     */
};

static struct memif *memif_of(struct dev *d) { return d->priv; }

static pthread_mutex_t memif_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct memif_conn *memif_registry;

/* ---- small helpers -------------------------------------------------------- */

/* Control messages are host byte order: memcpy at a named offset. */
static void msg_put16(uint8_t *m, size_t off, uint16_t v) { memcpy(m + off, &v, 2); }
static void msg_put32(uint8_t *m, size_t off, uint32_t v) { memcpy(m + off, &v, 4); }
static void msg_put64(uint8_t *m, size_t off, uint64_t v) { memcpy(m + off, &v, 8); }
static uint16_t msg_get16(const uint8_t *m, size_t off) { uint16_t v; memcpy(&v, m + off, 2); return v; }
static uint32_t msg_get32(const uint8_t *m, size_t off) { uint32_t v; memcpy(&v, m + off, 4); return v; }
static uint64_t msg_get64(const uint8_t *m, size_t off) { uint64_t v; memcpy(&v, m + off, 8); return v; }

static void msg_put_str(uint8_t *m, size_t off, size_t cap, const char *s)
{
    size_t n = strlen(s);
    memcpy(m + off, s, n < cap ? n : cap - 1);
}

/* head and tail are shared with another process: the producer publishes its
 * descriptors with a release store, the consumer reads with acquire. */
static uint16_t ring_load(const uint8_t *hdr, size_t off)
{
    return __atomic_load_n((const uint16_t *)(hdr + off), __ATOMIC_ACQUIRE);
}

static void ring_store(uint8_t *hdr, size_t off, uint16_t v)
{
    __atomic_store_n((uint16_t *)(hdr + off), v, __ATOMIC_RELEASE);
}

static uint16_t ring_flags(const uint8_t *hdr)
{
    return __atomic_load_n((const uint16_t *)(hdr + RING_FLAGS), __ATOMIC_RELAXED);
}

static void ring_set_flags(uint8_t *hdr, uint16_t v)
{
    __atomic_store_n((uint16_t *)(hdr + RING_FLAGS), v, __ATOMIC_RELAXED);
}

/* Exact bytes of a ring, and the cache-line-rounded stride we lay ours out by. */
static size_t ring_span(uint8_t log2)
{
    return RING_DESC + sizeof(struct memif_desc) * ((size_t)1 << log2);
}

static size_t ring_bytes(uint8_t log2)
{
    return (ring_span(log2) + 63) & ~(size_t)63;
}

/* Read a descriptor the peer may be rewriting: each field exactly once, so
 * what we validate is what we use. */
static struct memif_desc desc_read(const struct memif_desc *s)
{
    const volatile struct memif_desc *v = s;
    struct memif_desc d = { v->flags, v->region, v->length, v->offset, 0 };
    return d;
}

static void desc_write(struct memif_desc *s, uint16_t region, uint32_t offset, uint32_t length)
{
    s->flags = 0;
    s->region = region;
    s->length = length;
    s->offset = offset;
    s->metadata = 0;
}

/* Wake the consumer unless it said it polls (MEMIF_RING_FLAG_MASK_INT).
 * The fence orders our head/tail store before the flags load: a consumer
 * going to sleep clears the flag, fences, then rechecks head/tail, so one of
 * us always sees the other (no lost wakeup). */
static void ring_kick(const struct memif_ring *r)
{
    if (r->irq_fd < 0)
        return;
    atomic_thread_fence(memory_order_seq_cst);
    if (ring_flags(r->hdr) & MEMIF_RING_FLAG_MASK_INT)
        return;
    uint64_t one = 1;
    ssize_t rc = write(r->irq_fd, &one, sizeof(one));
    (void)rc;   /* EAGAIN: the counter is saturated, the peer is awake anyway */
}

/* Frame bytes and descriptors the peer's core touched last are cross-core
 * misses here; asking for them early overlaps those misses. What we will
 * write is asked for exclusive (PREFETCHW where the CPU has it): a line
 * fetched shared needs a second trip for ownership, and stores waiting for
 * it fill the store queue and stall whatever load comes next. Two lines
 * cover the headers and a small payload; larger frames stream anyway. */
static inline void frame_prefetch(const uint8_t *p)
{
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
}

static inline void line_prefetch_w(const uint8_t *p)
{
#if defined(__x86_64__) || defined(__i386__)
    /* PREFETCHW (a no-op where the CPU lacks it), by hand so the build
     * needs no -mprfchw. */
    __asm__ volatile("prefetchw %0" : : "m"(*p));
#else
    __builtin_prefetch(p, 1);
#endif
}

static inline void frame_prefetch_w(const uint8_t *p)
{
    line_prefetch_w(p);
    line_prefetch_w(p + 64);
}

/* The descriptor lines of slots from..from+n (four to a line). */
static void desc_prefetch_w(const struct memif_ring *r, uint16_t from, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++) {
        uint16_t slot = (uint16_t)(from + i) & r->mask;
        if (i == 0 || (slot & 3) == 0)
            line_prefetch_w((const uint8_t *)&r->desc[slot]);
    }
}

static void irq_drain(int fd)
{
    uint64_t v;
    ssize_t rc = read(fd, &v, sizeof(v));
    (void)rc;
}

static void irq_self_kick(int fd)
{
    uint64_t one = 1;
    ssize_t rc = write(fd, &one, sizeof(one));
    (void)rc;   /* EAGAIN: saturated, poll wakes anyway */
}

static void fd_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- control socket I/O ---------------------------------------------------- */

static int ctl_send(int sock, const uint8_t *msg, int fd)
{
    struct iovec iov = { (void *)msg, MEMIF_MSG_LEN };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } cm;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.buf;
        mh.msg_controllen = sizeof(cm.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n == MEMIF_MSG_LEN ? 0 : -1;
}

/* Take the file descriptors of one message: keep the first, close extras. */
static int ctl_take_fds(struct msghdr *mh)
{
    int keep = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (keep < 0)
                keep = fd;
            else
                close(fd);
        }
    }
    return keep;
}

/* One message into msg (zero-filled to 128 bytes). Returns 1 with a message,
 * 0 when none is waiting, -1 when the connection is gone or misbehaves. */
static int ctl_recv(int sock, uint8_t *msg, int *fd_out)
{
    union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } cm;
    struct iovec iov = { msg, MEMIF_MSG_LEN };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf) };
    memset(msg, 0, MEMIF_MSG_LEN);
    *fd_out = -1;
    ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    *fd_out = ctl_take_fds(&mh);
    if (n == 0 || n < 2 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        fd_close(fd_out);
        return -1;
    }
    return 1;
}

static void ctl_send_disconnect(int sock, const char *reason)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    msg_put16(msg, MSG_TYPE, MSG_DISCONNECT);
    msg_put32(msg, DISCONNECT_CODE, 0);
    msg_put_str(msg, DISCONNECT_REASON, MEMIF_REASON_LEN, reason);
    ctl_send(sock, msg, -1);
}

static int ctl_send_simple(int sock, uint16_t type)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    msg_put16(msg, MSG_TYPE, type);
    if (type == MSG_CONNECT || type == MSG_CONNECTED)
        msg_put_str(msg, CONNECT_NAME, MEMIF_NAME_LEN, "ustack");
    return ctl_send(sock, msg, -1);
}

/* ---- the generation handshake between control plane and queues ---------- */

static int gen_up(unsigned g) { return g & 1u; }

/* Control plane: is every queue done with the rings of the last generation? */
static int conn_all_acked(struct memif_conn *c)
{
    unsigned g = atomic_load_explicit(&c->gen, memory_order_relaxed);
    for (uint16_t q = 0; q < c->cfg.nq; q++) {
        unsigned a = atomic_load_explicit(&c->ack[q], memory_order_acquire);
        if (a != g && a != MEMIF_ACK_GONE)
            return 0;
    }
    return 1;
}

static void conn_publish_up(struct memif_conn *c)
{
    c->state = ST_UP;
    atomic_store_explicit(&c->broken, NULL, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->gen, 1, memory_order_release);
}

static struct memif_ring *queue_rx_ring(struct memif_conn *c, uint16_t q)
{
    return c->cfg.role == ROLE_CLIENT ? &c->q[q].s2c : &c->q[q].c2s;
}

/* Free the pkts a queue's rings hold (client: posted RX buffers and TX
 * frames not yet consumed). Only the queue's own device: they are its pool's. */
static void queue_release_held(struct memif_conn *c, uint16_t q)
{
    struct memif_ring *r[2] = { &c->q[q].c2s, &c->q[q].s2c };
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; r[k]->held && i < (1u << c->cfg.log2); i++) {
            pkt_free(r[k]->held[i]);
            r[k]->held[i] = NULL;
        }
    }
}

static void client_rx_refill(struct memif *m, struct memif_ring *r);

static void memif_ack(struct memif *m, unsigned g)
{
    for (uint16_t q = m->qlo; q < m->qhi; q++)
        atomic_store_explicit(&m->c->ack[q], g, memory_order_release);
}

/* Data path side: follow the connection's generation. Up: post RX buffers,
 * raise the link. Down: give back what our rings held, acknowledge. */
static void memif_sync(struct memif *m)
{
    struct memif_conn *c = m->c;
    unsigned g = atomic_load_explicit(&c->gen, memory_order_acquire);
    if (g == m->gen)
        return;
    if (gen_up(g)) {
        uint16_t avail = c->nrun > m->qlo ? (uint16_t)(c->nrun - m->qlo) : 0;
        m->nserve = avail < m->qhi - m->qlo ? avail : (uint16_t)(m->qhi - m->qlo);
        for (uint16_t i = 0; c->cfg.role == ROLE_CLIENT && i < m->nserve; i++)
            client_rx_refill(m, &c->q[m->qlo + i].s2c);
        /* The control plane set up our RX rings unmasked (irq=1) or masked
         * for good (irq=0); only irq=1 rings are toggled, by us. */
        for (uint16_t i = 0; i < m->nserve; i++)
            queue_rx_ring(c, (uint16_t)(m->qlo + i))->kicks_masked = 0;
        m->polls_awake = 0;
        m->d->flags |= DEV_F_LINK_UP;
    } else {
        for (uint16_t q = m->qlo; q < m->qhi; q++)
            queue_release_held(c, q);
        m->nserve = 0;
        m->d->flags &= ~DEV_F_LINK_UP;
    }
    m->broken = NULL;
    m->gen = g;
    memif_ack(m, g);
}

/* A data path caught the peer breaking the ring rules: stop using the
 * rings and let the control plane take the connection down. */
static void memif_set_broken(struct memif *m, const char *why)
{
    m->broken = why;
    const char *none = NULL;
    atomic_compare_exchange_strong(&m->c->broken, &none, why);
}

/* ---- connection teardown (control plane) ---------------------------------- */

static void ring_unmap(struct memif_ring *r)
{
    fd_close(&r->irq_fd);
    r->hdr = NULL;
    r->desc = NULL;
    r->head = r->last = 0;
}

static void regions_release(struct memif_conn *c)
{
    for (uint16_t i = 0; i < c->nregions; i++) {
        struct memif_region *g = &c->regions[i];
        if (g->base)
            munmap(g->base, g->size);
        fd_close(&g->fd);
        g->base = NULL;
        g->size = 0;
    }
    c->nregions = 0;
}

/* Everybody let go: close the ring eventfds, unmap the client's regions
 * (server), and listen (server) or reconnect (client) again. */
static void conn_finish_down(struct memif_conn *c)
{
    for (int q = 0; q < MEMIF_MAX_QUEUES; q++) {
        ring_unmap(&c->q[q].c2s);
        ring_unmap(&c->q[q].s2c);
    }
    if (c->cfg.role == ROLE_SERVER)
        regions_release(c);
    atomic_store_explicit(&c->broken, NULL, memory_order_relaxed);
    c->nrun = 0;
    c->state = ST_DOWN;
    c->next_connect = c->now + MEMIF_RETRY_NS;
}

/* Drop the connection (telling the peer why when a reason is given). The
 * rings stay mapped until every queue acknowledged; their devices are woken
 * through their RX eventfds so that happens soon. */
static void conn_begin_down(struct memif_conn *c, const char *reason)
{
    if (c->ctl_fd >= 0 && reason)
        ctl_send_disconnect(c->ctl_fd, reason);
    fd_close(&c->ctl_fd);
    if (gen_up(atomic_load_explicit(&c->gen, memory_order_relaxed))) {
        atomic_fetch_add_explicit(&c->gen, 1, memory_order_release);
        for (uint16_t q = 0; q < c->nrun; q++) {
            struct memif_ring *r = queue_rx_ring(c, q);
            if (r->irq_fd >= 0) {
                uint64_t one = 1;
                ssize_t rc = write(r->irq_fd, &one, sizeof(one));
                (void)rc;
            }
        }
    }
    c->state = ST_DRAIN;
}

/* ---- client: region, rings, handshake ------------------------------------- */

static uint8_t *client_ring_hdr(struct memif_conn *c, int c2s, uint16_t q)
{
    size_t idx = c2s ? q : (size_t)c->cfg.nq + q;
    return c->regions[0].base + idx * ring_bytes(c->cfg.log2);
}

static size_t client_ring_offset(struct memif_conn *c, int c2s, uint16_t q)
{
    return (size_t)(client_ring_hdr(c, c2s, q) - c->regions[0].base);
}

/* Post empty pool buffers on our S2C ring for the server to fill. */
static void client_rx_refill(struct memif *m, struct memif_ring *r)
{
    const struct memif_region *g = &m->c->regions[m->region];
    uint16_t head = r->head;
    uint32_t base_off = (uint32_t)(m->d->pool->mem - g->base);
    while ((uint16_t)(head - r->last) < m->rx_post_max) {
        struct pkt *p = pkt_alloc(m->d->pool);
        if (!p)
            break;
        uint16_t slot = head & r->mask;
        uint32_t off = base_off + (uint32_t)(p->buf - m->d->pool->mem) + PKT_HEADROOM;
        desc_write(&r->desc[slot], m->region, off, m->buf_cap);
        r->held[slot] = p;
        head++;
    }
    if (head != r->head) {
        r->head = head;
        ring_store(r->hdr, RING_HEAD, head);
    }
}

static int client_ring_init(struct memif_conn *c, int c2s, uint16_t q)
{
    struct memif_ring *r = c2s ? &c->q[q].c2s : &c->q[q].s2c;
    r->hdr = client_ring_hdr(c, c2s, q);
    r->desc = (struct memif_desc *)(r->hdr + RING_DESC);
    r->size = (uint16_t)(1u << c->log2_run);
    r->mask = (uint16_t)(r->size - 1);
    r->head = r->last = 0;
    memset(r->hdr, 0, RING_DESC);
    msg_put32(r->hdr, RING_COOKIE, MEMIF_COOKIE);
    /* We are the consumer of S2C rings: say whether we want kicks. */
    ring_set_flags(r->hdr, (!c2s && !c->cfg.irq) ? MEMIF_RING_FLAG_MASK_INT : 0);
    r->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* RX buffers are posted only after CONNECTED: a DPDK server zeroes
     * head and tail of every ring when it takes CONNECT. */
    return r->irq_fd < 0 ? -1 : 0;
}

/* The server says how many ring pairs it takes; like DPDK's client we use
 * min(ours, its), except that a shared connection needs one per worker. */
static const char *client_on_hello(struct memif_conn *c, const uint8_t *msg)
{
    uint16_t vmin = msg_get16(msg, HELLO_MIN_VERSION), vmax = msg_get16(msg, HELLO_MAX_VERSION);
    if (vmin > MEMIF_VERSION || vmax < MEMIF_VERSION)
        return "incompatible memif version";
    uint32_t max_c2s = msg_get16(msg, HELLO_MAX_C2S_RING) + 1u;
    uint32_t max_s2c = msg_get16(msg, HELLO_MAX_S2C_RING) + 1u;
    uint32_t n = c->cfg.nq;
    n = n < max_c2s ? n : max_c2s;
    n = n < max_s2c ? n : max_s2c;
    if (c->cfg.has_queue && n < c->cfg.nq)
        return "server accepts fewer queues than we have workers";
    c->nrun = (uint16_t)n;
    uint8_t log2 = msg[HELLO_MAX_LOG2];
    c->log2_run = log2 < c->cfg.log2 ? log2 : c->cfg.log2;
    if (c->log2_run < 1)
        return "server ring size too small";
    for (uint16_t q = 0; q < c->nrun; q++)
        if (client_ring_init(c, 1, q) || client_ring_init(c, 0, q))
            return "eventfd failed";
    return NULL;
}

static void client_msg_add_ring(struct memif_conn *c, uint8_t *msg, uint32_t ring, int *fd)
{
    int c2s = ring < c->nrun;
    uint16_t q = (uint16_t)(c2s ? ring : ring - c->nrun);
    msg_put16(msg, MSG_TYPE, MSG_ADD_RING);
    msg_put16(msg, ADD_RING_FLAGS, c2s ? MEMIF_ADD_RING_FLAG_C2S : 0);
    msg_put16(msg, ADD_RING_INDEX, q);
    msg_put16(msg, ADD_RING_REGION, 0);
    msg_put32(msg, ADD_RING_OFFSET, (uint32_t)client_ring_offset(c, c2s, q));
    msg[ADD_RING_LOG2] = c->log2_run;
    msg_put16(msg, ADD_RING_PRIV_HDR, 0);
    *fd = c2s ? c->q[q].c2s.irq_fd : c->q[q].s2c.irq_fd;
}

/* Handshake message number `step`: INIT, ADD_REGION per region, C2S rings,
 * S2C rings, CONNECT (memif.html "Connection establishment"). */
static int client_send_step(struct memif_conn *c)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    uint32_t s = c->step++;
    int fd = -1;
    if (s == 0) {
        msg_put16(msg, MSG_TYPE, MSG_INIT);
        msg_put16(msg, INIT_VERSION, MEMIF_VERSION);
        msg_put32(msg, INIT_ID, c->cfg.id);
        msg[INIT_MODE] = MEMIF_MODE_ETHERNET;
        msg_put_str(msg, INIT_NAME, MEMIF_NAME_LEN, "ustack");
    } else if (s < 1u + c->nregions) {
        uint16_t idx = (uint16_t)(s - 1);
        msg_put16(msg, MSG_TYPE, MSG_ADD_REGION);
        msg_put16(msg, ADD_REGION_INDEX, idx);
        msg_put64(msg, ADD_REGION_SIZE, c->regions[idx].size);
        fd = c->regions[idx].fd;
    } else if (s < 1u + c->nregions + 2u * c->nrun) {
        client_msg_add_ring(c, msg, s - 1 - c->nregions, &fd);
    } else {
        msg_put16(msg, MSG_TYPE, MSG_CONNECT);
        msg_put_str(msg, CONNECT_NAME, MEMIF_NAME_LEN, "ustack");
        c->state = ST_WAIT_CONNECTED;
    }
    return ctl_send(c->ctl_fd, msg, fd);
}

static const char *client_on_msg(struct memif_conn *c, uint16_t type, const uint8_t *msg)
{
    if (type == MSG_HELLO && c->state == ST_WAIT_HELLO) {
        const char *err = client_on_hello(c, msg);
        if (err)
            return err;
        c->state = ST_HANDSHAKE;
        c->step = 0;
        return client_send_step(c) ? "send failed" : NULL;
    }
    if (type == MSG_ACK && c->state == ST_HANDSHAKE)
        return client_send_step(c) ? "send failed" : NULL;
    if (type == MSG_CONNECTED && c->state == ST_WAIT_CONNECTED) {
        conn_publish_up(c);   /* each device posts its RX buffers itself */
        return NULL;
    }
    return "unexpected message";
}

static void client_try_connect(struct memif_conn *c)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, c->cfg.path, sizeof(sa.sun_path));
    c->next_connect = c->now + MEMIF_RETRY_NS;
    c->ctl_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->ctl_fd < 0)
        return;
    if (connect(c->ctl_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fd_close(&c->ctl_fd);     /* no server yet: try again in a second */
        return;
    }
    c->state = ST_WAIT_HELLO;
    c->deadline = c->now + MEMIF_HANDSHAKE_NS;
}

/* ---- server: handshake ----------------------------------------------------- */

/* We take exactly as many ring pairs as we have queues: a DPDK client then
 * offers min(its queues, ours). */
static int server_send_hello(struct memif_conn *c)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    msg_put16(msg, MSG_TYPE, MSG_HELLO);
    msg_put_str(msg, HELLO_NAME, MEMIF_NAME_LEN, "ustack");
    msg_put16(msg, HELLO_MIN_VERSION, MEMIF_VERSION);
    msg_put16(msg, HELLO_MAX_VERSION, MEMIF_VERSION);
    msg_put16(msg, HELLO_MAX_REGION, MEMIF_MAX_REGIONS - 1);
    msg_put16(msg, HELLO_MAX_S2C_RING, (uint16_t)(c->cfg.nq - 1));
    msg_put16(msg, HELLO_MAX_C2S_RING, (uint16_t)(c->cfg.nq - 1));
    msg[HELLO_MAX_LOG2] = c->cfg.log2;
    return ctl_send(c->ctl_fd, msg, -1);
}

static const char *server_on_init(struct memif_conn *c, const uint8_t *msg)
{
    if (msg_get16(msg, INIT_VERSION) != MEMIF_VERSION)
        return "incompatible memif version";
    if (msg_get32(msg, INIT_ID) != c->cfg.id)
        return "unmatched interface id";
    if (msg[INIT_MODE] != MEMIF_MODE_ETHERNET)
        return "only ethernet mode is supported";
    c->state = ST_HANDSHAKE;
    return NULL;
}

static const char *server_on_add_region(struct memif_conn *c, const uint8_t *msg, int *fd)
{
    uint16_t idx = msg_get16(msg, ADD_REGION_INDEX);
    uint64_t size = msg_get64(msg, ADD_REGION_SIZE);
    struct stat st;
    if (*fd < 0)
        return "region without a file descriptor";
    if (idx != c->nregions || idx >= MEMIF_MAX_REGIONS)
        return "bad region index";
    /* Map no more than the file holds: touching past its end is SIGBUS. */
    if (size == 0 || size > MEMIF_MAX_REGION_BYTES || fstat(*fd, &st) != 0 ||
        (uint64_t)st.st_size < size)
        return "bad region size";
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (base == MAP_FAILED)
        return "region mmap failed";
    struct memif_region *g = &c->regions[c->nregions++];
    g->base = base;
    g->size = size;
    g->fd = *fd;
    *fd = -1;
    return NULL;
}

static const char *server_on_add_ring(struct memif_conn *c, const uint8_t *msg, int *fd)
{
    int c2s = msg_get16(msg, ADD_RING_FLAGS) & MEMIF_ADD_RING_FLAG_C2S;
    uint16_t idx = msg_get16(msg, ADD_RING_INDEX);
    uint16_t region = msg_get16(msg, ADD_RING_REGION);
    uint32_t off = msg_get32(msg, ADD_RING_OFFSET);
    uint8_t log2 = msg[ADD_RING_LOG2];
    if (*fd < 0)
        return "ring without an interrupt fd";
    if (idx >= c->cfg.nq || region >= c->nregions)
        return "bad ring index or region";
    if (log2 < 1 || log2 > c->cfg.log2 || msg_get16(msg, ADD_RING_PRIV_HDR) != 0)
        return "bad ring size";
    /* Aligned for the u16 atomics and u32 descriptor fields, and inside. */
    if ((off & 7) || (uint64_t)off + ring_span(log2) > c->regions[region].size)
        return "ring outside its region";
    struct memif_ring *r = c2s ? &c->q[idx].c2s : &c->q[idx].s2c;
    if (r->hdr)
        return "ring added twice";
    r->hdr = c->regions[region].base + off;
    r->desc = (struct memif_desc *)(r->hdr + RING_DESC);
    r->size = (uint16_t)(1u << log2);
    r->mask = (uint16_t)(r->size - 1);
    r->irq_fd = *fd;
    *fd = -1;
    /* Our writes to the eventfd must never block the loop. */
    fcntl(r->irq_fd, F_SETFL, fcntl(r->irq_fd, F_GETFL) | O_NONBLOCK);
    return NULL;
}

/* Ring pairs 0..n-1 complete, with the right cookie. */
static uint16_t server_count_pairs(struct memif_conn *c)
{
    uint16_t n = 0;
    for (; n < c->cfg.nq; n++) {
        struct memif_ring *rx = &c->q[n].c2s, *tx = &c->q[n].s2c;
        uint32_t c1, c2;
        if (!rx->hdr || !tx->hdr)
            break;
        memcpy(&c1, rx->hdr + RING_COOKIE, 4);
        memcpy(&c2, tx->hdr + RING_COOKIE, 4);
        if (c1 != MEMIF_COOKIE || c2 != MEMIF_COOKIE)
            break;
    }
    return n;
}

static const char *server_on_connect(struct memif_conn *c)
{
    uint16_t n = server_count_pairs(c);
    if (n == 0)
        return "no complete ring pair";
    /* Every worker answers on its own queue: one missing would blackhole
     * the flows it owns. */
    if (c->cfg.has_queue && n < c->cfg.nq)
        return "client offers fewer ring pairs than the server has workers";
    /* Rings start empty whatever the client left in them (DPDK's server
     * does the same, and DPDK clients post RX buffers only after this).
     * We consume C2S from tail to head; we produce S2C by advancing tail. */
    for (int i = 0; i < MEMIF_MAX_QUEUES; i++) {
        struct memif_ring *r[2] = { &c->q[i].c2s, &c->q[i].s2c };
        for (int k = 0; k < 2; k++) {
            if (!r[k]->hdr)
                continue;
            ring_store(r[k]->hdr, RING_HEAD, 0);
            ring_store(r[k]->hdr, RING_TAIL, 0);
            r[k]->last = 0;
        }
    }
    for (uint16_t q = 0; q < n; q++)
        ring_set_flags(c->q[q].c2s.hdr, c->cfg.irq ? 0 : MEMIF_RING_FLAG_MASK_INT);
    if (ctl_send_simple(c->ctl_fd, MSG_CONNECTED))
        return "send failed";
    c->nrun = n;
    conn_publish_up(c);
    return NULL;
}

static const char *server_on_msg(struct memif_conn *c, uint16_t type, const uint8_t *msg, int *fd)
{
    const char *err;
    if (type == MSG_INIT && c->state == ST_WAIT_INIT)
        err = server_on_init(c, msg);
    else if (type == MSG_ADD_REGION && c->state == ST_HANDSHAKE)
        err = server_on_add_region(c, msg, fd);
    else if (type == MSG_ADD_RING && c->state == ST_HANDSHAKE)
        err = server_on_add_ring(c, msg, fd);
    else if (type == MSG_CONNECT && c->state == ST_HANDSHAKE)
        return server_on_connect(c);
    else
        return "unexpected message";
    if (!err && ctl_send_simple(c->ctl_fd, MSG_ACK))
        err = "send failed";
    return err;
}

static void server_accept(struct memif_conn *c)
{
    for (int i = 0; i < MEMIF_ACCEPTS_PER_SERVICE; i++) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (c->ctl_fd >= 0) {
            /* One peer per interface id: a second one is told so and dropped. */
            ctl_send_disconnect(fd, "interface already connected");
            close(fd);
            continue;
        }
        c->ctl_fd = fd;
        c->deadline = c->now + MEMIF_HANDSHAKE_NS;
        c->state = ST_WAIT_INIT;
        if (server_send_hello(c))
            conn_begin_down(c, NULL);
    }
}

/* ---- control plane driver ---------------------------------------------------- */

static void memif_read_ctl(struct memif_conn *c)
{
    uint8_t msg[MEMIF_MSG_LEN];
    for (int i = 0; i < MEMIF_MSGS_PER_SERVICE && c->ctl_fd >= 0; i++) {
        int fd = -1;
        int rc = ctl_recv(c->ctl_fd, msg, &fd);
        if (rc == 0)
            return;
        if (rc < 0) {
            conn_begin_down(c, NULL);
            return;
        }
        uint16_t type = msg_get16(msg, MSG_TYPE);
        const char *err;
        if (type == MSG_DISCONNECT) {
            fd_close(&fd);
            conn_begin_down(c, NULL);
            return;
        }
        if (c->cfg.role == ROLE_SERVER)
            err = server_on_msg(c, type, msg, &fd);
        else
            err = client_on_msg(c, type, msg);
        fd_close(&fd);      /* any descriptor a handler did not keep */
        if (err) {
            fprintf(stderr, "memif %s: %s\n", c->cfg.path, err);
            conn_begin_down(c, err);
            return;
        }
    }
}

/* Nothing happens on the wire until every device of the connection has its
 * pool placed: a client must announce all regions in its handshake. */
static int conn_ready(struct memif_conn *c)
{
    if (!c->ready)
        c->ready = atomic_load_explicit(&c->nstarted, memory_order_acquire) == c->ndevs;
    return c->ready;
}

static void conn_step(struct memif_conn *c)
{
    const char *broken = atomic_load_explicit(&c->broken, memory_order_relaxed);
    if (broken && c->state == ST_UP) {
        fprintf(stderr, "memif %s: %s\n", c->cfg.path, broken);
        conn_begin_down(c, broken);
    }
    if (c->cfg.role == ROLE_SERVER && c->state != ST_DRAIN)
        server_accept(c);   /* also refuses a second peer while one is on */
    else if (c->cfg.role == ROLE_CLIENT && c->state == ST_DOWN && c->now >= c->next_connect)
        client_try_connect(c);
    if (c->ctl_fd >= 0)
        memif_read_ctl(c);
    if (c->state != ST_DOWN && c->state != ST_UP && c->state != ST_DRAIN && c->now >= c->deadline)
        conn_begin_down(c, "handshake timed out");
}

static uint64_t conn_next(const struct memif_conn *c)
{
    switch (c->state) {
    case ST_UP:
        return UINT64_MAX;
    case ST_DRAIN:
        return c->now + MEMIF_WAIT_NS;
    case ST_DOWN:
        return c->cfg.role == ROLE_CLIENT ? c->next_connect : UINT64_MAX;
    default:
        return c->deadline;
    }
}

static void client_tx_reclaim(struct memif *m, struct memif_ring *r);

/* The owner runs the control plane; every device follows the generation. */
static uint64_t memif_service(struct dev *d, uint64_t now)
{
    struct memif *m = memif_of(d);
    struct memif_conn *c = m->c;
    if (!m->started)
        return UINT64_MAX;
    memif_sync(m);
    uint64_t next = UINT64_MAX;
    if (m->owner) {
        c->now = now;
        if (!conn_ready(c))
            return now + MEMIF_WAIT_NS;
        conn_step(c);
        memif_sync(m);        /* our own queues follow at once, up or down */
        if (c->state == ST_DRAIN && conn_all_acked(c))
            conn_finish_down(c);
        next = conn_next(c);
    }
    if (gen_up(m->gen) && !m->broken && c->cfg.role == ROLE_CLIENT)
        for (uint16_t i = 0; i < m->nserve; i++)
            client_tx_reclaim(m, &c->q[m->qlo + i].c2s);   /* idle TX buffers go home */
    return next;
}

/* ---- data path: client (zero-copy) ------------------------------------------- */

/* Free the TX buffers the server has consumed (slots last..tail). */
static void client_tx_reclaim(struct memif *m, struct memif_ring *r)
{
    uint16_t tail = ring_load(r->hdr, RING_TAIL);
    uint16_t done = (uint16_t)(tail - r->last);
    if (done > (uint16_t)(r->head - r->last)) {
        memif_set_broken(m, "server moved C2S tail past head");
        return;
    }
    for (; r->last != tail; r->last++) {
        uint16_t slot = r->last & r->mask;
        pkt_free(r->held[slot]);
        r->held[slot] = NULL;
    }
}

/* A pkt from our pool already sits in the shared region; anything else (a
 * pkt from another pool) is copied into one that does. */
static struct pkt *client_tx_shareable(struct memif *m, struct pkt *p)
{
    if (p->pool == m->d->pool)
        return p;
    struct pkt *c = pkt_alloc(m->d->pool);
    if (!c || p->len > c->room - PKT_HEADROOM) {
        pkt_free(c);
        pkt_free(p);
        return NULL;
    }
    memcpy(pkt_data(c), pkt_data(p), p->len);
    c->len = p->len;
    c->flags = p->flags;
    pkt_free(p);
    return c;
}

/* Returns the frames queued; *taken says how many of pkts it consumed. */
static uint16_t client_tx(struct memif *m, uint16_t q, struct pkt **pkts, uint16_t n, uint16_t *taken)
{
    struct memif_ring *r = &m->c->q[q].c2s;
    const uint8_t *base = m->c->regions[m->region].base;
    client_tx_reclaim(m, r);
    *taken = 0;
    if (m->broken)
        return 0;
    uint16_t room = (uint16_t)(r->size - (uint16_t)(r->head - r->last));
    uint16_t head = r->head, sent = 0;
    uint64_t bytes = 0;
    for (; sent < n && room > 0; sent++) {
        struct pkt *p = client_tx_shareable(m, pkts[sent]);
        pkts[sent] = NULL;
        if (!p) {
            CTR_INC(m->d->ctr, dev_tx_drop);
            continue;
        }
        uint16_t slot = head & r->mask;
        uint32_t off = (uint32_t)(pkt_data(p) - base);
        desc_write(&r->desc[slot], m->region, off, p->len);
        r->held[slot] = p;
        bytes += p->len;
        head++;
        room--;
    }
    uint16_t queued = (uint16_t)(head - r->head);
    if (queued) {
        r->head = head;
        ring_store(r->hdr, RING_HEAD, head);
        ring_kick(r);
    }
    CTR_ADD(m->d->ctr, dev_tx, queued);
    CTR_ADD(m->d->ctr, dev_tx_bytes, bytes);
    *taken = sent;
    return queued;
}

/* Skip the rest of a chain starting after slot `cur` (exclusive), up to end.
 * Returns the slot after the chain. */
static uint16_t client_rx_skip_chain(struct memif_ring *r, uint16_t cur, uint16_t end)
{
    uint16_t flags = MEMIF_DESC_FLAG_NEXT;
    while ((flags & MEMIF_DESC_FLAG_NEXT) && cur != end) {
        uint16_t slot = cur & r->mask;
        flags = desc_read(&r->desc[slot]).flags;
        pkt_free(r->held[slot]);
        r->held[slot] = NULL;
        cur++;
    }
    return cur;
}

static uint16_t client_rx(struct memif *m, uint16_t q, struct pkt **pkts, uint16_t max)
{
    struct memif_ring *r = &m->c->q[q].s2c;
    uint16_t tail = ring_load(r->hdr, RING_TAIL);
    if ((uint16_t)(tail - r->last) > (uint16_t)(r->head - r->last)) {
        memif_set_broken(m, "server moved S2C tail past head");
        return 0;
    }
    /* The refill rewrites these very descriptors (the ring is kept full):
     * fetch their lines exclusive now, not shared and then again to write. */
    uint16_t ready = (uint16_t)(tail - r->last);
    desc_prefetch_w(r, r->last, ready < max ? ready : max);
    uint16_t n = 0, cur = r->last;
    uint64_t bytes = 0;
    while (cur != tail && n < max) {
        uint16_t slot = cur & r->mask;
        struct memif_desc dc = desc_read(&r->desc[slot]);
        struct pkt *p = r->held[slot];
        r->held[slot] = NULL;
        cur++;
        if ((dc.flags & MEMIF_DESC_FLAG_NEXT) || dc.length > m->buf_cap) {
            pkt_free(p);
            if (dc.flags & MEMIF_DESC_FLAG_NEXT)
                cur = client_rx_skip_chain(r, cur, tail);
            CTR_INC(m->d->ctr, dev_rx_oversize);
            continue;
        }
        p->off = PKT_HEADROOM;
        p->len = (uint16_t)dc.length;
        /* Exclusive: freed after reading, this buffer (LIFO) is the one
         * the next send fills, and the server only wrote it. The line
         * below the frame too: a reply's headers are pushed in front of
         * PKT_HEADROOM. */
        line_prefetch_w(p->buf + PKT_HEADROOM - 64);
        frame_prefetch_w(pkt_data(p));
        bytes += dc.length;
        pkts[n++] = p;
    }
    r->last = cur;
    client_rx_refill(m, r);
    /* Replies are likely: their C2S descriptors were read by the server. */
    const struct memif_ring *tx = &m->c->q[q].c2s;
    desc_prefetch_w(tx, tx->head, n < tx->size ? n : tx->size);
    CTR_ADD(m->d->ctr, dev_rx, n);
    CTR_ADD(m->d->ctr, dev_rx_bytes, bytes);
    return n;
}

/* ---- data path: server (copies) ------------------------------------------------ */

/* The bytes a client descriptor names, or NULL when they are not inside a
 * region the client gave us. */
static uint8_t *server_buffer(const struct memif_conn *c, const struct memif_desc *dc, uint32_t len)
{
    if (dc->region >= c->nregions)
        return NULL;
    const struct memif_region *g = &c->regions[dc->region];
    if ((uint64_t)dc->offset + len > g->size)
        return NULL;
    return g->base + dc->offset;
}

static uint16_t server_rx_skip_chain(struct memif_ring *r, uint16_t cur, uint16_t end)
{
    uint16_t flags = MEMIF_DESC_FLAG_NEXT;
    while ((flags & MEMIF_DESC_FLAG_NEXT) && cur != end)
        flags = desc_read(&r->desc[cur++ & r->mask]).flags;
    return cur;
}

/* Start fetching the client buffers of slots from..to (exclusive) before
 * copying: they were last touched by the client's core. Only descriptors
 * that name a region of ours are followed; the copy checks them again
 * (the client may rewrite them meanwhile). */
static void server_prefetch_bufs(const struct memif_conn *c, const struct memif_ring *r, uint16_t from,
                                 uint16_t to, int for_write)
{
    for (uint16_t cur = from; cur != to; cur++) {
        struct memif_desc dc = desc_read(&r->desc[cur & r->mask]);
        const uint8_t *b = server_buffer(c, &dc, 0);
        if (b && for_write)
            frame_prefetch_w(b);
        else if (b)
            frame_prefetch(b);
    }
}

/* n frames came in: replies are likely to follow. Ask now for the S2C
 * buffers and descriptors they will be copied into (the client's core wrote
 * them last), so the copies at the flush find them here and exclusive. */
static void server_prefetch_tx(const struct memif_conn *c, const struct memif_ring *tx, uint16_t n)
{
    uint16_t posted = (uint16_t)(ring_load(tx->hdr, RING_HEAD) - tx->last);
    if (posted > tx->size)
        return;   /* server_tx reports the broken ring */
    uint16_t k = n < posted ? n : posted;
    server_prefetch_bufs(c, tx, tx->last, (uint16_t)(tx->last + k), 1);
    desc_prefetch_w(tx, tx->last, k);
}

/* One C2S descriptor into a fresh pkt; NULL when dropped (and counted). */
static struct pkt *server_rx_one(struct memif *m, const struct memif_desc *dc)
{
    uint8_t *src = server_buffer(m->c, dc, dc->length);
    if (!src) {
        memif_set_broken(m, "client descriptor outside its regions");
        return NULL;
    }
    if (dc->length > m->d->pool->room - PKT_HEADROOM) {
        CTR_INC(m->d->ctr, dev_rx_oversize);
        return NULL;
    }
    struct pkt *p = pkt_alloc(m->d->pool);
    if (!p) {
        CTR_INC(m->d->ctr, dev_rx_nobuf);
        return NULL;
    }
    memcpy(pkt_data(p), src, dc->length);
    p->len = (uint16_t)dc->length;
    return p;
}

static uint16_t server_rx(struct memif *m, uint16_t q, struct pkt **pkts, uint16_t max)
{
    struct memif_ring *r = &m->c->q[q].c2s;
    uint16_t head = ring_load(r->hdr, RING_HEAD);
    if ((uint16_t)(head - r->last) > r->size) {
        memif_set_broken(m, "client moved C2S head too far");
        return 0;
    }
    uint16_t avail = (uint16_t)(head - r->last);
    server_prefetch_bufs(m->c, r, r->last, (uint16_t)(r->last + (avail < max ? avail : max)), 0);
    uint16_t n = 0, cur = r->last;
    uint64_t bytes = 0;
    while (cur != head && n < max && !m->broken) {
        struct memif_desc dc = desc_read(&r->desc[cur & r->mask]);
        cur++;
        if (dc.flags & MEMIF_DESC_FLAG_NEXT) {
            cur = server_rx_skip_chain(r, cur, head);
            CTR_INC(m->d->ctr, dev_rx_oversize);
            continue;
        }
        struct pkt *p = server_rx_one(m, &dc);
        if (p) {
            bytes += p->len;
            pkts[n++] = p;
        }
    }
    if (cur != r->last) {
        r->last = cur;
        ring_store(r->hdr, RING_TAIL, cur);   /* give the slots back */
    }
    server_prefetch_tx(m->c, &m->c->q[q].s2c, n);
    CTR_ADD(m->d->ctr, dev_rx, n);
    CTR_ADD(m->d->ctr, dev_rx_bytes, bytes);
    return n;
}

static uint16_t server_tx(struct memif *m, uint16_t q, struct pkt **pkts, uint16_t n, uint16_t *taken)
{
    struct memif_ring *r = &m->c->q[q].s2c;
    uint16_t head = ring_load(r->hdr, RING_HEAD);
    uint16_t room = (uint16_t)(head - r->last);
    *taken = 0;
    if (room > r->size) {
        memif_set_broken(m, "client moved S2C head too far");
        return 0;
    }
    uint16_t tail = r->last, i = 0;
    uint64_t bytes = 0;
    for (; i < n && room > 0 && !m->broken; i++) {
        struct pkt *p = pkts[i];
        pkts[i] = NULL;
        struct memif_desc *slot = &r->desc[tail & r->mask];
        struct memif_desc dc = desc_read(slot);
        uint8_t *dst = server_buffer(m->c, &dc, dc.length);
        if (!dst) {
            memif_set_broken(m, "client descriptor outside its regions");
        } else if (p->len > dc.length) {
            CTR_INC(m->d->ctr, dev_tx_drop);   /* would need a chain */
        } else {
            memcpy(dst, pkt_data(p), p->len);
            slot->length = p->len;
            slot->flags = 0;
            bytes += p->len;
            tail++;
            room--;
        }
        pkt_free(p);
    }
    uint16_t sent = (uint16_t)(tail - r->last);
    if (sent) {
        r->last = tail;
        ring_store(r->hdr, RING_TAIL, tail);
        ring_kick(r);
    }
    CTR_ADD(m->d->ctr, dev_tx, sent);
    CTR_ADD(m->d->ctr, dev_tx_bytes, bytes);
    *taken = i;
    return sent;
}

/* ---- ops: bursts --------------------------------------------------------------- */

static uint16_t queue_rx(struct memif *m, uint16_t q, struct pkt **pkts, uint16_t max)
{
    return m->c->cfg.role == ROLE_CLIENT ? client_rx(m, q, pkts, max) : server_rx(m, q, pkts, max);
}

/* Several queues on one device: take from each in turn, starting one
 * further every burst so none is always last. */
static uint16_t memif_rx_once(struct memif *m, struct pkt **pkts, uint16_t max)
{
    uint16_t n = 0;
    for (uint16_t i = 0; i < m->nserve && n < max && !m->broken; i++) {
        uint16_t q = (uint16_t)(m->qlo + (m->rr + i) % m->nserve);
        n += queue_rx(m, q, pkts + n, (uint16_t)(max - n));
    }
    m->rr++;
    return n;
}

static void memif_rx_irq_drain(struct memif *m)
{
    for (uint16_t i = 0; i < m->nserve; i++)
        irq_drain(queue_rx_ring(m->c, (uint16_t)(m->qlo + i))->irq_fd);
}

/* Frames waiting on RX ring r that we have not taken yet. */
static int ring_rx_pending(const struct memif_conn *c, const struct memif_ring *r)
{
    if (c->cfg.role == ROLE_CLIENT)
        return ring_load(r->hdr, RING_TAIL) != r->last;
    return ring_load(r->hdr, RING_HEAD) != r->last;
}

/* Polling long without sleep: tell the peer not to write our eventfds, so
 * neither side makes a system call per frame (busy polling never re-arms:
 * fdtable.c asks for poll_fds only before it sleeps). Once, not per burst: set
 * the mask, then clear the kick that woke us. A kick already under way when
 * the mask lands leaves a count behind: one spurious wakeup, never a lost
 * one. */
static void memif_rx_mask_kicks(struct memif *m)
{
    for (uint16_t i = 0; i < m->nserve; i++) {
        struct memif_ring *r = queue_rx_ring(m->c, (uint16_t)(m->qlo + i));
        if (r->kicks_masked)
            continue;
        ring_set_flags(r->hdr, MEMIF_RING_FLAG_MASK_INT);
        r->kicks_masked = 1;
        if (r->irq_fd >= 0)
            irq_drain(r->irq_fd);
    }
}

/* About to sleep: unmask, then look at the ring once more. The fence pairs
 * with the one in the peer's ring_kick: either it sees the flag clear and
 * kicks, or we see its frame here and kick ourselves so the poll returns at
 * once. */
static void memif_rx_arm_kicks(struct memif *m)
{
    for (uint16_t i = 0; i < m->nserve; i++) {
        struct memif_ring *r = queue_rx_ring(m->c, (uint16_t)(m->qlo + i));
        if (r->irq_fd < 0)
            continue;
        if (r->kicks_masked) {
            ring_set_flags(r->hdr, 0);
            r->kicks_masked = 0;
            atomic_thread_fence(memory_order_seq_cst);
        }
        if (ring_rx_pending(m->c, r))
            irq_self_kick(r->irq_fd);
    }
}

static uint16_t memif_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    (void)now;
    struct memif *m = memif_of(d);
    if (!m->started)
        return 0;
    memif_sync(m);
    if (!gen_up(m->gen) || m->broken || max == 0)
        return 0;
    if (!m->c->cfg.irq)
        return memif_rx_once(m, pkts, max);
    if (m->polls_awake >= MEMIF_MASK_AFTER) {
        memif_rx_mask_kicks(m);   /* busy polling: no kicks, no reads */
        return memif_rx_once(m, pkts, max);
    }
    m->polls_awake++;
    uint16_t n = memif_rx_once(m, pkts, max);
    if (n == 0 && !m->broken) {
        /* A loop that sleeps often keeps kicks on: peers that do not fence
         * between their index store and their flags load (DPDK's memif)
         * can miss our unmask, so we toggle the mask only when polling
         * long without sleep. About to look idle: clear the wakeup, then
         * look once more so a frame that raced with the clear is seen. */
        memif_rx_irq_drain(m);
        n = memif_rx_once(m, pkts, max);
    }
    return n;
}

/* Send n frames on queue q; whatever the ring does not take (full, peer
 * broken) is dropped and counted. */
static uint16_t queue_tx(struct memif *m, uint16_t q, struct pkt **pkts, uint16_t n)
{
    uint16_t taken = 0, sent = 0;
    if (!m->broken)
        sent = m->c->cfg.role == ROLE_CLIENT ? client_tx(m, q, pkts, n, &taken)
                                             : server_tx(m, q, pkts, n, &taken);
    for (uint16_t i = taken; i < n; i++) {
        pkt_free(pkts[i]);
        CTR_INC(m->d->ctr, dev_tx_drop);
    }
    return sent;
}

/* One device, several queues: each frame goes on the queue its flow's
 * steering hash picks, so a multi-worker peer gets it on the owner's ring
 * (ARP and other non-flow frames go on queue 0). */
static uint16_t tx_pick(const struct memif *m, const struct pkt *p)
{
    int w = steer_frame_owner(pkt_data(p), p->len, 0, m->nserve);
    return (uint16_t)(m->qlo + (w < 0 ? 0 : w));
}

static uint16_t memif_tx_spread(struct memif *m, struct pkt **pkts, uint16_t n)
{
    struct pkt *batch[MEMIF_TX_BATCH];
    uint16_t sent = 0;
    for (uint16_t q = m->qlo; q < m->qlo + m->nserve; q++) {
        uint16_t k = 0;
        for (uint16_t i = 0; i < n; i++) {
            if (!pkts[i] || tx_pick(m, pkts[i]) != q)
                continue;
            batch[k++] = pkts[i];
            pkts[i] = NULL;
            if (k == MEMIF_TX_BATCH) {
                sent += queue_tx(m, q, batch, k);
                k = 0;
            }
        }
        if (k)
            sent += queue_tx(m, q, batch, k);
    }
    return sent;
}

static uint16_t memif_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    (void)now;
    struct memif *m = memif_of(d);
    uint16_t sent = 0;
    if (m->started)
        memif_sync(m);
    if (m->started && gen_up(m->gen) && !m->broken && m->nserve > 0) {
        if (m->nserve == 1)
            return queue_tx(m, m->qlo, pkts, n);
        return memif_tx_spread(m, pkts, n);
    }
    for (uint16_t i = 0; i < n; i++) {   /* link down: nothing can be sent */
        pkt_free(pkts[i]);
        CTR_INC(d->ctr, dev_tx_drop);
    }
    return sent;
}

/* ---- ops: sleeping, memory, start ------------------------------------------- */

static int memif_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct memif *m = memif_of(d);
    struct memif_conn *c = m->c;
    int n = 0;
    int want[2] = { m->owner ? c->listen_fd : -1, m->owner ? c->ctl_fd : -1 };
    for (int i = 0; i < 2 && n < max; i++)
        if (want[i] >= 0)
            fds[n++] = (struct pollfd){ .fd = want[i], .events = POLLIN };
    /* The RX eventfds are ours to watch only while we are synced up: the
     * control plane closes them only after we acknowledged "down". The
     * caller is about to sleep: have the peer kick us again. */
    if (c->cfg.irq && gen_up(m->gen) && !m->broken)
        memif_rx_arm_kicks(m);
    m->polls_awake = 0;
    for (uint16_t i = 0; c->cfg.irq && gen_up(m->gen) && i < m->nserve && n < max; i++) {
        int fd = queue_rx_ring(c, (uint16_t)(m->qlo + i))->irq_fd;
        if (fd >= 0)
            fds[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
    }
    return n;
}

/* Client: one memfd region per device's pool, region 0 starting with all
 * the rings, so TX descriptors can point at pkt buffers themselves. */
static void *memif_pool_mem(struct dev *d, size_t bytes)
{
    struct memif *m = memif_of(d);
    struct memif_conn *c = m->c;
    struct memif_region *g = &c->regions[m->region];
    if (c->cfg.role != ROLE_CLIENT || g->base)
        return NULL;
    size_t lead = m->region == 0 ? c->rings_bytes : 0;
    size_t total = lead + ((bytes + MEMIF_PAGE - 1) & ~(size_t)(MEMIF_PAGE - 1));
    if (bytes == 0 || total > UINT32_MAX) {
        fprintf(stderr, "memif: pool of %zu bytes does not fit a region\n", bytes);
        return NULL;
    }
    g->fd = memfd_create("ustack-memif", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (g->fd < 0 || ftruncate(g->fd, (off_t)total) != 0) {
        perror("memif: memfd");
        fd_close(&g->fd);
        return NULL;
    }
    /* A server maps exactly this size: never let it shrink under it. */
    fcntl(g->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    if (base == MAP_FAILED) {
        perror("memif: mmap");
        fd_close(&g->fd);
        return NULL;
    }
    g->base = base;
    g->size = total;
    return g->base + lead;
}

static int client_check_pool(struct memif *m)
{
    struct memif_conn *c = m->c;
    struct pkt_pool *pool = m->d->pool;
    const struct memif_region *g = &c->regions[m->region];
    size_t lead = m->region == 0 ? c->rings_bytes : 0;
    if (!g->base || pool->mem != g->base + lead || pool->mem_bytes > g->size - lead) {
        fprintf(stderr, "memif: client pool must live in pool_mem() memory\n");
        return -1;
    }
    if (pool->room <= PKT_HEADROOM + 64) {
        fprintf(stderr, "memif: pool room %u too small\n", pool->room);
        return -1;
    }
    uint32_t cap = pool->room - PKT_HEADROOM;
    m->buf_cap = cap < c->cfg.bsize ? cap : c->cfg.bsize;
    /* Posted RX buffers must never starve the rest of the stack of pkts. */
    uint32_t share = pool->count / 2 / (uint32_t)(m->qhi - m->qlo);
    share = share ? share : 1;
    uint32_t size = 1u << c->cfg.log2;
    m->rx_post_max = size < share ? size : share;
    return 0;
}

static int memif_start(struct dev *d)
{
    struct memif *m = memif_of(d);
    if (m->c->cfg.role == ROLE_CLIENT && client_check_pool(m))
        return -1;
    m->started = 1;
    /* Release: our region is visible to the control plane's thread. */
    atomic_fetch_add_explicit(&m->c->nstarted, 1, memory_order_release);
    return 0;
}

/* ---- ops: open and close ------------------------------------------------------ */

/* Server: take over a stale socket file (nobody accepts on it) but never one
 * in use or something that is not a socket. */
static int server_clear_path(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "memif: %s exists and is not a socket\n", path);
        return -1;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path));
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    int live = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(s);
    if (live) {
        fprintf(stderr, "memif: %s is in use by a running server\n", path);
        return -1;
    }
    return unlink(path);
}

static int server_listen(struct memif_conn *c)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, c->cfg.path, sizeof(sa.sun_path));
    if (server_clear_path(c->cfg.path))
        return -1;
    c->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->listen_fd < 0 || bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "memif: bind %s: %s\n", c->cfg.path, strerror(errno));
        fd_close(&c->listen_fd);
        return -1;
    }
    c->created_path = 1;
    if (listen(c->listen_fd, 8) != 0) {
        perror("memif: listen");
        return -1;
    }
    return 0;
}

static int memif_parse_uint(const char *key, const char *val, unsigned long lo,
                            unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = val ? strtoul(val, &end, 0) : 0;
    if (!val || !*val || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "memif: %s wants a number in %lu..%lu\n", key, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int memif_parse_path(struct memif_cfg *cfg, const char *key)
{
    if (cfg->path[0] || strlen(key) >= sizeof(cfg->path)) {
        fprintf(stderr, "memif: bad socket path '%s'\n", key);
        return -1;
    }
    memcpy(cfg->path, key, strlen(key) + 1);
    return 0;
}

static int memif_parse_arg(void *ctx, const char *key, const char *val)
{
    struct memif_cfg *cfg = ctx;
    unsigned long v;
    if (!val)
        return memif_parse_path(cfg, key);
    if (!strcmp(key, "role")) {
        if (strcmp(val, "server") && strcmp(val, "client")) {
            fprintf(stderr, "memif: role is server or client\n");
            return -1;
        }
        cfg->role = strcmp(val, "server") ? ROLE_CLIENT : ROLE_SERVER;
        return 0;
    }
    if (!strcmp(key, "irq"))
        return memif_parse_uint(key, val, 0, 1, &v) ? -1 : (cfg->irq = (uint8_t)v, 0);
    if (!strcmp(key, "id"))
        return memif_parse_uint(key, val, 0, UINT32_MAX, &v) ? -1 : (cfg->id = (uint32_t)v, 0);
    if (!strcmp(key, "rsize"))
        return memif_parse_uint(key, val, 1, MEMIF_LOG2_MAX, &v) ? -1 : (cfg->log2 = (uint8_t)v, 0);
    if (!strcmp(key, "bsize"))
        return memif_parse_uint(key, val, 64, 65535, &v) ? -1 : (cfg->bsize = (uint32_t)v, 0);
    if (!strcmp(key, "queues"))
        return memif_parse_uint(key, val, 1, MEMIF_MAX_QUEUES, &v) ? -1 : (cfg->nq = (uint16_t)v, 0);
    if (!strcmp(key, "queue")) {
        cfg->has_queue = 1;
        return memif_parse_uint(key, val, 0, MEMIF_MAX_QUEUES - 1, &v) ? -1 : (cfg->queue = (uint16_t)v, 0);
    }
    fprintf(stderr, "memif: unknown option '%s'\n", key);
    return -1;
}

static int memif_parse(struct memif_cfg *cfg, const char *args)
{
    *cfg = (struct memif_cfg){ .role = ROLE_CLIENT, .log2 = 10, .bsize = 2048, .nq = 1, .irq = 1 };
    if (dev_args_each(args, ',', memif_parse_arg, cfg) != 0)
        return -1;
    if (!cfg->path[0]) {
        fprintf(stderr, "memif: usage memif:SOCKETPATH[,role=server|client][,id=N]"
                        "[,rsize=LOG2][,bsize=N][,queues=N[,queue=I]][,irq=0|1]\n");
        return -1;
    }
    if (cfg->has_queue && cfg->queue >= cfg->nq) {
        fprintf(stderr, "memif: queue %u out of range (queues=%u)\n", cfg->queue, cfg->nq);
        return -1;
    }
    return 0;
}

/* A shared connection's devices differ only in their queue. */
static int memif_cfg_same(const struct memif_cfg *a, const struct memif_cfg *b)
{
    return a->role == b->role && !strcmp(a->path, b->path) && a->id == b->id && a->log2 == b->log2 &&
           a->irq == b->irq && a->bsize == b->bsize && a->nq == b->nq && a->has_queue == b->has_queue;
}

static void conn_destroy(struct memif_conn *c)
{
    if (c->ctl_fd >= 0)
        ctl_send_disconnect(c->ctl_fd, "interface closed");
    fd_close(&c->ctl_fd);
    for (int q = 0; q < MEMIF_MAX_QUEUES; q++) {
        ring_unmap(&c->q[q].c2s);
        ring_unmap(&c->q[q].s2c);
    }
    regions_release(c);   /* server: the client's; client: ours */
    fd_close(&c->listen_fd);
    if (c->created_path)
        unlink(c->cfg.path);
    free(c);
}

static struct memif_conn *conn_new(const struct memif_cfg *cfg)
{
    struct memif_conn *c = aligned_alloc(64, (sizeof(*c) + 63) & ~(size_t)63);
    if (!c)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    c->ndevs = cfg->has_queue ? cfg->nq : 1;
    c->listen_fd = c->ctl_fd = -1;
    for (int q = 0; q < MEMIF_MAX_QUEUES; q++)
        c->q[q].c2s.irq_fd = c->q[q].s2c.irq_fd = -1;
    for (int i = 0; i < MEMIF_MAX_REGIONS; i++)
        c->regions[i].fd = -1;
    /* Worker stacks would each pick a random MAC, and the peer's ARP cache
     * would flip between them: a shared connection has one, locally
     * administered unicast (IEEE 802 U/L bit), unless --mac says otherwise. */
    rand_bytes(c->mac, sizeof(c->mac));
    c->mac[0] = (uint8_t)((c->mac[0] & 0xfe) | 0x02);
    if (cfg->role == ROLE_CLIENT) {
        size_t rings = 2 * (size_t)cfg->nq * ring_bytes(cfg->log2);
        c->rings_bytes = (rings + MEMIF_PAGE - 1) & ~(size_t)(MEMIF_PAGE - 1);
        c->nregions = cfg->has_queue ? cfg->nq : 1;
    }
    if (cfg->role == ROLE_SERVER && server_listen(c)) {
        conn_destroy(c);
        return NULL;
    }
    return c;
}

/* Registry lock held: the connection this queue's device joins. */
static struct memif_conn *registry_attach(const struct memif_cfg *cfg)
{
    struct memif_conn *c = memif_registry;
    while (c && !(c->cfg.role == cfg->role && c->cfg.id == cfg->id && !strcmp(c->cfg.path, cfg->path)))
        c = c->next;
    if (!c) {
        c = conn_new(cfg);
        if (!c)
            return NULL;
        c->next = memif_registry;
        memif_registry = c;
    } else if (!memif_cfg_same(&c->cfg, cfg) || c->attached[cfg->queue]) {
        fprintf(stderr, "memif: %s: queue %u opened twice or with other options\n", cfg->path, cfg->queue);
        return NULL;
    }
    c->attached[cfg->queue] = 1;
    c->refs++;
    return c;
}

static void registry_remove(struct memif_conn *c)
{
    struct memif_conn **pp = &memif_registry;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
}

/* Client: the pkt each ring slot holds, allocated once for the largest ring. */
static int client_alloc_held(struct memif *m)
{
    size_t size = (size_t)1 << m->c->cfg.log2;
    for (uint16_t q = m->qlo; q < m->qhi; q++) {
        struct memif_queue *mq = &m->c->q[q];
        mq->c2s.held = calloc(size, sizeof(struct pkt *));
        mq->s2c.held = calloc(size, sizeof(struct pkt *));
        if (!mq->c2s.held || !mq->s2c.held)
            return -1;
    }
    return 0;
}

/* Let go of our queues (their pkts, their slot tables), tell the control
 * plane they are gone, and free the connection when we were the last. */
static void memif_detach(struct memif *m)
{
    struct memif_conn *c = m->c;
    for (uint16_t q = m->qlo; q < m->qhi; q++) {
        queue_release_held(c, q);
        free(c->q[q].c2s.held);
        free(c->q[q].s2c.held);
        c->q[q].c2s.held = c->q[q].s2c.held = NULL;
    }
    memif_ack(m, MEMIF_ACK_GONE);
    int last = 1;
    if (c->cfg.has_queue) {
        pthread_mutex_lock(&memif_registry_lock);
        c->attached[m->qlo] = 0;
        last = --c->refs == 0;
        if (last)
            registry_remove(c);
        pthread_mutex_unlock(&memif_registry_lock);
    }
    if (last)
        conn_destroy(c);
}

static void memif_close(struct dev *d)
{
    struct memif *m = memif_of(d);
    if (!m)
        return;
    if (m->c)
        memif_detach(m);
    if (d->ctr == &m->own_ctr)
        d->ctr = NULL;
    free(m);
    d->priv = NULL;
    d->flags &= ~DEV_F_LINK_UP;
}

static struct memif_conn *memif_join(const struct memif_cfg *cfg)
{
    if (!cfg->has_queue)
        return conn_new(cfg);   /* a connection of its own */
    pthread_mutex_lock(&memif_registry_lock);
    struct memif_conn *c = registry_attach(cfg);
    pthread_mutex_unlock(&memif_registry_lock);
    return c;
}

static int memif_open(struct dev *d, const char *args)
{
    struct memif_cfg cfg;
    if (memif_parse(&cfg, args))
        return -1;
    struct memif *m = calloc(1, sizeof(*m));
    if (!m)
        return -1;
    m->d = d;
    d->priv = m;
    if (!d->ctr)
        d->ctr = &m->own_ctr;
    m->c = memif_join(&cfg);
    if (!m->c) {
        memif_close(d);
        return -1;
    }
    m->qlo = cfg.has_queue ? cfg.queue : 0;
    m->qhi = cfg.has_queue ? (uint16_t)(cfg.queue + 1) : cfg.nq;
    m->owner = m->qlo == 0;
    m->region = cfg.has_queue ? cfg.queue : 0;
    if (cfg.role == ROLE_CLIENT && client_alloc_held(m)) {
        memif_close(d);
        return -1;
    }
    d->queue = m->qlo;
    d->flags &= ~(DEV_F_HAS_MAC | DEV_F_LINK_UP | DEV_F_L3);   /* memif has no MAC */
    if (cfg.has_queue) {
        memcpy(d->mac, m->c->mac, sizeof(d->mac));
        d->flags |= DEV_F_HAS_MAC;
    }
    return 0;
}

const struct dev_ops dev_memif_ops = {
    .kind = "memif",
    .open = memif_open,
    .pool_mem = memif_pool_mem,
    .start = memif_start,
    .rx_burst = memif_rx_burst,
    .tx_burst = memif_tx_burst,
    .service = memif_service,
    .poll_fds = memif_poll_fds,
    .close = memif_close,
};
