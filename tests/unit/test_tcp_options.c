/* TCP options, scripted: MSS clamping, window scaling, timestamps with
 * PAWS, SACK and D-SACK blocks, the urgent pointer. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "tcpfx.h"

TEST(mss_clamped_to_route_mtu)
{
    struct tfx x;
    const char *args[] = {"--mtu", "1400", NULL};
    CHECK(tfx_open(&x, args) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK_EQ(tfx_tcb(&x)->mss, 1360);
    CHECK_EQ(tfx_app_send(&x, 3000), 3000);
    uint32_t seqs[8], lens[8];
    CHECK_EQ(tfx_collect(&x, seqs, lens, 8), 2);
    CHECK_EQ(lens[0], 1360);
    CHECK_EQ(lens[1], 1360);
    tfx_ack(&x, x.iss + 1 + 2720);   /* Nagle held the small tail until now */
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 2721, x.seq, 280) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(syn_ack_announces_route_mss)
{
    struct tfx x;
    const char *args[] = {"--mtu", "1400", NULL};
    CHECK(tfx_open(&x, args) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TFX_US_PORT)};
    x.l = ust_tcp_listen(x.fx.s, (struct sockaddr *)&a, sizeof(a), 4, NULL, NULL);
    struct tcp_repr syn = {.sport = 5555, .dport = TFX_US_PORT, .seq = 1, .flags = TCP_SYN, .win = 1000};
    fx_tcp_send(&x.fx, &syn, NULL, 0);
    CHECK(tfx_recv(&x) == 0);
    CHECK(x.out.h.opt.has_mss);
    CHECK_EQ(x.out.h.opt.mss, 1360);
    CHECK(!x.out.h.opt.has_ws && !x.out.h.opt.sack_ok && !x.out.h.opt.has_ts);
    CHECK(tfx_close(&x) == 0);
}

TEST(mss_clamped_to_peer_mss_and_timestamps)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS | TFX_TS, 1000, 0) == 0);
    CHECK_EQ(tfx_tcb(&x)->mss, 988);   /* RFC 6691: options come out of the MSS */
    CHECK_EQ(tfx_app_send(&x, 2000), 2000);
    uint32_t seqs[8], lens[8];
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_NODELAY, 1) == 0);
    CHECK_EQ(tfx_collect(&x, seqs, lens, 8), 3);
    CHECK_EQ(lens[0], 988);
    CHECK_EQ(lens[1], 988);
    CHECK_EQ(lens[2], 24);
    CHECK(tfx_close(&x) == 0);
}

TEST(no_mss_option_means_536)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, 0, 0, 0) == 0);
    CHECK_EQ(tfx_tcb(&x)->mss, 536);   /* RFC 9293 3.7.1 */
    CHECK(tfx_close(&x) == 0);
}

TEST(tcp_maxseg_clamps)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_MAXSEG, 500) == 0);
    int v = 0;
    CHECK(ust_tcp_getopt(x.c, UST_TCP_OPT_MAXSEG, &v) == 0);
    CHECK_EQ(v, 500);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_NODELAY, 1) == 0);
    CHECK_EQ(tfx_app_send(&x, 1200), 1200);
    uint32_t seqs[8], lens[8];
    CHECK_EQ(tfx_collect(&x, seqs, lens, 8), 3);
    CHECK_EQ(lens[0], 500);
    CHECK_EQ(lens[1], 500);
    CHECK_EQ(lens[2], 200);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_MAXSEG, 10) < 0 && errno == EINVAL);
    CHECK(tfx_close(&x) == 0);
}

