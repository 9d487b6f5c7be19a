/* Hierarchical timing wheel (Varghese & Lauck). Insert, cancel and re-arm are
 * O(1); running the wheel costs in proportion to the timers that expire plus
 * the occasional cascade, never a walk over all timers. Time is passed in (ns)
 * and rounded to ticks of 2^WHEEL_TICK_SHIFT ns (~1.05 ms): a timer fires at
 * or after its expiry, at most one tick late. */
#ifndef UST_CORE_WHEEL_H
#define UST_CORE_WHEEL_H

#include <stdint.h>

#define WHEEL_TICK_SHIFT 20
#define WHEEL_LEVEL_BITS 6
#define WHEEL_SLOTS (1u << WHEEL_LEVEL_BITS)   /* 64 slots per level          */
#define WHEEL_LEVELS 5                         /* 2^30 ticks: ~13 days        */

struct timer;
typedef void (*timer_fn)(struct timer *t, uint64_t now);

/* Embed in the object that owns the timer; container_of gets it back. */
struct timer {
    struct timer *next;
    struct timer **pprev;     /* NULL when not pending */
    uint64_t expires;         /* ns */
    timer_fn fn;
};

struct wheel {
    uint64_t now_tick;        /* every slot before this tick has been run     */
    uint64_t occupied[WHEEL_LEVELS];   /* bitmap of non-empty slots per level */
    struct timer *slots[WHEEL_LEVELS][WHEEL_SLOTS];
    uint32_t count;           /* pending timers                               */
};

void wheel_init(struct wheel *w, uint64_t now);
static inline void timer_init(struct timer *t, timer_fn fn)
{
    t->next = 0;
    t->pprev = 0;
    t->expires = 0;
    t->fn = fn;
}
static inline int timer_pending(const struct timer *t) { return t->pprev != 0; }

/* Arm (or re-arm) t to fire at expires (ns). An expiry in the past fires on
 * the next wheel_run. */
void wheel_add(struct wheel *w, struct timer *t, uint64_t expires);
void wheel_del(struct wheel *w, struct timer *t);

/* Fire every timer whose expiry is <= now (callbacks may add or delete
 * timers, including themselves; one a callback arms at or before the tick
 * being run fires on the next wheel_run). Returns the next time worth running
 * the wheel, a tick boundary: the boundary at which the earliest timer fires
 * (at or after its expiry, less than a tick late), or an earlier one where a
 * farther timer only moves down a level; never later than the first firing.
 * A value <= now means a timer is already due. UINT64_MAX when none is
 * pending. */
uint64_t wheel_run(struct wheel *w, uint64_t now);

/* The same deadline wheel_run would return, without running anything. */
uint64_t wheel_next_deadline(const struct wheel *w);

#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - __builtin_offsetof(type, member)))
#endif

#endif
