/* Socket calls from another thread (src/api/forward.c): an "owner" thread
 * drives two stacks on a memory link (tests/lib/sockfx.h) and holds a TCP
 * connection; other threads use the owner's descriptors with the ordinary
 * calls, which are forwarded to the owner and run there. Real threads,
 * real clock, every wait bounded. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sockfx.h"

#define PORT 7000
#define BIG (256 * 1024)
#define WAIT_MS 10000            /* any single wait of the test */

enum { CMD_NONE, CMD_RECV, CMD_SEND_AT, CMD_EXPECT_EOF, CMD_FOREIGN_WRITE };

/* The owner thread and the script it follows (one command at a time:
 * the test posts cmd, the owner sets it back to CMD_NONE when done). */
struct owner {
    struct sockfx f;
    pthread_t th;
    int lfd, cfd, sfd;            /* listener, client end, server end */
    _Atomic int ready;            /* 1 up, -1 failed                  */
    _Atomic int stop;
    _Atomic int cmd;
    _Atomic uint64_t iters;       /* loop iterations: the owner is not blocked */
    uint64_t send_at;             /* CMD_SEND_AT: not before (ust_now_ns) */
    size_t len, got;              /* bytes wanted / moved               */
    int result;                   /* CMD_EXPECT_EOF: 0, or the errno    */
    int foreign_fd;               /* CMD_FOREIGN_WRITE: another owner's   */
    ssize_t foreign_res;
    uint8_t buf[BIG];
};

static struct sockaddr *SA(struct sockaddr_in *a) { return (struct sockaddr *)a; }

static uint64_t ms_since(uint64_t t0) { return (ust_now_ns() - t0) / 1000000ULL; }

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 131u + seed + (i >> 8));
}

/* On the owner thread, with sfx's virtual clock: listener, blocking
 * client, accepted server end. */
static int owner_open_pair(struct owner *o)
{
    if (sfx_open(&o->f) < 0)
        return -1;
    sfx_use(o->f.srv);
    o->lfd = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = sfx_addr("0.0.0.0", PORT);
    if (ust_bind(o->lfd, SA(&a), sizeof(a)) < 0 || ust_listen(o->lfd, 8) < 0)
        return -1;
    sfx_use(o->f.cli);
    o->cfd = ust_socket(AF_INET, SOCK_STREAM, 0);   /* blocking */
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT);
    if (ust_connect(o->cfd, SA(&to), sizeof(to)) < 0)
        return -1;
    o->sfd = ust_accept4(o->lfd, NULL, NULL, SOCK_NONBLOCK);
    return o->sfd < 0 ? -1 : 0;
}

static void owner_recv(struct owner *o)
{
    while (o->got < o->len) {
        ssize_t n = ust_read(o->sfd, o->buf + o->got, o->len - o->got);
        if (n <= 0)
            return;
        o->got += (size_t)n;
    }
    atomic_store(&o->cmd, CMD_NONE);
}

static void owner_send(struct owner *o)
{
    if (ust_now_ns() < o->send_at)
        return;
    while (o->got < o->len) {
        ssize_t n = ust_write(o->sfd, o->buf + o->got, o->len - o->got);
        if (n <= 0)
            return;
        o->got += (size_t)n;
    }
    atomic_store(&o->cmd, CMD_NONE);
}

static void owner_expect_eof(struct owner *o)
{
    uint8_t junk[512];
    ssize_t n = ust_read(o->sfd, junk, sizeof(junk));
    if (n < 0 && errno == EAGAIN)
        return;
    if (n > 0)
        return;   /* data before the FIN: keep reading */
    o->result = n == 0 ? 0 : errno;
    atomic_store(&o->cmd, CMD_NONE);
}

/* A thread that drives stacks itself makes a blocking call on another
 * owner's descriptor: while it waits it keeps serving its own stacks (and
 * the calls forwarded to it). */
static void owner_foreign_write(struct owner *o)
{
    o->foreign_res = ust_write(o->foreign_fd, o->buf, o->len);
    atomic_store(&o->cmd, CMD_NONE);
}

static void owner_step(struct owner *o)
{
    switch (atomic_load(&o->cmd)) {
    case CMD_FOREIGN_WRITE: owner_foreign_write(o); break;
    case CMD_RECV: owner_recv(o); break;
    case CMD_SEND_AT: owner_send(o); break;
    case CMD_EXPECT_EOF: owner_expect_eof(o); break;
    }
}

static void *owner_main(void *arg)
{
    struct owner *o = arg;
    if (owner_open_pair(o) < 0) {
        atomic_store(&o->ready, -1);
        return NULL;
    }
    /* From here on the real clock: other threads wait in real time. */
    ust_socket_set_clock(NULL, NULL, NULL);
    atomic_store(&o->ready, 1);
    while (!atomic_load(&o->stop)) {
        ust_socket_run(5);
        owner_step(o);
        atomic_fetch_add(&o->iters, 1);
    }
    o->f.now = ust_now_ns();   /* sfx_close settles on its virtual clock */
    ust_socket_set_clock(NULL, NULL, NULL);
    o->result = sfx_close(&o->f);
    return NULL;
}

