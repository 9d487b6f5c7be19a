/* RFC 6937 Proportional Rate Reduction with the PRR-SSRB bound. */
#include "harness.h"
#include "tcp/tcp_prr.h"

#define MSS 1000u

/* The RFC 6937 section 5 single-loss example: 20 segments in flight, the
 * first one lost, every following ACK SACKs one more segment, ssthresh
 * halved to 10. Pipe is the RFC 6675 estimate: outstanding minus SACKed
 * minus lost, plus what has been (re)sent since. Returns the sends. */
TEST(single_loss_sends_every_other_ack)
{
    struct tcp_prr p;
    const uint32_t fs = 20 * MSS, ssthresh = 10 * MSS;
    prr_start(&p, fs);
    uint32_t sacked = 0;
    char pattern[32] = {0};
    for (int k = 1; k <= 19; k++) {
        sacked += MSS;
        uint32_t pipe = fs - MSS - sacked + p.out;
        uint32_t sndcnt = prr_on_ack(&p, MSS, pipe, ssthresh, MSS);
        uint32_t sent = sndcnt >= MSS ? MSS : 0;   /* whole segments only */
        prr_sent(&p, sent);
        pattern[k - 1] = sent ? 'S' : '.';
        if (k <= 16)   /* proportional phase: sends on odd ACKs (ceil) */
            CHECK_EQ(sent, (k % 2) ? MSS : 0);
        CHECK(pipe + sent <= fs);
    }
    /* End of recovery: everything but the retransmission delivered, and
     * exactly ssthresh was sent: pipe == ssthresh (RFC 6937 3). */
    CHECK_EQ(p.out, ssthresh);
    CHECK_EQ(fs - MSS - sacked + p.out, ssthresh);
    CHECK_EQ(p.delivered, 19 * MSS);
    CHECK(strncmp(pattern, "S.S.S.S.S.S.S.S.", 16) == 0);
}

TEST(proportional_matches_ceil_formula)
{
    struct tcp_prr p;
    const uint32_t fs = 100 * MSS, ssthresh = 70 * MSS;   /* CUBIC's 0.7 */
    prr_start(&p, fs);
    for (uint32_t k = 1; k <= 100; k++) {
        /* pipe held above ssthresh: the proportional branch throughout */
        uint32_t sndcnt = prr_on_ack(&p, MSS, 90 * MSS, ssthresh, MSS);
        uint64_t want_segs = ((uint64_t)k * 7 + 9) / 10;   /* CEIL(k * 0.7) */
        CHECK_EQ(sndcnt, want_segs * MSS - p.out);
        prr_sent(&p, sndcnt);
    }
    CHECK_EQ(p.out, ssthresh);   /* delivered RecoverFS -> sent ssthresh */
}

TEST(ssrb_slow_start_when_pipe_below_ssthresh)
{
    struct tcp_prr p;
    prr_start(&p, 20 * MSS);
    prr_sent(&p, MSS);                         /* the fast retransmit */
    /* prr_delivered - prr_out = 0; DeliveredData = MSS: limit = 2 MSS */
    CHECK_EQ(prr_on_ack(&p, MSS, 4 * MSS, 10 * MSS, MSS), 2 * MSS);
    prr_sent(&p, 2 * MSS);
    /* banked delivery (sent less than delivered) is spent first */
    CHECK_EQ(prr_on_ack(&p, 3 * MSS, 3 * MSS, 10 * MSS, MSS), 4 * MSS);
    /* never past ssthresh - pipe */
    CHECK_EQ(prr_on_ack(&p, MSS, 9 * MSS + MSS / 2, 10 * MSS, MSS), MSS / 2);
    CHECK_EQ(prr_on_ack(&p, MSS, 10 * MSS, 10 * MSS, MSS), 0);
}

/* RFC 6937 section 5's second case: a burst of losses leaves pipe far
 * below ssthresh; SSRB rebuilds it at slow start speed, not in one burst. */
TEST(burst_loss_rebuilds_to_ssthresh)
{
    struct tcp_prr p;
    const uint32_t fs = 20 * MSS, ssthresh = 10 * MSS;
    uint32_t lost = 12 * MSS, delivered_total = 0;
    prr_start(&p, fs);
    uint32_t pipe_final = 0;
    for (int k = 1; k <= 8; k++) {
        delivered_total += MSS;
        uint32_t pipe = fs - lost - delivered_total + p.out;
        uint32_t sndcnt = prr_on_ack(&p, MSS, pipe, ssthresh, MSS);
        CHECK(sndcnt <= 2 * MSS + (p.delivered - (p.out < p.delivered ? p.out : p.delivered)));
        CHECK(pipe + sndcnt <= ssthresh || pipe > ssthresh);
        prr_sent(&p, sndcnt);
        pipe_final = pipe + sndcnt;
    }
    CHECK_EQ(pipe_final, ssthresh);
}

TEST(first_ack_forces_fast_retransmit)
{
    struct tcp_prr p;
    prr_start(&p, 20 * MSS);
    /* nothing delivered (RACK timer found the loss), pipe above ssthresh */
    CHECK_EQ(prr_on_ack(&p, 0, 20 * MSS, 10 * MSS, MSS), MSS);   /* RFC 9937 4 */
    prr_sent(&p, MSS);
    CHECK_EQ(prr_on_ack(&p, 0, 20 * MSS, 10 * MSS, MSS), 0);
}

TEST(never_negative)
{
    struct tcp_prr p;
    prr_start(&p, 20 * MSS);
    prr_sent(&p, 15 * MSS);                    /* more than PRR allowed */
    CHECK_EQ(prr_on_ack(&p, MSS, 19 * MSS, 10 * MSS, MSS), 0);
    CHECK_EQ(prr_on_ack(&p, MSS, 5 * MSS, 10 * MSS, MSS), 2 * MSS);   /* SSRB: DeliveredData + MSS */
}

TEST(hostile_inputs)
{
    struct tcp_prr p;
    prr_start(&p, 0);                          /* RecoverFS 0: no div by 0 */
    uint32_t s = prr_on_ack(&p, MSS, 5 * MSS, 2 * MSS, MSS);
    CHECK(s > 0);
    prr_start(&p, UINT32_MAX);
    s = prr_on_ack(&p, UINT32_MAX, UINT32_MAX, UINT32_MAX - 1, MSS);
    CHECK(s >= UINT32_MAX - 2 * MSS);       /* all of RecoverFS delivered: ~ssthresh */
    CHECK_EQ(p.delivered, UINT32_MAX);
    s = prr_on_ack(&p, UINT32_MAX, UINT32_MAX, UINT32_MAX - 1, MSS);
    CHECK_EQ(p.delivered, UINT32_MAX);         /* saturates, no wrap */
    prr_start(&p, 10 * MSS);
    CHECK_EQ(p.delivered, 0);
    CHECK_EQ(p.out, 0);
    CHECK_EQ(p.recover_fs, 10 * MSS);
}

HARNESS_MAIN()
