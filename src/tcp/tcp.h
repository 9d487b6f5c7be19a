/* TCP (RFC 9293) internals: the control block, the per-stack tables and the
 * functions the input, output and timer modules share.
 *
 * Memory: a TCB is a few hundred bytes from a per-stack array that is
 * mmapped at start but only touched as connections appear. Send and receive
 * buffers are packet buffers taken when data actually flows (tcp_seg.h), so
 * an idle established connection costs the TCB alone. */
#ifndef UST_TCP_TCP_H
#define UST_TCP_TCP_H

#include <stdint.h>

#include "core/pkt.h"
#include "core/wheel.h"
#include "net/addr.h"
#include "net/icmp.h"
#include "tcp/tcp_cc.h"
#include "tcp/tcp_prr.h"
#include "tcp/tcp_rack.h"
#include "tcp/tcp_rtt.h"
#include "tcp/tcp_sack.h"
#include "tcp/tcp_seq.h"
#include "tcp/tcp_timewait.h"
#include "ustack/ustack.h"
#include "wire/ipv4.h"
#include "wire/tcp.h"

struct ust_stack;

/* RFC 9293 3.3.2: the eleven states (TIME-WAIT lives in struct tcp_tw). */
enum tcp_state {
    TCP_CLOSED = 0,
    TCP_LISTEN,
    TCP_SYN_SENT,
    TCP_SYN_RECEIVED,
    TCP_ESTABLISHED,
    TCP_FIN_WAIT_1,
    TCP_FIN_WAIT_2,
    TCP_CLOSE_WAIT,
    TCP_CLOSING,
    TCP_LAST_ACK,
    TCP_TIME_WAIT,
};

/* tcb.flags */
#define TF_ACK_NOW      0x00000001u   /* send an ACK at the next output       */
#define TF_DELACK       0x00000002u   /* an ACK is owed (delayed)             */
#define TF_NODELAY      0x00000004u   /* Nagle off                            */
#define TF_TS_OK        0x00000008u   /* timestamps negotiated (RFC 7323)     */
#define TF_WS_OK        0x00000010u   /* window scaling negotiated            */
#define TF_SACK_OK      0x00000020u   /* SACK negotiated (RFC 2018)           */
#define TF_FIN_QUEUED   0x00000040u   /* app closed/shutdown: FIN after data  */
#define TF_FIN_SENT     0x00000080u
#define TF_RCV_SHUT     0x00000100u   /* SHUT_RD: discard input               */
#define TF_APP_CLOSED   0x00000200u   /* the handle is gone: free when done   */
#define TF_IN_RECOVERY  0x00000400u   /* fast recovery (RFC 6675 / 6582)      */
#define TF_KEEPALIVE    0x00000800u
#define TF_LINGER0      0x00001000u
#define TF_ACCEPTED     0x00002000u   /* handed to the application            */
#define TF_READY_LISTED 0x00004000u   /* on the stack's event list            */
#define TF_FRTO         0x00008000u   /* F-RTO detection in progress (RFC 5682) */
#define TF_TLP_OUT      0x00010000u   /* a tail loss probe is outstanding     */
#define TF_SYN_SENT     0x00020000u   /* our SYN is in flight (seq iss)       */
#define TF_PERSIST      0x00040000u   /* zero window: probing                 */
#define TF_NEWRENO      0x00080000u
#define TF_WAS_IDLE     0x00100000u
#define TF_RCV_FIN      0x00200000u   /* peer's FIN received (EOF for reads)   */
#define TF_CC_UNDO_OK   0x00400000u   /* the last reduction may be undone     */
#define TF_SND_BLOCKED  0x00800000u   /* send hit a full buffer: tell WRITABLE */
#define TF_LISTEN_GONE  0x01000000u   /* listener closed, children draining   */
#define TF_SB_MARKS     0x02000000u   /* a sent segment may be SACKED/LOST/RETRANS */
#define TF_RCVBUF_LOCK  0x04000000u   /* SO_RCVBUF set: no receive autotuning */
#define TF_SNDBUF_LOCK  0x08000000u   /* SO_SNDBUF set: no send autotuning    */

