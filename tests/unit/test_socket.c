/* The POSIX-like socket API: a ustack client and a ustack server in one
 * process (tests/lib/sockfx.h), every call's success and error paths. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>

#include "harness.h"
#include "sockfx.h"

#define PORT 8080

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

static struct sockaddr *SA(struct sockaddr_in *a) { return (struct sockaddr *)a; }

/* Server listening on PORT, a blocking client connected, the server's end
 * accepted. */
static void open_pair(HARNESS_ARGS, struct sockfx *f, int *lfd, int *cfd, int *sfd)
{
    struct sockaddr_in peer;
    CHECK_EQ(sfx_open_pair(f, PORT, SOCK_NONBLOCK, lfd, cfd, sfd, &peer), 0);
    CHECK_EQ(peer.sin_addr.s_addr, sfx_addr(SFX_CLI_IP, 0).sin_addr.s_addr);
}

TEST(connect_accept_echo)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    CHECK_EQ(ust_write(c, "hello", 5), 5);
    char buf[64];
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_read(s, buf, sizeof(buf)), 5);
    CHECK_MEM(buf, "hello", 5);
    CHECK_EQ(ust_send(s, "world!", 6, MSG_NOSIGNAL), 6);
    /* Blocking read on the client runs both stacks until the data is there. */
    CHECK_EQ(ust_recv(c, buf, sizeof(buf), 0), 6);
    CHECK_MEM(buf, "world!", 6);
    /* Names. */
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    CHECK_EQ(ust_getsockname(c, SA(&a), &al), 0);
    CHECK_EQ(a.sin_addr.s_addr, sfx_addr(SFX_CLI_IP, 0).sin_addr.s_addr);
    CHECK(ntohs(a.sin_port) != 0);
    al = sizeof(a);
    CHECK_EQ(ust_getpeername(c, SA(&a), &al), 0);
    CHECK_EQ(ntohs(a.sin_port), PORT);
    al = sizeof(a);
    CHECK_EQ(ust_getsockname(l, SA(&a), &al), 0);
    CHECK_EQ(ntohs(a.sin_port), PORT);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(closed_port_refused)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    sfx_use(f.cli);
    int c = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, 9);
    errno = 0;
    CHECK_EQ(ust_connect(c, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    /* Non-blocking: EINPROGRESS, then SO_ERROR tells, and clears. */
    int n = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_EQ(ust_connect(n, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, EINPROGRESS);
    sfx_run(&f, 5000000);
    int err = -1;
    socklen_t el = sizeof(err);
    CHECK_EQ(ust_getsockopt(n, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    CHECK_EQ(err, ECONNREFUSED);
    CHECK_EQ(ust_getsockopt(n, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    CHECK_EQ(err, 0);
    CHECK_EQ(ust_close(c), 0);
    CHECK_EQ(ust_close(n), 0);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(reset_gives_econnreset_then_epipe_without_sigpipe)
{
    struct sockfx f;
    int l, c, s;
    struct sigaction sa = {.sa_handler = on_sigpipe}, old;
    sigaction(SIGPIPE, &sa, &old);
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ(ust_setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(ust_close(s), 0);   /* abortive close: RST */
    char buf[16];
    errno = 0;
    CHECK_EQ(ust_read(c, buf, sizeof(buf)), -1);
    CHECK_EQ(errno, ECONNRESET);
    CHECK_EQ(ust_write(c, "x", 1), -1);
    CHECK_EQ(errno, EPIPE);
    CHECK_EQ(ust_send(c, "x", 1, 0), -1);
    CHECK_EQ(errno, EPIPE);
    CHECK_EQ(ust_read(c, buf, sizeof(buf)), 0);   /* the error was reported once */
    CHECK_EQ(sigpipes, 0);
    sigaction(SIGPIPE, &old, NULL);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(write_first_after_reset_reports_reset_once)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    CHECK_EQ(ust_setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(ust_close(s), 0);
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_write(c, "x", 1), -1);
    CHECK_EQ(errno, ECONNRESET);
    CHECK_EQ(ust_write(c, "x", 1), -1);
    CHECK_EQ(errno, EPIPE);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(accept_errors)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int t = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(ust_accept(t, NULL, NULL), -1);
    CHECK_EQ(errno, EINVAL);   /* not listening */
    int u = ust_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(ust_accept(u, NULL, NULL), -1);
    CHECK_EQ(errno, EOPNOTSUPP);
    CHECK_EQ(ust_listen(u, 1), -1);
    CHECK_EQ(errno, EOPNOTSUPP);
    CHECK_EQ(ust_listen(t, 4), 0);   /* autobinds an ephemeral port */
    CHECK_EQ(ust_accept4(t, NULL, NULL, 0x4000000), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_fcntl(t, F_SETFL, O_NONBLOCK), 0);
    CHECK_EQ(ust_fcntl(t, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    CHECK_EQ(ust_accept(t, NULL, NULL), -1);
    CHECK_EQ(errno, EAGAIN);
    /* Blocking accept with SO_RCVTIMEO times out with EAGAIN. */
    CHECK_EQ(ust_fcntl(t, F_SETFL, 0), 0);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 300000};
    CHECK_EQ(ust_setsockopt(t, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    uint64_t t0 = f.now;
    CHECK_EQ(ust_accept(t, NULL, NULL), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK(f.now - t0 >= 300000000ULL);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(bad_descriptors)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    char b[4];
    CHECK_EQ(ust_read(0, b, 1), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_write(UST_FD_BASE + 4242, b, 1), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_close(-1), -1);
    CHECK_EQ(errno, EBADF);
    int s = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(ust_close(s), 0);
    CHECK_EQ(ust_close(s), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_listen(s, 1), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_fcntl(s, F_GETFL), -1);
    CHECK_EQ(errno, EBADF);
    /* Slots are reused, the descriptor range never reaches kernel fds. */
    int s2 = ust_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(ust_is_fd(s2));
    int ep = ust_socket(AF_INET6, SOCK_STREAM, 0);
    CHECK_EQ(ep, -1);
    CHECK_EQ(errno, EAFNOSUPPORT);
    CHECK_EQ(ust_socket(AF_INET, SOCK_RAW, 0), -1);
    CHECK_EQ(errno, ESOCKTNOSUPPORT);
    CHECK_EQ(ust_socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), -1);
    CHECK_EQ(errno, EPROTONOSUPPORT);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(connect_twice)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int l = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = sfx_addr("0.0.0.0", PORT);
    CHECK_EQ(ust_bind(l, SA(&a), sizeof(a)), 0);
    CHECK_EQ(ust_listen(l, 4), 0);
    sfx_use(f.cli);
    int c = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT);
    CHECK_EQ(ust_connect(c, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, EINPROGRESS);
    CHECK_EQ(ust_connect(c, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, EALREADY);
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_connect(c, SA(&to), sizeof(to)), 0);
    CHECK_EQ(ust_connect(c, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, EISCONN);
    CHECK_EQ(ust_connect(l, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, EISCONN);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(bind_errors)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    struct sockaddr_in a = sfx_addr("0.0.0.0", PORT);
    int x = ust_socket(AF_INET, SOCK_STREAM, 0), y = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(ust_bind(x, SA(&a), sizeof(a)), 0);
    CHECK_EQ(ust_bind(x, SA(&a), sizeof(a)), -1);
    CHECK_EQ(errno, EINVAL);   /* already bound */
    CHECK_EQ(ust_bind(y, SA(&a), sizeof(a)), -1);
    CHECK_EQ(errno, EADDRINUSE);
    CHECK_EQ(ust_listen(x, 4), 0);
    int one = 1;
    CHECK_EQ(ust_setsockopt(y, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    CHECK_EQ(ust_bind(y, SA(&a), sizeof(a)), -1);
    CHECK_EQ(errno, EADDRINUSE);   /* a listener owns it even with SO_REUSEADDR */
    struct sockaddr_in other = sfx_addr("10.9.9.9", 1234);
    CHECK_EQ(ust_bind(y, SA(&other), sizeof(other)), -1);
    CHECK_EQ(errno, EADDRNOTAVAIL);
    CHECK_EQ(ust_bind(y, SA(&a), 4), -1);
    CHECK_EQ(errno, EINVAL);
    /* Two sockets with SO_REUSEADDR may share a port until one listens. */
    int p = ust_socket(AF_INET, SOCK_STREAM, 0), q = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in b = sfx_addr(SFX_SRV_IP, 9000);
    CHECK_EQ(ust_setsockopt(p, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    CHECK_EQ(ust_setsockopt(q, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    CHECK_EQ(ust_bind(p, SA(&b), sizeof(b)), 0);
    CHECK_EQ(ust_bind(q, SA(&b), sizeof(b)), 0);
    /* Port 0: an ephemeral port, shown by getsockname. */
    int e = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in z = sfx_addr("0.0.0.0", 0), got;
    socklen_t gl = sizeof(got);
    CHECK_EQ(ust_bind(e, SA(&z), sizeof(z)), 0);
    CHECK_EQ(ust_getsockname(e, SA(&got), &gl), 0);
    CHECK(ntohs(got.sin_port) >= 32768);
    /* UDP. */
    int u1 = ust_socket(AF_INET, SOCK_DGRAM, 0), u2 = ust_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(ust_bind(u1, SA(&a), sizeof(a)), 0);
    CHECK_EQ(ust_bind(u2, SA(&a), sizeof(a)), -1);
    CHECK_EQ(errno, EADDRINUSE);
    CHECK_EQ(sfx_close(&f), 0);
}

/* IP_BIND_ADDRESS_NO_PORT: bind() keeps the address, connect() picks a
 * port for the 4-tuple; listen() on such a socket still gets a port. */
TEST(bind_address_no_port)
{
    int l, c, s;
    struct sockfx f;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    sfx_use(f.cli);
    int one = 1, v = 0;
    socklen_t vl = sizeof(v);
    struct sockaddr_in src = sfx_addr(SFX_CLI_IP, 0), to = sfx_addr(SFX_SRV_IP, PORT), got;
    int fds[2];
    uint16_t ports[2];
    for (int i = 0; i < 2; i++) {
        fds[i] = ust_socket(AF_INET, SOCK_STREAM, 0);
        CHECK_EQ(ust_setsockopt(fds[i], IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)), 0);
        CHECK_EQ(ust_getsockopt(fds[i], IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, &vl), 0);
        CHECK_EQ(v, 1);
        CHECK_EQ(ust_bind(fds[i], SA(&src), sizeof(src)), 0);
        socklen_t gl = sizeof(got);
        CHECK_EQ(ust_getsockname(fds[i], SA(&got), &gl), 0);
        CHECK_EQ(got.sin_port, 0);   /* no port yet */
        CHECK_EQ(ust_bind(fds[i], SA(&src), sizeof(src)), -1);
        CHECK_EQ(errno, EINVAL);
    }
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(ust_connect(fds[i], SA(&to), sizeof(to)), 0);
        socklen_t gl = sizeof(got);
        CHECK_EQ(ust_getsockname(fds[i], SA(&got), &gl), 0);
        CHECK_EQ(got.sin_addr.s_addr, src.sin_addr.s_addr);
        ports[i] = ntohs(got.sin_port);
        CHECK(ports[i] != 0);
    }
    CHECK(ports[0] != ports[1]);
    /* A refused connect leaves the address bound (Linux): bind again is
     * EINVAL, and the retry keeps the address. */
    int r = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in closed = sfx_addr(SFX_SRV_IP, 9);
    CHECK_EQ(ust_setsockopt(r, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)), 0);
    CHECK_EQ(ust_bind(r, SA(&src), sizeof(src)), 0);
    CHECK_EQ(ust_connect(r, SA(&closed), sizeof(closed)), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK_EQ(ust_bind(r, SA(&src), sizeof(src)), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_connect(r, SA(&to), sizeof(to)), 0);
    socklen_t rl = sizeof(got);
    CHECK_EQ(ust_getsockname(r, SA(&got), &rl), 0);
    CHECK_EQ(got.sin_addr.s_addr, src.sin_addr.s_addr);
    int ln = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(ust_setsockopt(ln, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)), 0);
    CHECK_EQ(ust_bind(ln, SA(&src), sizeof(src)), 0);
    CHECK_EQ(ust_listen(ln, 4), 0);
    socklen_t gl = sizeof(got);
    CHECK_EQ(ust_getsockname(ln, SA(&got), &gl), 0);
    CHECK(ntohs(got.sin_port) != 0);
    CHECK_EQ(ust_getsockopt(ln, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &v, &vl), 0);
    CHECK_EQ(v, 1);   /* the option keeps its value through listen */
    CHECK_EQ(ust_setsockopt(ln, IPPROTO_IP, IP_TOS, &one, sizeof(one)), -1);
    CHECK_EQ(errno, ENOPROTOOPT);
    CHECK_EQ(sfx_close(&f), 0);
}

/* Buffer autotuning: a bulk reader that drains its buffer every RTT gets a
 * larger one, the sender's grows with its window; a size set with
 * SO_RCVBUF/SO_SNDBUF stays as set. */
static void bulk_transfer(HARNESS_ARGS, struct sockfx *f, int c, int s, size_t total)
{
    static uint8_t out[65536], in[1 << 20];
    size_t sent = 0, got = 0;
    for (int i = 0; i < 20000 && got < total; i++) {
        sfx_use(f->cli);
        ssize_t n;
        while (sent < total && (n = ust_write(c, out, sizeof(out))) > 0)
            sent += (size_t)n;   /* fill the send buffer: the window, not the app, limits */
        sfx_run(f, 50000);
        sfx_use(f->srv);
        while ((n = ust_read(s, in, sizeof(in))) > 0)
            got += (size_t)n;
    }
    CHECK(got >= total);
}

TEST(buffers_autotune_unless_set)
{
    struct sockfx f;
    int l, c, s, v;
    socklen_t vl = sizeof(v);
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    CHECK_EQ(ust_fcntl(c, F_SETFL, O_NONBLOCK), 0);
    bulk_transfer(HARNESS_PASS, &f, c, s, 32u << 20);
    CHECK_OK();
    CHECK_EQ(ust_getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
    CHECK(v > 262144);
    CHECK(v <= 4 << 20);
    CHECK_EQ(ust_getsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
    CHECK(v > 262144);
    CHECK(v <= 4 << 20);
    /* Fixed sizes: set on the listener (inherited) and on the client. */
    sfx_use(f.srv);
    int l2 = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), fixed = 100000;
    struct sockaddr_in a = sfx_addr("0.0.0.0", PORT + 1);
    CHECK_EQ(ust_setsockopt(l2, SOL_SOCKET, SO_RCVBUF, &fixed, sizeof(fixed)), 0);
    CHECK_EQ(ust_bind(l2, SA(&a), sizeof(a)), 0);
    CHECK_EQ(ust_listen(l2, 4), 0);
    sfx_use(f.cli);
    int c2 = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(ust_setsockopt(c2, SOL_SOCKET, SO_SNDBUF, &fixed, sizeof(fixed)), 0);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT + 1);
    CHECK_EQ(ust_connect(c2, SA(&to), sizeof(to)), 0);
    CHECK_EQ(ust_fcntl(c2, F_SETFL, O_NONBLOCK), 0);
    sfx_use(f.srv);
    int s2 = ust_accept4(l2, NULL, NULL, SOCK_NONBLOCK);
    CHECK(s2 >= UST_FD_BASE);
    bulk_transfer(HARNESS_PASS, &f, c2, s2, 8u << 20);
    CHECK_OK();
    CHECK_EQ(ust_getsockopt(s2, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
    CHECK_EQ(v, fixed);
    CHECK_EQ(ust_getsockopt(c2, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
    CHECK_EQ(v, fixed);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(unconnected_errors)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int t = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    char b[4];
    CHECK_EQ(ust_getpeername(t, SA(&a), &al), -1);
    CHECK_EQ(errno, ENOTCONN);
    CHECK_EQ(ust_recv(t, b, 1, 0), -1);
    CHECK_EQ(errno, ENOTCONN);
    CHECK_EQ(ust_send(t, b, 1, 0), -1);
    CHECK_EQ(errno, EPIPE);
    CHECK_EQ(ust_shutdown(t, SHUT_WR), -1);
    CHECK_EQ(errno, ENOTCONN);
    CHECK_EQ(ust_shutdown(t, 7), -1);
    CHECK_EQ(errno, EINVAL);
    int u = ust_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(ust_send(u, b, 1, 0), -1);
    CHECK_EQ(errno, EDESTADDRREQ);
    CHECK_EQ(ust_getpeername(u, SA(&a), &al), -1);
    CHECK_EQ(errno, ENOTCONN);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(peek_readv_writev_waitall)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    struct iovec out[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
    CHECK_EQ(ust_writev(c, out, 3), 8);
    sfx_run(&f, 2000000);
    char buf[16] = {0};
    CHECK_EQ(ust_recv(s, buf, 4, MSG_PEEK), 4);
    CHECK_MEM(buf, "abcd", 4);
    CHECK_EQ(ust_recv(s, buf, 16, MSG_PEEK | MSG_DONTWAIT), 8);
    int avail = 0;
    CHECK_EQ(ust_ioctl(s, FIONREAD, &avail), 0);
    CHECK_EQ(avail, 8);
    char x[2], y[10];
    struct iovec in[2] = {{x, 2}, {y, sizeof(y)}};
    CHECK_EQ(ust_readv(s, in, 2), 8);
    CHECK_MEM(x, "ab", 2);
    CHECK_MEM(y, "cdefgh", 6);
    CHECK_EQ(ust_recv(s, buf, 4, 0), -1);
    CHECK_EQ(errno, EAGAIN);
    /* MSG_WAITALL on the blocking client: waits for all 6 bytes. */
    CHECK_EQ(ust_write(s, "123", 3), 3);
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_write(s, "456", 3), 3);
    CHECK_EQ(ust_recv(c, buf, 6, MSG_WAITALL), 6);
    CHECK_MEM(buf, "123456", 6);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(rcvtimeo_and_nonblock)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    struct timeval tv = {.tv_sec = 1, .tv_usec = 500000}, got;
    socklen_t gl = sizeof(got);
    CHECK_EQ(ust_setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    CHECK_EQ(ust_getsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &got, &gl), 0);
    CHECK_EQ(got.tv_sec, 1);
    CHECK_EQ(got.tv_usec, 500000);
    tv.tv_usec = 2000000;
    CHECK_EQ(ust_setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), -1);
    CHECK_EQ(errno, EDOM);
    char b[8];
    uint64_t t0 = f.now;
    CHECK_EQ(ust_read(c, b, sizeof(b)), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK(f.now - t0 >= 1500000000ULL);
    CHECK(f.now - t0 < 2500000000ULL);
    CHECK_EQ(ust_recv(c, b, sizeof(b), MSG_DONTWAIT), -1);
    CHECK_EQ(errno, EAGAIN);
    int on = 1;
    CHECK_EQ(ust_ioctl(c, FIONBIO, &on), 0);
    CHECK_EQ(ust_fcntl(c, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    CHECK_EQ(ust_read(c, b, sizeof(b)), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(ust_fcntl(c, F_GETFD), 0);
    CHECK_EQ(ust_fcntl(c, F_SETFD, FD_CLOEXEC), 0);
    CHECK_EQ(ust_fcntl(c, F_GETFD), FD_CLOEXEC);
    CHECK_EQ(ust_fcntl(c, 12345), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(shutdown_write_gives_peer_eof)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    CHECK_EQ(ust_write(c, "bye", 3), 3);
    CHECK_EQ(ust_shutdown(c, SHUT_WR), 0);
    CHECK_EQ(ust_write(c, "more", 4), -1);
    CHECK_EQ(errno, EPIPE);
    sfx_run(&f, 2000000);
    char b[8];
    CHECK_EQ(ust_read(s, b, sizeof(b)), 3);
    CHECK_EQ(ust_read(s, b, sizeof(b)), 0);
    /* The other direction still works. */
    CHECK_EQ(ust_write(s, "ok", 2), 2);
    CHECK_EQ(ust_read(c, b, sizeof(b)), 2);
    CHECK_EQ(ust_close(s), 0);
    CHECK_EQ(ust_read(c, b, sizeof(b)), 0);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(tcp_options)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    int v = 1;
    socklen_t vl = sizeof(v);
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), 0);
    v = 0;
    CHECK_EQ(ust_getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl), 0);
    CHECK_EQ(v, 1);
    v = 1;
    CHECK_EQ(ust_setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)), 0);
    v = 30;
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v)), 0);
    v = 5;
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v)), 0);
    v = 3;
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)), 0);
    vl = sizeof(v);
    CHECK_EQ(ust_getsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v, &vl), 0);
    CHECK_EQ(v, 30);
    v = 0;
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)), -1);
    CHECK_EQ(errno, EINVAL);
    v = 1 << 20;
    CHECK_EQ(ust_setsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)), 0);
    vl = sizeof(v);
    CHECK_EQ(ust_getsockopt(c, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
    CHECK_EQ(v, 1 << 20);
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), 0);
    char cc[16] = {0};
    socklen_t cl = sizeof(cc);
    CHECK_EQ(ust_getsockopt(c, IPPROTO_TCP, TCP_CONGESTION, cc, &cl), 0);
    CHECK(strcmp(cc, "newreno") == 0);
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "bbr", 3), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, 2), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, 9999, &v, sizeof(v)), -1);
    CHECK_EQ(errno, ENOPROTOOPT);
    vl = sizeof(v);
    CHECK_EQ(ust_getsockopt(c, SOL_SOCKET, SO_TYPE, &v, &vl), 0);
    CHECK_EQ(v, SOCK_STREAM);
    CHECK_EQ(ust_getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl), 0);
    CHECK_EQ(v, 1);
    v = 1000;
    CHECK_EQ(ust_setsockopt(c, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)), 0);
    /* TCP_INFO after some traffic: state, MSS, an RTT sample. */
    char big[3000];
    memset(big, 'x', sizeof(big));
    CHECK_EQ(ust_write(c, big, sizeof(big)), (ssize_t)sizeof(big));
    sfx_run(&f, 5000000);
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    CHECK_EQ(ust_getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    CHECK_EQ(tl, sizeof(ti));
    CHECK_EQ(ti.tcpi_state, TCP_ESTABLISHED);
    CHECK(ti.tcpi_snd_mss > 0 && ti.tcpi_snd_mss <= 1000);
    CHECK(ti.tcpi_snd_cwnd >= 2);
    CHECK(ti.tcpi_rto >= 200000);
    CHECK_EQ(ti.tcpi_unacked, 0);
    CHECK(ti.tcpi_options & TCPI_OPT_TIMESTAMPS);
    tl = 1;   /* truncated like Linux */
    CHECK_EQ(ust_getsockopt(l, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    CHECK_EQ(tl, 1);
    CHECK_EQ(ti.tcpi_state, TCP_LISTEN);
    /* Options on a socket before connect, inherited by accepted sockets. */
    int u = ust_socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_EQ(ust_setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), -1);
    CHECK_EQ(errno, ENOPROTOOPT);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(udp_sendto_recvfrom)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int srv = ust_socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = sfx_addr("0.0.0.0", 5353);
    CHECK_EQ(ust_bind(srv, SA(&a), sizeof(a)), 0);
    sfx_use(f.cli);
    int cli = ust_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, 5353);
    CHECK_EQ(ust_sendto(cli, "ping", 4, 0, SA(&to), sizeof(to)), 4);
    char b[16];
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    CHECK_EQ(ust_recvfrom(srv, b, 2, MSG_PEEK | MSG_TRUNC, SA(&from), &fl), 4);   /* blocking: pumps */
    CHECK_EQ(ust_recvfrom(srv, b, sizeof(b), 0, SA(&from), &fl), 4);
    CHECK_MEM(b, "ping", 4);
    CHECK_EQ(from.sin_addr.s_addr, sfx_addr(SFX_CLI_IP, 0).sin_addr.s_addr);
    CHECK_EQ(ust_sendto(srv, "pong", 4, 0, SA(&from), fl), 4);
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_recv(cli, b, sizeof(b), 0), 4);
    CHECK_MEM(b, "pong", 4);
    CHECK_EQ(ust_recv(cli, b, sizeof(b), 0), -1);
    CHECK_EQ(errno, EAGAIN);
    /* Connected UDP: write/read, and datagrams from others are dropped. */
    CHECK_EQ(ust_connect(cli, SA(&to), sizeof(to)), 0);
    struct iovec v[2] = {{"ab", 2}, {"cd", 2}};
    CHECK_EQ(ust_writev(cli, v, 2), 4);
    CHECK_EQ(ust_read(srv, b, sizeof(b)), 4);
    CHECK_MEM(b, "abcd", 4);
    sfx_use(f.srv);
    int other = ust_socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in cli_addr;
    socklen_t cal = sizeof(cli_addr);
    sfx_use(f.cli);
    CHECK_EQ(ust_getsockname(cli, SA(&cli_addr), &cal), 0);
    cli_addr.sin_addr = sfx_addr(SFX_CLI_IP, 0).sin_addr;
    CHECK_EQ(ust_sendto(other, "spam", 4, 0, SA(&cli_addr), sizeof(cli_addr)), 4);
    CHECK_EQ(ust_sendto(srv, "real", 4, 0, SA(&cli_addr), sizeof(cli_addr)), 4);
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_read(cli, b, sizeof(b)), 4);
    CHECK_MEM(b, "real", 4);
    /* A connected socket learns of ICMP port unreachable. */
    struct sockaddr_in dead = sfx_addr(SFX_SRV_IP, 6000);
    CHECK_EQ(ust_connect(cli, SA(&dead), sizeof(dead)), 0);
    CHECK_EQ(ust_write(cli, "x", 1), 1);
    sfx_run(&f, 2000000);
    CHECK_EQ(ust_read(cli, b, sizeof(b)), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK_EQ(sfx_close(&f), 0);
}

HARNESS_MAIN()
