/* TCP basics on the in-memory link with a virtual clock: the three-way
 * handshakes, data both ways, the close sequences. One forged segment in,
 * the exact segment out. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "harness.h"
#include "stackfx.h"

#define PEER_PORT 40000
#define US_PORT 7
#define PEER_ISN 1000000u

struct conn_fx {
    struct fixture fx;
    struct ust_tcp *l, *c;
    uint32_t our_isn;
    unsigned events;
};

static void on_event(struct ust_tcp *c, unsigned ev, void *arg)
{
    struct conn_fx *cf = arg;
    (void)c;
    cf->events |= ev;
}

static struct tcp_repr seg(uint8_t flags, uint32_t seq, uint32_t ack)
{
    struct tcp_repr h = {.sport = PEER_PORT, .dport = US_PORT, .seq = seq, .ack = ack, .flags = flags,
                         .win = 65535};
    return h;
}

/* LISTEN on port 7, then a full passive open with a SYN carrying options;
 * leaves cf->c accepted and ESTABLISHED. */
static void passive_open(HARNESS_ARGS, struct conn_fx *cf, int with_opts)
{
    memset(cf, 0, sizeof(*cf));
    CHECK(fx_open(&cf->fx, NULL) == 0);
    fx_learn_peer(&cf->fx);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(US_PORT)};
    cf->l = ust_tcp_listen(cf->fx.s, (struct sockaddr *)&a, sizeof(a), 16, on_event, cf);
    CHECK(cf->l);
    struct tcp_repr syn = seg(TCP_SYN, PEER_ISN, 0);
    if (with_opts) {
        syn.opt.has_mss = 1;
        syn.opt.mss = 1460;
        syn.opt.has_ws = 1;
        syn.opt.wscale = 7;
        syn.opt.sack_ok = 1;
        syn.opt.has_ts = 1;
        syn.opt.ts_val = 5000;
    }
    fx_tcp_send(&cf->fx, &syn, NULL, 0);
    struct fx_seg out;
    uint8_t buf[64];
    CHECK(fx_tcp_recv(&cf->fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_SYN | TCP_ACK);
    CHECK_EQ(out.h.ack, PEER_ISN + 1);
    CHECK_EQ(out.h.sport, US_PORT);
    CHECK(out.h.opt.has_mss);
    CHECK_EQ(out.h.opt.mss, 1460);
    CHECK_EQ(out.h.opt.has_ws, with_opts);
    CHECK_EQ(out.h.opt.sack_ok, with_opts);
    CHECK_EQ(out.h.opt.has_ts, with_opts);
    if (with_opts)
        CHECK_EQ(out.h.opt.ts_ecr, 5000);
    cf->our_isn = out.h.seq;
    struct tcp_repr ack = seg(TCP_ACK, PEER_ISN + 1, cf->our_isn + 1);
    if (with_opts) {
        ack.opt.has_ts = 1;
        ack.opt.ts_val = 5001;
        ack.opt.ts_ecr = out.h.opt.ts_val;
        ack.win = 512;   /* scaled by 7: 65536 */
    }
    fx_tcp_send(&cf->fx, &ack, NULL, 0);
    CHECK(cf->events & UST_TCP_ACCEPT);
    cf->c = ust_tcp_accept(cf->l);
    CHECK(cf->c);
    CHECK(strcmp(ust_tcp_state(cf->c), "ESTABLISHED") == 0);
    ust_tcp_set_callback(cf->c, on_event, cf);
    CHECK(ust_tcp_accept(cf->l) == NULL && errno == EAGAIN);
}

TEST(passive_open_with_options)
{
    struct conn_fx cf;
    passive_open(HARNESS_PASS, &cf, 1);
    CHECK_OK();
    ust_tcp_abort(cf.c);
    ust_tcp_close(cf.l);
    CHECK(fx_close(&cf.fx) == 0);
}

TEST(passive_open_without_options)
{
    struct conn_fx cf;
    passive_open(HARNESS_PASS, &cf, 0);
    CHECK_OK();
    ust_tcp_abort(cf.c);
    ust_tcp_close(cf.l);
    CHECK(fx_close(&cf.fx) == 0);
}

