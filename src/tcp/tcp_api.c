/* The minimal TCP API of ustack.h: what the socket layer wraps. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "net/sockaddr.h"
#include "net/stack.h"
#include "tcp/tcp.h"
#include "tcp/tcp_isn.h"

#define TCB(c) ((struct tcb *)(void *)(c))

static int sockaddr_to_addr(const struct sockaddr *sa, socklen_t len, union ip_addr *a, uint16_t *port)
{
    uint32_t v4;
    if (sockaddr_in_parse(sa, len, &v4, port) < 0)
        return -1;
    *a = addr_from_v4(v4);
    return 0;
}

static int addr_to_sockaddr(const union ip_addr *a, uint16_t port, struct sockaddr *sa, socklen_t *len)
{
    if (!sa || !len || *len < (socklen_t)sizeof(struct sockaddr_in)) {
        errno = EINVAL;
        return -1;
    }
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    in.sin_addr.s_addr = htonl(addr_v4(a));
    memcpy(sa, &in, sizeof(in));
    *len = sizeof(in);
    return 0;
}

struct ust_tcp *ust_tcp_listen(struct ust_stack *s, const struct sockaddr *addr, socklen_t len, int backlog,
                               ust_tcp_cb cb, void *arg)
{
    union ip_addr a;
    uint16_t port;
    if (sockaddr_to_addr(addr, len, &a, &port) < 0)
        return NULL;
    if (port == 0 || (!addr_is_any(&a) && !ipv4_is_local(s, addr_v4(&a)))) {
        errno = port ? EADDRNOTAVAIL : EINVAL;
        return NULL;
    }
    struct tcb *l = tcb_alloc(s);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    tcp_init_tcb(s, l);
    l->tuple.laddr = a;
    l->tuple.lport = port;
    l->backlog = (uint16_t)(backlog <= 0 ? 1 : backlog > 65535 ? 65535 : backlog);
    l->flags |= TF_ACCEPTED;
    l->cb = cb;
    l->cb_arg = arg;
    int rc = tcb_listener_insert(s, l);
    if (rc < 0) {
        tcb_free(s, l);
        errno = -rc;
        return NULL;
    }
    tcp_set_state(l, TCP_LISTEN);
    return (struct ust_tcp *)l;
}

struct ust_tcp *ust_tcp_accept(struct ust_tcp *listener)
{
    struct tcb *l = TCB(listener);
    if (l->state != TCP_LISTEN) {
        errno = EINVAL;
        return NULL;
    }
    struct tcb *t = l->acceptq_head;
    if (!t) {
        errno = EAGAIN;
        return NULL;
    }
    l->acceptq_head = t->accept_next;
    if (!l->acceptq_head)
        l->acceptq_tail = NULL;
    l->acceptq_len--;
    t->accept_next = NULL;
    t->listener = NULL;
    t->flags |= TF_ACCEPTED;
    /* Anything that arrived before the accept is waiting to be read. */
    if (t->rcv_queued || (t->flags & TF_RCV_FIN) || t->state == TCP_CLOSED)
        tcp_notify(t, UST_TCP_READABLE);
    return (struct ust_tcp *)t;
}

