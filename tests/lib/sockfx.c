#include "sockfx.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net/stack.h"

static int sfx_link_seq;

static struct ust_stack *sfx_stack(const char *link, const char *end, const char *ip, const char *mac,
                                   const char *peer, const struct sfx_size *sz)
{
    char dev[80], pkts[16], conns[16], backlog[16];
    if (sz->qlen)
        snprintf(dev, sizeof(dev), "memlink:%s,end=%s,qlen=%u", link, end, sz->qlen);
    else
        snprintf(dev, sizeof(dev), "memlink:%s,end=%s", link, end);
    snprintf(pkts, sizeof(pkts), "%u", sz->pkts);
    snprintf(conns, sizeof(conns), "%u", sz->conns);
    /* As many half-open as connections, never below the stack's default. */
    snprintf(backlog, sizeof(backlog), "%u", sz->conns > 1024 ? sz->conns : 1024);
    char *argv[] = {"test", "--dev", dev, "--ip", (char *)ip, "--mac", (char *)mac, "--neigh", (char *)peer,
                    "--pkts", pkts, "--tcp-conns", conns, "--tcp-syn-backlog", backlog, NULL};
    int argc = 15;
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0)
        return NULL;
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    return s;
}

uint64_t sfx_now(void *arg) { return ((struct sockfx *)arg)->now; }

void sfx_idle(void *arg, uint64_t deadline)
{
    struct sockfx *f = arg;
    f->idle_calls++;
    /* Nothing pending at all: step a second so a forgotten timeout shows
     * up as a long virtual wait rather than a hang. */
    if (deadline == UINT64_MAX)
        f->now += 1000000000ULL;
    else if (deadline > f->now)
        f->now = deadline;
}

int sfx_open_sized(struct sockfx *f, const struct sfx_size *sz)
{
    char link[32];
    memset(f, 0, sizeof(*f));
    snprintf(link, sizeof(link), "sfx%d", sfx_link_seq++);
    f->srv = sfx_stack(link, "a", "10.0.0.2/24", "02:00:00:00:00:02", "10.0.0.1=02:00:00:00:00:01", sz);
    f->cli = sfx_stack(link, "b", "10.0.0.1/24", "02:00:00:00:00:01", "10.0.0.2=02:00:00:00:00:02", sz);
    if (!f->srv || !f->cli)
        return -1;
    f->now = ust_now_ns();
    ust_socket_set_clock(sfx_now, sfx_idle, f);
    if (ust_socket_attach(f->cli) < 0 || ust_socket_attach(f->srv) < 0)
        return -1;
    sfx_run(f, 1000000);
    return 0;
}

int sfx_open(struct sockfx *f)
{
    return sfx_open_sized(f, &(struct sfx_size){.pkts = 2048, .conns = 256});
}

int sfx_open_pair(struct sockfx *f, uint16_t port, int accept_flags, int *lfd, int *cfd, int *sfd,
                  struct sockaddr_in *peer)
{
    if (sfx_open(f) < 0)
        return -1;
    sfx_use(f->srv);
    *lfd = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = sfx_addr("0.0.0.0", port), to = sfx_addr(SFX_SRV_IP, port);
    if (*lfd < UST_FD_BASE || ust_bind(*lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || ust_listen(*lfd, 16) < 0)
        return -1;
    sfx_use(f->cli);
    *cfd = ust_socket(AF_INET, SOCK_STREAM, 0);
    if (*cfd < UST_FD_BASE || ust_connect(*cfd, (struct sockaddr *)&to, sizeof(to)) < 0)
        return -1;
    socklen_t pl = sizeof(*peer);
    *sfd = ust_accept4(*lfd, peer ? (struct sockaddr *)peer : NULL, peer ? &pl : NULL, accept_flags);
    return *sfd >= UST_FD_BASE && (!peer || pl == sizeof(*peer)) ? 0 : -1;
}

void sfx_use(struct ust_stack *s) { ust_socket_attach(s); }

void sfx_run(struct sockfx *f, uint64_t ns)
{
    uint64_t end = f->now + ns;
    while (f->now < end) {
        ust_socket_run(0);
        ust_socket_run(0);
        f->now += end - f->now < 1000000 ? end - f->now : 1000000;
    }
    ust_socket_run(0);
}

struct sockaddr_in sfx_addr(const char *ip, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int sfx_stack_leaks(struct ust_stack *s)
{
    /* Buffers may sit in queues of connections still finishing: count only
     * what is neither in a pool nor owned by a connection. */
    tcp_fini(s);
    s->tcp.tcbs = NULL;
    int leak = s->pool.avail != s->pool.count || s->big_pool.avail != s->big_pool.count;
    if (leak)
        fprintf(stderr, "  leak: pool %u/%u big %u/%u\n", s->pool.avail, s->pool.count, s->big_pool.avail,
                s->big_pool.count);
    return leak;
}

int sfx_close(struct sockfx *f)
{
    int rc = 0;
    if (f->srv && ust_socket_detach(f->srv) < 0)
        rc = -1;
    if (f->cli && ust_socket_detach(f->cli) < 0)
        rc = -1;
    /* Let FINs and resets cross; nothing is attached now, poll directly. */
    for (int i = 0; i < 50 && f->srv && f->cli; i++) {
        f->now += 1000000;
        ust_stack_poll(f->srv, f->now);
        ust_stack_poll(f->cli, f->now);
    }
    ust_socket_set_clock(NULL, NULL, NULL);
    if (f->srv) {
        rc |= sfx_stack_leaks(f->srv) ? -1 : 0;
        ust_stack_destroy(f->srv);
    }
    if (f->cli) {
        rc |= sfx_stack_leaks(f->cli) ? -1 : 0;
        ust_stack_destroy(f->cli);
    }
    return rc;
}
