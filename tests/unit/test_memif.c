/* memif backend: a server and a client device in one process over a temp
 * socket, driven the way a stack drives them (dev.h: open, pool_mem, pool,
 * start, service until link up, bursts). Also a hand-made hostile client
 * speaking raw protocol messages to the server. */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dev/dev.h"

#define POOL_COUNT 512
#define POOL_ROOM 2048

struct side {
    struct dev d;
    struct pkt_pool pool;
    struct ust_counters ctr;
    int open;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sock_path(char *out, size_t n, const char *tag)
{
    snprintf(out, n, "/tmp/ustack-memif-test-%d-%s.sock", (int)getpid(), tag);
}

/* Open, place the pool where the device wants it, start: as a stack would. */
static int side_open_queue(struct side *s, const char *spec, uint32_t count, uint32_t room,
                           uint16_t queue)
{
    memset(s, 0, sizeof(*s));
    if (dev_open(&s->d, spec, &s->ctr) != 0)
        return -1;
    s->d.queue = queue;
    void *mem = NULL;
    if (s->d.ops->pool_mem) {
        mem = s->d.ops->pool_mem(&s->d, (size_t)count * room);
    }
    if (pkt_pool_init(&s->pool, count, room, mem) != 0)
        return -1;
    s->d.pool = &s->pool;
    if (s->d.ops->start(&s->d) != 0)
        return -1;
    s->open = 1;
    return 0;
}

static int side_open(struct side *s, const char *spec, uint32_t count, uint32_t room)
{
    return side_open_queue(s, spec, count, room, 0);
}

/* Close the device first (it hands back the pkts its rings hold), then the pool. */
static uint32_t side_close(struct side *s)
{
    if (!s->open)
        return 0;
    dev_close(&s->d);
    uint32_t avail = s->pool.avail;
    pkt_pool_fini(&s->pool);
    s->open = 0;
    return avail;
}

static void service(struct side *s)
{
    if (s->open)
        s->d.ops->service(&s->d, now_ns());
}

static int link_up(const struct side *s) { return s->open && (s->d.flags & DEV_F_LINK_UP); }

/* Run both control planes until both links are up (1) or timeout_ms (0). */
static int pump_until_up(struct side *a, struct side *b, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (now_ns() < end) {
        service(a);
        service(b);
        if (link_up(a) && link_up(b))
            return 1;
        usleep(1000);
    }
    return 0;
}

static int pump_until_down(struct side *a, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (now_ns() < end) {
        service(a);
        if (!link_up(a))
            return 1;
        usleep(1000);
    }
    return 0;
}

static int open_pair(struct side *srv, struct side *cli, const char *tag, const char *extra)
{
    char path[108], spec[256];
    sock_path(path, sizeof(path), tag);
    snprintf(spec, sizeof(spec), "memif:%s,role=server%s", path, extra);
    if (side_open(srv, spec, POOL_COUNT, POOL_ROOM))
        return -1;
    snprintf(spec, sizeof(spec), "memif:%s%s", path, extra);
    if (side_open(cli, spec, POOL_COUNT, POOL_ROOM))
        return -1;
    return pump_until_up(srv, cli, 2000) ? 0 : -1;
}

/* Frame i: length 60 + (i * 37) % 1400, bytes derived from i and position. */
static uint16_t frame_len(uint32_t i) { return (uint16_t)(60 + (i * 37) % 1400); }
static uint8_t frame_byte(uint32_t i, uint32_t k) { return (uint8_t)(i * 7 + k * 13 + (k >> 8)); }

static int send_frames(struct side *s, uint32_t first, uint32_t n)
{
    struct pkt *pkts[64];
    if (n > 64)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        pkts[i] = pkt_alloc(&s->pool);
        if (!pkts[i])
            return -1;
        uint16_t len = frame_len(first + i);
        uint8_t *p = pkt_put(pkts[i], len);
        for (uint32_t k = 0; k < len; k++)
            p[k] = frame_byte(first + i, k);
    }
    return s->d.ops->tx_burst(&s->d, pkts, (uint16_t)n, now_ns());
}

/* Receive exactly n frames (bounded wait) and check each one's bytes/order. */
static int recv_frames(struct side *s, uint32_t first, uint32_t n)
{
    uint32_t got = 0;
    uint64_t end = now_ns() + 1000000000ull;
    while (got < n && now_ns() < end) {
        struct pkt *pkts[64];
        uint16_t k = s->d.ops->rx_burst(&s->d, pkts, 64, now_ns());
        for (uint16_t j = 0; j < k; j++) {
            uint32_t idx = first + got;
            int ok = got < n && pkts[j]->len == frame_len(idx);
            for (uint32_t b = 0; ok && b < pkts[j]->len; b++)
                ok = pkt_data(pkts[j])[b] == frame_byte(idx, b);
            pkt_free(pkts[j]);
            if (!ok)
                return -1;
            got++;
        }
    }
    return (int)got;
}

