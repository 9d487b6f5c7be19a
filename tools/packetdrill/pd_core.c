/* libustack-packetdrill.so: start and stop, the stack thread, the request
 * queue, the descriptor map, packets and time. See pd_adapter.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "pd_adapter.h"

#include "api/config.h"
#include "dev/pdlink.h"
#include "ustack/ustack.h"

#define PD_MAX_ARGS 64
#define PD_FLAGS_MAX 4096
#define PD_RECV_WAIT_NS 1000000000ULL     /* netdev_receive gives up after 1 s */
#define PD_KERNEL_POLL_NS 2000000ULL      /* re-check kernel fds every 2 ms   */
/* packetdrill's default addresses: local 192.168.0.1, gateway 192.168.0.2
 * in 192.168.0.0/16, remote 192.0.2.1 (reached through the gateway). */
#define PD_DEFAULT_IP 0xc0a80001u
#define PD_DEFAULT_PREFIX 16
#define PD_DEFAULT_GW 0xc0a80002u

static int pd_instances;   /* names this process's links; under no lock: init is single-threaded */

/* ---- requests ---- */

int pd_finish(struct pd_req *r, long ret)
{
    r->ret = ret;
    r->err = ret < 0 ? errno : 0;
    return 1;
}

int pd_block(struct pd_req *r, uint64_t timeout_ns, int timeout_errno)
{
    uint64_t now = ust_now_ns();
    if (!r->waiting) {
        r->waiting = 1;
        r->deadline = timeout_ns ? now + timeout_ns : UINT64_MAX;
    }
    if (now < r->deadline)
        return 0;
    if (!timeout_errno)
        return pd_finish(r, 0);      /* poll / epoll_wait: timed out, nothing ready */
    errno = timeout_errno;
    return pd_finish(r, -1);
}

static void pd_wake(struct pd *a)
{
    uint64_t one = 1;
    if (write(a->wake_fd, &one, sizeof(one)) < 0)
        return;    /* counter full: it is readable anyway */
}

long pd_call(struct pd *a, struct pd_req *r)
{
    if (!a) {
        errno = EIO;     /* packetdrill_interface_init failed (see stderr) */
        return -1;
    }
    r->next = NULL;
    r->done = r->waiting = 0;
    r->deadline = UINT64_MAX;
    pthread_mutex_lock(&a->mu);
    if (a->started != 1 || a->stop) {
        pthread_mutex_unlock(&a->mu);
        errno = EIO;
        return -1;
    }
    *a->tail = r;
    a->tail = &r->next;
    pd_wake(a);
    while (!r->done)
        pthread_cond_wait(&a->changed, &a->mu);
    pthread_mutex_unlock(&a->mu);
    errno = r->err;
    return r->ret;
}

/* Run every queued step once. Returns how many completed; *deadline is
 * lowered to the earliest time a waiting request must be looked at. */
static int pd_run_requests(struct pd *a, uint64_t *deadline)
{
    int completed = 0;
    struct pd_req **pp = &a->head;
    while (*pp) {
        struct pd_req *r = *pp;
        if (r->step(a, r)) {
            *pp = r->next;
            r->done = 1;
            completed++;
            continue;
        }
        if (r->deadline < *deadline)
            *deadline = r->deadline;
        if (r->kernel_fds && ust_now_ns() + PD_KERNEL_POLL_NS < *deadline)
            *deadline = ust_now_ns() + PD_KERNEL_POLL_NS;
        pp = &r->next;
    }
    a->tail = pp;
    if (completed)
        pthread_cond_broadcast(&a->changed);
    return completed;
}

static void pd_fail_requests(struct pd *a)
{
    for (struct pd_req *r = a->head; r; r = r->next) {
        r->ret = -1;
        r->err = ECANCELED;
        r->done = 1;
    }
    a->head = NULL;
    a->tail = &a->head;
    pthread_cond_broadcast(&a->changed);
}

/* ---- the stack thread ---- */

/* Sleep (pd.mu released) until a request or a packet arrives or deadline. */
static void pd_sleep(struct pd *a, uint64_t deadline)
{
    uint64_t now = ust_now_ns();
    if (deadline <= now)
        return;
    uint64_t wait = deadline - now;
    if (wait > PD_RECV_WAIT_NS)
        wait = PD_RECV_WAIT_NS;
    struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ULL), .tv_nsec = (long)(wait % 1000000000ULL)};
    struct pollfd fds[2] = {{.fd = a->wake_fd, .events = POLLIN},
                            {.fd = pdlink_rx_fd(a->link), .events = POLLIN}};
    pthread_mutex_unlock(&a->mu);
    if (ppoll(fds, 2, &ts, NULL) > 0 && (fds[0].revents & POLLIN)) {
        uint64_t v;
        if (read(a->wake_fd, &v, sizeof(v)) < 0)
            v = 0;    /* drained by nobody else: harmless */
    }
    pthread_mutex_lock(&a->mu);
}