static struct owner *owner_start(void)
{
    struct owner *o = calloc(1, sizeof(*o));
    if (!o || pthread_create(&o->th, NULL, owner_main, o) != 0) {
        free(o);
        return NULL;
    }
    uint64_t t0 = ust_now_ns();
    while (atomic_load(&o->ready) == 0 && ms_since(t0) < WAIT_MS)
        nap_ms(1);
    if (atomic_load(&o->ready) != 1) {
        atomic_store(&o->stop, 1);
        pthread_join(o->th, NULL);
        free(o);
        return NULL;
    }
    return o;
}

/* Stop the owner; 0 when its stacks closed cleanly (no leak). */
static int owner_stop(struct owner *o)
{
    atomic_store(&o->stop, 1);
    pthread_join(o->th, NULL);
    int rc = o->result;
    free(o);
    return rc;
}

static void owner_post(struct owner *o, int cmd, size_t len)
{
    o->len = len;
    o->got = 0;
    atomic_store(&o->cmd, cmd);
}

/* Wait for the owner to finish the command: 0, or -1 at the time limit. */
static int owner_done(struct owner *o)
{
    uint64_t t0 = ust_now_ns();
    while (atomic_load(&o->cmd) != CMD_NONE) {
        if (ms_since(t0) > WAIT_MS)
            return -1;
        nap_ms(1);
    }
    return 0;
}

