/* Hierarchical timing wheel: 5 levels of 64 slots (Varghese & Lauck, scheme 7).
 *
 * Level L holds timers whose expiry tick e is 64^L .. 64^(L+1)-1 ticks after
 * now_tick, in slot (e >> 6L) & 63. When now_tick reaches a multiple of 64^L
 * the level-L slot of that instant is "cascaded": its timers are placed again
 * relative to the new now_tick and so move down. Level 0 slots hold exactly
 * one tick each, so firing a level-0 slot fires only due timers.
 *
 * An expiry is rounded UP to a tick boundary (a timer is never early); the
 * deadline returned is that boundary, or an earlier cascade boundary.
 *
 * now_tick is the tick the wheel is "in": its cascades are done and every slot
 * before it has been run, but its own level-0 slot is run again by every
 * wheel_run, so that a timer armed in the past (placed in that slot) fires on
 * the very next wheel_run, and the deadline then reported is <= now.
 *
 * A bitmap per level tells which slots are non-empty; wheel_run jumps straight
 * from one "event" tick (a non-empty level-0 slot or a cascade of a non-empty
 * slot) to the next, so a long gap costs O(events), not O(ticks). */
#include "core/wheel.h"

#include <stddef.h>

#define TICK_NS (UINT64_C(1) << WHEEL_TICK_SHIFT)
#define SLOT_MASK (WHEEL_SLOTS - 1)
#define LEVEL_SHIFT(l) ((unsigned)(l) * WHEEL_LEVEL_BITS)
/* Ticks covered by the whole wheel (2^30); farther expiries are clamped. */
#define WHEEL_SPAN (UINT64_C(1) << LEVEL_SHIFT(WHEEL_LEVELS))
/* The last tick whose start is representable in ns. */
#define TICK_MAX (UINT64_MAX >> WHEEL_TICK_SHIFT)

/* First tick boundary at or after ns: firing at that boundary is never early.
 * (Expiries in the last tick before 2^64 ns are the one exception: they
 * round down to TICK_MAX, which is ~584 years away.) */
static uint64_t wheel_ns_to_tick(uint64_t ns)
{
    uint64_t tick = ns >> WHEEL_TICK_SHIFT;
    if ((ns & (TICK_NS - 1)) && tick < TICK_MAX)
        tick++;
    return tick;
}

static uint64_t wheel_tick_to_ns(uint64_t tick) { return tick << WHEEL_TICK_SHIFT; }

static uint64_t rotr64(uint64_t v, unsigned n)
{
    n &= 63;
    return n ? (v >> n | v << (64 - n)) : v;
}

static void list_push(struct timer **head, struct timer *t)
{
    t->next = *head;
    if (t->next)
        t->next->pprev = &t->next;
    t->pprev = head;
    *head = t;
}

static void slot_link(struct wheel *w, unsigned level, unsigned idx, struct timer *t)
{
    list_push(&w->slots[level][idx], t);
    w->occupied[level] |= UINT64_C(1) << idx;
}

/* Place t by its expiry relative to now_tick (does not touch count). */
static void wheel_place(struct wheel *w, struct timer *t)
{
    uint64_t e = wheel_ns_to_tick(t->expires);
    uint64_t now = w->now_tick;

    if (e <= now) {
        /* Due already: the current slot is run by the next wheel_run. */
        slot_link(w, 0, (unsigned)(now & SLOT_MASK), t);
        return;
    }
    uint64_t delta = e - now;
    if (delta >= WHEEL_SPAN) {
        /* Beyond the top level: park in the farthest slot; the cascade of
         * that slot places it again from its real expiry. */
        e = now + WHEEL_SPAN - 1;
        delta = WHEEL_SPAN - 1;
    }
    unsigned level = 0;
    while (delta >> LEVEL_SHIFT(level + 1))
        level++;
    slot_link(w, level, (unsigned)((e >> LEVEL_SHIFT(level)) & SLOT_MASK), t);
}

/* If t's slot became empty, clear its bit. Only a pprev that points at a slot
 * head can leave a slot empty; a timer on wheel_run's private firing list is
 * not in any slot. */
static void slot_note_unlink(struct wheel *w, struct timer **pprev, const struct timer *next)
{
    if (next)
        return;
    uintptr_t first = (uintptr_t)&w->slots[0][0];
    uintptr_t p = (uintptr_t)pprev;
    if (p < first || p >= (uintptr_t)(&w->slots[WHEEL_LEVELS - 1][WHEEL_SLOTS - 1] + 1))
        return;
    size_t n = (p - first) / sizeof(struct timer *);
    w->occupied[n / WHEEL_SLOTS] &= ~(UINT64_C(1) << (n % WHEEL_SLOTS));
}

static void timer_unlink(struct wheel *w, struct timer *t)
{
    struct timer **pprev = t->pprev;
    *pprev = t->next;
    if (t->next)
        t->next->pprev = pprev;
    slot_note_unlink(w, pprev, t->next);
    t->next = NULL;
    t->pprev = NULL;
}

