#include "tcpfx.h"

#include "wire/arp.h"
#include "wire/checksum.h"
#include "wire/eth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static void tfx_on_event(struct ust_tcp *c, unsigned ev, void *arg)
{
    struct tfx *x = arg;
    (void)c;
    x->events |= ev;
}

int tfx_open(struct tfx *x, const char *const *args)
{
    memset(x, 0, sizeof(*x));
    if (fx_open_args(&x->fx, args) < 0)
        return -1;
    fx_learn_peer(&x->fx);
    x->win = 65535;
    x->tsval = 5000;
    return 0;
}

static void tfx_syn_opts(struct tcp_opts *o, unsigned opts, uint16_t mss, uint8_t ws, uint32_t tsval)
{
    memset(o, 0, sizeof(*o));
    o->has_mss = (opts & TFX_MSS) != 0;
    o->mss = mss;
    o->has_ws = (opts & TFX_WS) != 0;
    o->wscale = ws;
    o->sack_ok = (opts & TFX_SACK) != 0;
    o->has_ts = (opts & TFX_TS) != 0;
    o->ts_val = tsval;
}

int tfx_passive(struct tfx *x, unsigned opts, uint16_t mss, uint8_t ws)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(TFX_US_PORT)};
    x->l = ust_tcp_listen(x->fx.s, (struct sockaddr *)&a, sizeof(a), 16, tfx_on_event, x);
    if (!x->l)
        return -1;
    x->lport = TFX_US_PORT;
    x->rport = TFX_PEER_PORT;
    struct tcp_repr syn = {.sport = x->rport, .dport = x->lport, .seq = TFX_PEER_ISN, .flags = TCP_SYN,
                           .win = 65535};
    tfx_syn_opts(&syn.opt, opts, mss, ws, x->tsval);
    fx_tcp_send(&x->fx, &syn, NULL, 0);
    if (tfx_recv(x) < 0 || x->out.h.flags != (TCP_SYN | TCP_ACK) || x->out.h.ack != TFX_PEER_ISN + 1)
        return -1;
    x->iss = x->out.h.seq;
    x->seq = TFX_PEER_ISN + 1;
    x->ack = x->iss + 1;
    x->ts = (opts & TFX_TS) != 0;
    x->peer_ws = (opts & TFX_WS) ? ws : 0;
    tfx_send(x, TCP_ACK, NULL, 0);
    x->c = ust_tcp_accept(x->l);
    if (!x->c)
        return -1;
    ust_tcp_set_callback(x->c, tfx_on_event, x);
    return 0;
}

int tfx_active(struct tfx *x, unsigned opts, uint16_t mss, uint8_t ws)
{
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    x->c = ust_tcp_connect(x->fx.s, (struct sockaddr *)&dst, sizeof(dst), NULL, 0, tfx_on_event, x);
    if (!x->c)
        return -1;
    fx_poll(&x->fx);
    if (tfx_recv(x) < 0 || x->out.h.flags != TCP_SYN)
        return -1;
    x->iss = x->out.h.seq;
    x->lport = x->out.h.sport;
    x->rport = 80;
    x->seq = TFX_PEER_ISN;
    x->ack = x->iss + 1;
    struct tcp_repr sa = tfx_hdr(x, TCP_SYN | TCP_ACK);
    tfx_syn_opts(&sa.opt, opts, mss, ws, x->tsval);
    sa.opt.ts_ecr = x->ts_recent;
    sa.win = 65535;
    tfx_send_hdr(x, &sa, NULL, 0);
    x->seq++;
    x->ts = (opts & TFX_TS) != 0;
    x->peer_ws = (opts & TFX_WS) ? ws : 0;
    if (tfx_recv(x) < 0 || x->out.h.flags != TCP_ACK || x->out.h.ack != x->seq)
        return -1;
    return 0;
}

struct tcp_repr tfx_hdr(struct tfx *x, uint8_t flags)
{
    struct tcp_repr h = {.sport = x->rport, .dport = x->lport, .seq = x->seq, .ack = x->ack, .flags = flags,
                         .win = x->win};
    if (x->ts) {
        h.opt.has_ts = 1;
        h.opt.ts_val = x->tsval;
        h.opt.ts_ecr = x->ts_recent;
    }
    return h;
}

void tfx_send_hdr(struct tfx *x, const struct tcp_repr *h, const void *data, size_t len)
{
    static uint8_t pattern[65536];
    if (!data) {
        for (size_t i = 0; i < len && i < sizeof(pattern); i++)
            pattern[i] = (uint8_t)(h->seq + i);
        data = pattern;
    }
    fx_tcp_send(&x->fx, h, data, len);
}

void tfx_send(struct tfx *x, uint8_t flags, const void *data, size_t len)
{
    struct tcp_repr h = tfx_hdr(x, flags);
    tfx_send_hdr(x, &h, data, len);
    x->seq += (uint32_t)len + !!(flags & TCP_SYN) + !!(flags & TCP_FIN);
}

/* The peer answers ARP requests (neighbour entries expire during long
 * virtual waits) and parses the next TCP segment. */
