#include "net/sockaddr.h"

#include <errno.h>
#include <netinet/in.h>

int sockaddr_in_parse(const struct sockaddr *sa, socklen_t len, uint32_t *addr, uint16_t *port)
{
    if (!sa || len < (socklen_t)sizeof(struct sockaddr_in)) {
        errno = EINVAL;
        return -1;
    }
    if (sa->sa_family != AF_INET) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    *addr = ntohl(in->sin_addr.s_addr);
    *port = ntohs(in->sin_port);
    return 0;
}
