/* The timing wheel: never early, at most one tick late when run at the
 * deadlines it returns, in expiry order, callbacks that arm and cancel timers,
 * long gaps handled without a walk per tick, deadlines never late. */
#include "core/wheel.h"
#include "harness.h"

#define TICK (UINT64_C(1) << WHEEL_TICK_SHIFT)
#define SEC UINT64_C(1000000000)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t rng_below(uint64_t n) { return n ? rng_next() % n : 0; }

/* A timer owner that records when and in which order it fired. */
struct rec {
    struct timer tm;
    uint64_t fired_at;
    uint32_t fires;
    uint32_t seq;             /* global firing order, from 1 */
    uint64_t period;          /* re-arm by this much when non-zero */
    uint32_t max_fires;       /* stop re-arming after this many */
    struct rec *victim;       /* cancelled from the callback when set */
    struct rec *spawn;        /* armed from the callback at our expiry + spawn_delay */
    uint64_t spawn_delay;
    struct wheel *w;
};

static uint32_t fire_seq;

static void rec_fire(struct timer *t, uint64_t now)
{
    struct rec *r = container_of(t, struct rec, tm);
    r->fired_at = now;
    r->fires++;
    r->seq = ++fire_seq;
    if (r->victim)
        wheel_del(r->w, &r->victim->tm);
    if (r->spawn)
        wheel_add(r->w, &r->spawn->tm, r->tm.expires + r->spawn_delay);
    if (r->period && r->fires < r->max_fires)
        wheel_add(r->w, &r->tm, r->tm.expires + r->period);
}

static void rec_setup(struct rec *r, struct wheel *w)
{
    memset(r, 0, sizeof(*r));
    timer_init(&r->tm, rec_fire);
    r->w = w;
}

/* Runs the wheel at each deadline it returns (never past `until`), the way a
 * stack's main loop would, and checks every deadline against the true
 * earliest expiry of the given timers. Returns the number of runs. */
static uint32_t drive_until(struct wheel *w, uint64_t *now, uint64_t until, struct rec *recs, size_t n,
                            HARNESS_ARGS)
{
    uint32_t runs = 0;
    uint64_t dl = wheel_next_deadline(w);
    while (dl <= until && runs < 1000000) {
        uint64_t earliest = UINT64_MAX;
        for (size_t i = 0; i < n; i++)
            if (timer_pending(&recs[i].tm) && recs[i].tm.expires < earliest)
                earliest = recs[i].tm.expires;
        /* Never later than the tick boundary at which the earliest timer is
         * due, so a caller sleeping until it is less than a tick late. */
        uint64_t due = (earliest + TICK - 1) / TICK * TICK;
        if (earliest != UINT64_MAX && dl > due && dl > *now) {
            fprintf(stderr, "  deadline %llu later than expiry %llu\n", (unsigned long long)dl,
                    (unsigned long long)earliest);
            *harness_failed = 1;
            return runs;
        }
        if (dl > *now)
            *now = dl;
        dl = wheel_run(w, *now);
        runs++;
    }
    return runs;
}

TEST(empty_wheel)
{
    struct wheel w;
    wheel_init(&w, 12345);
    CHECK_EQ(w.count, 0);
    CHECK(wheel_next_deadline(&w) == UINT64_MAX);
    CHECK(wheel_run(&w, 99 * SEC) == UINT64_MAX);
}

TEST(single_timer_fires_at_expiry_not_before)
{
    struct wheel w;
    struct rec r;
    uint64_t t0 = 7 * SEC + 123;
    wheel_init(&w, t0);
    rec_setup(&r, &w);
    uint64_t exp = t0 + 5 * TICK + TICK / 2;
    wheel_add(&w, &r.tm, exp);
    CHECK(timer_pending(&r.tm));
    CHECK_EQ(w.count, 1);
    uint64_t dl = wheel_next_deadline(&w);
    CHECK(dl >= exp);              /* level 0: the instant it will fire */
    CHECK(dl - exp < TICK);
    /* One ns before the expiry: not yet. */
    wheel_run(&w, exp - 1);
    CHECK_EQ(r.fires, 0);
    CHECK(timer_pending(&r.tm));
    wheel_run(&w, dl - 1);
    CHECK_EQ(r.fires, 0);
    wheel_run(&w, dl);
    CHECK_EQ(r.fires, 1);
    CHECK_EQ(r.fired_at, dl);
    CHECK(!timer_pending(&r.tm));
    CHECK_EQ(w.count, 0);
    CHECK(wheel_next_deadline(&w) == UINT64_MAX);
}