struct ust_tcp *ust_tcp_connect(struct ust_stack *s, const struct sockaddr *dst, socklen_t dstlen,
                                const struct sockaddr *src, socklen_t srclen, ust_tcp_cb cb, void *arg)
{
    struct tcp_tuple tuple;
    memset(&tuple, 0, sizeof(tuple));
    if (sockaddr_to_addr(dst, dstlen, &tuple.raddr, &tuple.rport) < 0)
        return NULL;
    if (src && sockaddr_to_addr(src, srclen, &tuple.laddr, &tuple.lport) < 0)
        return NULL;
    struct ip_route rt;
    if (ipv4_route(s, addr_v4(&tuple.raddr), &rt) < 0 || rt.broadcast || tuple.rport == 0) {
        errno = tuple.rport ? ENETUNREACH : EINVAL;
        return NULL;
    }
    if (addr_is_any(&tuple.laddr))
        tuple.laddr = addr_from_v4(rt.src);
    uint32_t iss_floor = 0;
    int rc = tuple.lport ? (tcp_tuple_free(s, &tuple, &iss_floor) ? 0 : -EADDRINUSE)
                         : tcp_pick_port(s, &tuple, &iss_floor);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    struct tcb *t = tcb_alloc(s);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    tcp_init_tcb(s, t);
    t->tuple = tuple;
    t->ts_offset = tcp_ts_offset(s, &tuple);
    t->flags |= TF_ACCEPTED;
    t->cb = cb;
    t->cb_arg = arg;
    t->rcv_wscale = TCP_RCV_WSCALE;
    t->iss = tcp_isn(&s->key, &tuple, s->now);
    if (iss_floor && seq_lt(t->iss, iss_floor))
        t->iss = iss_floor;
    t->snd_una = t->snd_nxt = t->iss;
    t->recover = t->iss;
    tcp_update_mss(t, s->ip.mtu);
    tcp_cc_init(&t->cc, &tcp_cc_cubic, t->mss);
    tcb_hash_insert(s, t);
    tcp_set_state(t, TCP_SYN_SENT);
    CTR_INC(&s->ctr, tcp_active_opens);
    tcp_send_syn(t);
    tcp_arm_rexmt(t);
    return (struct ust_tcp *)t;
}

void ust_tcp_set_callback(struct ust_tcp *c, ust_tcp_cb cb, void *arg)
{
    TCB(c)->cb = cb;
    TCB(c)->cb_arg = arg;
}

static int tcp_send_check(const struct tcb *t)
{
    if (t->error)
        return t->error == ECONNRESET ? ECONNRESET : EPIPE;
    if (t->state == TCP_SYN_SENT || t->state == TCP_SYN_RECEIVED)
        return EAGAIN;
    if (t->state != TCP_ESTABLISHED && t->state != TCP_CLOSE_WAIT)
        return t->state == TCP_LISTEN ? ENOTCONN : EPIPE;
    if (t->flags & TF_FIN_QUEUED)
        return EPIPE;
    return 0;
}

size_t ust_tcp_sendable(const struct ust_tcp *c)
{
    const struct tcb *t = TCB(c);
    if (tcp_send_check(t))
        return 0;
    return t->snd_queued < t->sndbuf ? t->sndbuf - t->snd_queued : 0;
}

/* Append to the send queue: fill the last unsent segment up to the MSS,
 * then new segments (tcp_seg.h). */
static size_t tcp_append(struct tcb *t, const uint8_t *buf, size_t len)
{
    struct ust_stack *s = t->stack;
    size_t done = 0;
    uint32_t seq = t->snd_una + t->snd_queued;
    while (done < len && t->snd_queued < t->sndbuf) {
        struct pkt *tail = t->sndq.tail;
        if (!tail || tseg_sent(tail) || tail->len >= t->mss) {
            tail = pkt_alloc(&s->pool);
            if (!tail) {
                CTR_INC(&s->ctr, pool_empty);
                break;
            }
            tail->aux = seq;
            pktq_push(&t->sndq, tail);
            if (!t->snd_unsent)
                t->snd_unsent = tail;
        }
        size_t room = t->mss - tail->len;
        size_t want = len - done < room ? len - done : room;
        if (want > t->sndbuf - t->snd_queued)
            want = t->sndbuf - t->snd_queued;
        memcpy(pkt_put(tail, (uint16_t)want), buf + done, want);
        done += want;
        seq += (uint32_t)want;
        t->snd_queued += (uint32_t)want;
    }
    return done;
}

