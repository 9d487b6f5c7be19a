/* ust_epoll_*: level and edge triggering, one-shot, RDHUP/HUP/ERR, the
 * listener and connect events, kernel fds (eventfd, pipe) in the same
 * wait, and the error paths. Two ustack stacks on one in-memory link. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "sockfx.h"
#include "ustack/epoll.h"

#define PORT 8080

static struct sockaddr *SA(struct sockaddr_in *a) { return (struct sockaddr *)a; }

static void open_pair(HARNESS_ARGS, struct sockfx *f, int *lfd, int *cfd, int *sfd)
{
    CHECK_EQ(sfx_open_pair(f, PORT, SOCK_NONBLOCK, lfd, cfd, sfd, NULL), 0);
    sfx_use(f->srv);
}

static int ep_add(int ep, int fd, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return ust_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

TEST(level_vs_edge)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    int lt = ust_epoll_create1(0), et = ust_epoll_create1(EPOLL_CLOEXEC);
    CHECK(lt >= UST_FD_BASE && et >= UST_FD_BASE);
    CHECK_EQ(ep_add(lt, s, EPOLLIN), 0);
    CHECK_EQ(ep_add(et, s, EPOLLIN | EPOLLET), 0);
    struct epoll_event ev[4];
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 0);
    CHECK_EQ(ust_write(c, "0123456789", 10), 10);
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 100), 1);
    CHECK_EQ(ev[0].events, EPOLLIN);
    CHECK_EQ(ev[0].data.fd, s);
    CHECK_EQ(ust_epoll_wait(et, ev, 4, 0), 1);
    CHECK_EQ(ev[0].events, EPOLLIN);
    char b[4];
    CHECK_EQ(ust_read(s, b, 4), 4);   /* partly drained */
    /* Level: reported again while data remains. Edge: not until new data. */
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 1);
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 1);
    CHECK_EQ(ust_epoll_wait(et, ev, 4, 0), 0);
    CHECK_EQ(ust_write(c, "x", 1), 1);
    CHECK_EQ(ust_epoll_wait(et, ev, 4, 100), 1);
    CHECK_EQ(ust_epoll_wait(et, ev, 4, 0), 0);
    char all[16];
    CHECK_EQ(ust_read(s, all, sizeof(all)), 7);
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 0);   /* drained: off the ready list */
    /* EPOLLOUT: level reports it all the time while there is room. */
    struct epoll_event mod = {.events = EPOLLIN | EPOLLOUT, .data.u64 = 77};
    CHECK_EQ(ust_epoll_ctl(lt, EPOLL_CTL_MOD, s, &mod), 0);
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 1);
    CHECK_EQ(ev[0].events, EPOLLOUT);
    CHECK_EQ(ev[0].data.u64, 77);
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 1);
    CHECK_EQ(ust_epoll_ctl(lt, EPOLL_CTL_DEL, s, NULL), 0);
    CHECK_EQ(ust_epoll_wait(lt, ev, 4, 0), 0);
    CHECK_EQ(ust_close(lt), 0);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(oneshot_rearm_with_mod)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    int ep = ust_epoll_create1(0);
    CHECK_EQ(ep_add(ep, s, EPOLLIN | EPOLLONESHOT), 0);
    CHECK_EQ(ust_write(c, "a", 1), 1);
    struct epoll_event ev[2];
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 100), 1);
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 0), 0);   /* disabled although still readable */
    CHECK_EQ(ust_write(c, "b", 1), 1);
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 20), 0);
    struct epoll_event mod = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = s};
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_MOD, s, &mod), 0);
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 0), 1);
    CHECK_EQ(ev[0].data.fd, s);
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 0), 0);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(rdhup_on_peer_fin)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    int ep = ust_epoll_create1(0);
    CHECK_EQ(ep_add(ep, s, EPOLLIN | EPOLLRDHUP | EPOLLET), 0);
    CHECK_EQ(ust_shutdown(c, SHUT_WR), 0);
    struct epoll_event ev[2];
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 100), 1);
    CHECK_EQ(ev[0].events, EPOLLIN | EPOLLRDHUP);
    char b[4];
    CHECK_EQ(ust_read(s, b, sizeof(b)), 0);
    /* After we shut down too, the socket is hung up (HUP always reported). */
    CHECK_EQ(ust_shutdown(s, SHUT_WR), 0);
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 0), 1);
    CHECK(ev[0].events & EPOLLHUP);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(hup_err_on_reset)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    int ep = ust_epoll_create1(0);
    CHECK_EQ(ep_add(ep, s, EPOLLIN | EPOLLRDHUP), 0);
    sfx_use(f.cli);
    struct linger lg = {1, 0};
    CHECK_EQ(ust_setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    CHECK_EQ(ust_close(c), 0);
    struct epoll_event ev[2];
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 100), 1);
    CHECK_EQ(ev[0].events, EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP);
    int err = 0;
    socklen_t el = sizeof(err);
    CHECK_EQ(ust_getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    CHECK_EQ(err, ECONNRESET);
    CHECK_EQ(ust_epoll_wait(ep, ev, 2, 0), 1);
    CHECK_EQ(ev[0].events, EPOLLIN | EPOLLRDHUP | EPOLLHUP);   /* error consumed */
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(listener_and_connect_events)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int l = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = sfx_addr("0.0.0.0", PORT);
    CHECK_EQ(ust_bind(l, SA(&a), sizeof(a)), 0);
    CHECK_EQ(ust_listen(l, 8), 0);
    int sep = ust_epoll_create1(0);
    CHECK_EQ(ep_add(sep, l, EPOLLIN), 0);
    sfx_use(f.cli);
    int cep = ust_epoll_create1(0);
    int c = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_EQ(ep_add(cep, c, EPOLLOUT | EPOLLET), 0);
    struct epoll_event ev[2];
    /* A fresh, unconnected socket: Linux reports OUT|HUP. */
    CHECK_EQ(ust_epoll_wait(cep, ev, 2, 0), 1);
    CHECK_EQ(ev[0].events, EPOLLOUT | EPOLLHUP);
    struct sockaddr_in to = sfx_addr(SFX_SRV_IP, PORT);
    CHECK_EQ(ust_connect(c, SA(&to), sizeof(to)), -1);
    CHECK_EQ(errno, EINPROGRESS);
    CHECK_EQ(ust_epoll_wait(cep, ev, 2, 0), 0);
    CHECK_EQ(ust_epoll_wait(cep, ev, 2, 100), 1);
    CHECK_EQ(ev[0].events, EPOLLOUT);
    CHECK_EQ(ust_epoll_wait(sep, ev, 2, 100), 1);
    CHECK_EQ(ev[0].data.fd, l);
    int s = ust_accept(l, NULL, NULL);
    CHECK(s >= UST_FD_BASE);
    CHECK_EQ(ust_epoll_wait(sep, ev, 2, 0), 0);   /* accept queue empty */
    /* Refused connect: OUT|ERR|HUP. */
    int r = ust_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK_EQ(ep_add(cep, r, EPOLLOUT), 0);
    CHECK_EQ(ust_epoll_wait(cep, ev, 2, 0), 1);   /* OUT|HUP while unconnected */
    struct sockaddr_in closed = sfx_addr(SFX_SRV_IP, 9);
    CHECK_EQ(ust_connect(r, SA(&closed), sizeof(closed)), -1);
    CHECK_EQ(ust_epoll_wait(cep, ev, 2, 100), 1);
    CHECK(ev[0].events & EPOLLERR);
    CHECK(ev[0].events & EPOLLHUP);
    CHECK(ev[0].events & EPOLLOUT);
    CHECK_EQ(ust_connect(r, SA(&closed), sizeof(closed)), -1);
    CHECK_EQ(errno, ECONNREFUSED);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(kernel_fds_with_sockets)
{
    struct sockfx f;
    int l, c, s;
    open_pair(HARNESS_PASS, &f, &l, &c, &s);
    CHECK_OK();
    int ep = ust_epoll_create1(0);
    int efd = eventfd(0, EFD_NONBLOCK);
    int pfd[2];
    CHECK(efd >= 0 && pipe(pfd) == 0);
    CHECK_EQ(ep_add(ep, s, EPOLLIN), 0);
    CHECK_EQ(ep_add(ep, efd, EPOLLIN), 0);
    CHECK_EQ(ep_add(ep, pfd[0], EPOLLIN), 0);
    CHECK_EQ(ep_add(ep, efd, EPOLLIN), -1);
    CHECK_EQ(errno, EEXIST);
    struct epoll_event ev[8];
    CHECK_EQ(ust_epoll_wait(ep, ev, 8, 0), 0);
    uint64_t one = 1;
    CHECK_EQ(write(efd, &one, sizeof(one)), 8);
    CHECK_EQ(write(pfd[1], "p", 1), 1);
    CHECK_EQ(ust_write(c, "sock", 4), 4);
    sfx_run(&f, 2000000);
    int seen_e = 0, seen_p = 0, seen_s = 0;
    for (int round = 0; round < 40 && !(seen_e && seen_p && seen_s); round++) {
        int n = ust_epoll_wait(ep, ev, 8, 10);
        for (int i = 0; i < n; i++) {
            seen_e |= ev[i].data.fd == efd;
            seen_p |= ev[i].data.fd == pfd[0];
            seen_s |= ev[i].data.fd == s;
        }
    }
    CHECK(seen_e && seen_p && seen_s);
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL), 0);
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_DEL, efd, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    /* A kernel fd alone also ends a wait that would otherwise sleep. */
    char b[8];
    CHECK_EQ(ust_read(s, b, sizeof(b)), 4);
    CHECK_EQ(read(pfd[0], b, 1), 1);
    CHECK_EQ(ust_epoll_wait(ep, ev, 8, 0), 0);
    CHECK_EQ(write(pfd[1], "q", 1), 1);
    CHECK_EQ(ust_epoll_wait(ep, ev, 8, 1000), 1);
    CHECK_EQ(ev[0].data.fd, pfd[0]);
    close(efd);
    close(pfd[0]);
    close(pfd[1]);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(ctl_and_wait_errors)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int ep = ust_epoll_create1(0);
    int s = ust_socket(AF_INET, SOCK_STREAM, 0);
    struct epoll_event ev = {.events = EPOLLIN}, out[1];
    CHECK_EQ(ust_epoll_create1(12345), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_epoll_create(0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_epoll_ctl(s, EPOLL_CTL_ADD, ep, &ev), -1);
    CHECK_EQ(errno, EINVAL);   /* not an epoll descriptor */
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_epoll_ctl(ep, 99, s, &ev), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_DEL, s, NULL), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_ADD, UST_FD_BASE + 999, &ev), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_epoll_ctl(UST_FD_BASE + 999, EPOLL_CTL_ADD, s, &ev), -1);
    CHECK_EQ(errno, EBADF);
    CHECK_EQ(ust_epoll_ctl(ep, EPOLL_CTL_DEL, 987, NULL), -1);
    CHECK_EQ(errno, EBADF);   /* no such kernel fd */
    CHECK_EQ(ust_epoll_wait(ep, out, 0, 0), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(ust_epoll_wait(s, out, 1, 0), -1);
    CHECK_EQ(errno, EINVAL);
    /* Timeout on the virtual clock. */
    int l = ust_socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(ust_listen(l, 1), 0);
    CHECK_EQ(ep_add(ep, l, EPOLLIN), 0);
    uint64_t t0 = f.now;
    CHECK_EQ(ust_epoll_wait(ep, out, 1, 250), 0);
    CHECK(f.now - t0 >= 250000000ULL);
    /* Closing a registered socket drops its registration. */
    CHECK_EQ(ust_close(l), 0);
    CHECK_EQ(ust_epoll_wait(ep, out, 1, 0), 0);
    CHECK_EQ(sfx_close(&f), 0);
}

TEST(many_ready_fds_more_than_maxevents)
{
    struct sockfx f;
    CHECK(sfx_open(&f) == 0);
    int ep = ust_epoll_create1(0);
    int u[10];
    for (int i = 0; i < 10; i++) {
        u[i] = ust_socket(AF_INET, SOCK_DGRAM, 0);
        CHECK_EQ(ep_add(ep, u[i], EPOLLOUT), 0);
    }
    struct epoll_event ev[4];
    int seen[10] = {0};
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(ust_epoll_wait(ep, ev, 4, 0), 4);
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 10; k++)
                seen[k] += ev[i].data.fd == u[k];
    }
    /* Round robin: 12 reports over 10 sockets, every one reported. */
    for (int k = 0; k < 10; k++)
        CHECK(seen[k] >= 1);
    CHECK_EQ(sfx_close(&f), 0);
}

HARNESS_MAIN()