TEST(connect_both_roles)
{
    struct side srv, cli;
    CHECK(open_pair(&srv, &cli, "conn", "") == 0);
    CHECK(!(srv.d.flags & DEV_F_HAS_MAC));
    CHECK(!(cli.d.flags & DEV_F_HAS_MAC));
    struct pollfd fds[4];
    CHECK_EQ(srv.d.ops->poll_fds(&srv.d, fds, 4), 3);   /* listen, ctl, rx eventfd */
    CHECK_EQ(cli.d.ops->poll_fds(&cli.d, fds, 4), 2);   /* ctl, rx eventfd */
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}

TEST(bursts_both_ways_keep_bytes_and_order)
{
    struct side srv, cli;
    CHECK(open_pair(&srv, &cli, "burst", "") == 0);
    for (uint32_t round = 0; round < 40; round++) {
        CHECK_EQ(send_frames(&cli, round * 64, 64), 64);
        CHECK_EQ(recv_frames(&srv, round * 64, 64), 64);
        CHECK_EQ(send_frames(&srv, round * 64 + 7, 64), 64);
        CHECK_EQ(recv_frames(&cli, round * 64 + 7, 64), 64);
    }
    CHECK_EQ(cli.ctr.dev_tx, 40 * 64);
    CHECK_EQ(srv.ctr.dev_rx, 40 * 64);
    CHECK_EQ(srv.ctr.dev_tx, 40 * 64);
    CHECK_EQ(cli.ctr.dev_rx, 40 * 64);
    CHECK_EQ(cli.ctr.dev_tx_drop + srv.ctr.dev_tx_drop, 0);
    CHECK(cli.ctr.dev_rx_bytes > 40 * 64 * 60);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}

TEST(full_ring_drops_and_counts)
{
    struct side srv, cli;
    CHECK(open_pair(&srv, &cli, "full", ",rsize=4") == 0);     /* 16 slots */
    /* Client to server: nobody drains, so 16 go and the rest are dropped. */
    CHECK_EQ(send_frames(&cli, 0, 40), 16);
    CHECK_EQ(cli.ctr.dev_tx_drop, 24);
    CHECK_EQ(send_frames(&cli, 40, 8), 0);
    CHECK_EQ(cli.ctr.dev_tx_drop, 32);
    CHECK_EQ(recv_frames(&srv, 0, 16), 16);
    /* Slots are reusable once the server took them. */
    CHECK_EQ(send_frames(&cli, 100, 10), 10);
    CHECK_EQ(recv_frames(&srv, 100, 10), 10);
    /* Server to client: only the 16 posted client buffers can be filled. */
    CHECK_EQ(send_frames(&srv, 0, 40), 16);
    CHECK_EQ(srv.ctr.dev_tx_drop, 24);
    CHECK_EQ(recv_frames(&cli, 0, 16), 16);
    CHECK_EQ(send_frames(&srv, 16, 16), 16);
    CHECK_EQ(recv_frames(&cli, 16, 16), 16);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}

TEST(oversize_frames_are_dropped)
{
    struct side srv, cli;
    char path[108], spec[256];
    sock_path(path, sizeof(path), "big");
    snprintf(spec, sizeof(spec), "memif:%s,role=server", path);
    CHECK(side_open(&srv, spec, 64, 512) == 0);            /* 384-byte frames max */
    snprintf(spec, sizeof(spec), "memif:%s,bsize=256", path);  /* posts 256 bytes */
    CHECK(side_open(&cli, spec, 64, POOL_ROOM) == 0);
    CHECK(pump_until_up(&srv, &cli, 2000));
    struct pkt *p = pkt_alloc(&cli.pool);
    CHECK(pkt_put(p, 1000) != NULL);
    CHECK_EQ(cli.d.ops->tx_burst(&cli.d, &p, 1, now_ns()), 1);
    struct pkt *in[4];
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, in, 4, now_ns()), 0);
    CHECK_EQ(srv.ctr.dev_rx_oversize, 1);
    p = pkt_alloc(&srv.pool);
    CHECK(pkt_put(p, 300) != NULL);
    CHECK_EQ(srv.d.ops->tx_burst(&srv.d, &p, 1, now_ns()), 0);
    CHECK_EQ(srv.ctr.dev_tx_drop, 1);
    CHECK_EQ(side_close(&cli), 64);
    CHECK_EQ(side_close(&srv), 64);
}

TEST(interrupt_eventfd_wakes_receiver)
{
    struct side srv, cli;
    CHECK(open_pair(&srv, &cli, "irq", "") == 0);
    struct pollfd fds[4];
    int n = srv.d.ops->poll_fds(&srv.d, fds, 4);
    CHECK_EQ(poll(fds, (nfds_t)n, 0), 0);                  /* idle: nothing */
    CHECK_EQ(send_frames(&cli, 0, 4), 4);
    CHECK(poll(fds, (nfds_t)n, 100) >= 1);
    CHECK_EQ(recv_frames(&srv, 0, 4), 4);
    struct pkt *none[4];
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, none, 4, now_ns()), 0);   /* drains */
    CHECK_EQ(poll(fds, (nfds_t)n, 0), 0);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}


