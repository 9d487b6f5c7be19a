/* The stack end to end on the in-memory link and a virtual clock: the test
 * plays the peer, forging frames and asserting the exact frames that come
 * back (smoltcp style), with a pool-leak check after every test. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "harness.h"
#include "stackfx.h"
#include "wire/arp.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/icmp.h"
#include "wire/ipv4.h"
#include "wire/udp.h"


/* Split an ICMP echo request of plen payload bytes into fragments of at
 * most `chunk` payload bytes and send them in the given order. */
static void send_fragmented_echo(struct fixture *fx, size_t plen, uint16_t id, size_t chunk, int reverse)
{
    static uint8_t msg[65536], f[2048];
    size_t total = 8 + plen;
    struct icmp_repr m = {.type = ICMP_ECHO_REQUEST, .id = 0x1234, .seq = 1, .payload = NULL};
    for (size_t i = 0; i < plen; i++)
        msg[8 + i] = (uint8_t)(i * 7);
    m.payload = msg + 8;
    m.payload_len = plen;
    icmp_emit(&m, msg, total);
    size_t nfrag = (total + chunk - 1) / chunk;
    for (size_t k = 0; k < nfrag; k++) {
        size_t i = reverse ? nfrag - 1 - k : k;
        size_t off = i * chunk, len = total - off < chunk ? total - off : chunk;
        memcpy(f + ETH_HDR_LEN + 20, msg + off, len);
        fx_send(fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, id, (uint16_t)off, off + len < total, len));
    }
}

/* ---- tests ---- */

TEST(gratuitous_arp_at_start)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    uint8_t f[128];
    size_t n = fx_recv(&fx, f, sizeof(f));
    CHECK_EQ(n, 60);
    struct eth_repr e;
    struct arp_repr a;
    CHECK(eth_parse(f, n, &e) == ETH_HDR_LEN);
    CHECK(eth_is_broadcast(e.dst));
    CHECK_EQ(e.type, ETHERTYPE_ARP);
    CHECK(arp_parse(f + 14, n - 14, &a) == ARP_LEN);
    CHECK_EQ(a.op, ARP_OP_REQUEST);
    CHECK_EQ(a.spa, FX_US_IP);
    CHECK_EQ(a.tpa, FX_US_IP);
    CHECK_MEM(a.sha, fx_us_mac, 6);
    CHECK(fx_close(&fx) == 0);
}

TEST(arp_request_gets_exact_reply)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_drain(&fx);
    uint8_t f[128];
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REQUEST, FX_PEER_IP, fx_peer_mac, FX_US_IP));
    size_t n = fx_recv(&fx, f, sizeof(f));
    CHECK_EQ(n, 60);
    struct eth_repr e;
    struct arp_repr a;
    eth_parse(f, n, &e);
    CHECK_MEM(e.dst, fx_peer_mac, 6);
    CHECK_MEM(e.src, fx_us_mac, 6);
    CHECK(arp_parse(f + 14, n - 14, &a) == ARP_LEN);
    CHECK_EQ(a.op, ARP_OP_REPLY);
    CHECK_EQ(a.spa, FX_US_IP);
    CHECK_EQ(a.tpa, FX_PEER_IP);
    CHECK_MEM(a.sha, fx_us_mac, 6);
    CHECK_MEM(a.tha, fx_peer_mac, 6);
    /* The sender was learned: the stack can now talk to it without asking. */
    uint8_t mac[6];
    CHECK(arp_lookup(fx.s, FX_PEER_IP, mac) == 0);
    CHECK_MEM(mac, fx_peer_mac, 6);
    CHECK(fx_close(&fx) == 0);
}

TEST(arp_not_for_us_is_ignored_and_not_learned)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_drain(&fx);
    uint8_t f[128], mac[6];
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REQUEST, FX_PEER_IP, fx_peer_mac, 0x0a000009));
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 0);
    CHECK(arp_lookup(fx.s, FX_PEER_IP, mac) < 0);
    CHECK_EQ(fx_ctr(&fx, "arp_drop_not_us"), 1);
    CHECK(fx_close(&fx) == 0);
}

