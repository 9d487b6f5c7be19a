/* ustack's XDP program for the afxdp backend, built at run time as raw BPF
 * instructions (no BPF object file, no clang step at build time). */
#ifndef UST_DEV_AFXDP_PROG_H
#define UST_DEV_AFXDP_PROG_H

#include <stddef.h>

/* Steering policy of the program. */
enum afxdp_steer {
    AFXDP_STEER_ADDRS,   /* IPv4 to an address in the map, ARP asking for one */
    AFXDP_STEER_ALL,     /* every frame of the queue (interface given over)   */
};

/* Load the program. addrs_fd: BPF hash map, key = IPv4 address as it is on
 * the wire (4 bytes), any value. xsks_fd: XSKMAP indexed by receive queue.
 * Frames not steered, and frames of a queue without a socket, go on to the
 * kernel (XDP_PASS). Returns the program fd, or -1 with the verifier's log
 * (if any) in log. */
int afxdp_prog_load(enum afxdp_steer steer, int addrs_fd, int xsks_fd, char *log, size_t log_len);

#endif
