/* CUBIC congestion control, RFC 9438, in integer arithmetic: windows in
 * bytes, time in ms inside the cubic function. beta_cubic = 7/10,
 * C = 4/10, alpha_cubic = 3(1 - beta)/(1 + beta) = 9/17. */
#include "tcp/tcp_cc.h"

#define CUBIC_BETA_NUM 7u
#define CUBIC_BETA_DEN 10u
#define CUBIC_ALPHA_NUM 9u      /* RFC 9438 4.3 */
#define CUBIC_ALPHA_DEN 17u
/* Beyond |t - K| of 2^21 ms (35 min) the cubic term exceeds any window we
 * allow for every SMSS >= 1, so it saturates there instead of overflowing. */
#define CUBIC_DT_CAP_MS (1ull << 21)
#define NS_PER_MS 1000000ull

static uint32_t cubic_clamp_window(uint64_t w)
{
    return w > TCP_CC_CWND_MAX ? TCP_CC_CWND_MAX : (uint32_t)w;
}

/* SMSS bounded to what an IP packet can carry, so products stay in 64 bits. */
static uint32_t cubic_smss(const struct tcp_cc *cc)
{
    return cc->mss == 0 ? 1u : cc->mss > 65535u ? 65535u : cc->mss;
}

/* floor(cbrt(x)), bit by bit (three result bits per step); comparing x >> s
 * rather than b << s keeps every step within 64 bits. Runs only when an
 * epoch starts, never per ACK. */
static uint64_t cubic_cbrt(uint64_t x)
{
    uint64_t y = 0;
    for (int s = 63; s >= 0; s -= 3) {
        y <<= 1;
        uint64_t b = 3 * y * (y + 1) + 1;
        if ((x >> s) >= b) {
            x -= b << s;
            y++;
        }
    }
    return y;
}

/* RFC 9438 eq. 2 in ms: K = cbrt((W_max - cwnd_epoch) / C) seconds with
 * windows in segments = cbrt(2.5e9 * delta_bytes / SMSS) ms. */
static uint32_t cubic_k_ms(uint32_t w_max, uint32_t cwnd_epoch, uint32_t mss)
{
    if (cwnd_epoch >= w_max)
        return 0;
    uint64_t delta = w_max - cwnd_epoch;   /* < 2^30, so * 2.5e9 < 2^62 */
    return (uint32_t)cubic_cbrt(delta * 2500000000ull / mss);
}

/* |C * (t - K)^3| in bytes for |t - K| = dt_ms: 4 * dt^3 * SMSS / 1e10,
 * computed in stages that keep each product below 2^64. */
static uint64_t cubic_offset_bytes(uint64_t dt_ms, uint32_t mss)
{
    if (dt_ms >= CUBIC_DT_CAP_MS)
        return TCP_CC_CWND_MAX;
    uint64_t cube_k = dt_ms * dt_ms / 1000u * dt_ms;   /* dt^3 / 1e3, < 2^63 */
    uint64_t q = cube_k * 4u / 1000u;                  /* 1e-4 segments */
    if (q > UINT64_MAX / mss)
        return TCP_CC_CWND_MAX;
    uint64_t off = q * mss / 10000u;
    return off > TCP_CC_CWND_MAX ? TCP_CC_CWND_MAX : off;
}

/* RFC 9438 eq. 1: W_cubic(t) = C * (t - K)^3 + W_max, in bytes. */
static uint32_t cubic_window(const struct tcp_cc_cubic *c, uint64_t t_ms, uint32_t mss)
{
    if (t_ms >= c->k_ms)
        return cubic_clamp_window((uint64_t)c->w_max + cubic_offset_bytes(t_ms - c->k_ms, mss));
    uint64_t off = cubic_offset_bytes(c->k_ms - t_ms, mss);
    return off >= c->w_max ? 0 : (uint32_t)(c->w_max - off);
}

