/* pd-driver: exercises libustack-packetdrill.so the way packetdrill does,
 * without packetdrill (it is not packaged): dlopen the object, call
 * packetdrill_interface_init with "--ip 192.168.0.1/16", then play a
 * passive open, data both ways and a close through the table, injecting
 * raw IPv4 segments with netdev_send and asserting the exact segments
 * netdev_receive returns. Also checks that a blocking accept on a second
 * thread sleeps (no CPU burnt) and wakes when the connection completes,
 * that descriptors are real kernel fds, and that packets are stamped on the
 * gettimeofday hook's clock.
 *
 * usage: pd-driver [PATH-TO-libustack-packetdrill.so]   exit 0 = pass
 * PD_DRIVER_NO_DEEPBIND=1 drops RTLD_DEEPBIND (for sanitizer builds). */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../tools/packetdrill/pd_interface.h"
#include "net/ipv4.h"
#include "tcp/tcp.h"
#include "wire/checksum.h"
#include "wire/ipv4.h"
#include "wire/tcp.h"

#define LOCAL_IP 0xc0a80001u     /* 192.168.0.1: the stack (packetdrill's local)  */
#define REMOTE_IP 0xc0000201u    /* 192.0.2.1: packetdrill's remote, via gateway   */
#define LOCAL_PORT 8080
#define REMOTE_PORT 40000
#define PEER_ISN 1000u
#define PEER_MSS 1000
#define PEER_WSCALE 7
#define STACK_MSS 1460           /* 1500 - 20 - 20: the link MTU */
#define SLEEP_CHECK_MS 300
#define SLEEP_CPU_MAX_MS 30      /* CPU both threads may use while idle */

static struct packetdrill_interface pd;
static int failures;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

#define EXPECT(cond, ...)             \
    do {                              \
        if (!(cond))                  \
            fail(__VA_ARGS__);        \
    } while (0)

#define REQUIRE(cond, ...)            \
    do {                              \
        if (!(cond)) {                \
            fail(__VA_ARGS__);        \
            exit(1);                  \
        }                             \
    } while (0)

/* ---- segments ---- */

struct seg {
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t win;
    struct tcp_opts opt;
    const void *data;
    size_t len;
};

static size_t seg_build(const struct seg *s, uint8_t *buf, size_t cap)
{
    struct tcp_repr t = {.sport = REMOTE_PORT, .dport = LOCAL_PORT, .seq = s->seq, .ack = s->ack,
                         .flags = s->flags, .win = s->win, .opt = s->opt};
    size_t th = TCP_HDR_LEN + tcp_opts_len(&s->opt);
    size_t total = IPV4_HDR_LEN + th + s->len;
    REQUIRE(total <= cap, "segment too big");
    if (s->len)
        memcpy(buf + IPV4_HDR_LEN + th, s->data, s->len);
    uint32_t pseudo = csum_pseudo_ipv4(REMOTE_IP, LOCAL_IP, IPPROTO_TCP_, (uint16_t)(th + s->len));
    REQUIRE(tcp_emit(&t, buf + IPV4_HDR_LEN, cap - IPV4_HDR_LEN, s->len, pseudo) == (int)th, "tcp_emit");
    struct ipv4_repr ip = {.total_len = (uint16_t)total, .id = 1, .df = 1, .ttl = 64, .proto = IPPROTO_TCP_,
                           .src = REMOTE_IP, .dst = LOCAL_IP};
    REQUIRE(ipv4_emit(&ip, buf, cap) == IPV4_HDR_LEN, "ipv4_emit");
    return total;
}

static void inject(const struct seg *s)
{
    uint8_t buf[2048];
    size_t n = seg_build(s, buf, sizeof(buf));
    REQUIRE(pd.netdev_send(pd.userdata, buf, n) == 0, "netdev_send: %s", strerror(errno));
}

/* What the stack sent, parsed and checked (IPv4 and TCP checksums,
 * addresses, ports, TTL, DF). */
struct got {
    struct tcp_repr t;
    uint8_t data[2048];
    size_t len;
    long long usecs;
};