/* Autotuning shares one budget per stack, as Linux's tcp_mem does: the
 * payload a quarter of the packet pool can hold (the rest backs the default
 * buffers, the device rings and everything else). Buffers only promise memory; the
 * pool is what backs them, and a promise far beyond it ends in a frozen
 * window for everyone (DESIGN: degrade by shrinking windows, never drop). */
static uint64_t tcp_tune_budget(const struct ust_stack *s)
{
    uint32_t per_pkt = s->ip.mtu > 40 ? s->ip.mtu - 40 : 536;
    return (uint64_t)(s->pool.count / 4) * per_pkt;
}

static uint32_t tcp_tune_extra(const struct tcb *t, uint32_t size, uint32_t dflt, uint32_t lock)
{
    return !(t->flags & lock) && size > dflt ? size - dflt : 0;
}

static void tcp_tune_give_back(struct tcp_stack *ts, uint64_t extra)
{
    ts->tune_granted = ts->tune_granted > extra ? ts->tune_granted - extra : 0;
}

void tcp_tune_release(struct tcb *t)
{
    struct tcp_stack *ts = &t->stack->tcp;
    tcp_tune_give_back(ts, tcp_tune_extra(t, t->rcvbuf, ts->rcvbuf_default, TF_RCVBUF_LOCK) +
                               tcp_tune_extra(t, t->sndbuf, ts->sndbuf_default, TF_SNDBUF_LOCK));
}

/* Grow *size toward want (at most max), within what the budget has left. */
static void tcp_tune_grow(struct tcb *t, uint32_t *size, uint64_t want, uint32_t max)
{
    struct ust_stack *s = t->stack;
    if (want > max)
        want = max;
    if (want <= *size)
        return;
    uint64_t budget = tcp_tune_budget(s), used = s->tcp.tune_granted;
    uint64_t add = want - *size;
    if (used + add > budget)
        add = budget > used ? budget - used : 0;
    *size += (uint32_t)add;
    s->tcp.tune_granted += add;
}

/* A size set by hand (SO_SNDBUF/SO_RCVBUF) is kept, as on Linux: what
 * autotuning had granted goes back to the budget and it stops for *size. */
static void tcp_buf_fix(struct tcb *t, uint32_t *size, uint32_t dflt, uint32_t lock, int value)
{
    tcp_tune_give_back(&t->stack->tcp, tcp_tune_extra(t, *size, dflt, lock));
    *size = value < 4096 ? 4096 : (uint32_t)value;
    t->flags |= lock;
}

/* Send-buffer autotuning (as Linux's tcp_sndbuf_expand): room for twice the
 * congestion window, so the application can queue the next window while
 * one is in flight; at most --tcp-sndbuf-max. */
static void tcp_sndbuf_expand(struct tcb *t)
{
    if (!(t->flags & TF_SNDBUF_LOCK))
        tcp_tune_grow(t, &t->sndbuf, 2ull * t->cc.cwnd, t->stack->tcp.sndbuf_max);
}

ssize_t ust_tcp_send(struct ust_tcp *c, const void *buf, size_t len)
{
    struct tcb *t = TCB(c);
    int err = tcp_send_check(t);
    if (err) {
        errno = err;
        return -1;
    }
    if (t->snd_queued + len > t->sndbuf)
        tcp_sndbuf_expand(t);
    size_t n = tcp_append(t, buf, len);
    if (n < len || t->snd_queued >= t->sndbuf)
        t->flags |= TF_SND_BLOCKED;
    if (n == 0) {
        errno = EAGAIN;
        return -1;
    }
    if (t->snd_una == t->snd_nxt && t->stack->now - t->last_send > (uint64_t)rtt_timeout_us(&t->rtt) * 1000ULL)
        tcp_cc_after_idle(&t->cc);   /* RFC 5681 4.1 */
    tcp_output(t);
    return (ssize_t)n;
}

size_t ust_tcp_readable(const struct ust_tcp *c) { return TCB(c)->rcv_queued; }

