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
 * region 0 (after the rings) through ops->pool_mem, so a TX descriptor points
 * at the pkt buffer itself and RX buffers are posted straight from the pool;
 * each ring slot remembers the pkt it holds until the peer gives it back.
 * ustack as server copies between the client's buffers and its own pool (the
 * protocol gives the server no memory of its own in the client's regions).
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
#define MEMIF_PAGE          4096u

enum memif_role { ROLE_CLIENT, ROLE_SERVER };

enum memif_state {
    ST_DOWN,          /* client: no socket; server: listening, no peer        */
    ST_WAIT_HELLO,    /* client: connected, HELLO not yet received            */
    ST_WAIT_INIT,     /* server: peer accepted, HELLO sent                     */
    ST_HANDSHAKE,     /* client: sending INIT..ADD_RING one per ACK;
                         server: HELLO sent, taking INIT, regions, rings      */
    ST_WAIT_CONNECTED,/* client: CONNECT sent                                 */
    ST_UP,
};

struct memif_ring {
    uint8_t *hdr;               /* ring header in mapped memory; NULL: absent */
    struct memif_desc *desc;
    uint16_t size, mask;
    uint16_t head;              /* our copy of the index we produce           */
    uint16_t last;              /* oldest slot we have not consumed/reclaimed  */
    int irq_fd;                 /* eventfd shared with the peer               */
    struct pkt **held;          /* client: the pkt each slot holds            */
};

struct memif_region {
    uint8_t *base;
    uint64_t size;
    int fd;
};

struct memif {
    struct dev *d;
    enum memif_role role;
    enum memif_state state;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    uint32_t id;
    uint8_t log2;               /* configured ring size                       */
    uint8_t log2_run;           /* negotiated (client) / announced (server)   */
    uint32_t bsize;
    uint16_t nq;                /* ring pairs the client offers               */
    uint8_t irq;                /* we want kicks on our RX ring               */
    uint8_t started;
    uint8_t created_path;
    const char *broken;         /* data path found the peer misbehaving       */
    int listen_fd, ctl_fd;
    uint32_t step;              /* client: next handshake message to send     */
    uint64_t now, next_connect, deadline;
    uint32_t buf_cap;           /* client: bytes posted per RX buffer         */
    uint32_t rx_post_max;       /* client: RX buffers kept posted             */
    /* Client: our single region = rings, then the pool's data area. */
    int shm_fd;
    uint8_t *shm;
    size_t shm_bytes, rings_bytes;
    /* Server: the client's regions. */
    struct memif_region regions[MEMIF_MAX_REGIONS];
    uint16_t nregions;
    struct memif_ring c2s[MEMIF_MAX_QUEUES], s2c[MEMIF_MAX_QUEUES];
    struct ust_counters own_ctr; /* used when the device has no counters     */
};

static struct memif *memif_of(struct dev *d) { return d->priv; }

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

/* Wake the consumer unless it said it polls (MEMIF_RING_FLAG_MASK_INT). */
static void ring_kick(const struct memif_ring *r)
{
    if (r->irq_fd < 0 || (ring_flags(r->hdr) & MEMIF_RING_FLAG_MASK_INT))
        return;
    uint64_t one = 1;
    ssize_t rc = write(r->irq_fd, &one, sizeof(one));
    (void)rc;   /* EAGAIN: the counter is saturated, the peer is awake anyway */
}

static void irq_drain(int fd)
{
    uint64_t v;
    ssize_t rc = read(fd, &v, sizeof(v));
    (void)rc;
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

static int ctl_send_simple(struct memif *m, uint16_t type)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    msg_put16(msg, MSG_TYPE, type);
    if (type == MSG_CONNECT || type == MSG_CONNECTED)
        msg_put_str(msg, CONNECT_NAME, MEMIF_NAME_LEN, "ustack");
    return ctl_send(m->ctl_fd, msg, -1);
}

/* ---- connection teardown ------------------------------------------------- */

static void ring_release(struct memif_ring *r)
{
    if (r->held) {
        for (uint32_t i = 0; i < (uint32_t)r->size; i++) {
            pkt_free(r->held[i]);
            r->held[i] = NULL;
        }
    }
    fd_close(&r->irq_fd);
    r->hdr = NULL;
    r->desc = NULL;
    r->head = r->last = 0;
}

