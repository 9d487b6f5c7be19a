/* Hostile-peer defences and resource bounds: ISNs (RFC 6528), ephemeral
 * ports (RFC 6056), SYN cookies, the accept queue, out-of-order limits,
 * pool pressure; TIME-WAIT records (RFC 1337, RFC 6191). */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "tcpfx.h"

static struct ust_tcp *connect_from(struct tfx *x, uint16_t sport, uint16_t dport)
{
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(dport), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(sport), .sin_addr.s_addr = htonl(FX_US_IP)};
    return ust_tcp_connect(x->fx.s, (struct sockaddr *)&dst, sizeof(dst), sport ? (struct sockaddr *)&src : NULL,
                           sizeof(src), NULL, NULL);
}

TEST(isn_differs_per_tuple_and_grows_with_time)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct ust_tcp *a = connect_from(&x, 50000, 80), *b = connect_from(&x, 50000, 81);
    CHECK(a && b);
    uint32_t ia = ((struct tcb *)(void *)a)->iss, ib = ((struct tcb *)(void *)b)->iss;
    CHECK(ia != ib);
    ust_tcp_abort(a);
    tfx_advance(&x, 1000 * TFX_MS);
    a = connect_from(&x, 50000, 80);
    CHECK(a);
    uint32_t ia2 = ((struct tcb *)(void *)a)->iss;
    CHECK(seq_gt(ia2, ia));   /* RFC 6528: the clock component moves on */
    CHECK(ia2 - ia < 100000000u);
    ust_tcp_abort(a);
    ust_tcp_abort(b);
    CHECK(tfx_close(&x) == 0);
}

TEST(ephemeral_ports_vary)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct ust_tcp *c[8];
    uint16_t ports[8];
    int consecutive = 0;
    for (int i = 0; i < 8; i++) {
        c[i] = connect_from(&x, 0, (uint16_t)(80 + i));
        CHECK(c[i]);
        ports[i] = ((struct tcb *)(void *)c[i])->tuple.lport;
        CHECK(ports[i] >= 1024);
        for (int j = 0; j < i; j++)
            CHECK(ports[i] != ports[j]);
        if (i && ports[i] == ports[i - 1] + 1)
            consecutive++;
    }
    CHECK(consecutive < 7);   /* RFC 6056 3.3.3: per-destination offsets */
    for (int i = 0; i < 8; i++)
        ust_tcp_abort(c[i]);
    CHECK(tfx_close(&x) == 0);
}

static void syn_from(struct tfx *x, uint16_t port, uint32_t isn)
{
    struct tcp_repr syn = {.sport = port, .dport = TFX_US_PORT, .seq = isn, .flags = TCP_SYN, .win = 65535};
    syn.opt.has_mss = 1;
    syn.opt.mss = 1460;
    fx_tcp_send(&x->fx, &syn, NULL, 0);
}

static void ack_from(struct tfx *x, uint16_t port, uint32_t seq, uint32_t ack)
{
    struct tcp_repr h = {.sport = port, .dport = TFX_US_PORT, .seq = seq, .ack = ack, .flags = TCP_ACK, .win = 65535};
    fx_tcp_send(&x->fx, &h, NULL, 0);
}

static struct ust_tcp *listen7(struct tfx *x, int backlog)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TFX_US_PORT)};
    x->lport = TFX_US_PORT;
    return x->l = ust_tcp_listen(x->fx.s, (struct sockaddr *)&a, sizeof(a), backlog, NULL, NULL);
}