TEST(timer_on_tick_boundary_fires_at_that_instant)
{
    struct wheel w;
    struct rec r;
    wheel_init(&w, 0);
    rec_setup(&r, &w);
    wheel_add(&w, &r.tm, 100 * TICK);
    /* Level 1: the deadline is where it moves down, 64 ticks. */
    CHECK_EQ(wheel_next_deadline(&w), 64 * TICK);
    CHECK_EQ(wheel_run(&w, 64 * TICK), 100 * TICK);
    CHECK_EQ(r.fires, 0);
    wheel_run(&w, 100 * TICK - 1);
    CHECK_EQ(r.fires, 0);
    CHECK_EQ(wheel_run(&w, 100 * TICK), UINT64_MAX);
    CHECK_EQ(r.fires, 1);
}

TEST(expiry_in_the_past_fires_on_next_run)
{
    struct wheel w;
    struct rec r;
    wheel_init(&w, 0);
    wheel_run(&w, 50 * TICK + 7);
    rec_setup(&r, &w);
    wheel_add(&w, &r.tm, 3 * TICK);
    /* Due already: the deadline says "now". */
    CHECK(wheel_next_deadline(&w) <= 50 * TICK + 7);
    wheel_run(&w, 50 * TICK + 7);
    CHECK_EQ(r.fires, 1);
}

/* 10,000 timers over ranges from a tick to hours and beyond the wheel's span:
 * run at the deadlines, each fires at or after its expiry, less than a tick
 * late, and in order of expiry tick. */
TEST(random_timers_fire_in_order_never_early)
{
    enum { N = 10000 };
    static struct rec recs[N];
    static const uint64_t ranges[] = {64 * TICK, 4096 * TICK, 300 * SEC, 4 * HOUR, 20 * DAY};
    struct wheel w;
    uint64_t now = 5 * SEC;
    wheel_init(&w, now);
    fire_seq = 0;
    for (int i = 0; i < N; i++) {
        rec_setup(&recs[i], &w);
        uint64_t range = ranges[rng_below(5)];
        wheel_add(&w, &recs[i].tm, now + rng_below(range));
    }
    CHECK_EQ(w.count, N);
    uint32_t runs = drive_until(&w, &now, UINT64_MAX - 1, recs, 0, HARNESS_PASS);
    CHECK_OK();
    CHECK(runs > 0);
    CHECK_EQ(w.count, 0);

    /* Order by firing sequence, then check expiry ticks never go backwards. */
    static struct rec *by_seq[N + 1];
    memset(by_seq, 0, sizeof(by_seq));
    for (int i = 0; i < N; i++) {
        CHECK_EQ(recs[i].fires, 1);
        CHECK(recs[i].fired_at >= recs[i].tm.expires);
        CHECK(recs[i].fired_at - recs[i].tm.expires < TICK);
        CHECK(recs[i].seq >= 1 && recs[i].seq <= N);
        CHECK(by_seq[recs[i].seq] == NULL);
        by_seq[recs[i].seq] = &recs[i];
    }
    uint64_t last_tick = 0;
    for (int s = 1; s <= N; s++) {
        uint64_t tick = (by_seq[s]->tm.expires + TICK - 1) / TICK;
        CHECK(tick >= last_tick);
        last_tick = tick;
    }
}

/* The deadline is checked against a scan of all pending timers at every
 * step (fewer timers: the scan is quadratic). */
