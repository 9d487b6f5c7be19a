/* SACK: which blocks a receiver reports (RFC 2018 4, RFC 2883), and what a
 * sender learns from them: SACKed and lost marks on the send queue, the
 * RFC 6675 pipe, IsLost() and NextSeg() rule 1. */
#include "tcp/tcp_sack.h"

#include <string.h>

#include "tcp/tcp_seq.h"

/* ================= receiver ================= */

static int block_overlaps(const struct tcp_sack_block *b, uint32_t l, uint32_t r)
{
    return seq_lt(l, b->right) && seq_lt(b->left, r);
}

static int block_eq(const struct tcp_sack_block *a, const struct tcp_sack_block *b)
{
    return a->left == b->left && a->right == b->right;
}

/* The maximal contiguous run of the out-of-order queue (clipped at rcv_nxt)
 * that overlaps [l, r). Returns 0 when none does. The walk is bounded by the
 * queue's own length, which the core bounds. */
static int ooo_run_overlapping(const struct pkt_queue *ooo, uint32_t rcv_nxt, uint32_t l, uint32_t r,
                               struct tcp_sack_block *run)
{
    int have = 0;
    uint32_t n = 0;
    for (const struct pkt *p = ooo->head; p && n < ooo->len; p = p->next, n++) {
        uint32_t s = p->aux, e = p->aux + p->len;
        if (p->len == 0 || seq_leq(e, rcv_nxt))
            continue;
        if (seq_lt(s, rcv_nxt))
            s = rcv_nxt;
        if (have && s == run->right) {
            run->right = e;   /* contiguous: extend the run */
            continue;
        }
        if (have && block_overlaps(run, l, r))
            return 1;
        run->left = s;
        run->right = e;
        have = 1;
    }
    return have && block_overlaps(run, l, r);
}

/* Append b unless already listed (runs are disjoint, so equal = subset). */
static void rcv_append_unique(struct tcp_sack_rcv *s, int from, const struct tcp_sack_block *b)
{
    if (s->count >= TCP_MAX_SACK)
        return;
    for (int i = from; i < s->count; i++)
        if (block_eq(&s->blocks[i], b))
            return;
    s->blocks[s->count++] = *b;
}

/* RFC 2018 4: first the block holding the newest segment (if any), then the
 * previously reported blocks in their order, each widened or trimmed to
 * the queue's current run; a pending D-SACK stays in front. */
static void rcv_rebuild(struct tcp_sack_rcv *s, const struct pkt_queue *ooo, uint32_t rcv_nxt,
                        const struct tcp_sack_block *newest)
{
    struct tcp_sack_block old[TCP_MAX_SACK];
    int first = s->dsack ? 1 : 0;
    int nold = s->count > first ? s->count - first : 0;
    memcpy(old, &s->blocks[first], (size_t)nold * sizeof(old[0]));
    s->count = (uint8_t)first;
    struct tcp_sack_block run;
    if (newest && ooo_run_overlapping(ooo, rcv_nxt, newest->left, newest->right, &run))
        rcv_append_unique(s, first, &run);
    for (int i = 0; i < nold; i++)
        if (ooo_run_overlapping(ooo, rcv_nxt, old[i].left, old[i].right, &run))
            rcv_append_unique(s, first, &run);
}

void sack_rcv_update(struct tcp_sack_rcv *s, const struct pkt_queue *ooo, uint32_t rcv_nxt, uint32_t start,
                     uint32_t end)
{
    struct tcp_sack_block newest = {start, end};
    rcv_rebuild(s, ooo, rcv_nxt, seq_lt(start, end) ? &newest : NULL);
}

void sack_rcv_advance(struct tcp_sack_rcv *s, const struct pkt_queue *ooo, uint32_t rcv_nxt)
{
    rcv_rebuild(s, ooo, rcv_nxt, NULL);
}

/* RFC 2883 4: the D-SACK goes first; when the duplicate lies inside a block
 * of queued data, that block goes second so the sender can tell. A newer
 * D-SACK replaces one not yet sent. */