TEST(arp_bogus_senders_dropped)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_drain(&fx);
    uint8_t f[128];
    const uint8_t mcast[6] = {0x01, 0, 0x5e, 0, 0, 1};
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REQUEST, FX_PEER_IP, mcast, FX_US_IP));
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REQUEST, FX_US_IP, fx_peer_mac, FX_US_IP + 0));   /* claims our address */
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REQUEST, 0x0a0000ff, fx_peer_mac, FX_US_IP));  /* subnet broadcast */
    CHECK_EQ(fx_ctr(&fx, "arp_drop_bogus_sender"), 3);
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 0);
    CHECK(fx_close(&fx) == 0);
}

static void check_echo_reply(HARNESS_ARGS, const uint8_t *f, size_t n, uint16_t id, uint16_t seq, size_t plen)
{
    struct ipv4_repr ip;
    struct icmp_repr m;
    CHECK(n >= 14 + 20 + 8);
    CHECK(ipv4_parse(f + 14, n - 14, &ip) == 20);
    CHECK_EQ(ip.src, FX_US_IP);
    CHECK_EQ(ip.dst, FX_PEER_IP);
    CHECK_EQ(ip.proto, IPPROTO_ICMP_);
    CHECK(icmp_parse(f + 34, ip.total_len - 20u, &m) == 8);
    CHECK_EQ(m.type, ICMP_ECHO_REPLY);
    CHECK_EQ(m.id, id);
    CHECK_EQ(m.seq, seq);
    CHECK_EQ(m.payload_len, plen);
}

TEST(ping_reply_after_arp_resolution)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_drain(&fx);
    uint8_t f[2048];
    /* Peer unknown: the reply waits while the stack asks who the peer is. */
    struct icmp_repr m = {.type = ICMP_ECHO_REQUEST, .id = 99, .seq = 3, .payload = (const uint8_t *)"hello!!!",
                          .payload_len = 8};
    icmp_emit(&m, f + 34, 16);
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 1, 0, 0, 16));
    size_t n = fx_recv(&fx, f, sizeof(f));
    struct arp_repr a;
    CHECK(n == 60 && arp_parse(f + 14, n - 14, &a) == ARP_LEN);
    CHECK_EQ(a.op, ARP_OP_REQUEST);
    CHECK_EQ(a.tpa, FX_PEER_IP);
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 0);
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REPLY, FX_PEER_IP, fx_peer_mac, FX_US_IP));
    n = fx_recv(&fx, f, sizeof(f));
    check_echo_reply(HARNESS_PASS, f, n, 99, 3, 8);
    CHECK_OK();
    CHECK_MEM(f + 42, "hello!!!", 8);
    CHECK(fx_close(&fx) == 0);
}

TEST(arp_unanswered_gives_up_and_frees)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_drain(&fx);
    uint8_t f[2048];
    struct icmp_repr m = {.type = ICMP_ECHO_REQUEST, .id = 1, .seq = 1, .payload = f, .payload_len = 0};
    icmp_emit(&m, f + 34, 8);
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 1, 0, 0, 8));
    int requests = 0;
    for (int i = 0; i < 10; i++) {
        while (fx_recv(&fx, f, sizeof(f)))
            requests++;
        fx_advance(&fx, 1100000000ULL);
    }
    CHECK_EQ(requests, 3);   /* ARP_MAX_PROBES */
    CHECK_EQ(fx_ctr(&fx, "arp_resolve_fail"), 1);
    CHECK_EQ(fx_ctr(&fx, "arp_pending_drop"), 1);
    CHECK(fx_close(&fx) == 0);
}

TEST(arp_stale_entry_is_revalidated_by_unicast)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    fx_advance(&fx, ARP_REACHABLE_NS + 2000000000ULL);
    fx_drain(&fx);
    uint8_t f[2048];
    struct icmp_repr m = {.type = ICMP_ECHO_REQUEST, .id = 1, .seq = 1, .payload = f, .payload_len = 0};
    icmp_emit(&m, f + 34, 8);
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 1, 0, 0, 8));
    /* Both: a unicast request to confirm and the reply itself (RFC 1122 2.3.2.1). */
    int saw_probe = 0, saw_reply = 0;
    size_t n;
    while ((n = fx_recv(&fx, f, sizeof(f)))) {
        struct eth_repr e;
        eth_parse(f, n, &e);
        if (e.type == ETHERTYPE_ARP) {
            saw_probe = 1;
            CHECK_MEM(e.dst, fx_peer_mac, 6);
        } else {
            saw_reply = 1;
        }
    }
    CHECK(saw_probe && saw_reply);
    CHECK(fx_close(&fx) == 0);
}