TEST(window_scaling_both_ways)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    x.win = 512;   /* the ACK of the handshake: 512 << 7 */
    CHECK(tfx_passive(&x, TFX_MSS | TFX_WS, 1460, 7) == 0);
    struct tcb *t = tfx_tcb(&x);
    CHECK_EQ(t->snd_wscale, 7);
    CHECK_EQ(t->rcv_wscale, TCP_RCV_WSCALE);
    CHECK_EQ(t->snd_wnd, 512u << 7);
    /* Our window field is scaled by our shift. */
    tfx_send(&x, TCP_ACK, NULL, 100);
    tfx_advance(&x, TCP_DELACK_MAX_NS);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_EQ(x.out.h.win, (t->rcvbuf - 100) >> TCP_RCV_WSCALE);
    /* A scaled peer window of 1 (128 bytes): below half the largest window
     * offered, so sender SWS avoidance waits (RFC 9293 3.8.6.2.1). */
    x.win = 1;
    tfx_ack(&x, x.iss + 1);
    CHECK_EQ(t->snd_wnd, 128);
    CHECK_EQ(tfx_app_send(&x, 1000), 1000);
    CHECK(tfx_quiet(&x));
    /* 300 << 7 bytes: the whole 1000 goes. */
    x.win = 300;
    tfx_ack(&x, x.iss + 1);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, x.seq, 1000) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(syn_windows_never_scaled)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TFX_US_PORT)};
    x.l = ust_tcp_listen(x.fx.s, (struct sockaddr *)&a, sizeof(a), 4, NULL, NULL);
    struct tcp_repr syn = {.sport = 5555, .dport = TFX_US_PORT, .seq = 1, .flags = TCP_SYN, .win = 1000};
    syn.opt.has_ws = 1;
    syn.opt.wscale = 7;
    fx_tcp_send(&x.fx, &syn, NULL, 0);
    CHECK(tfx_recv(&x) == 0);
    CHECK_EQ(x.out.h.opt.has_ws, 1);
    CHECK_EQ(x.out.h.opt.wscale, TCP_RCV_WSCALE);
    CHECK_EQ(x.out.h.win, 65535);   /* RFC 7323 2.2: the SYN,ACK window is not scaled */
    struct tcp_tuple tu = {.laddr = addr_from_v4(FX_US_IP), .raddr = addr_from_v4(FX_PEER_IP), .lport = TFX_US_PORT,
                           .rport = 5555};
    struct tcb *child = tcb_lookup(x.fx.s, &tu);
    CHECK(child);
    CHECK_EQ(child->snd_wnd, 1000);   /* the SYN's window is taken as is */
    /* Active side: the SYN,ACK window is unscaled too. */
    struct tfx y;
    CHECK(tfx_open(&y, NULL) == 0);
    CHECK(tfx_active(&y, TFX_MSS | TFX_WS, 1460, 9) == 0);
    CHECK_EQ(tfx_tcb(&y)->snd_wnd, 65535);
    CHECK_EQ(tfx_tcb(&y)->snd_wscale, 9);
    CHECK(tfx_close(&y) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(wscale_above_14_is_clamped)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS | TFX_WS, 1460, 20) == 0);
    CHECK_EQ(tfx_tcb(&x)->snd_wscale, 14);   /* RFC 7323 2.3 */
    CHECK(tfx_close(&x) == 0);
}

TEST(timestamps_echo_and_paws)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_ALL, 1460, 7) == 0);
    x.tsval = 6000;
    tfx_send(&x, TCP_ACK, NULL, 10);
    tfx_advance(&x, TCP_DELACK_MAX_NS);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK(x.out.h.opt.has_ts);
    CHECK_EQ(x.out.h.opt.ts_ecr, 6000);
    /* An old TSval: PAWS drops the data and ACKs at once (RFC 7323 5.3). */
    x.tsval = 5500;
    tfx_send(&x, TCP_ACK, NULL, 10);
    x.seq -= 10;
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_EQ(x.out.h.opt.ts_ecr, 6000);
    CHECK_EQ(ust_tcp_readable(x.c), 10);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_drop_paws"), 1);
    /* A current TSval is accepted again. */
    x.tsval = 6001;
    tfx_send(&x, TCP_ACK, NULL, 10);
    CHECK_EQ(ust_tcp_readable(x.c), 20);
    /* RFC 7323 5.3: a RST is not subject to PAWS (an old TSval still resets). */
    x.tsval = 1;
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK(strcmp(ust_tcp_state(x.c), "CLOSED") == 0);
    CHECK(tfx_close(&x) == 0);
}

static int sack_is(struct tfx *x, int i, uint32_t l, uint32_t r)
{
    return x->out.h.opt.sack_count > i && x->out.h.opt.sack[i].left == l && x->out.h.opt.sack[i].right == r;
}

