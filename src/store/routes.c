/* routes.c (store): the gate's route table (routes.h), shared with the console. */
#include "store/routes.h"

#include "core/ini.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool methods_valid(const char *m)
{
	if (!strcmp(m, "*"))
		return true;
	if (!*m)
		return false;
	for (const char *p = m; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || *p == ','))
			return false;
	return m[0] != ',' && m[strlen(m) - 1] != ',' && !strstr(m, ",,");
}

const char *gate_routes_add(struct gate_routes *r, const char *name, const char *methods,
			    const char *pattern, const char *resource, bool publishable)
{
	struct gate_route *rt;

	if (!methods || !*methods)
		methods = "*";
	if (!methods_valid(methods))
		return "method must be * or a comma list of upper-case methods (GET,POST)";
	if (!pattern || pattern[0] != '/')
		return "path must start with '/'";
	if (strlen(pattern) > 1024)
		return "path too long";
	if (!resource || !store_resource_valid(resource))
		return "resource must be 1-63 of a-z, 0-9, '_', '.'";
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 16;
		struct gate_route *nv = realloc(r->v, ncap * sizeof(*nv));
		if (!nv)
			return "out of memory";
		r->v = nv;
		r->cap = ncap;
	}
	rt = &r->v[r->n];
	memset(rt, 0, sizeof(*rt));
	rt->name = strdup(name ? name : "");
	rt->methods = strdup(methods);
	rt->pattern = strdup(pattern);
	if (!rt->name || !rt->methods || !rt->pattern) {
		free(rt->name);
		free(rt->methods);
		free(rt->pattern);
		return "out of memory";
	}
	snprintf(rt->resource, sizeof(rt->resource), "%s", resource);
	rt->publishable = publishable;
	r->n++;
	return NULL;
}

void gate_routes_free(struct gate_routes *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].methods);
		free(r->v[i].pattern);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

/* Stripe's main resources: path prefix, resource (the permission is rak_<resource>_<level>),
 * methods, publishable. Nested paths come before their parents (first match wins). */
static const struct {
	const char *name, *prefix, *resource, *methods;
	bool publishable;
} stripe_routes[] = {
	{ "tokens", "/v1/tokens", "token", "POST", true },
	{ "payment_methods_create", "/v1/payment_methods", "payment_method", "POST", true },
	{ "charges", "/v1/charges", "charge", "*", false },
	{ "customers", "/v1/customers", "customer", "*", false },
	{ "payment_intents", "/v1/payment_intents", "payment_intent", "*", false },
	{ "setup_intents", "/v1/setup_intents", "setup_intent", "*", false },
	{ "payment_methods", "/v1/payment_methods", "payment_method", "*", false },
	{ "refunds", "/v1/refunds", "refund", "*", false },
	{ "disputes", "/v1/disputes", "dispute", "*", false },
	{ "invoices", "/v1/invoices", "invoice", "*", false },
	{ "invoiceitems", "/v1/invoiceitems", "invoice", "*", false },
	{ "subscriptions", "/v1/subscriptions", "subscription", "*", false },
	{ "subscription_items", "/v1/subscription_items", "subscription", "*", false },
	{ "products", "/v1/products", "product", "*", false },
	{ "prices", "/v1/prices", "price", "*", false },
	{ "coupons", "/v1/coupons", "coupon", "*", false },
	{ "balance_transactions", "/v1/balance_transactions", "balance", "*", false },
	{ "balance", "/v1/balance", "balance", "*", false },
	{ "payouts", "/v1/payouts", "payout", "*", false },
	{ "transfers", "/v1/transfers", "transfer", "*", false },
	{ "events", "/v1/events", "event", "*", false },
	{ "webhook_endpoints", "/v1/webhook_endpoints", "webhook_endpoint", "*", false },
	{ "files", "/v1/files", "file", "*", false },
	{ "file_links", "/v1/file_links", "file", "*", false },
	{ "checkout_sessions", "/v1/checkout/sessions", "checkout_session", "*", false },
	{ "accounts", "/v1/accounts", "account", "*", false },
	{ "application_fees", "/v1/application_fees", "application_fee", "*", false },
};