TEST(syn_cookies_when_backlog_full)
{
    struct tfx x;
    const char *args[] = {"--tcp-syn-backlog=1", NULL};
    CHECK(tfx_open(&x, args) == 0);
    CHECK(listen7(&x, 16));
    syn_from(&x, 1001, 100);
    CHECK(tfx_recv(&x) == 0 && x.out.h.flags == (TCP_SYN | TCP_ACK));
    CHECK_EQ(fx_ctr(&x.fx, "tcp_syncookies_sent"), 0);
    uint32_t used = x.fx.s->tcp.used;
    /* Backlog full: a cookie, and no state kept. */
    syn_from(&x, 1002, 200);
    CHECK(tfx_recv(&x) == 0 && x.out.h.flags == (TCP_SYN | TCP_ACK) && x.out.h.ack == 201);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_syncookies_sent"), 1);
    CHECK_EQ(x.fx.s->tcp.used, used);
    uint32_t cookie = x.out.h.seq;
    /* A forged cookie ACK: RST <SEQ=SEG.ACK>. */
    ack_from(&x, 1003, 301, 0x12345678);
    CHECK(tfx_expect(&x, TCP_RST, 0x12345678, 0, 0) == 0);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_syncookies_failed"), 1);
    ack_from(&x, 1002, 201, cookie + 2);   /* off by one */
    CHECK(tfx_expect(&x, TCP_RST, cookie + 2, 0, 0) == 0);
    CHECK_EQ(x.fx.s->tcp.used, used);
    /* The true ACK completes a connection from the cookie alone. */
    ack_from(&x, 1002, 201, cookie + 1);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_syncookies_ok"), 1);
    x.c = ust_tcp_accept(x.l);
    CHECK(x.c);
    CHECK(strcmp(ust_tcp_state(x.c), "ESTABLISHED") == 0);
    struct tcb *t = tfx_tcb(&x);
    CHECK(t->mss > 536 && t->mss <= 1460);
    x.rport = 1002;
    x.seq = 201;
    x.ack = cookie + 1;
    x.iss = cookie;
    tfx_send(&x, TCP_ACK | TCP_PSH, "hi", 2);
    char rb[4];
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 2);
    CHECK_EQ(tfx_app_send(&x, 3), 3);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, cookie + 1, 203, 3) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(accept_queue_is_bounded)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(listen7(&x, 2));
    for (uint16_t p = 2001; p <= 2003; p++) {
        syn_from(&x, p, 1000u * p);
        if (p == 2003) {
            CHECK(tfx_quiet(&x));   /* queue full: the SYN is dropped */
            break;
        }
        CHECK(tfx_recv(&x) == 0 && x.out.h.flags == (TCP_SYN | TCP_ACK));
        ack_from(&x, p, 1000u * p + 1, x.out.h.seq + 1);
    }
    struct tcb *l = (struct tcb *)(void *)x.l;
    CHECK_EQ(l->acceptq_len, 2);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_drop_listen_overflow"), 1);
    struct ust_tcp *a = ust_tcp_accept(x.l), *b = ust_tcp_accept(x.l);
    CHECK(a && b && !ust_tcp_accept(x.l));
    ust_tcp_abort(a);
    ust_tcp_abort(b);
    CHECK(tfx_close(&x) == 0);
}

/* n one-byte segments, each beyond a one-byte hole. */
static void send_ooo(struct tfx *x, int n)
{
    for (int i = 0; i < n; i++) {
        struct tcp_repr h = tfx_hdr(x, TCP_ACK);
        h.seq = x->seq + 1 + 2u * (uint32_t)i;
        tfx_send_hdr(x, &h, "o", 1);
    }
    fx_drain(&x->fx);
}

TEST(ooo_bounded_per_stack)
{
    struct tfx x;
    const char *args[] = {"--tcp-ooo=16", NULL};
    CHECK(tfx_open(&x, args) == 0);
    CHECK(tfx_passive(&x, TFX_MSS | TFX_SACK, 1460, 0) == 0);
    send_ooo(&x, 20);
    CHECK_EQ(tfx_tcb(&x)->oooq.len, 16);
    CHECK_EQ(x.fx.s->tcp.ooo_pkts, 16);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_drop_ooo_full"), 4);
    /* Filling the first hole drains one segment; the bound is kept. */
    tfx_send(&x, TCP_ACK, "i", 1);
    CHECK_EQ(x.fx.s->tcp.ooo_pkts, 15);
    CHECK(tfx_close(&x) == 0);
}