void sack_rcv_dsack(struct tcp_sack_rcv *s, uint32_t start, uint32_t end)
{
    if (!seq_lt(start, end))
        return;
    struct tcp_sack_block old[TCP_MAX_SACK];
    int first = s->dsack ? 1 : 0;
    int nold = s->count > first ? s->count - first : 0;
    memcpy(old, &s->blocks[first], (size_t)nold * sizeof(old[0]));
    s->blocks[0] = (struct tcp_sack_block){start, end};
    s->count = 1;
    s->dsack = 1;
    for (int i = 0; i < nold; i++)
        if (seq_leq(old[i].left, start) && seq_geq(old[i].right, end))
            rcv_append_unique(s, 1, &old[i]);
    for (int i = 0; i < nold; i++)
        rcv_append_unique(s, 1, &old[i]);
}

int sack_rcv_take(struct tcp_sack_rcv *s, struct tcp_sack_block *out, int max)
{
    if (max > TCP_MAX_SACK)
        max = TCP_MAX_SACK;
    int n = s->count < max ? s->count : max;
    if (n <= 0)
        return 0;
    memcpy(out, s->blocks, (size_t)n * sizeof(out[0]));
    if (s->dsack) {
        /* RFC 2883 4: each duplicate is reported in one ACK only. */
        memmove(&s->blocks[0], &s->blocks[1], (size_t)(s->count - 1) * sizeof(s->blocks[0]));
        s->count--;
        s->dsack = 0;
    }
    return n;
}

/* ================= sender ================= */

/* Offsets from snd_una make every window test immune to wrap-around. */
struct sack_window {
    uint32_t una, len;   /* [una, una + len) = [snd_una, snd_nxt) */
};

/* RFC 2018 3 / RFC 5961 spirit: a usable block is non-empty and lies within
 * what was sent and not yet cumulatively acknowledged. */
static int sack_block_valid(const struct sack_window *w, const struct tcp_sack_block *b)
{
    uint32_t lo = b->left - w->una, hi = b->right - w->una;
    return lo < hi && hi <= w->len;
}

/* RFC 2883 4: the first block is a D-SACK when it lies (partly) below the
 * cumulative ACK, or inside the second block. */
static int sack_is_dsack(const struct sack_window *w, const struct tcp_sack_block *b, int n)
{
    uint32_t size = b[0].right - b[0].left;
    if (size == 0 || size > INT32_MAX)
        return 0;
    if (seq_lt(b[0].left, w->una) && seq_leq(b[0].right, w->una + w->len))
        return 1;
    return n > 1 && sack_block_valid(w, &b[1]) && seq_geq(b[0].left, b[1].left) && seq_leq(b[0].right, b[1].right);
}

static int seg_in_window(const struct sack_window *w, const struct pkt *seg)
{
    uint32_t hi = tseg_end(seg) - w->una;
    return tseg_sent(seg) && hi > 0 && hi <= w->len;
}

static int seg_covered(const struct sack_window *w, const struct pkt *seg, const struct tcp_sack_block *b, int n)
{
    uint32_t lo = tseg_seq(seg) - w->una, hi = tseg_end(seg) - w->una;
    for (int i = 0; i < n; i++)
        if (b[i].left - w->una <= lo && hi <= b[i].right - w->una)
            return 1;
    return 0;
}

