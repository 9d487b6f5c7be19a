/* Reliability, scripted on the virtual clock: RTO and its backoff, Karn,
 * giving up; fast retransmit (NewReno) with limited transmit; SACK
 * recovery; RACK reordering tolerance; TLP; F-RTO; initial window. */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "tcpfx.h"

#define MSS 1000
#define NEAR(a, b, tol) ((a) + (tol) >= (b) && (a) <= (b) + (tol))

/* Established with MSS 1000 and the given options; the first data byte is iss+1. */
static int open_conn(struct tfx *x, unsigned opts)
{
    if (tfx_open(x, NULL) < 0 || tfx_passive(x, TFX_MSS | opts, MSS, 0) < 0)
        return -1;
    return ust_tcp_setopt(x->c, UST_TCP_OPT_NODELAY, 1);
}

/* Give the connection an RTT sample of rtt_ms: one segment, acked later. */
static int warm_rtt(struct tfx *x, uint32_t rtt_ms)
{
    struct tcb *t = tfx_tcb(x);
    if (tfx_app_send(x, MSS) != MSS || tfx_recv(x) < 0)
        return -1;
    tfx_advance(x, rtt_ms * TFX_MS);
    tfx_ack(x, t->snd_nxt);
    return t->rtt.srtt_us ? 0 : -1;
}

TEST(initial_window_is_ten_segments)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 30 * MSS), 30 * MSS);
    uint32_t seqs[40], lens[40];
    CHECK_EQ(tfx_collect(&x, seqs, lens, 40), 10);   /* RFC 6928 */
    for (int i = 0; i < 10; i++)
        CHECK(seqs[i] == x.iss + 1 + (uint32_t)i * MSS && lens[i] == MSS);
    CHECK(tfx_close(&x) == 0);
}

TEST(rto_backoff_1x_2x_4x_and_karn)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    struct tcb *t = tfx_tcb(&x);
    CHECK_EQ(tfx_app_send(&x, 100), 100);
    CHECK(tfx_expect(&x, TCP_ACK | TCP_PSH, x.iss + 1, x.seq, 100) == 0);
    uint64_t rto = (uint64_t)rtt_timeout_us(&t->rtt) * 1000;
    CHECK_EQ(rto, 1000 * TFX_MS);   /* RFC 6298 2.1: no sample yet */
    for (int i = 0; i < 3; i++) {
        uint64_t w = tfx_wait_seg(&x, 10000 * TFX_MS);
        CHECK(NEAR(w, rto << i, 2 * TFX_MS));
        CHECK(x.out.h.seq == x.iss + 1 && x.out.len == 100);
    }
    CHECK_EQ(fx_ctr(&x.fx, "tcp_rto"), 3);
    /* Karn: the ACK of a retransmitted segment gives no RTT sample. */
    tfx_advance(&x, 30 * TFX_MS);
    tfx_ack(&x, x.iss + 101);
    CHECK_EQ(t->rtt.srtt_us, 0);
    CHECK_EQ(t->rtt.backoff, 0);
    /* A fresh segment does. */
    CHECK_EQ(tfx_app_send(&x, 100), 100);
    CHECK(tfx_recv(&x) == 0);
    tfx_advance(&x, 50 * TFX_MS);
    tfx_ack(&x, x.iss + 201);
    CHECK(NEAR(t->rtt.srtt_us, 50000, 1100));
    CHECK(tfx_close(&x) == 0);
}

TEST(gives_up_after_retries2)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    CHECK_EQ(tfx_app_send(&x, 100), 100);
    fx_drain(&x.fx);
    tfx_advance_coarse(&x, 3000ULL * 1000 * TFX_MS, 10 * TFX_MS);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_retransmits"), TCP_RETRIES2);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_timeouts"), 1);
    CHECK(strcmp(ust_tcp_state(x.c), "CLOSED") == 0);
    CHECK_EQ(ust_tcp_error(x.c), ETIMEDOUT);
    CHECK(x.events & UST_TCP_ERROR);
    CHECK(tfx_close(&x) == 0);
}

