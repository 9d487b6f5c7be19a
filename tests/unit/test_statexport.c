/* The shared-memory export read by ust-stat: life cycle of the object, the
 * rate limit, answering a reader's request with the connection table, and
 * seqlock snapshots that are never torn while a writer keeps publishing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/statexport.h"
#include "harness.h"
#include "stackfx.h"

#define NCTR (sizeof(struct ust_counters) / sizeof(uint64_t))

static int shm_exists(const char *name)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static struct ust_tcp *listen_on(struct ust_stack *s, uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    return ust_tcp_listen(s, (struct sockaddr *)&a, sizeof(a), 16, NULL, NULL);
}

TEST(open_creates_and_close_removes)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    CHECK(statexport_open(fx.s) == 0);
    CHECK(statexport_open(fx.s) == 0);   /* idempotent */
    char name[STATX_NAME_LEN];
    snprintf(name, sizeof(name), "%s", statexport_name(fx.s));
    char want[STATX_NAME_LEN];
    snprintf(want, sizeof(want), "/ustack.%d", (int)getpid());
    CHECK(strncmp(name, want, strlen(want)) == 0);
    CHECK(shm_exists(name));
    char err[128];
    struct statx_shm *m = statx_attach(name, err, sizeof(err));
    CHECK(m != NULL);
    CHECK(m->pid == getpid());
    statx_detach(m);
    statexport_close(fx.s);
    CHECK(statexport_name(fx.s) == NULL);
    CHECK(!shm_exists(name));
    statexport_close(fx.s);              /* harmless twice */
    CHECK(fx_close(&fx) == 0);
}

TEST(two_stacks_get_distinct_objects)
{
    struct fixture a, b;
    CHECK(fx_open(&a, NULL) == 0);
    CHECK(fx_open(&b, NULL) == 0);
    CHECK(statexport_open(a.s) == 0 && statexport_open(b.s) == 0);
    CHECK(strcmp(statexport_name(a.s), statexport_name(b.s)) != 0);
    statexport_close(a.s);
    statexport_close(b.s);
    CHECK(fx_close(&a) == 0 && fx_close(&b) == 0);
}

TEST(attach_rejects_foreign_objects)
{
    char name[64], err[128];
    snprintf(name, sizeof(name), "/ustack-test-foreign.%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, 100) == 0);        /* too small */
    CHECK(statx_attach(name, err, sizeof(err)) == NULL);
    CHECK(ftruncate(fd, (off_t)sizeof(struct statx_shm)) == 0);   /* right size, no magic */
    CHECK(statx_attach(name, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "version") != NULL);
    close(fd);
    shm_unlink(name);
    CHECK(statx_attach(name, err, sizeof(err)) == NULL);
}

TEST(counters_published_at_most_every_interval)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    CHECK(statexport_open(fx.s) == 0);
    char err[128];
    struct statx_shm *m = statx_attach(statexport_name(fx.s), err, sizeof(err));
    CHECK(m != NULL);
    uint64_t t = fx.now + 10 * STATX_COUNTERS_NS;
    fx.s->ctr.tcp_rx = 41;
    statexport_publish(fx.s, t);
    struct ust_counters c;
    CHECK(statx_read_counters(m, &c, NULL) == 0);
    CHECK(c.tcp_rx == 41);
    fx.s->ctr.tcp_rx = 42;
    statexport_publish(fx.s, t + STATX_CHECK_NS);          /* too soon */
    CHECK(statx_read_counters(m, &c, NULL) == 0 && c.tcp_rx == 41);
    statexport_publish(fx.s, t + STATX_COUNTERS_NS);
    CHECK(statx_read_counters(m, &c, NULL) == 0 && c.tcp_rx == 42);
    statx_detach(m);
    statexport_close(fx.s);
    CHECK(fx_close(&fx) == 0);
}

