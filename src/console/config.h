/* config.h (console): the console's INI file (libinih).
 *
 *   [console]
 *   listen = 127.0.0.1:8090            ; an IP literal and a port
 *   tls_cert = cert.pem                ; both: a TLS listener (session cookies get Secure)
 *   tls_key = key.pem
 *   db = keys.db                       ; the gate's store: a SQLite file (relative to this
 *                                      ;   file) or postgresql://...
 *   session_idle = 1800                ; seconds without a request before a session ends
 *   session_absolute = 43200           ; seconds after login a session ends regardless
 *   routes = stripe gate.ini           ; the permission matrix's resources: the built-in
 *                                      ;   Stripe table and/or the [route]s (and its
 *                                      ;   routes = stripe) of a gate's INI file
 *   egress = 203.0.113.10 203.0.113.11 ; the proxy fleet's static egress addresses
 *
 *   [route NAME]                       ; routes may also be given here, as in the gate
 *   path = /v1/things*
 *   resource = thing
 */
#ifndef IPLOCK_CONSOLE_CONFIG_H
#define IPLOCK_CONSOLE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "store/routes.h"

#define CONSOLE_EGRESS_MAX 256

struct console_config {
	char path[4096];
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char listen_text[80];
	char tls_cert[4096];
	char tls_key[4096];
	char db[4096];
	unsigned session_idle_s;
	unsigned session_absolute_s;
	struct gate_routes routes;
	char (*egress)[64];             /* canonical addresses or ranges */
	size_t n_egress;
};

/* Loads path into cfg (zeroed first). NULL = ok, else a one-line reason ("file: ..."). */
const char *console_config_load(const char *path, struct console_config *cfg, char *err,
				size_t cap);
void console_config_free(struct console_config *cfg);

#endif