static int tfx_next_tcp(struct tfx *x)
{
    static uint8_t f[65536];
    size_t n;
    while ((n = fx_recv(&x->fx, f, sizeof(f)))) {
        struct eth_repr e;
        struct ipv4_repr ip;
        struct arp_repr a;
        if (eth_parse(f, n, &e) < 0)
            continue;
        if (e.type == ETHERTYPE_ARP) {
            if (arp_parse(f + ETH_HDR_LEN, n - ETH_HDR_LEN, &a) >= 0 && a.op == ARP_OP_REQUEST && a.tpa == FX_PEER_IP) {
                uint8_t r[64];
                fx_send(&x->fx, r, fx_build_arp(r, ARP_OP_REPLY, FX_PEER_IP, fx_peer_mac, FX_US_IP));
            }
            continue;
        }
        int hl = e.type == ETHERTYPE_IPV4 ? ipv4_parse(f + ETH_HDR_LEN, n - ETH_HDR_LEN, &ip) : -1;
        if (hl < 0 || ip.proto != IPPROTO_TCP_)
            continue;
        size_t l4 = ip.total_len - (size_t)hl;
        const uint8_t *t = f + ETH_HDR_LEN + hl;
        if (tcp_parse(t, l4, csum_pseudo_ipv4(ip.src, ip.dst, IPPROTO_TCP_, (uint16_t)l4), 1, &x->out.h) < 0)
            return -2;   /* the stack sent a bad segment */
        x->out.len = l4 - x->out.h.hdr_len;
        if (x->out.len > sizeof(x->buf))
            x->out.len = sizeof(x->buf);
        memcpy(x->buf, t + x->out.h.hdr_len, x->out.len);
        x->out.data = x->buf;
        return 0;
    }
    return -1;
}

int tfx_recv(struct tfx *x)
{
    fx_poll(&x->fx);   /* flush what an API call queued */
    if (tfx_next_tcp(x) != 0)
        return -1;
    if (x->out.h.opt.has_ts)
        x->ts_recent = x->out.h.opt.ts_val;
    return 0;
}

int tfx_quiet(struct tfx *x)
{
    if (tfx_recv(x) < 0)
        return 1;
    fprintf(stderr, "  unexpected segment: flags %#x seq %u ack %u len %zu\n", x->out.h.flags, x->out.h.seq,
            x->out.h.ack, x->out.len);
    return 0;
}

int tfx_expect(struct tfx *x, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len)
{
    if (tfx_recv(x) < 0) {
        fprintf(stderr, "  expected flags %#x seq %u ack %u len %u: nothing sent\n", flags, seq, ack, len);
        return -1;
    }
    const struct tcp_repr *h = &x->out.h;
    if (h->flags != flags || h->seq != seq || ((flags & TCP_ACK) && h->ack != ack) || x->out.len != len) {
        fprintf(stderr, "  expected flags %#x seq %u ack %u len %u, got flags %#x seq %u ack %u len %zu\n", flags,
                seq, ack, len, h->flags, h->seq, h->ack, x->out.len);
        return -1;
    }
    return 0;
}

long tfx_app_send(struct tfx *x, size_t n)
{
    static uint8_t data[1 << 20];
    if (n > sizeof(data))
        n = sizeof(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)i;
    long r = (long)ust_tcp_send(x->c, data, n);
    fx_poll(&x->fx);
    return r;
}

int tfx_collect(struct tfx *x, uint32_t *seqs, uint32_t *lens, int max)
{
    int n = 0;
    while (tfx_recv(x) == 0) {
        if (n < max) {
            seqs[n] = x->out.h.seq;
            lens[n] = (uint32_t)x->out.len;
        }
        n++;
    }
    return n;
}

void tfx_ack(struct tfx *x, uint32_t ack)
{
    x->ack = ack;
    tfx_send(x, TCP_ACK, NULL, 0);
}

void tfx_advance(struct tfx *x, uint64_t ns) { fx_advance(&x->fx, ns); }

uint64_t tfx_wait_seg(struct tfx *x, uint64_t max_ns)
{
    uint64_t start = x->fx.now;
    while (x->fx.now - start < max_ns) {
        fx_advance(&x->fx, TFX_MS);
        if (tfx_recv(x) == 0)
            return x->fx.now - start;
    }
    return UINT64_MAX;
}

void tfx_advance_coarse(struct tfx *x, uint64_t ns, uint64_t step)
{
    uint64_t end = x->fx.now + ns;
    while (x->fx.now < end) {
        x->fx.now += end - x->fx.now < step ? end - x->fx.now : step;
        fx_poll(&x->fx);
    }
}

struct tcb *tfx_tcb(struct tfx *x) { return (struct tcb *)(void *)x->c; }

int tfx_close(struct tfx *x)
{
    if (x->c)
        ust_tcp_abort(x->c);
    if (x->l)
        ust_tcp_close(x->l);
    x->c = x->l = NULL;
    /* Neighbour entries expire (or fail) during long virtual waits: tell
     * the stack the peer's MAC again, so nothing still waits for ARP
     * resolution at the leak check. */
    while (tfx_recv(x) == 0)
        ;
    fx_learn_peer(&x->fx);
    return fx_close(&x->fx);
}