TEST(ping_3000_bytes_reassembled_and_fragmented)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    send_fragmented_echo(&fx, 3000, 77, 1480, 1);
    CHECK_EQ(fx_ctr(&fx, "ip_frag_reassembled"), 1);
    static uint8_t whole[4096], f[2048];
    size_t n, got = 0;
    int frags = 0;
    while ((n = fx_recv(&fx, f, sizeof(f)))) {
        struct ipv4_repr ip;
        CHECK(ipv4_parse(f + 14, n - 14, &ip) == 20);
        CHECK(ip.total_len <= 1500);
        CHECK(ip.frag_off + ip.total_len - 20u <= sizeof(whole));
        memcpy(whole + ip.frag_off, f + 34, ip.total_len - 20u);
        got += ip.total_len - 20u;
        frags++;
    }
    CHECK_EQ(frags, 3);
    CHECK_EQ(got, 3008);
    struct icmp_repr m;
    CHECK(icmp_parse(whole, 3008, &m) == 8);
    CHECK_EQ(m.type, ICMP_ECHO_REPLY);
    for (size_t i = 0; i < 3000; i++)
        CHECK_EQ(whole[8 + i], (uint8_t)(i * 7));
    CHECK(fx_close(&fx) == 0);
}

TEST(broadcast_ping_ignored)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    uint8_t f[256];
    struct icmp_repr m = {.type = ICMP_ECHO_REQUEST, .id = 1, .seq = 1, .payload = f, .payload_len = 0};
    icmp_emit(&m, f + 34, 8);
    size_t n = fx_build_ip(f, FX_PEER_IP, 0x0a0000ff, IPPROTO_ICMP_, 1, 0, 0, 8);
    memcpy(f, eth_broadcast, 6);
    fx_send(&fx, f, n);
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 0);
    CHECK_EQ(fx_ctr(&fx, "icmp_rx_echo"), 1);
    CHECK(fx_close(&fx) == 0);
}

static void echo_cb(struct ust_udp *u, void *arg)
{
    static uint8_t buf[65536];
    (void)arg;
    struct sockaddr_in from;
    socklen_t fl = sizeof(from);
    ssize_t n;
    while ((n = ust_udp_recvfrom(u, buf, sizeof(buf), (struct sockaddr *)&from, &fl)) >= 0)
        ust_udp_sendto(u, buf, (size_t)n, (struct sockaddr *)&from, fl);
}

static void open_echo(struct fixture *fx)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7)};
    fx->echo = ust_udp_open(fx->s);
    ust_udp_bind(fx->echo, (struct sockaddr *)&a, sizeof(a));
    ust_udp_set_callback(fx->echo, echo_cb, NULL);
}

TEST(udp_echo_exact)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    open_echo(&fx);
    uint8_t data[1400], f[2048];
    for (size_t sz = 1; sz <= 1400; sz = sz * 3 + 1) {
        for (size_t i = 0; i < sz; i++)
            data[i] = (uint8_t)(i ^ sz);
        fx_send(&fx, f, fx_build_udp(f, 5555, 7, data, sz));
        size_t n = fx_recv(&fx, f, sizeof(f));
        struct ipv4_repr ip;
        struct udp_repr u;
        CHECK(ipv4_parse(f + 14, n - 14, &ip) == 20);
        CHECK_EQ(ip.dst, FX_PEER_IP);
        CHECK(udp_parse(f + 34, ip.total_len - 20u, csum_pseudo_ipv4(ip.src, ip.dst, 17, (uint16_t)(8 + sz)), 1,
                        &u) == 8);
        CHECK_EQ(u.sport, 7);
        CHECK_EQ(u.dport, 5555);
        CHECK_EQ(u.len, 8 + sz);
        CHECK_MEM(f + 42, data, sz);
    }
    CHECK(fx_close(&fx) == 0);
}