/* After the application freed buffer space: advertise it if the window
 * grows by at least two segments or half the buffer (RFC 9293 3.8.6.2.2). */
static void tcp_maybe_window_update(struct tcb *t)
{
    if (t->state != TCP_ESTABLISHED && t->state != TCP_FIN_WAIT_1 && t->state != TCP_FIN_WAIT_2)
        return;
    uint32_t space = t->rcvbuf > t->rcv_mem ? t->rcvbuf - t->rcv_mem : 0;
    uint32_t max_wnd = 65535u << t->rcv_wscale;
    if (space > max_wnd)
        space = max_wnd;
    uint32_t adv = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
    uint32_t step = 2u * t->mss < t->rcvbuf / 2 ? 2u * t->mss : t->rcvbuf / 2;
    if (space >= adv + step) {
        t->flags |= TF_ACK_NOW;
        tcp_output(t);
    }
}

/* Receive-buffer autotuning, dynamic right-sizing as Linux's
 * tcp_rcv_space_adjust does it: once per RTT (at least TCP_DRS_MIN_US)
 * compare what the application read with the buffer. A reader that took
 * more than half the buffer in that time was held back by the window: give
 * it twice what it read, up to --tcp-rcvbuf-max. Idle and slow connections
 * keep the default, so holding millions costs no more. */
#define TCP_DRS_MIN_US 1000u

static void tcp_rcvbuf_adjust(struct tcb *t)
{
    if (t->flags & TF_RCVBUF_LOCK)
        return;
    uint32_t now_us = (uint32_t)(t->stack->now / 1000u) | 1u;   /* 0 means "not started" */
    uint32_t read_seq = t->rcv_nxt - t->rcv_queued;
    if (!t->drs_time_us) {
        t->drs_time_us = now_us;
        t->drs_seq = read_seq;
        return;
    }
    uint32_t span = t->rtt.srtt_us > TCP_DRS_MIN_US ? t->rtt.srtt_us : TCP_DRS_MIN_US;
    if (now_us - t->drs_time_us < span)
        return;
    tcp_tune_grow(t, &t->rcvbuf, 2ull * (read_seq - t->drs_seq), t->stack->tcp.rcvbuf_max);
    t->drs_time_us = now_us;
    t->drs_seq = read_seq;
}

ssize_t ust_tcp_recv(struct ust_tcp *c, void *buf, size_t len)
{
    struct tcb *t = TCB(c);
    size_t done = 0;
    struct pkt *p;
    while (done < len && (p = t->rcvq.head)) {
        size_t n = len - done < p->len ? len - done : p->len;
        memcpy((uint8_t *)buf + done, pkt_data(p), n);
        done += n;
        pkt_pull(p, (uint16_t)n);
        if (p->len == 0)
            pkt_free(pktq_pop(&t->rcvq));
    }
    t->rcv_queued -= (uint32_t)done;
    t->rcv_mem -= (uint32_t)done;
    if (done) {
        tcp_rcvbuf_adjust(t);
        tcp_maybe_window_update(t);
        return (ssize_t)done;
    }
    if (t->error == ECONNRESET) {
        errno = ECONNRESET;
        return -1;
    }
    if ((t->flags & TF_RCV_FIN) || t->state == TCP_CLOSED)
        return 0;
    errno = (t->state == TCP_LISTEN || t->state == TCP_SYN_SENT) ? ENOTCONN : EAGAIN;
    return -1;
}

/* RFC 9293 3.10.4 CLOSE in each state: queue our FIN behind the data. */
static void tcp_queue_fin(struct tcb *t)
{
    if (t->flags & TF_FIN_QUEUED)
        return;
    if (t->state == TCP_ESTABLISHED || t->state == TCP_SYN_RECEIVED)
        tcp_set_state(t, TCP_FIN_WAIT_1);
    else if (t->state == TCP_CLOSE_WAIT)
        tcp_set_state(t, TCP_LAST_ACK);
    else
        return;
    t->flags |= TF_FIN_QUEUED;
    tcp_output(t);
}