/* Busy polling costs no system call on either side: once the receiver has
 * polled, the peer's transmit does not write its eventfd; the receiver
 * re-arms only through poll_fds (before it sleeps), and a frame that arrived
 * while masked wakes that sleep at once (no lost wakeup). */
TEST(polling_receiver_masks_kicks_and_rearms_before_sleep)
{
    struct side srv, cli;
    CHECK(open_pair(&srv, &cli, "mask", "") == 0);
    struct pollfd fds[4];
    int n = srv.d.ops->poll_fds(&srv.d, fds, 4);
    struct pkt *none[4];
    for (int i = 0; i < 100; i++)                          /* polls long: masks */
        CHECK_EQ(srv.d.ops->rx_burst(&srv.d, none, 4, now_ns()), 0);
    CHECK_EQ(send_frames(&cli, 0, 4), 4);
    CHECK_EQ(poll(fds, (nfds_t)n, 0), 0);                  /* masked: no kick */
    CHECK_EQ(recv_frames(&srv, 0, 4), 4);
    CHECK_EQ(send_frames(&cli, 4, 2), 2);                  /* arrives while masked */
    n = srv.d.ops->poll_fds(&srv.d, fds, 4);               /* about to sleep */
    CHECK(poll(fds, (nfds_t)n, 0) >= 1);                   /* recheck caught it */
    CHECK_EQ(recv_frames(&srv, 4, 2), 2);
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, none, 4, now_ns()), 0);   /* drains */
    n = srv.d.ops->poll_fds(&srv.d, fds, 4);
    CHECK_EQ(poll(fds, (nfds_t)n, 0), 0);                  /* drained, idle */
    CHECK_EQ(send_frames(&cli, 6, 3), 3);                  /* armed: kicks again */
    CHECK(poll(fds, (nfds_t)n, 100) >= 1);
    CHECK_EQ(recv_frames(&srv, 6, 3), 3);
    /* The other direction: the client receiving. */
    n = cli.d.ops->poll_fds(&cli.d, fds, 4);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(cli.d.ops->rx_burst(&cli.d, none, 4, now_ns()), 0);
    CHECK_EQ(send_frames(&srv, 0, 2), 2);
    CHECK_EQ(poll(fds, (nfds_t)n, 0), 0);
    n = cli.d.ops->poll_fds(&cli.d, fds, 4);
    CHECK(poll(fds, (nfds_t)n, 0) >= 1);
    CHECK_EQ(recv_frames(&cli, 0, 2), 2);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}

TEST(client_reconnects_after_close_and_server_restart)
{
    struct side srv, cli;
    char path[108], spec[256];
    CHECK(open_pair(&srv, &cli, "recon", "") == 0);
    sock_path(path, sizeof(path), "recon");
    CHECK_EQ(send_frames(&cli, 0, 8), 8);                  /* in flight at close */
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK(pump_until_down(&srv, 1000));
    CHECK_EQ(srv.ctr.dev_rx, 0);
    snprintf(spec, sizeof(spec), "memif:%s", path);
    CHECK(side_open(&cli, spec, POOL_COUNT, POOL_ROOM) == 0);
    CHECK(pump_until_up(&srv, &cli, 2000));
    CHECK_EQ(send_frames(&cli, 10, 8), 8);
    CHECK_EQ(recv_frames(&srv, 10, 8), 8);
    /* Server goes away: the client notices, then retries once a second. */
    CHECK_EQ(side_close(&srv), POOL_COUNT);
    CHECK(access(path, F_OK) != 0);                        /* socket unlinked */
    CHECK(pump_until_down(&cli, 1000));
    CHECK_EQ(send_frames(&cli, 0, 4), 0);                  /* down: dropped */
    CHECK_EQ(cli.ctr.dev_tx_drop, 4);
    snprintf(spec, sizeof(spec), "memif:%s,role=server", path);
    CHECK(side_open(&srv, spec, POOL_COUNT, POOL_ROOM) == 0);
    CHECK(pump_until_up(&srv, &cli, 3000));
    CHECK_EQ(send_frames(&srv, 20, 8), 8);
    CHECK_EQ(recv_frames(&cli, 20, 8), 8);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}

/* ---- several queues ------------------------------------------------------ */

/* A frame on queue q: byte 0 says which queue it was sent on, so a frame
 * that came out of the wrong ring is caught. */
static int send_tagged(struct side *s, uint8_t tag, uint32_t first, uint32_t n)
{
    struct pkt *pkts[64];
    for (uint32_t i = 0; i < n && i < 64; i++) {
        pkts[i] = pkt_alloc(&s->pool);
        if (!pkts[i])
            return -1;
        uint16_t len = frame_len(first + i);
        uint8_t *p = pkt_put(pkts[i], len);
        for (uint32_t k = 0; k < len; k++)
            p[k] = frame_byte(first + i, k);
        p[0] = tag;
    }
    return s->d.ops->tx_burst(&s->d, pkts, (uint16_t)n, now_ns());
}

