/* Interface lookups by name, shared by the backends that sit on a kernel
 * interface (afpacket, tap). */
#include "dev/netif.h"

#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <sys/ioctl.h>

/* One ioctl on a zeroed ifreq naming ifname; a name that does not fit is
 * refused rather than cut short, which could name another interface. */
static int netif_ioctl(int fd, const char *ifname, unsigned long req, struct ifreq *ifr)
{
    size_t n = strlen(ifname);
    memset(ifr, 0, sizeof(*ifr));
    if (n >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(ifr->ifr_name, ifname, n);
    return ioctl(fd, req, ifr) < 0 ? -1 : 0;
}

int netif_get_index(int fd, const char *ifname)
{
    struct ifreq ifr;
    if (netif_ioctl(fd, ifname, SIOCGIFINDEX, &ifr))
        return -1;
    return ifr.ifr_ifindex;
}

int netif_get_mac(int fd, const char *ifname, uint8_t mac[NETIF_MAC_LEN])
{
    struct ifreq ifr;
    if (netif_ioctl(fd, ifname, SIOCGIFHWADDR, &ifr))
        return -1;
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
        errno = EPFNOSUPPORT;
        return -1;
    }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, NETIF_MAC_LEN);
    return 0;
}

int netif_get_mtu(int fd, const char *ifname)
{
    struct ifreq ifr;
    if (netif_ioctl(fd, ifname, SIOCGIFMTU, &ifr))
        return -1;
    if (ifr.ifr_mtu <= 0) {
        errno = EINVAL;
        return -1;
    }
    return ifr.ifr_mtu;
}

int netif_is_up(int fd, const char *ifname)
{
    struct ifreq ifr;
    if (netif_ioctl(fd, ifname, SIOCGIFFLAGS, &ifr))
        return -1;
    return (ifr.ifr_flags & IFF_UP) != 0;
}

/* Read-modify-write of the flags: the other flags stay as they are. */
int netif_set_up(int fd, const char *ifname)
{
    struct ifreq ifr;
    if (netif_ioctl(fd, ifname, SIOCGIFFLAGS, &ifr))
        return -1;
    ifr.ifr_flags |= IFF_UP;
    return ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ? -1 : 0;
}
