/* config.c: parsing of the gate's INI file (on core/ini).
 * gate/ owns `iplock gate`: its config, the key cache, the decision, usage telemetry and the
 * server (request checks, forward-auth, reverse proxy). It may include core/, net/, http/ and
 * store/, never another product. */
#include "gate/config.h"

#include "core/ini.h"
#include "store/store.h"

#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>


#include "net/host.h"

struct parse_ctx {
	struct gate_config *cfg;
	const char *dir;
	bool have_upstream;
	bool stripe_routes;     /* routes = stripe: the built-in table after the [route]s */
	struct route_acc route;
	enum { SEC_NONE, SEC_GATE, SEC_ROUTE, SEC_OTHER } section;
};

#define GATE_FILE_MAX (4u << 20)    /* a gate config larger than 4 MiB is a mistake */

/* host:port (IP literal or a name resolved now) to a socket address. */
static const char *resolve(const char *v, struct sockaddr_storage *ss, socklen_t *len,
			   uint16_t default_port)
{
	struct host h;
	uint16_t port;
	const char *e = authority_parse(v, strlen(v), &h, &port, default_port);

	if (e)
		return e;
	if (h.kind == HOST_IP) {
		*len = ipaddr_to_sockaddr(&h.ip, port, ss);
		return *len ? NULL : "bad address";
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(h.name, ps, &hints, &res) || !res)
		return "cannot resolve host";
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return NULL;
}

/* upstream = host:port | http://host[:port] | https://host[:port] (a trailing '/' at most). */
static const char *set_upstream(struct gate_config *cfg, const char *v)
{
	size_t n = strlen(v), s = 0;
	uint16_t def = 0, port;
	struct host h;
	char auth[280];

	if (n >= sizeof(auth))
		return "upstream too long";
	const char *sep = strstr(v, "://");
	if (sep) {
		if ((size_t)(sep - v) == 4 && !strncasecmp(v, "http", 4)) {
			def = 80;
		} else if ((size_t)(sep - v) == 5 && !strncasecmp(v, "https", 5)) {
			def = 443;
			cfg->upstream_tls = true;
		} else {
			return "upstream scheme must be http:// or https://";
		}
		s = (size_t)(sep - v) + 3;
	}
	size_t e = n;
	if (e > s && v[e - 1] == '/')
		e--;            /* "https://api:9443/" is the same upstream */
	if (e == s)
		return "upstream needs a host after the scheme";
	const char *slash = memchr(v + s, '/', e - s);
	if (slash || memchr(v + s, '?', e - s) || memchr(v + s, '#', e - s))
		return "upstream must be scheme://host[:port] without a path or query "
		       "(the gate forwards each request's own path)";
	if (memchr(v + s, '@', e - s))
		return "upstream must not carry credentials (user@)";
	memcpy(auth, v + s, e - s);
	auth[e - s] = '\0';
	const char *err = authority_parse(auth, e - s, &h, &port, def);
	if (err)
		return err;
	if (h.kind == HOST_IP)
		ipaddr_format(&h.ip, cfg->upstream_host, sizeof(cfg->upstream_host));
	else
		snprintf(cfg->upstream_host, sizeof(cfg->upstream_host), "%s", h.name);
	return resolve(auth, &cfg->upstream, &cfg->upstream_len, def);
}

static const char *add_listen(struct gate_config *cfg, const char *v)
{
	char tmp[512], *save = NULL, *tok;
	struct gate_listen *l;
	const char *e;

	if (cfg->n_listen == GATE_MAX_LISTEN)
		return "too many listen lines";
	if (strlen(v) >= sizeof(tmp))
		return "listen value too long";
	snprintf(tmp, sizeof(tmp), "%s", v);
	l = &cfg->listen[cfg->n_listen];
	memset(l, 0, sizeof(*l));
	tok = strtok_r(tmp, " \t", &save);
	if (!tok)
		return "listen needs an address";
	snprintf(l->text, sizeof(l->text), "%s", tok);
	if ((e = resolve(tok, &l->addr, &l->addrlen, 0)))
		return e;
	while ((tok = strtok_r(NULL, " \t", &save))) {
		if (!strcmp(tok, "tls"))
			l->tls = true;
		else if (!strcmp(tok, "proxy_protocol=v1"))
			l->pp = PP_V1;
		else if (!strcmp(tok, "proxy_protocol=v2"))
			l->pp = PP_V2;
		else if (!strcmp(tok, "proxy_protocol=off"))
			l->pp = PP_OFF;
		else
			return "unknown listen option (tls, proxy_protocol=v1|v2|off)";
	}
	cfg->n_listen++;
	return NULL;
}

