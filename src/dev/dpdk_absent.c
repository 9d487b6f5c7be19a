/* The "dpdk" device kind when ustack was built without libdpdk: the name is
 * known, so the message says what is missing instead of "unknown kind".
 * The Makefile links src/dev/dpdk/dpdk.c in place of this file when
 * `pkg-config --exists libdpdk` holds at build time. */
#include "dev/dev.h"

#include <stdio.h>

static int dpdk_absent_open(struct dev *d, const char *args)
{
    (void)d, (void)args;
    fprintf(stderr, "dpdk: this ustack was built without DPDK "
            "(install dpdk-dev so that `pkg-config --exists libdpdk` holds, and rebuild)\n");
    return -1;
}

const struct dev_ops dev_dpdk_ops = {
    .kind = "dpdk",
    .open = dpdk_absent_open,
};