static void cubic_init(struct tcp_cc *cc)
{
    cc->u.cubic = (struct tcp_cc_cubic){0};
}

/* RFC 9438 4.2: a congestion avoidance stage starts; t counts from here. */
static void cubic_epoch_begin(struct tcp_cc *cc, uint64_t now)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    c->epoch_start = now ? now : 1;   /* 0 means "no epoch" */
    /* RFC 9438 4.8: after a timeout (w_max 0), or when cwnd already passed
     * W_max (undo, slow start overshoot), the curve starts at cwnd: K = 0. */
    if (c->w_max <= cc->cwnd)
        c->w_max = cc->cwnd;
    c->k_ms = cubic_k_ms(c->w_max, cc->cwnd, cubic_smss(cc));
    c->w_est = cc->cwnd;   /* RFC 9438 4.3: W_est = cwnd_epoch */
    c->w_est_accum = 0;
    c->acked_accum = 0;
}

/* RFC 9438 eq. 4 by bytes: W_est += alpha * acked * SMSS / cwnd, alpha
 * becoming 1 once W_est reaches cwnd_prior (RFC 9438 4.3). */
static void cubic_update_w_est(struct tcp_cc *cc, uint32_t acked)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    uint64_t alpha = c->w_est >= c->cwnd_prior ? CUBIC_ALPHA_DEN : CUBIC_ALPHA_NUM;
    uint64_t den = (uint64_t)CUBIC_ALPHA_DEN * cc->cwnd;
    uint64_t num = alpha * acked * cubic_smss(cc) + c->w_est_accum;   /* < 2^51 */
    c->w_est = cubic_clamp_window((uint64_t)c->w_est + num / den);
    c->w_est_accum = num % den;
}

/* RFC 9438 4.4/4.5: move cwnd towards W_cubic(t + RTT), clamped to
 * [cwnd, 1.5 cwnd], by (target - cwnd) / cwnd per acked segment. */
static void cubic_grow_towards(struct tcp_cc *cc, uint64_t t_ms, uint32_t acked)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    uint64_t target = cubic_window(c, t_ms + (c->rtt_us + 500u) / 1000u, cubic_smss(cc));
    uint64_t cap = (uint64_t)cc->cwnd + cc->cwnd / 2;
    if (target > cap)
        target = cap;
    if (target <= cc->cwnd)
        return;
    uint64_t num = (target - cc->cwnd) * acked + c->acked_accum;   /* < 2^60 */
    uint64_t cwnd = cc->cwnd + num / cc->cwnd;
    c->acked_accum = (uint32_t)(num % cc->cwnd);
    cc->cwnd = cubic_clamp_window(cwnd);
}

static void cubic_avoid(struct tcp_cc *cc, uint32_t acked, uint64_t now)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    if (c->epoch_start == 0)
        cubic_epoch_begin(cc, now);
    uint64_t t_ms = now > c->epoch_start ? (now - c->epoch_start) / NS_PER_MS : 0;
    cubic_update_w_est(cc, acked);
    /* RFC 9438 4.3: below W_est we are in the Reno-friendly region. */
    if (cubic_window(c, t_ms, cubic_smss(cc)) < c->w_est) {
        if (cc->cwnd < c->w_est)
            cc->cwnd = c->w_est;
        return;
    }
    cubic_grow_towards(cc, t_ms, acked);
}

static void cubic_on_ack(struct tcp_cc *cc, uint32_t acked, uint32_t rtt_us, int app_limited, uint64_t now)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    uint64_t prev = c->last_ack;
    c->last_ack = now;
    c->in_recovery = 0;
    if (rtt_us)
        c->rtt_us = rtt_us;
    if (cc->cwnd == 0)
        cc->cwnd = cubic_smss(cc);
    if (acked > TCP_CC_CWND_MAX)
        acked = TCP_CC_CWND_MAX;
    if (app_limited || acked == 0) {
        /* RFC 9438 5.8 / RFC 7661: no growth while cwnd is not used, and
         * the curve's clock stops so growth resumes where it paused. */
        if (c->epoch_start && prev && now > prev)
            c->epoch_start += now - prev;
        return;
    }
    if (cc->cwnd < cc->ssthresh) {
        acked = tcp_cc_slow_start(cc, acked);   /* RFC 9438 4.10 */
        if (!acked)
            return;
    }
    cubic_avoid(cc, acked, now);
}