static const char *add_trusted(struct gate_config *cfg, const char *v)
{
	char tmp[4096], *save = NULL, *tok;

	if (strlen(v) >= sizeof(tmp))
		return "trusted_proxies too long";
	snprintf(tmp, sizeof(tmp), "%s", v);
	if (!cfg->trusted && !(cfg->trusted = cidr_set_new()))
		return "out of memory";
	for (tok = strtok_r(tmp, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		struct cidr c;
		const char *e = cidr_parse(tok, strlen(tok), &c);
		if (e)
			return e;
		if (cidr_set_add(cfg->trusted, &c))
			return "out of memory";
	}
	return NULL;
}

#define GATE_KEY(nm, kd, field, lo, hi, e) \
	{ .name = nm, .kind = kd, .off = offsetof(struct gate_config, field), \
	  .size = sizeof(((struct gate_config *)0)->field), .min = lo, .max = hi, .err = e }
#define GATE_CHOICE(nm, field, w, e) \
	{ .name = nm, .kind = INI_CHOICE, .off = offsetof(struct gate_config, field), \
	  .size = sizeof(((struct gate_config *)0)->field), .words = w, .err = e }
/* in the order of their enum values (on_stale: false, true) */
static const char *const stale_words[] = { "serve", "deny", NULL };
static const char *const mode_words[] = { "reverse-proxy", "forward-auth", "both", NULL };
static const char *const path_words[] = { "refuse", "rewrite", NULL };
_Static_assert(GATE_MODE_PROXY == 0 && GATE_MODE_AUTH == 1 && GATE_MODE_BOTH == 2 &&
	       GATE_PATH_REFUSE == 0 && GATE_PATH_REWRITE == 1 &&
	       sizeof(enum gate_mode) == sizeof(int) && sizeof(enum gate_path_norm) == sizeof(int),
	       "the choice tables follow the enums");
/* the [gate] keys that are one value read into one field */
static const struct ini_key gate_keys[] = {
	GATE_KEY("resync", INI_DURATION, resync_ms, 50, 3600000, "resync must be 0.05-3600 seconds"),
	GATE_KEY("max_staleness", INI_UINT, max_staleness_s, 1, 86400 * 7,
		 "max_staleness must be 1-604800 seconds"),
	GATE_KEY("usage", INI_BOOL, usage, 0, 0, "usage must be on or off"),
	GATE_KEY("usage_flush", INI_DURATION, usage_flush_ms, 50, 3600000,
		 "usage_flush must be 0.05-3600 seconds"),
	GATE_KEY("metrics", INI_BOOL, metrics, 0, 0, "metrics must be on or off"),
	GATE_KEY("upstream_ca", INI_PATH_DASH, upstream_ca, 0, 0, NULL),
	GATE_KEY("tls_cert", INI_PATH_DASH, tls_cert, 0, 0, NULL),
	GATE_KEY("tls_key", INI_PATH_DASH, tls_key, 0, 0, NULL),
	GATE_KEY("workers", INI_UINT, workers, 1, 64, "workers must be 1-64"),
	GATE_KEY("header_timeout", INI_UINT, header_timeout_s, 1, 3600,
		 "header_timeout must be 1-3600 seconds"),
	GATE_KEY("idle_timeout", INI_UINT, idle_timeout_s, 1, 86400,
		 "idle_timeout must be 1-86400 seconds"),
	GATE_KEY("drain_timeout", INI_DURATION, drain_timeout_ms, 0, 86400000, NULL),
	GATE_CHOICE("on_stale", stale_deny, stale_words, "on_stale must be serve or deny"),
	GATE_CHOICE("mode", mode, mode_words, "mode must be reverse-proxy, forward-auth or both"),
	GATE_CHOICE("path_normalize", path_norm, path_words,
		    "path_normalize must be refuse or rewrite"),
};

static const char *on_gate(struct parse_ctx *p, const char *name, const char *v)
{
	struct gate_config *cfg = p->cfg;
	const char *e;

	if (ini_table_read(gate_keys, sizeof(gate_keys) / sizeof(gate_keys[0]), cfg, p->dir, name, v,
			   &e))
		return e;
	if (!strcmp(name, "listen"))
		return add_listen(cfg, v);
	if (!strcmp(name, "db")) {
		/* a PostgreSQL connection string is taken as written, a file relative to us */
		if (store_is_remote(v)) {
			if (strlen(v) >= sizeof(cfg->db))
				return "db connection string too long";
			snprintf(cfg->db, sizeof(cfg->db), "%s", v);
		} else {
			ini_path_rel(p->dir, v, true, cfg->db, sizeof(cfg->db));
		}
		return NULL;
	}
	if (!strcmp(name, "upstream")) {
		snprintf(cfg->upstream_text, sizeof(cfg->upstream_text), "%s", v);
		p->have_upstream = true;
		return set_upstream(cfg, v);
	}
	if (!strcmp(name, "auth_path")) {
		if (v[0] != '/' || strlen(v) >= sizeof(cfg->auth_path))
			return "auth_path must be a path starting with '/'";
		snprintf(cfg->auth_path, sizeof(cfg->auth_path), "%s", v);
		return NULL;
	}
	if (!strcmp(name, "trusted_proxies"))
		return add_trusted(cfg, v);
	if (!strcmp(name, "access_log")) {
		if (!strcmp(v, "off"))
			cfg->access_log[0] = '\0';
		else
			ini_path_rel(p->dir, v, true, cfg->access_log, sizeof(cfg->access_log));
		return NULL;
	}
	if (!strcmp(name, "account")) {
		for (const char *c = v; *c; c++)
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || *c == '_'))
				return "account must be letters, digits and '_'";
		snprintf(cfg->account, sizeof(cfg->account), "%s", v);
		return NULL;
	}
	if (!strcmp(name, "routes")) {
		if (strcmp(v, "stripe"))
			return "routes must be stripe (the built-in Stripe table; or use [route NAME])";
		p->stripe_routes = true;
		return NULL;
	}
	return "unknown key in [gate]";
}