/* Read exactly n bytes with (forwarded, blocking) reads. */
static ssize_t read_full(int fd, uint8_t *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = ust_read(fd, b + got, n - got);
        if (r <= 0)
            return r;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

TEST(write_and_read_both_ways)
{
    struct owner *o = owner_start();
    CHECK(o);
    static uint8_t out[BIG], in[BIG];
    /* More than the send buffer holds: the forwarded write is parked on
     * the owner until the peer drains it, then completes in full. */
    fill(out, BIG, 7);
    owner_post(o, CMD_RECV, BIG);
    CHECK_EQ(ust_write(o->cfd, out, BIG), BIG);
    CHECK_EQ(owner_done(o), 0);
    CHECK_EQ(o->got, BIG);
    CHECK_MEM(o->buf, out, BIG);
    /* The other way: the owner sends, this thread reads. */
    fill(o->buf, 100000, 9);
    o->send_at = 0;
    owner_post(o, CMD_SEND_AT, 100000);
    CHECK_EQ(read_full(o->cfd, in, 100000), 100000);
    CHECK_MEM(in, o->buf, 100000);
    CHECK_EQ(owner_done(o), 0);
    /* readv / writev and send / recv(MSG_WAITALL). */
    uint8_t a[3] = {1, 2, 3}, b[5] = {4, 5, 6, 7, 8};
    struct iovec v[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
    owner_post(o, CMD_RECV, 8);
    CHECK_EQ(ust_writev(o->cfd, v, 2), 8);
    CHECK_EQ(owner_done(o), 0);
    CHECK_MEM(o->buf, "\1\2\3\4\5\6\7\10", 8);
    memcpy(o->buf, "abcdefghij", 10);
    owner_post(o, CMD_SEND_AT, 10);
    uint8_t r1[4], r2[6];
    struct iovec rv[2] = {{r1, sizeof(r1)}, {r2, sizeof(r2)}};
    CHECK_EQ(owner_done(o), 0);
    size_t got = 0;
    uint64_t t0 = ust_now_ns();
    while (got < 10 && ms_since(t0) < WAIT_MS) {   /* may arrive in pieces */
        struct iovec rest[2];
        int k = 0;
        for (int i = 0, skip = (int)got; i < 2; i++) {
            if ((size_t)skip >= rv[i].iov_len) {
                skip -= (int)rv[i].iov_len;
                continue;
            }
            rest[k++] = (struct iovec){(uint8_t *)rv[i].iov_base + skip, rv[i].iov_len - (size_t)skip};
            skip = 0;
        }
        ssize_t n = ust_readv(o->cfd, rest, k);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK_EQ(got, 10);
    CHECK_MEM(r1, "abcd", 4);
    CHECK_MEM(r2, "efghij", 6);
    CHECK_EQ(ust_send(o->cfd, "xyz", 3, 0), 3);
    owner_post(o, CMD_RECV, 3);
    CHECK_EQ(owner_done(o), 0);
    CHECK_MEM(o->buf, "xyz", 3);
    memcpy(o->buf, "0123456789", 10);
    o->send_at = ust_now_ns() + 30000000ULL;
    owner_post(o, CMD_SEND_AT, 10);
    char w[10];
    CHECK_EQ(ust_recv(o->cfd, w, sizeof(w), MSG_WAITALL), 10);
    CHECK_MEM(w, "0123456789", 10);
    CHECK_EQ(owner_stop(o), 0);
}

TEST(blocking_read_completes_when_data_arrives)
{
    struct owner *o = owner_start();
    CHECK(o);
    memcpy(o->buf, "late data", 9);
    o->send_at = ust_now_ns() + 100000000ULL;   /* 100 ms from now */
    owner_post(o, CMD_SEND_AT, 9);
    uint64_t iters0 = atomic_load(&o->iters);
    uint64_t t0 = ust_now_ns();
    char buf[32];
    CHECK_EQ(ust_read(o->cfd, buf, sizeof(buf)), 9);
    CHECK(ms_since(t0) >= 80);
    CHECK_MEM(buf, "late data", 9);
    /* The owner went on looping while our read was parked there. */
    CHECK(atomic_load(&o->iters) > iters0 + 5);
    CHECK_EQ(owner_done(o), 0);
    CHECK_EQ(owner_stop(o), 0);
}

TEST(options_names_fcntl_timeouts)
{
    struct owner *o = owner_start();
    CHECK(o);
    int one = 1, v = 0;
    socklen_t vl = sizeof(v);
    CHECK_EQ(ust_setsockopt(o->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)), 0);
    CHECK_EQ(ust_getsockopt(o->cfd, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(vl, sizeof(int));
    CHECK_EQ(ust_setsockopt(o->cfd, IPPROTO_TCP, 9999, &one, sizeof(one)), -1);
    CHECK_EQ(errno, ENOPROTOOPT);
    struct sockaddr_in me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer);
    CHECK_EQ(ust_getsockname(o->cfd, SA(&me), &ml), 0);
    CHECK_EQ(me.sin_addr.s_addr, sfx_addr(SFX_CLI_IP, 0).sin_addr.s_addr);
    CHECK_EQ(ust_getpeername(o->cfd, SA(&peer), &pl), 0);
    CHECK_EQ(peer.sin_addr.s_addr, sfx_addr(SFX_SRV_IP, 0).sin_addr.s_addr);
    CHECK_EQ(ntohs(peer.sin_port), PORT);
    /* O_NONBLOCK set from here: the forwarded read does not wait. */
    CHECK_EQ(ust_fcntl(o->cfd, F_GETFL) & O_NONBLOCK, 0);
    CHECK_EQ(ust_fcntl(o->cfd, F_SETFL, O_NONBLOCK), 0);
    CHECK(ust_fcntl(o->cfd, F_GETFL) & O_NONBLOCK);
    char buf[8];
    CHECK_EQ(ust_read(o->cfd, buf, sizeof(buf)), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(ust_recv(o->cfd, buf, sizeof(buf), 0), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(ust_fcntl(o->cfd, F_SETFL, 0), 0);
    /* MSG_DONTWAIT on a blocking socket. */
    CHECK_EQ(ust_recv(o->cfd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    CHECK_EQ(errno, EAGAIN);
    /* SO_RCVTIMEO: the parked read times out on the owner. */
    struct timeval tv = {.tv_sec = 0, .tv_usec = 60000};
    CHECK_EQ(ust_setsockopt(o->cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    uint64_t t0 = ust_now_ns();
    CHECK_EQ(ust_read(o->cfd, buf, sizeof(buf)), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK(ms_since(t0) >= 50);
    int nread = -1;
    CHECK_EQ(ust_ioctl(o->cfd, FIONREAD, &nread), 0);
    CHECK_EQ(nread, 0);
    /* An error made on the owner comes back as this thread's errno. */
    CHECK_EQ(ust_listen(o->cfd, 4), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(owner_stop(o), 0);
}

TEST(shutdown_and_close_from_another_thread)
{
    struct owner *o = owner_start();
    CHECK(o);
    CHECK_EQ(ust_write(o->cfd, "bye", 3), 3);
    CHECK_EQ(ust_shutdown(o->cfd, SHUT_WR), 0);
    owner_post(o, CMD_EXPECT_EOF, 0);
    CHECK_EQ(owner_done(o), 0);
    CHECK_EQ(o->result, 0);
    CHECK_EQ(ust_write(o->cfd, "x", 1), -1);
    CHECK_EQ(errno, EPIPE);
    CHECK_EQ(ust_shutdown(o->cfd, 42), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_close(o->cfd), 0);
    char buf[4];
    CHECK_EQ(ust_read(o->cfd, buf, sizeof(buf)), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_close(o->cfd), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(owner_stop(o), 0);
}

struct reader {
    int fd;
    ssize_t n;
    int err;
    _Atomic int finished;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char buf[16];
    r->n = ust_read(r->fd, buf, sizeof(buf));
    r->err = errno;
    atomic_store(&r->finished, 1);
    return NULL;
}

TEST(close_from_one_thread_ends_a_read_parked_by_another)
{
    struct owner *o = owner_start();
    CHECK(o);
    struct reader r = {.fd = o->cfd};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, reader_main, &r), 0);
    nap_ms(50);
    CHECK_EQ(atomic_load(&r.finished), 0);   /* parked on the owner */
    CHECK_EQ(ust_close(o->cfd), 0);
    uint64_t t0 = ust_now_ns();
    while (!atomic_load(&r.finished) && ms_since(t0) < WAIT_MS)
        nap_ms(1);
    CHECK_EQ(atomic_load(&r.finished), 1);
    pthread_join(th, NULL);
    CHECK_EQ(r.n, -1);
    CHECK_EQ(r.err, EBADF);
    CHECK_EQ(owner_stop(o), 0);
}

#define WRITERS 4
#define MSGS 1500
#define MSG_LEN 24

struct writer {
    int fd;
    unsigned id;
    int failed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    uint8_t m[MSG_LEN];
    for (int i = 0; i < MSGS; i++) {
        memset(m, (int)(w->id + 1), sizeof(m));
        if (ust_write(w->fd, m, sizeof(m)) != MSG_LEN)
            w->failed = 1;
    }
    return NULL;
}

TEST(many_threads_write_concurrently)
{
    struct owner *o = owner_start();
    CHECK(o);
    owner_post(o, CMD_RECV, (size_t)WRITERS * MSGS * MSG_LEN);
    pthread_t th[WRITERS];
    struct writer w[WRITERS];
    for (unsigned i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.fd = o->cfd, .id = i};
        CHECK_EQ(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(owner_done(o), 0);
    /* Writes of different threads may interleave; every byte arrives. */
    size_t count[WRITERS + 1] = {0};
    for (size_t i = 0; i < o->got; i++)
        if (o->buf[i] >= 1 && o->buf[i] <= WRITERS)
            count[o->buf[i]]++;
    for (unsigned i = 0; i < WRITERS; i++) {
        CHECK_EQ(w[i].failed, 0);
        CHECK_EQ(count[i + 1], (size_t)MSGS * MSG_LEN);
    }
    CHECK_EQ(owner_stop(o), 0);
}

TEST(calls_after_the_owner_detached_fail_ebadf)
{
    struct owner *o = owner_start();
    CHECK(o);
    int fd = o->cfd;
    CHECK_EQ(owner_stop(o), 0);
    CHECK_EQ(ust_write(fd, "x", 1), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_close(fd), -1);
    CHECK_EQ(errno, EBADF);
}

TEST(two_owners_call_each_other_without_deadlock)
{
    struct owner *a = owner_start(), *b = owner_start();
    CHECK(a && b);
    /* Each owner writes, blocking, more than a send buffer holds to the
     * other's connection, while the other is itself blocked the same way:
     * both must keep serving their inboxes while they wait. */
    static uint8_t ra[BIG], rb[BIG];
    fill(a->buf, BIG, 1);
    fill(b->buf, BIG, 2);
    a->foreign_fd = b->cfd;
    b->foreign_fd = a->cfd;
    owner_post(a, CMD_FOREIGN_WRITE, BIG);
    owner_post(b, CMD_FOREIGN_WRITE, BIG);
    /* This thread drains both server ends (forwarded reads too). */
    CHECK_EQ(ust_fcntl(a->sfd, F_SETFL, 0), 0);
    CHECK_EQ(ust_fcntl(b->sfd, F_SETFL, 0), 0);
    size_t ga = 0, gb = 0;
    uint64_t t0 = ust_now_ns();
    while ((ga < BIG || gb < BIG) && ms_since(t0) < WAIT_MS) {
        if (gb < BIG) {   /* b's connection carries a's bytes */
            ssize_t n = ust_recv(b->sfd, rb + gb, BIG - gb, MSG_DONTWAIT);
            gb += n > 0 ? (size_t)n : 0;
        }
        if (ga < BIG) {
            ssize_t n = ust_recv(a->sfd, ra + ga, BIG - ga, MSG_DONTWAIT);
            ga += n > 0 ? (size_t)n : 0;
        }
    }
    CHECK_EQ(ga, BIG);
    CHECK_EQ(gb, BIG);
    CHECK_EQ(owner_done(a), 0);
    CHECK_EQ(owner_done(b), 0);
    CHECK_EQ(a->foreign_res, BIG);
    CHECK_EQ(b->foreign_res, BIG);
    CHECK_MEM(rb, a->buf, BIG);
    CHECK_MEM(ra, b->buf, BIG);
    CHECK_EQ(owner_stop(a), 0);
    CHECK_EQ(owner_stop(b), 0);
}

HARNESS_MAIN()
