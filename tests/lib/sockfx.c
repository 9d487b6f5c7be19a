#include "sockfx.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net/stack.h"

static int sfx_link_seq;

static struct ust_stack *sfx_stack(const char *link, const char *end, const char *ip, const char *mac,
                                   const char *peer)
{
    char dev[64];
    snprintf(dev, sizeof(dev), "memlink:%s,end=%s", link, end);
    char *argv[] = {"test", "--dev", dev, "--ip", (char *)ip, "--mac", (char *)mac, "--neigh", (char *)peer,
                    "--pkts", "2048", "--tcp-conns", "256", NULL};
    int argc = 13;
    struct ust_config *cfg = ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0)
        return NULL;
    struct ust_stack *s = ust_stack_create(cfg);
    ust_config_free(cfg);
    return s;
}

static uint64_t sfx_now(void *arg) { return ((struct sockfx *)arg)->now; }

static void sfx_idle(void *arg, uint64_t deadline)
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

int sfx_open(struct sockfx *f)
{
    char link[32];
    memset(f, 0, sizeof(*f));
    snprintf(link, sizeof(link), "sfx%d", sfx_link_seq++);
    f->srv = sfx_stack(link, "a", "10.0.0.2/24", "02:00:00:00:00:02", "10.0.0.1=02:00:00:00:00:01");
    f->cli = sfx_stack(link, "b", "10.0.0.1/24", "02:00:00:00:00:01", "10.0.0.2=02:00:00:00:00:02");
    if (!f->srv || !f->cli)
        return -1;
    f->now = ust_now_ns();
    ust_socket_set_clock(sfx_now, sfx_idle, f);
    if (ust_socket_attach(f->cli) < 0 || ust_socket_attach(f->srv) < 0)
        return -1;
    sfx_run(f, 1000000);
    return 0;
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
