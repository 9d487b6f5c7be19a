/* ust-stat: the counters (like nstat) and TCP connections (like ss -tan) of
 * a running ustack program, read from the shared memory its stacks export
 * (src/api/statexport.h) without stopping them. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/statexport.h"
#include "core/counters.h"
#include "tcp/tcp.h"

#define REQUEST_TIMEOUT_MS 3000
#define MAX_OBJECTS 64

enum { SHOW_COUNTERS = 1, SHOW_CONNS = 2 };

/* Names and offsets from the same X-macro list the stack's struct is made of. */
#define CTR_NAME(n) #n,
#define CTR_OFF(n) offsetof(struct ust_counters, n),
static const char *const ctr_names[] = {UST_COUNTERS(CTR_NAME)};
static const size_t ctr_offsets[] = {UST_COUNTERS(CTR_OFF)};
#define NCTR (sizeof(ctr_names) / sizeof(ctr_names[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ust-stat [-a] [-c|-t] PID\n"
            "Counters and TCP connections of the running ustack program PID.\n"
            "  -a, --all          counters: print zero values too\n"
            "  -c, --counters     counters only (name value, like nstat)\n"
            "  -t, --tcp          connections only (like ss -tan)\n"
            "  -h, --help         this text\n"
            "Reads /dev/shm/ustack.PID (and ustack.PID.N for further stacks or workers).\n"
            "The stack answers from its poll loop; at most %u connections are listed.\n",
            STATX_MAX_CONNS);
}

static const char *ss_state_name(unsigned st)
{
    static const char *const names[] = {
        [TCP_CLOSED] = "UNCONN",         [TCP_LISTEN] = "LISTEN",         [TCP_SYN_SENT] = "SYN-SENT",
        [TCP_SYN_RECEIVED] = "SYN-RECV", [TCP_ESTABLISHED] = "ESTAB",     [TCP_FIN_WAIT_1] = "FIN-WAIT-1",
        [TCP_FIN_WAIT_2] = "FIN-WAIT-2", [TCP_CLOSE_WAIT] = "CLOSE-WAIT", [TCP_CLOSING] = "CLOSING",
        [TCP_LAST_ACK] = "LAST-ACK",     [TCP_TIME_WAIT] = "TIME-WAIT",
    };
    return st < sizeof(names) / sizeof(names[0]) && names[st] ? names[st] : "UNKNOWN";
}

static void format_endpoint(char *buf, size_t len, const uint8_t addr[16], uint16_t port, int any_port)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t zero[16];
    char a[INET6_ADDRSTRLEN];
    int v4 = memcmp(addr, v4mapped, 12) == 0 || memcmp(addr, zero, 16) == 0;
    inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr + 12 : addr, a, sizeof(a));
    char p[8];
    if (any_port)
        snprintf(p, sizeof(p), "*");
    else
        snprintf(p, sizeof(p), "%u", port);
    snprintf(buf, len, v4 ? "%s:%s" : "[%s]:%s", a, p);
}

static void print_counters(const struct ust_counters *c, int all)
{
    const unsigned char *base = (const unsigned char *)c;
    for (size_t i = 0; i < NCTR; i++) {
        uint64_t v;
        memcpy(&v, base + ctr_offsets[i], sizeof(v));
        if (v || all)
            printf("%-32s %llu\n", ctr_names[i], (unsigned long long)v);
    }
}