/* Exactly n frames, in order, each tagged `tag`. */
static int recv_tagged(struct side *s, uint8_t tag, uint32_t first, uint32_t n)
{
    uint32_t got = 0;
    uint64_t end = now_ns() + 1000000000ull;
    while (got < n && now_ns() < end) {
        struct pkt *pkts[64];
        uint16_t k = s->d.ops->rx_burst(&s->d, pkts, 64, now_ns());
        for (uint16_t j = 0; j < k; j++) {
            uint32_t idx = first + got;
            int ok = got < n && pkts[j]->len == frame_len(idx) && pkt_data(pkts[j])[0] == tag;
            for (uint32_t b = 1; ok && b < pkts[j]->len; b++)
                ok = pkt_data(pkts[j])[b] == frame_byte(idx, b);
            pkt_free(pkts[j]);
            if (!ok)
                return -1;
            got++;
        }
    }
    return (int)got;
}

static void service_all(struct side *s, int n)
{
    for (int i = 0; i < n; i++)
        service(&s[i]);
}

static int all_up(struct side *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!link_up(&s[i]))
            return 0;
    return 1;
}

static int all_down(struct side *s, int n)
{
    for (int i = 0; i < n; i++)
        if (link_up(&s[i]))
            return 0;
    return 1;
}

/* Service both groups until every device is up (want_up) or down. */
static int pump_groups(struct side *a, int na, struct side *b, int nb, int want_up, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (now_ns() < end) {
        service_all(a, na);
        service_all(b, nb);
        if (want_up ? all_up(a, na) && all_up(b, nb) : all_down(a, na) && all_down(b, nb))
            return 1;
        usleep(1000);
    }
    return 0;
}

/* n devices of one connection, queue=0..n-1, as ust_workers_run opens them. */
static int open_group(struct side *s, int n, const char *path, const char *role, uint32_t count)
{
    char spec[256];
    for (int i = 0; i < n; i++) {
        snprintf(spec, sizeof(spec), "memif:%s%s,queue=%d,queues=%d", path, role, i, n);
        if (side_open(&s[i], spec, count, POOL_ROOM))
            return -1;
    }
    return 0;
}

static int close_group(struct side *s, int n, uint32_t count)
{
    int ok = 1;
    for (int i = n - 1; i >= 0; i--)    /* not the owner first: any order works */
        ok &= side_close(&s[i]) == count;
    return ok;
}

/* Both ring pairs carry frames both ways, each on its own pair and in order,
 * and a device of one queue never sees the other queue's frames. */
static int exchange_on_queues(struct side *srv, struct side *cli, uint32_t rounds)
{
    for (uint32_t r = 0; r < rounds; r++) {
        for (int q = 0; q < 2; q++) {
            if (send_tagged(&cli[q], (uint8_t)(0xc0 + q), r * 64, 64) != 64)
                return -1;
            if (send_tagged(&srv[q], (uint8_t)(0x50 + q), r * 64 + 5, 64) != 64)
                return -1;
        }
        for (int q = 0; q < 2; q++) {
            if (recv_tagged(&srv[q], (uint8_t)(0xc0 + q), r * 64, 64) != 64)
                return -1;
            if (recv_tagged(&cli[q], (uint8_t)(0x50 + q), r * 64 + 5, 64) != 64)
                return -1;
        }
    }
    return 0;
}

TEST(two_queue_pairs_one_connection)
{
    struct side srv[2], cli[2];
    char path[108];
    sock_path(path, sizeof(path), "mq");
    CHECK(open_group(srv, 2, path, ",role=server", POOL_COUNT) == 0);
    CHECK(open_group(cli, 2, path, "", POOL_COUNT) == 0);
    CHECK(pump_groups(srv, 2, cli, 2, 1, 2000));
    /* Control fds only on queue 0's device; every device its own RX eventfd. */
    struct pollfd fds[8];
    CHECK_EQ(srv[0].d.ops->poll_fds(&srv[0].d, fds, 8), 3);
    CHECK_EQ(srv[1].d.ops->poll_fds(&srv[1].d, fds, 8), 1);
    CHECK_EQ(cli[1].d.ops->poll_fds(&cli[1].d, fds, 8), 1);
    CHECK(exchange_on_queues(srv, cli, 20) == 0);
    for (int q = 0; q < 2; q++) {
        CHECK_EQ(srv[q].ctr.dev_rx, 20 * 64);
        CHECK_EQ(cli[q].ctr.dev_rx, 20 * 64);
        CHECK_EQ(srv[q].ctr.dev_tx_drop + cli[q].ctr.dev_tx_drop, 0);
    }
    /* Nothing crossed over: every ring is empty now. */
    struct pkt *none[4];
    for (int q = 0; q < 2; q++) {
        CHECK_EQ(srv[q].d.ops->rx_burst(&srv[q].d, none, 4, now_ns()), 0);
        CHECK_EQ(cli[q].d.ops->rx_burst(&cli[q].d, none, 4, now_ns()), 0);
    }
    CHECK(close_group(cli, 2, POOL_COUNT));
    CHECK(close_group(srv, 2, POOL_COUNT));
    CHECK(access(path, F_OK) != 0);
}

