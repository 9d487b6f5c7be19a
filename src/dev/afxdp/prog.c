/* The afxdp backend's XDP program, assembled here from BPF instructions.
 *
 * Why raw instructions: the program is twenty instructions long, and carrying
 * it as an ELF object would need clang -target bpf at build time and a file
 * to find at run time. The encoding is the kernel's (Documentation/bpf/
 * standardization/instruction-set.rst); the helpers are bpf_map_lookup_elem
 * and bpf_redirect_map, whose flags' low bits name the action taken when the
 * queue has no socket in the XSKMAP (kernel >= 5.3): XDP_PASS, so such a
 * queue's frames reach the kernel.
 *
 * steer=addrs program, r1 = struct xdp_md (data @0, data_end @4,
 * rx_queue_index @16, all u32):
 *     Ethernet header complete?          else PASS
 *     type IPv4: header to daddr there?  key = daddr (frame offset 30)
 *     type ARP:  header to tpa there?    key = tpa   (frame offset 38)
 *     otherwise                          PASS
 *     key in addrs map?                  redirect to xsks[rx_queue_index]
 *                                        else PASS
 * Only ARP whose target is ours is taken: requests for our addresses and the
 * replies to our own requests. The kernel keeps everything else, including
 * ARP for its own addresses on the same interface. */
#include "dev/afxdp/prog.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define XP_MAX_INSNS 40
#define XP_MAX_FIXUPS 12

/* Offsets in the frame and in struct xdp_md. */
#define XP_ETH_TYPE   12
#define XP_ETH_HLEN   14
#define XP_IP_DADDR   (XP_ETH_HLEN + 16)
#define XP_IP_MIN     (XP_ETH_HLEN + 20)
#define XP_ARP_TPA    (XP_ETH_HLEN + 24)
#define XP_ARP_LEN    (XP_ETH_HLEN + 28)
#define XP_MD_DATA     0
#define XP_MD_DATA_END 4
#define XP_MD_RXQ     16

enum xp_label { L_PASS, L_IPV4, L_LOOKUP, L_COUNT };

struct xp_asm {
    struct bpf_insn insn[XP_MAX_INSNS];
    int n;
    int label[L_COUNT];
    struct { int at; enum xp_label to; } fix[XP_MAX_FIXUPS];
    int nfix;
    int overflow;
};

static void xp_emit(struct xp_asm *a, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
    if (a->n >= XP_MAX_INSNS) {
        a->overflow = 1;
        return;
    }
    a->insn[a->n++] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src,
                                        .off = off, .imm = imm};
}

static void xp_here(struct xp_asm *a, enum xp_label l) { a->label[l] = a->n; }

/* A jump whose offset is filled in once the label is placed. */
static void xp_jump(struct xp_asm *a, uint8_t code, uint8_t dst, uint8_t src, int32_t imm,
                    enum xp_label to)
{
    if (a->nfix >= XP_MAX_FIXUPS) {
        a->overflow = 1;
        return;
    }
    a->fix[a->nfix].at = a->n;
    a->fix[a->nfix++].to = to;
    xp_emit(a, code, dst, src, 0, imm);
}

static void xp_resolve(struct xp_asm *a)
{
    for (int i = 0; i < a->nfix; i++)
        a->insn[a->fix[i].at].off = (int16_t)(a->label[a->fix[i].to] - a->fix[i].at - 1);
}