/* Logical timers multiplexed on one wheel timer per TCB. */
enum tcp_timer_kind {
    TT_REXMT,        /* RTO, SYN retransmission                            */
    TT_PROBE,        /* TLP, persist (zero window probe), RACK reorder     */
    TT_DELACK,
    TT_KEEPALIVE,    /* keepalive, and FIN-WAIT-2 / connect timeouts       */
    TT_COUNT
};

struct tcb {
    /* ---- first cache line: demux and the receive fast path ---- */
    struct tcb *hnext;
    struct tcp_tuple tuple;
    uint8_t state;
    uint8_t snd_wscale, rcv_wscale;
    uint8_t ev_pending;               /* UST_TCP_* events not delivered yet */
    uint32_t flags;
    uint32_t rcv_nxt;
    uint32_t rcv_adv;                 /* right edge of the window advertised */
    uint32_t snd_una, snd_nxt;
    /* ---- second line: send state ---- */
    uint32_t snd_wnd;                 /* peer's window, scaled              */
    uint32_t snd_wl1, snd_wl2;
    uint32_t max_snd_wnd;             /* RFC 5961 5.2 acceptable ACK range  */
    uint32_t iss, irs;
    uint16_t mss;                     /* effective send MSS (payload)       */
    uint16_t peer_mss;                /* what the peer announced            */
    uint16_t mss_clamp;               /* TCP_MAXSEG                         */
    uint8_t dupacks;
    uint8_t keep_probes;              /* unanswered keepalive/persist probes */
    uint32_t ts_recent;               /* RFC 7323 TS.Recent                 */
    uint32_t ts_offset;               /* random per connection (RFC 7323 5.4) */
    uint32_t ts_recent_ms;            /* when ts_recent was set (PAWS aging) */
    uint32_t last_ack_sent;           /* RFC 7323 Last.ACK.sent             */
    uint32_t recover;                 /* RFC 6582 "recover"                 */
    uint32_t sb_marks_end;            /* snd_nxt at the last TF_SB_MARKS mark */
    uint32_t snd_up, rcv_up;          /* urgent pointers (RFC 9293 3.8.5)   */
    /* ---- loss recovery and congestion ---- */
    struct tcp_cc cc;
    struct tcp_rtt rtt;
    struct tcp_rack rack;
    struct tcp_prr prr;
    uint32_t frto_snd_nxt;            /* snd_nxt when F-RTO started         */
    uint32_t prr_budget_limit;        /* prr.out allowed after the last ACK  */
    uint8_t frto_stage;               /* RFC 5682 step (2 or 3), 0 = off    */
    uint8_t rcv_unacked_segs;         /* full segments received since our ACK */
    uint8_t probe_mode;               /* what TT_PROBE is armed for         */
    uint8_t persist_backoff;
    uint32_t rtt_seq;                 /* non-TS RTT sample: segment timed   */
    uint64_t last_send;               /* ns, for idle restart               */
    /* ---- buffers (packets taken lazily) ---- */
    struct pkt_queue sndq;            /* tcp_seg.h; snd_una..end of data    */
    struct pkt *snd_unsent;           /* first segment never sent, or NULL  */
    uint32_t snd_queued;              /* bytes in sndq                      */
    uint32_t sndbuf;
    struct pkt_queue rcvq;            /* in-order payload for the app       */
    uint32_t rcv_queued;              /* payload bytes in rcvq              */
    uint32_t rcv_mem;                 /* buffer bytes held (rcvq + oooq)    */
    uint32_t rcvbuf;
    uint32_t drs_seq;                 /* autotuning: what the app had read at drs_time_us */
    uint32_t drs_time_us;             /* start of the current measurement, 0 = none */
    struct pkt_queue oooq;            /* out of order, by sequence          */
    struct tcp_sack_rcv sack_rcv;
    /* ---- timers ---- */
    struct timer timer;
    uint64_t deadline[TT_COUNT];      /* 0 = not armed                      */
    uint32_t keep_idle_s, keep_intvl_s;
    uint8_t keep_cnt;
    uint8_t syn_retries;
    uint16_t soft_error;              /* errno to report (ICMP, timeouts)   */
    /* ---- application ---- */
    struct ust_stack *stack;
    struct tcb *listener;             /* for children not yet accepted      */
    struct tcb *accept_next;          /* accept queue / ready list link     */
    struct tcb *ready_next;
    ust_tcp_cb cb;
    void *cb_arg;
    /* listener only */
    struct tcb *acceptq_head, *acceptq_tail;
    uint16_t acceptq_len, backlog;
    uint16_t syn_pending;             /* children in SYN-RECEIVED           */
    uint16_t error;                   /* pending errno for the app          */
};

