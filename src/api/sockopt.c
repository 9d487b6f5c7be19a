/* Socket options, fcntl and ioctl (socket.h). Options are remembered on the
 * socket so that those set before listen/connect apply to the connection
 * when it is made, and accepted sockets inherit their listener's. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>

#include "api/forward.h"
#include "api/sock.h"
#include "tcp/tcp_sock.h"
#include "udp/udp.h"

#define CC_NAME_MAX 16   /* Linux TCP_CA_NAME_MAX */

static int opt_int(const void *val, socklen_t len, int *out)
{
    if (!val || len < (socklen_t)sizeof(int)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(out, val, sizeof(int));
    return 0;
}

static int opt_put(void *val, socklen_t *len, const void *src, size_t n)
{
    if (!val || !len) {
        errno = EFAULT;
        return -1;
    }
    if (*len < n)
        n = *len;
    memcpy(val, src, n);
    *len = (socklen_t)n;
    return 0;
}

static int opt_put_int(void *val, socklen_t *len, int v) { return opt_put(val, len, &v, sizeof(v)); }

/* Remember a TCP option and apply it to the connection when there is one. */
static int sock_tcp_opt(struct usock *sk, enum ust_tcp_opt opt, int v)
{
    if (sk->tcp && ust_tcp_setopt(sk->tcp, opt, v) < 0)
        return -1;
    sk->opt_val[opt] = v;
    sk->opt_set |= (uint16_t)(1u << opt);
    return 0;
}

static int sock_tcp_get(const struct usock *sk, enum ust_tcp_opt opt, int dflt, int *v)
{
    if (sk->tcp)
        return ust_tcp_getopt(sk->tcp, opt, v);
    *v = (sk->opt_set & (1u << opt)) ? sk->opt_val[opt] : dflt;
    return 0;
}

static int timeo_set(uint64_t *ns, const void *val, socklen_t len)
{
    struct timeval tv;
    if (!val || len < (socklen_t)sizeof(tv)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(&tv, val, sizeof(tv));
    if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) {
        errno = EDOM;
        return -1;
    }
    *ns = tv.tv_sec < 0 ? 0 : (uint64_t)tv.tv_sec * 1000000000ULL + (uint64_t)tv.tv_usec * 1000ULL;
    return 0;
}

static int timeo_get(uint64_t ns, void *val, socklen_t *len)
{
    struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000ULL), .tv_usec = (suseconds_t)(ns % 1000000000ULL / 1000)};
    return opt_put(val, len, &tv, sizeof(tv));
}

static void flag_set(struct usock *sk, uint16_t f, int on)
{
    if (on)
        sk->flags |= f;
    else
        sk->flags &= (uint16_t)~f;
}

static int sol_socket_set(struct usock *sk, int name, const void *val, socklen_t len)
{
    int v;
    if (name == SO_RCVTIMEO)
        return timeo_set(&sk->rcvtimeo_ns, val, len);
    if (name == SO_SNDTIMEO)
        return timeo_set(&sk->sndtimeo_ns, val, len);
    if (name == SO_LINGER) {
        struct linger lg;
        if (!val || len < (socklen_t)sizeof(lg)) {
            errno = EINVAL;
            return -1;
        }
        memcpy(&lg, val, sizeof(lg));
        flag_set(sk, SKF_LINGER, lg.l_onoff != 0);
        sk->linger_s = lg.l_linger < 0 ? 0 : lg.l_linger;
        return sk->type == SOCK_STREAM ? sock_tcp_opt(sk, UST_TCP_OPT_LINGER0, lg.l_onoff && !lg.l_linger) : 0;
    }
    if (opt_int(val, len, &v) < 0)
        return -1;
    switch (name) {
    case SO_REUSEADDR: flag_set(sk, SKF_REUSEADDR, v != 0); return 0;
    case SO_REUSEPORT: flag_set(sk, SKF_REUSEPORT, v != 0); return 0;
    case SO_KEEPALIVE: return sk->type == SOCK_STREAM ? sock_tcp_opt(sk, UST_TCP_OPT_KEEPALIVE, v != 0) : 0;
    case SO_SNDBUF:
    case SO_RCVBUF:
        if (v < 0)
            v = 0;
        if (sk->type == SOCK_DGRAM) {
            if (name == SO_RCVBUF) {   /* the UDP queue counts datagrams */
                sk->udp_rcvbuf = v;
                sk->udp->rxq_max = v / 2048 > 0 ? (uint32_t)(v / 2048) : 1;
            }
            return 0;
        }
        return sock_tcp_opt(sk, name == SO_SNDBUF ? UST_TCP_OPT_SNDBUF : UST_TCP_OPT_RCVBUF, v);
    }
    errno = ENOPROTOOPT;
    return -1;
}

