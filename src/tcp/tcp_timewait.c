/* TIME-WAIT records: a fixed array taken once at tw_init, a keyed hash for
 * lookup, and a FIFO for expiry. Every record waits the same duration, so
 * the FIFO (appended on insert and on restart) is in expiry order as long as
 * `now` does not go backwards; expiring is popping the head. */
#include "tcp/tcp_timewait.h"

#include <stdlib.h>
#include <string.h>

#include "tcp/tcp_seq.h"

#define TW_MAX_RECORDS (1u << 31)

static uint32_t tw_bucket_count(uint32_t max)
{
    uint32_t n = 1;
    while (n < max)
        n <<= 1;
    return n;
}

static uint32_t tw_hash(const struct tcp_tw_table *t, const struct tcp_tuple *tuple)
{
    return tuple_hash_keyed(&t->key, tuple) & t->mask;
}

int tw_init(struct tcp_tw_table *t, uint32_t max, uint64_t duration_ns)
{
    memset(t, 0, sizeof(*t));
    if (max == 0 || max > TW_MAX_RECORDS)
        return -1;
    uint32_t nb = tw_bucket_count(max);
    t->records = calloc(max, sizeof(*t->records));
    t->buckets = calloc(nb, sizeof(*t->buckets));
    if (!t->records || !t->buckets) {
        tw_fini(t);
        return -1;
    }
    for (uint32_t i = max; i-- > 0;) {
        t->records[i].hnext = t->free_list;
        t->free_list = &t->records[i];
    }
    t->mask = nb - 1;
    t->max = max;
    t->duration_ns = duration_ns;
    rand_bytes(&t->key, sizeof(t->key));
    return 0;
}

