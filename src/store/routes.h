/* routes.h (store): the route table of the gate (method + path glob -> resource), shared by
 * the gate's decisions and the console's permission matrix, and the [route NAME] sections of
 * the gate's INI file (gate/config.c and console/config.c read them with these helpers).
 * Below the products so both can use it. */
#ifndef IPLOCK_STORE_ROUTES_H
#define IPLOCK_STORE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

struct gate_route {
	char *name;
	char *methods;      /* "*" or a comma list "GET,POST" (upper case) */
	char *pattern;      /* path glob: '*' matches any run of bytes, '/' included */
	char resource[STORE_RESOURCE_MAX + 1];
	bool publishable;
};

struct gate_routes {
	struct gate_route *v;
	size_t n, cap;
};

/* Adds a route; NULL = ok, else why not. First match wins, in the order added. */
const char *gate_routes_add(struct gate_routes *r, const char *name, const char *methods,
			    const char *pattern, const char *resource, bool publishable);
void gate_routes_free(struct gate_routes *r);
/* Appends the built-in Stripe table (`routes = stripe`): charges, customers, payment_intents,
 * refunds, ... each as "/v1/<name>" and what is under it. Returns the routes added; *err is
 * NULL or why one could not be added. */
size_t gate_routes_add_stripe(struct gate_routes *r, const char **err);
/* The route for method and request target (the query string is ignored), or NULL. */
const struct gate_route *gate_routes_match(const struct gate_routes *r, const char *method,
					   size_t mlen, const char *target, size_t tlen);
bool gate_glob(const char *pattern, const char *s, size_t n);

/* One [route NAME] section being read: on_key for each of its keys, flush at its end. */
struct route_acc {
	char name[64];
	char method[64];
	char path[1025];
	char resource[STORE_RESOURCE_MAX + 1];
	bool publishable;
	bool have_path;
	bool open;              /* a section is being read */
	int line;               /* of its header, for the error of its end */
};
struct ini;

/* Is the section header NAME[len] a route ([route] or [route NAME])? If so, a starts it empty
 * with that name and *err says why the header is refused (or is NULL). */
bool gate_route_acc_begin(struct route_acc *a, const char *name, size_t len, int line,
			  const char **err);
/* Ends the section being read, if any: adds it to r, or fails ini at the section's header. */
void gate_route_acc_end(struct route_acc *a, struct gate_routes *r, struct ini *ini);
/* A key of a [route] section (method, path, resource, publishable); NULL = ok, else why not. */
const char *gate_route_acc_key(struct route_acc *r, const char *name, const char *v);
/* The section is complete: adds it to r; NULL = ok, else why not. */
const char *gate_route_acc_flush(const struct route_acc *a, struct gate_routes *r);

#endif
