/* Steering: the hash's symmetry, the owner of each kind of packet, and the
 * classic BPF program run in a small interpreter here against the C hash on
 * many random flows (so the kernel's fanout and ustack agree). */
#include <linux/filter.h>
#include <string.h>

#include "harness.h"
#include "net/steer.h"
#include "wire/wire.h"

static uint64_t rng = 0x1234567887654321ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* An Ethernet + IPv4 + L4 frame; returns its length. */
static uint32_t make_frame(uint8_t *f, uint8_t proto, uint32_t s, uint32_t d, uint16_t sp, uint16_t dp,
                           uint16_t frag, uint8_t ihl_words)
{
    memset(f, 0, 128);
    wr16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    uint32_t hl = ihl_words * 4u;
    ip[0] = (uint8_t)(0x40 | ihl_words);
    wr16(ip + 2, (uint16_t)(hl + 20));
    wr16(ip + 6, frag);
    ip[8] = 64;
    ip[9] = proto;
    wr32(ip + 12, s);
    wr32(ip + 16, d);
    wr16(ip + hl, sp);
    wr16(ip + hl + 2, dp);
    return 14 + hl + 20;
}

/* ---- a minimal classic BPF interpreter: the instructions steer uses ---- */

static int bpf_load(const uint8_t *f, uint32_t len, uint32_t k, uint32_t size, uint32_t *out)
{
    uint32_t off;
    if (k >= (uint32_t)SKF_NET_OFF)   /* [SKF_NET_OFF, 2^32): network header */
        off = 14 + (k - (uint32_t)SKF_NET_OFF);
    else
        off = k;
    if (off + size > len)
        return -1;
    *out = size == 4 ? rd32(f + off) : size == 2 ? rd16(f + off) : f[off];
    return 0;
}

static uint32_t bpf_size(uint16_t code)
{
    return BPF_SIZE(code) == BPF_W ? 4 : BPF_SIZE(code) == BPF_H ? 2 : 1;
}

static int bpf_jump_taken(uint16_t code, uint32_t a, uint32_t k)
{
    switch (BPF_OP(code)) {
    case BPF_JEQ: return a == k;
    case BPF_JSET: return (a & k) != 0;
    default: return -1;
    }
}

static uint32_t bpf_alu(uint16_t code, uint32_t a, uint32_t v)
{
    switch (BPF_OP(code)) {
    case BPF_XOR: return a ^ v;
    case BPF_AND: return a & v;
    case BPF_RSH: return a >> v;
    case BPF_MUL: return a * v;   /* cBPF's A is 32 bits: wraps */
    case BPF_MOD: return v ? a % v : 0;
    default: return 0xdeadbeef;
    }
}

/* Runs prog over frame f; -1 on an instruction this interpreter lacks or a
 * load out of bounds (the kernel returns 0 then). */
static int64_t bpf_run(const struct steer_bpf_insn *p, int n, const uint8_t *f, uint32_t len)
{
    uint32_t a = 0, x = 0, m[16] = {0}, v;
    for (int pc = 0; pc < n; pc++) {
        const struct steer_bpf_insn *i = &p[pc];
        uint16_t c = i->code;
        if (c == (BPF_LD | BPF_W | BPF_ABS) && i->k == (uint32_t)SKF_AD_OFF + SKF_AD_PROTOCOL)
            a = rd16(f + 12);
        else if (BPF_CLASS(c) == BPF_LD && BPF_MODE(c) == BPF_ABS) {
            if (bpf_load(f, len, i->k, bpf_size(c), &a))
                return 0;
        } else if (BPF_CLASS(c) == BPF_LD && BPF_MODE(c) == BPF_IND) {
            if (bpf_load(f, len, i->k + x, bpf_size(c), &a))
                return 0;
        } else if (c == (BPF_LD | BPF_IMM))
            a = i->k;
        else if (c == (BPF_LDX | BPF_B | BPF_MSH)) {
            if (bpf_load(f, len, i->k, 1, &v))
                return 0;
            x = (v & 0xf) * 4;
        } else if (c == (BPF_LDX | BPF_W | BPF_MEM))
            x = m[i->k & 15];
        else if (c == BPF_ST)
            m[i->k & 15] = a;
        else if (c == (BPF_MISC | BPF_TAX))
            x = a;
        else if (BPF_CLASS(c) == BPF_ALU)
            a = bpf_alu(c, a, BPF_SRC(c) == BPF_X ? x : i->k);
        else if (c == (BPF_JMP | BPF_JA))
            pc += (int)i->k;
        else if (BPF_CLASS(c) == BPF_JMP) {
            int t = bpf_jump_taken(c, a, i->k);
            if (t < 0)
                return -1;
            pc += t ? i->jt : i->jf;
        } else if (c == (BPF_RET | BPF_A))
            return a;
        else if (c == (BPF_RET | BPF_K))
            return i->k;
        else
            return -1;
    }
    return -1;
}