static void regions_release(struct memif *m)
{
    for (uint16_t i = 0; i < m->nregions; i++) {
        struct memif_region *g = &m->regions[i];
        if (g->base)
            munmap(g->base, g->size);
        fd_close(&g->fd);
        g->base = NULL;
        g->size = 0;
    }
    m->nregions = 0;
}

/* Drop the connection (telling the peer why when a reason is given) and go
 * back to listening (server) or to reconnect attempts (client). */
static void memif_link_down(struct memif *m, const char *reason)
{
    if (m->ctl_fd >= 0 && reason)
        ctl_send_disconnect(m->ctl_fd, reason);
    fd_close(&m->ctl_fd);
    for (int q = 0; q < MEMIF_MAX_QUEUES; q++) {
        ring_release(&m->c2s[q]);
        ring_release(&m->s2c[q]);
    }
    if (m->role == ROLE_SERVER)
        regions_release(m);
    m->d->flags &= ~DEV_F_LINK_UP;
    m->state = ST_DOWN;
    m->broken = NULL;
    m->next_connect = m->now + MEMIF_RETRY_NS;
}

/* ---- client: region, rings, handshake ------------------------------------- */

static uint8_t *client_ring_hdr(struct memif *m, int c2s, uint16_t q)
{
    size_t idx = c2s ? q : (size_t)m->nq + q;
    return m->shm + idx * ring_bytes(m->log2);
}

static size_t client_ring_offset(struct memif *m, int c2s, uint16_t q)
{
    return (size_t)(client_ring_hdr(m, c2s, q) - m->shm);
}

/* Post empty pool buffers on our S2C ring for the server to fill. */
static void client_rx_refill(struct memif *m, struct memif_ring *r)
{
    uint16_t head = r->head;
    uint32_t base_off = (uint32_t)(m->d->pool->mem - m->shm);
    while ((uint16_t)(head - r->last) < m->rx_post_max) {
        struct pkt *p = pkt_alloc(m->d->pool);
        if (!p)
            break;
        uint16_t slot = head & r->mask;
        uint32_t off = base_off + (uint32_t)(p->buf - m->d->pool->mem) + PKT_HEADROOM;
        desc_write(&r->desc[slot], 0, off, m->buf_cap);
        r->held[slot] = p;
        head++;
    }
    if (head != r->head) {
        r->head = head;
        ring_store(r->hdr, RING_HEAD, head);
    }
}

static int client_ring_init(struct memif *m, int c2s, uint16_t q)
{
    struct memif_ring *r = c2s ? &m->c2s[q] : &m->s2c[q];
    r->hdr = client_ring_hdr(m, c2s, q);
    r->desc = (struct memif_desc *)(r->hdr + RING_DESC);
    r->size = (uint16_t)(1u << m->log2_run);
    r->mask = (uint16_t)(r->size - 1);
    r->head = r->last = 0;
    memset(r->hdr, 0, RING_DESC);
    msg_put32(r->hdr, RING_COOKIE, MEMIF_COOKIE);
    /* We are the consumer of S2C rings: say whether we want kicks. */
    ring_set_flags(r->hdr, (!c2s && !m->irq) ? MEMIF_RING_FLAG_MASK_INT : 0);
    r->irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* RX buffers are posted only after CONNECTED: a DPDK server zeroes
     * head and tail of every ring when it takes CONNECT. */
    return r->irq_fd < 0 ? -1 : 0;
}

static const char *client_on_hello(struct memif *m, const uint8_t *msg)
{
    uint16_t vmin = msg_get16(msg, HELLO_MIN_VERSION), vmax = msg_get16(msg, HELLO_MAX_VERSION);
    if (vmin > MEMIF_VERSION || vmax < MEMIF_VERSION)
        return "incompatible memif version";
    uint32_t max_c2s = msg_get16(msg, HELLO_MAX_C2S_RING) + 1u;
    uint32_t max_s2c = msg_get16(msg, HELLO_MAX_S2C_RING) + 1u;
    if (m->nq > max_c2s || m->nq > max_s2c)
        return "server accepts fewer queues than configured";
    uint8_t log2 = msg[HELLO_MAX_LOG2];
    m->log2_run = log2 < m->log2 ? log2 : m->log2;
    if (m->log2_run < 1)
        return "server ring size too small";
    for (uint16_t q = 0; q < m->nq; q++)
        if (client_ring_init(m, 1, q) || client_ring_init(m, 0, q))
            return "eventfd failed";
    return NULL;
}

