/* RFC 9293 state machine, scripted: every state entered and left as 3.10
 * says, and the RFC 5961 answers to RSTs, SYNs and ACKs that do not fit. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"
#include "tcpfx.h"

#define STATE(x) ust_tcp_state((x)->c)
#define CHECK_STATE(x, name) CHECK(strcmp(STATE(x), name) == 0)

TEST(simultaneous_open)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    x.c = ust_tcp_connect(x.fx.s, (struct sockaddr *)&dst, sizeof(dst), NULL, 0, NULL, NULL);
    CHECK(x.c);
    CHECK_STATE(&x, "SYN-SENT");
    fx_poll(&x.fx);
    CHECK(tfx_recv(&x) == 0 && x.out.h.flags == TCP_SYN);
    x.iss = x.out.h.seq;
    x.lport = x.out.h.sport;
    x.rport = 80;
    x.seq = TFX_PEER_ISN;
    /* Their SYN crosses ours: SYN-SENT -> SYN-RECEIVED, SYN,ACK on our ISS. */
    tfx_send(&x, TCP_SYN, NULL, 0);
    CHECK_STATE(&x, "SYN-RECEIVED");
    CHECK(tfx_expect(&x, TCP_SYN | TCP_ACK, x.iss, TFX_PEER_ISN + 1, 0) == 0);
    /* Their SYN,ACK (acking our SYN) completes it. */
    x.ack = x.iss + 1;
    x.seq = TFX_PEER_ISN;
    tfx_send(&x, TCP_SYN | TCP_ACK, NULL, 0);
    CHECK_STATE(&x, "ESTABLISHED");
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, TFX_PEER_ISN + 1, 0) == 0);  /* the SYN is old: ACK it */
    CHECK(tfx_app_send(&x, 10) == 10);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, TFX_PEER_ISN + 1, 10) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(simultaneous_open_with_ack_only)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    x.c = ust_tcp_connect(x.fx.s, (struct sockaddr *)&dst, sizeof(dst), NULL, 0, NULL, NULL);
    fx_poll(&x.fx);
    CHECK(tfx_recv(&x) == 0);
    x.iss = x.out.h.seq;
    x.lport = x.out.h.sport;
    x.rport = 80;
    x.seq = TFX_PEER_ISN;
    tfx_send(&x, TCP_SYN, NULL, 0);
    CHECK(tfx_expect(&x, TCP_SYN | TCP_ACK, x.iss, TFX_PEER_ISN + 1, 0) == 0);
    tfx_ack(&x, x.iss + 1);
    CHECK_STATE(&x, "ESTABLISHED");
    CHECK(tfx_quiet(&x));
    CHECK(tfx_close(&x) == 0);
}

TEST(simultaneous_close_closing_time_wait)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK(ust_tcp_shutdown(x.c, SHUT_WR) == 0);
    CHECK_STATE(&x, "FIN-WAIT-1");
    CHECK(tfx_expect(&x, TCP_ACK | TCP_FIN, x.iss + 1, x.seq, 0) == 0);
    /* Their FIN crosses ours (it does not acknowledge ours). */
    tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);
    CHECK_STATE(&x, "CLOSING");
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 2, x.seq, 0) == 0);
    tfx_ack(&x, x.iss + 2);
    CHECK_STATE(&x, "CLOSED");   /* the handle sees CLOSED; the tuple is in TIME-WAIT */
    CHECK_EQ(x.fx.s->tcp.tw.used, 1);
    CHECK(x.events & UST_TCP_CLOSED);
    CHECK(tfx_quiet(&x));
    CHECK(tfx_close(&x) == 0);
}