static long long now_usecs(void)
{
    struct timeval tv;
    pd.gettimeofday(pd.userdata, &tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void take(struct got *g)
{
    uint8_t buf[2048];
    size_t n = 0;
    for (int tries = 0; tries < 3; tries++) {
        n = sizeof(buf);
        if (pd.netdev_receive(pd.userdata, buf, &n, &g->usecs) == 0)
            break;
        n = 0;
    }
    REQUIRE(n > 0, "netdev_receive: no packet from the stack within 3 s");
    struct ipv4_repr ip;
    int ihl = ipv4_parse(buf, n, &ip);
    REQUIRE(ihl == IPV4_HDR_LEN, "IPv4 header invalid or with options (%d)", ihl);
    REQUIRE(ip.total_len == n, "IPv4 total length %u, packet %zu", ip.total_len, n);
    EXPECT(ip.src == LOCAL_IP && ip.dst == REMOTE_IP, "addresses %08x -> %08x", ip.src, ip.dst);
    EXPECT(ip.proto == IPPROTO_TCP_, "protocol %u", ip.proto);
    EXPECT(ip.ttl == IP_DEFAULT_TTL, "TTL %u", ip.ttl);
    EXPECT(ip.df && !ip.mf && !ip.frag_off, "fragment bits df=%u mf=%u off=%u", ip.df, ip.mf, ip.frag_off);
    uint32_t pseudo = csum_pseudo_ipv4(ip.src, ip.dst, IPPROTO_TCP_, (uint16_t)(n - IPV4_HDR_LEN));
    int th = tcp_parse(buf + IPV4_HDR_LEN, n - IPV4_HDR_LEN, pseudo, 1, &g->t);
    REQUIRE(th > 0, "TCP header or checksum invalid (%d)", th);
    EXPECT(g->t.sport == LOCAL_PORT && g->t.dport == REMOTE_PORT, "ports %u -> %u", g->t.sport, g->t.dport);
    g->len = n - IPV4_HDR_LEN - (size_t)th;
    memcpy(g->data, buf + IPV4_HDR_LEN + th, g->len);
    printf("  < flags %02x seq %u ack %u win %u len %zu\n", g->t.flags, g->t.seq, g->t.ack, g->t.win, g->len);
}

static void expect_seg(const struct got *g, uint8_t flags, uint32_t seq, uint32_t ack, const char *data,
                       size_t len)
{
    EXPECT(g->t.flags == flags, "flags %02x, want %02x", g->t.flags, flags);
    EXPECT(g->t.seq == seq, "seq %u, want %u", g->t.seq, seq);
    EXPECT(g->t.ack == ack, "ack %u, want %u", g->t.ack, ack);
    EXPECT(g->len == len && (len == 0 || memcmp(g->data, data, len) == 0), "payload (%zu bytes), want %zu", g->len,
           len);
    EXPECT(g->t.win > 0, "zero window");
    EXPECT(!g->t.opt.has_mss && !g->t.opt.has_ws && !g->t.opt.sack_ok && !g->t.opt.sack_count,
           "unexpected options on a non-SYN segment");
}

/* Nothing more may come out (e.g. no RST, no retransmission). */
static void expect_silence(void)
{
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 200 * 1000000};
    nanosleep(&nap, NULL);
    uint8_t buf[2048];
    size_t n = sizeof(buf);
    long long t;
    /* A packet already queued comes back at once; otherwise this waits
     * the adapter's 1 s receive deadline and fails. */
    EXPECT(pd.netdev_receive(pd.userdata, buf, &n, &t) < 0 && n == 0, "unexpected packet (%zu bytes)", n);
}

/* ---- the blocking accept thread ---- */

static int listen_fd;
static atomic_int accepted_fd = -2;

static void *accept_main(void *arg)
{
    (void)arg;
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    int fd = pd.accept(pd.userdata, listen_fd, (struct sockaddr *)&peer, &len);
    if (fd >= 0 && (peer.sin_addr.s_addr != htonl(REMOTE_IP) || ntohs(peer.sin_port) != REMOTE_PORT))
        fail("accept: wrong peer address");
    atomic_store(&accepted_fd, fd >= 0 ? fd : -1);
    return NULL;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- the scenario ---- */

static void check_kernel_fd(int fd, const char *what)
{
    EXPECT(fd >= 0 && fd < (1 << 30) && fcntl(fd, F_GETFD) >= 0, "%s: fd %d is not a kernel descriptor", what, fd);
}

static void open_listener(void)
{
    listen_fd = pd.socket(pd.userdata, AF_INET, SOCK_STREAM, IPPROTO_TCP);
    check_kernel_fd(listen_fd, "socket");
    int one = 1;
    EXPECT(pd.setsockopt(pd.userdata, listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0, "setsockopt");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(LOCAL_PORT), .sin_addr.s_addr = INADDR_ANY};
    REQUIRE(pd.bind(pd.userdata, listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
    REQUIRE(pd.listen(pd.userdata, listen_fd, 1) == 0, "listen: %s", strerror(errno));
    /* Non-blocking accept: nothing yet. */
    EXPECT(pd.fcntl(pd.userdata, listen_fd, F_SETFL, O_RDWR | O_NONBLOCK) == 0, "fcntl O_NONBLOCK");
    EXPECT(pd.accept(pd.userdata, listen_fd, NULL, NULL) == -1 && errno == EAGAIN, "non-blocking accept: EAGAIN");
    EXPECT(pd.fcntl(pd.userdata, listen_fd, F_SETFL, O_RDWR) == 0, "fcntl blocking");
    EXPECT(pd.fcntl(pd.userdata, listen_fd, F_GETFL) == O_RDWR, "F_GETFL: O_RDWR, blocking");
}

/* Blocking accept on a second thread: it must sleep, not spin. */
static pthread_t start_blocking_accept(void)
{
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, accept_main, NULL) == 0, "pthread_create");
    double c0 = cpu_ms();
    struct timespec nap = {.tv_sec = 0, .tv_nsec = SLEEP_CHECK_MS * 1000000L};
    nanosleep(&nap, NULL);
    double used = cpu_ms() - c0;
    printf("blocking accept: %.1f ms CPU in %d ms\n", used, SLEEP_CHECK_MS);
    EXPECT(used < SLEEP_CPU_MAX_MS, "blocked accept burnt %.1f ms of CPU in %d ms", used, SLEEP_CHECK_MS);
    EXPECT(atomic_load(&accepted_fd) == -2, "accept returned before any connection");
    return th;
}

static uint32_t handshake(pthread_t th)
{
    struct seg syn = {.seq = PEER_ISN, .flags = TCP_SYN, .win = 32792,
                      .opt = {.has_mss = 1, .mss = PEER_MSS, .sack_ok = 1, .has_ws = 1, .wscale = PEER_WSCALE}};
    long long t0 = now_usecs();
    inject(&syn);
    struct got g;
    take(&g);
    long long t1 = now_usecs();
    EXPECT(g.usecs >= t0 && g.usecs <= t1, "SYN-ACK stamped %lld, outside [%lld, %lld]", g.usecs, t0, t1);
    /* RFC 9293 3.10.7.2 + RFC 7323 / 2018: SYN-ACK acks our ISN and answers
     * with MSS, window scale and SACK-permitted because our SYN had them;
     * no timestamps because it had none. */
    EXPECT(g.t.flags == (TCP_SYN | TCP_ACK), "SYN-ACK flags %02x", g.t.flags);
    EXPECT(g.t.ack == PEER_ISN + 1, "SYN-ACK ack %u", g.t.ack);
    EXPECT(g.len == 0, "SYN-ACK carries data");
    EXPECT(g.t.opt.has_mss && g.t.opt.mss == STACK_MSS, "SYN-ACK MSS %u", g.t.opt.mss);
    EXPECT(g.t.opt.has_ws && g.t.opt.wscale == TCP_RCV_WSCALE, "SYN-ACK window scale %u", g.t.opt.wscale);
    EXPECT(g.t.opt.sack_ok, "SYN-ACK without SACK-permitted");
    EXPECT(!g.t.opt.has_ts, "SYN-ACK with timestamps");
    EXPECT(g.t.win > 0, "SYN-ACK window 0");
    uint32_t isn = g.t.seq;
    EXPECT(atomic_load(&accepted_fd) == -2, "accept returned before the handshake completed");
    inject(&(struct seg){.seq = PEER_ISN + 1, .ack = isn + 1, .flags = TCP_ACK, .win = 257});
    pthread_join(th, NULL);
    check_kernel_fd(atomic_load(&accepted_fd), "accept");
    EXPECT(atomic_load(&accepted_fd) != listen_fd, "accept returned the listener's fd");
    return isn;
}

/* Take the next segment, skipping one pure ACK of ack_wanted (a delayed
 * ACK may or may not come before the segment we look for). */
static void take_skipping_ack(struct got *g, uint32_t seq, uint32_t ack_wanted)
{
    take(g);
    if (g->t.flags == TCP_ACK && g->len == 0 && g->t.seq == seq && g->t.ack == ack_wanted)
        take(g);
}

static void data_exchange(int c, uint32_t isn)
{
    uint32_t rcv = PEER_ISN + 1;
    inject(&(struct seg){.seq = rcv, .ack = isn + 1, .flags = TCP_ACK | TCP_PSH, .win = 257, .data = "hello",
                         .len = 5});
    rcv += 5;
    char buf[64];
    ssize_t n = pd.read(pd.userdata, c, buf, sizeof(buf));
    EXPECT(n == 5 && memcmp(buf, "hello", 5) == 0, "read: %zd", n);
    /* Non-blocking read with nothing queued. */
    EXPECT(pd.fcntl(pd.userdata, c, F_SETFL, O_RDWR | O_NONBLOCK) == 0, "fcntl");
    EXPECT(pd.read(pd.userdata, c, buf, sizeof(buf)) == -1 && errno == EAGAIN, "non-blocking read: EAGAIN");
    EXPECT(pd.fcntl(pd.userdata, c, F_SETFL, O_RDWR) == 0, "fcntl");

    EXPECT(pd.write(pd.userdata, c, "world!", 6) == 6, "write");
    struct got g;
    take_skipping_ack(&g, isn + 1, rcv);
    expect_seg(&g, TCP_ACK | TCP_PSH, isn + 1, rcv, "world!", 6);
    inject(&(struct seg){.seq = rcv, .ack = isn + 7, .flags = TCP_ACK, .win = 257});
}

static void close_both_ways(int c, uint32_t isn)
{
    uint32_t rcv = PEER_ISN + 1 + 5;
    /* Peer closes first: FIN, then our read sees EOF. */
    inject(&(struct seg){.seq = rcv, .ack = isn + 7, .flags = TCP_ACK | TCP_FIN, .win = 257});
    rcv++;
    char buf[8];
    EXPECT(pd.read(pd.userdata, c, buf, sizeof(buf)) == 0, "read after FIN: EOF");
    EXPECT(pd.close(pd.userdata, c) == 0, "close");
    /* RFC 9293 3.6: CLOSE-WAIT -> LAST-ACK sends our FIN (the ACK of the
     * peer's FIN may come first, or ride on it). */
    struct got g;
    take_skipping_ack(&g, isn + 7, rcv);
    expect_seg(&g, TCP_ACK | TCP_FIN, isn + 7, rcv, NULL, 0);
    inject(&(struct seg){.seq = rcv, .ack = isn + 8, .flags = TCP_ACK, .win = 257});
    expect_silence();
}

/* packetdrill may close() an fd itself: the adapter must cope. */
static void kernel_close_is_harmless(void)
{
    int fd = pd.socket(pd.userdata, AF_INET, SOCK_STREAM, 0);
    check_kernel_fd(fd, "socket");
    close(fd);
    int again = pd.socket(pd.userdata, AF_INET, SOCK_STREAM, 0);
    check_kernel_fd(again, "socket after a kernel close");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9090)};
    EXPECT(pd.bind(pd.userdata, again, (struct sockaddr *)&a, sizeof(a)) == 0, "bind on the new socket");
    EXPECT(pd.close(pd.userdata, again) == 0, "close");
    EXPECT(pd.close(pd.userdata, again) == -1 && errno == EBADF, "double close: EBADF");
    EXPECT(pd.splice(pd.userdata, 0, NULL, 1, NULL, 1, 0) == -1 && errno == ENOSYS, "splice: ENOSYS");
}

