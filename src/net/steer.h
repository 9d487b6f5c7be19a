/* Flow steering between workers: which worker owns a packet.
 *
 * The hash is ustack's own and uses only 32-bit xor, shift, multiply and
 * modulo, so that a classic BPF program (AF_PACKET PACKET_FANOUT_CBPF)
 * computes exactly the same value in the kernel and a client connect can
 * pick a source port that lands on its own worker:
 *
 *     h  = saddr ^ daddr ^ (sport ^ dport)         (ports in the low 16 bits)
 *     2x { h ^= h >> 16;  h *= 0x45d9f3b; }        (mod 2^32)
 *     h ^= h >> 16;  worker = h % nworkers
 *
 * The multiply rounds matter: with a plain xor-fold, consecutive even client
 * ports (Linux's connect() steps by 2) mostly landed on one worker.
 *
 * It is symmetric (swapping source and destination gives the same value), so
 * a packet and its reply, and the header quoted inside an ICMP error, all
 * hash alike. Fragments hash with both ports 0 (a non-first fragment has no
 * ports; all fragments of a datagram then meet on one worker, which
 * reassembles and hands the whole datagram to the flow's owner).
 *
 * Not keyed: a peer choosing its ports can aim all its flows at one worker.
 * That unbalances load but breaks nothing; per-worker limits still hold. */
#ifndef UST_NET_STEER_H
#define UST_NET_STEER_H

#include <stdint.h>

#define STEER_ANY (-1)   /* no flow (echo, other protocols, malformed): keep it */
#define STEER_ALL (-2)   /* every worker needs a copy (ARP)                     */

/* All in host byte order. */
uint32_t steer_hash(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport);
static inline uint32_t steer_pick(uint32_t hash, uint32_t nworkers) { return hash % nworkers; }
/* The odd multiplier of the mixing rounds (shared by the C hash and cBPF). */
#define STEER_MIX_MUL 0x45d9f3bu

/* Owner of an IPv4 datagram at ip (len bytes): a worker index, or STEER_ANY. */
int steer_ipv4_owner(const uint8_t *ip, uint32_t len, uint32_t nworkers);
/* Owner of a received frame: as above, or STEER_ALL for ARP. l3_only: the
 * frame is a bare IPv4 packet (no Ethernet header). */
int steer_frame_owner(const uint8_t *frame, uint32_t len, int l3_only, uint32_t nworkers);

/* The classic BPF program for PACKET_FANOUT_CBPF computing steer_pick on an
 * Ethernet frame, for nworkers sockets. prog must hold STEER_BPF_MAX
 * instructions, laid out as struct sock_filter (u16 code, u8 jt, u8 jf,
 * u32 k). Returns the number of instructions. Non-IPv4 frames (ARP) go to
 * worker 0, which copies ARP to the others. */
#define STEER_BPF_MAX 40
struct steer_bpf_insn {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
};
int steer_bpf_build(struct steer_bpf_insn *prog, uint32_t nworkers);

#endif