TEST(half_close_data_in_fin_wait_2)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK(ust_tcp_shutdown(x.c, SHUT_WR) == 0);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_FIN, x.iss + 1, x.seq, 0) == 0);
    CHECK(ust_tcp_send(x.c, "x", 1) < 0 && errno == EPIPE);
    tfx_ack(&x, x.iss + 2);
    CHECK_STATE(&x, "FIN-WAIT-2");
    CHECK(tfx_quiet(&x));
    /* The other direction still flows. */
    tfx_send(&x, TCP_ACK | TCP_PSH, "abc", 3);
    char rb[8];
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 3);
    CHECK_MEM(rb, "abc", 3);
    tfx_advance(&x, TCP_DELACK_MAX_NS);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 2, x.seq, 0) == 0);
    tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 2, x.seq, 0) == 0);
    CHECK_EQ(x.fx.s->tcp.tw.used, 1);
    CHECK_EQ(ust_tcp_recv(x.c, rb, sizeof(rb)), 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(close_wait_last_ack_closed)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK(strcmp(ust_tcp_state(x.l), "LISTEN") == 0);
    tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);
    CHECK_STATE(&x, "CLOSE-WAIT");
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 5), 5);   /* CLOSE-WAIT may still send */
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, x.seq, 5) == 0);
    CHECK(ust_tcp_shutdown(x.c, SHUT_WR) == 0);
    CHECK_STATE(&x, "LAST-ACK");
    CHECK(tfx_expect(&x, TCP_ACK | TCP_FIN, x.iss + 6, x.seq, 0) == 0);
    tfx_ack(&x, x.iss + 6);               /* data acked, FIN not yet */
    CHECK_STATE(&x, "LAST-ACK");
    tfx_ack(&x, x.iss + 7);
    CHECK_STATE(&x, "CLOSED");
    CHECK_EQ(x.fx.s->tcp.tw.used, 0);     /* the passive closer skips TIME-WAIT */
    CHECK(tfx_close(&x) == 0);
}

/* ---- RST processing (RFC 9293 3.10.7.4 second, RFC 5961 3.2) ---- */

TEST(rst_exact_seq_resets)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK_STATE(&x, "CLOSED");
    CHECK(x.events & UST_TCP_ERROR);
    CHECK_EQ(ust_tcp_error(x.c), ECONNRESET);
    char rb[4];
    CHECK(ust_tcp_recv(x.c, rb, 4) < 0 && errno == ECONNRESET);
    CHECK(tfx_quiet(&x));
    CHECK(tfx_close(&x) == 0);
}

TEST(rst_in_window_draws_challenge_ack)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    struct tcp_repr h = tfx_hdr(&x, TCP_RST);
    h.seq = x.seq + 100;
    tfx_send_hdr(&x, &h, NULL, 0);
    CHECK_STATE(&x, "ESTABLISHED");
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_challenge_ack"), 1);
    /* Out of the window: silently dropped. */
    h.seq = x.seq + 10000000;
    tfx_send_hdr(&x, &h, NULL, 0);
    CHECK_STATE(&x, "ESTABLISHED");
    CHECK(tfx_quiet(&x));
    h.seq = x.seq - 1;
    tfx_send_hdr(&x, &h, NULL, 0);
    CHECK(tfx_quiet(&x));
    CHECK_STATE(&x, "ESTABLISHED");
    CHECK(tfx_close(&x) == 0);
}

TEST(syn_in_established_draws_challenge_ack)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    struct tcp_repr h = tfx_hdr(&x, TCP_SYN);
    h.seq = x.seq + 5;   /* in window */
    tfx_send_hdr(&x, &h, NULL, 0);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    h.seq = x.seq - 1000;  /* old SYN: not acceptable, plain ACK */
    tfx_send_hdr(&x, &h, NULL, 0);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_STATE(&x, "ESTABLISHED");
    CHECK(fx_ctr(&x.fx, "tcp_challenge_ack") >= 1);
    CHECK(tfx_close(&x) == 0);
}

TEST(ack_above_snd_nxt_draws_challenge_ack)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 100), 100);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, x.seq, 100) == 0);
    /* RFC 5961 5.2: ACK of data never sent: challenge ACK, data ignored. */
    x.ack = x.iss + 1 + 5000;
    tfx_send(&x, TCP_ACK, "zz", 2);
    x.seq -= 2;
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 101, x.seq, 0) == 0);
    CHECK_EQ(tfx_tcb(&x)->snd_una, x.iss + 1);
    CHECK_EQ(ust_tcp_readable(x.c), 0);
    /* Too old (below snd_una - max_snd_wnd): also challenged. */
    x.ack = x.iss + 1 - 200000;
    tfx_send(&x, TCP_ACK, NULL, 0);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 101, x.seq, 0) == 0);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_challenge_ack"), 2);
    CHECK(tfx_close(&x) == 0);
}