TEST(udp_8000_bytes_fragmented_both_ways)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    open_echo(&fx);
    static uint8_t dgram[8008], whole[8008], f[2048];
    for (size_t i = 0; i < 8000; i++)
        dgram[8 + i] = (uint8_t)(i * 13 + 1);
    struct udp_repr r = {.sport = 4000, .dport = 7, .len = 8008};
    udp_emit(&r, dgram, 8008, csum_pseudo_ipv4(FX_PEER_IP, FX_US_IP, 17, 8008));
    for (size_t off = 0; off < 8008; off += 1480) {
        size_t len = 8008 - off < 1480 ? 8008 - off : 1480;
        memcpy(f + 34, dgram + off, len);
        fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_UDP_, 555, (uint16_t)off, off + len < 8008, len));
    }
    size_t n, got = 0;
    while ((n = fx_recv(&fx, f, sizeof(f)))) {
        struct ipv4_repr ip;
        CHECK(ipv4_parse(f + 14, n - 14, &ip) == 20);
        CHECK(ip.frag_off + ip.total_len - 20u <= sizeof(whole));
        memcpy(whole + ip.frag_off, f + 34, ip.total_len - 20u);
        got += ip.total_len - 20u;
    }
    CHECK_EQ(got, 8008);
    struct udp_repr u;
    CHECK(udp_parse(whole, 8008, csum_pseudo_ipv4(FX_US_IP, FX_PEER_IP, 17, 8008), 1, &u) == 8);
    CHECK_MEM(whole + 8, dgram + 8, 8000);
    CHECK(fx_close(&fx) == 0);
}

TEST(udp_closed_port_gets_port_unreachable_rate_limited)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    uint8_t f[2048], q[2048];
    size_t qn = fx_build_udp(q, 5555, 9, (const uint8_t *)"x", 1);
    fx_send(&fx, q, qn);
    size_t n = fx_recv(&fx, f, sizeof(f));
    struct ipv4_repr ip;
    struct icmp_repr m;
    CHECK(ipv4_parse(f + 14, n - 14, &ip) == 20);
    CHECK(icmp_parse(f + 34, ip.total_len - 20u, &m) == 8);
    CHECK_EQ(m.type, ICMP_DEST_UNREACH);
    CHECK_EQ(m.code, ICMP_PORT_UNREACH);
    CHECK_EQ(m.payload_len, qn - 14);          /* the whole offending datagram quoted */
    CHECK_MEM(m.payload, q + 14, qn - 14);
    /* A burst at one instant: at most the bucket's burst goes out. */
    int replies = 0;
    for (int i = 0; i < 200; i++) {
        fx_send(&fx, q, qn);
        replies += fx_recv(&fx, f, sizeof(f)) > 0;
    }
    CHECK(replies < 60);
    CHECK(fx_ctr(&fx, "icmp_ratelimited") > 140);
    CHECK_EQ(fx_ctr(&fx, "udp_drop_noport"), 201);
    CHECK(fx_close(&fx) == 0);
}

TEST(icmp_error_reaches_udp_socket)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    struct ust_udp *u = ust_udp_open(fx.s);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(FX_PEER_IP)};
    CHECK(ust_udp_sendto(u, "ping", 4, (struct sockaddr *)&to, sizeof(to)) == 4);
    fx_poll(&fx);
    uint8_t sent[2048], f[2048];
    size_t n = fx_recv(&fx, sent, sizeof(sent));
    CHECK(n >= 46);
    struct icmp_repr m = {.type = ICMP_DEST_UNREACH, .code = ICMP_PORT_UNREACH, .payload = sent + 14,
                          .payload_len = 28 + 4};
    icmp_emit(&m, f + 34, 8 + 32);
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 9, 0, 0, 40));
    CHECK_EQ(ust_udp_error(u), ECONNREFUSED);
    CHECK_EQ(ust_udp_error(u), 0);
    ust_udp_close(u);
    CHECK(fx_close(&fx) == 0);
}

