/* config.c (~900 lines: one validator per key of docs/config.md, kept in one table-like file
 * so the docs and the code can be read side by side): the proxy's INI configuration. core/ini
 * reads the lines (exact numbers, long lines refused, duplicates); this file validates every value. */
#include "proxy/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ini.h"
#include "core/pwhash.h"

#define CONFIG_FILE_MAX (16u << 20)     /* a config larger than 16 MiB is a mistake */
#define USERS_MAX       100000

enum section_kind {
	SECTION_NONE = 0,        /* before the first [section] */
	SECTION_PROXY,           /* [proxy] */
	SECTION_USER,            /* [user NAME] */
	SECTION_INBOUND,         /* [inbound NAME] */
};

/* Scalar keys may appear once per section; list keys may repeat and continue on indented
 * lines, each occurrence adding to the list. */
enum key_id {
	K_LISTEN, K_EGRESS, K_EGRESS_POLICY, K_ALLOW_DEST, K_CONNECT_PORTS, K_HTTP_PORTS,
	K_HEADER_TIMEOUT, K_CONNECT_TIMEOUT, K_IDLE_TIMEOUT, K_MAX_HEADER_BYTES, K_MAX_HEADERS,
	K_MAX_CONNS, K_MAX_CONNS_PER_USER, K_WORKERS, K_EGRESS_DOWN, K_AUTH, K_OPEN_PROXY,
	K_RELAY, K_ACCESS_LOG, K_SOCKS_LISTEN, K_SOCKS, K_TLS_LISTEN, K_TLS_CERT, K_TLS_KEY,
	K_ADMIN_LISTEN, K_HEALTH_PROBE, K_HEALTH_INTERVAL, K_HEALTH_TIMEOUT, K_DRAIN_TIMEOUT,
	K_USERS_DB, K_NODE_NAME,
	K_PASSWORD_HASH, K_ALLOW, K_USER_MAX_CONNS, K_USER_EGRESS, K_USER_EGRESS_POLICY,
	K_IN_LISTEN, K_IN_FORWARD, K_IN_SNI, K_IN_PROXY_PROTOCOL, K_IN_ALLOW, K_TRUSTED_BALANCERS,
	K_COUNT
};

struct key_def {
	const char *name;
	enum section_kind section;
	enum key_id id;
	bool list;
};

static const struct key_def keys[] = {
	{ "listen", SECTION_PROXY, K_LISTEN, true },
	{ "egress", SECTION_PROXY, K_EGRESS, true },
	{ "egress_policy", SECTION_PROXY, K_EGRESS_POLICY, false },
	{ "allow_destinations", SECTION_PROXY, K_ALLOW_DEST, true },
	{ "connect_ports", SECTION_PROXY, K_CONNECT_PORTS, true },
	{ "http_ports", SECTION_PROXY, K_HTTP_PORTS, true },
	{ "header_timeout", SECTION_PROXY, K_HEADER_TIMEOUT, false },
	{ "connect_timeout", SECTION_PROXY, K_CONNECT_TIMEOUT, false },
	{ "idle_timeout", SECTION_PROXY, K_IDLE_TIMEOUT, false },
	{ "max_header_bytes", SECTION_PROXY, K_MAX_HEADER_BYTES, false },
	{ "max_headers", SECTION_PROXY, K_MAX_HEADERS, false },
	{ "max_conns", SECTION_PROXY, K_MAX_CONNS, false },
	{ "max_conns_per_user", SECTION_PROXY, K_MAX_CONNS_PER_USER, false },
	{ "workers", SECTION_PROXY, K_WORKERS, false },
	{ "egress_down", SECTION_PROXY, K_EGRESS_DOWN, false },
	{ "auth", SECTION_PROXY, K_AUTH, false },
	{ "open_proxy", SECTION_PROXY, K_OPEN_PROXY, false },
	{ "relay", SECTION_PROXY, K_RELAY, false },
	{ "access_log", SECTION_PROXY, K_ACCESS_LOG, false },
	{ "socks_listen", SECTION_PROXY, K_SOCKS_LISTEN, true },
	{ "socks", SECTION_PROXY, K_SOCKS, false },
	{ "tls_listen", SECTION_PROXY, K_TLS_LISTEN, true },
	{ "tls_cert", SECTION_PROXY, K_TLS_CERT, false },
	{ "tls_key", SECTION_PROXY, K_TLS_KEY, false },
	{ "admin_listen", SECTION_PROXY, K_ADMIN_LISTEN, false },
	{ "health_probe", SECTION_PROXY, K_HEALTH_PROBE, false },
	{ "health_interval", SECTION_PROXY, K_HEALTH_INTERVAL, false },
	{ "health_timeout", SECTION_PROXY, K_HEALTH_TIMEOUT, false },
	{ "drain_timeout", SECTION_PROXY, K_DRAIN_TIMEOUT, false },
	{ "trusted_balancers", SECTION_PROXY, K_TRUSTED_BALANCERS, true },
	{ "users_db", SECTION_PROXY, K_USERS_DB, false },
	{ "node_name", SECTION_PROXY, K_NODE_NAME, false },
	{ "password_hash", SECTION_USER, K_PASSWORD_HASH, false },
	{ "allow", SECTION_USER, K_ALLOW, true },
	{ "max_conns", SECTION_USER, K_USER_MAX_CONNS, false },
	{ "egress", SECTION_USER, K_USER_EGRESS, true },
	{ "egress_policy", SECTION_USER, K_USER_EGRESS_POLICY, false },
	{ "listen", SECTION_INBOUND, K_IN_LISTEN, false },
	{ "forward", SECTION_INBOUND, K_IN_FORWARD, false },
	{ "sni", SECTION_INBOUND, K_IN_SNI, true },
	{ "proxy_protocol", SECTION_INBOUND, K_IN_PROXY_PROTOCOL, false },
	{ "allow", SECTION_INBOUND, K_IN_ALLOW, true },
};

