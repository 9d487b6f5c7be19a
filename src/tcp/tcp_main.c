/* TCP set-up and teardown for a stack. */
#include "net/stack.h"
#include "tcp/tcp.h"

int tcp_init(struct ust_stack *s)
{
    struct tcp_stack *ts = &s->tcp;
    const struct ust_config *c = &s->cfg;
    if (tcp_tables_init(s, c->tcp_conns) < 0)
        return -1;
    if (tw_init(&ts->tw, c->tcp_tw_max, (uint64_t)c->tcp_time_wait_s * 1000000000ULL) < 0)
        return -1;
    timer_init(&ts->tw_timer, NULL);
    ts->sndbuf_default = c->tcp_sndbuf;
    ts->rcvbuf_default = c->tcp_rcvbuf;
    ts->sndbuf_max = c->tcp_sndbuf_max > c->tcp_sndbuf ? c->tcp_sndbuf_max : c->tcp_sndbuf;
    ts->rcvbuf_max = c->tcp_rcvbuf_max > c->tcp_rcvbuf ? c->tcp_rcvbuf_max : c->tcp_rcvbuf;
    ts->syn_backlog = c->tcp_syn_backlog;
    ts->ooo_max = c->tcp_ooo_max;
    rand_bytes(&ts->port_counter, sizeof(ts->port_counter));
    return 0;
}

void tcp_fini(struct ust_stack *s)
{
    struct tcp_stack *ts = &s->tcp;
    /* Release every buffer still held by a connection, and take its timer
     * off the wheel: the wheel outlives the TCB array (other modules' timers
     * may be linked through ours). */
    for (uint32_t i = 0; ts->tcbs && i < ts->bump; i++) {
        struct tcb *t = &ts->tcbs[i];
        if (t->state != TCP_CLOSED || t->sndq.len || t->rcvq.len || t->oooq.len)
            tcp_free_buffers(t);
        if (timer_pending(&t->timer))
            wheel_del(&s->wheel, &t->timer);
    }
    wheel_del(&s->wheel, &ts->tw_timer);
    tw_fini(&ts->tw);
    tcp_tables_fini(s);
}