TEST(data_in_delayed_ack_then_echo_out)
{
    struct conn_fx cf;
    passive_open(HARNESS_PASS, &cf, 0);
    CHECK_OK();
    struct fixture *fx = &cf.fx;
    struct tcp_repr d = seg(TCP_ACK | TCP_PSH, PEER_ISN + 1, cf.our_isn + 1);
    fx_tcp_send(fx, &d, "hello", 5);
    CHECK(cf.events & UST_TCP_READABLE);
    struct fx_seg out;
    uint8_t buf[2048];
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) < 0);   /* ACK delayed */
    fx_advance(fx, TCP_DELACK_NS + 2000000);
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_ACK);
    CHECK_EQ(out.h.ack, PEER_ISN + 6);
    char rb[16];
    CHECK_EQ(ust_tcp_recv(cf.c, rb, sizeof(rb)), 5);
    CHECK_MEM(rb, "hello", 5);
    CHECK(ust_tcp_recv(cf.c, rb, sizeof(rb)) < 0 && errno == EAGAIN);
    CHECK_EQ(ust_tcp_send(cf.c, "world", 5), 5);
    fx_poll(fx);
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.seq, cf.our_isn + 1);
    CHECK_EQ(out.len, 5);
    CHECK_MEM(buf, "world", 5);
    CHECK(out.h.flags & TCP_PSH);
    ust_tcp_abort(cf.c);
    ust_tcp_close(cf.l);
    CHECK(fx_close(&cf.fx) == 0);
}

TEST(two_full_segments_acked_at_once)
{
    struct conn_fx cf;
    passive_open(HARNESS_PASS, &cf, 0);
    CHECK_OK();
    struct fixture *fx = &cf.fx;
    static uint8_t data[536 * 2];
    memset(data, 'x', sizeof(data));
    struct tcp_repr d = seg(TCP_ACK, PEER_ISN + 1, cf.our_isn + 1);
    fx_tcp_send(fx, &d, data, 536);
    d.seq += 536;
    fx_tcp_send(fx, &d, data, 536);
    struct fx_seg out;
    uint8_t buf[64];
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);   /* RFC 5681 4.2 */
    CHECK_EQ(out.h.ack, PEER_ISN + 1 + 1072);
    ust_tcp_abort(cf.c);
    ust_tcp_close(cf.l);
    CHECK(fx_close(&cf.fx) == 0);
}

TEST(passive_close_close_wait_last_ack)
{
    struct conn_fx cf;
    passive_open(HARNESS_PASS, &cf, 0);
    CHECK_OK();
    struct fixture *fx = &cf.fx;
    struct tcp_repr fin = seg(TCP_ACK | TCP_FIN, PEER_ISN + 1, cf.our_isn + 1);
    fx_tcp_send(fx, &fin, NULL, 0);
    struct fx_seg out;
    uint8_t buf[64];
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_ACK);
    CHECK_EQ(out.h.ack, PEER_ISN + 2);
    CHECK(strcmp(ust_tcp_state(cf.c), "CLOSE-WAIT") == 0);
    char rb[4];
    CHECK_EQ(ust_tcp_recv(cf.c, rb, sizeof(rb)), 0);   /* EOF */
    ust_tcp_close(cf.c);
    fx_poll(fx);
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_ACK | TCP_FIN);
    CHECK_EQ(out.h.seq, cf.our_isn + 1);
    struct tcp_repr ack = seg(TCP_ACK, PEER_ISN + 2, cf.our_isn + 2);
    fx_tcp_send(fx, &ack, NULL, 0);
    CHECK_EQ(fx->s->tcp.used, 1);   /* only the listener is left */
    ust_tcp_close(cf.l);
    CHECK_EQ(fx->s->tcp.used, 0);
    CHECK(fx_close(&cf.fx) == 0);
}

