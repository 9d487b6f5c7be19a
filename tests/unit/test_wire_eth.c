/* Ethernet II header and MAC address text forms. */
#include "harness.h"
#include "wire/eth.h"

/* An ARP request frame header as seen on the wire. */
static const uint8_t frame_hdr[ETH_HDR_LEN] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* dst: broadcast */
    0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,   /* src */
    0x08, 0x06,                           /* type: ARP */
};

TEST(parse_known_bytes)
{
    struct eth_repr r;
    CHECK_EQ(eth_parse(frame_hdr, sizeof frame_hdr, &r), ETH_HDR_LEN);
    CHECK_MEM(r.dst, eth_broadcast, ETH_ALEN);
    const uint8_t src[ETH_ALEN] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};
    CHECK_MEM(r.src, src, ETH_ALEN);
    CHECK_EQ(r.type, ETHERTYPE_ARP);
}

TEST(parse_truncated)
{
    struct eth_repr r;
    for (size_t len = 0; len < ETH_HDR_LEN; len++)
        CHECK_EQ(eth_parse(frame_hdr, len, &r), -WIRE_TRUNCATED);
}

TEST(emit_known_bytes_and_round_trip)
{
    struct eth_repr r = {.type = ETHERTYPE_ARP};
    memcpy(r.dst, eth_broadcast, ETH_ALEN);
    const uint8_t src[ETH_ALEN] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};
    memcpy(r.src, src, ETH_ALEN);
    uint8_t out[64];
    memset(out, 0xaa, sizeof out);
    CHECK_EQ(eth_emit(&r, out, sizeof out), ETH_HDR_LEN);
    CHECK_MEM(out, frame_hdr, ETH_HDR_LEN);
    CHECK_EQ(out[ETH_HDR_LEN], 0xaa);   /* nothing past the header */
    struct eth_repr back;
    CHECK_EQ(eth_parse(out, ETH_HDR_LEN, &back), ETH_HDR_LEN);
    CHECK_MEM(&back, &r, sizeof r);
}

TEST(emit_truncated)
{
    struct eth_repr r = {.type = ETHERTYPE_IPV4};
    uint8_t out[ETH_HDR_LEN];
    CHECK_EQ(eth_emit(&r, out, ETH_HDR_LEN - 1), -WIRE_TRUNCATED);
    CHECK_EQ(eth_emit(&r, out, 0), -WIRE_TRUNCATED);
}

TEST(broadcast_multicast)
{
    CHECK(eth_is_broadcast(eth_broadcast));
    CHECK(eth_is_multicast(eth_broadcast));
    const uint8_t mc[ETH_ALEN] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
    const uint8_t uc[ETH_ALEN] = {0x02, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t almost[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    CHECK(!eth_is_broadcast(mc) && eth_is_multicast(mc));
    CHECK(!eth_is_broadcast(uc) && !eth_is_multicast(uc));
    CHECK(!eth_is_broadcast(almost));
}

TEST(aton_valid)
{
    uint8_t mac[ETH_ALEN];
    CHECK_EQ(eth_aton("02:00:5e:10:20:30", mac), 0);
    const uint8_t want[ETH_ALEN] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};
    CHECK_MEM(mac, want, ETH_ALEN);
    CHECK_EQ(eth_aton("FF:ff:Ff:fF:00:aB", mac), 0);
    const uint8_t want2[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0x00, 0xab};
    CHECK_MEM(mac, want2, ETH_ALEN);
}

TEST(aton_rejects)
{
    static const char *const bad[] = {
        "", "02:00:5e:10:20", "02:00:5e:10:20:30:", "02:00:5e:10:20:3", "2:00:5e:10:20:30",
        "02-00-5e-10-20-30", "02:00:5e:10:20:3g", "02:00:5e:10:20:300", " 02:00:5e:10:20:30",
        "02:00:5e:10:20:30 ", "0200.5e10.2030", "02::5e:10:20:30:1", "+2:00:5e:10:20:30",
    };
    uint8_t mac[ETH_ALEN] = {1, 2, 3, 4, 5, 6};
    const uint8_t keep[ETH_ALEN] = {1, 2, 3, 4, 5, 6};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(eth_aton(bad[i], mac), -1);
        CHECK_MEM(mac, keep, ETH_ALEN);   /* untouched on failure */
    }
    CHECK_EQ(eth_aton(NULL, mac), -1);
}

TEST(ntoa_and_back)
{
    const uint8_t mac[ETH_ALEN] = {0x02, 0x0a, 0xbc, 0xde, 0xf0, 0x01};
    char s[18];
    memset(s, 'x', sizeof s);
    eth_ntoa(mac, s);
    CHECK(strcmp(s, "02:0a:bc:de:f0:01") == 0);
    uint8_t back[ETH_ALEN];
    CHECK_EQ(eth_aton(s, back), 0);
    CHECK_MEM(back, mac, ETH_ALEN);
    eth_ntoa(eth_broadcast, s);
    CHECK(strcmp(s, "ff:ff:ff:ff:ff:ff") == 0);
}

HARNESS_MAIN()