/* Handshake message number `step`: INIT, ADD_REGION, C2S rings, S2C rings,
 * CONNECT (memif.html "Connection establishment"). */
static int client_send_step(struct memif *m)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    uint32_t s = m->step++;
    int fd = -1;
    if (s == 0) {
        msg_put16(msg, MSG_TYPE, MSG_INIT);
        msg_put16(msg, INIT_VERSION, MEMIF_VERSION);
        msg_put32(msg, INIT_ID, m->id);
        msg[INIT_MODE] = MEMIF_MODE_ETHERNET;
        msg_put_str(msg, INIT_NAME, MEMIF_NAME_LEN, "ustack");
    } else if (s == 1) {
        msg_put16(msg, MSG_TYPE, MSG_ADD_REGION);
        msg_put16(msg, ADD_REGION_INDEX, 0);
        msg_put64(msg, ADD_REGION_SIZE, m->shm_bytes);
        fd = m->shm_fd;
    } else if (s < 2u + 2u * m->nq) {
        int c2s = s < 2u + m->nq;
        uint16_t q = (uint16_t)(c2s ? s - 2 : s - 2 - m->nq);
        msg_put16(msg, MSG_TYPE, MSG_ADD_RING);
        msg_put16(msg, ADD_RING_FLAGS, c2s ? MEMIF_ADD_RING_FLAG_C2S : 0);
        msg_put16(msg, ADD_RING_INDEX, q);
        msg_put16(msg, ADD_RING_REGION, 0);
        msg_put32(msg, ADD_RING_OFFSET, (uint32_t)client_ring_offset(m, c2s, q));
        msg[ADD_RING_LOG2] = m->log2_run;
        msg_put16(msg, ADD_RING_PRIV_HDR, 0);
        fd = c2s ? m->c2s[q].irq_fd : m->s2c[q].irq_fd;
    } else {
        msg_put16(msg, MSG_TYPE, MSG_CONNECT);
        msg_put_str(msg, CONNECT_NAME, MEMIF_NAME_LEN, "ustack");
        m->state = ST_WAIT_CONNECTED;
    }
    return ctl_send(m->ctl_fd, msg, fd);
}

static const char *client_on_msg(struct memif *m, uint16_t type, const uint8_t *msg)
{
    if (type == MSG_HELLO && m->state == ST_WAIT_HELLO) {
        const char *err = client_on_hello(m, msg);
        if (err)
            return err;
        m->state = ST_HANDSHAKE;
        m->step = 0;
        return client_send_step(m) ? "send failed" : NULL;
    }
    if (type == MSG_ACK && m->state == ST_HANDSHAKE)
        return client_send_step(m) ? "send failed" : NULL;
    if (type == MSG_CONNECTED && m->state == ST_WAIT_CONNECTED) {
        client_rx_refill(m, &m->s2c[m->d->queue]);
        m->state = ST_UP;
        m->d->flags |= DEV_F_LINK_UP;
        return NULL;
    }
    return "unexpected message";
}

static void client_try_connect(struct memif *m)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, m->path, sizeof(sa.sun_path));
    m->next_connect = m->now + MEMIF_RETRY_NS;
    m->ctl_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->ctl_fd < 0)
        return;
    if (connect(m->ctl_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fd_close(&m->ctl_fd);     /* no server yet: try again in a second */
        return;
    }
    m->state = ST_WAIT_HELLO;
    m->deadline = m->now + MEMIF_HANDSHAKE_NS;
}

/* ---- server: handshake ----------------------------------------------------- */

static int server_send_hello(struct memif *m)
{
    uint8_t msg[MEMIF_MSG_LEN] = { 0 };
    msg_put16(msg, MSG_TYPE, MSG_HELLO);
    msg_put_str(msg, HELLO_NAME, MEMIF_NAME_LEN, "ustack");
    msg_put16(msg, HELLO_MIN_VERSION, MEMIF_VERSION);
    msg_put16(msg, HELLO_MAX_VERSION, MEMIF_VERSION);
    msg_put16(msg, HELLO_MAX_REGION, MEMIF_MAX_REGIONS - 1);
    msg_put16(msg, HELLO_MAX_S2C_RING, MEMIF_MAX_QUEUES - 1);
    msg_put16(msg, HELLO_MAX_C2S_RING, MEMIF_MAX_QUEUES - 1);
    msg[HELLO_MAX_LOG2] = m->log2;
    return ctl_send(m->ctl_fd, msg, -1);
}

