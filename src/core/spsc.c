/* Bounded SPSC ring of pointers with acquire/release indices; see spsc.h. */
#include "core/spsc.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SPSC_MAX_CAPACITY (1u << 24)

int spsc_init(struct spsc *r, uint32_t capacity)
{
    if (capacity == 0 || capacity > SPSC_MAX_CAPACITY) {
        errno = EINVAL;
        return -1;
    }
    uint32_t cap = 2;
    while (cap < capacity)
        cap *= 2;
    r->slots = calloc(cap, sizeof(*r->slots));
    if (!r->slots)
        return -1;
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_seen = r->head_seen = 0;
    return 0;
}

void spsc_fini(struct spsc *r)
{
    free(r->slots);
    r->slots = NULL;
}

/* Indices run freely over uint32_t; tail - head is the fill level even
 * across wrap-around, since the capacity divides 2^32. */
int spsc_push(struct spsc *r, void *item)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - r->head_seen > r->mask) {
        /* Acquire pairs with the consumer's release: it has finished reading
         * the slots it gave back before we overwrite them. */
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (tail - r->head_seen > r->mask)
            return -1;
    }
    r->slots[tail & r->mask] = item;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 0;
}

void *spsc_pop(struct spsc *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == r->tail_seen) {
        /* Acquire pairs with the producer's release: the slot (and whatever
         * the item points at) is written before we read it. */
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head == r->tail_seen)
            return NULL;
    }
    void *item = r->slots[head & r->mask];
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return item;
}

uint32_t spsc_count(const struct spsc *r)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    return tail - head;
}

int spsc_bell_init(struct spsc_bell *b)
{
    b->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return b->fd < 0 ? -1 : 0;
}

void spsc_bell_fini(struct spsc_bell *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}

void spsc_bell_ring(struct spsc_bell *b)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is about to overflow: it is readable
     * then anyway. */
    ssize_t n = write(b->fd, &one, sizeof(one));
    (void)n;
}

void spsc_bell_clear(struct spsc_bell *b)
{
    uint64_t v;
    ssize_t n = read(b->fd, &v, sizeof(v));
    (void)n;
}