/* RFC 9438 4.6 (multiplicative decrease) and 4.7 (fast convergence). */
static void cubic_reduce(struct tcp_cc *cc)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    uint32_t mss = cubic_smss(cc);
    c->w_max_prior = c->w_max;
    c->cwnd_prior = cc->cwnd;
    if (cc->cwnd < c->w_max)   /* still below the last peak: release faster */
        c->w_max = (uint32_t)((uint64_t)cc->cwnd * (CUBIC_BETA_DEN + CUBIC_BETA_NUM) / (2 * CUBIC_BETA_DEN));
    else
        c->w_max = cc->cwnd;
    /* 4.6 allows cwnd instead of flight_size when cwnd cannot grow while
     * unused; on_ack's app-limited rule guarantees that. */
    uint64_t ss = (uint64_t)cc->cwnd * CUBIC_BETA_NUM / CUBIC_BETA_DEN;
    if (ss < 2ull * mss)
        ss = 2ull * mss;
    cc->ssthresh = cubic_clamp_window(ss);
    c->epoch_start = 0;
    cc->bytes_acked = 0;
}

static void cubic_on_loss(struct tcp_cc *cc, uint32_t flight, uint64_t now)
{
    (void)flight;
    (void)now;
    cubic_reduce(cc);
    cc->cwnd = cc->ssthresh;   /* PRR paces the way down (RFC 6937) */
    cc->u.cubic.in_recovery = 1;
}

static void cubic_on_recovery_exit(struct tcp_cc *cc, uint64_t now)
{
    (void)now;
    cc->cwnd = cc->ssthresh;
    cc->u.cubic.in_recovery = 0;
    cc->u.cubic.epoch_start = 0;   /* the next CA ACK starts the epoch */
}

static void cubic_on_rto(struct tcp_cc *cc, uint32_t flight, uint64_t now)
{
    struct tcp_cc_cubic *c = &cc->u.cubic;
    (void)flight;
    (void)now;
    /* RFC 9438 4.8 with RFC 5681 3.1: reduce once per episode. A timeout
     * during recovery (already reduced) or a repeated timeout (cwnd at the
     * loss window) keeps ssthresh. */
    if (!c->in_recovery && cc->cwnd > cubic_smss(cc))
        cubic_reduce(cc);
    /* First CA stage after a timeout: K = 0, W_max = cwnd then (4.8). */
    c->w_max = 0;
    c->in_recovery = 0;
    c->epoch_start = 0;
    cc->cwnd = cubic_smss(cc);
}

static void cubic_on_undo(struct tcp_cc *cc)
{
    /* RFC 9438 4.9: back to the state before the spurious reduction. */
    struct tcp_cc_cubic *c = &cc->u.cubic;
    if (c->w_max < c->w_max_prior)
        c->w_max = c->w_max_prior;
    c->in_recovery = 0;
    c->epoch_start = 0;
}

static void cubic_on_idle(struct tcp_cc *cc)
{
    cc->u.cubic.epoch_start = 0;
}

const struct tcp_cc_ops tcp_cc_cubic = {
    .name = "cubic",
    .init = cubic_init,
    .on_ack = cubic_on_ack,
    .on_loss = cubic_on_loss,
    .on_recovery_exit = cubic_on_recovery_exit,
    .on_rto = cubic_on_rto,
    .on_undo = cubic_on_undo,
    .on_idle = cubic_on_idle,
};