size_t gate_routes_add_stripe(struct gate_routes *r, const char **err)
{
	char pat[96];
	size_t n = 0;

	*err = NULL;
	for (size_t i = 0; i < sizeof(stripe_routes) / sizeof(stripe_routes[0]); i++) {
		/* the collection and what is under it, not "/v1/chargesX" */
		for (int sub = 0; sub < 2; sub++) {
			snprintf(pat, sizeof(pat), "%s%s", stripe_routes[i].prefix, sub ? "/*" : "");
			*err = gate_routes_add(r, stripe_routes[i].name, stripe_routes[i].methods, pat,
					       stripe_routes[i].resource, stripe_routes[i].publishable);
			if (*err)
				return n;
			n++;
		}
	}
	return n;
}

bool gate_glob(const char *pat, const char *s, size_t n)
{
	const char *star = NULL;
	size_t i = 0, mark = 0;

	/* classic wildcard matching with one backtrack point: linear in practice */
	while (i < n) {
		if (*pat == '*') {
			star = pat++;
			mark = i;
		} else if (*pat && *pat == s[i]) {
			pat++;
			i++;
		} else if (star) {
			pat = star + 1;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static bool method_in(const char *list, const char *m, size_t mlen)
{
	if (!strcmp(list, "*"))
		return true;
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == mlen && !memcmp(p, m, mlen))
			return true;
		if (!c)
			break;
		p = c + 1;
	}
	return false;
}

const struct gate_route *gate_routes_match(const struct gate_routes *r, const char *method,
					   size_t mlen, const char *target, size_t tlen)
{
	const char *q = memchr(target, '?', tlen);
	size_t plen = q ? (size_t)(q - target) : tlen;

	for (size_t i = 0; i < r->n; i++)
		if (method_in(r->v[i].methods, method, mlen) &&
		    gate_glob(r->v[i].pattern, target, plen))
			return &r->v[i];
	return NULL;
}

bool gate_route_acc_begin(struct route_acc *a, const char *name, size_t len, int line,
			  const char **err)
{
	const char *rname = name + len;
	size_t rlen = 0;

	*err = NULL;
	if (!(len == 5 && !memcmp(name, "route", 5)) && !ini_section_named(name, len, "route", &rname, &rlen))
		return false;
	memset(a, 0, sizeof(*a));
	if (rlen >= sizeof(a->name)) {
		*err = "route name too long (at most 63 characters)";
		return true;
	}
	memcpy(a->name, rname, rlen);
	a->open = true;
	a->line = line;
	return true;
}

const char *gate_route_acc_key(struct route_acc *r, const char *name, const char *v)
{
	if (!strcmp(name, "method")) {
		if (strlen(v) >= sizeof(r->method))
			return "method too long";
		snprintf(r->method, sizeof(r->method), "%s", v);
	} else if (!strcmp(name, "path")) {
		if (strlen(v) >= sizeof(r->path))
			return "path too long";
		snprintf(r->path, sizeof(r->path), "%s", v);
		r->have_path = true;
	} else if (!strcmp(name, "resource")) {
		if (!store_resource_valid(v))
			return "resource must be 1-63 of a-z, 0-9, '_', '.'";
		snprintf(r->resource, sizeof(r->resource), "%s", v);
	} else if (!strcmp(name, "publishable")) {
		if (ini_parse_bool(v, &r->publishable))
			return "publishable must be true or false";
	} else {
		return "unknown key in [route] (method, path, resource, publishable)";
	}
	return NULL;
}

const char *gate_route_acc_flush(const struct route_acc *a, struct gate_routes *r)
{
	if (!a->have_path)
		return "route needs path =";
	if (!a->resource[0])
		return "route needs resource =";
	return gate_routes_add(r, a->name, a->method[0] ? a->method : "*", a->path, a->resource,
			       a->publishable);
}

void gate_route_acc_end(struct route_acc *a, struct gate_routes *r, struct ini *ini)
{
	const char *e;

	if (!a->open)
		return;
	a->open = false;
	if ((e = gate_route_acc_flush(a, r)))
		ini_fail(ini, a->line, "route %s: %s", a->name, e);
}
