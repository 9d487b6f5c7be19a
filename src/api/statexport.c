/* Counters and connection list in shared memory (see statexport.h).
 *
 * The per-stack state lives in a fixed table here rather than in struct
 * ust_stack, keyed by the stack pointer; a thread-local cache makes the
 * lookup in statexport_publish one comparison (one stack per thread). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/statexport.h"
#include "net/stack.h"

#define STATX_READ_TRIES 10000

struct statexport {
    _Atomic(struct ust_stack *) owner;   /* NULL = slot free                 */
    struct statx_shm *shm;
    uint64_t next_check, next_counters, next_conns;
    uint64_t served;
    char name[STATX_NAME_LEN];
};

static struct statexport statx_slots[STATX_MAX_STACKS];
/* Bumped on every open and close: invalidates the thread-local caches. */
static _Atomic uint64_t statx_generation = 1;

struct statx_cache {
    uint64_t gen;
    const struct ust_stack *stack;
    struct statexport *entry;         /* may be NULL: s exports nothing */
};
static __thread struct statx_cache statx_tls;

static struct statexport *statx_find(const struct ust_stack *s)
{
    uint64_t gen = atomic_load_explicit(&statx_generation, memory_order_acquire);
    if (statx_tls.gen == gen && statx_tls.stack == s)
        return statx_tls.entry;
    struct statexport *found = NULL;
    for (int i = 0; i < STATX_MAX_STACKS && !found; i++)
        if (atomic_load_explicit(&statx_slots[i].owner, memory_order_acquire) == s)
            found = &statx_slots[i];
    statx_tls = (struct statx_cache){.gen = gen, .stack = s, .entry = found};
    return found;
}

static struct statexport *statx_claim(struct ust_stack *s, int *index)
{
    for (int i = 0; i < STATX_MAX_STACKS; i++) {
        struct ust_stack *expected = NULL;
        if (atomic_compare_exchange_strong(&statx_slots[i].owner, &expected, s)) {
            *index = i;
            return &statx_slots[i];
        }
    }
    return NULL;
}

/* A program that exits without ust_stack_destroy (exit() from a failed
 * check, say) must not leave its objects behind. A crash still can: the next
 * process given the same pid replaces them, and ust-stat marks them stale. */
static void statx_unlink_all(void)
{
    for (int i = 0; i < STATX_MAX_STACKS; i++)
        if (atomic_load_explicit(&statx_slots[i].owner, memory_order_acquire) && statx_slots[i].shm)
            shm_unlink(statx_slots[i].name);
}

static void statx_register_atexit(void)
{
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&done))
        atexit(statx_unlink_all);
}

static void statx_release(struct statexport *e)
{
    e->shm = NULL;
    atomic_store_explicit(&e->owner, NULL, memory_order_release);
    atomic_fetch_add_explicit(&statx_generation, 1, memory_order_acq_rel);
}

/* Our pid is ours alone while we live, so an object already bearing our
 * pid and a slot we hold was left by a dead process that had this pid. */
static int statx_create(const char *name)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        shm_unlink(name);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    }
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)sizeof(struct statx_shm)) < 0) {
        int err = errno;
        close(fd);
        shm_unlink(name);
        errno = err;
        return -1;
    }
    return fd;
}

static void statx_init_header(struct statx_shm *m)
{
    m->version = STATX_VERSION;
    m->header_size = (uint32_t)offsetof(struct statx_shm, conns);
    m->counter_count = (uint32_t)(sizeof(struct ust_counters) / sizeof(uint64_t));
    m->conn_size = (uint32_t)sizeof(struct statx_conn);
    m->conn_max = STATX_MAX_CONNS;
    m->pid = (int64_t)getpid();
    atomic_thread_fence(memory_order_release);
    m->magic = STATX_MAGIC;
}

static void seq_write_begin(_Atomic uint64_t *seq)
{
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, v + 1, memory_order_relaxed);
    /* The odd value must be visible before any of the data changes. */
    atomic_thread_fence(memory_order_release);
}

static void seq_write_end(_Atomic uint64_t *seq)
{
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, v + 1, memory_order_release);
}