/* RST with the exact sequence number in each synchronized state. */
static void rst_in_state(HARNESS_ARGS, const char *state, int err)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    if (!strcmp(state, "FIN-WAIT-1") || !strcmp(state, "FIN-WAIT-2") || !strcmp(state, "CLOSING")) {
        ust_tcp_shutdown(x.c, SHUT_WR);
        CHECK(tfx_recv(&x) == 0);
        if (!strcmp(state, "FIN-WAIT-2"))
            tfx_ack(&x, x.iss + 2);
        if (!strcmp(state, "CLOSING")) {
            tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);
            CHECK(tfx_recv(&x) == 0);
        }
    } else {
        tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);
        CHECK(tfx_recv(&x) == 0);
        if (!strcmp(state, "LAST-ACK")) {
            ust_tcp_shutdown(x.c, SHUT_WR);
            CHECK(tfx_recv(&x) == 0);
        }
    }
    CHECK_STATE(&x, state);
    struct tcp_repr h = tfx_hdr(&x, TCP_RST);
    h.seq = x.seq + 1;   /* in window, not exact: challenge */
    tfx_send_hdr(&x, &h, NULL, 0);
    CHECK_STATE(&x, state);
    CHECK(tfx_recv(&x) == 0 && x.out.h.flags == TCP_ACK && x.out.h.ack == x.seq);
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK_STATE(&x, "CLOSED");
    CHECK_EQ(ust_tcp_error(x.c), err);
    CHECK(tfx_quiet(&x));
    CHECK(tfx_close(&x) == 0);
}

TEST(rst_in_fin_wait_1) { rst_in_state(harness_failed, "FIN-WAIT-1", ECONNRESET); }
TEST(rst_in_fin_wait_2) { rst_in_state(harness_failed, "FIN-WAIT-2", ECONNRESET); }
TEST(rst_in_closing) { rst_in_state(harness_failed, "CLOSING", EPIPE); }
TEST(rst_in_close_wait) { rst_in_state(harness_failed, "CLOSE-WAIT", EPIPE); }
TEST(rst_in_last_ack) { rst_in_state(harness_failed, "LAST-ACK", EPIPE); }

TEST(rst_and_stray_ack_in_listen)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TFX_US_PORT)};
    x.l = ust_tcp_listen(x.fx.s, (struct sockaddr *)&a, sizeof(a), 4, NULL, NULL);
    x.lport = TFX_US_PORT;
    x.rport = TFX_PEER_PORT;
    x.seq = 10;
    tfx_send(&x, TCP_RST, NULL, 0);      /* RFC 9293 3.10.7.2 first: ignored */
    CHECK(tfx_quiet(&x));
    x.ack = 4444;
    tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);   /* second: <SEQ=SEG.ACK><CTL=RST> */
    CHECK(tfx_expect(&x, TCP_RST, 4444, 0, 0) == 0);
    CHECK(strcmp(ust_tcp_state(x.l), "LISTEN") == 0);
    CHECK_EQ(x.fx.s->tcp.used, 1);
    CHECK(tfx_close(&x) == 0);
}

