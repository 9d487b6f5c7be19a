/* Blocking socket calls inside coroutines (ustack/coro.h "Sockets"): a
 * thousand blocking-style clients and handlers in one thread, SO_RCVTIMEO,
 * close waking a blocked coroutine, ust_epoll_wait suspending, and plain
 * blocking code running coroutines while it waits. Two stacks on an
 * in-memory link, virtual clock (tests/lib/sockfx.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "harness.h"
#include "sockfx.h"
#include "ustack/coro.h"
#include "ustack/epoll.h"

#define PORT 7070
#define MS 1000000ULL

static struct sockaddr *SA(struct sockaddr_in *a) { return (struct sockaddr *)a; }

/* ---- a roomier two-stack fixture for a thousand connections ---- */

/* Like sfx_open, with pools and a link queue for 2,000 connections. */
static int big_open(struct sockfx *f)
{
    return sfx_open_sized(f, &(struct sfx_size){.pkts = 16384, .conns = 4096, .qlen = 8192});
}

/* Every coroutine finished, stacks freed, sockets closed, no buffer leaked. */
static int close_all(struct sockfx *f)
{
    struct ust_coro_stats a = {0}, b = {0};
    ust_coro_stats(f->srv, &a);
    ust_coro_stats(f->cli, &b);
    ust_coro_shutdown(f->srv);
    ust_coro_shutdown(f->cli);
    int rc = sfx_close(f);
    if (a.live || b.live)
        fprintf(stderr, "  coroutines left: srv %llu cli %llu\n", (unsigned long long)a.live,
                (unsigned long long)b.live);
    return rc == 0 && a.live == 0 && b.live == 0 ? 0 : -1;
}

/* Run both stacks (and so the coroutines) until *done reaches want, at
 * most max_ms of virtual time. */
static void run_until(struct sockfx *f, const int *done, int want, int max_ms)
{
    for (int i = 0; i < max_ms && *done < want; i++)
        sfx_run(f, MS);
}

/* ---- a thousand blocking clients against a blocking server ---- */

#define NCLIENTS 1000
#define MSG_MAX 3000

struct echo_world {
    struct ust_stack *srv;
    int listen_ok, served, active, max_active, server_errors;
    int clients_ok, clients_bad, clients_done;
};

static struct echo_world world;

/* Client i's message: its number, then a pattern of a length of its own. */
static size_t client_msg(int i, char *out)
{
    size_t len = 20 + (size_t)(i * 37) % (MSG_MAX - 20);
    int n = snprintf(out, len, "client %d:", i);
    for (size_t k = (size_t)n; k < len; k++)
        out[k] = (char)('a' + (i + (int)k) % 26);
    return len;
}

static void server_handler(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[2048];
    ssize_t n;
    if (++world.active > world.max_active)
        world.max_active = world.active;
    while ((n = ust_read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ust_write(fd, buf + off, (size_t)(n - off));
            if (w <= 0) {
                n = -1;
                break;
            }
            off += w;
        }
        if (n < 0)
            break;
    }
    if (n < 0)
        world.server_errors++;
    world.active--;
    world.served++;
    ust_close(fd);
}

static void server_main(void *arg)
{
    (void)arg;
    int l = ust_socket(AF_INET, SOCK_STREAM, 0);   /* on this coroutine's stack */
    struct sockaddr_in a = sfx_addr("0.0.0.0", PORT);
    if (l < 0 || ust_socket_stack(l) != world.srv || ust_bind(l, SA(&a), sizeof(a)) < 0 || ust_listen(l, 4096) < 0)
        return;
    world.listen_ok = 1;
    for (int i = 0; i < NCLIENTS; i++) {
        int c = ust_accept(l, NULL, NULL);
        if (c < 0 || ust_coro_spawn(world.srv, server_handler, (void *)(intptr_t)c, 0) < 0) {
            world.server_errors++;
            continue;
        }
    }
    ust_close(l);
}