int ust_tcp_shutdown(struct ust_tcp *c, int how)
{
    struct tcb *t = TCB(c);
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
        errno = EINVAL;
        return -1;
    }
    if (t->state == TCP_LISTEN || t->state == TCP_SYN_SENT || t->state == TCP_CLOSED) {
        errno = ENOTCONN;
        return -1;
    }
    if (how != SHUT_WR) {
        t->flags |= TF_RCV_SHUT;
        pktq_free_all(&t->rcvq);
        t->rcv_mem -= t->rcv_queued;
        t->rcv_queued = 0;
    }
    if (how != SHUT_RD)
        tcp_queue_fin(t);
    return 0;
}

static void tcp_close_listener(struct tcb *l)
{
    struct ust_stack *s = l->stack;
    tcb_listener_remove(s, l);
    struct tcb *c;
    while ((c = l->acceptq_head)) {
        l->acceptq_head = c->accept_next;
        l->acceptq_len--;
        c->listener = NULL;
        tcp_send_reset(c);
        tcp_done(c);
    }
    l->acceptq_tail = NULL;
    l->flags |= TF_APP_CLOSED | TF_LISTEN_GONE;
    l->state = TCP_CLOSED;
    /* Children still in SYN-RECEIVED point at us; they find us gone and
     * reset themselves. The listener is freed when the last one leaves. */
    if (!l->syn_pending)
        tcb_free(s, l);
}

void ust_tcp_abort(struct ust_tcp *c)
{
    struct tcb *t = TCB(c);
    if (t->state == TCP_LISTEN) {
        tcp_close_listener(t);
        return;
    }
    t->flags |= TF_APP_CLOSED;
    if (t->state >= TCP_SYN_RECEIVED && t->state != TCP_TIME_WAIT)
        tcp_send_reset(t);
    if (t->state == TCP_CLOSED) {
        tcp_free_buffers(t);
        tcb_free(t->stack, t);
    } else {
        tcp_done(t);
    }
}

int ust_tcp_close(struct ust_tcp *c)
{
    struct tcb *t = TCB(c);
    if (t->state == TCP_LISTEN) {
        tcp_close_listener(t);
        return 0;
    }
    /* Unread data or linger 0: abort (RFC 9293 3.10.4 leaves it open; Linux
     * resets so the peer learns the data was not consumed). */
    if ((t->flags & TF_LINGER0) || t->rcv_queued || t->state == TCP_SYN_SENT || t->state == TCP_CLOSED) {
        ust_tcp_abort(c);
        return 0;
    }
    t->flags |= TF_APP_CLOSED;
    t->cb = NULL;
    tcp_queue_fin(t);
    if (t->state == TCP_FIN_WAIT_2)
        tcp_timer_set(t, TT_KEEPALIVE, t->stack->now + TCP_FIN_WAIT2_NS);
    return 0;
}

int ust_tcp_error(struct ust_tcp *c)
{
    struct tcb *t = TCB(c);
    int e = t->error ? t->error : t->soft_error;
    t->soft_error = 0;
    if (t->state != TCP_CLOSED)
        t->error = 0;
    return e;
}

const char *ust_tcp_state(const struct ust_tcp *c) { return tcp_state_name(TCB(c)->state); }

int ust_tcp_getsockname(const struct ust_tcp *c, struct sockaddr *addr, socklen_t *len)
{
    return addr_to_sockaddr(&TCB(c)->tuple.laddr, TCB(c)->tuple.lport, addr, len);
}

int ust_tcp_getpeername(const struct ust_tcp *c, struct sockaddr *addr, socklen_t *len)
{
    const struct tcb *t = TCB(c);
    if (t->state == TCP_LISTEN || t->state == TCP_CLOSED) {
        errno = ENOTCONN;
        return -1;
    }
    return addr_to_sockaddr(&t->tuple.raddr, t->tuple.rport, addr, len);
}

