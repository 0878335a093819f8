/* route.h: a session's way to its destination (route.c): resolve, check every address, connect
 * from an egress address, then start the tunnel or the forwarding. */
#ifndef IPLOCK_PROXY_ROUTE_H
#define IPLOCK_PROXY_ROUTE_H

#include "net/dial.h"

struct session;

extern const struct dial_ops session_dial_ops;   /* the session's hooks into its net/dial */
void session_route(struct session *s);

#endif
