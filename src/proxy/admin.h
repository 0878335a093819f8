/* admin.h: the admin thread: a one-worker net/server embedded in the proxy's, with the admin
 * listener (GET /metrics in the Prometheus text format, GET /healthz) and the egress health
 * prober on its loop. It reads the workers' counters and never touches their loops. */
#ifndef IPLOCK_PROXY_ADMIN_H
#define IPLOCK_PROXY_ADMIN_H

#include "proxy/proxy.h"

struct admin;
struct server_plan;

/* Listens on r's admin_listen and makes the prober (when admin_listen or health_probe is set;
 * *out = NULL otherwise); no thread yet, so the caller listens here before its workers do.
 * 0, or -errno with a one-line reason in err. */
int admin_open(struct proxy *px, struct cfg_ref *r, struct admin **out, char *err, size_t cap);

/* Starts the admin thread (NULL is fine). 0 or -errno. */
int admin_start(struct admin *a);

/* A reload, in two steps like net/server's: admin_plan opens a moved admin_listen (nothing
 * changes yet; 0, or -errno with the reason in err); admin_commit copies health verdicts into
 * r's pools from this thread and hands the admin thread its listener and r. */
int admin_plan(struct admin *a, const struct proxy_config *cfg, struct server_plan **plan, char *err,
	       size_t cap);
void admin_commit(struct admin *a, struct server_plan *plan, struct cfg_ref *r);

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