static const char *on_route(struct parse_ctx *p, const char *name, const char *v)
{
	return gate_route_acc_key(&p->route, name, v);
}

/* A header ends the route before it (checked whole, at its own line) and starts the next. */
static const char *on_section(struct ini *ini, void *user, const char *name, size_t len)
{
	struct parse_ctx *p = user;
	const char *e;

	gate_route_acc_end(&p->route, &p->cfg->routes, ini);
	if (len == 4 && !memcmp(name, "gate", 4)) {
		p->section = SEC_GATE;
		return NULL;
	}
	if (gate_route_acc_begin(&p->route, name, len, ini_line(ini), &e)) {
		if (e)
			return e;
		p->section = SEC_ROUTE;
		return NULL;
	}
	p->section = SEC_OTHER;
	return NULL;     /* reported at its first key, with the section's name */
}

static const char *on_key(struct ini *ini, void *user, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	const char *e;

	if (p->section == SEC_GATE) {
		/* listen and trusted_proxies add to a list; every other key is said once */
		if (strcmp(name, "listen") && strcmp(name, "trusted_proxies") && (e = ini_once(ini, name)))
			return e;
		return on_gate(p, name, value);
	}
	if (p->section == SEC_ROUTE)
		return (e = ini_once(ini, name)) ? e : on_route(p, name, value);
	return "unknown section (use [gate] and [route NAME])";
}

static const struct ini_ops gate_ops = {
	.section = on_section, .key = on_key, .section_in_errors = true,
};

const char *gate_config_load(const char *path, struct gate_config *cfg, char *err, size_t cap)
{
	char dir[4096], *text = NULL;
	struct parse_ctx p = { .cfg = cfg, .dir = dir };
	struct ini ini;
	size_t len;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	ini_dir_of(path, dir, sizeof(dir));
	snprintf(cfg->auth_path, sizeof(cfg->auth_path), "/_iplock/auth");
	cfg->idle_timeout_s = 60;
	cfg->header_timeout_s = 10;
	cfg->workers = 1;
	cfg->drain_timeout_ms = 30000;
	cfg->resync_ms = 5000;
	cfg->max_staleness_s = 300;
	cfg->usage_flush_ms = 5000;
	if (ini_read_file(path, GATE_FILE_MAX, &text, &len, err, cap))
		return err;
	if (ini_run(&ini, text, len, &gate_ops, &p))
		gate_route_acc_end(&p.route, &p.cfg->routes, &ini);
	free(text);
	if (ini_error(&ini, path, err, cap))
		return err;
	if (p.stripe_routes) {
		/* after the file's own routes: those come first and so take precedence */
		const char *e;
		gate_routes_add_stripe(&cfg->routes, &e);
		if (e) {
			snprintf(err, cap, "%s: routes = stripe: %s", path, e);
			return err;
		}
	}
	if (!cfg->n_listen) {
		snprintf(err, cap, "%s: [gate] needs at least one listen =", path);
		return err;
	}
	if (!cfg->db[0]) {
		snprintf(err, cap, "%s: [gate] needs db =", path);
		return err;
	}
	if (cfg->mode != GATE_MODE_AUTH && !p.have_upstream) {
		snprintf(err, cap, "%s: [gate] needs upstream = (or mode = forward-auth)", path);
		return err;
	}
	if (cfg->upstream_ca[0] && !cfg->upstream_tls) {
		snprintf(err, cap, "%s: [gate] upstream_ca needs an https:// upstream", path);
		return err;
	}
	if (cfg->upstream_ca[0] && access(cfg->upstream_ca, R_OK)) {
		snprintf(err, cap, "%s: [gate] upstream_ca %s: %s", path, cfg->upstream_ca,
			 strerror(errno));
		return err;
	}
	if (cfg->mode == GATE_MODE_AUTH && cfg->path_norm == GATE_PATH_REWRITE) {
		/* the gate only answers yes or no: it cannot change what nginx forwards */
		snprintf(err, cap, "%s: [gate] path_normalize = rewrite needs mode = reverse-proxy "
			 "or both (forward-auth cannot rewrite what the front proxy forwards)", path);
		return err;
	}
	for (int i = 0; i < cfg->n_listen; i++)
		if (cfg->listen[i].tls && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
			snprintf(err, cap, "%s: listen %s has tls but tls_cert/tls_key are not set",
				 path, cfg->listen[i].text);
			return err;
		}
	return NULL;
}

void gate_config_free(struct gate_config *cfg)
{
	cidr_set_free(cfg->trusted);
	cfg->trusted = NULL;
	gate_routes_free(&cfg->routes);
}
