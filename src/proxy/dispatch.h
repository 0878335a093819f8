/* dispatch.h: a client connection from accept on (dispatch.c): its events and deadlines go to
 * the handler of its state. */
#ifndef IPLOCK_PROXY_DISPATCH_H
#define IPLOCK_PROXY_DISPATCH_H

#include <stdbool.h>
#include <sys/socket.h>

#include "net/proxyproto.h"

struct worker;

/* pp: the listener's proxy_protocol (PP_OFF: none) */
void session_accept(struct worker *w, int fd, const struct sockaddr_storage *peer, bool socks, bool tls,
		    enum pp_version pp);

#endif