TEST(next_deadline_never_later_than_earliest_expiry)
{
    enum { N = 1500 };
    static struct rec recs[N];
    static const uint64_t ranges[] = {64 * TICK, 4096 * TICK, 262144 * TICK, 6 * HOUR, 40 * DAY};
    struct wheel w;
    uint64_t now = 1;
    wheel_init(&w, now);
    for (int i = 0; i < N; i++) {
        rec_setup(&recs[i], &w);
        wheel_add(&w, &recs[i].tm, now + rng_below(ranges[i % 5]));
    }
    drive_until(&w, &now, UINT64_MAX - 1, recs, N, HARNESS_PASS);
    CHECK_OK();
    CHECK_EQ(w.count, 0);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(recs[i].fires, 1);
        CHECK(recs[i].fired_at >= recs[i].tm.expires);
        CHECK(recs[i].fired_at - recs[i].tm.expires < TICK);
    }
}

TEST(rearm_and_delete)
{
    struct wheel w;
    struct rec a, b, c;
    uint64_t now = 0;
    wheel_init(&w, now);
    rec_setup(&a, &w);
    rec_setup(&b, &w);
    rec_setup(&c, &w);

    /* Re-arm later: fires only at the new time. */
    wheel_add(&w, &a.tm, 10 * TICK);
    wheel_add(&w, &a.tm, 5000 * TICK);
    CHECK_EQ(w.count, 1);
    /* Re-arm from a high level to a low one. */
    wheel_add(&w, &b.tm, 3 * HOUR);
    wheel_add(&w, &b.tm, 20 * TICK);
    /* Armed then cancelled; cancelling twice is harmless. */
    wheel_add(&w, &c.tm, 30 * TICK);
    CHECK_EQ(w.count, 3);
    wheel_del(&w, &c.tm);
    wheel_del(&w, &c.tm);
    CHECK(!timer_pending(&c.tm));
    CHECK_EQ(w.count, 2);

    wheel_run(&w, 20 * TICK);
    wheel_run(&w, 4999 * TICK);
    CHECK_EQ(a.fires, 0);
    CHECK_EQ(b.fires, 1);
    CHECK_EQ(b.fired_at, 20 * TICK);
    CHECK_EQ(c.fires, 0);
    CHECK_EQ(w.count, 1);
    CHECK_EQ(wheel_next_deadline(&w), 5000 * TICK);
    wheel_run(&w, 3 * HOUR + 1);
    CHECK_EQ(a.fires, 1);
    CHECK_EQ(a.fired_at, 3 * HOUR + 1);   /* one big step: fired late, never early */
    CHECK_EQ(b.fires, 1);
    CHECK_EQ(c.fires, 0);
    CHECK_EQ(w.count, 0);
    CHECK(wheel_next_deadline(&w) == UINT64_MAX);
}

TEST(periodic_callback_rearms_itself)
{
    struct wheel w;
    struct rec r;
    uint64_t now = 0;
    wheel_init(&w, now);
    rec_setup(&r, &w);
    r.period = 200 * SEC / 1000 + 3;      /* ~200 ms, not a whole number of ticks */
    r.max_fires = 50;
    wheel_add(&w, &r.tm, r.period);
    uint64_t last = 0;
    uint32_t runs = 0;
    while (w.count && runs++ < 100000) {
        uint64_t dl = wheel_next_deadline(&w);
        CHECK(dl < r.tm.expires + TICK);
        now = dl > now ? dl : now;
        uint32_t before = r.fires;
        wheel_run(&w, now);
        if (r.fires != before) {
            CHECK_EQ(r.fires, before + 1);     /* once per run: no loop */
            CHECK(r.fired_at >= (uint64_t)r.fires * r.period);
            CHECK(r.fired_at - (uint64_t)r.fires * r.period < TICK);
            CHECK(r.fired_at > last);
            last = r.fired_at;
        }
    }
    CHECK_EQ(r.fires, 50);
    CHECK(!timer_pending(&r.tm));
}

/* A callback that re-arms itself in the past must not spin inside one run:
 * it fires again on the next run. */
static void rearm_in_past(struct timer *t, uint64_t now)
{
    struct rec *r = container_of(t, struct rec, tm);
    r->fires++;
    r->fired_at = now;
    if (r->fires < 3)
        wheel_add(r->w, t, 0);
}