TEST(malformed_frames_dropped_and_counted)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    open_echo(&fx);
    uint8_t f[2048];
    size_t n = fx_build_udp(f, 1, 7, (const uint8_t *)"abc", 3);
    f[14 + 10] ^= 0xff;                           /* IP checksum */
    fx_send(&fx, f, n);
    n = fx_build_udp(f, 1, 7, (const uint8_t *)"abc", 3);
    f[n - 1] ^= 0x01;                             /* UDP payload: UDP checksum */
    fx_send(&fx, f, n);
    n = fx_build_udp(f, 1, 7, (const uint8_t *)"abc", 3);
    fx_send(&fx, f, 30);                          /* truncated IP header */
    n = fx_build_udp(f, 1, 7, (const uint8_t *)"abc", 3);
    f[14] = 0x65;                                 /* version 6 */
    fx_send(&fx, f, n);
    n = fx_build_udp(f, 1, 7, (const uint8_t *)"abc", 3);
    wr16(f + 14 + 20 + 4, 200);                   /* UDP length past the datagram */
    fx_send(&fx, f, n);
    fx_send(&fx, f, 10);                          /* runt Ethernet frame */
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 0);
    CHECK_EQ(fx_ctr(&fx, "ip_drop_csum"), 1);
    CHECK_EQ(fx_ctr(&fx, "udp_drop_csum"), 1);
    CHECK(fx_ctr(&fx, "ip_drop_truncated") + fx_ctr(&fx, "ip_drop_len") + fx_ctr(&fx, "ip_drop_hdrlen") >= 1);
    CHECK_EQ(fx_ctr(&fx, "ip_drop_version"), 1);
    CHECK_EQ(fx_ctr(&fx, "udp_drop_malformed"), 1);
    CHECK_EQ(fx_ctr(&fx, "eth_drop_short"), 1);
    CHECK(fx_close(&fx) == 0);
}

TEST(ip_options_are_skipped)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    open_echo(&fx);
    uint8_t f[2048];
    /* 24-byte header: one NOP x3 + EOL option word. */
    uint8_t *ip = f + 14, *u = ip + 24;
    memcpy(u + 8, "opt", 3);
    struct udp_repr r = {.sport = 1000, .dport = 7, .len = 11};
    udp_emit(&r, u, 11, csum_pseudo_ipv4(FX_PEER_IP, FX_US_IP, 17, 11));
    fx_build_eth(f, fx_us_mac, ETHERTYPE_IPV4);
    struct ipv4_repr h = {.hdr_len = 20, .total_len = 24 + 11, .ttl = 64, .proto = 17, .src = FX_PEER_IP, .dst = FX_US_IP};
    ipv4_emit(&h, ip, 20);
    ip[0] = 0x46;
    ip[20] = 1; ip[21] = 1; ip[22] = 1; ip[23] = 0;
    wr16(ip + 10, 0);
    wr16(ip + 10, csum_buf(ip, 24));
    fx_send(&fx, f, 14 + 24 + 11);
    size_t n = fx_recv(&fx, f, sizeof(f));
    CHECK(n >= 14 + 20 + 11);
    CHECK_MEM(f + 42, "opt", 3);
    CHECK(fx_close(&fx) == 0);
}

TEST(fragment_flood_then_legit_ping_passes)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    uint8_t f[2048];
    memset(f + 34, 0xaa, 1480);
    /* Thousands of first fragments whose sets never complete. */
    for (int i = 0; i < 5000; i++)
        fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_UDP_, (uint16_t)(i + 1000), 0, 1, 1480));
    CHECK(fx.s->frag.used_sets <= fx.s->frag.max_sets);
    CHECK(fx_ctr(&fx, "ip_frag_drop_evicted") > 4000);
    send_fragmented_echo(&fx, 3000, 60000, 1480, 0);
    CHECK_EQ(fx_ctr(&fx, "ip_frag_reassembled"), 1);
    int frags = 0;
    while (fx_recv(&fx, f, sizeof(f)))
        frags++;
    CHECK_EQ(frags, 3);
    /* And the leftovers time out, returning every buffer. */
    fx_advance(&fx, 6000000000ULL);
    CHECK_EQ(fx.s->frag.used_sets, 0);
    CHECK(fx_close(&fx) == 0);
}

TEST(overlapping_fragments_dropped)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_learn_peer(&fx);
    uint8_t f[2048];
    memset(f + 34, 0, 1480);
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 42, 0, 1, 1480));
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 42, 1000, 0, 600));
    CHECK_EQ(fx_ctr(&fx, "ip_frag_drop_overlap"), 1);
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 0);
    CHECK(fx_close(&fx) == 0);
}

