/* ust-impair: an impairing Ethernet bridge for tests, since this kernel has
 * no tc netem. Run it in a middle network namespace between two interfaces;
 * it forwards every frame from one to the other through AF_PACKET sockets
 * and loses, duplicates, corrupts, delays, reorders and blacks out frames on
 * the way, each direction on its own (same parameters, separate random
 * streams). See usage() for the options.
 *
 * Every frame waits in a per-direction timed queue (a min-heap ordered by
 * release time, then arrival) whose earliest deadline is the poll timeout;
 * with no delay it is released on the same wake. The queue is a fixed slab
 * of --queue slots made at start: nothing is allocated per frame. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <math.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire/wire.h"

#define IMPAIR_BLACKOUT_MAX 16
#define IMPAIR_QUEUE_DEFAULT 4096
#define IMPAIR_QUEUE_MAX (1u << 20)
#define IMPAIR_DRAIN_BUDGET 256     /* frames read per wake per side: fairness */
#define IMPAIR_RX_BUF 65600         /* the largest GSO frame plus slack        */
#define IMPAIR_HOLD_DEFAULT_NS (10ULL * 1000000)
#define IMPAIR_VLAN_LEN 4

struct impair_window {
    uint64_t start_ns, len_ns;
};

struct impair_cfg {
    const char *if_name[2];
    double loss, reorder, dup, corrupt;
    uint64_t delay_ns, jitter_ns, hold_ns;
    uint32_t queue;
    struct impair_window blackout[IMPAIR_BLACKOUT_MAX];
    int n_blackout;
    uint64_t after_bytes, after_len_ns;   /* --blackout-after BYTES:MS */
    uint64_t seed;
    double duration_s;
    int stats;
};

struct impair_stats {
    uint64_t rx, tx, tx_bytes;
    uint64_t drop_loss, drop_blackout, drop_queue, drop_oversize, drop_txerr;
    uint64_t dup, reorder, corrupt, delayed, csum_partial;
};

struct impair_entry {
    uint64_t release;
    uint64_t seq;                /* arrival order: ties leave in order      */
    uint32_t slot;
    uint32_t len;
};

struct impair_dir {
    const char *name;            /* "A->B"                                  */
    int in_fd, out_fd;
    uint32_t max_frame;          /* egress MTU + Ethernet header            */
    uint64_t rng;
    uint8_t *slab;
    uint32_t slot_size;
    uint32_t *free_slots;
    uint32_t n_free;
    struct impair_entry *heap;
    uint32_t heap_len;
    int held;                    /* reorder: one frame waits for the next   */
    struct impair_entry held_e;
    uint64_t held_until;
    uint64_t seq;
    struct impair_stats st;
};

static volatile sig_atomic_t impair_stop;
/* The --blackout-after window once its byte count is reached (len 0 until
 * then), and the bytes that arrived so far, both directions. */
static struct impair_window impair_after_window;
static uint64_t impair_bytes_in;

/* ---- small helpers ---- */

static uint64_t impair_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* splitmix64: tiny, seedable, good enough to draw faults. */
static uint64_t impair_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int impair_chance(struct impair_dir *d, double p)
{
    if (p <= 0.0)
        return 0;
    return (double)(impair_rand(&d->rng) >> 11) * 0x1.0p-53 < p;
}

static uint64_t impair_below(struct impair_dir *d, uint64_t n)
{
    return n ? impair_rand(&d->rng) % n : 0;
}

static void impair_on_signal(int sig)
{
    (void)sig;
    impair_stop = 1;
}

/* ---- options ---- */