TEST(newreno_fast_retransmit_limited_transmit_partial_ack)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    uint32_t s0 = x.iss + 1;
    CHECK_EQ(tfx_app_send(&x, 20 * MSS), 20 * MSS);
    uint32_t seqs[40], lens[40];
    CHECK_EQ(tfx_collect(&x, seqs, lens, 40), 10);
    /* Segments 0 and 3 were lost: three duplicate ACKs of s0. */
    tfx_ack(&x, s0);
    CHECK(tfx_recv(&x) == 0);
    CHECK(x.out.h.seq == s0 + 10 * MSS && x.out.len == MSS);   /* RFC 3042: one new segment */
    tfx_ack(&x, s0);
    CHECK(tfx_recv(&x) == 0 && x.out.h.seq == s0 + 11 * MSS && x.out.len == MSS);
    CHECK(tfx_quiet(&x));
    tfx_ack(&x, s0);   /* third: fast retransmit */
    CHECK(tfx_recv(&x) == 0);
    CHECK(x.out.h.seq == s0 && x.out.len == MSS);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_fast_retransmits"), 1);
    CHECK(tfx_tcb(&x)->flags & TF_IN_RECOVERY);
    fx_drain(&x.fx);
    /* RFC 6582 3.2 step 5: a partial ACK resends the next hole at once. */
    tfx_ack(&x, s0 + 3 * MSS);
    CHECK(tfx_recv(&x) == 0);
    CHECK(x.out.h.seq == s0 + 3 * MSS && x.out.len == MSS);
    fx_drain(&x.fx);
    tfx_ack(&x, tfx_tcb(&x)->snd_nxt);   /* everything: recovery ends */
    CHECK(!(tfx_tcb(&x)->flags & TF_IN_RECOVERY));
    CHECK_EQ(fx_ctr(&x.fx, "tcp_fast_retransmits"), 1);
    CHECK(tfx_close(&x) == 0);
}

static void sack_ack(struct tfx *x, uint32_t ack, int n, const uint32_t *edges)
{
    struct tcp_repr h = tfx_hdr(x, TCP_ACK);
    h.ack = ack;
    h.opt.sack_count = (uint8_t)n;
    for (int i = 0; i < n; i++) {
        h.opt.sack[i].left = edges[2 * i];
        h.opt.sack[i].right = edges[2 * i + 1];
    }
    tfx_send_hdr(x, &h, NULL, 0);
}

TEST(sack_recovery_resends_exactly_the_holes)
{
    struct tfx x;
    CHECK(open_conn(&x, TFX_SACK) == 0);
    CHECK(warm_rtt(&x, 10) == 0);
    uint32_t s0 = tfx_tcb(&x)->snd_una;
    CHECK_EQ(tfx_app_send(&x, 20 * MSS), 20 * MSS);
    fx_drain(&x.fx);
    tfx_advance(&x, 10 * TFX_MS);
    /* Segments 0 and 4 lost; the others are SACKed one by one. */
    uint32_t resent[64];
    int nresent = 0;
    for (int k = 1; k < 10; k++) {
        if (k == 4)
            continue;
        uint32_t e[4] = {s0 + MSS, s0 + (uint32_t)(k < 4 ? k + 1 : 4) * MSS, s0 + 5 * MSS, s0 + (uint32_t)(k + 1) * MSS};
        sack_ack(&x, s0, k < 5 ? 1 : 2, e);
        while (tfx_recv(&x) == 0)
            if (seq_lt(x.out.h.seq, s0 + 10 * MSS) && nresent < 64)
                resent[nresent++] = x.out.h.seq;
        tfx_advance(&x, 1 * TFX_MS);
        while (tfx_recv(&x) == 0)
            if (seq_lt(x.out.h.seq, s0 + 10 * MSS) && nresent < 64)
                resent[nresent++] = x.out.h.seq;
    }
    CHECK_EQ(nresent, 2);
    CHECK_EQ(resent[0], s0);
    CHECK_EQ(resent[1], s0 + 4 * MSS);
    tfx_ack(&x, tfx_tcb(&x)->snd_nxt);
    CHECK(!(tfx_tcb(&x)->flags & TF_IN_RECOVERY));
    CHECK_EQ(fx_ctr(&x.fx, "tcp_retransmits"), 2);
    CHECK(tfx_close(&x) == 0);
}

