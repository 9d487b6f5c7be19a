/* libFuzzer, stateful: a stack with one listener and one established
 * connection (handshake scripted), then the input is read as a list of
 * operations - forged segments toward the connection or the listener,
 * clock advances, application calls - and after every step the TCB's
 * invariants are checked. At the end every packet buffer must be back in
 * its pool. Any violation abort()s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tcpfx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ACCEPTED 8

struct input {
    const uint8_t *p;
    size_t left;
};

static uint8_t in_u8(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static uint16_t in_u16(struct input *in) { return (uint16_t)(in_u8(in) << 8 | in_u8(in)); }
static uint32_t in_u32(struct input *in) { return (uint32_t)in_u16(in) << 16 | in_u16(in); }

struct fz {
    struct tfx x;
    struct ust_tcp *acc[MAX_ACCEPTED];
    int nacc;
};

static void check_failed(int line)
{
    fprintf(stderr, "fuzz_tcp_conn: invariant at line %d violated\n", line);
    abort();
}

#define check(ok) ((ok) ? (void)0 : check_failed(__LINE__))

static uint32_t queue_bytes(const struct pkt_queue *q, uint32_t *count)
{
    uint32_t bytes = 0, n = 0;
    for (const struct pkt *p = q->head; p; p = p->next) {
        bytes += p->len;
        n++;
        check(n <= 1u << 20);
    }
    *count = n;
    return bytes;
}

/* The invariants a connection keeps whatever arrives. */
static void check_tcb(struct ust_stack *s, const struct tcb *t)
{
    uint32_t n;
    check(seq_leq(t->snd_una, t->snd_nxt));
    check(queue_bytes(&t->sndq, &n) == t->snd_queued);
    check(n == t->sndq.len);
    check(queue_bytes(&t->rcvq, &n) == t->rcv_queued);
    uint32_t ooo = queue_bytes(&t->oooq, &n);
    check(n == t->oooq.len && n <= TCP_MAX_OOO_PER_CONN);
    check(t->rcv_mem == t->rcv_queued + ooo);
    check(s->tcp.ooo_pkts <= s->tcp.ooo_max);
    /* The send queue is contiguous in sequence and holds snd_unsent. */
    int unsent_seen = t->snd_unsent == NULL;
    for (const struct pkt *p = t->sndq.head; p; p = p->next) {
        if (p->next)
            check(tseg_end(p) == tseg_seq(p->next));
        if (p == t->snd_unsent)
            unsent_seen = 1;
        if (!unsent_seen)
            check(seq_leq(tseg_end(p), t->snd_nxt));
    }
    check(unsent_seen);
    /* Out-of-order data never overlaps and lies above rcv_nxt. */
    for (const struct pkt *p = t->oooq.head; p; p = p->next) {
        check(seq_gt(p->aux, t->rcv_nxt));
        if (p->next)
            check(seq_leq(p->aux + p->len, p->next->aux));
    }
}

static void check_all(struct fz *f)
{
    struct ust_stack *s = f->x.fx.s;
    if (f->x.c)
        check_tcb(s, tfx_tcb(&f->x));
    for (int i = 0; i < f->nacc; i++)
        check_tcb(s, (struct tcb *)(void *)f->acc[i]);
    check(s->tcp.used <= s->tcp.max_conns);
}

/* A segment toward the connection: seq/ack relative to its state or raw. */
static void op_segment(struct fz *f, struct input *in)
{
    struct tfx *x = &f->x;
    uint8_t flags = in_u8(in), mode = in_u8(in);
    int16_t dseq = (int16_t)in_u16(in), dack = (int16_t)in_u16(in);
    uint16_t win = in_u16(in), len = in_u16(in) % 1461;
    struct tcb *t = x->c ? tfx_tcb(x) : NULL;
    struct tcp_repr h = tfx_hdr(x, flags & 0x3f);
    uint32_t rcv_nxt = t ? t->rcv_nxt : x->seq, snd_una = t ? t->snd_una : x->ack;
    h.seq = (mode & 1) ? in_u32(in) : rcv_nxt + (uint32_t)(int32_t)dseq;
    h.ack = (mode & 2) ? in_u32(in) : snd_una + (uint32_t)(int32_t)dack;
    h.win = win;
    h.urg = (flags & TCP_URG) ? in_u16(in) : 0;
    if (mode & 4) {
        h.opt.has_ts = 1;
        h.opt.ts_val = x->tsval + (uint32_t)(int32_t)(int8_t)in_u8(in);
    } else {
        h.opt.has_ts = 0;
    }
    if (mode & 8) {
        int nb = 1 + (in_u8(in) & 1);
        h.opt.sack_count = (uint8_t)nb;
        for (int i = 0; i < nb; i++) {
            h.opt.sack[i].left = snd_una + in_u16(in);
            h.opt.sack[i].right = h.opt.sack[i].left + in_u16(in) % 8000;
        }
    }
    if (mode & 16)
        h.sport = (uint16_t)(30000 + (mode >> 5));   /* toward the listener, some other peer */
    tfx_send_hdr(x, &h, NULL, len);
    if (seq_geq(h.seq + len, x->seq) && !(mode & 16) && !(mode & 1))
        x->seq = h.seq + len;
}

