/* Congestion control behind one ops table: CUBIC (RFC 9438, the default)
 * and NewReno (RFC 5681, RFC 6582), selectable per connection. The TCP core
 * decides WHEN (an ACK advanced, loss detected, RTO fired, a loss turned out
 * spurious); the module decides HOW MUCH (cwnd and ssthresh). Loss recovery
 * itself (which segments to resend, PRR pacing of sends during recovery) is
 * the core's, see tcp_prr.h. All quantities in bytes; time in ns. */
#ifndef UST_TCP_CC_H
#define UST_TCP_CC_H

#include <stdint.h>

struct tcp_cc;

struct tcp_cc_ops {
    const char *name;
    void (*init)(struct tcp_cc *cc);
    /* New data acknowledged outside loss recovery: grow cwnd. acked is the
     * number of newly acked bytes, rtt_us the latest RTT sample (0 = none),
     * app_limited when the sender did not fill cwnd (RFC 7661: no growth). */
    void (*on_ack)(struct tcp_cc *cc, uint32_t acked, uint32_t rtt_us, int app_limited, uint64_t now);
    /* Fast retransmit / RACK loss: entering recovery; set ssthresh (and
     * the module's reference points). flight is bytes in flight then. */
    void (*on_loss)(struct tcp_cc *cc, uint32_t flight, uint64_t now);
    /* Recovery finished: cwnd = ssthresh (RFC 6582 3.2 step 3, RFC 9438 4.x). */
    void (*on_recovery_exit)(struct tcp_cc *cc, uint64_t now);
    /* Retransmission timeout: ssthresh from flight, cwnd = 1 MSS (RFC 5681 3.1). */
    void (*on_rto)(struct tcp_cc *cc, uint32_t flight, uint64_t now);
    /* Optional (NULL = nothing): after tcp_cc_undo restored cwnd/ssthresh,
     * restore the module's own reference points (RFC 9438 4.9). */
    void (*on_undo)(struct tcp_cc *cc);
    /* Optional: tcp_cc_after_idle restarted the window (RFC 5681 4.1). */
    void (*on_idle)(struct tcp_cc *cc);
};

struct tcp_cc_cubic {
    uint64_t epoch_start;     /* ns; 0 = no epoch (next CA ACK starts one) */
    uint64_t last_ack;        /* ns of the previous on_ack (app-limited freeze) */
    uint64_t w_est_accum;     /* remainder of the W_est growth division */
    uint32_t w_max;           /* bytes (RFC 9438 W_max); 0 = take cwnd_epoch */
    uint32_t w_max_prior;     /* W_max before the last reduction (undo) */
    uint32_t k_ms;            /* time to reach w_max from the epoch start */
    uint32_t w_est;           /* Reno-friendly estimate (bytes) */
    uint32_t cwnd_prior;      /* cwnd before the last reduction */
    uint32_t acked_accum;     /* remainder of the cwnd growth division */
    uint32_t rtt_us;          /* last RTT sample seen (W_cubic(t + RTT)) */
    uint8_t in_recovery;      /* reduced for this episode already */
};

struct tcp_cc {
    const struct tcp_cc_ops *ops;
    uint32_t cwnd, ssthresh;
    uint32_t mss;             /* SMSS: the core updates it on PMTU changes */
    uint32_t bytes_acked;     /* RFC 5681 3.1 appropriate byte counting (CA) */
    /* Saved at the last reduction so a spurious one can be undone
     * (F-RTO RFC 5682, DSACK): the core calls tcp_cc_undo. */
    uint32_t prior_cwnd, prior_ssthresh;
    union {
        struct tcp_cc_cubic cubic;
    } u;
};

/* cwnd never grows past this: a peer's window cannot exceed 2^30 bytes
 * (RFC 7323 2.3, shift 14), and the cap keeps every sum in 32 bits. */
#define TCP_CC_CWND_MAX (1u << 30)
/* RFC 5681 3.1: the initial ssthresh is "arbitrarily high". */
#define TCP_CC_SSTHRESH_INF 0x7fffffffu

extern const struct tcp_cc_ops tcp_cc_newreno;
extern const struct tcp_cc_ops tcp_cc_cubic;

/* By name ("cubic", "newreno" — also "reno"); NULL when unknown. */
const struct tcp_cc_ops *tcp_cc_find(const char *name);

/* Set up cc for a new connection: initial window per RFC 6928
 * (min(10*MSS, max(2*MSS, 14600))), ssthresh "arbitrarily high". */
void tcp_cc_init(struct tcp_cc *cc, const struct tcp_cc_ops *ops, uint32_t mss);
/* Restore cwnd/ssthresh saved at the last reduction (spurious loss/RTO). */
void tcp_cc_undo(struct tcp_cc *cc);
/* RFC 5681 4.1 restart after idle: cwnd = min(cwnd, RW) when idle > RTO. */
void tcp_cc_after_idle(struct tcp_cc *cc);

/* Shared by the modules. RFC 6928 initial window for this SMSS. */
uint32_t tcp_cc_initial_window(uint32_t mss);
/* RFC 5681 3.1 slow start with RFC 3465 ABC (L = 2*SMSS) up to ssthresh;
 * returns the acked bytes left over once cwnd reached ssthresh. */
uint32_t tcp_cc_slow_start(struct tcp_cc *cc, uint32_t acked);
/* RFC 5681 3.1 congestion avoidance by byte counting: +SMSS per cwnd acked. */
void tcp_cc_reno_avoid(struct tcp_cc *cc, uint32_t acked);

#endif