static int cc_is_newreno(const char *name, socklen_t len, int *newreno)
{
    char buf[CC_NAME_MAX];
    size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
    memcpy(buf, name, n);
    buf[n] = 0;
    if (strcmp(buf, "cubic") == 0)
        *newreno = 0;
    else if (strcmp(buf, "reno") == 0 || strcmp(buf, "newreno") == 0)
        *newreno = 1;
    else
        return -1;
    return 0;
}

/* Linux's bounds for the keepalive knobs (tcp.h MAX_TCP_KEEP*). */
static int tcp_keep_valid(int name, int v)
{
    if (name == TCP_KEEPCNT)
        return v >= 1 && v <= 127;
    return v >= 1 && v <= 32767;
}

static int ipproto_tcp_set(struct usock *sk, int name, const void *val, socklen_t len)
{
    int v;
    if (name == TCP_CONGESTION) {
        int nr;
        if (!val || cc_is_newreno(val, len, &nr) < 0) {
            errno = ENOENT;
            return -1;
        }
        return sock_tcp_opt(sk, UST_TCP_OPT_CC_NEWRENO, nr);
    }
    if (opt_int(val, len, &v) < 0)
        return -1;
    switch (name) {
    case TCP_NODELAY: return sock_tcp_opt(sk, UST_TCP_OPT_NODELAY, v != 0);
    case TCP_KEEPIDLE:
    case TCP_KEEPINTVL:
    case TCP_KEEPCNT:
        if (!tcp_keep_valid(name, v)) {
            errno = EINVAL;
            return -1;
        }
        return sock_tcp_opt(sk, name == TCP_KEEPIDLE    ? UST_TCP_OPT_KEEPIDLE
                                : name == TCP_KEEPINTVL ? UST_TCP_OPT_KEEPINTVL
                                                        : UST_TCP_OPT_KEEPCNT, v);
    case TCP_MAXSEG:
        if (v && (v < 88 || v > 65495)) {   /* Linux: TCP_MIN_MSS .. MAX_TCP_WINDOW */
            errno = EINVAL;
            return -1;
        }
        return sock_tcp_opt(sk, UST_TCP_OPT_MAXSEG, v);
    case TCP_INFO:
        errno = EINVAL;
        return -1;
    }
    errno = ENOPROTOOPT;
    return -1;
}

/* IP_BIND_ADDRESS_NO_PORT (Linux 4.2): bind() keeps the address only and
 * connect() picks a port free for the whole 4-tuple, so a client holding
 * many connections on several source addresses is not limited to one
 * ephemeral range per host. */
static int ipproto_ip_set(struct usock *sk, int name, const void *val, socklen_t len)
{
    int v;
    if (name != IP_BIND_ADDRESS_NO_PORT) {
        errno = ENOPROTOOPT;
        return -1;
    }
    if (opt_int(val, len, &v) < 0)
        return -1;
    flag_set(sk, SKF_NOPORT, v != 0);
    return 0;
}

int ust_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_SETSOCKOPT, .fd = fd, .level = level, .name = name, .cval = val, .vlen = len});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (level == SOL_SOCKET)
        return sol_socket_set(sk, name, val, len);
    if (level == IPPROTO_IP)
        return ipproto_ip_set(sk, name, val, len);
    if (level == IPPROTO_TCP && sk->type == SOCK_STREAM)
        return ipproto_tcp_set(sk, name, val, len);
    errno = ENOPROTOOPT;
    return -1;
}

static int so_error_get(struct usock *sk)
{
    if (sk->type == SOCK_DGRAM)
        return ust_udp_error(sk->udp);
    return usock_take_error(sk);
}