/* A well-formed handshake from another port toward the listener. */
static void op_handshake(struct fz *f, struct input *in)
{
    struct tfx *x = &f->x;
    uint16_t port = (uint16_t)(20000 + (in_u8(in) & 15));
    uint32_t isn = in_u32(in);
    struct tcp_repr syn = {.sport = port, .dport = x->lport, .seq = isn, .flags = TCP_SYN, .win = 8192};
    syn.opt.has_mss = 1;
    syn.opt.mss = 536 + in_u8(in) * 4;
    fx_tcp_send(&x->fx, &syn, NULL, 0);
    while (tfx_recv(x) == 0) {
        if (x->out.h.dport != port || x->out.h.flags != (TCP_SYN | TCP_ACK))
            continue;
        struct tcp_repr ack = {.sport = port, .dport = x->lport, .seq = isn + 1, .ack = x->out.h.seq + 1,
                               .flags = TCP_ACK, .win = 8192};
        fx_tcp_send(&x->fx, &ack, NULL, 0);
        break;
    }
}

static void op_accept(struct fz *f)
{
    if (f->nacc >= MAX_ACCEPTED)
        return;
    struct ust_tcp *c = ust_tcp_accept(f->x.l);
    if (c)
        f->acc[f->nacc++] = c;
}

static void op_app(struct fz *f, struct input *in, uint8_t op)
{
    struct tfx *x = &f->x;
    static uint8_t buf[70000];
    if (!x->c)
        return;
    uint16_t n = in_u16(in);
    switch (op) {
    case 0: tfx_app_send(x, n); break;
    case 1: ust_tcp_recv(x->c, buf, n); break;
    case 2: ust_tcp_shutdown(x->c, (n % 3 == 0) ? SHUT_RD : (n % 3 == 1) ? SHUT_WR : SHUT_RDWR); break;
    case 3: ust_tcp_close(x->c); x->c = NULL; break;
    case 4: ust_tcp_abort(x->c); x->c = NULL; break;
    case 5: ust_tcp_setopt(x->c, (enum ust_tcp_opt)(1 + n % 10), (n >> 4) & 0x7ff); break;
    default: break;
    }
}

static void run_ops(struct fz *f, struct input *in)
{
    struct tfx *x = &f->x;
    for (int steps = 0; in->left && steps < 256; steps++) {
        uint8_t op = in_u8(in);
        switch (op % 12) {
        case 0:
        case 1:
        case 2: op_segment(f, in); break;
        case 3: {
            uint64_t ms = in_u16(in) % 20000;
            tfx_advance_coarse(x, ms * TFX_MS, ms > 64 ? ms * TFX_MS / 64 : TFX_MS);
            break;
        }
        case 4: op_handshake(f, in); break;
        case 5: op_accept(f); break;
        default: op_app(f, in, (uint8_t)(op % 12 - 6)); break;
        }
        fx_poll(&x->fx);
        while (tfx_recv(x) == 0)
            ;
        check_all(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fz f;
    struct input in = {data, size};
    const char *args[] = {"--pkts=256", "--tcp-conns=64", "--tcp-ooo=64", "--tcp-syn-backlog=4", "--tcp-tw=16",
                          "--big-pkts=4", "--arp-entries=8", "--frag-sets=1", "--frag-frags=2", NULL};
    memset(&f, 0, sizeof(f));
    if (tfx_open(&f.x, args) < 0)
        abort();
    uint8_t o = in_u8(&in);
    if (tfx_passive(&f.x, o & TFX_ALL, (uint16_t)(536 + (o >> 4) * 64), (uint8_t)(o >> 4)) < 0)
        abort();
    run_ops(&f, &in);
    for (int i = 0; i < f.nacc; i++)
        ust_tcp_abort(f.acc[i]);
    if (tfx_close(&f.x) != 0)
        abort();
    return 0;
}