static const char *server_on_init(struct memif *m, const uint8_t *msg)
{
    if (msg_get16(msg, INIT_VERSION) != MEMIF_VERSION)
        return "incompatible memif version";
    if (msg_get32(msg, INIT_ID) != m->id)
        return "unmatched interface id";
    if (msg[INIT_MODE] != MEMIF_MODE_ETHERNET)
        return "only ethernet mode is supported";
    m->state = ST_HANDSHAKE;
    return NULL;
}

static const char *server_on_add_region(struct memif *m, const uint8_t *msg, int *fd)
{
    uint16_t idx = msg_get16(msg, ADD_REGION_INDEX);
    uint64_t size = msg_get64(msg, ADD_REGION_SIZE);
    struct stat st;
    if (*fd < 0)
        return "region without a file descriptor";
    if (idx != m->nregions || idx >= MEMIF_MAX_REGIONS)
        return "bad region index";
    /* Map no more than the file holds: touching past its end is SIGBUS. */
    if (size == 0 || size > MEMIF_MAX_REGION_BYTES || fstat(*fd, &st) != 0 ||
        (uint64_t)st.st_size < size)
        return "bad region size";
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (base == MAP_FAILED)
        return "region mmap failed";
    struct memif_region *g = &m->regions[m->nregions++];
    g->base = base;
    g->size = size;
    g->fd = *fd;
    *fd = -1;
    return NULL;
}

static const char *server_on_add_ring(struct memif *m, const uint8_t *msg, int *fd)
{
    int c2s = msg_get16(msg, ADD_RING_FLAGS) & MEMIF_ADD_RING_FLAG_C2S;
    uint16_t idx = msg_get16(msg, ADD_RING_INDEX);
    uint16_t region = msg_get16(msg, ADD_RING_REGION);
    uint32_t off = msg_get32(msg, ADD_RING_OFFSET);
    uint8_t log2 = msg[ADD_RING_LOG2];
    if (*fd < 0)
        return "ring without an interrupt fd";
    if (idx >= MEMIF_MAX_QUEUES || region >= m->nregions)
        return "bad ring index or region";
    if (log2 < 1 || log2 > m->log2 || msg_get16(msg, ADD_RING_PRIV_HDR) != 0)
        return "bad ring size";
    /* Aligned for the u16 atomics and u32 descriptor fields, and inside. */
    if ((off & 7) || (uint64_t)off + ring_span(log2) > m->regions[region].size)
        return "ring outside its region";
    struct memif_ring *r = c2s ? &m->c2s[idx] : &m->s2c[idx];
    if (r->hdr)
        return "ring added twice";
    r->hdr = m->regions[region].base + off;
    r->desc = (struct memif_desc *)(r->hdr + RING_DESC);
    r->size = (uint16_t)(1u << log2);
    r->mask = (uint16_t)(r->size - 1);
    r->irq_fd = *fd;
    *fd = -1;
    /* Our writes to the eventfd must never block the loop. */
    fcntl(r->irq_fd, F_SETFL, fcntl(r->irq_fd, F_GETFL) | O_NONBLOCK);
    return NULL;
}

static const char *server_on_connect(struct memif *m)
{
    uint16_t q = m->d->queue;
    struct memif_ring *rx = &m->c2s[q], *tx = &m->s2c[q];
    if (!rx->hdr || !tx->hdr)
        return "no ring pair for our queue";
    uint32_t c1, c2;
    memcpy(&c1, rx->hdr + RING_COOKIE, 4);
    memcpy(&c2, tx->hdr + RING_COOKIE, 4);
    if (c1 != MEMIF_COOKIE || c2 != MEMIF_COOKIE)
        return "wrong ring cookie";
    /* Rings start empty whatever the client left in them (DPDK's server
     * does the same, and DPDK clients post RX buffers only after this).
     * We consume C2S from tail to head; we produce S2C by advancing tail. */
    for (int i = 0; i < MEMIF_MAX_QUEUES; i++) {
        struct memif_ring *r[2] = { &m->c2s[i], &m->s2c[i] };
        for (int k = 0; k < 2; k++) {
            if (!r[k]->hdr)
                continue;
            ring_store(r[k]->hdr, RING_HEAD, 0);
            ring_store(r[k]->hdr, RING_TAIL, 0);
            r[k]->last = 0;
        }
    }
    ring_set_flags(rx->hdr, m->irq ? 0 : MEMIF_RING_FLAG_MASK_INT);
    if (ctl_send_simple(m, MSG_CONNECTED))
        return "send failed";
    m->state = ST_UP;
    m->d->flags |= DEV_F_LINK_UP;
    return NULL;
}