static void statx_publish_counters(struct ust_stack *s, struct statx_shm *m)
{
    seq_write_begin(&m->ctr_seq);
    m->ctr_time = s->now;
    memcpy(&m->ctr, &s->ctr, sizeof(m->ctr));
    seq_write_end(&m->ctr_seq);
}

static void statx_conn_from_tcb(struct statx_conn *c, const struct tcb *t)
{
    memcpy(c->laddr, t->tuple.laddr.b, 16);
    memcpy(c->raddr, t->tuple.raddr.b, 16);
    c->lport = t->tuple.lport;
    c->rport = t->tuple.rport;
    c->state = t->state;
    if (t->state == TCP_LISTEN) {
        c->recvq = t->acceptq_len;    /* what ss shows for a listener */
        c->sendq = t->backlog;
    } else {
        c->recvq = t->rcv_queued;
        c->sendq = t->snd_queued;
    }
}

static void statx_conn_from_tw(struct statx_conn *c, const struct tcp_tw *tw)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->laddr, tw->tuple.laddr.b, 16);
    memcpy(c->raddr, tw->tuple.raddr.b, 16);
    c->lport = tw->tuple.lport;
    c->rport = tw->tuple.rport;
    c->state = TCP_TIME_WAIT;
}

/* TCBs in use are scattered over tcbs[0, bump); TIME-WAIT records are on
 * their expiry FIFO. Stops at STATX_MAX_CONNS. */
static uint32_t statx_fill_conns(const struct ust_stack *s, struct statx_conn *out)
{
    uint32_t n = 0;
    const struct tcp_stack *ts = &s->tcp;
    for (uint32_t i = 0; ts->tcbs && i < ts->bump && n < STATX_MAX_CONNS; i++)
        if (ts->tcbs[i].state != TCP_CLOSED)
            statx_conn_from_tcb(&out[n++], &ts->tcbs[i]);
    for (const struct tcp_tw *tw = ts->tw.fifo_head; tw && n < STATX_MAX_CONNS; tw = tw->fnext)
        statx_conn_from_tw(&out[n++], tw);
    return n;
}

static void statx_publish_conns(struct ust_stack *s, struct statx_shm *m)
{
    seq_write_begin(&m->conn_seq);
    m->conn_time = s->now;
    m->conn_count = statx_fill_conns(s, m->conns);
    m->conn_total = s->tcp.used + s->tcp.tw.used;
    if (m->conn_total < m->conn_count)     /* used may count TCBs differently */
        m->conn_total = m->conn_count;
    seq_write_end(&m->conn_seq);
}