TEST(steer_hash_is_symmetric)
{
    for (int i = 0; i < 10000; i++) {
        uint32_t s = rnd(), d = rnd();
        uint16_t sp = (uint16_t)rnd(), dp = (uint16_t)rnd();
        CHECK_EQ(steer_hash(s, d, sp, dp), steer_hash(d, s, dp, sp));
    }
}

TEST(steer_spreads_flows_over_workers)
{
    uint32_t seen[4] = {0};
    for (uint16_t port = 1024; port < 1024 + 4000; port++)
        seen[steer_pick(steer_hash(0x0a000001, 0x0a000002, port, 7), 4)]++;
    for (int w = 0; w < 4; w++)
        CHECK(seen[w] > 800 && seen[w] < 1200);
}

/* Linux's connect() takes even ephemeral ports in steps of 2 (bit 0 fixed)
 * and a few consecutive ones share bits 8..15: the old xor-fold put all of
 * them on one worker. Over every block of 8 such ports (32768..60999) to a
 * few servers, count the workers each block reaches. A well mixed hash
 * leaves a block on one of 2 workers with chance 2/2^8 (0.8%), and on at
 * most 2 of 4 workers with chance ~2.3%; the xor-fold did so ~7 times in 8. */
static uint32_t steer_workers_hit(uint32_t s, uint32_t d, uint16_t first, uint16_t dport, uint32_t n)
{
    uint32_t mask = 0;
    for (uint16_t k = 0; k < 8; k++)
        mask |= 1u << steer_pick(steer_hash(s, d, (uint16_t)(first + 2 * k), dport), n);
    return (uint32_t)__builtin_popcount(mask);
}

TEST(steer_consecutive_even_client_ports_spread)
{
    static const uint32_t addr[][2] = {{0x0a4f0001, 0x0a4f0002}, {0x0a3e0002, 0x0a3e0001},
                                       {0xc0a80001, 0xc0a80002}, {0x7f000001, 0x7f000001}};
    static const uint16_t dport[] = {7, 80, 5001, 9000};
    uint32_t blocks = 0, one_of_2 = 0, one_of_4 = 0, two_of_4 = 0;
    for (unsigned a = 0; a < 4; a++)
        for (unsigned p = 0; p < 4; p++)
            for (uint32_t first = 32768; first + 14 <= 60999; first += 2) {
                blocks++;
                one_of_2 += steer_workers_hit(addr[a][0], addr[a][1], (uint16_t)first, dport[p], 2) < 2;
                uint32_t w4 = steer_workers_hit(addr[a][0], addr[a][1], (uint16_t)first, dport[p], 4);
                one_of_4 += w4 < 2;
                two_of_4 += w4 == 2;
            }
    CHECK(one_of_2 * 100 < blocks * 2);    /* < 2%   */
    CHECK(one_of_4 * 1000 < blocks);       /* < 0.1% */
    CHECK(two_of_4 * 100 < blocks * 5);    /* < 5%   */
    /* The interop tests' addresses (workers_veth.sh, workers_memif.sh) and
     * a typical start port: both workers get some of the first 8. */
    CHECK_EQ(steer_workers_hit(0x0a4f0001, 0x0a4f0002, 40000, 7, 2), 2);
    CHECK_EQ(steer_workers_hit(0x0a3e0002, 0x0a3e0001, 40000, 7, 2), 2);
}

/* The same through the frame path and the cBPF program, so the kernel's
 * fanout spreads such a connect burst too. */
TEST(steer_bpf_spreads_consecutive_even_ports)
{
    struct steer_bpf_insn prog[STEER_BPF_MAX];
    uint8_t f[128];
    int len = steer_bpf_build(prog, 2);
    uint32_t seen[2] = {0};
    for (uint16_t k = 0; k < 8; k++) {
        uint32_t fl = make_frame(f, 6, 0x0a000002, 0x0a000001, 7, (uint16_t)(40000 + 2 * k), 0, 5);
        int64_t w = bpf_run(prog, len, f, fl);   /* server to client direction */
        CHECK(w == 0 || w == 1);
        CHECK_EQ(w, steer_frame_owner(f, fl, 0, 2));
        seen[w & 1]++;
    }
    CHECK(seen[0] > 0 && seen[1] > 0);
}

TEST(steer_tcp_frame_owner_matches_hash)
{
    uint8_t f[128];
    uint32_t len = make_frame(f, 6, 0xc0a80001, 0xc0a80002, 40000, 7, 0, 5);
    uint32_t want = steer_pick(steer_hash(0xc0a80001, 0xc0a80002, 40000, 7), 3);
    CHECK_EQ(steer_frame_owner(f, len, 0, 3), want);
    CHECK_EQ(steer_ipv4_owner(f + 14, len - 14, 3), want);
    CHECK_EQ(steer_frame_owner(f + 14, len - 14, 1, 3), want);   /* bare IP device */
}