TEST(rack_reordering_is_not_loss)
{
    struct tfx x;
    CHECK(open_conn(&x, TFX_SACK) == 0);
    CHECK(warm_rtt(&x, 10) == 0);
    uint32_t s0 = tfx_tcb(&x)->snd_una;
    CHECK_EQ(tfx_app_send(&x, 3 * MSS), 3 * MSS);
    fx_drain(&x.fx);
    tfx_advance(&x, 10 * TFX_MS);
    uint32_t e[2] = {s0 + MSS, s0 + 2 * MSS};
    sack_ack(&x, s0, 1, e);   /* segment 1 overtook segment 0 */
    CHECK(tfx_quiet(&x));
    tfx_advance(&x, 1 * TFX_MS);
    tfx_ack(&x, s0 + 2 * MSS); /* segment 0 arrives within the reordering window */
    tfx_ack(&x, s0 + 3 * MSS);
    tfx_advance(&x, 500 * TFX_MS);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_retransmits"), 0);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_fast_retransmits"), 0);
    CHECK(tfx_quiet(&x));
    CHECK(tfx_close(&x) == 0);
}

TEST(tlp_probe_at_pto_on_tail_drop)
{
    struct tfx x;
    CHECK(open_conn(&x, TFX_SACK) == 0);
    CHECK(warm_rtt(&x, 10) == 0);
    struct tcb *t = tfx_tcb(&x);
    uint32_t s0 = t->snd_una;
    CHECK_EQ(tfx_app_send(&x, 3 * MSS), 3 * MSS);
    fx_drain(&x.fx);
    uint64_t w = tfx_wait_seg(&x, 2000 * TFX_MS);
    CHECK(NEAR(w, 2ULL * t->rtt.srtt_us * 1000, 2 * TFX_MS));   /* RFC 8985 7.2: 2 SRTT */
    CHECK_EQ(x.out.h.seq, s0 + 2 * MSS);                       /* the last segment again */
    CHECK_EQ(x.out.len, MSS);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_tlp"), 1);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_rto"), 0);
    CHECK(tfx_close(&x) == 0);
}

TEST(frto_undoes_a_spurious_rto)
{
    struct tfx x;
    CHECK(open_conn(&x, 0) == 0);
    CHECK(warm_rtt(&x, 10) == 0);
    struct tcb *t = tfx_tcb(&x);
    uint32_t s0 = t->snd_una;
    uint32_t cwnd_before = t->cc.cwnd;
    CHECK_EQ(tfx_app_send(&x, 30 * MSS), 30 * MSS);
    fx_drain(&x.fx);
    uint64_t w = tfx_wait_seg(&x, 5000 * TFX_MS);
    CHECK(w != UINT64_MAX);
    CHECK_EQ(x.out.h.seq, s0);   /* the RTO resends the first segment */
    CHECK_EQ(fx_ctr(&x.fx, "tcp_rto"), 1);
    CHECK(t->cc.cwnd < cwnd_before);
    fx_drain(&x.fx);
    /* The originals were only delayed: ACKs for them arrive now. */
    tfx_ack(&x, s0 + 2 * MSS);
    int new_segs = 0;
    while (tfx_recv(&x) == 0)
        new_segs += seq_geq(x.out.h.seq, s0 + 10 * MSS);
    CHECK(new_segs >= 2);   /* RFC 5682 2.1 step 2b: (at least) two new segments, no retransmission */
    tfx_ack(&x, s0 + 4 * MSS);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_frto_spurious"), 1);
    CHECK(t->cc.cwnd >= cwnd_before / 2);
    CHECK_EQ(fx_ctr(&x.fx, "tcp_retransmits"), 1);
    CHECK(tfx_close(&x) == 0);
}

HARNESS_MAIN()