int statexport_open(struct ust_stack *s)
{
    if (statx_find(s))
        return 0;
    int index;
    struct statexport *e = statx_claim(s, &index);
    if (!e) {
        errno = ENOSPC;
        return -1;
    }
    if (index == 0)
        snprintf(e->name, sizeof(e->name), "/ustack.%d", (int)getpid());
    else
        snprintf(e->name, sizeof(e->name), "/ustack.%d.%d", (int)getpid(), index);
    int fd = statx_create(e->name);
    void *mem = fd < 0 ? MAP_FAILED
                       : mmap(NULL, sizeof(struct statx_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (mem == MAP_FAILED) {
        if (fd >= 0)
            shm_unlink(e->name);
        statx_release(e);
        errno = err;
        return -1;
    }
    e->shm = mem;
    statx_register_atexit();
    e->next_check = e->next_counters = e->next_conns = 0;
    e->served = 0;
    statx_init_header(e->shm);
    statx_publish_counters(s, e->shm);
    atomic_fetch_add_explicit(&statx_generation, 1, memory_order_acq_rel);
    return 0;
}

void statexport_publish(struct ust_stack *s, uint64_t now)
{
    struct statexport *e = statx_find(s);
    if (!e || now < e->next_check)
        return;
    e->next_check = now + STATX_CHECK_NS;
    struct statx_shm *m = e->shm;
    uint64_t req = atomic_load_explicit(&m->request, memory_order_acquire);
    int asked = req != e->served && now >= e->next_conns;
    if (asked || now >= e->next_counters) {
        statx_publish_counters(s, m);
        e->next_counters = now + STATX_COUNTERS_NS;
    }
    if (asked) {
        statx_publish_conns(s, m);
        e->next_conns = now + STATX_CONNS_MIN_NS;
        e->served = req;
        atomic_store_explicit(&m->served, req, memory_order_release);
    }
}

void statexport_close(struct ust_stack *s)
{
    struct statexport *e = statx_find(s);
    if (!e)
        return;
    munmap(e->shm, sizeof(struct statx_shm));
    shm_unlink(e->name);
    statx_release(e);
}

const char *statexport_name(const struct ust_stack *s)
{
    struct statexport *e = statx_find(s);
    return e ? e->name : NULL;
}

/* ---- reader ---- */

static int statx_layout_ok(const struct statx_shm *m)
{
    return m->magic == STATX_MAGIC && m->version == STATX_VERSION &&
           m->header_size == offsetof(struct statx_shm, conns) &&
           m->counter_count == sizeof(struct ust_counters) / sizeof(uint64_t) &&
           m->conn_size == sizeof(struct statx_conn) && m->conn_max == STATX_MAX_CONNS;
}

struct statx_shm *statx_attach(const char *name, char *err, size_t errlen)
{
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(struct statx_shm)) {
        snprintf(err, errlen, "%s: too small for this version of ustack", name);
        close(fd);
        return NULL;
    }
    void *mem = mmap(NULL, sizeof(struct statx_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mem == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", name, strerror(errno));
        return NULL;
    }
    struct statx_shm *m = mem;
    atomic_thread_fence(memory_order_acquire);
    if (!statx_layout_ok(m)) {
        snprintf(err, errlen, "%s: not written by this version of ustack (or not initialised yet)", name);
        munmap(mem, sizeof(struct statx_shm));
        return NULL;
    }
    return m;
}

void statx_detach(struct statx_shm *m)
{
    if (m)
        munmap(m, sizeof(struct statx_shm));
}

int statx_request(struct statx_shm *m, unsigned timeout_ms)
{
    uint64_t want = atomic_fetch_add_explicit(&m->request, 1, memory_order_acq_rel) + 1;
    for (unsigned waited = 0; waited <= timeout_ms; waited++) {
        /* served only grows; another reader's later request also covers ours. */
        if (atomic_load_explicit(&m->served, memory_order_acquire) >= want)
            return 0;
        if (kill((pid_t)m->pid, 0) < 0 && errno == ESRCH)
            return -1;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Copy under the seqlock: valid only if the sequence was even and the same
 * before and after the copy. */
static int seq_read_begin(const _Atomic uint64_t *seq, uint64_t *start)
{
    *start = atomic_load_explicit(seq, memory_order_acquire);
    if (*start & 1) {
        sched_yield();
        return -1;
    }
    return 0;
}

static int seq_read_retry(const _Atomic uint64_t *seq, uint64_t start)
{
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(seq, memory_order_relaxed) != start;
}

int statx_read_counters(const struct statx_shm *m, struct ust_counters *out, uint64_t *time_ns)
{
    for (int tries = 0; tries < STATX_READ_TRIES; tries++) {
        uint64_t start;
        if (seq_read_begin(&m->ctr_seq, &start) < 0)
            continue;
        memcpy(out, (const void *)&m->ctr, sizeof(*out));
        uint64_t t = m->ctr_time;
        if (seq_read_retry(&m->ctr_seq, start))
            continue;
        if (time_ns)
            *time_ns = t;
        return 0;
    }
    return -1;
}

int statx_read_conns(const struct statx_shm *m, struct statx_conn *out, uint32_t max, uint32_t *total)
{
    for (int tries = 0; tries < STATX_READ_TRIES; tries++) {
        uint64_t start;
        if (seq_read_begin(&m->conn_seq, &start) < 0)
            continue;
        uint32_t n = m->conn_count, tot = m->conn_total;
        /* The count comes from another process: never trust it as a length. */
        if (n > STATX_MAX_CONNS)
            n = STATX_MAX_CONNS;
        if (n > max)
            n = max;
        memcpy(out, (const void *)m->conns, (size_t)n * sizeof(*out));
        if (seq_read_retry(&m->conn_seq, start))
            continue;
        if (total)
            *total = tot;
        return (int)n;
    }
    return -1;
}
