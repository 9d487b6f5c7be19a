/* Socket addresses of the public API to and from the stack's host-order
 * IPv4 values. AF_INET only for now; other families give EAFNOSUPPORT. */
#ifndef UST_NET_SOCKADDR_H
#define UST_NET_SOCKADDR_H

#include <stdint.h>
#include <sys/socket.h>

/* 0, or -1 with errno EINVAL (NULL or too short) / EAFNOSUPPORT. */
int sockaddr_in_parse(const struct sockaddr *sa, socklen_t len, uint32_t *addr, uint16_t *port);

#endif
