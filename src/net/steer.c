/* Flow steering: the hash, the owner of a packet, the same hash as cBPF. */
#include "net/steer.h"

#include <linux/filter.h>

#include "wire/eth.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"
#include "wire/wire.h"

/* IPv4 header field offsets (RFC 791 3.1). */
#define IP_VER_IHL 0
#define IP_FRAG 6
#define IP_PROTO 9
#define IP_SRC 12
#define IP_DST 16
/* Ports are the first two 16-bit words of TCP and UDP (RFC 9293 3.1, RFC 768). */
#define L4_SPORT 0
#define L4_DPORT 2
/* ICMP errors quote the offending IP header after the 8-byte ICMP header
 * (RFC 792). */
#define ICMP_TYPE 0

/* One mixing round: the shift folds high bits down, the odd multiply spreads
 * each bit upward. Two rounds and a final fold let every input bit change
 * the low bits steer_pick keeps, so flows whose ports differ only above bit
 * 0 (Linux steps ephemeral ports by 2) still spread over the workers. */
static uint32_t steer_mix(uint32_t h)
{
    h ^= h >> 16;
    return h * STEER_MIX_MUL;
}

uint32_t steer_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport)
{
    uint32_t h = saddr ^ daddr ^ (uint32_t)(sport ^ dport);
    h = steer_mix(steer_mix(h));
    return h ^ (h >> 16);
}

/* The IPv4 header's length if the buffer holds it, else 0. */
static uint32_t steer_ip_hlen(const uint8_t *ip, uint32_t len)
{
    if (len < IPV4_HDR_LEN || (ip[IP_VER_IHL] >> 4) != 4)
        return 0;
    uint32_t hl = (uint32_t)(ip[IP_VER_IHL] & 0xf) * 4;
    return hl >= IPV4_HDR_LEN && hl <= len ? hl : 0;
}

static int steer_is_fragment(const uint8_t *ip)
{
    return (rd16(ip + IP_FRAG) & (IPV4_FLAG_MF | IPV4_FRAG_MASK)) != 0;
}

/* Hash of a TCP/UDP flow or, for fragments and other protocols, of the
 * address pair; -1 when the header is cut short. */
static int64_t steer_ip_hash(const uint8_t *ip, uint32_t len)
{
    uint32_t hl = steer_ip_hlen(ip, len);
    if (!hl)
        return -1;
    uint32_t s = rd32(ip + IP_SRC), d = rd32(ip + IP_DST);
    uint8_t proto = ip[IP_PROTO];
    if (steer_is_fragment(ip) || (proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_))
        return steer_hash(s, d, 0, 0);
    if (len < hl + 4)
        return -1;
    return steer_hash(s, d, rd16(ip + hl + L4_SPORT), rd16(ip + hl + L4_DPORT));
}

static int steer_icmp_is_error(uint8_t type)
{
    return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_REDIRECT ||
           type == ICMP_TIME_EXCEEDED || type == ICMP_PARAM_PROBLEM;
}

/* An ICMP error belongs to the flow it quotes (RFC 1122 3.2.2: the quoted
 * header plus at least 8 bytes of its payload, enough for both ports). */
static int steer_icmp_owner(const uint8_t *icmp, uint32_t len, uint32_t n)
{
    if (len < ICMP_HDR_LEN || !steer_icmp_is_error(icmp[ICMP_TYPE]))
        return STEER_ANY;
    const uint8_t *in = icmp + ICMP_HDR_LEN;
    uint32_t in_len = len - ICMP_HDR_LEN;
    uint32_t hl = steer_ip_hlen(in, in_len);
    if (!hl)
        return STEER_ANY;
    uint8_t proto = in[IP_PROTO];
    if ((proto != IPPROTO_TCP_ && proto != IPPROTO_UDP_) || (rd16(in + IP_FRAG) & IPV4_FRAG_MASK))
        return STEER_ANY;   /* a later fragment quotes no ports */
    if (in_len < hl + 4)
        return STEER_ANY;
    uint32_t h = steer_hash(rd32(in + IP_SRC), rd32(in + IP_DST), rd16(in + hl + L4_SPORT),
                            rd16(in + hl + L4_DPORT));
    return (int)steer_pick(h, n);
}

int steer_ipv4_owner(const uint8_t *ip, uint32_t len, uint32_t n)
{
    uint32_t hl = steer_ip_hlen(ip, len);
    if (!hl || n == 0)
        return STEER_ANY;
    uint32_t total = rd16(ip + 2);
    if (total >= hl && total < len)
        len = total;   /* ignore link padding */
    if (ip[IP_PROTO] == IPPROTO_ICMP_ && !steer_is_fragment(ip))
        return steer_icmp_owner(ip + hl, len - hl, n);
    int64_t h = steer_ip_hash(ip, len);
    return h < 0 ? STEER_ANY : (int)steer_pick((uint32_t)h, n);
}