TEST(arp_flood_stays_bounded)
{
    struct fixture fx;
    CHECK(fx_open(&fx, "--arp-entries=64") == 0);
    fx_drain(&fx);
    uint8_t f[128], mac[6] = {0x02, 1, 2, 3, 4, 5};
    uint64_t rng = 12345;
    for (int i = 0; i < 20000; i++) {
        uint32_t r = (uint32_t)xrand_next(&rng);
        mac[5] = (uint8_t)r;
        /* Random senders, in and out of our subnet, some aimed at us. */
        uint32_t spa = (r & 1) ? (0x0a000000u | ((r >> 8) & 0xfe) | 1) : r;
        fx_send(&fx, f, fx_build_arp(f, (r & 2) ? ARP_OP_REQUEST : ARP_OP_REPLY, spa, mac, (r & 4) ? FX_US_IP : r));
        fx_drain(&fx);
    }
    CHECK(fx.s->arp.used <= fx.s->arp.max_entries);
    /* Still answers a legitimate neighbour. */
    fx_send(&fx, f, fx_build_arp(f, ARP_OP_REQUEST, FX_PEER_IP, fx_peer_mac, FX_US_IP));
    CHECK_EQ(fx_recv(&fx, f, sizeof(f)), 60);
    CHECK(fx_close(&fx) == 0);
}

TEST(static_neighbour_needs_no_arp)
{
    struct fixture fx;
    CHECK(fx_open(&fx, "--neigh=10.0.0.1=02:00:00:00:00:01") == 0);
    fx_drain(&fx);
    uint8_t f[256];
    struct icmp_repr m = {.type = ICMP_ECHO_REQUEST, .id = 5, .seq = 6, .payload = f, .payload_len = 0};
    icmp_emit(&m, f + 34, 8);
    fx_send(&fx, f, fx_build_ip(f, FX_PEER_IP, FX_US_IP, IPPROTO_ICMP_, 1, 0, 0, 8));
    size_t n = fx_recv(&fx, f, sizeof(f));
    check_echo_reply(HARNESS_PASS, f, n, 5, 6, 0);
    CHECK_OK();
    /* And a static entry never expires. */
    fx_advance(&fx, 200ULL * 1000000000ULL);
    uint8_t mac[6];
    CHECK(arp_lookup(fx.s, FX_PEER_IP, mac) == 0);
    CHECK(fx_close(&fx) == 0);
}

TEST(off_subnet_goes_via_gateway)
{
    struct fixture fx;
    CHECK(fx_open(&fx, NULL) == 0);
    fx_drain(&fx);
    struct ust_udp *u = ust_udp_open(fx.s);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = htonl(0x08080808)};
    CHECK(ust_udp_sendto(u, "q", 1, (struct sockaddr *)&to, sizeof(to)) == 1);
    fx_poll(&fx);
    uint8_t f[128];
    struct arp_repr a;
    size_t n = fx_recv(&fx, f, sizeof(f));
    CHECK(n == 60 && arp_parse(f + 14, n - 14, &a) == ARP_LEN);
    CHECK_EQ(a.tpa, 0x0a0000fe);   /* asks for the gateway, not the destination */
    ust_udp_close(u);
    fx_advance(&fx, 5000000000ULL);   /* let the unanswered resolution give up */
    CHECK(fx_close(&fx) == 0);
}

TEST(pcap_file_records_both_directions)
{
    struct fixture fx;
    char path[64], arg[80];
    snprintf(path, sizeof(path), "/tmp/ust-test-%d.pcap", (int)getpid());
    snprintf(arg, sizeof(arg), "--pcap=%s", path);
    CHECK(fx_open(&fx, arg) == 0);
    fx_learn_peer(&fx);   /* one frame in, gratuitous ARP and a reply out */
    CHECK(fx_close(&fx) == 0);
    FILE *fp = fopen(path, "rb");
    CHECK(fp);
    uint8_t hdr[24], rec[16];
    CHECK(fread(hdr, 1, 24, fp) == 24);
    uint32_t magic, linktype;
    memcpy(&magic, hdr, 4);
    memcpy(&linktype, hdr + 20, 4);
    CHECK_EQ(magic, 0xa1b23c4d);
    CHECK_EQ(linktype, 1);
    int frames = 0;
    while (fread(rec, 1, 16, fp) == 16) {
        uint32_t caplen;
        memcpy(&caplen, rec + 8, 4);
        CHECK(caplen == 60);
        fseek(fp, caplen, SEEK_CUR);
        frames++;
    }
    fclose(fp);
    unlink(path);
    CHECK_EQ(frames, 3);
}

HARNESS_MAIN()