TEST(active_close_fin_wait_time_wait)
{
    struct conn_fx cf;
    passive_open(HARNESS_PASS, &cf, 0);
    CHECK_OK();
    struct fixture *fx = &cf.fx;
    ust_tcp_close(cf.c);
    fx_poll(fx);
    struct fx_seg out;
    uint8_t buf[64];
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_ACK | TCP_FIN);
    struct tcp_repr finack = seg(TCP_ACK | TCP_FIN, PEER_ISN + 1, cf.our_isn + 2);
    fx_tcp_send(fx, &finack, NULL, 0);
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_ACK);
    CHECK_EQ(out.h.ack, PEER_ISN + 2);
    CHECK_EQ(fx->s->tcp.tw.used, 1);
    /* RFC 1337: a RST does not end TIME-WAIT. */
    struct tcp_repr rst = seg(TCP_RST, PEER_ISN + 2, 0);
    fx_tcp_send(fx, &rst, NULL, 0);
    CHECK_EQ(fx->s->tcp.tw.used, 1);
    /* A retransmitted FIN is acknowledged again. */
    fx_tcp_send(fx, &finack, NULL, 0);
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.ack, PEER_ISN + 2);
    fx_advance(fx, 61ULL * 1000000000ULL);
    CHECK_EQ(fx->s->tcp.tw.used, 0);
    ust_tcp_close(cf.l);
    CHECK(fx_close(&cf.fx) == 0);
}

TEST(closed_port_gets_rst)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    struct tcp_repr syn = seg(TCP_SYN, 77, 0);
    fx_tcp_send(&fx, &syn, NULL, 0);
    struct fx_seg out;
    uint8_t buf[64];
    CHECK(fx_tcp_recv(&fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_RST | TCP_ACK);
    CHECK_EQ(out.h.seq, 0);
    CHECK_EQ(out.h.ack, 78);
    struct tcp_repr ack = seg(TCP_ACK, 77, 4242);
    fx_tcp_send(&fx, &ack, NULL, 0);
    CHECK(fx_tcp_recv(&fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_RST);
    CHECK_EQ(out.h.seq, 4242);
    struct tcp_repr rst = seg(TCP_RST, 77, 0);
    fx_tcp_send(&fx, &rst, NULL, 0);
    CHECK(fx_tcp_recv(&fx, &out, buf, sizeof(buf)) < 0);
    CHECK(fx_close(&fx) == 0);
}

TEST(active_open_and_data)
{
    struct conn_fx cf;
    memset(&cf, 0, sizeof(cf));
    struct fixture *fx = &cf.fx;
    CHECK(fx_open(fx, NULL) == 0);
    fx_learn_peer(fx);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    cf.c = ust_tcp_connect(fx->s, (struct sockaddr *)&dst, sizeof(dst), NULL, 0, on_event, &cf);
    CHECK(cf.c);
    fx_poll(fx);
    struct fx_seg out;
    uint8_t buf[64];
    CHECK(fx_tcp_recv(fx, &out, buf, sizeof(buf)) == 0);
    CHECK_EQ(out.h.flags, TCP_SYN);
    CHECK(out.h.opt.has_mss && out.h.opt.has_ws && out.h.opt.sack_ok && out.h.opt.has_ts);
    CHECK(out.h.sport >= 32768);
    struct tcp_repr sa = {.sport = 80, .dport = out.h.sport, .seq = 9000, .ack = out.h.seq + 1,
                          .flags = TCP_SYN | TCP_ACK, .win = 65535};
    sa.opt.has_mss = 1;
    sa.opt.mss = 1000;
    fx_tcp_send(fx, &sa, NULL, 0);
    CHECK(cf.events & UST_TCP_CONNECTED);
    struct fx_seg ack;
    CHECK(fx_tcp_recv(fx, &ack, buf, sizeof(buf)) == 0);
    CHECK_EQ(ack.h.flags, TCP_ACK);
    CHECK_EQ(ack.h.ack, 9001);
    CHECK(!ack.h.opt.has_ts);   /* the peer did not agree to timestamps */
    static uint8_t big[3000];
    CHECK_EQ(ust_tcp_send(cf.c, big, sizeof(big)), 3000);
    fx_poll(fx);
    int segs = 0;
    size_t total = 0;
    while (fx_tcp_recv(fx, &ack, big, sizeof(big)) == 0) {
        CHECK(ack.len <= 1000);
        total += ack.len;
        segs++;
    }
    CHECK_EQ(total, 3000);
    CHECK_EQ(segs, 3);
    ust_tcp_abort(cf.c);
    CHECK(fx_close(fx) == 0);
}

HARNESS_MAIN()