static int sol_socket_get(struct usock *sk, int name, void *val, socklen_t *len)
{
    int v = 0;
    switch (name) {
    case SO_RCVTIMEO: return timeo_get(sk->rcvtimeo_ns, val, len);
    case SO_SNDTIMEO: return timeo_get(sk->sndtimeo_ns, val, len);
    case SO_LINGER: {
        struct linger lg = {.l_onoff = !!(sk->flags & SKF_LINGER), .l_linger = sk->linger_s};
        return opt_put(val, len, &lg, sizeof(lg));
    }
    case SO_REUSEADDR: v = !!(sk->flags & SKF_REUSEADDR); break;
    case SO_REUSEPORT: v = !!(sk->flags & SKF_REUSEPORT); break;
    case SO_ERROR: v = so_error_get(sk); break;
    case SO_TYPE: v = sk->type; break;
    case SO_DOMAIN: v = AF_INET; break;
    case SO_PROTOCOL: v = sk->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP; break;
    case SO_ACCEPTCONN: v = sk->state == SS_LISTEN; break;
    case SO_KEEPALIVE:
        if (sk->type == SOCK_STREAM && sock_tcp_get(sk, UST_TCP_OPT_KEEPALIVE, 0, &v) < 0)
            return -1;
        break;
    case SO_SNDBUF:
    case SO_RCVBUF:
        if (sk->type == SOCK_DGRAM)
            v = name == SO_RCVBUF ? (sk->udp_rcvbuf ? sk->udp_rcvbuf : (int)sk->udp->rxq_max * 2048) : 65536;
        else if (sock_tcp_get(sk, name == SO_SNDBUF ? UST_TCP_OPT_SNDBUF : UST_TCP_OPT_RCVBUF, 0, &v) < 0)
            return -1;
        break;
    default:
        errno = ENOPROTOOPT;
        return -1;
    }
    return opt_put_int(val, len, v);
}

static void tcp_info_fill(const struct usock *sk, struct tcp_info *ti)
{
    memset(ti, 0, sizeof(*ti));
    if (!sk->tcp) {
        ti->tcpi_state = TCP_CLOSE;
        return;
    }
    struct tcp_sock_info i;
    tcp_sock_info(sk->tcp, &i);
    ti->tcpi_state = i.state;
    ti->tcpi_ca_state = i.ca_state;
    ti->tcpi_retransmits = i.retransmits;
    ti->tcpi_probes = i.probes;
    ti->tcpi_backoff = i.backoff;
    ti->tcpi_options = i.options;
    ti->tcpi_snd_wscale = i.snd_wscale & 15;
    ti->tcpi_rcv_wscale = i.rcv_wscale & 15;
    ti->tcpi_rto = i.rto_us;
    ti->tcpi_ato = i.ato_us;
    ti->tcpi_snd_mss = i.snd_mss;
    ti->tcpi_rcv_mss = i.rcv_mss;
    ti->tcpi_unacked = i.unacked;
    ti->tcpi_lost = i.lost;
    ti->tcpi_retrans = i.retrans;
    ti->tcpi_last_data_sent = i.last_data_sent_ms;
    ti->tcpi_pmtu = i.pmtu;
    ti->tcpi_rtt = i.rtt_us;
    ti->tcpi_rttvar = i.rttvar_us;
    ti->tcpi_snd_ssthresh = i.snd_ssthresh;
    ti->tcpi_snd_cwnd = i.snd_cwnd;
    ti->tcpi_advmss = i.advmss;
    ti->tcpi_rcv_space = i.rcv_space;
    ti->tcpi_total_retrans = i.total_retrans;
}

