/* The "afxdp" device kind when ustack was built without libxdp/libbpf: the
 * name is known, so the message says what is missing instead of "unknown
 * kind". The Makefile links the files of src/dev/afxdp/ in place of this file when
 * `pkg-config --exists libxdp libbpf` holds at build time. */
#include "dev/dev.h"

#include <stdio.h>

static int afxdp_absent_open(struct dev *d, const char *args)
{
    (void)d, (void)args;
    fprintf(stderr, "afxdp: this ustack was built without libxdp "
            "(install libxdp-dev and libbpf-dev, e.g. scripts/deps.sh, and rebuild)\n");
    return -1;
}

const struct dev_ops dev_afxdp_ops = {
    .kind = "afxdp",
    .open = afxdp_absent_open,
};