static void usage(FILE *out)
{
    fprintf(out,
        "usage: ust-impair --a IF1 --b IF2 [options]\n"
        "Forward Ethernet frames between IF1 and IF2 (AF_PACKET, run as root in\n"
        "the namespace that holds both), impairing each direction independently\n"
        "with the same parameters.\n"
        "\n"
        "  --a IF, --b IF          the two interfaces (required)\n"
        "  --loss P                drop a frame with probability P (0..1)\n"
        "  --dup P                 send a frame twice with probability P\n"
        "  --corrupt P             flip one random bit past the Ethernet header\n"
        "                          with probability P (checksums must catch it)\n"
        "  --reorder P             hold a frame back with probability P; it is sent\n"
        "                          right after the next frame of its direction\n"
        "  --reorder-hold MS       longest a held frame waits for a successor (10)\n"
        "  --delay MS              delay every frame by MS milliseconds (fractional ok)\n"
        "  --jitter MS             add a uniform -MS..+MS to the delay (frames may\n"
        "                          then overtake each other, as on a real path)\n"
        "  --queue N               frames waiting per direction (default %u); a\n"
        "                          frame that finds it full is dropped (drop_queue)\n"
        "  --blackout START:LEN    drop everything from START ms after start for LEN ms\n"
        "                          (repeatable, up to %d windows)\n"
        "  --blackout-after BYTES:MS  drop everything for MS ms once BYTES have\n"
        "                          arrived (both directions): lands mid-transfer\n"
        "                          however fast the transfer is\n"
        "  --seed N                seed of the random streams (default 1); the same\n"
        "                          seed and traffic give the same faults\n"
        "  --duration S            exit after S seconds (default: run until a signal)\n"
        "  --stats                 print per-direction counters at exit\n"
        "  --help                  this text\n"
        "\n"
        "Exits cleanly on SIGINT/SIGTERM. Prints 'ust-impair: forwarding' on stderr\n"
        "once both sockets are bound.\n"
        "\n"
        "Offloads: turn them off on every veth attached, on both ends of each pair:\n"
        "  ethtool -K X tx off rx off tso off gso off gro off\n"
        "so checksums arrive complete (a bit flip must be detectable, and a frame\n"
        "with a checksum left for hardware to fill would arrive broken) and no frame\n"
        "exceeds the MTU. A frame longer than the egress MTU + Ethernet header (a\n"
        "GSO/GRO super-frame) is dropped and counted drop_oversize, never forwarded.\n",
        IMPAIR_QUEUE_DEFAULT, IMPAIR_BLACKOUT_MAX);
}