TEST(steer_ip_options_move_the_ports)
{
    uint8_t f[128];
    uint32_t len = make_frame(f, 17, 0x0a000001, 0x0a000002, 5353, 9999, 0, 7);
    CHECK_EQ(steer_frame_owner(f, len, 0, 5), steer_pick(steer_hash(0x0a000001, 0x0a000002, 5353, 9999), 5));
}

TEST(steer_arp_goes_everywhere_and_unknown_stays)
{
    uint8_t f[64] = {0};
    wr16(f + 12, 0x0806);
    CHECK_EQ(steer_frame_owner(f, 42, 0, 2), STEER_ALL);
    wr16(f + 12, 0x86dd);
    CHECK_EQ(steer_frame_owner(f, 60, 0, 2), STEER_ANY);
    CHECK_EQ(steer_frame_owner(f, 10, 0, 2), STEER_ANY);   /* runt */
}

TEST(steer_fragments_meet_on_the_address_pair_worker)
{
    uint8_t f[128];
    uint32_t want = steer_pick(steer_hash(0x0a000001, 0x0a000002, 0, 0), 4);
    uint32_t len = make_frame(f, 17, 0x0a000001, 0x0a000002, 1, 2, 0x2000, 5);      /* first, MF */
    CHECK_EQ(steer_frame_owner(f, len, 0, 4), want);
    len = make_frame(f, 17, 0x0a000001, 0x0a000002, 77, 88, 185, 5);                /* last */
    CHECK_EQ(steer_frame_owner(f, len, 0, 4), want);
}

TEST(steer_icmp_error_goes_to_the_quoted_flow)
{
    /* Port unreachable from the peer about our datagram 10.0.0.1:5000 ->
     * 10.0.0.2:53: it belongs to whoever owns that flow. */
    uint8_t f[128] = {0};
    wr16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    wr16(ip + 2, 20 + 8 + 28);
    ip[9] = 1;
    wr32(ip + 12, 0x0a000002);
    wr32(ip + 16, 0x0a000001);
    uint8_t *icmp = ip + 20;
    icmp[0] = 3;
    icmp[1] = 3;
    uint8_t *in = icmp + 8;
    in[0] = 0x45;
    in[9] = 17;
    wr32(in + 12, 0x0a000001);
    wr32(in + 16, 0x0a000002);
    wr16(in + 20, 5000);
    wr16(in + 22, 53);
    uint32_t len = 14 + 20 + 8 + 28;
    for (uint32_t n = 2; n <= 8; n++)
        CHECK_EQ(steer_frame_owner(f, len, 0, n), steer_pick(steer_hash(0x0a000001, 0x0a000002, 5000, 53), n));
    CHECK_EQ(steer_frame_owner(f, len - 6, 0, 4), STEER_ANY);   /* quoted ports cut off */
    icmp[0] = 8;                                                 /* echo request */
    CHECK_EQ(steer_frame_owner(f, len, 0, 4), STEER_ANY);
}

TEST(steer_bpf_program_agrees_with_c_hash)
{
    struct steer_bpf_insn prog[STEER_BPF_MAX];
    uint8_t f[128];
    for (uint32_t n = 1; n <= 6; n++) {
        int len = steer_bpf_build(prog, n);
        CHECK(len > 0 && len <= STEER_BPF_MAX);
        for (int i = 0; i < 5000; i++) {
            uint32_t s = rnd(), d = rnd();
            uint16_t sp = (uint16_t)rnd(), dp = (uint16_t)rnd();
            uint8_t proto = (i & 1) ? 6 : 17;
            uint16_t frag = (i % 7 == 0) ? 0x2000 : (i % 11 == 0) ? 0x0040 : 0;
            uint8_t ihl = (uint8_t)(5 + (i % 3));
            uint32_t fl = make_frame(f, proto, s, d, sp, dp, frag, ihl);
            int64_t got = bpf_run(prog, len, f, fl);
            int want = steer_frame_owner(f, fl, 0, n);
            CHECK(want >= 0);
            CHECK_EQ(got, want);
        }
        memset(f, 0, sizeof(f));
        wr16(f + 12, 0x0806);
        CHECK_EQ(bpf_run(prog, len, f, 42), 0);   /* ARP: worker 0 copies it */
    }
}

TEST(steer_bpf_jumps_stay_inside_the_program)
{
    struct steer_bpf_insn prog[STEER_BPF_MAX];
    int len = steer_bpf_build(prog, 4);
    for (int pc = 0; pc < len; pc++) {
        uint16_t c = prog[pc].code;
        if (BPF_CLASS(c) != BPF_JMP)
            continue;
        if (BPF_OP(c) == BPF_JA)
            CHECK(pc + 1 + (int)prog[pc].k < len);
        else
            CHECK(pc + 1 + prog[pc].jt < len && pc + 1 + prog[pc].jf < len);
    }
    CHECK_EQ(prog[len - 1].code, BPF_RET | BPF_A);
}

HARNESS_MAIN()