static void tcp_set_flag(struct tcb *t, uint32_t flag, int on)
{
    if (on)
        t->flags |= flag;
    else
        t->flags &= ~flag;
}

int ust_tcp_setopt(struct ust_tcp *c, enum ust_tcp_opt opt, int value)
{
    struct tcb *t = TCB(c);
    if (value < 0) {
        errno = EINVAL;
        return -1;
    }
    switch (opt) {
    case UST_TCP_OPT_NODELAY:
        tcp_set_flag(t, TF_NODELAY, value);
        if (value && t->state >= TCP_ESTABLISHED)
            tcp_output(t);
        return 0;
    case UST_TCP_OPT_KEEPALIVE:
        tcp_set_flag(t, TF_KEEPALIVE, value);
        if (value && t->state == TCP_ESTABLISHED)
            tcp_arm_keepalive(t);
        return 0;
    case UST_TCP_OPT_KEEPIDLE: t->keep_idle_s = value ? (uint32_t)value : 1; return 0;
    case UST_TCP_OPT_KEEPINTVL: t->keep_intvl_s = value ? (uint32_t)value : 1; return 0;
    case UST_TCP_OPT_KEEPCNT: t->keep_cnt = (uint8_t)(value > 255 ? 255 : value ? value : 1); return 0;
    case UST_TCP_OPT_LINGER0: tcp_set_flag(t, TF_LINGER0, value); return 0;
    case UST_TCP_OPT_SNDBUF:
        tcp_buf_fix(t, &t->sndbuf, t->stack->tcp.sndbuf_default, TF_SNDBUF_LOCK, value);
        return 0;
    case UST_TCP_OPT_RCVBUF:
        tcp_buf_fix(t, &t->rcvbuf, t->stack->tcp.rcvbuf_default, TF_RCVBUF_LOCK, value);
        return 0;
    case UST_TCP_OPT_MAXSEG:
        if (value && (value < 88 || value > 65495))
            break;
        t->mss_clamp = (uint16_t)value;
        if (t->state >= TCP_ESTABLISHED)
            tcp_update_mss(t, t->stack->ip.mtu);
        return 0;
    case UST_TCP_OPT_CC_NEWRENO:
        tcp_set_flag(t, TF_NEWRENO, value);
        if (t->state >= TCP_SYN_SENT)
            t->cc.ops = value ? &tcp_cc_newreno : &tcp_cc_cubic;
        return 0;
    }
    errno = EINVAL;
    return -1;
}

int ust_tcp_getopt(const struct ust_tcp *c, enum ust_tcp_opt opt, int *value)
{
    const struct tcb *t = TCB(c);
    switch (opt) {
    case UST_TCP_OPT_NODELAY: *value = !!(t->flags & TF_NODELAY); return 0;
    case UST_TCP_OPT_KEEPALIVE: *value = !!(t->flags & TF_KEEPALIVE); return 0;
    case UST_TCP_OPT_KEEPIDLE: *value = (int)t->keep_idle_s; return 0;
    case UST_TCP_OPT_KEEPINTVL: *value = (int)t->keep_intvl_s; return 0;
    case UST_TCP_OPT_KEEPCNT: *value = t->keep_cnt; return 0;
    case UST_TCP_OPT_LINGER0: *value = !!(t->flags & TF_LINGER0); return 0;
    case UST_TCP_OPT_SNDBUF: *value = (int)t->sndbuf; return 0;
    case UST_TCP_OPT_RCVBUF: *value = (int)t->rcvbuf; return 0;
    case UST_TCP_OPT_MAXSEG: *value = t->state >= TCP_ESTABLISHED ? t->mss : t->mss_clamp; return 0;
    case UST_TCP_OPT_CC_NEWRENO: *value = !!(t->flags & TF_NEWRENO); return 0;
    }
    errno = EINVAL;
    return -1;
}
