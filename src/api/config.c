#include "api/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "wire/eth.h"
#include "wire/ipv4.h"

/* One table drives the command line, the environment and --help, so they
 * can never disagree. */
enum opt_kind { OPT_STRING, OPT_ADDR, OPT_IP, OPT_MAC, OPT_NEIGH, OPT_U32, OPT_FLAG };

struct opt_def {
    const char *name;
    enum opt_kind kind;
    const char *arg;
    const char *help;
    size_t offset;
    uint32_t min, max;
};

#define OFF(f) offsetof(struct ust_config, f)
static const struct opt_def opt_defs[] = {
    {"dev", OPT_STRING, "KIND:ARGS",
     "device: memif:SOCKET[,role=server|client][,id=N] | tap:IFNAME |\n"
     "                           afpacket:IFNAME[,rx=v2|v3] |\n"
     "                           afxdp:IFNAME[,queue=N][,mode=native|generic][,zerocopy=yes|no] |\n"
     "                           'dpdk:EAL ARGS[;port=N]' (EAL args split on spaces) |\n"
     "                           memlink:NAME,end=a|b |\n"
     "                           fault:OPTS+INNER (loss=P,reorder=P,dup=P,corrupt=P,\n"
     "                           delay=MS,blackout=START_MS:LEN_MS,seed=N)", OFF(dev), 0, 0},
    {"ip", OPT_ADDR, "ADDR/PREFIX", "our IPv4 address (repeatable)", OFF(addrs), 0, 0},
    {"gw", OPT_IP, "ADDR", "default gateway", OFF(gw), 0, 0},
    {"mac", OPT_MAC, "MAC", "our MAC (default: the interface's, else random local)", OFF(mac), 0, 0},
    {"neigh", OPT_NEIGH, "IP=MAC", "static neighbour entry (repeatable)", OFF(neigh), 0, 0},
    {"mtu", OPT_U32, "N", "link MTU (default: the device's, else 1500)", OFF(mtu), 68, 65000},
    {"workers", OPT_U32, "N", "worker threads, one stack and device queue each (afpacket, memif, afxdp, dpdk)", OFF(workers), 1, 64},
    {"pcap", OPT_STRING, "FILE", "record every frame in and out to FILE", OFF(pcap), 0, 0},
    {"stats", OPT_FLAG, NULL, "print the counters at exit", OFF(stats), 0, 0},
    {"busy-poll", OPT_FLAG, NULL, "never sleep on the device", OFF(busy_poll), 0, 0},
    {"pkts", OPT_U32, "N", "frame buffers (2 KiB each; default 8192)", OFF(pkts), 64, 1u << 24},
    {"big-pkts", OPT_U32, "N", "64 KiB buffers for reassembly and large UDP (default 32)",
     OFF(big_pkts), 2, 65536},
    {"arp-entries", OPT_U32, "N", "neighbour cache entries (default 1024)", OFF(arp_entries), 8, 1u << 20},
    {"arp-pending", OPT_U32, "N", "packets waiting for ARP, per stack (default 256)",
     OFF(arp_pending), 1, 1u << 16},
    {"frag-sets", OPT_U32, "N", "IPv4 reassembly sets in progress (default 64)", OFF(frag_sets), 1, 1u << 16},
    {"frag-frags", OPT_U32, "N", "fragments held for reassembly (default 512)", OFF(frag_frags), 2, 1u << 20},
    {"frag-timeout", OPT_U32, "MS", "reassembly timeout (default 5000 ms)", OFF(frag_timeout_ms), 10, 120000},
    {"udp-rcvq", OPT_U32, "N", "datagrams queued per UDP socket (default 256)", OFF(udp_rcvq), 1, 1u << 20},
    {"icmp-rate", OPT_U32, "N", "ICMP errors sent per second at most (default 100)", OFF(icmp_rate), 1, 1u << 20},
    {"tcp-conns", OPT_U32, "N", "TCP connections at most (default 1048576; memory is\n"
     "                           reserved, and used only as connections appear)", OFF(tcp_conns), 16, 1u << 30},
    {"tcp-sndbuf", OPT_U32, "BYTES", "initial TCP send buffer (default 262144; grows up to\n"
     "                           --tcp-sndbuf-max)", OFF(tcp_sndbuf), 4096, 1u << 30},
    {"tcp-rcvbuf", OPT_U32, "BYTES", "initial TCP receive buffer (default 262144; grows up to\n"
     "                           --tcp-rcvbuf-max)", OFF(tcp_rcvbuf), 4096,
     1u << 30},
    {"tcp-sndbuf-max", OPT_U32, "BYTES", "send buffer autotuning ceiling (default 4194304; SO_SNDBUF\n"
     "                           fixes a socket's size)", OFF(tcp_sndbuf_max), 4096, 1u << 30},
    {"tcp-rcvbuf-max", OPT_U32, "BYTES", "receive buffer autotuning ceiling (default 4194304; SO_RCVBUF\n"
     "                           fixes a socket's size)", OFF(tcp_rcvbuf_max), 4096, 1u << 30},
    {"tcp-syn-backlog", OPT_U32, "N", "half-open connections per listener before SYN cookies (default 1024)",
     OFF(tcp_syn_backlog), 1, 1u << 20},
    {"tcp-ooo", OPT_U32, "N", "out-of-order TCP segments buffered per stack (default 2048)", OFF(tcp_ooo_max), 16,
     1u << 24},
    {"tcp-tw", OPT_U32, "N", "TIME-WAIT records (default 262144; the oldest is recycled when full)",
     OFF(tcp_tw_max), 16, 1u << 28},
    {"time-wait", OPT_U32, "SECONDS", "TIME-WAIT length (default 60, as Linux)", OFF(tcp_time_wait_s), 1, 3600},
};
#undef OFF

