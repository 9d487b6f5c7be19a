/* Ethernet II header parse/emit and MAC address text forms. */
#include "wire/eth.h"

#include <stdio.h>
#include <string.h>

#define ETH_OFF_DST 0
#define ETH_OFF_SRC 6
#define ETH_OFF_TYPE 12
#define ETH_TEXT_LEN 17   /* "aa:bb:cc:dd:ee:ff" */

const uint8_t eth_broadcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

int eth_parse(const uint8_t *buf, size_t len, struct eth_repr *r)
{
    if (len < ETH_HDR_LEN)
        return -WIRE_TRUNCATED;
    memcpy(r->dst, buf + ETH_OFF_DST, ETH_ALEN);
    memcpy(r->src, buf + ETH_OFF_SRC, ETH_ALEN);
    r->type = rd16(buf + ETH_OFF_TYPE);
    return ETH_HDR_LEN;
}

int eth_emit(const struct eth_repr *r, uint8_t *buf, size_t len)
{
    if (len < ETH_HDR_LEN)
        return -WIRE_TRUNCATED;
    memcpy(buf + ETH_OFF_DST, r->dst, ETH_ALEN);
    memcpy(buf + ETH_OFF_SRC, r->src, ETH_ALEN);
    wr16(buf + ETH_OFF_TYPE, r->type);
    return ETH_HDR_LEN;
}

static int eth_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Strict: exactly six pairs of hex digits separated by ':' and nothing more,
 * so a typo on a command line is an error rather than a different address. */
int eth_aton(const char *s, uint8_t mac[ETH_ALEN])
{
    uint8_t out[ETH_ALEN];

    if (s == NULL || strnlen(s, ETH_TEXT_LEN + 1) != ETH_TEXT_LEN)
        return -1;
    for (int i = 0; i < ETH_ALEN; i++) {
        const char *p = s + 3 * i;
        int hi = eth_hexval(p[0]), lo = eth_hexval(p[1]);
        if (hi < 0 || lo < 0)
            return -1;
        if (i < ETH_ALEN - 1 && p[2] != ':')
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(mac, out, ETH_ALEN);
    return 0;
}

void eth_ntoa(const uint8_t mac[ETH_ALEN], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}