int steer_frame_owner(const uint8_t *frame, uint32_t len, int l3_only, uint32_t n)
{
    if (l3_only)
        return steer_ipv4_owner(frame, len, n);
    if (len < ETH_HDR_LEN)
        return STEER_ANY;
    uint16_t type = rd16(frame + 12);
    if (type == ETHERTYPE_ARP)
        return STEER_ALL;
    if (type != ETHERTYPE_IPV4)
        return STEER_ANY;
    return steer_ipv4_owner(frame + ETH_HDR_LEN, len - ETH_HDR_LEN, n);
}

/* ---- the same hash in classic BPF --------------------------------------- */

static struct steer_bpf_insn bpf_op(uint16_t code, uint32_t k)
{
    return (struct steer_bpf_insn){.code = code, .k = k};
}

static struct steer_bpf_insn bpf_jmp(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
    return (struct steer_bpf_insn){.code = code, .jt = jt, .jf = jf, .k = k};
}

/* Loads are relative to the network header (SKF_NET_OFF), which is where
 * they must start whether the kernel runs the program with skb->data at the
 * MAC header or past it. Scratch: M[0] address xor, M[1] source port. */
int steer_bpf_build(struct steer_bpf_insn *p, uint32_t n)
{
    const uint32_t net = (uint32_t)SKF_NET_OFF;
    int i = 0;
    p[i++] = bpf_op(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_AD_OFF + SKF_AD_PROTOCOL);  /* 0 */
    p[i++] = bpf_jmp(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_IPV4, 1, 0);                  /* 1 */
    p[i++] = bpf_op(BPF_RET | BPF_K, 0);                                                 /* 2 */
    p[i++] = bpf_op(BPF_LD | BPF_W | BPF_ABS, net + IP_SRC);                             /* 3 */
    p[i++] = bpf_op(BPF_MISC | BPF_TAX, 0);                                              /* 4 */
    p[i++] = bpf_op(BPF_LD | BPF_W | BPF_ABS, net + IP_DST);                             /* 5 */
    p[i++] = bpf_op(BPF_ALU | BPF_XOR | BPF_X, 0);                                       /* 6 */
    p[i++] = bpf_op(BPF_ST, 0);                                                          /* 7 */
    p[i++] = bpf_op(BPF_LD | BPF_H | BPF_ABS, net + IP_FRAG);                            /* 8 */
    p[i++] = bpf_jmp(BPF_JMP | BPF_JSET | BPF_K, IPV4_FLAG_MF | IPV4_FRAG_MASK, 10, 0);  /* 9 -> 20 */
    p[i++] = bpf_op(BPF_LD | BPF_B | BPF_ABS, net + IP_PROTO);                           /* 10 */
    p[i++] = bpf_jmp(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP_, 1, 0);                     /* 11 -> 13 */
    p[i++] = bpf_jmp(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP_, 0, 7);                     /* 12 -> 20 */
    p[i++] = bpf_op(BPF_LDX | BPF_B | BPF_MSH, net + IP_VER_IHL);                        /* 13 */
    p[i++] = bpf_op(BPF_LD | BPF_H | BPF_IND, net + L4_SPORT);                           /* 14 */
    p[i++] = bpf_op(BPF_ST, 1);                                                          /* 15 */
    p[i++] = bpf_op(BPF_LD | BPF_H | BPF_IND, net + L4_DPORT);                           /* 16 */
    p[i++] = bpf_op(BPF_LDX | BPF_W | BPF_MEM, 1);                                       /* 17 */
    p[i++] = bpf_op(BPF_ALU | BPF_XOR | BPF_X, 0);                                       /* 18 */
    p[i++] = bpf_op(BPF_JMP | BPF_JA, 1);                                                /* 19 -> 21 */
    p[i++] = bpf_op(BPF_LD | BPF_IMM, 0);                                                /* 20: no ports */
    p[i++] = bpf_op(BPF_LDX | BPF_W | BPF_MEM, 0);                                       /* 21 */
    p[i++] = bpf_op(BPF_ALU | BPF_XOR | BPF_X, 0);                                       /* 22: h */
    for (int round = 0; round < 2; round++) {                                           /* 23..30 */
        p[i++] = bpf_op(BPF_MISC | BPF_TAX, 0);
        p[i++] = bpf_op(BPF_ALU | BPF_RSH | BPF_K, 16);
        p[i++] = bpf_op(BPF_ALU | BPF_XOR | BPF_X, 0);
        p[i++] = bpf_op(BPF_ALU | BPF_MUL | BPF_K, STEER_MIX_MUL);   /* 32-bit, wraps as in C */
    }
    p[i++] = bpf_op(BPF_MISC | BPF_TAX, 0);                                              /* 31 */
    p[i++] = bpf_op(BPF_ALU | BPF_RSH | BPF_K, 16);                                      /* 32 */
    p[i++] = bpf_op(BPF_ALU | BPF_XOR | BPF_X, 0);                                       /* 33 */
    p[i++] = bpf_op(BPF_ALU | BPF_MOD | BPF_K, n ? n : 1);                               /* 34 */
    p[i++] = bpf_op(BPF_RET | BPF_A, 0);                                                 /* 35 */
    return i;
}