static void print_conns(const struct statx_conn *c, int n, uint32_t total)
{
    printf("%-11s %-7s %-7s %-28s %s\n", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port");
    for (int i = 0; i < n; i++) {
        char l[64], r[64];
        int listen = c[i].state == TCP_LISTEN;
        format_endpoint(l, sizeof(l), c[i].laddr, c[i].lport, 0);
        format_endpoint(r, sizeof(r), c[i].raddr, c[i].rport, listen);
        printf("%-11s %-7u %-7u %-28s %s\n", ss_state_name(c[i].state), c[i].recvq, c[i].sendq, l, r);
    }
    if ((uint32_t)n < total)
        printf("# truncated: %d of %u connections shown\n", n, total);
}

static int show_one(const char *name, int what, int all, struct statx_conn *buf)
{
    char err[256];
    struct statx_shm *m = statx_attach(name, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "ust-stat: %s\n", err);
        return -1;
    }
    if (statx_request(m, REQUEST_TIMEOUT_MS) < 0)
        fprintf(stderr, "ust-stat: %s: no fresh snapshot (stack gone or not polling for %u ms); showing the last one\n",
                name, REQUEST_TIMEOUT_MS);
    int rc = 0;
    if (what & SHOW_COUNTERS) {
        struct ust_counters c;
        if (statx_read_counters(m, &c, NULL) < 0) {
            fprintf(stderr, "ust-stat: %s: counters kept changing\n", name);
            rc = -1;
        } else {
            print_counters(&c, all);
        }
    }
    if (what & SHOW_CONNS) {
        uint32_t total = 0;
        int n = statx_read_conns(m, buf, STATX_MAX_CONNS, &total);
        if (n < 0) {
            fprintf(stderr, "ust-stat: %s: connection list kept changing\n", name);
            rc = -1;
        } else {
            if (what & SHOW_COUNTERS)
                printf("\n");
            print_conns(buf, n, total);
        }
    }
    statx_detach(m);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    /* "ustack.P" sorts before "ustack.P.N"; N by number, not as text */
    size_t la = strlen(a), lb = strlen(b);
    return la != lb ? (la < lb ? -1 : 1) : strcmp(a, b);
}

/* ustack.PID, then ustack.PID.N: one object per stack of the process. */
static int find_objects(long pid, char names[][STATX_NAME_LEN], int max)
{
    char base[32];
    int blen = snprintf(base, sizeof(base), "ustack.%ld", pid);
    DIR *d = opendir("/dev/shm");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        const char *s = de->d_name;
        if (strncmp(s, base, (size_t)blen) != 0)
            continue;
        if (s[blen] != '\0' && (s[blen] != '.' || strspn(s + blen + 1, "0123456789") != strlen(s + blen + 1) ||
                                !s[blen + 1]))
            continue;
        size_t len = strlen(s);
        if (len + 2 > STATX_NAME_LEN)
            continue;
        names[n][0] = '/';
        memcpy(names[n++] + 1, s, len + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, STATX_NAME_LEN, name_cmp);
    return n;
}

static int parse_args(int argc, char **argv, int *what, int *all, long *pid)
{
    static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                         {"counters", no_argument, NULL, 'c'},
                                         {"tcp", no_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    *what = 0;
    while ((c = getopt_long(argc, argv, "acth", opts, NULL)) != -1) {
        switch (c) {
        case 'a': *all = 1; break;
        case 'c': *what |= SHOW_COUNTERS; break;
        case 't': *what |= SHOW_CONNS; break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (!*what)
        *what = SHOW_COUNTERS | SHOW_CONNS;
    if (optind != argc - 1)
        return -1;
    char *end;
    *pid = strtol(argv[optind], &end, 10);
    return (*end || *pid <= 0) ? -1 : 0;
}

int main(int argc, char **argv)
{
    int what, all = 0;
    long pid;
    if (parse_args(argc, argv, &what, &all, &pid) < 0) {
        usage(stderr);
        return 2;
    }
    static char names[MAX_OBJECTS][STATX_NAME_LEN];
    int n = find_objects(pid, names, MAX_OBJECTS);
    if (!n) {
        fprintf(stderr, "ust-stat: no ustack statistics for pid %ld in /dev/shm%s\n", pid,
                kill((pid_t)pid, 0) < 0 && errno == ESRCH ? " (no such process)" : "");
        return 1;
    }
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        fprintf(stderr, "ust-stat: pid %ld is gone: these are the stale objects it left\n", pid);
    struct statx_conn *buf = malloc(sizeof(*buf) * STATX_MAX_CONNS);
    if (!buf)
        return 1;
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (n > 1)
            printf("%s== %s ==\n", i ? "\n" : "", names[i] + 1);
        if (show_one(names[i], what, all, buf) < 0)
            rc = 1;
    }
    free(buf);
    return rc;
}