TEST(sack_blocks_rfc2018_order_and_dsack)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS | TFX_SACK, 1460, 0) == 0);
    uint32_t base = x.seq;
    struct tcp_repr h = tfx_hdr(&x, TCP_ACK);
    h.seq = base + 1000;
    tfx_send_hdr(&x, &h, NULL, 100);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, base, 0) == 0);   /* immediately: out of order */
    CHECK_EQ(x.out.h.opt.sack_count, 1);
    CHECK(sack_is(&x, 0, base + 1000, base + 1100));
    h.seq = base + 2000;
    tfx_send_hdr(&x, &h, NULL, 100);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, base, 0) == 0);
    CHECK_EQ(x.out.h.opt.sack_count, 2);
    CHECK(sack_is(&x, 0, base + 2000, base + 2100));   /* the newest first */
    CHECK(sack_is(&x, 1, base + 1000, base + 1100));
    h.seq = base + 1100;
    tfx_send_hdr(&x, &h, NULL, 100);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, base, 0) == 0);
    CHECK_EQ(x.out.h.opt.sack_count, 2);
    CHECK(sack_is(&x, 0, base + 1000, base + 1200));
    CHECK(sack_is(&x, 1, base + 2000, base + 2100));
    /* A duplicate of queued out-of-order data: D-SACK first (RFC 2883). */
    h.seq = base + 1000;
    tfx_send_hdr(&x, &h, NULL, 100);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, base, 0) == 0);
    CHECK(sack_is(&x, 0, base + 1000, base + 1100));
    CHECK(sack_is(&x, 1, base + 1000, base + 1200));
    /* Fill the hole: the ACK jumps, the remaining block stays. */
    h.seq = base;
    tfx_send_hdr(&x, &h, NULL, 1000);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, base + 1200, 0) == 0);
    CHECK_EQ(x.out.h.opt.sack_count, 1);
    CHECK(sack_is(&x, 0, base + 2000, base + 2100));
    /* A duplicate entirely below rcv_nxt: D-SACK of it, then the block. */
    h.seq = base + 100;
    tfx_send_hdr(&x, &h, NULL, 200);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, base + 1200, 0) == 0);
    CHECK_EQ(x.out.h.opt.sack_count, 2);
    CHECK(sack_is(&x, 0, base + 100, base + 300));
    CHECK(sack_is(&x, 1, base + 2000, base + 2100));
    /* Partly old: the old part is reported. */
    h.seq = base + 1150;
    tfx_send_hdr(&x, &h, NULL, 100);
    CHECK(tfx_recv(&x) == 0);
    CHECK(sack_is(&x, 0, base + 1150, base + 1200));
    /* The D-SACK is sent once. */
    tfx_advance(&x, TCP_DELACK_MAX_NS);
    fx_drain(&x.fx);
    h.seq = base + 5000;
    tfx_send_hdr(&x, &h, NULL, 10);
    CHECK(tfx_recv(&x) == 0);
    CHECK(sack_is(&x, 0, base + 5000, base + 5010));
    CHECK(x.out.h.opt.sack_count == 2 && sack_is(&x, 1, base + 2000, base + 2100));
    CHECK(tfx_close(&x) == 0);
}

TEST(no_sack_blocks_without_negotiation)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    struct tcp_repr h = tfx_hdr(&x, TCP_ACK);
    h.seq = x.seq + 1000;
    tfx_send_hdr(&x, &h, NULL, 100);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_EQ(x.out.h.opt.sack_count, 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(urgent_pointer_tracked)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    struct tcp_repr h = tfx_hdr(&x, TCP_ACK | TCP_URG);
    h.urg = 3;
    tfx_send_hdr(&x, &h, "abcdef", 6);
    CHECK_EQ(tfx_tcb(&x)->rcv_up, x.seq + 3);
    char rb[8];
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 6);   /* inline (RFC 6093) */
    CHECK_MEM(rb, "abcdef", 6);
    CHECK(tfx_close(&x) == 0);
}

/* A peer whose buffer is smaller than one MSS is still sent to in
 * window-sized segments. */
TEST(tiny_peer_window_gets_window_sized_segments)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    x.win = 500;
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 1200), 1200);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 500) == 0);
    CHECK(tfx_quiet(&x));
    tfx_ack(&x, x.iss + 501);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 501, x.seq, 500) == 0);
    tfx_ack(&x, x.iss + 1001);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1001, x.seq, 200) == 0);
    CHECK(tfx_close(&x) == 0);
}

HARNESS_MAIN()