static void pd_loop(struct pd *a)
{
    while (!a->stop) {
        uint64_t next = ust_stack_poll(a->stack, ust_now_ns());
        /* Steps after the poll see what it received; a step that completed
         * may have queued output, so poll again before sleeping. */
        if (pd_run_requests(a, &next))
            continue;
        pd_sleep(a, next);
    }
}

static void *pd_stack_main(void *arg)
{
    struct pd *a = arg;
    struct ust_stack *s = ust_stack_create(a->cfg);
    if (s && ust_socket_attach(s) < 0) {
        ust_stack_destroy(s);
        s = NULL;
    }
    pthread_mutex_lock(&a->mu);
    a->stack = s;
    a->started = s ? 1 : -1;
    pthread_cond_broadcast(&a->changed);
    if (s) {
        pd_loop(a);
        pd_fail_requests(a);
        ust_socket_detach(s);
        ust_stack_destroy(s);
        a->stack = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- descriptors ---- */

struct pd_fd *pd_fd_get(struct pd *a, int fd, enum pd_kind kind)
{
    if (fd < 0 || fd >= PD_FD_MAX || a->fds[fd].kind == PD_FREE) {
        errno = EBADF;
        return NULL;
    }
    struct pd_fd *f = &a->fds[fd];
    if (kind != PD_FREE && f->kind != kind) {
        errno = kind == PD_SOCK ? ENOTSOCK : EINVAL;
        return NULL;
    }
    return f;
}

int pd_fd_new(struct pd *a, int ust, enum pd_kind kind, int nonblock, int cloexec)
{
    int efd = eventfd(0, cloexec ? EFD_CLOEXEC : 0);
    if (efd < 0 || efd >= PD_FD_MAX) {
        int e = efd < 0 ? errno : EMFILE;
        if (efd >= 0)
            close(efd);
        ust_close(ust);
        errno = e;
        return -1;
    }
    struct pd_fd *f = &a->fds[efd];
    if (f->kind != PD_FREE) {
        /* The kernel reused the number: packetdrill closed our eventfd
         * directly, so the ustack object behind it is orphaned. */
        fprintf(stderr, "ustack-packetdrill: fd %d was closed outside the adapter; releasing its socket\n",
                efd);
        ust_close(f->ust);
    }
    *f = (struct pd_fd){.ust = ust, .kind = (uint8_t)kind, .nonblock = nonblock != 0};
    return efd;
}

void pd_fd_close(struct pd *a, int fd)
{
    struct pd_fd *f = &a->fds[fd];
    ust_close(f->ust);
    close(fd);
    *f = (struct pd_fd){0};
}

/* ---- packets and time ---- */

uint64_t pd_wall_ns(const struct pd *a, uint64_t mono_ns) { return (uint64_t)((int64_t)mono_ns + a->wall_offset_ns); }

static int pd_netdev_send(void *ud, const void *buf, size_t count)
{
    struct pd *a = ud;
    if (!a) {
        errno = EIO;
        return -1;
    }
    const uint8_t *b = buf;
    if (!buf || count < 20 || (b[0] >> 4) != 4) {
        errno = EINVAL;      /* IPv4 only: the stack has no IPv6 */
        return -1;
    }
    return pdlink_inject(a->link, buf, count);
}

static int pd_netdev_receive(void *ud, void *buf, size_t *count, long long *time_usecs)
{
    struct pd *a = ud;
    if (!a) {
        struct timespec nap = {.tv_sec = 0, .tv_nsec = 10000000};
        nanosleep(&nap, NULL);     /* keep a caller that retries from spinning */
        *count = 0;
        errno = EIO;
        return -1;
    }
    size_t got;
    uint64_t stamp;
    if (pdlink_take(a->link, buf, *count, &got, &stamp, ust_now_ns() + PD_RECV_WAIT_NS) < 0) {
        *count = 0;
        return -1;
    }
    *count = got;
    *time_usecs = (long long)(pd_wall_ns(a, stamp) / 1000);
    return 0;
}

static int pd_usleep(void *ud, useconds_t usec)
{
    (void)ud;
    struct timespec ts = {.tv_sec = usec / 1000000, .tv_nsec = (long)(usec % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

static int pd_gettimeofday(void *ud, struct timeval *tv, struct timezone *tz)
{
    struct pd *a = ud;
    uint64_t ns = a ? pd_wall_ns(a, ust_now_ns()) : 0;
    if (!a) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    }
    if (tv) {
        tv->tv_sec = (time_t)(ns / 1000000000ULL);
        tv->tv_usec = (suseconds_t)(ns % 1000000000ULL / 1000);
    }
    if (tz)
        memset(tz, 0, sizeof(*tz));
    return 0;
}

static int pd_pipe(void *ud, int pipefd[2])
{
    (void)ud;
    return pipe(pipefd);      /* a kernel pipe: ustack has none of its own */
}

static int pd_splice(void *ud, int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                     unsigned int flags)
{
    (void)ud, (void)fd_in, (void)off_in, (void)fd_out, (void)off_out, (void)len, (void)flags;
    errno = ENOSYS;
    return -1;
}

/* ---- start and stop ---- */

/* "--ip 192.168.0.1/16 --gw ..." -> argv (in place in buf). */
static int pd_split_flags(char *buf, char **argv, int max)
{
    int argc = 0;
    argv[argc++] = "libustack-packetdrill";
    for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
        if (argc == max - 1)
            return -1;
        argv[argc++] = t;
    }
    argv[argc] = NULL;
    return argc;
}

static int pd_subnet_has(const struct ust_config *cfg, uint32_t ip)
{
    for (int i = 0; i < cfg->naddrs; i++) {
        uint32_t mask = cfg->addrs[i].prefix ? ~0u << (32 - cfg->addrs[i].prefix) : 0;
        if ((ip & mask) == (cfg->addrs[i].addr & mask))
            return 1;
    }
    return 0;
}

/* The device is always our own link; addresses default to packetdrill's. */
static int pd_adjust_config(struct ust_config *cfg, const char *link_name)
{
    if (cfg->workers != 1) {
        fprintf(stderr, "ustack-packetdrill: --workers must be 1\n");
        return -1;
    }
    if (cfg->dev[0])
        fprintf(stderr, "ustack-packetdrill: ignoring --dev %s: the device is the adapter's own link\n", cfg->dev);
    snprintf(cfg->dev, sizeof(cfg->dev), "pdlink:%s", link_name);
    if (!cfg->naddrs) {
        cfg->addrs[0] = (struct cfg_addr){.addr = PD_DEFAULT_IP, .prefix = PD_DEFAULT_PREFIX};
        cfg->naddrs = 1;
    }
    if (!cfg->gw && pd_subnet_has(cfg, PD_DEFAULT_GW))
        cfg->gw = PD_DEFAULT_GW;
    return 0;
}

static struct ust_config *pd_parse_flags(const char *flags)
{
    char buf[PD_FLAGS_MAX];
    char *argv[PD_MAX_ARGS];
    if (strlen(flags ? flags : "") >= sizeof(buf)) {
        fprintf(stderr, "ustack-packetdrill: --so_flags too long\n");
        return NULL;
    }
    strcpy(buf, flags ? flags : "");
    int argc = pd_split_flags(buf, argv, PD_MAX_ARGS);
    struct ust_config *cfg = argc < 0 ? NULL : ust_config_new();
    if (!cfg || ust_config_parse_args(cfg, &argc, argv) < 0 || argc > 1) {
        if (cfg && argc > 1)
            fprintf(stderr, "ustack-packetdrill: unknown option '%s' in --so_flags\n", argv[1]);
        ust_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static void pd_destroy(struct pd *a)
{
    for (int fd = 0; fd < PD_FD_MAX; fd++)
        if (a->fds[fd].kind != PD_FREE)
            close(fd);     /* the ustack objects went with the stack */
    pdlink_destroy(a->link);
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    ust_config_free(a->cfg);
    pthread_cond_destroy(&a->changed);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static void pd_free(void *ud)
{
    struct pd *a = ud;
    if (!a)
        return;
    pdlink_cancel(a->link);      /* a netdev_receive in progress returns */
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pd_wake(a);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    pd_destroy(a);
}

static int pd_start_thread(struct pd *a)
{
    if (pthread_create(&a->thread, NULL, pd_stack_main, a) != 0)
        return -1;
    pthread_mutex_lock(&a->mu);
    while (!a->started)
        pthread_cond_wait(&a->changed, &a->mu);
    int ok = a->started == 1;
    pthread_mutex_unlock(&a->mu);
    if (!ok)
        pthread_join(a->thread, NULL);
    return ok ? 0 : -1;
}

static struct pd *pd_create(const char *flags)
{
    struct pd *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->changed, NULL);
    a->tail = &a->head;
    a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    char name[32];
    snprintf(name, sizeof(name), "pd%d", pd_instances++);
    uint32_t mtu;
    a->cfg = pd_parse_flags(flags);
    if (a->cfg && pd_adjust_config(a->cfg, name) == 0) {
        mtu = a->cfg->mtu ? a->cfg->mtu : PDLINK_MTU_DEFAULT;
        a->link = pdlink_create(name, mtu);
    }
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    a->wall_offset_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec - (int64_t)ust_now_ns();
    if (a->wake_fd < 0 || !a->link || pd_start_thread(a) < 0) {
        pd_destroy(a);
        return NULL;
    }
    return a;
}

void packetdrill_interface_init(const char *flags, struct packetdrill_interface *ifc)
{
    memset(ifc, 0, sizeof(*ifc));
    pd_fill_calls(ifc);
    ifc->free = pd_free;
    ifc->netdev_send = pd_netdev_send;
    ifc->netdev_receive = pd_netdev_receive;
    ifc->usleep = pd_usleep;
    ifc->gettimeofday = pd_gettimeofday;
    ifc->pipe = pd_pipe;
    ifc->splice = pd_splice;
    /* On failure every entry still exists and fails with EIO. */
    ifc->userdata = pd_create(flags);
    if (!ifc->userdata)
        fprintf(stderr, "ustack-packetdrill: initialisation failed (--so_flags \"%s\")\n", flags ? flags : "");
}
