/* TCP header and options (RFC 9293, RFC 7323, RFC 2018). */
#ifndef UST_WIRE_TCP_H
#define UST_WIRE_TCP_H

#include "wire/wire.h"

#define TCP_HDR_LEN 20
#define TCP_MAX_HDR_LEN 60
#define TCP_MAX_SACK 4

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WS 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK 5
#define TCPOPT_TS 8

struct tcp_sack_block {
    uint32_t left, right;
};

struct tcp_opts {
    uint8_t has_mss, has_ws, sack_ok, has_ts;
    uint16_t mss;
    uint8_t wscale;           /* as sent; receivers clamp to 14 (RFC 7323 2.3) */
    uint8_t sack_count;       /* SACK blocks present (0..4)                     */
    uint32_t ts_val, ts_ecr;
    struct tcp_sack_block sack[TCP_MAX_SACK];
};

struct tcp_repr {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t hdr_len;          /* bytes, options included */
    uint8_t flags;
    uint16_t win;
    uint16_t csum;
    uint16_t urg;
    struct tcp_opts opt;
};

/* len is the IP payload length. Validates data offset (20..60, within len),
 * the checksum when verify is set (pseudo as for udp_parse with l4_len = len),
 * and the option list: unknown options are skipped by their length; a length
 * below 2 or past the header, or a known option of the wrong length, is
 * WIRE_BAD_OPTION. Returns hdr_len. */
int tcp_parse(const uint8_t *buf, size_t len, uint32_t pseudo, int verify, struct tcp_repr *r);

/* Bytes the options of r take on the wire, padded to a multiple of 4. */
size_t tcp_opts_len(const struct tcp_opts *o);

/* Writes header and options (r->hdr_len is ignored and computed) for a
 * segment whose payload_len bytes already sit right after the header, and the
 * checksum with `pseudo` (l4_len = header + payload). Returns the header length. */
int tcp_emit(const struct tcp_repr *r, uint8_t *buf, size_t len, size_t payload_len, uint32_t pseudo);
/* The same, with the payload already added to sum (pseudo header +
 * payload, e.g. by csum_copy while it was copied in): only the header is
 * summed here. */
int tcp_emit_summed(const struct tcp_repr *r, uint8_t *buf, size_t len, size_t payload_len, uint32_t sum);

#endif