static int parse_prob(const char *opt, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0.0 && v <= 1.0)) {
        fprintf(stderr, "ust-impair: %s wants a probability 0..1, got '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_ms(const char *opt, const char *s, uint64_t *ns)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0.0 && v <= 3600e3)) {
        fprintf(stderr, "ust-impair: %s wants milliseconds, got '%s'\n", opt, s);
        return -1;
    }
    *ns = (uint64_t)(v * 1e6);
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (end == s || *end || errno || v > max || s[0] == '-') {
        fprintf(stderr, "ust-impair: bad %s '%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* "X:Y" -> X copied into head (NUL-terminated), returns Y; NULL with a
 * message when there is no colon or X is too long. */
static const char *split_colon(const char *opt, const char *want, const char *s, char *head, size_t cap)
{
    const char *colon = strchr(s, ':');
    if (!colon || (size_t)(colon - s) >= cap) {
        fprintf(stderr, "ust-impair: %s wants %s\n", opt, want);
        return NULL;
    }
    memcpy(head, s, (size_t)(colon - s));
    head[colon - s] = '\0';
    return colon + 1;
}

static int parse_blackout(struct impair_cfg *c, const char *s)
{
    char start[64];
    const char *len = split_colon("--blackout", "START_MS:LEN_MS", s, start, sizeof(start));
    if (!len)
        return -1;
    if (c->n_blackout == IMPAIR_BLACKOUT_MAX) {
        fprintf(stderr, "ust-impair: at most %d blackouts\n", IMPAIR_BLACKOUT_MAX);
        return -1;
    }
    struct impair_window *w = &c->blackout[c->n_blackout];
    if (parse_ms("--blackout start", start, &w->start_ns) || parse_ms("--blackout length", len, &w->len_ns))
        return -1;
    c->n_blackout++;
    return 0;
}

static int parse_blackout_after(struct impair_cfg *c, const char *s)
{
    char bytes[64];
    const char *len = split_colon("--blackout-after", "BYTES:LEN_MS", s, bytes, sizeof(bytes));
    if (!len)
        return -1;
    return parse_u64("--blackout-after bytes", bytes, UINT64_MAX, &c->after_bytes) ||
                   parse_ms("--blackout-after length", len, &c->after_len_ns)
               ? -1
               : 0;
}

enum { OPT_A = 1, OPT_B, OPT_LOSS, OPT_REORDER, OPT_HOLD, OPT_DUP, OPT_DELAY, OPT_JITTER,
       OPT_QUEUE, OPT_CORRUPT, OPT_BLACKOUT, OPT_AFTER_BLACKOUT, OPT_SEED, OPT_DURATION, OPT_STATS, OPT_HELP };

static const struct option impair_options[] = {
    { "a", required_argument, NULL, OPT_A },
    { "b", required_argument, NULL, OPT_B },
    { "loss", required_argument, NULL, OPT_LOSS },
    { "reorder", required_argument, NULL, OPT_REORDER },
    { "reorder-hold", required_argument, NULL, OPT_HOLD },
    { "dup", required_argument, NULL, OPT_DUP },
    { "delay", required_argument, NULL, OPT_DELAY },
    { "jitter", required_argument, NULL, OPT_JITTER },
    { "queue", required_argument, NULL, OPT_QUEUE },
    { "corrupt", required_argument, NULL, OPT_CORRUPT },
    { "blackout", required_argument, NULL, OPT_BLACKOUT },
    { "blackout-after", required_argument, NULL, OPT_AFTER_BLACKOUT },
    { "seed", required_argument, NULL, OPT_SEED },
    { "duration", required_argument, NULL, OPT_DURATION },
    { "stats", no_argument, NULL, OPT_STATS },
    { "help", no_argument, NULL, OPT_HELP },
    { NULL, 0, NULL, 0 },
};

static int parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0.0 && v < 1e7)) {
        fprintf(stderr, "ust-impair: --duration wants seconds > 0, got '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Returns 0 to run, 1 after --help, -1 on a bad option. */
static int parse_option(struct impair_cfg *c, int opt, const char *arg)
{
    uint64_t v;
    switch (opt) {
    case OPT_A: c->if_name[0] = arg; return 0;
    case OPT_B: c->if_name[1] = arg; return 0;
    case OPT_LOSS: return parse_prob("--loss", arg, &c->loss);
    case OPT_REORDER: return parse_prob("--reorder", arg, &c->reorder);
    case OPT_DUP: return parse_prob("--dup", arg, &c->dup);
    case OPT_CORRUPT: return parse_prob("--corrupt", arg, &c->corrupt);
    case OPT_HOLD: return parse_ms("--reorder-hold", arg, &c->hold_ns);
    case OPT_DELAY: return parse_ms("--delay", arg, &c->delay_ns);
    case OPT_JITTER: return parse_ms("--jitter", arg, &c->jitter_ns);
    case OPT_BLACKOUT: return parse_blackout(c, arg);
    case OPT_AFTER_BLACKOUT: return parse_blackout_after(c, arg);
    case OPT_SEED: return parse_u64("--seed", arg, UINT64_MAX, &c->seed);
    case OPT_DURATION: return parse_duration(arg, &c->duration_s);
    case OPT_STATS: c->stats = 1; return 0;
    case OPT_HELP: usage(stdout); return 1;
    case OPT_QUEUE:
        if (parse_u64("--queue", arg, IMPAIR_QUEUE_MAX, &v) || v == 0) {
            fprintf(stderr, "ust-impair: --queue wants 1..%u\n", IMPAIR_QUEUE_MAX);
            return -1;
        }
        c->queue = (uint32_t)v;
        return 0;
    default:
        usage(stderr);
        return -1;
    }
}

static int parse_args(struct impair_cfg *c, int argc, char **argv)
{
    int opt;
    while ((opt = getopt_long(argc, argv, "", impair_options, NULL)) != -1) {
        int rc = parse_option(c, opt, optarg);
        if (rc)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "ust-impair: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!c->if_name[0] || !c->if_name[1]) {
        fprintf(stderr, "ust-impair: --a and --b are required (see --help)\n");
        return -1;
    }
    if (strcmp(c->if_name[0], c->if_name[1]) == 0) {
        fprintf(stderr, "ust-impair: --a and --b must differ\n");
        return -1;
    }
    return 0;
}

/* ---- sockets ---- */

static int sock_set_int(int fd, int level, int name, int val, const char *what)
{
    if (setsockopt(fd, level, name, &val, sizeof(val)) == 0)
        return 0;
    fprintf(stderr, "ust-impair: setsockopt %s: %s\n", what, strerror(errno));
    return -1;
}

static int sock_mtu(int fd, const char *ifname, uint32_t *mtu)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (ioctl(fd, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= 0) {
        fprintf(stderr, "ust-impair: SIOCGIFMTU %s: %s\n", ifname, strerror(errno));
        return -1;
    }
    *mtu = (uint32_t)ifr.ifr_mtu;
    return 0;
}

static int sock_options(int fd, int ifindex)
{
    /* Without this our own transmissions would come back in and loop. */
    if (sock_set_int(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING") ||
        sock_set_int(fd, SOL_PACKET, PACKET_AUXDATA, 1, "PACKET_AUXDATA"))
        return -1;
    /* A bridge must take frames for any MAC, not just the interface's. */
    struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC };
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0) {
        fprintf(stderr, "ust-impair: promiscuous mode: %s\n", strerror(errno));
        return -1;
    }
    int buf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    return 0;
}

/* A packet socket bound to one interface. Opened with protocol 0 so it
 * hears nothing until bind() names the interface and ETH_P_ALL. */
static int sock_open(const char *ifname, uint32_t *mtu)
{
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex) {
        fprintf(stderr, "ust-impair: no interface '%s': %s\n", ifname, strerror(errno));
        return -1;
    }
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "ust-impair: AF_PACKET socket: %s (root needed)\n", strerror(errno));
        return -1;
    }
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)ifindex };
    if (sock_options(fd, (int)ifindex) || sock_mtu(fd, ifname, mtu)) {
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        fprintf(stderr, "ust-impair: bind %s: %s\n", ifname, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the timed queue: a binary min-heap on (release, seq) ---- */

static int entry_before(const struct impair_entry *x, const struct impair_entry *y)
{
    return x->release < y->release || (x->release == y->release && x->seq < y->seq);
}

static void heap_swap(struct impair_entry *h, uint32_t i, uint32_t j)
{
    struct impair_entry t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_push(struct impair_dir *d, struct impair_entry e)
{
    struct impair_entry *h = d->heap;
    uint32_t i = d->heap_len++;
    h[i] = e;
    while (i > 0 && entry_before(&h[i], &h[(i - 1) / 2])) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct impair_entry heap_pop(struct impair_dir *d)
{
    struct impair_entry *h = d->heap;
    struct impair_entry top = h[0];
    h[0] = h[--d->heap_len];
    for (uint32_t i = 0;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->heap_len && entry_before(&h[l], &h[m]))
            m = l;
        if (r < d->heap_len && entry_before(&h[r], &h[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(h, i, m);
        i = m;
    }
    return top;
}

static int dir_init(struct impair_dir *d, const struct impair_cfg *c, uint32_t max_frame, int idx)
{
    d->max_frame = max_frame;
    d->slot_size = max_frame + IMPAIR_VLAN_LEN;
    d->rng = c->seed ^ (idx ? 0x5bd1e9955bd1e995ULL : 0);
    d->slab = malloc((size_t)c->queue * d->slot_size);
    d->free_slots = malloc((size_t)c->queue * sizeof(uint32_t));
    d->heap = malloc((size_t)c->queue * sizeof(struct impair_entry));
    if (!d->slab || !d->free_slots || !d->heap) {
        fprintf(stderr, "ust-impair: out of memory for a queue of %u\n", c->queue);
        return -1;
    }
    for (uint32_t i = 0; i < c->queue; i++)
        d->free_slots[i] = c->queue - 1 - i;
    d->n_free = c->queue;
    return 0;
}

static void dir_fini(struct impair_dir *d)
{
    free(d->slab);
    free(d->free_slots);
    free(d->heap);
}

/* ---- impairing one frame ---- */

static int in_window(const struct impair_window *w, uint64_t since_start)
{
    return since_start >= w->start_ns && since_start - w->start_ns < w->len_ns;
}

static int in_blackout(const struct impair_cfg *c, uint64_t since_start)
{
    if (in_window(&impair_after_window, since_start))
        return 1;
    for (int i = 0; i < c->n_blackout; i++)
        if (in_window(&c->blackout[i], since_start))
            return 1;
    return 0;
}

/* now + delay, moved by a uniform -jitter..+jitter, never before now. */
static uint64_t release_time(struct impair_dir *d, const struct impair_cfg *c, uint64_t now)
{
    uint64_t t = now + c->delay_ns;
    if (!c->jitter_ns)
        return t;
    uint64_t j = impair_below(d, 2 * c->jitter_ns + 1);
    if (j >= c->jitter_ns)
        return t + (j - c->jitter_ns);
    uint64_t back = c->jitter_ns - j;
    return back <= c->delay_ns ? t - back : now;
}

/* The reorder stage: a held frame leaves right after its successor. */
static void dir_schedule(struct impair_dir *d, const struct impair_cfg *c,
                         struct impair_entry e, uint64_t now)
{
    if (d->held) {
        heap_push(d, e);
        d->held_e.release = d->held_e.release > e.release ? d->held_e.release : e.release;
        d->held_e.seq = d->seq++;
        heap_push(d, d->held_e);
        d->held = 0;
    } else if (impair_chance(d, c->reorder)) {
        d->held = 1;
        d->held_e = e;
        d->held_until = (e.release > now ? e.release : now) + c->hold_ns;
        d->st.reorder++;
    } else {
        heap_push(d, e);
    }
}

static void dir_enqueue_copy(struct impair_dir *d, const struct impair_cfg *c,
                             const uint8_t *frame, uint32_t len, uint64_t now)
{
    if (!d->n_free) {
        d->st.drop_queue++;
        return;
    }
    uint32_t slot = d->free_slots[--d->n_free];
    uint8_t *buf = d->slab + (size_t)slot * d->slot_size;
    memcpy(buf, frame, len);
    if (len > ETH_HLEN && impair_chance(d, c->corrupt)) {
        buf[ETH_HLEN + impair_below(d, len - ETH_HLEN)] ^= (uint8_t)(1u << impair_below(d, 8));
        d->st.corrupt++;
    }
    struct impair_entry e = { .release = release_time(d, c, now), .seq = d->seq++,
                              .slot = slot, .len = len };
    if (e.release > now)
        d->st.delayed++;
    dir_schedule(d, c, e, now);
}

static uint32_t frame_limit(const struct impair_dir *d, const uint8_t *frame, uint32_t len)
{
    /* An 802.1Q tag rides on top of the MTU. */
    if (len >= ETH_HLEN && rd16(frame + 12) == ETH_P_8021Q)
        return d->max_frame + IMPAIR_VLAN_LEN;
    return d->max_frame;
}

static void dir_impair(struct impair_dir *d, const struct impair_cfg *c, const uint8_t *frame,
                       uint32_t len, uint64_t now, uint64_t since_start)
{
    d->st.rx++;
    impair_bytes_in += len;
    if (c->after_len_ns && !impair_after_window.len_ns && impair_bytes_in >= c->after_bytes)
        impair_after_window = (struct impair_window){since_start, c->after_len_ns};
    if (len > frame_limit(d, frame, len)) {
        d->st.drop_oversize++;
        return;
    }
    if (in_blackout(c, since_start)) {
        d->st.drop_blackout++;
        return;
    }
    if (impair_chance(d, c->loss)) {
        d->st.drop_loss++;
        return;
    }
    int copies = 1;
    if (impair_chance(d, c->dup)) {
        copies = 2;
        d->st.dup++;
    }
    for (int i = 0; i < copies; i++)
        dir_enqueue_copy(d, c, frame, len, now);
}

/* ---- moving frames ---- */

static int frame_csum_partial(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level != SOL_PACKET || cm->cmsg_type != PACKET_AUXDATA ||
            cm->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata)))
            continue;
        struct tpacket_auxdata aux;
        memcpy(&aux, CMSG_DATA(cm), sizeof(aux));
        return (aux.tp_status & TP_STATUS_CSUMNOTREADY) != 0;
    }
    return 0;
}

/* Reads up to a budget of frames from d's input. -1 on a fatal error. */
static int dir_drain(struct impair_dir *d, const struct impair_cfg *c, uint64_t start)
{
    static uint8_t buf[IMPAIR_RX_BUF];
    union { struct cmsghdr align; char b[CMSG_SPACE(sizeof(struct tpacket_auxdata))]; } ctl;
    for (int i = 0; i < IMPAIR_DRAIN_BUDGET; i++) {
        struct sockaddr_ll from;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov,
                             .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
        ssize_t n = recvmsg(d->in_fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            fprintf(stderr, "ust-impair: %s receive: %s\n", d->name, strerror(errno));
            return -1;
        }
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue;               /* belt and braces for IGNORE_OUTGOING */
        if (frame_csum_partial(&mh))
            d->st.csum_partial++;
        uint64_t now = impair_now();
        /* MSG_TRUNC reports the real length: a super-frame is seen whole. */
        if ((size_t)n > sizeof(buf)) {
            d->st.rx++;
            d->st.drop_oversize++;
            continue;
        }
        dir_impair(d, c, buf, (uint32_t)n, now, now - start);
    }
    return 0;
}

static void dir_send(struct impair_dir *d, struct impair_entry e)
{
    const uint8_t *frame = d->slab + (size_t)e.slot * d->slot_size;
    ssize_t n = send(d->out_fd, frame, e.len, MSG_DONTWAIT);
    if (n == (ssize_t)e.len) {
        d->st.tx++;
        d->st.tx_bytes += e.len;
    } else {
        d->st.drop_txerr++;
    }
    d->free_slots[d->n_free++] = e.slot;
}

static void dir_release_due(struct impair_dir *d, uint64_t now)
{
    if (d->held && now >= d->held_until) {
        d->held_e.seq = d->seq++;
        heap_push(d, d->held_e);
        d->held = 0;
    }
    while (d->heap_len && d->heap[0].release <= now)
        dir_send(d, heap_pop(d));
}

static uint64_t dir_deadline(const struct impair_dir *d)
{
    uint64_t t = d->heap_len ? d->heap[0].release : UINT64_MAX;
    if (d->held && d->held_until < t)
        t = d->held_until;
    return t;
}

static void dir_print(const struct impair_dir *d, FILE *out)
{
    const struct impair_stats *s = &d->st;
    fprintf(out, "%s: rx %llu tx %llu tx_bytes %llu drop_loss %llu drop_blackout %llu "
            "drop_queue %llu drop_oversize %llu drop_txerr %llu dup %llu reorder %llu "
            "corrupt %llu delayed %llu csum_partial %llu queued %u\n",
            d->name, (unsigned long long)s->rx, (unsigned long long)s->tx,
            (unsigned long long)s->tx_bytes, (unsigned long long)s->drop_loss,
            (unsigned long long)s->drop_blackout, (unsigned long long)s->drop_queue,
            (unsigned long long)s->drop_oversize, (unsigned long long)s->drop_txerr,
            (unsigned long long)s->dup, (unsigned long long)s->reorder,
            (unsigned long long)s->corrupt, (unsigned long long)s->delayed,
            (unsigned long long)s->csum_partial, d->heap_len + (uint32_t)d->held);
}

/* ---- main loop ---- */

static void timeout_until(uint64_t deadline, uint64_t now, struct timespec *ts)
{
    uint64_t wait = deadline > now ? deadline - now : 0;
    ts->tv_sec = (time_t)(wait / 1000000000ULL);
    ts->tv_nsec = (long)(wait % 1000000000ULL);
}

static int impair_run(struct impair_dir dir[2], const struct impair_cfg *c,
                      const sigset_t *waitmask)
{
    uint64_t start = impair_now();
    uint64_t end = c->duration_s > 0 ? start + (uint64_t)(c->duration_s * 1e9) : UINT64_MAX;
    struct pollfd pfd[2] = { { .fd = dir[0].in_fd, .events = POLLIN },
                             { .fd = dir[1].in_fd, .events = POLLIN } };
    while (!impair_stop) {
        uint64_t now = impair_now();
        if (now >= end)
            break;
        dir_release_due(&dir[0], now);
        dir_release_due(&dir[1], now);
        uint64_t deadline = end;
        for (int i = 0; i < 2; i++)
            if (dir_deadline(&dir[i]) < deadline)
                deadline = dir_deadline(&dir[i]);
        struct timespec ts;
        timeout_until(deadline, now, &ts);
        int r = ppoll(pfd, 2, deadline == UINT64_MAX ? NULL : &ts, waitmask);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "ust-impair: poll: %s\n", strerror(errno));
            return -1;
        }
        for (int i = 0; i < 2; i++) {
            if (pfd[i].revents & (POLLERR | POLLNVAL)) {
                fprintf(stderr, "ust-impair: %s: interface error\n", dir[i].name);
                return -1;
            }
            if ((pfd[i].revents & POLLIN) && dir_drain(&dir[i], c, start))
                return -1;
        }
    }
    return 0;
}

