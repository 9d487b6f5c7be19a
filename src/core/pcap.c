#include "core/pcap.h"

#include <string.h>
#include <time.h>

#define PCAP_MAGIC_NS 0xa1b23c4d  /* time stamps in nanoseconds */
#define PCAP_SNAPLEN 65535

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }  /* file is host-endian */
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

int pcap_open(struct pcap_writer *w, const char *path, uint32_t linktype, uint64_t now_ns)
{
    memset(w, 0, sizeof(*w));
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint8_t hdr[24];
    put32(hdr, PCAP_MAGIC_NS);
    put16(hdr + 4, 2);
    put16(hdr + 6, 4);
    put32(hdr + 8, 0);
    put32(hdr + 12, 0);
    put32(hdr + 16, PCAP_SNAPLEN);
    put32(hdr + 20, linktype);
    if (fwrite(hdr, sizeof(hdr), 1, f) != 1) {
        fclose(f);
        return -1;
    }
    /* The stack's clock need not be wall time (tests run a virtual clock):
     * remember the difference once, here, outside the packet path. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w->clock_offset = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - (int64_t)now_ns;
    w->f = f;
    return 0;
}

int pcap_write(struct pcap_writer *w, const void *frame, uint32_t len, uint64_t now_ns)
{
    if (!w->f)
        return 0;
    uint64_t t = (uint64_t)((int64_t)now_ns + w->clock_offset);
    uint32_t caplen = len > PCAP_SNAPLEN ? PCAP_SNAPLEN : len;
    uint8_t rec[16];
    put32(rec, (uint32_t)(t / 1000000000ULL));
    put32(rec + 4, (uint32_t)(t % 1000000000ULL));
    put32(rec + 8, caplen);
    put32(rec + 12, len);
    if (fwrite(rec, sizeof(rec), 1, w->f) != 1 || fwrite(frame, caplen, 1, w->f) != 1)
        return -1;
    return 0;
}

void pcap_close(struct pcap_writer *w)
{
    if (w->f)
        fclose(w->f);
    w->f = NULL;
}