TEST(rearm_in_the_past_fires_on_following_runs)
{
    struct wheel w;
    struct rec r;
    wheel_init(&w, 0);
    rec_setup(&r, &w);
    timer_init(&r.tm, rearm_in_past);
    wheel_add(&w, &r.tm, 10 * TICK);
    uint64_t dl = wheel_run(&w, 100 * TICK);
    CHECK_EQ(r.fires, 1);
    CHECK(dl <= 100 * TICK);      /* due again now */
    wheel_run(&w, 100 * TICK);
    CHECK_EQ(r.fires, 2);
    wheel_run(&w, 100 * TICK + 1);
    CHECK_EQ(r.fires, 3);
    CHECK_EQ(w.count, 0);
}

/* A due timer armed by a callback while the run still has ground to cover is
 * not stranded behind it: it fires on the next run. */
TEST(callback_arming_past_timer_mid_run_fires_next_run)
{
    struct wheel w;
    struct rec a, b, late;
    wheel_init(&w, 0);
    rec_setup(&a, &w);
    rec_setup(&b, &w);
    rec_setup(&late, &w);
    a.spawn = &b;
    a.spawn_delay = 0;            /* b due at a's own expiry */
    wheel_add(&w, &a.tm, 5 * TICK);
    wheel_add(&w, &late.tm, 9000 * TICK);
    uint64_t dl = wheel_run(&w, 10000 * TICK);
    CHECK_EQ(a.fires, 1);
    CHECK_EQ(late.fires, 1);
    CHECK_EQ(b.fires, 0);
    CHECK(timer_pending(&b.tm));
    CHECK(dl <= 10000 * TICK);    /* due now */
    wheel_run(&w, 10000 * TICK);
    CHECK_EQ(b.fires, 1);
    CHECK_EQ(w.count, 0);
}

TEST(callback_arms_later_timer_within_same_run)
{
    struct wheel w;
    struct rec a, b;
    wheel_init(&w, 0);
    rec_setup(&a, &w);
    rec_setup(&b, &w);
    a.spawn = &b;
    a.spawn_delay = 300 * TICK;
    fire_seq = 0;
    wheel_add(&w, &a.tm, 5 * TICK);
    wheel_run(&w, 1000 * TICK);
    CHECK_EQ(a.fires, 1);
    CHECK_EQ(b.fires, 1);
    CHECK(a.seq < b.seq);
    CHECK_EQ(b.tm.expires, 305 * TICK);
    CHECK_EQ(w.count, 0);
}

TEST(callback_deletes_timer_due_in_same_slot)
{
    struct wheel w;
    struct rec a, b;
    wheel_init(&w, 0);
    rec_setup(&a, &w);
    rec_setup(&b, &w);
    a.victim = &b;
    b.victim = &a;
    wheel_add(&w, &a.tm, 7 * TICK + 5);
    wheel_add(&w, &b.tm, 7 * TICK + 9);
    wheel_run(&w, 9 * TICK);
    /* Whichever fired first cancelled the other. */
    CHECK_EQ(a.fires + b.fires, 1);
    CHECK_EQ(w.count, 0);
    CHECK(!timer_pending(&a.tm) && !timer_pending(&b.tm));
}

TEST(callback_deletes_timer_due_later_in_same_run)
{
    struct wheel w;
    struct rec a, b, c;
    wheel_init(&w, 0);
    rec_setup(&a, &w);
    rec_setup(&b, &w);
    rec_setup(&c, &w);
    a.victim = &b;
    wheel_add(&w, &a.tm, 5 * TICK);
    wheel_add(&w, &b.tm, 600 * TICK);      /* another level */
    wheel_add(&w, &c.tm, 700 * TICK);
    wheel_run(&w, 2 * HOUR);
    CHECK_EQ(a.fires, 1);
    CHECK_EQ(b.fires, 0);
    CHECK_EQ(c.fires, 1);
    CHECK_EQ(w.count, 0);
}

