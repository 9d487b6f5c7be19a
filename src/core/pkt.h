/* Packet buffers: fixed pools made at stack start, no malloc per packet.
 *
 * A pool is one contiguous data area of `count` rooms of `room` bytes each and
 * a separate array of descriptors (struct pkt). Keeping the data area
 * contiguous lets a backend share it with a peer (memif regions, AF_XDP UMEM)
 * and translate a buffer to an offset with one subtraction. */
#ifndef UST_CORE_PKT_H
#define UST_CORE_PKT_H

#include <stddef.h>
#include <stdint.h>

#define PKT_HEADROOM 128    /* room kept in front for headers pushed on output */
#define PKT_ROOM_DEFAULT 2048

/* pkt.flags */
#define PKT_F_CSUM_PARTIAL 0x1  /* L4 checksum not filled in by a local sender
                                   (AF_PACKET TP_STATUS_CSUMNOTREADY): trust it */
#define PKT_F_OUTGOING     0x2  /* frame originated here (pcap direction)      */

struct pkt_pool;

struct pkt {
    uint8_t *buf;           /* start of this buffer's room                       */
    uint32_t room;          /* size of the room: a frame, or up to 64 KiB + headroom */
    uint16_t off;           /* offset of the first valid byte from buf           */
    uint16_t len;           /* number of valid bytes (an IPv4 datagram fits)     */
    uint16_t refcnt;
    uint16_t l2, l3, l4;    /* layer offsets from buf, set by the input path     */
    uint16_t flags;
    uint32_t index;         /* position in the pool                              */
    uint32_t aux;           /* scratch for the current owner (e.g. next hop)     */
    struct pkt *next;       /* free list, queues                                 */
    struct pkt_pool *pool;
    uint64_t stamp;         /* ns: arrival or enqueue time, owner-defined        */
};

struct pkt_pool {
    uint8_t *mem;           /* count * room bytes of data area                   */
    size_t mem_bytes;
    struct pkt *descs;
    struct pkt *free_list;
    uint32_t count;
    uint32_t avail;
    uint32_t room;
    uint8_t mem_owned;      /* mem was allocated by pkt_pool_init               */
};

/* Make a pool of `count` buffers of `room` bytes. If mem is NULL the data area
 * is allocated here (page aligned), else mem must hold count*room bytes. */
int pkt_pool_init(struct pkt_pool *pool, uint32_t count, uint32_t room, void *mem);
void pkt_pool_fini(struct pkt_pool *pool);

struct pkt *pkt_alloc(struct pkt_pool *pool);
/* Drop one reference; the buffer returns to its pool at zero. NULL is ignored. */
void pkt_free(struct pkt *p);
/* Duplicate into a fresh buffer of the same pool (same offset, flags). */
struct pkt *pkt_clone(const struct pkt *p);

static inline uint8_t *pkt_data(const struct pkt *p) { return p->buf + p->off; }

/* Ask for the first two cache lines of the frame (Ethernet, IPv4, TCP and a
 * small payload): on a shared-memory wire they were last written by the
 * peer's core, so the first touch is a cross-core miss worth overlapping. */
static inline void pkt_prefetch(const struct pkt *p)
{
    __builtin_prefetch(pkt_data(p));
    __builtin_prefetch(pkt_data(p) + 64);
}
static inline void pkt_ref(struct pkt *p) { p->refcnt++; }
static inline uint32_t pkt_tailroom(const struct pkt *p) { return p->room - p->off - p->len; }

/* Reset to empty with the standard headroom. */
static inline void pkt_reset(struct pkt *p)
{
    p->off = PKT_HEADROOM;
    p->len = 0;
    p->flags = 0;
    p->l2 = p->l3 = p->l4 = 0;
}

/* Prepend n bytes; NULL if the headroom is too small. */
static inline uint8_t *pkt_push(struct pkt *p, uint16_t n)
{
    if (p->off < n)
        return NULL;
    p->off -= n;
    p->len += n;
    return pkt_data(p);
}

/* Remove n bytes from the front; NULL if shorter. Returns the new front. */
static inline uint8_t *pkt_pull(struct pkt *p, uint16_t n)
{
    if (p->len < n)
        return NULL;
    p->off += n;
    p->len -= n;
    return pkt_data(p);
}

/* Append n bytes; returns where they go, NULL if the tailroom is too small. */
static inline uint8_t *pkt_put(struct pkt *p, uint16_t n)
{
    if (pkt_tailroom(p) < n || p->len + n > UINT16_MAX)
        return NULL;
    uint8_t *t = pkt_data(p) + p->len;
    p->len += n;
    return t;
}

/* Cut the packet to n bytes (no-op when already shorter). */
static inline void pkt_trim(struct pkt *p, uint16_t n)
{
    if (p->len > n)
        p->len = n;
}

/* A singly linked FIFO of packets threaded through pkt.next. */
struct pkt_queue {
    struct pkt *head, *tail;
    uint32_t len;
};

static inline void pktq_push(struct pkt_queue *q, struct pkt *p)
{
    p->next = NULL;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->len++;
}

static inline struct pkt *pktq_pop(struct pkt_queue *q)
{
    struct pkt *p = q->head;
    if (!p)
        return NULL;
    q->head = p->next;
    if (!q->head)
        q->tail = NULL;
    q->len--;
    p->next = NULL;
    return p;
}

void pktq_free_all(struct pkt_queue *q);

#endif