static int ipproto_tcp_get(struct usock *sk, int name, void *val, socklen_t *len)
{
    int v = 0;
    switch (name) {
    case TCP_INFO: {
        struct tcp_info ti;
        tcp_info_fill(sk, &ti);
        return opt_put(val, len, &ti, sizeof(ti));
    }
    case TCP_CONGESTION: {
        char name_buf[CC_NAME_MAX] = {0};
        int nr = 0;
        if (sk->tcp)
            strncpy(name_buf, tcp_sock_cc_name(sk->tcp), sizeof(name_buf) - 1);
        else if (sock_tcp_get(sk, UST_TCP_OPT_CC_NEWRENO, 0, &nr) == 0)
            strcpy(name_buf, nr ? "newreno" : "cubic");
        return opt_put(val, len, name_buf, sizeof(name_buf));
    }
    case TCP_NODELAY: sock_tcp_get(sk, UST_TCP_OPT_NODELAY, 0, &v); break;
    case TCP_KEEPIDLE: sock_tcp_get(sk, UST_TCP_OPT_KEEPIDLE, 7200, &v); break;
    case TCP_KEEPINTVL: sock_tcp_get(sk, UST_TCP_OPT_KEEPINTVL, 75, &v); break;
    case TCP_KEEPCNT: sock_tcp_get(sk, UST_TCP_OPT_KEEPCNT, 9, &v); break;
    case TCP_MAXSEG: sock_tcp_get(sk, UST_TCP_OPT_MAXSEG, 536, &v); break;
    default:
        errno = ENOPROTOOPT;
        return -1;
    }
    return opt_put_int(val, len, v);
}

int ust_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_GETSOCKOPT, .fd = fd, .level = level, .name = name, .val = val, .vlenp = len});
    struct usock *sk = usock_lookup(fd);
    if (!sk)
        return -1;
    if (!len) {
        errno = EFAULT;
        return -1;
    }
    if (level == SOL_SOCKET)
        return sol_socket_get(sk, name, val, len);
    if (level == IPPROTO_IP && name == IP_BIND_ADDRESS_NO_PORT)
        return opt_put_int(val, len, !!(sk->flags & SKF_NOPORT));
    if (level == IPPROTO_TCP && sk->type == SOCK_STREAM)
        return ipproto_tcp_get(sk, name, val, len);
    errno = ENOPROTOOPT;
    return -1;
}

/* ---- fcntl, ioctl ---- */

static int fl_get(const struct sobj *o)
{
    int nb = o->kind == SOBJ_SOCK && (((const struct usock *)o)->flags & SKF_NONBLOCK);
    return O_RDWR | (nb ? O_NONBLOCK : 0);
}

static void nonblock_set(struct sobj *o, int on)
{
    if (o->kind == SOBJ_SOCK)
        flag_set((struct usock *)o, SKF_NONBLOCK, on);
}

int ust_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    long arg = (cmd == F_SETFL || cmd == F_SETFD) ? va_arg(ap, long) : 0;
    va_end(ap);
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_FCNTL, .fd = fd, .flags = cmd, .arg = arg});
    struct sobj *o = sobj_lookup(fd);
    if (!o)
        return -1;
    switch (cmd) {
    case F_GETFL: return fl_get(o);
    case F_SETFL: nonblock_set(o, (arg & O_NONBLOCK) != 0); return 0;
    case F_GETFD: return o->cloexec ? FD_CLOEXEC : 0;
    case F_SETFD: o->cloexec = (arg & FD_CLOEXEC) != 0; return 0;
    }
    errno = EINVAL;
    return -1;
}

static int sock_readable_bytes(struct usock *sk)
{
    if (sk->type == SOCK_DGRAM) {
        const struct pkt *p = sk->udp->rxq.head;
        return p ? p->len - 8 : 0;
    }
    size_t n = sk->tcp && !(tcp_sock_poll(sk->tcp) & TSP_LISTEN) ? ust_tcp_readable(sk->tcp) : 0;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int ust_ioctl(int fd, unsigned long req, void *arg)
{
    if (fwd_is_foreign(fd))
        return (int)fwd_call(&(struct fwd_call){.op = FWD_IOCTL, .fd = fd, .req = req, .val = arg});
    struct sobj *o = sobj_lookup(fd);
    if (!o)
        return -1;
    if (!arg) {
        errno = EFAULT;
        return -1;
    }
    int v;
    if (req == FIONBIO) {
        memcpy(&v, arg, sizeof(v));
        nonblock_set(o, v != 0);
        return 0;
    }
    if (req == FIONREAD && o->kind == SOBJ_SOCK) {
        v = sock_readable_bytes((struct usock *)o);
        memcpy(arg, &v, sizeof(v));
        return 0;
    }
    errno = o->kind == SOBJ_SOCK ? EINVAL : ENOTTY;
    return -1;
}
