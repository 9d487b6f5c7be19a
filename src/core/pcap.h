/* pcap capture files (the classic libpcap format, nanosecond variant) that
 * tshark and tcpdump read. */
#ifndef UST_CORE_PCAP_H
#define UST_CORE_PCAP_H

#include <stdint.h>
#include <stdio.h>

#define PCAP_LINKTYPE_ETHERNET 1
#define PCAP_LINKTYPE_RAW 101     /* bare IPv4/IPv6 packets */

struct pcap_writer {
    FILE *f;
    int64_t clock_offset;         /* add to the stack's clock to get Unix time */
};

/* Create/truncate path and write the file header. now_ns is the stack's clock
 * at open, used to map its time stamps to wall-clock time. 0 or -1. */
int pcap_open(struct pcap_writer *w, const char *path, uint32_t linktype, uint64_t now_ns);
/* Append one frame; returns -1 on a write error. */
int pcap_write(struct pcap_writer *w, const void *frame, uint32_t len, uint64_t now_ns);
void pcap_close(struct pcap_writer *w);
static inline int pcap_enabled(const struct pcap_writer *w) { return w->f != NULL; }

#endif