#define OPT_COUNT (sizeof(opt_defs) / sizeof(opt_defs[0]))

void config_defaults(struct ust_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->workers = 1;
    cfg->pkts = 8192;
    cfg->big_pkts = 32;
    cfg->arp_entries = 1024;
    cfg->arp_pending = 256;
    cfg->frag_sets = 64;
    cfg->frag_frags = 512;
    cfg->frag_timeout_ms = 5000;
    cfg->udp_rcvq = 256;
    cfg->icmp_rate = 100;
    cfg->tcp_conns = 1u << 20;
    cfg->tcp_sndbuf = 256 * 1024;
    cfg->tcp_rcvbuf = 256 * 1024;
    cfg->tcp_sndbuf_max = 4u << 20;
    cfg->tcp_rcvbuf_max = 4u << 20;
    cfg->tcp_syn_backlog = 1024;
    cfg->tcp_ooo_max = 2048;
    cfg->tcp_tw_max = 256 * 1024;
    cfg->tcp_time_wait_s = 60;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_addr(const char *s, struct cfg_addr *a)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    uint32_t prefix = 32;
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    if (ipv4_aton(buf, &a->addr) < 0)
        return -1;
    if (slash && parse_u32(slash + 1, 0, 32, &prefix) < 0)
        return -1;
    a->prefix = (uint8_t)prefix;
    return 0;
}

static int parse_neigh(const char *s, struct cfg_neigh *n)
{
    char buf[32];
    const char *eq = strchr(s, '=');
    if (!eq || (size_t)(eq - s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, (size_t)(eq - s));
    buf[eq - s] = 0;
    if (ipv4_aton(buf, &n->ip) < 0 || eth_aton(eq + 1, n->mac) < 0)
        return -1;
    return 0;
}

/* Apply one value. `list_reset` clears a repeatable list first: the command
 * line replaces what the environment gave instead of adding to it. */
static int opt_apply(struct ust_config *cfg, const struct opt_def *o, const char *val, int *list_reset)
{
    char *field = (char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_STRING:
        if (strlen(val) >= (o->offset == offsetof(struct ust_config, dev) ? CFG_DEV_LEN : sizeof(cfg->pcap)))
            return -1;
        strcpy(field, val);
        return 0;
    case OPT_ADDR:
        if (list_reset && !*list_reset) {
            cfg->naddrs = 0;
            *list_reset = 1;
        }
        if (cfg->naddrs >= CFG_MAX_ADDRS)
            return -1;
        return parse_addr(val, &cfg->addrs[cfg->naddrs++]);
    case OPT_IP:
        return ipv4_aton(val, (uint32_t *)(void *)field);
    case OPT_MAC:
        cfg->has_mac = 1;
        return eth_aton(val, cfg->mac);
    case OPT_NEIGH:
        if (list_reset && !*list_reset) {
            cfg->nneigh = 0;
            *list_reset = 1;
        }
        if (cfg->nneigh >= CFG_MAX_NEIGH)
            return -1;
        return parse_neigh(val, &cfg->neigh[cfg->nneigh++]);
    case OPT_U32:
        return parse_u32(val, o->min, o->max, (uint32_t *)(void *)field);
    case OPT_FLAG:
        *(int *)(void *)field = (val == NULL || strcmp(val, "0") != 0);
        return 0;
    }
    return -1;
}

static const struct opt_def *opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < OPT_COUNT; i++)
        if (strlen(opt_defs[i].name) == len && strncmp(opt_defs[i].name, name, len) == 0)
            return &opt_defs[i];
    return NULL;
}