TEST(connection_waits_for_every_queue)
{
    /* A client must announce every worker's region in its handshake, so
     * nothing happens until all devices of the group are started. */
    struct side srv[2], cli[2];
    char path[108];
    sock_path(path, sizeof(path), "mqwait");
    CHECK(open_group(srv, 2, path, ",role=server", POOL_COUNT) == 0);
    char spec[256];
    snprintf(spec, sizeof(spec), "memif:%s,queue=0,queues=2", path);
    CHECK(side_open(&cli[0], spec, POOL_COUNT, POOL_ROOM) == 0);
    CHECK(!pump_groups(srv, 2, cli, 1, 1, 200));   /* queue 1 never opened */
    snprintf(spec, sizeof(spec), "memif:%s,queue=1,queues=2", path);
    CHECK(side_open(&cli[1], spec, POOL_COUNT, POOL_ROOM) == 0);
    CHECK(pump_groups(srv, 2, cli, 2, 1, 2000));
    CHECK(exchange_on_queues(srv, cli, 2) == 0);
    CHECK(close_group(cli, 2, POOL_COUNT));
    CHECK(close_group(srv, 2, POOL_COUNT));
}

TEST(two_queues_disconnect_and_reconnect)
{
    struct side srv[2], cli[2];
    char path[108];
    sock_path(path, sizeof(path), "mqre");
    CHECK(open_group(srv, 2, path, ",role=server", POOL_COUNT) == 0);
    CHECK(open_group(cli, 2, path, "", POOL_COUNT) == 0);
    CHECK(pump_groups(srv, 2, cli, 2, 1, 2000));
    CHECK(exchange_on_queues(srv, cli, 2) == 0);
    /* Frames in flight on both queues when the client goes away. */
    CHECK_EQ(send_tagged(&cli[1], 0xc1, 0, 8), 8);
    CHECK_EQ(send_tagged(&srv[0], 0x50, 0, 8), 8);
    CHECK(close_group(cli, 2, POOL_COUNT));
    CHECK(pump_groups(srv, 2, NULL, 0, 0, 1000));
    CHECK_EQ(send_tagged(&srv[1], 0x51, 0, 4), 0);        /* down: dropped */
    CHECK_EQ(srv[1].ctr.dev_tx_drop, 4);
    CHECK(open_group(cli, 2, path, "", POOL_COUNT) == 0);
    CHECK(pump_groups(srv, 2, cli, 2, 1, 3000));
    CHECK(exchange_on_queues(srv, cli, 4) == 0);
    /* Now the server restarts: the client group follows it down and back. */
    CHECK(close_group(srv, 2, POOL_COUNT));
    CHECK(pump_groups(cli, 2, NULL, 0, 0, 1000));
    for (int q = 0; q < 2; q++)
        CHECK_EQ(cli[q].pool.avail, POOL_COUNT);           /* posted buffers came home */
    CHECK(open_group(srv, 2, path, ",role=server", POOL_COUNT) == 0);
    CHECK(pump_groups(srv, 2, cli, 2, 1, 3000));
    CHECK(exchange_on_queues(srv, cli, 2) == 0);
    CHECK(close_group(cli, 2, POOL_COUNT));
    CHECK(close_group(srv, 2, POOL_COUNT));
}

TEST(one_device_serves_all_queues_of_a_worker_group)
{
    /* ust-tcpclient with one worker offering queues=2 to a two-worker server. */
    struct side srv[2], cli;
    char path[108], spec[256];
    sock_path(path, sizeof(path), "mqall");
    CHECK(open_group(srv, 2, path, ",role=server", POOL_COUNT) == 0);
    snprintf(spec, sizeof(spec), "memif:%s,queues=2", path);
    CHECK(side_open(&cli, spec, POOL_COUNT, POOL_ROOM) == 0);
    CHECK(pump_groups(srv, 2, &cli, 1, 1, 2000));
    /* Both server queues' frames reach the one client device, each queue in order. */
    CHECK_EQ(send_tagged(&srv[0], 0x50, 0, 32), 32);
    CHECK_EQ(send_tagged(&srv[1], 0x51, 100, 32), 32);
    uint32_t seen[2] = { 0, 0 };
    uint64_t end = now_ns() + 1000000000ull;
    while (seen[0] + seen[1] < 64 && now_ns() < end) {
        struct pkt *pk[64];
        uint16_t k = cli.d.ops->rx_burst(&cli.d, pk, 64, now_ns());
        for (uint16_t j = 0; j < k; j++) {
            int q = pkt_data(pk[j])[0] == 0x51;
            uint32_t idx = (q ? 100 : 0) + seen[q];
            CHECK(pkt_data(pk[j])[0] == 0x50 + q);
            CHECK_EQ(pk[j]->len, frame_len(idx));
            seen[q]++;
            pkt_free(pk[j]);
        }
    }
    CHECK_EQ(seen[0], 32);
    CHECK_EQ(seen[1], 32);
    /* Non-IP frames from the client go on queue 0. */
    CHECK_EQ(send_tagged(&cli, 0xc0, 0, 16), 16);
    CHECK_EQ(recv_tagged(&srv[0], 0xc0, 0, 16), 16);
    struct pkt *none[4];
    CHECK_EQ(srv[1].d.ops->rx_burst(&srv[1].d, none, 4, now_ns()), 0);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK(close_group(srv, 2, POOL_COUNT));
}

