/* Device registry: "KIND:ARGS" -> the backend's ops table, plus the argument
 * splitter every backend uses for its "key=value,key=value" options. */
#include "dev/dev.h"
#include "dev/pdlink.h"

#include <stdio.h>
#include <string.h>

static const struct dev_ops *const dev_kinds[] = {
    &dev_memif_ops,
    &dev_tap_ops,
    &dev_afpacket_ops,
    &dev_fault_ops,
    &dev_memlink_ops,
    &dev_pdlink_ops,
    &dev_afxdp_ops,     /* src/dev/afxdp/, or afxdp_absent.c without libxdp */
    &dev_dpdk_ops,      /* src/dev/dpdk/dpdk.c, or dpdk_absent.c without libdpdk */
};

#define DEV_KIND_COUNT (sizeof(dev_kinds) / sizeof(dev_kinds[0]))
#define DEV_KIND_MAX 32      /* longest kind name accepted in a spec          */
#define DEV_ARG_MAX 256      /* longest single "key=value" item               */

static const struct dev_ops *dev_find(const char *kind, size_t len)
{
    for (size_t i = 0; i < DEV_KIND_COUNT; i++) {
        const char *k = dev_kinds[i]->kind;
        if (strlen(k) == len && memcmp(k, kind, len) == 0)
            return dev_kinds[i];
    }
    return NULL;
}

static void dev_print_kinds(FILE *out)
{
    fprintf(out, "known device kinds:");
    for (size_t i = 0; i < DEV_KIND_COUNT; i++)
        fprintf(out, " %s", dev_kinds[i]->kind);
    fprintf(out, "\n");
}

int dev_open(struct dev *d, const char *spec, struct ust_counters *ctr)
{
    memset(d, 0, sizeof(*d));
    if (!spec || !*spec) {
        fprintf(stderr, "dev: empty device spec (want KIND:ARGS)\n");
        dev_print_kinds(stderr);
        return -1;
    }
    const char *colon = strchr(spec, ':');
    size_t kind_len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *args = colon ? colon + 1 : "";
    const struct dev_ops *ops = kind_len <= DEV_KIND_MAX ? dev_find(spec, kind_len) : NULL;
    if (!ops) {
        fprintf(stderr, "dev: unknown device kind '%.*s' in '%s'\n",
                (int)(kind_len > DEV_KIND_MAX ? DEV_KIND_MAX : kind_len), spec, spec);
        dev_print_kinds(stderr);
        return -1;
    }
    d->ops = ops;
    d->ctr = ctr;
    if (ops->open(d, args) != 0) {
        /* Leave d closed so dev_close on it is a harmless no-op. */
        memset(d, 0, sizeof(*d));
        return -1;
    }
    return 0;
}

void dev_close(struct dev *d)
{
    if (!d || !d->ops)
        return;
    if (d->ops->close)
        d->ops->close(d);
    d->ops = NULL;
    d->priv = NULL;
}

/* Split one item at '=' in place and hand it to fn. */
static int dev_args_item(char *item, int (*fn)(void *, const char *, const char *), void *ctx)
{
    char *eq = strchr(item, '=');
    if (eq)
        *eq = '\0';
    return fn(ctx, item, eq ? eq + 1 : NULL);
}

int dev_args_each(const char *args, char sep,
                  int (*fn)(void *ctx, const char *key, const char *val), void *ctx)
{
    if (!args)
        return 0;
    const char *p = args;
    while (*p) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= DEV_ARG_MAX) {
            fprintf(stderr, "dev: argument too long: '%.32s...'\n", p);
            return -1;
        }
        if (len > 0) {      /* empty items ("a,,b", trailing sep) are skipped */
            char item[DEV_ARG_MAX];
            memcpy(item, p, len);
            item[len] = '\0';
            int rc = dev_args_item(item, fn, ctx);
            if (rc)
                return rc;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

int dev_poll_one_fd(struct pollfd *fds, int max, int fd)
{
    if (max < 1 || fd < 0)
        return 0;
    fds[0] = (struct pollfd){.fd = fd, .events = POLLIN};
    return 1;
}