TEST(request_is_answered_with_the_connection_table)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    CHECK(statexport_open(fx.s) == 0);
    struct ust_tcp *l80 = listen_on(fx.s, 80), *l443 = listen_on(fx.s, 443);
    CHECK(l80 && l443);
    char err[128];
    struct statx_shm *m = statx_attach(statexport_name(fx.s), err, sizeof(err));
    CHECK(m != NULL);
    uint64_t t = fx.now + 10 * STATX_COUNTERS_NS;
    statexport_publish(fx.s, t);                            /* nobody asked: no table */
    CHECK(m->conn_seq == 0);
    uint64_t want = atomic_fetch_add(&m->request, 1) + 1;
    statexport_publish(fx.s, t + STATX_CHECK_NS);
    CHECK(atomic_load(&m->served) == want);
    struct statx_conn conns[8];
    uint32_t total = 0;
    int n = statx_read_conns(m, conns, 8, &total);
    CHECK(n == 2 && total == 2);
    int seen80 = 0, seen443 = 0;
    for (int i = 0; i < n; i++) {
        CHECK(conns[i].state == TCP_LISTEN);
        CHECK(conns[i].sendq == 16);                        /* backlog, as ss shows */
        seen80 += conns[i].lport == 80;
        seen443 += conns[i].lport == 443;
    }
    CHECK(seen80 == 1 && seen443 == 1);
    CHECK(statx_read_conns(m, conns, 1, &total) == 1);     /* caller's bound holds */
    ust_tcp_close(l80);
    ust_tcp_close(l443);
    statx_detach(m);
    statexport_close(fx.s);
    CHECK(fx_close(&fx) == 0);
}

struct reader_arg {
    const char *name;
    _Atomic int stop;
    int reads, torn, busy, failed;   /* busy: gave up while the writer kept writing */
};

/* Every counter of a snapshot must hold the same value: the writer sets all
 * of them to k before each publish, so a mixed copy is a torn read. */
static void *reader_main(void *p)
{
    struct reader_arg *r = p;
    char err[128];
    struct statx_shm *m = statx_attach(r->name, err, sizeof(err));
    if (!m) {
        r->failed = 1;
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        struct ust_counters c;
        if (statx_read_counters(m, &c, NULL) < 0) {
            r->busy++;   /* back-to-back publishes here, unlike a real stack */
            continue;
        }
        uint64_t v[NCTR];
        memcpy(v, &c, sizeof(v));
        for (size_t i = 1; i < NCTR; i++)
            if (v[i] != v[0]) {
                r->torn++;
                break;
            }
        r->reads++;
    }
    statx_detach(m);
    return NULL;
}

TEST(snapshots_are_never_torn)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    CHECK(statexport_open(fx.s) == 0);
    /* The snapshot taken at open holds the stack's real, unequal counters:
     * replace it with an all-equal one before the reader starts. */
    uint64_t t = fx.now + STATX_COUNTERS_NS;
    memset(&fx.s->ctr, 0, sizeof(fx.s->ctr));
    statexport_publish(fx.s, t);
    struct reader_arg r = {.name = statexport_name(fx.s)};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, reader_main, &r) == 0);
    for (uint64_t k = 1; k <= 200000; k++) {
        uint64_t v[NCTR];
        for (size_t i = 0; i < NCTR; i++)
            v[i] = k;
        memcpy(&fx.s->ctr, v, sizeof(v));
        t += STATX_COUNTERS_NS;
        statexport_publish(fx.s, t);
    }
    atomic_store(&r.stop, 1);
    pthread_join(th, NULL);
    memset(&fx.s->ctr, 0, sizeof(fx.s->ctr));
    printf("  %d snapshots read during 200000 publishes (%d gave up)\n", r.reads, r.busy);
    CHECK(r.reads > 0);
    CHECK(r.torn == 0);
    CHECK(r.failed == 0);
    statexport_close(fx.s);
    CHECK(fx_close(&fx) == 0);
}

HARNESS_MAIN()
