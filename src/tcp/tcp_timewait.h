/* TIME-WAIT held in a compact record, not a full TCB (RFC 9293 3.10.7.4 for
 * the state's behaviour, RFC 1337 for ignoring RSTs, RFC 6191 for reusing
 * the 4-tuple on a new SYN). Every record lives the same time, so expiry is
 * a FIFO: nothing walks the table and no wheel timer is needed per record. */
#ifndef UST_TCP_TIMEWAIT_H
#define UST_TCP_TIMEWAIT_H

#include <stdint.h>

#include "core/hash.h"
#include "net/addr.h"
#include "wire/tcp.h"

struct tcp_tw {
    struct tcp_tw *hnext;     /* hash chain / free list */
    struct tcp_tw *fnext;     /* FIFO by expiry (toward the tail) */
    struct tcp_tw *fprev;     /* so remove/restart unlink in O(1) */
    struct tcp_tuple tuple;
    uint32_t snd_nxt;         /* our sequence after our FIN */
    uint32_t rcv_nxt;         /* after the peer's FIN */
    uint32_t ts_recent;       /* peer's last TSval; valid if has_ts */
    uint32_t ts_offset;       /* our TSval clock offset for this connection */
    uint16_t rcv_wnd;         /* window field to advertise in ACKs (scaled) */
    uint8_t has_ts;
    uint8_t live;             /* in the table (not on the free list) */
    uint64_t expires;         /* ns */
};

struct tcp_tw_table {
    struct tcp_tw *records;   /* max records, allocated at init */
    struct tcp_tw **buckets;
    struct tcp_tw *free_list;
    struct tcp_tw *fifo_head, *fifo_tail;
    uint32_t mask, max, used;
    uint64_t duration_ns;     /* default 60 s */
    uint64_t recycled;        /* records taken early by tw_insert on a full table */
    struct hash_key key;
};

int tw_init(struct tcp_tw_table *t, uint32_t max, uint64_t duration_ns);
void tw_fini(struct tcp_tw_table *t);

/* Enter TIME-WAIT. When the table is full the oldest record is recycled
 * early (counted in t->recycled; the caller may count it too). A record
 * already held for the same tuple is replaced. Returns the record, NULL only
 * for a table that failed tw_init. */
struct tcp_tw *tw_insert(struct tcp_tw_table *t, const struct tcp_tuple *tuple, uint32_t snd_nxt,
                         uint32_t rcv_nxt, int has_ts, uint32_t ts_recent, uint32_t ts_offset, uint16_t rcv_wnd,
                         uint64_t now);
struct tcp_tw *tw_lookup(struct tcp_tw_table *t, const struct tcp_tuple *tuple);
void tw_remove(struct tcp_tw_table *t, struct tcp_tw *tw);
/* RFC 9293 3.10.7.4: a retransmitted FIN restarts the 2 MSL wait: expires =
 * now + duration, and the record moves to the FIFO tail. */
void tw_restart(struct tcp_tw_table *t, struct tcp_tw *tw, uint64_t now);
/* Free every record expired by now; returns how many. */
uint32_t tw_expire(struct tcp_tw_table *t, uint64_t now);
/* The next expiry, UINT64_MAX if none. */
uint64_t tw_next_expiry(const struct tcp_tw_table *t);

enum tw_action {
    TW_DROP,                  /* ignore silently                           */
    TW_ACK,                   /* answer with an ACK of rcv_nxt (and restart the 2MSL wait) */
    TW_REUSE,                 /* a new SYN may take over the tuple (RFC 6191): remove
                                 the record and process the SYN as for a listener */
};

/* What a segment arriving for this record calls for (RFC 9293 3.10.7.4,
 * RFC 1337: a RST is dropped, never kills TIME-WAIT; RFC 6191: a SYN whose
 * timestamp is newer than ts_recent, or, without timestamps, whose sequence
 * number is above rcv_nxt, may reuse the tuple). seg_len counts SYN/FIN. */
enum tw_action tw_classify(const struct tcp_tw *tw, const struct tcp_repr *seg, uint32_t seg_len);
/* The segment is exactly the peer's FIN again (it ends at rcv_nxt): the one
 * case that should restart the 2 MSL wait on TW_ACK. A FIN at any other
 * sequence number (forged, blind) must not prolong the record. */
int tw_is_fin_retransmit(const struct tcp_tw *tw, const struct tcp_repr *seg, uint32_t seg_len);

#endif
