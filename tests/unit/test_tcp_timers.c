/* Timers and sender/receiver policies on the virtual clock: delayed ACK,
 * Nagle, the persist timer, keepalive, path MTU discovery. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "tcpfx.h"
#include "wire/eth.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"

#define MSS 1000
#define NEAR(a, b, tol) ((a) + (tol) >= (b) && (a) <= (b) + (tol))

static int open_conn(struct tfx *x, unsigned opts)
{
    if (tfx_open(x, NULL) < 0 || tfx_passive(x, TFX_MSS | opts, MSS, 0) < 0)
        return -1;
    return 0;
}

TEST(delayed_ack_timing_and_every_second_segment)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    tfx_send(&x, TCP_ACK, NULL, 10);
    uint64_t w = tfx_wait_seg(&x, 500 * TFX_MS);
    CHECK(w <= TCP_DELACK_MAX_NS);   /* RFC 9293 3.8.6.3 / RFC 5681 4.2 */
    CHECK(NEAR(w, TCP_DELACK_NS, 3 * TFX_MS));
    CHECK(x.out.h.flags == TCP_ACK && x.out.h.ack == x.seq);
    /* Full-sized segments: the second one is ACKed at once. */
    tfx_send(&x, TCP_ACK, NULL, MSS);
    CHECK(tfx_quiet(&x));
    tfx_send(&x, TCP_ACK, NULL, MSS);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    /* Out of order: at once. */
    struct tcp_repr h = tfx_hdr(&x, TCP_ACK);
    h.seq += 5000;
    tfx_send_hdr(&x, &h, NULL, 10);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 0) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(data_piggybacks_the_ack)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    tfx_send(&x, TCP_ACK, NULL, 10);
    CHECK_EQ(tfx_app_send(&x, 5), 5);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, x.seq, 5) == 0);
    tfx_advance(&x, 300 * TFX_MS);
    CHECK(tfx_quiet(&x));   /* the ACK went with the data */
    CHECK(tfx_close(&x) == 0);
}

TEST(nagle_holds_small_segments_until_acked)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 10), 10);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, x.seq, 10) == 0);
    CHECK_EQ(tfx_app_send(&x, 10), 10);
    CHECK_EQ(tfx_app_send(&x, 10), 10);
    CHECK(tfx_quiet(&x));
    tfx_ack(&x, x.iss + 11);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 11, x.seq, 20) == 0);   /* coalesced */
    /* With NODELAY each write goes at once. */
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_NODELAY, 1) == 0);
    CHECK_EQ(tfx_app_send(&x, 10), 10);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 31, x.seq, 10) == 0);
    CHECK_EQ(tfx_app_send(&x, 10), 10);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 41, x.seq, 10) == 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(persist_probes_back_off_and_window_reopens)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    x.win = 0;
    CHECK(tfx_passive(&x, TFX_MSS, MSS, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 100), 100);
    CHECK(tfx_quiet(&x));
    /* RFC 9293 3.8.6.1: one-octet probes, intervals backing off. */
    uint64_t prev = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t w = tfx_wait_seg(&x, 100000 * TFX_MS);
        CHECK(w != UINT64_MAX);
        CHECK_EQ(x.out.h.seq, x.iss + 1);
        CHECK_EQ(x.out.len, 1);
        if (prev)
            CHECK(NEAR(w, 2 * prev, 3 * TFX_MS));
        prev = w;
        tfx_ack(&x, x.iss + 1);   /* still shut */
        CHECK(tfx_quiet(&x));
    }
    CHECK_EQ(fx_ctr(&x.fx, "tcp_zero_window_probes"), 4);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_timeouts"), 0);
    CHECK(strcmp(ust_tcp_state(x.c), "ESTABLISHED") == 0);
    /* The window opens: the probe octet (dropped by the shut window) is
     * resent at once, then the rest (Nagle waits for that ACK). */
    x.win = 65535;
    tfx_ack(&x, x.iss + 1);
    CHECK(tfx_expect(&x, TCP_ACK, x.iss + 1, x.seq, 1) == 0);
    CHECK(tfx_quiet(&x));
    tfx_ack(&x, x.iss + 2);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 2, x.seq, 99) == 0);
    tfx_ack(&x, x.iss + 101);
    tfx_advance(&x, 5000 * TFX_MS);
    CHECK(tfx_quiet(&x));
    CHECK(tfx_close(&x) == 0);
}

