#include "net/link.h"

#include "net/stack.h"
#include "wire/eth.h"

static void link_input_eth(struct ust_stack *s, struct pkt *p)
{
    struct eth_repr eth;
    if (eth_parse(pkt_data(p), p->len, &eth) < 0) {
        CTR_INC(&s->ctr, eth_drop_short);
        pkt_free(p);
        return;
    }
    /* Unicast to another station (a bridge or promiscuous port) is not ours;
     * multicast other than broadcast we have not joined. */
    if (!eth_is_broadcast(eth.dst) &&
        (eth_is_multicast(eth.dst) || __builtin_memcmp(eth.dst, s->mac, 6) != 0)) {
        CTR_INC(&s->ctr, eth_drop_not_us);
        pkt_free(p);
        return;
    }
    p->l2 = p->off;
    pkt_pull(p, ETH_HDR_LEN);
    switch (eth.type) {
    case ETHERTYPE_IPV4:
        p->l3 = p->off;
        ipv4_input(s, p);
        return;
    case ETHERTYPE_ARP:
        arp_input(s, p);
        return;
    default:
        CTR_INC(&s->ctr, eth_drop_type);
        pkt_free(p);
    }
}

void link_input(struct ust_stack *s, struct pkt *p)
{
    CTR_INC(&s->ctr, eth_rx);
    if (!s->l3_only) {
        link_input_eth(s, p);
        return;
    }
    if (p->len < 1 || (pkt_data(p)[0] >> 4) != 4) {
        CTR_INC(&s->ctr, eth_drop_type);
        pkt_free(p);
        return;
    }
    p->l2 = p->l3 = p->off;
    ipv4_input(s, p);
}

void link_output_eth(struct ust_stack *s, struct pkt *p, const uint8_t dst[6], uint16_t type)
{
    uint8_t *h = pkt_push(p, ETH_HDR_LEN);
    if (!h) {
        CTR_INC(&s->ctr, ip_drop_tx_nobuf);
        pkt_free(p);
        return;
    }
    struct eth_repr eth = {.type = type};
    __builtin_memcpy(eth.dst, dst, 6);
    __builtin_memcpy(eth.src, s->mac, 6);
    eth_emit(&eth, h, ETH_HDR_LEN);
    p->l2 = p->off;
    /* Ethernet's minimum frame: pad with zeros rather than leak old bytes. */
    if (p->len < ETH_MIN_FRAME) {
        uint16_t pad = (uint16_t)(ETH_MIN_FRAME - p->len);
        uint8_t *t = pkt_put(p, pad);
        if (t)
            __builtin_memset(t, 0, pad);
    }
    CTR_INC(&s->ctr, eth_tx);
    stack_xmit(s, p);
}

void link_output_ip(struct ust_stack *s, struct pkt *p, uint32_t next_hop, int broadcast)
{
    if (s->l3_only) {
        CTR_INC(&s->ctr, eth_tx);
        stack_xmit(s, p);
    } else if (broadcast) {
        link_output_eth(s, p, eth_broadcast, ETHERTYPE_IPV4);
    } else {
        arp_output(s, p, next_hop);
    }
}