/* Block the stop signals except while sleeping in ppoll, so a signal that
 * lands between the check and the sleep is not lost. */
static void signals_setup(sigset_t *waitmask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = impair_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, waitmask);
    sigdelset(waitmask, SIGINT);
    sigdelset(waitmask, SIGTERM);
}

static int impair_open(struct impair_dir dir[2], const struct impair_cfg *c)
{
    int fd[2];
    uint32_t mtu[2];
    static char names[2][2 * IF_NAMESIZE + 4];
    fd[0] = sock_open(c->if_name[0], &mtu[0]);
    if (fd[0] < 0)
        return -1;
    fd[1] = sock_open(c->if_name[1], &mtu[1]);
    if (fd[1] < 0) {
        close(fd[0]);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(names[i], sizeof(names[i]), "%s->%s", c->if_name[i], c->if_name[1 - i]);
        dir[i].name = names[i];
        dir[i].in_fd = fd[i];
        dir[i].out_fd = fd[1 - i];
        /* A frame must fit the interface it leaves by. */
        if (dir_init(&dir[i], c, mtu[1 - i] + ETH_HLEN, i))
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct impair_cfg cfg = { .queue = IMPAIR_QUEUE_DEFAULT, .seed = 1,
                              .hold_ns = IMPAIR_HOLD_DEFAULT_NS };
    int rc = parse_args(&cfg, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;
    sigset_t waitmask;
    signals_setup(&waitmask);
    struct impair_dir dir[2];
    memset(dir, 0, sizeof(dir));
    if (impair_open(dir, &cfg)) {
        dir_fini(&dir[0]);
        dir_fini(&dir[1]);
        return 1;
    }
    fprintf(stderr, "ust-impair: forwarding %s <-> %s\n", cfg.if_name[0], cfg.if_name[1]);
    rc = impair_run(dir, &cfg, &waitmask);
    if (cfg.stats) {
        dir_print(&dir[0], stdout);
        dir_print(&dir[1], stdout);
        fflush(stdout);
    }
    close(dir[0].in_fd);
    close(dir[1].in_fd);
    dir_fini(&dir[0]);
    dir_fini(&dir[1]);
    return rc ? 1 : 0;
}