/* What a user section collects before its pool can be built. */
struct user_tmp {
	int line;                        /* of the [user NAME] header */
	struct ipaddr egress[EGRESS_MAX];
	size_t negress;
	bool has_policy;
	enum egress_policy policy;
	int key_line[K_COUNT];
};

struct load_ctx {
	struct proxy_config *cfg;
	struct ini *ini;                 /* line numbers, the first error */

	enum section_kind section;
	int proxy_line;                  /* of [proxy], 0 if none */
	int key_line[K_COUNT];           /* [proxy] keys: line of first occurrence */
	struct ipaddr egress[EGRESS_MAX];
	size_t negress;
	enum egress_policy policy;
	bool open_proxy;
	struct user_tmp *utmp;
	size_t ucap;
	int in_line[PROXY_MAX_INBOUND];             /* of each [inbound NAME] header */
	int in_key_line[PROXY_MAX_INBOUND][K_COUNT];
	struct listen_addr *last_listen;             /* of this line: what proxy_protocol= applies to */
	int pp_line;                                 /* first listen line with proxy_protocol= */
};

static void fail(struct load_ctx *ctx, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct load_ctx *ctx, int line, const char *fmt, ...)
{
	char msg[INI_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ini_fail(ctx->ini, line, "%s", msg);
}

_Static_assert(PROXY_USER_NAME_MAX == INI_SECTION_NAME_MAX, "[user NAME] is an INI section name");

bool proxy_user_name_valid(const char *name, size_t len)
{
	return ini_name_valid(name, len);
}

int proxy_config_find_user(const struct proxy_config *cfg, const char *name, size_t len)
{
	for (size_t i = 0; i < cfg->nusers; i++)
		if (strlen(cfg->users[i].name) == len && memcmp(cfg->users[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

static void inbound_begin(struct load_ctx *ctx, const char *name, size_t nlen)
{
	struct proxy_config *cfg = ctx->cfg;

	if (!proxy_user_name_valid(name, nlen)) {
		fail(ctx, ini_line(ctx->ini), "bad inbound name (1-64 of A-Z a-z 0-9 . _ -)");
		return;
	}
	for (size_t i = 0; i < cfg->ninbound; i++)
		if (strlen(cfg->inbound[i].name) == nlen && !memcmp(cfg->inbound[i].name, name, nlen)) {
			fail(ctx, ini_line(ctx->ini), "duplicate inbound %.*s (first at line %d)", (int)nlen, name,
			     ctx->in_line[i]);
			return;
		}
	if (cfg->ninbound >= PROXY_MAX_INBOUND) {
		fail(ctx, ini_line(ctx->ini), "too many inbound sections (at most %d)", PROXY_MAX_INBOUND);
		return;
	}
	memcpy(cfg->inbound[cfg->ninbound].name, name, nlen);
	ctx->in_line[cfg->ninbound++] = ini_line(ctx->ini);
	ctx->section = SECTION_INBOUND;
}

static void section_begin(struct load_ctx *ctx, const char *s, size_t len)
{
	struct proxy_config *cfg = ctx->cfg;

	if (len == 5 && !memcmp(s, "proxy", 5)) {
		if (ctx->proxy_line) {
			fail(ctx, ini_line(ctx->ini), "duplicate [proxy] section (first at line %d)", ctx->proxy_line);
			return;
		}
		ctx->proxy_line = ini_line(ctx->ini);
		ctx->section = SECTION_PROXY;
		return;
	}
	const char *name;
	size_t nlen;
	if (ini_section_named(s, len, "user", &name, &nlen)) {
		if (!proxy_user_name_valid(name, nlen)) {
			fail(ctx, ini_line(ctx->ini), "bad user name (1-64 of A-Z a-z 0-9 . _ -)");
			return;
		}
		int dup = proxy_config_find_user(cfg, name, nlen);
		if (dup >= 0) {
			fail(ctx, ini_line(ctx->ini), "duplicate user %.*s (first at line %d)", (int)nlen, name,
			     ctx->utmp[dup].line);
			return;
		}
		if (cfg->nusers >= USERS_MAX) {
			fail(ctx, ini_line(ctx->ini), "too many users (at most %d)", USERS_MAX);
			return;
		}
		if (cfg->nusers == ctx->ucap) {
			size_t cap = ctx->ucap ? ctx->ucap * 2 : 8;
			struct proxy_user *u = realloc(cfg->users, cap * sizeof(*u));
			if (u)
				cfg->users = u;
			struct user_tmp *t = realloc(ctx->utmp, cap * sizeof(*t));
			if (t)
				ctx->utmp = t;
			if (!u || !t) {
				fail(ctx, ini_line(ctx->ini), "out of memory");
				return;
			}
			ctx->ucap = cap;
		}
		struct proxy_user *u = &cfg->users[cfg->nusers];
		memset(u, 0, sizeof(*u));
		memcpy(u->name, name, nlen);
		memset(&ctx->utmp[cfg->nusers], 0, sizeof(ctx->utmp[0]));
		ctx->utmp[cfg->nusers].line = ini_line(ctx->ini);
		cfg->nusers++;
		ctx->section = SECTION_USER;
		return;
	}
	if (ini_section_named(s, len, "inbound", &name, &nlen)) {
		inbound_begin(ctx, name, nlen);
		return;
	}
	fail(ctx, ini_line(ctx->ini), "unknown section [%.*s] (expected [proxy] or [user NAME])",
	     (int)(len > 64 ? 64 : len), s);
}

static const char *on_section(struct ini *ini, void *user, const char *name, size_t len)
{
	(void)ini;
	section_begin(user, name, len);
	return NULL;     /* section_begin reports its own errors */
}

/* ---- value parsers: each returns an error text or NULL */

/* Calls fn on each space-separated word of v; stops at the first error. */
static const char *for_each_word(const char *v, const char *(*fn)(struct load_ctx *, const char *, size_t, void *),
				 struct load_ctx *ctx, void *arg)
{
	const char *p = v;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return NULL;
		const char *w = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		const char *err = fn(ctx, w, (size_t)(p - w), arg);
		if (err)
			return err;
	}
}

static const char *word_listen(struct load_ctx *ctx, const char *w, size_t len, void *arg)
{
	struct proxy_config *cfg = ctx->cfg;
	struct host h;
	uint16_t port;
	const char *err;
	int kind = arg ? *(const int *)arg : 0;   /* 0 listen, 1 socks_listen, 2 tls_listen */
	struct listen_addr *list = kind == 1 ? cfg->socks_listen : kind == 2 ? cfg->tls_listen : cfg->listen;
	size_t *n = kind == 1 ? &cfg->nsocks_listen : kind == 2 ? &cfg->ntls_listen : &cfg->nlisten;

	if (len > 15 && !memcmp(w, "proxy_protocol=", 15)) {
		enum pp_version pp;
		if (len == 17 && !memcmp(w + 15, "v1", 2))
			pp = PP_V1;
		else if (len == 17 && !memcmp(w + 15, "v2", 2))
			pp = PP_V2;
		else if (len == 18 && !memcmp(w + 15, "off", 3))
			pp = PP_OFF;
		else
			return "proxy_protocol must be v1, v2 or off";
		if (!ctx->last_listen)
			return "proxy_protocol= follows the address it applies to (listen = 10.0.0.5:3128 proxy_protocol=v2)";
		ctx->last_listen->pp = pp;
		if (pp != PP_OFF && !ctx->pp_line)
			ctx->pp_line = ini_line(ctx->ini);
		return NULL;
	}
	if (memchr(w, '=', len))
		return "unknown listen option (proxy_protocol=v1|v2|off)";
	if ((err = authority_parse(w, len, &h, &port, kind == 1 ? 1080 : 3128)))
		return err;
	if (h.kind != HOST_IP)
		return "listen takes IP addresses (127.0.0.1:3128, [::1]:3128), not names";
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (ipaddr_equal(&cfg->listen[i].ip, &h.ip) && cfg->listen[i].port == port)
			return "duplicate listen address";
	for (size_t i = 0; i < cfg->nsocks_listen; i++)
		if (ipaddr_equal(&cfg->socks_listen[i].ip, &h.ip) && cfg->socks_listen[i].port == port)
			return "duplicate listen address";
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		if (ipaddr_equal(&cfg->tls_listen[i].ip, &h.ip) && cfg->tls_listen[i].port == port)
			return "duplicate listen address";
	if (*n >= PROXY_MAX_LISTEN)
		return "at most 8 listen addresses";
	list[*n].ip = h.ip;
	list[*n].port = port;
	list[*n].pp = PP_OFF;
	ctx->last_listen = &list[*n];
	(*n)++;
	return NULL;
}

/* A CIDR into the set at arg (a struct cidr_set **), made on first use. */
static const char *word_cidr(struct load_ctx *ctx, const char *w, size_t len, void *arg)
{
	struct cidr_set **set = arg;
	struct cidr c;
	const char *err;
	(void)ctx;

	if ((err = cidr_parse(w, len, &c)))
		return err;
	if (!*set && !(*set = cidr_set_new()))
		return "out of memory";
	return cidr_set_add(*set, &c) < 0 ? "out of memory" : NULL;
}

struct addr_list {
	struct ipaddr *a;
	size_t *n;
};

static const char *word_egress(struct load_ctx *ctx, const char *w, size_t len, void *arg)
{
	struct addr_list *l = arg;
	struct ipaddr ip;
	const char *err;
	(void)ctx;

	if (len > 2 && w[0] == '[' && w[len - 1] == ']')
		w++, len -= 2;
	if ((err = ipaddr_parse(w, len, &ip)))
		return err;
	for (size_t i = 0; i < *l->n; i++)
		if (ipaddr_equal(&l->a[i], &ip))
			return "duplicate egress address";
	if (*l->n >= EGRESS_MAX)
		return "at most 32 egress addresses";
	l->a[(*l->n)++] = ip;
	return NULL;
}

static const char *word_rule(struct load_ctx *ctx, const char *w, size_t len, void *arg)
{
	struct proxy_user *u = arg;
	struct dest_rule r;
	const char *err;
	(void)ctx;

	if ((err = dest_rule_parse(w, len, &r)))
		return err;
	if (u->nallow >= 100000)
		return "too many allow rules";
	/* grow by doubling: when nallow is a power of two (or 0) the array is full */
	if ((u->nallow & (u->nallow - 1)) == 0) {
		size_t cap = u->nallow ? u->nallow * 2 : 1;
		struct dest_rule *a = realloc(u->allow, cap * sizeof(*a));
		if (!a)
			return "out of memory";
		u->allow = a;
	}
	u->allow[u->nallow++] = r;
	return NULL;
}

static const char *set_portset(struct load_ctx *ctx, struct portset *set, const char *v, bool first)
{
	struct portset more;
	const char *err = portset_parse(v, &more);
	(void)ctx;

	if (err)
		return err;
	if (first)
		memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < sizeof(set->bits); i++)
		set->bits[i] |= more.bits[i];
	return NULL;
}

static const char *set_string(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n == 0)
		return "empty value";
	if (n >= cap)
		return "value too long";
	memcpy(dst, v, n + 1);
	return NULL;
}

/* "127.0.0.1:9090", "[::1]:9090", or a bare port on loopback: the admin listener shows user
 * names and traffic, so it is never public by accident. */
static const char *parse_admin_listen(struct proxy_config *cfg, const char *v)
{
	struct host h;
	uint16_t port;
	const char *err;

	if (*v >= '0' && *v <= '9' && !strchr(v, ':') && !strchr(v, '.')) {
		if ((err = port_parse(v, strlen(v), &port)))
			return err;
		ipaddr_parse("127.0.0.1", 9, &cfg->admin.ip);
		cfg->admin.port = port;
		return NULL;
	}
	if ((err = authority_parse(v, strlen(v), &h, &port, 0)))
		return err;
	if (h.kind != HOST_IP)
		return "admin_listen takes an IP address and port (127.0.0.1:9090) or a port";
	cfg->admin.ip = h.ip;
	cfg->admin.port = port;
	return NULL;
}

static const char *proxy_key(struct load_ctx *ctx, enum key_id id, const char *v, bool first)
{
	struct proxy_config *cfg = ctx->cfg;
	struct addr_list al = { ctx->egress, &ctx->negress };

	switch (id) {
	case K_LISTEN:
		ctx->last_listen = NULL;
		return for_each_word(v, word_listen, ctx, NULL);
	case K_TRUSTED_BALANCERS:
		return for_each_word(v, word_cidr, ctx, &ctx->cfg->trusted_balancers);
	case K_EGRESS:
		return for_each_word(v, word_egress, ctx, &al);
	case K_EGRESS_POLICY:
		return egress_policy_parse(v, &ctx->policy);
	case K_ALLOW_DEST:
		return for_each_word(v, word_cidr, ctx, &ctx->cfg->allow_destinations);
	case K_CONNECT_PORTS:
		return set_portset(ctx, &cfg->connect_ports, v, first);
	case K_HTTP_PORTS:
		return set_portset(ctx, &cfg->http_ports, v, first);
	case K_HEADER_TIMEOUT:
		return ini_parse_duration(v, 100, 3600000, &cfg->header_timeout_ms);
	case K_CONNECT_TIMEOUT:
		return ini_parse_duration(v, 100, 3600000, &cfg->connect_timeout_ms);
	case K_IDLE_TIMEOUT:
		return ini_parse_duration(v, 100, 7 * 86400000UL, &cfg->idle_timeout_ms);
	case K_EGRESS_DOWN:
		return ini_parse_duration(v, 0, 86400000, &cfg->egress_down_ms);
	case K_MAX_HEADER_BYTES:
		return ini_parse_size(v, 1024, 1048576, &cfg->max_header_bytes);
	case K_MAX_HEADERS:
		return ini_parse_uint(v, 1, 10000, &cfg->max_headers);
	case K_MAX_CONNS:
		return ini_parse_uint(v, 1, 10000000, &cfg->max_conns);
	case K_MAX_CONNS_PER_USER:
		return ini_parse_uint(v, 0, 10000000, &cfg->max_conns_per_user);
	case K_WORKERS:
		return ini_parse_uint(v, 0, 1024, &cfg->workers);
	case K_AUTH:
		if (!strcmp(v, "basic"))
			cfg->auth_required = true;
		else if (!strcmp(v, "none"))
			cfg->auth_required = false;
		else
			return "auth must be basic or none";
		return NULL;
	case K_OPEN_PROXY:
		return ini_parse_bool(v, &ctx->open_proxy);
	case K_RELAY:
		if (strcmp(v, "splice") && strcmp(v, "copy") && strcmp(v, "auto"))
			return "relay must be auto, splice or copy";
		return set_string(cfg->relay, sizeof(cfg->relay), v);
	case K_ACCESS_LOG:
		return set_string(cfg->access_log, sizeof(cfg->access_log), v);
	case K_USERS_DB:
		if (!v[0])
			return "users_db needs a SQLite path or a postgresql:// URI";
		return set_string(cfg->users_db, sizeof(cfg->users_db), v);
	case K_NODE_NAME:
		if (!proxy_user_name_valid(v, strlen(v)))
			return "node_name: 1-64 of A-Z a-z 0-9 . _ -";
		return set_string(cfg->node_name, sizeof(cfg->node_name), v);
	case K_SOCKS_LISTEN: {
		static const int socks_kind = 1;
		ctx->last_listen = NULL;
		return for_each_word(v, word_listen, ctx, (void *)&socks_kind);
	}
	case K_TLS_LISTEN: {
		static const int tls_kind = 2;
		ctx->last_listen = NULL;
		return for_each_word(v, word_listen, ctx, (void *)&tls_kind);
	}
	case K_TLS_CERT:
		return set_string(cfg->tls_cert, sizeof(cfg->tls_cert), v);
	case K_TLS_KEY:
		return set_string(cfg->tls_key, sizeof(cfg->tls_key), v);
	case K_SOCKS:
		if (!strcmp(v, "sniff"))
			cfg->socks_sniff = true;
		else if (!strcmp(v, "off"))
			cfg->socks_sniff = false;
		else
			return "socks must be sniff or off";
		return NULL;
	case K_ADMIN_LISTEN:
		return parse_admin_listen(cfg, v);
	case K_HEALTH_PROBE:
		return authority_parse(v, strlen(v), &cfg->health_probe, &cfg->health_probe_port, 0);
	case K_HEALTH_INTERVAL:
		return ini_parse_duration(v, 100, 3600000, &cfg->health_interval_ms);
	case K_HEALTH_TIMEOUT:
		return ini_parse_duration(v, 10, 600000, &cfg->health_timeout_ms);
	case K_DRAIN_TIMEOUT:
		return ini_parse_duration(v, 0, 86400000, &cfg->drain_timeout_ms);
	default:
		return "internal: key in the wrong section";
	}
}

static const char *user_key(struct load_ctx *ctx, enum key_id id, const char *v)
{
	struct proxy_user *u = &ctx->cfg->users[ctx->cfg->nusers - 1];
	struct user_tmp *t = &ctx->utmp[ctx->cfg->nusers - 1];
	struct addr_list al = { t->egress, &t->negress };
	const char *err;

	switch (id) {
	case K_PASSWORD_HASH:
		if ((err = pwhash_check(v)))
			return err;
		return set_string(u->password_hash, sizeof(u->password_hash), v);
	case K_ALLOW:
		return for_each_word(v, word_rule, ctx, u);
	case K_USER_MAX_CONNS:
		return ini_parse_uint(v, 0, 10000000, &u->max_conns);
	case K_USER_EGRESS:
		return for_each_word(v, word_egress, ctx, &al);
	case K_USER_EGRESS_POLICY:
		t->has_policy = true;
		return egress_policy_parse(v, &t->policy);
	default:
		return "internal: key in the wrong section";
	}
}

/* "host=backend:port": the host a lowercased DNS name, or "*." or "**." and one; the backend an IP
 * literal or a name (resolved by the worker when a connection comes). */
static const char *word_sni(struct load_ctx *ctx, const char *w, size_t len, void *arg)
{
	struct proxy_inbound *ib = arg;
	const char *eq = memchr(w, '=', len);
	struct inbound_route r;
	struct host h;
	const char *err;
	(void)ctx;

	memset(&r, 0, sizeof(r));
	if (!eq)
		return "sni routes are HOST=BACKEND:PORT";
	size_t hl = (size_t)(eq - w), off;
	r.wild = host_wild_prefix(w, hl, &off);
	if (memchr(w + off, '*', hl - off))
		return "'*' only as a leading \"*.\" (one label) or \"**.\" (any depth)";
	if ((err = host_parse(w + off, hl - off, &h)))
		return err;
	if (h.kind != HOST_NAME)
		return "sni routes name hosts, not IP addresses (clients send no SNI for addresses)";
	if (w[hl - 1] == '.')
		return "sni host with a trailing dot (clients never send one)";
	r.skip = off;
	snprintf(r.host, sizeof(r.host), "%s%s", r.wild == HOST_WILD_ANY ? "**." : r.wild == HOST_WILD_ONE ? "*." : "",
		 h.name);
	if ((err = authority_parse(eq + 1, len - hl - 1, &r.backend, &r.port, 0)))
		return err;
	for (size_t i = 0; i < ib->nroutes; i++)
		if (!strcmp(ib->routes[i].host, r.host))
			return "duplicate sni host";
	if (ib->nroutes >= INBOUND_MAX_ROUTES)
		return "too many sni routes";
	struct inbound_route *a = realloc(ib->routes, (ib->nroutes + 1) * sizeof(*a));
	if (!a)
		return "out of memory";
	ib->routes = a;
	ib->routes[ib->nroutes++] = r;
	return NULL;
}

static const char *inbound_key(struct load_ctx *ctx, enum key_id id, const char *v)
{
	struct proxy_inbound *ib = &ctx->cfg->inbound[ctx->cfg->ninbound - 1];
	const char *err;

	switch (id) {
	case K_IN_LISTEN:
		if ((err = authority_parse(v, strlen(v), &ib->forward, &ib->listen.port, 0)))
			return err;
		if (ib->forward.kind != HOST_IP)
			return "listen takes an IP address and port (0.0.0.0:443), not a name";
		ib->listen.ip = ib->forward.ip;
		memset(&ib->forward, 0, sizeof(ib->forward));
		return NULL;
	case K_IN_FORWARD:
		ib->has_forward = true;
		return authority_parse(v, strlen(v), &ib->forward, &ib->forward_port, 0);
	case K_IN_SNI:
		return for_each_word(v, word_sni, ctx, ib);
	case K_IN_PROXY_PROTOCOL:
		if (!strcmp(v, "v2"))
			ib->proxy_protocol = PP_V2;
		else if (!strcmp(v, "off") || !strcmp(v, "no"))
			ib->proxy_protocol = PP_OFF;
		else
			return "proxy_protocol must be v2 or off";
		return NULL;
	case K_IN_ALLOW:
		return for_each_word(v, word_cidr, ctx, &ib->allow);
	default:
		return "internal: key in the wrong section";
	}
}

static const char *on_key(struct ini *ini, void *user, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	const struct key_def *k = NULL;
	const char *err;

	if (ctx->section == SECTION_NONE) {
		fail(ctx, ini_line(ini), "key %s outside a section (start with [proxy])", name);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].section == ctx->section && !strcmp(keys[i].name, name))
			k = &keys[i];
	if (!k) {
		fail(ctx, ini_line(ini), "unknown key %s in [%s]", name,
		     ctx->section == SECTION_PROXY ? "proxy" : ctx->section == SECTION_USER ? "user" : "inbound");
		return NULL;
	}
	if (!k->list && (err = ini_once(ini, name)))
		return err;
	int *seen = ctx->section == SECTION_PROXY ? ctx->key_line
		  : ctx->section == SECTION_INBOUND ? ctx->in_key_line[ctx->cfg->ninbound - 1]
		  : ctx->utmp[ctx->cfg->nusers - 1].key_line;
	bool first = seen[k->id] == 0;
	if (first)
		seen[k->id] = ini_line(ini);   /* for errors that span keys, after the whole file */
	return ctx->section == SECTION_PROXY ? proxy_key(ctx, k->id, value, first)
	       : ctx->section == SECTION_INBOUND ? inbound_key(ctx, k->id, value)
	       : user_key(ctx, k->id, value);
}

static const struct ini_ops ops = { .section = on_section, .key = on_key };

static void defaults(struct proxy_config *cfg)
{
	portset_parse("443 80", &cfg->connect_ports);
	portset_parse("80 443", &cfg->http_ports);
	cfg->header_timeout_ms = 10000;
	cfg->connect_timeout_ms = 10000;
	cfg->idle_timeout_ms = 300000;
	cfg->max_header_bytes = 16384;
	cfg->max_headers = 100;
	cfg->max_conns = 20000;
	cfg->max_conns_per_user = 0;
	cfg->workers = 0;
	cfg->egress_down_ms = 30000;
	cfg->health_interval_ms = 5000;
	cfg->health_timeout_ms = 2000;
	cfg->drain_timeout_ms = 30000;
	cfg->auth_required = true;
	cfg->socks_sniff = true;
	memcpy(cfg->relay, PROXY_RELAY_DEFAULT, sizeof(PROXY_RELAY_DEFAULT));
	memcpy(cfg->access_log, "-", 2);
}

/* Requirements that span keys, checked after the whole file was read. */
static void finish(struct load_ctx *ctx)
{
	struct proxy_config *cfg = ctx->cfg;

	if (!ctx->proxy_line) {
		fail(ctx, -1, "missing [proxy] section");
		return;
	}
	if (cfg->nlisten == 0) {
		fail(ctx, ctx->proxy_line, "[proxy] has no listen address (listen = 127.0.0.1:3128)");
		return;
	}
	if (ctx->negress == 0) {
		fail(ctx, ctx->proxy_line, "[proxy] has no egress address (egress = 192.0.2.10 192.0.2.11)");
		return;
	}
	if (!cfg->auth_required && !ctx->open_proxy) {
		fail(ctx, ctx->key_line[K_AUTH],
		     "auth = none makes an open proxy: also set open_proxy = yes if that is intended");
		return;
	}
	if (ctx->key_line[K_OPEN_PROXY] && ctx->open_proxy && cfg->auth_required) {
		fail(ctx, ctx->key_line[K_OPEN_PROXY], "open_proxy = yes needs auth = none");
		return;
	}
	if (cfg->ntls_listen && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
		fail(ctx, ctx->key_line[K_TLS_LISTEN], "tls_listen needs tls_cert and tls_key");
		return;
	}
	if (ctx->pp_line && !cfg->trusted_balancers) {
		fail(ctx, ctx->pp_line, "proxy_protocol= needs trusted_balancers = the balancers' addresses "
		     "(CIDRs; the header is taken from those peers only)");
		return;
	}
	if (cfg->auth_required && cfg->nusers == 0 && !cfg->users_db[0]) {
		fail(ctx, ctx->proxy_line, "auth is required but no [user NAME] is defined (see iplock passwd)");
		return;
	}
	for (size_t i = 0; i < cfg->ninbound; i++) {
		const struct proxy_inbound *ib = &cfg->inbound[i];
		if (!ctx->in_key_line[i][K_IN_LISTEN]) {
			fail(ctx, ctx->in_line[i], "inbound %s has no listen address", ib->name);
			return;
		}
		if (!ib->has_forward && !ib->nroutes) {
			fail(ctx, ctx->in_line[i], "inbound %s needs forward = HOST:PORT or sni routes", ib->name);
			return;
		}
		const struct listen_addr *own[3] = { cfg->listen, cfg->socks_listen, cfg->tls_listen };
		size_t nown[3] = { cfg->nlisten, cfg->nsocks_listen, cfg->ntls_listen };
		for (int k = 0; k < 3; k++)
			for (size_t l = 0; l < nown[k]; l++)
				if (own[k][l].port == ib->listen.port && ipaddr_equal(&own[k][l].ip, &ib->listen.ip)) {
					fail(ctx, ctx->in_key_line[i][K_IN_LISTEN], "listen: the proxy listens there already");
					return;
				}
		for (size_t j = 0; j < i; j++)
			if (cfg->inbound[j].listen.port == ib->listen.port &&
			    ipaddr_equal(&cfg->inbound[j].listen.ip, &ib->listen.ip)) {
				fail(ctx, ctx->in_key_line[i][K_IN_LISTEN], "listen: inbound %s listens there already",
				     cfg->inbound[j].name);
				return;
			}
	}
	if (cfg->admin.port) {
		const struct listen_addr *own[3] = { cfg->listen, cfg->socks_listen, cfg->tls_listen };
		size_t nown[3] = { cfg->nlisten, cfg->nsocks_listen, cfg->ntls_listen };
		bool clash = false;
		for (int k = 0; k < 3; k++)
			for (size_t l = 0; l < nown[k]; l++)
				clash |= own[k][l].port == cfg->admin.port && ipaddr_equal(&own[k][l].ip, &cfg->admin.ip);
		for (size_t i = 0; i < cfg->ninbound; i++)
			clash |= cfg->inbound[i].listen.port == cfg->admin.port &&
				 ipaddr_equal(&cfg->inbound[i].listen.ip, &cfg->admin.ip);
		if (clash) {
			fail(ctx, ctx->key_line[K_ADMIN_LISTEN], "admin_listen is also a proxy listen address");
			return;
		}
	}
	if (egress_pool_init(&cfg->egress, ctx->egress, ctx->negress, ctx->policy) < 0) {
		fail(ctx, ctx->key_line[K_EGRESS], "out of memory");
		return;
	}
	for (size_t i = 0; i < cfg->nusers; i++) {
		struct proxy_user *u = &cfg->users[i];
		struct user_tmp *t = &ctx->utmp[i];
		if (!u->password_hash[0]) {
			fail(ctx, t->line, "user %s has no password_hash (make one with iplock passwd %s)",
			     u->name, u->name);
			return;
		}
		if (t->has_policy && !t->negress) {
			fail(ctx, t->key_line[K_USER_EGRESS_POLICY],
			     "egress_policy for user %s needs its own egress addresses", u->name);
			return;
		}
		if (!t->negress)
			continue;
		u->egress = calloc(1, sizeof(*u->egress));
		if (!u->egress || egress_pool_init(u->egress, t->egress, t->negress,
						   t->has_policy ? t->policy : ctx->policy) < 0) {
			fail(ctx, t->key_line[K_USER_EGRESS], "out of memory");
			return;
		}
	}
}

static const char *load(const char *text, size_t len, const char *name, struct proxy_config **out,
			char *err, size_t errcap)
{
	static _Atomic uint64_t generation;
	struct ini ini;
	struct load_ctx ctx = { .ini = &ini };
	const char *result = NULL;

	*out = NULL;
	ctx.cfg = calloc(1, sizeof(*ctx.cfg));
	if (!ctx.cfg || !(ctx.cfg->allow_destinations = cidr_set_new())) {
		snprintf(err, errcap, "%s: out of memory", name);
		result = err;
		goto out;
	}
	defaults(ctx.cfg);
	if (ini_run(&ini, text, len, &ops, &ctx))
		finish(&ctx);
	result = ini_error(&ini, name, err, errcap);
out:
	if (result) {
		proxy_config_free(ctx.cfg);
	} else {
		ctx.cfg->generation = atomic_fetch_add(&generation, 1) + 1;
		*out = ctx.cfg;
	}
	free(ctx.utmp);
	return result;
}

const char *proxy_config_load_string(const char *text, const char *name, struct proxy_config **out,
				     char *err, size_t errcap)
{
	return load(text, strlen(text), name, out, err, errcap);
}

const char *proxy_config_load(const char *path, struct proxy_config **out, char *err, size_t errcap)
{
	char *text;
	size_t len;

	*out = NULL;
	if (ini_read_file(path, CONFIG_FILE_MAX, &text, &len, err, errcap))
		return err;
	const char *result = load(text, len, path, out, err, errcap);
	free(text);
	return result;
}

void proxy_config_free(struct proxy_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nusers; i++) {
		free(cfg->users[i].allow);
		if (cfg->users[i].egress) {
			egress_pool_free(cfg->users[i].egress);
			free(cfg->users[i].egress);
		}
	}
	free(cfg->users);
	for (size_t i = 0; i < cfg->ninbound; i++) {
		free(cfg->inbound[i].routes);
		cidr_set_free(cfg->inbound[i].allow);
	}
	egress_pool_free(&cfg->egress);
	cidr_set_free(cfg->allow_destinations);
	cidr_set_free(cfg->trusted_balancers);
	free(cfg);
}

void listen_addr_format(const struct listen_addr *a, char *out, size_t cap)
{
	char ip[IPADDR_STRLEN];

	ipaddr_format(&a->ip, ip, sizeof(ip));
	snprintf(out, cap, a->ip.family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
}