TEST(ooo_bounded_per_connection)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    send_ooo(&x, TCP_MAX_OOO_PER_CONN + 10);
    CHECK_EQ(tfx_tcb(&x)->oooq.len, TCP_MAX_OOO_PER_CONN);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_drop_ooo_full"), 10);
    CHECK(tfx_close(&x) == 0);
}

/* Read every pending segment, keep the last in x->out. */
static int last_seg(struct tfx *x)
{
    int n = 0;
    struct fx_seg keep;
    while (tfx_recv(x) == 0) {
        keep = x->out;
        n++;
    }
    if (n)
        x->out = keep;
    return n ? 0 : -1;
}

/* Overlapping out-of-order segments are trimmed against each other; the
 * stream that comes out is byte-exact (found by fuzz_tcp_conn). */
TEST(ooo_overlaps_trimmed_stream_exact)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS | TFX_SACK, 1460, 0) == 0);
    uint32_t base = x.seq;
    struct tcp_repr h = tfx_hdr(&x, TCP_ACK);
    const uint32_t segs[][2] = {{1000, 100}, {1050, 150}, {900, 400}, {2000, 10}, {1500, 600}, {0, 1000}};
    for (unsigned i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        h.seq = base + segs[i][0];
        tfx_send_hdr(&x, &h, NULL, segs[i][1]);
        struct tcb *t = tfx_tcb(&x);
        for (const struct pkt *p = t->oooq.head; p; p = p->next)
            CHECK(!p->next || seq_leq(p->aux + p->len, p->next->aux));
    }
    /* What overlapped a queued segment's tail was dropped (no copy is made
     * to keep it): the stream stops at the first such hole. */
    static uint8_t rb[4096];
    CHECK_EQ(ust_tcp_readable(x.c), 1200);
    h.seq = base + 1200;   /* the sender fills it, across queued data */
    tfx_send_hdr(&x, &h, NULL, 900);
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 2100);
    for (uint32_t i = 0; i < 2100; i++)
        CHECK_EQ(rb[i], (uint8_t)(base + i));
    CHECK_EQ(tfx_tcb(&x)->oooq.len, 0);
    CHECK_EQ(x.fx.s->tcp.ooo_pkts, 0);
    CHECK(tfx_close(&x) == 0);
}

static uint32_t right_edge(struct tfx *x) { return x->out.h.ack + ((uint32_t)x->out.h.win << tfx_tcb(x)->rcv_wscale); }

TEST(pool_pressure_stops_window_growth)
{
    struct tfx x;
    const char *args[] = {"--tcp-rcvbuf=16384", NULL};
    CHECK(tfx_open(&x, args) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1000, 0) == 0);
    tfx_send(&x, TCP_ACK, NULL, 1000);
    tfx_send(&x, TCP_ACK, NULL, 1000);
    CHECK(last_seg(&x) == 0);
    uint32_t edge = right_edge(&x);
    CHECK_EQ(edge, x.seq + 16384 - 2000);
    /* Take the pool down to its last sixteenth (pressure is below an eighth). */
    struct pkt_pool *pool = &x.fx.s->pool;
    static struct pkt *held[4096];
    int n = 0;
    while (pool->avail >= pool->count / 16 && n < 4096)
        held[n++] = pkt_alloc(pool);
    static char rb[4000];
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 2000);   /* room, but no buffers */
    tfx_send(&x, TCP_ACK, NULL, 1000);
    tfx_send(&x, TCP_ACK, NULL, 1000);
    CHECK(last_seg(&x) == 0);
    CHECK_EQ(right_edge(&x), edge);   /* the window shrank from the left only */
    for (int i = 0; i < n; i++)
        pkt_free(held[i]);
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 2000);
    CHECK(last_seg(&x) == 0);   /* window update */
    CHECK_EQ(right_edge(&x), x.seq + 16384);
    CHECK(tfx_close(&x) == 0);
}

