/* server.h: `iplock gate`: the HTTP(S) front that checks every request's API key, client
 * address and permissions, then either forwards it to the upstream (reverse proxy, bodies
 * streamed both ways) or answers a forward-auth check (nginx auth_request, Traefik
 * ForwardAuth, Envoy ext_authz). `workers` threads, one epoll loop each. */
#ifndef IPLOCK_GATE_SERVER_H
#define IPLOCK_GATE_SERVER_H

#include <stddef.h>

#include "gate/config.h"

struct gate_server;

/* Opens the key store, the listeners, TLS and the access log. 0 or -errno; err says why. */
int gate_server_new(const struct gate_config *cfg, struct gate_server **out, char *err,
		    size_t cap);
/* Runs until SIGINT/SIGTERM (SIGHUP reopens the access log). 0 or -errno. */
int gate_server_run(struct gate_server *s);
void gate_server_free(struct gate_server *s);

#endif