TEST(worker_server_refuses_client_with_fewer_queues)
{
    struct side srv[2], cli;
    char path[108], spec[256];
    sock_path(path, sizeof(path), "mqfew");
    CHECK(open_group(srv, 2, path, ",role=server", 64) == 0);
    snprintf(spec, sizeof(spec), "memif:%s", path);         /* offers one pair */
    CHECK(side_open(&cli, spec, 64, POOL_ROOM) == 0);
    CHECK(!pump_groups(srv, 2, &cli, 1, 1, 300));
    CHECK_EQ(side_close(&cli), 64);
    CHECK(close_group(srv, 2, 64));
    /* A single-queue server makes a queues=2 client use one pair (as DPDK). */
    snprintf(spec, sizeof(spec), "memif:%s,role=server", path);
    CHECK(side_open(&srv[0], spec, 64, POOL_ROOM) == 0);
    snprintf(spec, sizeof(spec), "memif:%s,queues=2", path);
    CHECK(side_open(&cli, spec, 64, POOL_ROOM) == 0);
    CHECK(pump_until_up(&srv[0], &cli, 2000));
    CHECK_EQ(send_frames(&cli, 0, 8), 8);
    CHECK_EQ(recv_frames(&srv[0], 0, 8), 8);
    CHECK_EQ(side_close(&cli), 64);
    /* ... while a two-worker client refuses it. */
    struct side wk[2];
    CHECK(open_group(wk, 2, path, "", 64) == 0);
    CHECK(!pump_groups(&srv[0], 1, wk, 2, 1, 300));
    CHECK(close_group(wk, 2, 64));
    CHECK_EQ(side_close(&srv[0]), 64);
}

TEST(queue_options_are_checked)
{
    struct dev d, d2;
    struct ust_counters c;
    char path[108], spec[256];
    sock_path(path, sizeof(path), "mqopt");
    snprintf(spec, sizeof(spec), "memif:%s,queue=2,queues=2", path);
    CHECK(dev_open(&d, spec, &c) != 0);
    snprintf(spec, sizeof(spec), "memif:%s,queue=0,queues=2", path);
    CHECK(dev_open(&d, spec, &c) == 0);
    CHECK(dev_open(&d2, spec, &c) != 0);                   /* queue 0 twice */
    snprintf(spec, sizeof(spec), "memif:%s,queue=1,queues=2,rsize=8", path);
    CHECK(dev_open(&d2, spec, &c) != 0);                   /* other options */
    snprintf(spec, sizeof(spec), "memif:%s,queue=1,queues=2", path);
    CHECK(dev_open(&d2, spec, &c) == 0);
    CHECK_EQ(d2.queue, 1);
    /* One MAC for the whole worker group, or the peer's ARP cache flips. */
    CHECK((d.flags & DEV_F_HAS_MAC) && (d2.flags & DEV_F_HAS_MAC));
    CHECK(memcmp(d.mac, d2.mac, 6) == 0);
    CHECK(!(d.mac[0] & 1) && (d.mac[0] & 2));
    dev_close(&d);
    dev_close(&d2);
}

TEST(second_client_is_refused_while_connected)
{
    struct side srv, cli, other;
    CHECK(open_pair(&srv, &cli, "busy", "") == 0);
    char path[108], spec[256];
    sock_path(path, sizeof(path), "busy");
    snprintf(spec, sizeof(spec), "memif:%s", path);
    CHECK(side_open(&other, spec, 64, POOL_ROOM) == 0);
    CHECK(!pump_until_up(&srv, &other, 300));
    CHECK(link_up(&srv) && link_up(&cli));
    CHECK_EQ(send_frames(&cli, 0, 8), 8);
    CHECK_EQ(recv_frames(&srv, 0, 8), 8);
    CHECK_EQ(side_close(&other), 64);
    CHECK_EQ(side_close(&cli), POOL_COUNT);
    CHECK_EQ(side_close(&srv), POOL_COUNT);
}

TEST(mismatched_id_never_connects)
{
    struct side srv, cli;
    char path[108], spec[256];
    sock_path(path, sizeof(path), "id");
    snprintf(spec, sizeof(spec), "memif:%s,role=server,id=3", path);
    CHECK(side_open(&srv, spec, 64, POOL_ROOM) == 0);
    snprintf(spec, sizeof(spec), "memif:%s,id=4", path);
    CHECK(side_open(&cli, spec, 64, POOL_ROOM) == 0);
    CHECK(!pump_until_up(&srv, &cli, 300));
    CHECK_EQ(side_close(&cli), 64);
    CHECK_EQ(side_close(&srv), 64);
}