/* Passive open, then we close first: TIME-WAIT on our side. */
static int into_time_wait(struct tfx *x, unsigned opts)
{
    if (tfx_passive(x, TFX_MSS | opts, 1460, 0) < 0)
        return -1;
    ust_tcp_close(x->c);
    x->c = NULL;
    if (tfx_recv(x) < 0 || x->out.h.flags != (TCP_ACK | TCP_FIN))
        return -1;
    x->ack = x->iss + 2;
    tfx_send(x, TCP_ACK | TCP_FIN, NULL, 0);
    if (tfx_recv(x) < 0 || x->out.h.flags != TCP_ACK)
        return -1;
    return x->fx.s->tcp.tw.used == 1 ? 0 : -1;
}

TEST(time_wait_compact_and_configurable)
{
    struct tfx x;
    const char *args[] = {"--time-wait=5", NULL};
    CHECK(tfx_open(&x, args) == 0);
    CHECK(into_time_wait(&x, 0) == 0);
    CHECK(sizeof(struct tcp_tw) <= 96);
    CHECK(sizeof(struct tcp_tw) * 4 <= sizeof(struct tcb));
    CHECK_EQ(x.fx.s->tcp.used, 1);   /* the listener only: the TCB is gone */
    /* RFC 1337: a RST does not end it. */
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK_EQ(x.fx.s->tcp.tw.used, 1);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_tw_rst_ignored"), 1);
    CHECK(tfx_quiet(&x));
    tfx_advance(&x, 4900 * TFX_MS);
    CHECK_EQ(x.fx.s->tcp.tw.used, 1);
    tfx_advance(&x, 200 * TFX_MS);
    CHECK_EQ(x.fx.s->tcp.tw.used, 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(time_wait_reuse_on_higher_seq_syn)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(into_time_wait(&x, 0) == 0);
    /* An old SYN (at or below rcv_nxt): ACKed, the record stays. */
    struct tcp_repr syn = {.sport = x.rport, .dport = x.lport, .seq = x.seq - 5, .flags = TCP_SYN, .win = 65535};
    fx_tcp_send(&x.fx, &syn, NULL, 0);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 2, x.seq, 0) == 0);
    CHECK_EQ(x.fx.s->tcp.tw.used, 1);
    /* RFC 9293 3.6.1 / RFC 6191: a higher ISN starts a new incarnation. */
    syn.seq = x.seq + 100000;
    fx_tcp_send(&x.fx, &syn, NULL, 0);
    CHECK(tfx_recv(&x) == 0);
    CHECK_EQ(x.out.h.flags, TCP_SYN | TCP_ACK);
    CHECK_EQ(x.out.h.ack, x.seq + 100001);
    CHECK_EQ(x.fx.s->tcp.tw.used, 0);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_tw_reuse"), 1);
    CHECK(tfx_close(&x) == 0);
}

TEST(time_wait_reuse_on_newer_timestamp)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(into_time_wait(&x, TFX_TS) == 0);
    struct tcp_repr syn = {.sport = x.rport, .dport = x.lport, .seq = x.seq - 5, .flags = TCP_SYN, .win = 65535};
    syn.opt.has_ts = 1;
    syn.opt.ts_val = x.tsval - 1;   /* older TSval: not a new incarnation */
    fx_tcp_send(&x.fx, &syn, NULL, 0);
    CHECK(tfx_recv(&x) == 0 && x.out.h.flags == TCP_ACK);
    CHECK_EQ(x.fx.s->tcp.tw.used, 1);
    syn.opt.ts_val = x.tsval + 10;  /* RFC 6191: newer TSval, even with a lower ISN */
    fx_tcp_send(&x.fx, &syn, NULL, 0);
    CHECK(tfx_recv(&x) == 0);
    CHECK_EQ(x.out.h.flags, TCP_SYN | TCP_ACK);
    CHECK_EQ(x.out.h.ack, x.seq - 4);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_tw_reuse"), 1);
    CHECK(tfx_close(&x) == 0);
}

HARNESS_MAIN()