/* One arriving segment, parsed once and passed down the input pipeline. */
struct seg_in {
    struct tcp_repr h;
    struct pkt *p;            /* payload at pkt_data(p), p->len bytes; NULL once consumed */
    uint32_t seg_len;         /* payload + SYN + FIN (RFC 9293 3.4)        */
    struct tcp_tuple tuple;
};

/* Per-stack TCP state. */
struct tcp_stack {
    struct tcb *tcbs;                 /* max_conns, mmapped, touched lazily  */
    uint32_t max_conns, used, bump;   /* bump: first never-used index        */
    struct tcb *free_list;
    struct tcb **buckets;             /* connections by 4-tuple             */
    uint32_t mask;
    struct tcb *listeners[1024];      /* by port & 1023                     */
    struct tcp_tw_table tw;
    struct timer tw_timer;
    struct tcb *ready_head, *ready_tail;   /* events to deliver             */
    uint32_t port_counter;            /* RFC 6056 algorithm 3 "next"        */
    uint32_t ooo_pkts, ooo_max;       /* out-of-order buffers, whole stack  */
    uint32_t sndbuf_default, rcvbuf_default;
    uint32_t sndbuf_max, rcvbuf_max;  /* autotuning ceilings */
    uint64_t tune_granted;            /* bytes autotuning added, all connections */
    uint32_t syn_backlog;             /* per listener, before SYN cookies   */
};

/* Configuration knobs the stack options set (see api/config.c). */
#define TCP_MSS_DEFAULT 536            /* RFC 9293 3.7.1 when none announced */
#define TCP_MSS_MIN 216                /* floor for PMTU reductions (RFC 5927) */
#define TCP_DELACK_NS (40ULL * 1000000ULL)     /* Linux's quick delayed ACK  */
#define TCP_DELACK_MAX_NS (200ULL * 1000000ULL) /* RFC 9293 3.8.6.3: < 0.5 s  */
#define TCP_SYN_RETRIES 6
#define TCP_SYNACK_RETRIES 5
#define TCP_RETRIES2 15                /* RFC 9293 3.8.3 R2: give up     */
#define TCP_FIN_WAIT2_NS (60ULL * 1000000000ULL)
#define TCP_RCV_WSCALE 7
#define TCP_MAX_OOO_PER_CONN 256       /* buffers in one connection's oooq */

int tcp_init(struct ust_stack *s);
void tcp_fini(struct ust_stack *s);

/* Input: p holds the TCP segment at pkt_data (l3, l4 set). Takes ownership. */
void tcp_input(struct ust_stack *s, struct pkt *p, const struct ipv4_repr *ip);
void tcp_error_input(struct ust_stack *s, const struct icmp_err *e);
/* Deliver queued application events (called by the loop after a burst). */
void tcp_deliver_events(struct ust_stack *s);

/* ---- shared between the tcp_*.c modules ---- */

/* tcp_table.c */
struct tcb *tcb_alloc(struct ust_stack *s);
void tcb_free(struct ust_stack *s, struct tcb *t);
struct tcb *tcb_lookup(struct ust_stack *s, const struct tcp_tuple *t);
struct tcb *tcb_lookup_listener(struct ust_stack *s, const union ip_addr *laddr, uint16_t lport);
void tcb_hash_insert(struct ust_stack *s, struct tcb *t);
void tcb_hash_remove(struct ust_stack *s, struct tcb *t);
int tcb_listener_insert(struct ust_stack *s, struct tcb *t);
void tcb_listener_remove(struct ust_stack *s, struct tcb *t);
/* Choose t->lport for a connect (RFC 6056). *iss_floor is set to the lowest
 * safe ISS when a TIME-WAIT tuple was taken over, else 0. */
int tcp_pick_port(struct ust_stack *s, struct tcp_tuple *t, uint32_t *iss_floor);
/* Whether a connect may use the tuple t; may retire a TIME-WAIT record. */
int tcp_tuple_free(struct ust_stack *s, const struct tcp_tuple *t, uint32_t *iss_floor);
int tcp_port_in_use(struct ust_stack *s, const union ip_addr *laddr, uint16_t lport);