TEST(bad_arguments_and_socket_files)
{
    struct dev d;
    struct ust_counters c;
    char path[108], spec[256];
    CHECK(dev_open(&d, "memif:", &c) != 0);
    CHECK(dev_open(&d, "memif:/tmp/x.sock,role=master", &c) != 0);
    CHECK(dev_open(&d, "memif:/tmp/x.sock,rsize=15", &c) != 0);
    CHECK(dev_open(&d, "memif:/tmp/x.sock,id=-1", &c) != 0);
    CHECK(dev_open(&d, "memif:/tmp/x.sock,colour=blue", &c) != 0);
    /* A regular file in the way is not ours to delete. */
    sock_path(path, sizeof(path), "file");
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fclose(f);
    snprintf(spec, sizeof(spec), "memif:%s,role=server", path);
    CHECK(dev_open(&d, spec, &c) != 0);
    CHECK(access(path, F_OK) == 0);
    unlink(path);
    /* A stale socket (nobody listening) is replaced. */
    sock_path(path, sizeof(path), "stale");
    int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    CHECK(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(s);
    snprintf(spec, sizeof(spec), "memif:%s,role=server", path);
    CHECK(dev_open(&d, spec, &c) == 0);
    /* A live one is not. */
    struct dev d2;
    CHECK(dev_open(&d2, spec, &c) != 0);
    dev_close(&d);
    CHECK(access(path, F_OK) != 0);
}

/* ---- a raw, misbehaving client ------------------------------------------ */

static int raw_send(int sock, const uint8_t *msg, int fd)
{
    struct iovec iov = { (void *)msg, 128 };
    union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cm;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&cm, 0, sizeof(cm));
        mh.msg_control = cm.b;
        mh.msg_controllen = sizeof(cm.b);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    return sendmsg(sock, &mh, 0) == 128 ? 0 : -1;
}

/* Wait (servicing the server) for one message; returns its type or -1. */
static int raw_expect(int sock, struct side *srv)
{
    uint8_t msg[128];
    for (int i = 0; i < 1000; i++) {
        service(srv);
        ssize_t n = recv(sock, msg, sizeof(msg), MSG_DONTWAIT);
        if (n >= 2)
            return msg[0] | msg[1] << 8;
        if (n == 0)
            return -1;
        usleep(1000);
    }
    return -1;
}

static void put16(uint8_t *m, int off, uint16_t v) { memcpy(m + off, &v, 2); }
static void put32(uint8_t *m, int off, uint32_t v) { memcpy(m + off, &v, 4); }
static void put64(uint8_t *m, int off, uint64_t v) { memcpy(m + off, &v, 8); }

#define RAW_REGION 65536
#define RAW_LOG2 4
#define RAW_RING_BYTES (128 + 16 * (1 << RAW_LOG2))

/* Handshake by hand: ring C2S at 0, S2C right after it, both of 16 slots. */
static int raw_connect(int sock, struct side *srv, int shm)
{
    uint8_t m[128];
    if (raw_expect(sock, srv) != 2)                               /* HELLO */
        return -1;
    memset(m, 0, 128); put16(m, 0, 3); put16(m, 2, 0x0200);      /* INIT */
    if (raw_send(sock, m, -1) || raw_expect(sock, srv) != 1)
        return -1;
    memset(m, 0, 128); put16(m, 0, 4); put64(m, 4, RAW_REGION);   /* ADD_REGION */
    if (raw_send(sock, m, shm) || raw_expect(sock, srv) != 1)
        return -1;
    for (int c2s = 1; c2s >= 0; c2s--) {                          /* ADD_RING */
        int efd = eventfd(0, EFD_NONBLOCK);
        memset(m, 0, 128); put16(m, 0, 5); put16(m, 2, (uint16_t)c2s);
        put32(m, 8, c2s ? 0 : RAW_RING_BYTES); m[12] = RAW_LOG2;
        int rc = raw_send(sock, m, efd);
        close(efd);
        if (rc || raw_expect(sock, srv) != 1)
            return -1;
    }
    memset(m, 0, 128); put16(m, 0, 6);                            /* CONNECT */
    if (raw_send(sock, m, -1) || raw_expect(sock, srv) != 7)      /* CONNECTED */
        return -1;
    return 0;
}

struct raw_client {
    int sock, shm;
    uint8_t *mem;
};

static void raw_ring_store16(uint8_t *ring, int off, uint16_t v)
{
    __atomic_store_n((uint16_t *)(ring + off), v, __ATOMIC_RELEASE);
}

/* A raw client whose C2S ring holds one frame in slot 0 at region offset
 * buf_off, length len (both possibly hostile); head moved to `head`. */
