/* inbound.h: [inbound NAME] endpoints: a fixed address that relays TCP to a backend (see
 * inbound.c); their listeners are the worker's (server.c). */
#ifndef IPLOCK_PROXY_INBOUND_H
#define IPLOCK_PROXY_INBOUND_H

#include <sys/socket.h>

#include "proxy/config.h"

struct worker;

void inbound_accept(struct worker *w, int fd, const struct sockaddr_storage *peer);
void inbound_close_all(struct worker *w);    /* close every inbound connection */
/* The sni route for a server name: exact, then "*." (one label), then the longest "**." */
const struct inbound_route *inbound_route_find(const struct proxy_inbound *ib, const char *sni);

#endif