/* Hours to weeks of virtual time in one step: a walk per tick would be 2.5e9
 * iterations here; this must finish at once and fire everything in order. */
TEST(long_gap_in_one_step)
{
    struct wheel w;
    struct rec r[6];
    static const uint64_t at[6] = {1 * HOUR, 2 * HOUR + 17, 3 * HOUR, 10 * DAY, 20 * DAY, 29 * DAY};
    uint64_t now = 123 * SEC;
    wheel_init(&w, now);
    fire_seq = 0;
    for (int i = 5; i >= 0; i--) {
        rec_setup(&r[i], &w);
        wheel_add(&w, &r[i].tm, now + at[i]);
    }
    now += 30 * DAY;
    CHECK(wheel_run(&w, now) == UINT64_MAX);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(r[i].fires, 1);
        CHECK_EQ(r[i].seq, i + 1);
    }
    /* The wheel still works after the jump. */
    struct rec z;
    rec_setup(&z, &w);
    wheel_add(&w, &z.tm, now + TICK);
    uint64_t dl = wheel_run(&w, now + TICK / 2);
    CHECK_EQ(z.fires, 0);
    CHECK(dl >= now + TICK && dl - (now + TICK) < TICK);
    wheel_run(&w, dl - 1);
    CHECK_EQ(z.fires, 0);
    wheel_run(&w, dl);
    CHECK_EQ(z.fires, 1);
}

/* Far beyond the wheel's ~13 days: parked in the last slot, placed again at
 * each cascade, never early. */
TEST(clamped_expiry_recascades)
{
    struct wheel w;
    struct rec r;
    uint64_t now = 0;
    wheel_init(&w, now);
    rec_setup(&r, &w);
    uint64_t exp = 45 * DAY + 12345;
    wheel_add(&w, &r.tm, exp);
    uint32_t runs = drive_until(&w, &now, UINT64_MAX - 1, &r, 1, HARNESS_PASS);
    CHECK_OK();
    CHECK(runs < 200);             /* cascades only, not a run per tick */
    CHECK_EQ(r.fires, 1);
    CHECK(r.fired_at >= exp);
    CHECK(r.fired_at - exp < TICK);
}

/* Frequent runs with little elapsed time and nothing due fire nothing and
 * keep the deadline. */
TEST(frequent_small_steps)
{
    struct wheel w;
    struct rec r;
    uint64_t now = 0;
    wheel_init(&w, now);
    rec_setup(&r, &w);
    wheel_add(&w, &r.tm, 2 * SEC);
    for (int i = 0; i < 250000; i++) {
        now += 9999;              /* ~10 us steps */
        uint64_t dl = wheel_run(&w, now);
        if (now < 2 * SEC) {
            CHECK_EQ(r.fires, 0);
            CHECK(dl < 2 * SEC + TICK);
        }
    }
    CHECK_EQ(r.fires, 1);
    CHECK(r.fired_at >= 2 * SEC && r.fired_at - 2 * SEC < TICK);
}

TEST(count_tracking)
{
    enum { N = 300 };
    static struct rec recs[N];
    struct wheel w;
    wheel_init(&w, 0);
    for (int i = 0; i < N; i++) {
        rec_setup(&recs[i], &w);
        wheel_add(&w, &recs[i].tm, (uint64_t)(i + 1) * 50 * TICK);
    }
    CHECK_EQ(w.count, N);
    for (int i = 0; i < N; i += 3)
        wheel_del(&w, &recs[i].tm);
    CHECK_EQ(w.count, N - N / 3);
    for (int i = 1; i < N; i += 3)
        wheel_add(&w, &recs[i].tm, 7 * TICK);   /* re-arm keeps the count */
    CHECK_EQ(w.count, N - N / 3);
    wheel_run(&w, 7 * TICK);
    CHECK_EQ(w.count, N - 2 * (N / 3));
    wheel_run(&w, UINT64_MAX / 2);
    CHECK_EQ(w.count, 0);
    for (int i = 0; i < N; i++)
        CHECK_EQ(recs[i].fires, i % 3 == 0 ? 0 : 1);
}

HARNESS_MAIN()