static int client_talk(int fd, int i)
{
    char msg[MSG_MAX], back[MSG_MAX];
    size_t len = client_msg(i, msg);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT);
    if (ust_connect(fd, SA(&to), sizeof(to)) < 0) {
        fprintf(stderr, "  client %d: connect: %s\n", i, strerror(errno));
        return -1;
    }
    if (ust_write(fd, msg, len) != (ssize_t)len) {
        fprintf(stderr, "  client %d: write: %s\n", i, strerror(errno));
        return -1;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = ust_read(fd, back + got, len - got);
        if (n <= 0) {
            fprintf(stderr, "  client %d: read %zd after %zu/%zu: %s\n", i, n, got, len, strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    return memcmp(msg, back, len) == 0 ? 0 : -1;
}

static void client_main(void *arg)
{
    int i = (int)(intptr_t)arg;
    int fd = ust_socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && client_talk(fd, i) == 0;
    if (fd >= 0)
        ust_close(fd);
    if (ok)
        world.clients_ok++;
    else
        world.clients_bad++;
    world.clients_done++;
}

TEST(thousand_blocking_clients_one_thread)
{
    struct sockfx f;
    CHECK_EQ(big_open(&f), 0);
    memset(&world, 0, sizeof(world));
    world.srv = f.srv;
    CHECK_EQ(ust_coro_spawn(f.srv, server_main, NULL, 0), 0);
    sfx_run(&f, MS);   /* listening before the first SYN arrives */
    CHECK_EQ(world.listen_ok, 1);
    for (int i = 0; i < NCLIENTS; i++)
        CHECK_EQ(ust_coro_spawn(f.cli, client_main, (void *)(intptr_t)i, 0), 0);
    run_until(&f, &world.clients_done, NCLIENTS, 120000);
    run_until(&f, &world.served, NCLIENTS, 5000);   /* the last FINs */
    CHECK_EQ(world.listen_ok, 1);
    CHECK_EQ(world.clients_ok, NCLIENTS);
    CHECK_EQ(world.clients_bad, 0);
    CHECK_EQ(world.served, NCLIENTS);
    CHECK_EQ(world.server_errors, 0);
    /* They really were concurrent, not one after the other. */
    CHECK(world.max_active >= NCLIENTS / 2);
    fprintf(stderr, "  %d clients, at most %d handlers at once\n", NCLIENTS, world.max_active);
    CHECK_EQ(close_all(&f), 0);
}

/* ---- timeouts, close, epoll ---- */

/* A listener on srv and a connected pair: cfd on cli, sfd on srv. */
static void open_pair(HARNESS_ARGS, struct sockfx *f, int *lfd, int *cfd, int *sfd)
{
    CHECK_EQ(sfx_open_pair(f, PORT, 0, lfd, cfd, sfd, NULL), 0);
}

struct waiter {
    struct sockfx *f;
    int fd;
    int done;
    ssize_t rc;
    int err;
    uint64_t t0, t1;
    char buf[64];
};

static void waiter_read(void *arg)
{
    struct waiter *w = arg;
    w->t0 = w->f->now;
    w->rc = ust_read(w->fd, w->buf, sizeof(w->buf));
    w->err = w->rc < 0 ? errno : 0;
    w->t1 = w->f->now;
    w->done = 1;
}

TEST(rcvtimeo_times_out_with_eagain)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    struct timeval tv = {.tv_sec = 1, .tv_usec = 500000};
    CHECK_EQ(ust_setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct waiter w = {.f = &f, .fd = c};
    CHECK_EQ(ust_coro_spawn(f.cli, waiter_read, &w, 0), 0);
    /* The coroutine waits; the thread does not: plain code keeps going. */
    sfx_run(&f, 1000 * MS);
    CHECK_EQ(w.done, 0);
    sfx_run(&f, 1000 * MS);
    CHECK_EQ(w.done, 1);
    CHECK_EQ(w.rc, -1);
    CHECK_EQ(w.err, EAGAIN);
    CHECK(w.t1 - w.t0 >= 1500 * MS);
    CHECK(w.t1 - w.t0 < 1600 * MS);
    /* Data before the deadline ends the wait with the data. */
    struct waiter w2 = {.f = &f, .fd = c};
    CHECK_EQ(ust_coro_spawn(f.cli, waiter_read, &w2, 0), 0);
    sfx_run(&f, 100 * MS);
    CHECK_EQ(w2.done, 0);
    CHECK_EQ(ust_write(s, "late", 4), 4);
    sfx_run(&f, 10 * MS);
    CHECK_EQ(w2.done, 1);
    CHECK_EQ(w2.rc, 4);
    CHECK_MEM(w2.buf, "late", 4);
    CHECK_EQ(close_all(&f), 0);
}

static void closer(void *arg)
{
    struct waiter *w = arg;
    ust_coro_sleep(50 * MS);
    w->rc = ust_close(w->fd);
    w->done = 1;
}

static void waiter_accept(void *arg)
{
    struct waiter *w = arg;
    w->rc = ust_accept(w->fd, NULL, NULL);
    w->err = w->rc < 0 ? errno : 0;
    w->done = 1;
}

TEST(close_wakes_blocked_coroutines_with_ebadf)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    /* A reader blocked with no timeout; another coroutine closes its socket. */
    struct waiter r = {.f = &f, .fd = c}, k = {.f = &f, .fd = c};
    CHECK_EQ(ust_coro_spawn(f.cli, waiter_read, &r, 0), 0);
    CHECK_EQ(ust_coro_spawn(f.cli, closer, &k, 0), 0);
    sfx_run(&f, 20 * MS);
    CHECK_EQ(r.done, 0);
    sfx_run(&f, 100 * MS);
    CHECK_EQ(k.done, 1);
    CHECK_EQ(k.rc, 0);
    CHECK_EQ(r.done, 1);
    CHECK_EQ(r.rc, -1);
    CHECK_EQ(r.err, EBADF);
    /* The descriptor's slot is reused at once: the woken call must not
     * mistake the new socket for its own. */
    struct waiter a = {.f = &f, .fd = l};
    CHECK_EQ(ust_fcntl(l, F_SETFL, 0), 0);   /* blocking accept */
    CHECK_EQ(ust_coro_spawn(f.srv, waiter_accept, &a, 0), 0);
    sfx_run(&f, 5 * MS);
    CHECK_EQ(a.done, 0);
    CHECK_EQ(ust_close(l), 0);
    sfx_use(f.srv);
    int reused = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(reused, l);
    sfx_run(&f, 5 * MS);
    CHECK_EQ(a.done, 1);
    CHECK_EQ(a.rc, -1);
    CHECK_EQ(a.err, EBADF);
    CHECK_EQ(close_all(&f), 0);
}

TEST(plain_blocking_call_runs_coroutines)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    /* Plain code blocks in read on c; only a coroutine of the server
     * writes, so the read completes only if the wait runs coroutines. */
    struct waiter w = {.f = &f, .fd = s};
    CHECK_EQ(ust_coro_spawn(f.srv, closer, &w, 0), 0);   /* closes s after 50 ms: the client sees EOF */
    char b[8];
    uint64_t t0 = f.now;
    CHECK_EQ(ust_read(c, b, sizeof(b)), 0);
    CHECK_EQ(w.done, 1);
    CHECK(f.now - t0 >= 50 * MS);
    /* And a coroutine closing the very socket plain code waits on. */
    struct waiter k = {.f = &f, .fd = c};
    sfx_use(f.cli);
    int c2 = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT);
    CHECK_EQ(ust_connect(c2, SA(&to), sizeof(to)), 0);
    k.fd = c2;
    CHECK_EQ(ust_coro_spawn(f.cli, closer, &k, 0), 0);
    CHECK_EQ(ust_read(c2, b, sizeof(b)), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(k.done, 1);
    CHECK_EQ(close_all(&f), 0);
}