TEST(rst_in_syn_sent)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    x.c = ust_tcp_connect(x.fx.s, (struct sockaddr *)&dst, sizeof(dst), NULL, 0, NULL, NULL);
    fx_poll(&x.fx);
    CHECK(tfx_recv(&x) == 0);
    x.iss = x.out.h.seq;
    x.lport = x.out.h.sport;
    x.rport = 80;
    x.seq = 777;
    /* RFC 9293 3.10.7.3: a RST without an acceptable ACK is dropped. */
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK_STATE(&x, "SYN-SENT");
    x.ack = x.iss + 5;   /* unacceptable ACK on a RST: dropped, no reply */
    tfx_send(&x, TCP_RST | TCP_ACK, NULL, 0);
    CHECK_STATE(&x, "SYN-SENT");
    CHECK(tfx_quiet(&x));
    /* Unacceptable ACK without RST: <SEQ=SEG.ACK><CTL=RST>. */
    tfx_send(&x, TCP_ACK, NULL, 0);
    CHECK(tfx_expect(&x, TCP_RST, x.iss + 5, 0, 0) == 0);
    CHECK_STATE(&x, "SYN-SENT");
    x.ack = x.iss + 1;
    tfx_send(&x, TCP_RST | TCP_ACK, NULL, 0);
    CHECK_STATE(&x, "CLOSED");
    CHECK_EQ(ust_tcp_error(x.c), ECONNREFUSED);
    CHECK(tfx_close(&x) == 0);
}

TEST(syn_received_unacceptable_ack_gets_rst_then_rst_returns_to_listen)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TFX_US_PORT)};
    x.l = ust_tcp_listen(x.fx.s, (struct sockaddr *)&a, sizeof(a), 4, NULL, NULL);
    x.lport = TFX_US_PORT;
    x.rport = TFX_PEER_PORT;
    x.seq = TFX_PEER_ISN;
    tfx_send(&x, TCP_SYN, NULL, 0);
    CHECK(tfx_recv(&x) == 0 && x.out.h.flags == (TCP_SYN | TCP_ACK));
    x.iss = x.out.h.seq;
    struct tcb *l = (struct tcb *)(void *)x.l;
    CHECK_EQ(l->syn_pending, 1);
    /* RFC 9293 3.10.7.4 fifth, SYN-RECEIVED: an unacceptable ACK draws <SEQ=SEG.ACK><CTL=RST>. */
    x.ack = x.iss + 77;
    tfx_send(&x, TCP_ACK, NULL, 0);
    CHECK(tfx_expect(&x, TCP_RST, x.iss + 77, 0, 0) == 0);
    CHECK_EQ(l->syn_pending, 1);
    /* A RST at rcv_nxt removes the half-open child; the listener stays. */
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK_EQ(l->syn_pending, 0);
    CHECK_EQ(x.fx.s->tcp.used, 1);
    CHECK(tfx_quiet(&x));
    CHECK(strcmp(ust_tcp_state(x.l), "LISTEN") == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(rst_to_closed_port_and_ack_to_closed_port)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    x.lport = 9999;
    x.rport = 1234;
    x.seq = 50;
    tfx_send(&x, TCP_SYN, "ab", 2);   /* SYN with data: ack covers SYN + data */
    CHECK(tfx_expect(&x, TCP_RST | TCP_ACK, 0, 53, 0) == 0);
    x.ack = 999;
    tfx_send(&x, TCP_ACK | TCP_FIN, NULL, 0);
    CHECK(tfx_expect(&x, TCP_RST, 999, 0, 0) == 0);
    tfx_send(&x, TCP_RST, NULL, 0);
    CHECK(tfx_quiet(&x));
    CHECK_EQ(fx_ctr(&x.fx, "tcp_drop_noport"), 3);
    CHECK(tfx_close(&x) == 0);
}

TEST(abort_and_linger0_send_rst)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_LINGER0, 1) == 0);
    ust_tcp_close(x.c);
    x.c = NULL;
    fx_poll(&x.fx);
    CHECK(tfx_expect(&x, TCP_RST | TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK_EQ(x.fx.s->tcp.used, 1);
    CHECK_EQ(x.fx.s->tcp.tw.used, 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(close_with_unread_data_sends_rst)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    tfx_send(&x, TCP_ACK, "unread", 6);
    ust_tcp_close(x.c);
    x.c = NULL;
    fx_poll(&x.fx);
    CHECK(tfx_expect(&x, TCP_RST | TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK(tfx_close(&x) == 0);
}

HARNESS_MAIN()
