/* Bounded single-producer/single-consumer ring of pointers, the only
 * structure workers share on the data path (DESIGN.md "Shape").
 *
 * One thread pushes, one thread pops; no locks. The producer publishes a
 * slot with a release store of `tail`, the consumer takes it after an acquire
 * load of `tail` and hands the slot back with a release store of `head`.
 * Each side keeps a private copy of the other's index and re-reads the shared
 * one only when the copy says full/empty, so the common case touches no
 * cache line written by the other thread. The indices live on separate cache
 * lines to avoid false sharing.
 *
 * A ring has no wakeup of its own: a consumer usually drains several rings
 * and sleeps on one descriptor, so the wakeup is a separate struct spsc_bell
 * (an eventfd) per consumer, rung by producers after they pushed. */
#ifndef UST_CORE_SPSC_H
#define UST_CORE_SPSC_H

#include <stdatomic.h>
#include <stdint.h>

#define SPSC_CACHE_LINE 64

struct spsc {
    /* consumer side */
    _Alignas(SPSC_CACHE_LINE) _Atomic uint32_t head;   /* next slot to pop     */
    uint32_t tail_seen;                                 /* consumer's copy      */
    /* producer side */
    _Alignas(SPSC_CACHE_LINE) _Atomic uint32_t tail;   /* next slot to fill    */
    uint32_t head_seen;                                 /* producer's copy      */
    /* read-only after init */
    _Alignas(SPSC_CACHE_LINE) uint32_t mask;
    void **slots;
};

/* capacity is rounded up to a power of two (at least 2, at most 2^24).
 * 0 or -1 (ENOMEM, EINVAL). */
int spsc_init(struct spsc *r, uint32_t capacity);
void spsc_fini(struct spsc *r);
static inline uint32_t spsc_capacity(const struct spsc *r) { return r->mask + 1; }

/* Producer: 0, or -1 when the ring is full (nothing is queued). */
int spsc_push(struct spsc *r, void *item);
/* Consumer: the oldest item, or NULL when the ring is empty. Items must not
 * be NULL. */
void *spsc_pop(struct spsc *r);
/* Either side: a snapshot of the number queued (may be stale at once). */
uint32_t spsc_count(const struct spsc *r);

/* Wakeup for a consumer that sleeps in poll(). */
struct spsc_bell {
    int fd;                   /* eventfd, non-blocking                         */
};

int spsc_bell_init(struct spsc_bell *b);
void spsc_bell_fini(struct spsc_bell *b);
/* Any thread: make the bell's fd readable. */
void spsc_bell_ring(struct spsc_bell *b);
/* Consumer, before draining its rings: make the fd unreadable again. Clear
 * first, drain second, so a push that races with the drain rings anew. */
void spsc_bell_clear(struct spsc_bell *b);

#endif