/* tcp_output.c */
void tcp_output(struct tcb *t);
void tcp_send_ack(struct tcb *t);
void tcp_send_syn(struct tcb *t);
/* RST in reply to a segment we have no acceptable state for (RFC 9293 3.10.7.1). */
void tcp_send_reset_reply(struct ust_stack *s, const struct tcp_tuple *tuple, const struct tcp_repr *seg,
                          uint32_t seg_len);
void tcp_send_reset(struct tcb *t);
/* Bare ACK from raw values (TIME-WAIT records, challenge ACKs). */
void tcp_send_ack_raw(struct ust_stack *s, const struct tcp_tuple *tuple, uint32_t seq, uint32_t ack,
                      uint16_t wnd, int has_ts, uint32_t tsval, uint32_t tsecr);
int tcp_retransmit_seg(struct tcb *t, struct pkt *seg, uint32_t max_len);
/* A sent segment below snd_nxt is about to carry a SACKED/LOST/RETRANS
 * mark: the scoreboard is dirty until everything sent so far is acked. */
static inline void tcp_sb_mark(struct tcb *t)
{
    t->flags |= TF_SB_MARKS;
    t->sb_marks_end = t->snd_nxt;
}
/* Give back what buffer autotuning granted t (tcp_api.c), when t goes
 * away or its sizes are fixed by hand. */
void tcp_tune_release(struct tcb *t);
uint32_t tcp_flight(const struct tcb *t);
uint32_t tcp_ts_now(const struct tcb *t);
uint16_t tcp_window_to_advertise(struct tcb *t);

/* TT_PROBE modes */
enum tcp_probe_mode { PROBE_NONE = 0, PROBE_TLP, PROBE_PERSIST, PROBE_REORDER };

/* OOO queue segments carrying the peer's FIN */
#define OOO_F_FIN 0x1000

/* tcp_table.c */
int tcp_tables_init(struct ust_stack *s, uint32_t max_conns);
void tcp_tables_fini(struct ust_stack *s);

/* tcp_timer.c */
void tcp_timers_run(struct tcb *t, uint64_t now);
void tcp_arm_persist(struct tcb *t);
void tcp_arm_probe(struct tcb *t, enum tcp_probe_mode mode, uint64_t when);
void tcp_timer_set(struct tcb *t, enum tcp_timer_kind k, uint64_t when);
void tcp_timer_clear(struct tcb *t, enum tcp_timer_kind k);
void tcp_timer_rearm(struct tcb *t);
void tcp_arm_rexmt(struct tcb *t);
void tcp_arm_keepalive(struct tcb *t);
void tcp_tw_timer_update(struct ust_stack *s);

/* tcp_conn.c: state changes with side effects */
void tcp_set_state(struct tcb *t, enum tcp_state st);
void tcp_notify(struct tcb *t, unsigned events);
/* Connection failed or reset: report err, drop buffers, move to CLOSED. */
void tcp_drop(struct tcb *t, int err);
/* Both sides done (CLOSED or into TIME-WAIT): free the TCB unless the
 * application still holds it. */
void tcp_done(struct tcb *t);
void tcp_enter_time_wait(struct tcb *t);
void tcp_free_buffers(struct tcb *t);
void tcp_init_tcb(struct ust_stack *s, struct tcb *t);
void tcp_established(struct tcb *t);
void tcp_update_mss(struct tcb *t, uint32_t path_mtu);
const char *tcp_state_name(int st);

/* tcp_output.c */
void tcp_retransmit_fin(struct tcb *t);

/* tcp_input.c / tcp_listen.c */
void tcp_apply_syn_options(struct tcb *t, const struct tcp_opts *o);
void tcp_listen_input(struct ust_stack *s, struct tcb *l, struct seg_in *in);
uint32_t tcp_ts_offset(struct ust_stack *s, const struct tcp_tuple *tuple);
/* the ACK side, shared with the timers */
void tcp_enter_recovery(struct tcb *t);
void tcp_mark_lost_from(struct tcb *t, struct pkt *seg, int all);

static inline struct ust_stack *tcb_stack(const struct tcb *t) { return t->stack; }

#endif
