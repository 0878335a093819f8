/* admin.h: the admin thread: its own event loop with the admin listener (GET /metrics in the
 * Prometheus text format, GET /healthz) and the egress health prober. It reads the workers'
 * counters and never touches their loops. */
#ifndef IPLOCK_PROXY_ADMIN_H
#define IPLOCK_PROXY_ADMIN_H

#include "proxy/proxy.h"

struct admin;

/* Starts the thread (when r's admin_listen or health_probe is set; *out = NULL otherwise) with
 * lfd, r's admin_listen socket from admin_listen_open (-1 when unset), which it takes (closed
 * on failure too). Opened by the caller so it can listen before the workers do. 0 or -errno. */
int admin_start(struct proxy *px, struct cfg_ref *r, int lfd, struct admin **out);

/* A listening socket for admin_listen (no SO_REUSEPORT). fd or -errno. */
int admin_listen_open(const struct listen_addr *addr);

/* A reload moved admin_listen: the admin thread closes its listener and takes fd (-1: none). */
void admin_set_listener(struct admin *a, int fd);

/* A reloaded snapshot: health verdicts are copied into its pools now, from this thread, and
 * the admin thread takes the snapshot on its next wakeup. */
void admin_set_config(struct admin *a, struct cfg_ref *r);

/* Stops the thread and frees everything (the workers' counters stay with the workers). */
void admin_stop(struct admin *a);

enum admin_route {
	ADMIN_BAD = 0,        /* no request line: 400 */
	ADMIN_METRICS,        /* GET or HEAD /metrics (a query string is ignored) */
	ADMIN_HEALTHZ,        /* GET or HEAD /healthz */
	ADMIN_NOT_FOUND,      /* any other path: 404 */
	ADMIN_BAD_METHOD,     /* /metrics or /healthz with another method: 405 */
};

/* The request line of a complete head at req[0..len): where it goes; *head_only for HEAD. */
enum admin_route admin_route_parse(const char *req, size_t len, bool *head_only);

/* /healthz: NULL when workers run and an egress address is up, else the reason. */
const char *admin_health(struct proxy *px, struct proxy_config *cfg);

#endif