TEST(keepalive_probes_then_drop_after_keepcnt)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_KEEPIDLE, 10) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_KEEPINTVL, 2) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_KEEPCNT, 3) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_KEEPALIVE, 1) == 0);
    /* Answered probes keep the connection. */
    for (int i = 0; i < 5; i++) {
        uint64_t w = tfx_wait_seg(&x, 20000 * TFX_MS);
        CHECK(NEAR(w, 10000 * TFX_MS, 3 * TFX_MS));
        CHECK(x.out.h.flags == TCP_ACK && x.out.h.seq == x.iss && x.out.len == 0);   /* SND.NXT - 1 */
        tfx_ack(&x, x.iss + 1);
    }
    CHECK(strcmp(ust_tcp_state(x.c), "ESTABLISHED") == 0);
    /* Unanswered: keepcnt probes keepintvl apart, then ETIMEDOUT. */
    uint64_t w1 = tfx_wait_seg(&x, 20000 * TFX_MS);
    uint64_t w2 = tfx_wait_seg(&x, 20000 * TFX_MS);
    uint64_t w3 = tfx_wait_seg(&x, 20000 * TFX_MS);
    CHECK(NEAR(w1, 10000 * TFX_MS, 3 * TFX_MS));
    CHECK(NEAR(w2, 2000 * TFX_MS, 3 * TFX_MS));
    CHECK(NEAR(w3, 2000 * TFX_MS, 3 * TFX_MS));
    tfx_advance(&x, 2100 * TFX_MS);
    CHECK(strcmp(ust_tcp_state(x.c), "CLOSED") == 0);
    CHECK_EQ(ust_tcp_error(x.c), ETIMEDOUT);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_keepalive_probes"), 8);
    CHECK(tfx_close(&x) == 0);
}

/* ICMP fragmentation needed from a router, quoting our segment with seq. */
static void send_frag_needed(struct tfx *x, uint32_t seq, uint16_t mtu)
{
    uint8_t f[256];
    uint8_t inner[28];
    struct ipv4_repr ip = {.hdr_len = 20, .total_len = 1500, .id = 9, .ttl = 64, .proto = IPPROTO_TCP_,
                           .src = FX_US_IP, .dst = FX_PEER_IP};
    ipv4_emit(&ip, inner, 20);
    wr16(inner + 20, x->lport);
    wr16(inner + 22, x->rport);
    wr32(inner + 24, seq);
    struct icmp_repr r = {.type = ICMP_DEST_UNREACH, .code = ICMP_FRAG_NEEDED, .mtu = mtu, .payload = inner,
                          .payload_len = sizeof(inner)};
    uint8_t *p = f + ETH_HDR_LEN + 20;
    int n = icmp_emit(&r, p, 8 + sizeof(inner));
    fx_send(&x->fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 3, 0, 0, (size_t)n));
}

TEST(pmtu_frag_needed_lowers_mss_and_resends)
{
    struct tfx x;
    CHECK(tfx_open(&x, NULL) == 0);
    CHECK(tfx_passive(&x, TFX_MSS, 1460, 0) == 0);
    CHECK(ust_tcp_setopt(x.c, UST_TCP_OPT_NODELAY, 1) == 0);
    CHECK_EQ(tfx_app_send(&x, 2920), 2920);
    fx_drain(&x.fx);
    /* Outside the flight: ignored (RFC 5927 4.1). */
    send_frag_needed(&x, x.iss + 100000, 1000);
    CHECK_EQ(tfx_tcb(&x)->mss, 1460);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_icmp_ignored"), 1);
    CHECK(tfx_quiet(&x));
    send_frag_needed(&x, x.iss + 1, 1000);
    CHECK_EQ(tfx_tcb(&x)->mss, 960);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_pmtu_updates"), 1);
    uint32_t seqs[8], lens[8];
    int n = tfx_collect(&x, seqs, lens, 8);
    CHECK(n >= 2);
    CHECK_EQ(seqs[0], x.iss + 1);
    for (int i = 0; i < n; i++)
        CHECK(lens[i] <= 960);
    /* A silly MTU stops at the floor. */
    send_frag_needed(&x, x.iss + 1, 100);
    CHECK_EQ(tfx_tcb(&x)->mss, TCP_MSS_MIN);
    CHECK(tfx_close(&x) == 0);
}

HARNESS_MAIN()