struct ep_waiter {
    int ep, done, n, err;
    struct epoll_event ev;
};

static void waiter_epoll(void *arg)
{
    struct ep_waiter *w = arg;
    w->n = ust_epoll_wait(w->ep, &w->ev, 1, -1);
    w->err = w->n < 0 ? errno : 0;
    w->done = 1;
}

TEST(epoll_wait_suspends_coroutine)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    sfx_use(f.srv);
    int ep = ust_epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev), 0);
    struct ep_waiter w = {.ep = ep};
    CHECK_EQ(ust_coro_spawn(f.srv, waiter_epoll, &w, 0), 0);
    sfx_run(&f, 200 * MS);
    CHECK_EQ(w.done, 0);
    CHECK_EQ(ust_write(c, "x", 1), 1);
    sfx_run(&f, 5 * MS);
    CHECK_EQ(w.done, 1);
    CHECK_EQ(w.n, 1);
    CHECK_EQ(w.ev.data.u64, 42);
    CHECK(w.ev.events & EPOLLIN);
    /* Closing the instance wakes a coroutine waiting on it: EBADF. */
    char b[4];
    CHECK_EQ(ust_read(s, b, sizeof(b)), 1);
    struct ep_waiter w2 = {.ep = ep};
    CHECK_EQ(ust_coro_spawn(f.srv, waiter_epoll, &w2, 0), 0);
    sfx_run(&f, 5 * MS);
    CHECK_EQ(w2.done, 0);
    CHECK_EQ(ust_close(ep), 0);
    sfx_run(&f, 5 * MS);
    CHECK_EQ(w2.done, 1);
    CHECK_EQ(w2.n, -1);
    CHECK_EQ(w2.err, EBADF);
    CHECK_EQ(close_all(&f), 0);
}

static void refused_client(void *arg)
{
    struct waiter *w = arg;
    int fd = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT + 1);
    w->rc = ust_connect(fd, SA(&to), sizeof(to));
    w->err = w->rc < 0 ? errno : 0;
    ust_close(fd);
    w->done = 1;
}

TEST(coroutine_connect_refused)
{
    struct sockfx f;
    CHECK_EQ(sfx_open(&f), 0);
    struct waiter w = {.f = &f};
    CHECK_EQ(ust_coro_spawn(f.cli, refused_client, &w, 0), 0);
    sfx_run(&f, 50 * MS);
    CHECK_EQ(w.done, 1);
    CHECK_EQ(w.rc, -1);
    CHECK_EQ(w.err, ECONNREFUSED);
    CHECK_EQ(close_all(&f), 0);
}

HARNESS_MAIN()