void wheel_init(struct wheel *w, uint64_t now)
{
    for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
        w->occupied[l] = 0;
        for (unsigned i = 0; i < WHEEL_SLOTS; i++)
            w->slots[l][i] = NULL;
    }
    w->now_tick = now >> WHEEL_TICK_SHIFT;
    w->count = 0;
}

void wheel_add(struct wheel *w, struct timer *t, uint64_t expires)
{
    if (timer_pending(t))
        timer_unlink(w, t);
    else
        w->count++;
    t->expires = expires;
    wheel_place(w, t);
}

void wheel_del(struct wheel *w, struct timer *t)
{
    if (!timer_pending(t))
        return;
    timer_unlink(w, t);
    w->count--;
}

/* Take a whole slot's list out of the wheel. */
static struct timer *slot_detach(struct wheel *w, unsigned level, unsigned idx)
{
    struct timer *list = w->slots[level][idx];
    w->slots[level][idx] = NULL;
    w->occupied[level] &= ~(UINT64_C(1) << idx);
    return list;
}

static void wheel_cascade_slot(struct wheel *w, unsigned level, unsigned idx)
{
    struct timer *t = slot_detach(w, level, idx);
    while (t) {
        struct timer *next = t->next;
        wheel_place(w, t);
        t = next;
    }
}

/* Entering now_tick: cascade every level whose slot boundary it is. */
static void wheel_cascade(struct wheel *w)
{
    for (unsigned l = 1; l < WHEEL_LEVELS; l++) {
        if (w->now_tick & ((UINT64_C(1) << LEVEL_SHIFT(l)) - 1))
            break;
        wheel_cascade_slot(w, l, (unsigned)((w->now_tick >> LEVEL_SHIFT(l)) & SLOT_MASK));
    }
}

/* Fire the current level-0 slot. The list is moved to a local head first so
 * that callbacks may delete any timer on it, and timers they arm land in the
 * wheel, not on this list. */
static void wheel_fire_current(struct wheel *w, uint64_t now)
{
    unsigned idx = (unsigned)(w->now_tick & SLOT_MASK);
    if (!(w->occupied[0] & (UINT64_C(1) << idx)))
        return;
    struct timer *list = slot_detach(w, 0, idx);
    list->pprev = &list;
    while (list) {
        struct timer *t = list;
        timer_unlink(w, t);
        w->count--;
        t->fn(t, now);
    }
}

/* Next tick after now_tick at which something happens: a non-empty level-0
 * slot or the cascade of a non-empty higher slot. UINT64_MAX if none. */
static uint64_t wheel_next_event(const struct wheel *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned l = 0; l < WHEEL_LEVELS; l++) {
        if (!w->occupied[l])
            continue;
        unsigned sh = LEVEL_SHIFT(l);
        uint64_t cur = w->now_tick >> sh;
        /* Slots strictly after the current one; the current one itself, if
         * occupied, holds timers one full rotation ahead (distance 64). */
        uint64_t rot = rotr64(w->occupied[l], (unsigned)((cur + 1) & SLOT_MASK));
        uint64_t dist = (uint64_t)__builtin_ctzll(rot) + 1;
        uint64_t tick = (cur + dist) << sh;
        if (tick < best)
            best = tick;
    }
    return best;
}

uint64_t wheel_next_deadline(const struct wheel *w)
{
    if (w->count == 0)
        return UINT64_MAX;
    if (w->occupied[0] & (UINT64_C(1) << (w->now_tick & SLOT_MASK)))
        return wheel_tick_to_ns(w->now_tick);
    uint64_t tick = wheel_next_event(w);
    return tick > TICK_MAX ? UINT64_MAX : wheel_tick_to_ns(tick);
}

/* Move the timers that callbacks armed into the current slot aside. */
static void wheel_defer_current(struct wheel *w, struct timer **to)
{
    unsigned idx = (unsigned)(w->now_tick & SLOT_MASK);
    if (!(w->occupied[0] & (UINT64_C(1) << idx)))
        return;
    struct timer *t = slot_detach(w, 0, idx);
    while (t) {
        struct timer *next = t->next;
        list_push(to, t);
        t = next;
    }
}

uint64_t wheel_run(struct wheel *w, uint64_t now)
{
    uint64_t target = now >> WHEEL_TICK_SHIFT;
    if (target < w->now_tick)       /* clock went backwards: nothing is due */
        return wheel_next_deadline(w);
    /* Timers that callbacks arm at or before the tick being run are due, but
     * wait on this list for the next wheel_run: a callback re-arming itself
     * in the past then fires once per run instead of spinning here. */
    struct timer *deferred = NULL;
    for (;;) {
        wheel_fire_current(w, now);
        wheel_defer_current(w, &deferred);
        if (w->now_tick == target)
            break;
        uint64_t next = wheel_next_event(w);
        w->now_tick = next < target ? next : target;   /* skip empty ticks */
        wheel_cascade(w);
    }
    if (deferred) {
        unsigned idx = (unsigned)(w->now_tick & SLOT_MASK);
        while (deferred) {
            struct timer *t = deferred;
            timer_unlink(w, t);
            slot_link(w, 0, idx, t);
        }
    }
    return wheel_next_deadline(w);
}