static int raw_client_open(struct raw_client *rc, struct side *srv, const char *path)
{
    rc->shm = memfd_create("raw", 0);
    if (rc->shm < 0 || ftruncate(rc->shm, RAW_REGION) != 0)
        return -1;
    rc->mem = mmap(NULL, RAW_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, rc->shm, 0);
    if (rc->mem == MAP_FAILED)
        return -1;
    for (int r = 0; r < 2; r++)
        put32(rc->mem + r * RAW_RING_BYTES, 0, 0x3E31F20);   /* cookie */
    rc->sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(rc->sock, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    return raw_connect(rc->sock, srv, rc->shm);
}

static void raw_client_close(struct raw_client *rc)
{
    close(rc->sock);
    munmap(rc->mem, RAW_REGION);
    close(rc->shm);
}

static void raw_post_c2s(struct raw_client *rc, uint16_t slot, uint16_t region,
                         uint32_t off, uint32_t len, uint16_t head)
{
    uint8_t *d = rc->mem + 128 + 16 * slot;
    put16(d, 0, 0);
    put16(d, 2, region);
    put32(d, 4, len);
    put32(d, 8, off);
    raw_ring_store16(rc->mem, 6, head);
}

static int raw_server(struct side *srv, char *path, size_t n, const char *tag)
{
    char spec[256];
    sock_path(path, n, tag);
    snprintf(spec, sizeof(spec), "memif:%s,role=server,rsize=4", path);
    return side_open(srv, spec, 64, POOL_ROOM);
}

TEST(raw_client_valid_frame_is_received)
{
    struct side srv;
    struct raw_client rc;
    char path[108];
    CHECK(raw_server(&srv, path, sizeof(path), "rawok") == 0);
    CHECK(raw_client_open(&rc, &srv, path) == 0);
    CHECK(link_up(&srv));
    memset(rc.mem + 8192, 0xab, 100);
    raw_post_c2s(&rc, 0, 0, 8192, 100, 1);
    struct pkt *in[4];
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, in, 4, now_ns()), 1);
    CHECK_EQ(in[0]->len, 100);
    CHECK(pkt_data(in[0])[0] == 0xab && pkt_data(in[0])[99] == 0xab);
    pkt_free(in[0]);
    /* The server gave the slot back: tail is 1. */
    CHECK_EQ(__atomic_load_n((uint16_t *)(rc.mem + 64), __ATOMIC_ACQUIRE), 1);
    raw_client_close(&rc);
    CHECK(pump_until_down(&srv, 1000));
    CHECK_EQ(side_close(&srv), 64);
}

TEST(raw_client_bad_descriptor_is_disconnected)
{
    struct side srv;
    struct raw_client rc;
    char path[108];
    CHECK(raw_server(&srv, path, sizeof(path), "rawbad") == 0);
    CHECK(raw_client_open(&rc, &srv, path) == 0);
    raw_post_c2s(&rc, 0, 0, RAW_REGION - 10, 100, 1);      /* runs past the end */
    struct pkt *in[4];
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, in, 4, now_ns()), 0);
    CHECK(pump_until_down(&srv, 1000));
    CHECK_EQ(raw_expect(rc.sock, &srv), 8);                 /* DISCONNECT */
    raw_client_close(&rc);
    /* A second hostile client: a region index that does not exist. */
    CHECK(raw_client_open(&rc, &srv, path) == 0);
    raw_post_c2s(&rc, 0, 5, 0, 100, 1);
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, in, 4, now_ns()), 0);
    CHECK(pump_until_down(&srv, 1000));
    raw_client_close(&rc);
    /* And one whose head runs further than the ring is long. */
    CHECK(raw_client_open(&rc, &srv, path) == 0);
    raw_post_c2s(&rc, 0, 0, 8192, 100, 1000);
    CHECK_EQ(srv.d.ops->rx_burst(&srv.d, in, 4, now_ns()), 0);
    CHECK(pump_until_down(&srv, 1000));
    raw_client_close(&rc);
    CHECK_EQ(srv.ctr.dev_rx, 0);
    CHECK_EQ(side_close(&srv), 64);
}

TEST(raw_client_ring_outside_region_is_refused)
{
    struct side srv;
    char path[108];
    CHECK(raw_server(&srv, path, sizeof(path), "rawring") == 0);
    int sock = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);
    CHECK(connect(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    int shm = memfd_create("raw", 0);
    CHECK(ftruncate(shm, 4096) == 0);
    uint8_t m[128];
    CHECK_EQ(raw_expect(sock, &srv), 2);
    memset(m, 0, 128); put16(m, 0, 3); put16(m, 2, 0x0200);
    CHECK(raw_send(sock, m, -1) == 0);
    CHECK_EQ(raw_expect(sock, &srv), 1);
    /* Claims 64 KiB of a 4 KiB file: refused before mapping. */
    memset(m, 0, 128); put16(m, 0, 4); put64(m, 4, RAW_REGION);
    CHECK(raw_send(sock, m, shm) == 0);
    CHECK_EQ(raw_expect(sock, &srv), 8);
    close(sock);
    close(shm);
    CHECK(!link_up(&srv));
    CHECK_EQ(side_close(&srv), 64);
}

HARNESS_MAIN()