void tw_fini(struct tcp_tw_table *t)
{
    free(t->records);
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

static void tw_fifo_append(struct tcp_tw_table *t, struct tcp_tw *tw)
{
    tw->fnext = NULL;
    tw->fprev = t->fifo_tail;
    if (t->fifo_tail)
        t->fifo_tail->fnext = tw;
    else
        t->fifo_head = tw;
    t->fifo_tail = tw;
}

static void tw_fifo_unlink(struct tcp_tw_table *t, struct tcp_tw *tw)
{
    if (tw->fprev)
        tw->fprev->fnext = tw->fnext;
    else
        t->fifo_head = tw->fnext;
    if (tw->fnext)
        tw->fnext->fprev = tw->fprev;
    else
        t->fifo_tail = tw->fprev;
    tw->fnext = tw->fprev = NULL;
}

static void tw_hash_unlink(struct tcp_tw_table *t, struct tcp_tw *tw)
{
    struct tcp_tw **pp = &t->buckets[tw_hash(t, &tw->tuple)];
    while (*pp && *pp != tw)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = tw->hnext;
    tw->hnext = NULL;
}

void tw_remove(struct tcp_tw_table *t, struct tcp_tw *tw)
{
    if (!tw->live)
        return;
    tw_hash_unlink(t, tw);
    tw_fifo_unlink(t, tw);
    tw->live = 0;
    tw->hnext = t->free_list;
    t->free_list = tw;
    t->used--;
}

/* A free record, or the oldest live one when the table is full: a bounded
 * table degrades by shortening TIME-WAIT, never by refusing to close. */
static struct tcp_tw *tw_alloc(struct tcp_tw_table *t)
{
    if (!t->free_list && t->fifo_head) {
        tw_remove(t, t->fifo_head);
        t->recycled++;
    }
    struct tcp_tw *tw = t->free_list;
    if (tw)
        t->free_list = tw->hnext;
    return tw;
}

struct tcp_tw *tw_insert(struct tcp_tw_table *t, const struct tcp_tuple *tuple, uint32_t snd_nxt,
                         uint32_t rcv_nxt, int has_ts, uint32_t ts_recent, uint32_t ts_offset, uint16_t rcv_wnd,
                         uint64_t now)
{
    if (!t->records)
        return NULL;
    struct tcp_tw *old = tw_lookup(t, tuple);
    if (old)
        tw_remove(t, old);
    struct tcp_tw *tw = tw_alloc(t);
    if (!tw)
        return NULL;
    memset(tw, 0, sizeof(*tw));
    tw->tuple = *tuple;
    tw->snd_nxt = snd_nxt;
    tw->rcv_nxt = rcv_nxt;
    tw->has_ts = has_ts != 0;
    tw->ts_recent = ts_recent;
    tw->ts_offset = ts_offset;
    tw->rcv_wnd = rcv_wnd;
    tw->expires = now + t->duration_ns;
    tw->live = 1;
    uint32_t b = tw_hash(t, tuple);
    tw->hnext = t->buckets[b];
    t->buckets[b] = tw;
    tw_fifo_append(t, tw);
    t->used++;
    return tw;
}

struct tcp_tw *tw_lookup(struct tcp_tw_table *t, const struct tcp_tuple *tuple)
{
    if (!t->used)
        return NULL;
    for (struct tcp_tw *tw = t->buckets[tw_hash(t, tuple)]; tw; tw = tw->hnext)
        if (tuple_eq(&tw->tuple, tuple))
            return tw;
    return NULL;
}

void tw_restart(struct tcp_tw_table *t, struct tcp_tw *tw, uint64_t now)
{
    if (!tw->live)
        return;
    tw_fifo_unlink(t, tw);
    tw->expires = now + t->duration_ns;
    tw_fifo_append(t, tw);
}

uint32_t tw_expire(struct tcp_tw_table *t, uint64_t now)
{
    uint32_t n = 0;
    while (t->fifo_head && t->fifo_head->expires <= now) {
        tw_remove(t, t->fifo_head);
        n++;
    }
    return n;
}

uint64_t tw_next_expiry(const struct tcp_tw_table *t)
{
    return t->fifo_head ? t->fifo_head->expires : UINT64_MAX;
}

/* RFC 6191 2: a SYN may open a new incarnation if it is provably newer
 * than the old one: by timestamp when both use them (an equal timestamp
 * falls back to the sequence number), else by sequence number. The RFC
 * drops the SYN that does not qualify; RFC 9293 3.10.7.4 ("fourth, check the
 * SYN bit": TIME-WAIT accepts per RFC 6191, all other cases get the RFC 5961
 * 4.2 challenge ACK) answers it with an ACK instead, as Linux does: a
 * legitimate peer whose new ISN happens to be low then learns from the ACK
 * (it answers with a RST, which we ignore, and retries). We follow RFC 9293. */
static enum tw_action tw_classify_syn(const struct tcp_tw *tw, const struct tcp_repr *seg)
{
    if (tw->has_ts && seg->opt.has_ts) {
        if (seq_gt(seg->opt.ts_val, tw->ts_recent))
            return TW_REUSE;
        if (seg->opt.ts_val == tw->ts_recent && seq_gt(seg->seq, tw->rcv_nxt))
            return TW_REUSE;
        return TW_ACK;
    }
    return seq_gt(seg->seq, tw->rcv_nxt) ? TW_REUSE : TW_ACK;
}

/* RFC 7323 5.3 R1: TSval older than TS.Recent on a non-RST segment. */
static int tw_paws_reject(const struct tcp_tw *tw, const struct tcp_repr *seg)
{
    return tw->has_ts && seg->opt.has_ts && seq_lt(seg->opt.ts_val, tw->ts_recent);
}

/* RFC 9293 3.4 acceptability of a zero-length segment. rcv_wnd is the
 * scaled-down field we advertise, so it understates the window: a segment
 * near the window's edge may be judged unacceptable and merely ACKed. */
static int tw_seq_acceptable(const struct tcp_tw *tw, uint32_t seq)
{
    uint32_t wnd = tw->rcv_wnd ? tw->rcv_wnd : 1;
    return seq_in(seq, tw->rcv_nxt, tw->rcv_nxt + wnd);
}

int tw_is_fin_retransmit(const struct tcp_tw *tw, const struct tcp_repr *seg, uint32_t seg_len)
{
    return (seg->flags & TCP_FIN) && seg_len > 0 && seg->seq + seg_len == tw->rcv_nxt;
}

enum tw_action tw_classify(const struct tcp_tw *tw, const struct tcp_repr *seg, uint32_t seg_len)
{
    /* RFC 1337 (TW1 fix): a RST must not end TIME-WAIT early. */
    if (seg->flags & TCP_RST)
        return TW_DROP;
    if ((seg->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        return tw_classify_syn(tw, seg);
    /* RFC 7323 5.3 R1: an old duplicate; send an ACK and drop it. */
    if (tw_paws_reject(tw, seg))
        return TW_ACK;
    /* RFC 7323 3.2: with timestamps negotiated, a non-RST segment without
     * TSopt SHOULD be silently dropped. */
    if (tw->has_ts && !seg->opt.has_ts)
        return TW_DROP;
    /* RFC 9293 3.10.7.4: the only thing that can arrive is a retransmission
     * of the peer's FIN: acknowledge it. Any other text or FIN is an old
     * duplicate (not acceptable: send an ACK) or impossible after the FIN;
     * the ACK tells the sender where we stand. */
    if (seg_len > 0)
        return TW_ACK;
    /* RFC 9293 3.10.7.4 fifth: if the ACK bit is off, drop the segment. */
    if (!(seg->flags & TCP_ACK))
        return TW_DROP;
    /* First step: not acceptable, or it acknowledges something we never
     * sent: send an ACK. An acceptable pure ACK carries nothing new;
     * answering it could start an ACK loop. */
    if (!tw_seq_acceptable(tw, seg->seq) || seq_gt(seg->ack, tw->snd_nxt))
        return TW_ACK;
    return TW_DROP;
}