void sack_mark(struct pkt_queue *sndq, uint32_t snd_una, uint32_t snd_nxt, const struct tcp_sack_block *blocks,
               int n, struct tcp_rack *rack, uint64_t now, struct sack_result *res)
{
    struct sack_window w = {snd_una, snd_nxt - snd_una};
    struct tcp_sack_block ok[TCP_MAX_SACK];
    int nok = 0;
    memset(res, 0, sizeof(*res));
    res->highest_sacked = snd_una;
    if (n > TCP_MAX_SACK)
        n = TCP_MAX_SACK;
    int skip = 0;
    if (n > 0 && sack_is_dsack(&w, blocks, n)) {
        res->dsack = 1;
        skip = 1;   /* it reports a duplicate, not new data held */
    }
    for (int i = skip; i < n; i++)
        if (sack_block_valid(&w, &blocks[i]))
            ok[nok++] = blocks[i];
    for (struct pkt *seg = sndq->head; seg; seg = seg->next) {
        if (!seg_in_window(&w, seg))
            continue;
        if (!(seg->flags & TSEG_SACKED) && nok && seg_covered(&w, seg, ok, nok)) {
            seg->flags = (uint16_t)((seg->flags | TSEG_SACKED) & ~TSEG_LOST);
            res->newly_sacked += seg->len;
            if (rack)
                rack_on_delivered(rack, seg, now, 0, 0);   /* 0: RACK's last min_rtt */
        }
        if (seg->flags & TSEG_SACKED) {
            res->sacked_total += seg->len;
            res->highest_sacked = tseg_end(seg);
        }
    }
}

uint32_t sack_pipe(const struct pkt_queue *sndq, uint32_t snd_nxt)
{
    uint32_t pipe = 0;
    for (const struct pkt *seg = sndq->head; seg; seg = seg->next) {
        if (!tseg_sent(seg) || !seq_lt(tseg_seq(seg), snd_nxt))
            continue;
        if (seg->flags & TSEG_SACKED)
            continue;
        uint32_t len = seq_lt(snd_nxt, tseg_end(seg)) ? snd_nxt - tseg_seq(seg) : seg->len;
        /* RFC 6675 4 SetPipe: (a) not lost: in flight; (b) retransmitted:
         * the retransmission is in flight too. */
        if (!(seg->flags & TSEG_LOST))
            pipe += len;
        if (seg->flags & TSEG_RETRANS)
            pipe += len;
    }
    return pipe;
}

static int seg_sent_below(const struct pkt *seg, uint32_t snd_nxt)
{
    return tseg_sent(seg) && seq_leq(tseg_end(seg), snd_nxt);
}

/* RFC 6675 4 IsLost(): DupThresh SACKed segments above, or more than
 * (DupThresh - 1) * SMSS SACKed bytes above. */
static int sack_is_lost(uint32_t segs_above, uint32_t bytes_above, uint32_t mss)
{
    return segs_above >= TCP_DUPTHRESH || (mss && bytes_above > (TCP_DUPTHRESH - 1) * mss);
}

uint32_t sack_mark_lost_dupthresh(struct pkt_queue *sndq, uint32_t snd_nxt, uint32_t mss)
{
    uint32_t segs = 0, bytes = 0, marked = 0;
    struct pkt *seg;
    for (seg = sndq->head; seg; seg = seg->next)
        if (seg_sent_below(seg, snd_nxt) && (seg->flags & TSEG_SACKED)) {
            segs++;
            bytes += seg->len;
        }
    /* Walk up, counting down what is SACKed above; IsLost only gets harder
     * higher up, so the first segment that is not lost ends the walk. */
    for (seg = sndq->head; seg && segs; seg = seg->next) {
        if (!seg_sent_below(seg, snd_nxt))
            continue;
        if (seg->flags & TSEG_SACKED) {
            segs--;
            bytes -= seg->len;
            continue;
        }
        if (!sack_is_lost(segs, bytes, mss))
            break;
        /* Already retransmitted: RFC 6675 NextSeg() looks above HighRxt,
         * so only RACK may declare a retransmission lost again. */
        if (!(seg->flags & (TSEG_LOST | TSEG_RETRANS))) {
            seg->flags |= TSEG_LOST;
            marked++;
        }
    }
    return marked;
}

struct pkt *sack_next_lost(const struct pkt_queue *sndq)
{
    for (struct pkt *seg = sndq->head; seg; seg = seg->next)
        if ((seg->flags & TSEG_LOST) && !(seg->flags & TSEG_SACKED))
            return seg;
    return NULL;
}