static void check_table_complete(void)
{
    void *const *entry = (void *const *)((const char *)&pd + sizeof(void *));
    size_t n = (sizeof(pd) - sizeof(void *)) / sizeof(void *);
    for (size_t i = 0; i < n; i++)
        REQUIRE(entry[i] != NULL, "table entry %zu is NULL", i);
}

/* A second instance after free, with empty flags: packetdrill's default
 * addresses and gateway, so an active open toward its remote address
 * (off-subnet) goes out. Then flags that are not stack options make init
 * fail, with every entry still set. */
static void reinit(packetdrill_interface_init_t init)
{
    init("", &pd);
    REQUIRE(pd.userdata, "second packetdrill_interface_init failed");
    int fd = pd.socket(pd.userdata, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    check_kernel_fd(fd, "socket (second instance)");
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(LOCAL_PORT),
                             .sin_addr.s_addr = htonl(REMOTE_IP)};
    EXPECT(pd.connect(pd.userdata, fd, (struct sockaddr *)&to, sizeof(to)) == -1 && errno == EINPROGRESS,
           "non-blocking connect: EINPROGRESS");
    uint8_t buf[256];
    size_t n = sizeof(buf);
    long long t;
    struct ipv4_repr ip = {0};
    struct tcp_repr tcp = {0};
    REQUIRE(pd.netdev_receive(pd.userdata, buf, &n, &t) == 0 && ipv4_parse(buf, n, &ip) == IPV4_HDR_LEN,
            "no SYN from the default configuration");
    EXPECT(ip.src == LOCAL_IP && ip.dst == REMOTE_IP, "default addresses %08x -> %08x", ip.src, ip.dst);
    uint32_t pseudo = csum_pseudo_ipv4(ip.src, ip.dst, IPPROTO_TCP_, (uint16_t)(n - IPV4_HDR_LEN));
    EXPECT(tcp_parse(buf + IPV4_HDR_LEN, n - IPV4_HDR_LEN, pseudo, 1, &tcp) > 0 && tcp.flags == TCP_SYN &&
               tcp.dport == LOCAL_PORT,
           "SYN expected (flags %02x)", tcp.flags);
    EXPECT(pd.close(pd.userdata, fd) == 0, "close (second instance)");
    pd.free(pd.userdata);
    init("--no-such-option", &pd);
    EXPECT(!pd.userdata, "init with a bad flag must fail");
    check_table_complete();
    EXPECT(pd.socket(pd.userdata, AF_INET, SOCK_STREAM, 0) == -1 && errno == EIO, "failed instance: EIO");
    pd.free(pd.userdata);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "build/lib/libustack-packetdrill.so";
    /* packetdrill's own dlopen flags; sanitizer runtimes refuse DEEPBIND. */
    int deep = getenv("PD_DRIVER_NO_DEEPBIND") ? 0 : RTLD_DEEPBIND;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE | deep);
    REQUIRE(h, "dlopen %s: %s", path, dlerror());
    packetdrill_interface_init_t init = (packetdrill_interface_init_t)dlsym(h, "packetdrill_interface_init");
    REQUIRE(init, "dlsym: %s", dlerror());
    REQUIRE(dlsym(h, "ust_stack_create") == NULL, "the object exports more than packetdrill_interface_init");
    init("--ip 192.168.0.1/16", &pd);
    REQUIRE(pd.userdata, "packetdrill_interface_init failed");
    check_table_complete();

    open_listener();
    pthread_t th = start_blocking_accept();
    uint32_t isn = handshake(th);
    int c = atomic_load(&accepted_fd);
    if (c >= 0) {
        data_exchange(c, isn);
        close_both_ways(c, isn);
    }
    kernel_close_is_harmless();
    EXPECT(pd.close(pd.userdata, listen_fd) == 0, "close listener");
    pd.free(pd.userdata);
    reinit(init);
    dlclose(h);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("pd-driver: all checks passed\n");
    return 0;
}
