/* Facts about a kernel network interface, looked up by name with the
 * SIOCxIFxxx ioctls (netdevice(7)). Any socket will do as fd: AF_PACKET's
 * own, or an AF_INET datagram socket where the device fd (a tun fd) does not
 * take interface ioctls. Each returns 0 (or the value) on success and -1
 * with errno set on failure; nothing is printed: the backend names itself
 * in its own message. */
#ifndef UST_DEV_NETIF_H
#define UST_DEV_NETIF_H

#include <stdint.h>

#define NETIF_MAC_LEN 6

int netif_get_index(int fd, const char *ifname);
/* EPFNOSUPPORT: the interface is not Ethernet (ARPHRD_ETHER). */
int netif_get_mac(int fd, const char *ifname, uint8_t mac[NETIF_MAC_LEN]);
/* The MTU, > 0 (EINVAL when the kernel reports none). */
int netif_get_mtu(int fd, const char *ifname);
/* 1 up (IFF_UP), 0 down. */
int netif_is_up(int fd, const char *ifname);
int netif_set_up(int fd, const char *ifname);

#endif