static void xp_mov_reg(struct xp_asm *a, uint8_t dst, uint8_t src)
{
    xp_emit(a, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

static void xp_mov_imm(struct xp_asm *a, uint8_t dst, int32_t imm)
{
    xp_emit(a, BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

static void xp_load(struct xp_asm *a, uint8_t size, uint8_t dst, uint8_t src, int16_t off)
{
    xp_emit(a, BPF_LDX | size | BPF_MEM, dst, src, off, 0);
}

/* The two-slot "load map fd" instruction; the kernel swaps in the map. */
static void xp_map(struct xp_asm *a, uint8_t dst, int fd)
{
    xp_emit(a, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
    xp_emit(a, 0, 0, 0, 0, 0);
}

/* PASS unless data + len <= data_end (r2 = data, r3 = data_end). The
 * verifier needs this comparison before any read of the frame. */
static void xp_need(struct xp_asm *a, int32_t len)
{
    xp_mov_reg(a, BPF_REG_4, BPF_REG_2);
    xp_emit(a, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, len);
    xp_jump(a, BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, 0, L_PASS);
}

/* r0 = bpf_redirect_map(xsks, ctx->rx_queue_index, XDP_PASS); exit.
 * Needs the context in r6. */
static void xp_redirect(struct xp_asm *a, int xsks_fd)
{
    xp_load(a, BPF_W, BPF_REG_2, BPF_REG_6, XP_MD_RXQ);
    xp_map(a, BPF_REG_1, xsks_fd);
    xp_mov_imm(a, BPF_REG_3, XDP_PASS);
    xp_emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect_map);
    xp_emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static void xp_build_addrs(struct xp_asm *a, int addrs_fd, int xsks_fd)
{
    xp_mov_reg(a, BPF_REG_6, BPF_REG_1);
    xp_load(a, BPF_W, BPF_REG_2, BPF_REG_6, XP_MD_DATA);
    xp_load(a, BPF_W, BPF_REG_3, BPF_REG_6, XP_MD_DATA_END);
    xp_need(a, XP_ETH_HLEN);
    /* The type is loaded in host order, so compare with htons(). */
    xp_load(a, BPF_H, BPF_REG_5, BPF_REG_2, XP_ETH_TYPE);
    xp_jump(a, BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_5, 0, htons(ETH_P_IP), L_IPV4);
    xp_jump(a, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, htons(ETH_P_ARP), L_PASS);
    xp_need(a, XP_ARP_LEN);
    xp_load(a, BPF_W, BPF_REG_5, BPF_REG_2, XP_ARP_TPA);
    xp_jump(a, BPF_JMP | BPF_JA, 0, 0, 0, L_LOOKUP);
    xp_here(a, L_IPV4);
    xp_need(a, XP_IP_MIN);
    xp_load(a, BPF_W, BPF_REG_5, BPF_REG_2, XP_IP_DADDR);
    xp_here(a, L_LOOKUP);
    xp_emit(a, BPF_STX | BPF_W | BPF_MEM, BPF_REG_10, BPF_REG_5, -4, 0);
    xp_map(a, BPF_REG_1, addrs_fd);
    xp_mov_reg(a, BPF_REG_2, BPF_REG_10);
    xp_emit(a, BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -4);
    xp_emit(a, BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem);
    xp_jump(a, BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_0, 0, 0, L_PASS);
    xp_redirect(a, xsks_fd);
    xp_here(a, L_PASS);
    xp_mov_imm(a, BPF_REG_0, XDP_PASS);
    xp_emit(a, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

int afxdp_prog_load(enum afxdp_steer steer, int addrs_fd, int xsks_fd, char *log, size_t log_len)
{
    struct xp_asm a;
    memset(&a, 0, sizeof(a));
    if (steer == AFXDP_STEER_ALL) {
        xp_mov_reg(&a, BPF_REG_6, BPF_REG_1);
        xp_redirect(&a, xsks_fd);
    } else {
        xp_build_addrs(&a, addrs_fd, xsks_fd);
    }
    if (a.overflow)
        return -1;
    xp_resolve(&a);
    if (log && log_len)
        log[0] = '\0';
    int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "ustack_xdp", "GPL", a.insn, (size_t)a.n, NULL);
    if (fd >= 0 || !log || log_len < 2)
        return fd;
    /* Load again with the verifier's log only to explain the failure: a log
     * too small for a successful load's output would itself fail it. */
    int err = errno;
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = (uint32_t)log_len,
                .log_level = 1);
    int again = bpf_prog_load(BPF_PROG_TYPE_XDP, "ustack_xdp", "GPL", a.insn, (size_t)a.n, &opts);
    if (again >= 0)
        close(again);
    errno = err;
    return -1;
}