static const char *server_on_msg(struct memif *m, uint16_t type, const uint8_t *msg, int *fd)
{
    const char *err;
    if (type == MSG_INIT && m->state == ST_WAIT_INIT)
        err = server_on_init(m, msg);
    else if (type == MSG_ADD_REGION && m->state == ST_HANDSHAKE)
        err = server_on_add_region(m, msg, fd);
    else if (type == MSG_ADD_RING && m->state == ST_HANDSHAKE)
        err = server_on_add_ring(m, msg, fd);
    else if (type == MSG_CONNECT && m->state == ST_HANDSHAKE)
        return server_on_connect(m);
    else
        return "unexpected message";
    if (!err && ctl_send_simple(m, MSG_ACK))
        err = "send failed";
    return err;
}

static void server_accept(struct memif *m)
{
    for (int i = 0; i < MEMIF_ACCEPTS_PER_SERVICE; i++) {
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (m->ctl_fd >= 0) {
            /* One peer per interface id: a second one is told so and dropped. */
            ctl_send_disconnect(fd, "interface already connected");
            close(fd);
            continue;
        }
        m->ctl_fd = fd;
        m->deadline = m->now + MEMIF_HANDSHAKE_NS;
        m->state = ST_WAIT_INIT;
        if (server_send_hello(m))
            memif_link_down(m, NULL);
    }
}

/* ---- control plane driver ---------------------------------------------------- */

static void memif_read_ctl(struct memif *m)
{
    uint8_t msg[MEMIF_MSG_LEN];
    for (int i = 0; i < MEMIF_MSGS_PER_SERVICE && m->ctl_fd >= 0; i++) {
        int fd = -1;
        int rc = ctl_recv(m->ctl_fd, msg, &fd);
        if (rc == 0)
            return;
        if (rc < 0) {
            memif_link_down(m, NULL);
            return;
        }
        uint16_t type = msg_get16(msg, MSG_TYPE);
        const char *err;
        if (type == MSG_DISCONNECT) {
            fd_close(&fd);
            memif_link_down(m, NULL);
            return;
        }
        if (m->role == ROLE_SERVER)
            err = server_on_msg(m, type, msg, &fd);
        else
            err = client_on_msg(m, type, msg);
        fd_close(&fd);      /* any descriptor a handler did not keep */
        if (err) {
            fprintf(stderr, "memif %s: %s\n", m->path, err);
            memif_link_down(m, err);
            return;
        }
    }
}

static void client_tx_reclaim(struct memif *m, struct memif_ring *r);

static uint64_t memif_service(struct dev *d, uint64_t now)
{
    struct memif *m = memif_of(d);
    m->now = now;
    if (!m->started)
        return UINT64_MAX;
    if (m->broken) {
        fprintf(stderr, "memif %s: %s\n", m->path, m->broken);
        memif_link_down(m, m->broken);
    }
    if (m->role == ROLE_SERVER)
        server_accept(m);
    else if (m->state == ST_DOWN && now >= m->next_connect)
        client_try_connect(m);
    if (m->ctl_fd >= 0)
        memif_read_ctl(m);
    if (m->state != ST_DOWN && m->state != ST_UP && now >= m->deadline)
        memif_link_down(m, "handshake timed out");
    if (m->state == ST_UP && m->role == ROLE_CLIENT)
        client_tx_reclaim(m, &m->c2s[d->queue]);   /* idle TX buffers go home */
    if (m->state == ST_UP)
        return UINT64_MAX;
    if (m->state == ST_DOWN)
        return m->role == ROLE_CLIENT ? m->next_connect : UINT64_MAX;
    return m->deadline;
}

/* ---- data path: client (zero-copy) ------------------------------------------- */