/* USTACK_IP=10.0.0.2/24,10.0.0.3/24: repeatable options comma-separated. */
static int config_apply_env_one(struct ust_config *cfg, const struct opt_def *o, const char *val)
{
    if (o->kind != OPT_ADDR && o->kind != OPT_NEIGH)
        return opt_apply(cfg, o, val, NULL);
    char buf[1024];
    if (strlen(val) >= sizeof(buf))
        return -1;
    strcpy(buf, val);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (opt_apply(cfg, o, tok, NULL) < 0)
            return -1;
    return 0;
}

static int config_apply_env(struct ust_config *cfg)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        char name[64] = "USTACK_";
        size_t n = strlen(name);
        for (const char *c = opt_defs[i].name; *c && n < sizeof(name) - 1; c++)
            name[n++] = *c == '-' ? '_' : (char)(*c - 32 * (*c >= 'a' && *c <= 'z'));
        name[n] = 0;
        const char *val = getenv(name);
        if (val && *val && config_apply_env_one(cfg, &opt_defs[i], val) < 0) {
            fprintf(stderr, "ustack: bad value in %s: %s\n", name, val);
            return -1;
        }
    }
    return 0;
}

struct ust_config *ust_config_new(void)
{
    struct ust_config *cfg = malloc(sizeof(*cfg));
    if (!cfg)
        return NULL;
    config_defaults(cfg);
    if (config_apply_env(cfg) < 0) {
        free(cfg);
        return NULL;
    }
    return cfg;
}

void ust_config_free(struct ust_config *cfg) { free(cfg); }

/* Consume "--name value", "--name=value" and flags; leave everything else. */
int ust_config_parse_args(struct ust_config *cfg, int *argc, char **argv)
{
    int reset_addrs = 0, reset_neigh = 0;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        const struct opt_def *o = NULL;
        const char *val = NULL;
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            o = opt_find(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
            val = eq ? eq + 1 : NULL;
        }
        if (!o) {
            argv[out++] = argv[i];
            continue;
        }
        if (o->kind != OPT_FLAG && !val) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "ustack: --%s needs %s\n", o->name, o->arg);
                return -1;
            }
            val = argv[++i];
        }
        int *reset = o->kind == OPT_ADDR ? &reset_addrs : o->kind == OPT_NEIGH ? &reset_neigh : NULL;
        if (opt_apply(cfg, o, val, reset) < 0) {
            fprintf(stderr, "ustack: bad value for --%s: %s (expected %s)\n", o->name,
                    val ? val : "", o->arg ? o->arg : "no value");
            return -1;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

void ust_config_print_help(FILE *out)
{
    fprintf(out, "Stack options (also as USTACK_<NAME> environment variables, repeated values\n"
                 "comma-separated; the command line wins):\n");
    for (size_t i = 0; i < OPT_COUNT; i++) {
        char left[40];
        snprintf(left, sizeof(left), "--%s%s%s", opt_defs[i].name, opt_defs[i].arg ? " " : "",
                 opt_defs[i].arg ? opt_defs[i].arg : "");
        fprintf(out, "  %-24s %s\n", left, opt_defs[i].help);
    }
}
