/* What the socket layer (src/api/socket*.c) reads from a connection beyond
 * the minimal ust_tcp_* API: a readiness summary for epoll, MSG_PEEK, and
 * the TCP_INFO numbers. Kept apart from tcp.h so the socket layer can also
 * include <netinet/tcp.h> (whose state enum clashes with tcp.h's). */
#ifndef UST_TCP_TCP_SOCK_H
#define UST_TCP_TCP_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ustack/ustack.h"

/* tcp_sock_poll bits */
#define TSP_LISTEN     0x0001u   /* a listener                              */
#define TSP_ACCEPTQ    0x0002u   /* listener: a connection is ready         */
#define TSP_CONNECTING 0x0004u   /* SYN-SENT or SYN-RECEIVED                */
#define TSP_DATA       0x0008u   /* bytes to read                           */
#define TSP_RCV_FIN    0x0010u   /* the peer's FIN arrived (EOF after data)  */
#define TSP_CLOSED     0x0020u   /* CLOSED: finished, reset or failed        */
#define TSP_SENDABLE   0x0040u   /* send would take at least one byte       */
#define TSP_FIN_QUEUED 0x0080u   /* our side shut down writing              */
#define TSP_ERROR      0x0100u   /* a hard error is pending                 */
#define TSP_SYNCED     0x0200u   /* reached ESTABLISHED at some point       */

unsigned tcp_sock_poll(const struct ust_tcp *c);

/* Copy up to len readable bytes, starting off bytes in, without
 * consuming them. */
size_t tcp_sock_peek(const struct ust_tcp *c, size_t off, void *buf, size_t len);

/* The TCP_INFO fields the TCB has, in Linux's units (state numbering of
 * <netinet/tcp.h>, times in microseconds, cwnd and ssthresh in segments). */
struct tcp_sock_info {
    uint8_t state, ca_state, retransmits, probes, backoff, options, snd_wscale, rcv_wscale;
    uint32_t rto_us, ato_us, snd_mss, rcv_mss, unacked, lost, retrans;
    uint32_t last_data_sent_ms;
    uint32_t pmtu, rtt_us, rttvar_us, snd_ssthresh, snd_cwnd, advmss, rcv_space, total_retrans;
    uint32_t min_rtt_us, snd_wnd;
};
#define TSI_OPT_TIMESTAMPS 1   /* Linux TCPI_OPT_* values */
#define TSI_OPT_SACK 2
#define TSI_OPT_WSCALE 4

void tcp_sock_info(const struct ust_tcp *c, struct tcp_sock_info *out);

/* The congestion control module's name ("cubic", "newreno"). */
const char *tcp_sock_cc_name(const struct ust_tcp *c);

#endif