/* Free the TX buffers the server has consumed (slots last..tail). */
static void client_tx_reclaim(struct memif *m, struct memif_ring *r)
{
    uint16_t tail = ring_load(r->hdr, RING_TAIL);
    uint16_t done = (uint16_t)(tail - r->last);
    if (done > (uint16_t)(r->head - r->last)) {
        m->broken = "server moved C2S tail past head";
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
static uint16_t client_tx(struct memif *m, struct pkt **pkts, uint16_t n, uint16_t *taken)
{
    struct memif_ring *r = &m->c2s[m->d->queue];
    client_tx_reclaim(m, r);
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
        uint32_t off = (uint32_t)(pkt_data(p) - m->shm);
        desc_write(&r->desc[slot], 0, off, p->len);
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

static uint16_t client_rx(struct memif *m, struct pkt **pkts, uint16_t max)
{
    struct memif_ring *r = &m->s2c[m->d->queue];
    uint16_t tail = ring_load(r->hdr, RING_TAIL);
    if ((uint16_t)(tail - r->last) > (uint16_t)(r->head - r->last)) {
        m->broken = "server moved S2C tail past head";
        return 0;
    }
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
        bytes += dc.length;
        pkts[n++] = p;
    }
    r->last = cur;
    client_rx_refill(m, r);
    CTR_ADD(m->d->ctr, dev_rx, n);
    CTR_ADD(m->d->ctr, dev_rx_bytes, bytes);
    return n;
}

/* ---- data path: server (copies) ------------------------------------------------ */

/* The bytes a client descriptor names, or NULL when they are not inside a
 * region the client gave us. */
static uint8_t *server_buffer(struct memif *m, const struct memif_desc *dc, uint32_t len)
{
    if (dc->region >= m->nregions)
        return NULL;
    const struct memif_region *g = &m->regions[dc->region];
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

/* One C2S descriptor into a fresh pkt; NULL when dropped (and counted). */
static struct pkt *server_rx_one(struct memif *m, const struct memif_desc *dc)
{
    uint8_t *src = server_buffer(m, dc, dc->length);
    if (!src) {
        m->broken = "client descriptor outside its regions";
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

static uint16_t server_rx(struct memif *m, struct pkt **pkts, uint16_t max)
{
    struct memif_ring *r = &m->c2s[m->d->queue];
    uint16_t head = ring_load(r->hdr, RING_HEAD);
    if ((uint16_t)(head - r->last) > r->size) {
        m->broken = "client moved C2S head too far";
        return 0;
    }
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
    CTR_ADD(m->d->ctr, dev_rx, n);
    CTR_ADD(m->d->ctr, dev_rx_bytes, bytes);
    return n;
}

static uint16_t server_tx(struct memif *m, struct pkt **pkts, uint16_t n, uint16_t *taken)
{
    struct memif_ring *r = &m->s2c[m->d->queue];
    uint16_t head = ring_load(r->hdr, RING_HEAD);
    uint16_t room = (uint16_t)(head - r->last);
    if (room > r->size) {
        m->broken = "client moved S2C head too far";
        return 0;
    }
    uint16_t tail = r->last, i = 0;
    uint64_t bytes = 0;
    for (; i < n && room > 0 && !m->broken; i++) {
        struct pkt *p = pkts[i];
        pkts[i] = NULL;
        struct memif_desc *slot = &r->desc[tail & r->mask];
        struct memif_desc dc = desc_read(slot);
        uint8_t *dst = server_buffer(m, &dc, dc.length);
        if (!dst) {
            m->broken = "client descriptor outside its regions";
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

/* ---- ops --------------------------------------------------------------------- */

static struct memif_ring *memif_rx_ring(struct memif *m)
{
    return m->role == ROLE_CLIENT ? &m->s2c[m->d->queue] : &m->c2s[m->d->queue];
}

static uint16_t memif_rx_once(struct memif *m, struct pkt **pkts, uint16_t max)
{
    return m->role == ROLE_CLIENT ? client_rx(m, pkts, max) : server_rx(m, pkts, max);
}

static uint16_t memif_rx_burst(struct dev *d, struct pkt **pkts, uint16_t max, uint64_t now)
{
    (void)now;
    struct memif *m = memif_of(d);
    if (m->state != ST_UP || m->broken || max == 0)
        return 0;
    uint16_t n = memif_rx_once(m, pkts, max);
    if (n == 0 && m->irq && !m->broken) {
        /* About to look idle: clear the wakeup, then look once more so a
         * frame that raced with the clear is not left until the next kick. */
        irq_drain(memif_rx_ring(m)->irq_fd);
        n = memif_rx_once(m, pkts, max);
    }
    return n;
}

static uint16_t memif_tx_burst(struct dev *d, struct pkt **pkts, uint16_t n, uint64_t now)
{
    (void)now;
    struct memif *m = memif_of(d);
    uint16_t taken = 0, sent = 0;
    if (m->state == ST_UP && !m->broken)
        sent = m->role == ROLE_CLIENT ? client_tx(m, pkts, n, &taken)
                                      : server_tx(m, pkts, n, &taken);
    /* Whatever was not taken (ring full, link down, peer broken) is dropped. */
    for (uint16_t i = taken; i < n; i++) {
        pkt_free(pkts[i]);
        CTR_INC(d->ctr, dev_tx_drop);
    }
    return sent;
}

static int memif_poll_fds(struct dev *d, struct pollfd *fds, int max)
{
    struct memif *m = memif_of(d);
    int want[3] = { m->listen_fd, m->ctl_fd,
                    m->state == ST_UP && m->irq ? memif_rx_ring(m)->irq_fd : -1 };
    int n = 0;
    for (int i = 0; i < 3 && n < max; i++) {
        if (want[i] < 0)
            continue;
        fds[n].fd = want[i];
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        n++;
    }
    return n;
}

/* Client: one memfd region holding the rings and, after them, the pool's
 * data area, so TX descriptors can point at pkt buffers themselves. */
static void *memif_pool_mem(struct dev *d, size_t bytes)
{
    struct memif *m = memif_of(d);
    if (m->role != ROLE_CLIENT || m->shm)
        return NULL;
    size_t rings = 2 * (size_t)m->nq * ring_bytes(m->log2);
    m->rings_bytes = (rings + MEMIF_PAGE - 1) & ~(size_t)(MEMIF_PAGE - 1);
    size_t total = m->rings_bytes + ((bytes + MEMIF_PAGE - 1) & ~(size_t)(MEMIF_PAGE - 1));
    if (bytes == 0 || total > UINT32_MAX) {
        fprintf(stderr, "memif: pool of %zu bytes does not fit a region\n", bytes);
        return NULL;
    }
    m->shm_fd = memfd_create("ustack-memif", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m->shm_fd < 0 || ftruncate(m->shm_fd, (off_t)total) != 0) {
        perror("memif: memfd");
        fd_close(&m->shm_fd);
        return NULL;
    }
    /* A server maps exactly this size: never let it shrink under it. */
    fcntl(m->shm_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    void *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, m->shm_fd, 0);
    if (base == MAP_FAILED) {
        perror("memif: mmap");
        fd_close(&m->shm_fd);
        return NULL;
    }
    m->shm = base;
    m->shm_bytes = total;
    return m->shm + m->rings_bytes;
}

static int client_check_pool(struct memif *m)
{
    struct pkt_pool *pool = m->d->pool;
    if (!m->shm || pool->mem != m->shm + m->rings_bytes ||
        pool->mem_bytes > m->shm_bytes - m->rings_bytes) {
        fprintf(stderr, "memif: client pool must live in pool_mem() memory\n");
        return -1;
    }
    if (pool->room <= PKT_HEADROOM + 64) {
        fprintf(stderr, "memif: pool room %u too small\n", pool->room);
        return -1;
    }
    uint32_t cap = pool->room - PKT_HEADROOM;
    m->buf_cap = cap < m->bsize ? cap : m->bsize;
    uint32_t half = pool->count / 2 ? pool->count / 2 : 1;
    uint32_t size = 1u << m->log2;
    /* Posted RX buffers must never starve the rest of the stack of pkts. */
    m->rx_post_max = size < half ? size : half;
    return 0;
}

static int memif_start(struct dev *d)
{
    struct memif *m = memif_of(d);
    if (d->queue >= (m->role == ROLE_CLIENT ? m->nq : MEMIF_MAX_QUEUES)) {
        fprintf(stderr, "memif: queue %u out of range\n", d->queue);
        return -1;
    }
    if (m->role == ROLE_CLIENT && client_check_pool(m))
        return -1;
    m->started = 1;
    return 0;
}

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

static int server_listen(struct memif *m)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, m->path, sizeof(sa.sun_path));
    if (server_clear_path(m->path))
        return -1;
    m->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (m->listen_fd < 0 || bind(m->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "memif: bind %s: %s\n", m->path, strerror(errno));
        fd_close(&m->listen_fd);
        return -1;
    }
    m->created_path = 1;
    if (listen(m->listen_fd, 8) != 0) {
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

static int memif_parse_arg(void *ctx, const char *key, const char *val)
{
    struct memif *m = ctx;
    unsigned long v;
    if (!val) {
        if (m->path[0] || strlen(key) >= sizeof(m->path)) {
            fprintf(stderr, "memif: bad socket path '%s'\n", key);
            return -1;
        }
        memcpy(m->path, key, strlen(key) + 1);
        return 0;
    }
    if (!strcmp(key, "role")) {
        if (strcmp(val, "server") && strcmp(val, "client")) {
            fprintf(stderr, "memif: role is server or client\n");
            return -1;
        }
        m->role = strcmp(val, "server") ? ROLE_CLIENT : ROLE_SERVER;
        return 0;
    }
    if (!strcmp(key, "irq"))
        return memif_parse_uint(key, val, 0, 1, &v) ? -1 : (m->irq = (uint8_t)v, 0);
    if (!strcmp(key, "id"))
        return memif_parse_uint(key, val, 0, UINT32_MAX, &v) ? -1 : (m->id = (uint32_t)v, 0);
    if (!strcmp(key, "rsize"))
        return memif_parse_uint(key, val, 1, MEMIF_LOG2_MAX, &v) ? -1 : (m->log2 = (uint8_t)v, 0);
    if (!strcmp(key, "bsize"))
        return memif_parse_uint(key, val, 64, 65535, &v) ? -1 : (m->bsize = (uint32_t)v, 0);
    if (!strcmp(key, "queues"))
        return memif_parse_uint(key, val, 1, MEMIF_MAX_QUEUES, &v) ? -1 : (m->nq = (uint16_t)v, 0);
    fprintf(stderr, "memif: unknown option '%s'\n", key);
    return -1;
}

static struct memif *memif_new(struct dev *d)
{
    struct memif *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->d = d;
    m->role = ROLE_CLIENT;
    m->log2 = 10;
    m->bsize = 2048;
    m->nq = 1;
    m->irq = 1;
    m->listen_fd = m->ctl_fd = m->shm_fd = -1;
    for (int q = 0; q < MEMIF_MAX_QUEUES; q++)
        m->c2s[q].irq_fd = m->s2c[q].irq_fd = -1;
    for (int i = 0; i < MEMIF_MAX_REGIONS; i++)
        m->regions[i].fd = -1;
    return m;
}

/* Client: the pkt each ring slot holds, allocated once for the largest ring. */
static int client_alloc_held(struct memif *m)
{
    size_t size = (size_t)1 << m->log2;
    for (int q = 0; q < m->nq; q++) {
        m->c2s[q].held = calloc(size, sizeof(struct pkt *));
        m->s2c[q].held = calloc(size, sizeof(struct pkt *));
        if (!m->c2s[q].held || !m->s2c[q].held)
            return -1;
    }
    return 0;
}

static void memif_close(struct dev *d)
{
    struct memif *m = memif_of(d);
    if (!m)
        return;
    memif_link_down(m, "interface closed");
    fd_close(&m->listen_fd);
    if (m->created_path)
        unlink(m->path);
    for (int q = 0; q < MEMIF_MAX_QUEUES; q++) {
        free(m->c2s[q].held);
        free(m->s2c[q].held);
    }
    if (m->shm)
        munmap(m->shm, m->shm_bytes);
    fd_close(&m->shm_fd);
    if (d->ctr == &m->own_ctr)
        d->ctr = NULL;
    free(m);
    d->priv = NULL;
    d->flags &= ~DEV_F_LINK_UP;
}

static int memif_open(struct dev *d, const char *args)
{
    struct memif *m = memif_new(d);
    if (!m)
        return -1;
    d->priv = m;
    if (!d->ctr)
        d->ctr = &m->own_ctr;
    if (dev_args_each(args, ',', memif_parse_arg, m) != 0 || !m->path[0]) {
        if (!m->path[0])
            fprintf(stderr, "memif: usage memif:SOCKETPATH[,role=server|client][,id=N]"
                            "[,rsize=LOG2][,bsize=N][,queues=N][,irq=0|1]\n");
        memif_close(d);
        return -1;
    }
    int rc = m->role == ROLE_SERVER ? server_listen(m) : client_alloc_held(m);
    if (rc) {
        memif_close(d);
        return -1;
    }
    d->flags &= ~(DEV_F_HAS_MAC | DEV_F_LINK_UP | DEV_F_L3);   /* memif has no MAC */
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
