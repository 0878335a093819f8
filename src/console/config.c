/* config.c (console): parsing of console.ini (config.h). The route table comes from the
 * store's shared route code (store/routes.h), read from the gate's own INI file. */
#include "console/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ini.h"
#include "net/addr.h"
#include "net/host.h"
#include "store/store.h"

struct parse_ctx {
	struct console_config *cfg;
	const char *dir;
	bool stripe;            /* routes = stripe: the built-in table after every [route] */
	bool gate_file;         /* reading a gate's INI: only its routes are looked at */
	struct route_acc route;
	enum { SEC_NONE = 0, SEC_CONSOLE, SEC_GATE, SEC_ROUTE, SEC_OTHER } section;
	char includes[4][4096]; /* gate INI files named by routes = */
	size_t n_includes;
	bool have_listen, have_db;
};

static const char *seconds(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	long t;

	errno = 0;
	t = strtol(v, &end, 10);
	if (errno || end == v || *end || t < (long)lo || t > (long)hi)
		return "must be a number of seconds in range";
	*out = (unsigned)t;
	return NULL;
}

static const char *add_egress(struct console_config *cfg, const char *v)
{
	char tmp[4096], *save = NULL;

	if (strlen(v) >= sizeof(tmp))
		return "egress list too long";
	snprintf(tmp, sizeof(tmp), "%s", v);
	for (char *tok = strtok_r(tmp, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		char canon[64];
		const char *e = store_entry_canon(tok, canon, sizeof(canon));
		if (e)
			return e;
		if (strchr(canon, '/'))
			return "egress takes addresses, not ranges";
		if (cfg->n_egress == CONSOLE_EGRESS_MAX)
			return "too many egress addresses (256 at most)";
		char (*nv)[64] = realloc(cfg->egress, (cfg->n_egress + 1) * sizeof(*nv));
		if (!nv)
			return "out of memory";
		cfg->egress = nv;
		snprintf(cfg->egress[cfg->n_egress++], 64, "%s", canon);
	}
	return NULL;
}

static const char *listen_parse(struct console_config *cfg, const char *v)
{
	const char *e = host_listen_parse(v, &cfg->addr, &cfg->addrlen);

	if (e)
		return e;
	snprintf(cfg->listen_text, sizeof(cfg->listen_text), "%s", v);
	return NULL;
}

/* the [console] keys that are one value read into one field */
static const struct ini_key console_keys[] = {
	{ "tls_cert", INI_PATH, offsetof(struct console_config, tls_cert),
	  sizeof(((struct console_config *)0)->tls_cert), 0, 0, NULL },
	{ "tls_key", INI_PATH, offsetof(struct console_config, tls_key),
	  sizeof(((struct console_config *)0)->tls_key), 0, 0, NULL },
};

static const char *on_console(struct parse_ctx *p, const char *name, const char *v)
{
	struct console_config *cfg = p->cfg;
	const char *e;

	if (!strcmp(name, "listen")) {
		p->have_listen = true;
		return listen_parse(cfg, v);
	}
	if (ini_table_read(console_keys, sizeof(console_keys) / sizeof(console_keys[0]), cfg, p->dir,
			   name, v, &e))
		return e;
	if (!strcmp(name, "db")) {
		p->have_db = true;
		if (store_is_remote(v))
			snprintf(cfg->db, sizeof(cfg->db), "%s", v);
		else
			ini_path_rel(p->dir, v, false, cfg->db, sizeof(cfg->db));
		return NULL;
	}
	if (!strcmp(name, "session_idle"))
		return seconds(v, 1, 86400, &cfg->session_idle_s) ?
		       "session_idle must be 1-86400 seconds" : NULL;
	if (!strcmp(name, "session_absolute"))
		return seconds(v, 1, 30 * 86400, &cfg->session_absolute_s) ?
		       "session_absolute must be 1-2592000 seconds" : NULL;
	if (!strcmp(name, "egress"))
		return add_egress(cfg, v);
	if (!strcmp(name, "routes")) {
		char tmp[4096], *save = NULL;
		if (strlen(v) >= sizeof(tmp))
			return "routes: value too long";
		snprintf(tmp, sizeof(tmp), "%s", v);
		for (char *t = strtok_r(tmp, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
			if (!strcmp(t, "stripe")) {
				p->stripe = true;
			} else {
				if (p->n_includes == 4)
					return "routes: at most 4 gate files";
				ini_path_rel(p->dir, t, false, p->includes[p->n_includes++],
					     sizeof(p->includes[0]));
			}
		}
		return NULL;
	}
	return "unknown key in [console]";
}

/* A header ends the route before it (checked whole, at its own line) and starts the next. */
static const char *on_section(struct ini *ini, void *user, const char *name, size_t len)
{
	struct parse_ctx *p = user;
	const char *e;

	gate_route_acc_end(&p->route, &p->cfg->routes, ini);
	if (gate_route_acc_begin(&p->route, name, len, ini_line(ini), &e)) {
		if (e)
			return e;
		p->section = SEC_ROUTE;
	} else if (len == 7 && !memcmp(name, "console", 7)) {
		p->section = SEC_CONSOLE;
	} else if (len == 4 && !memcmp(name, "gate", 4)) {
		p->section = SEC_GATE;
	} else {
		p->section = SEC_OTHER;   /* reported at its first key, with the section's name */
	}
	return NULL;
}

static const char *on_key(struct ini *ini, void *user, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	const char *e;

	if (p->section == SEC_ROUTE)
		return (e = ini_once(ini, name)) ? e : gate_route_acc_key(&p->route, name, value);
	if (p->gate_file) {
		/* a gate's file: its routes = stripe counts, every other key is the gate's */
		if (p->section == SEC_GATE && !strcmp(name, "routes") && !strcmp(value, "stripe"))
			p->stripe = true;
		return NULL;
	}
	if (p->section == SEC_CONSOLE) {
		/* egress and routes add to a list; every other key is said once */
		if (strcmp(name, "egress") && strcmp(name, "routes") && (e = ini_once(ini, name)))
			return e;
		return on_console(p, name, value);
	}
	return "unknown section (use [console] and [route NAME])";
}

static const struct ini_ops console_ops = {
	.section = on_section, .key = on_key, .section_in_errors = true,
};

#define CONSOLE_FILE_MAX (1 << 20)

static const char *parse_file(struct parse_ctx *p, const char *path, char *err, size_t cap)
{
	struct ini ini;
	char *text = NULL;
	size_t len;

	p->section = SEC_NONE;
	if (ini_read_file(path, CONSOLE_FILE_MAX, &text, &len, err, cap))
		return err;
	if (ini_run(&ini, text, len, &console_ops, p))
		gate_route_acc_end(&p->route, &p->cfg->routes, &ini);
	free(text);
	return ini_error(&ini, path, err, cap);
}

const char *console_config_load(const char *path, struct console_config *cfg, char *err,
				size_t cap)
{
	char dir[4096];
	struct parse_ctx p = { .cfg = cfg, .dir = dir };
	const char *e;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	ini_dir_of(path, dir, sizeof(dir));
	cfg->session_idle_s = 1800;
	cfg->session_absolute_s = 12 * 3600;
	errno = 0;
	if ((e = parse_file(&p, path, err, cap)))
		return e;
	if (!p.have_listen) {
		snprintf(err, cap, "%s: [console] listen = ADDR:PORT is required", path);
		return err;
	}
	if (!p.have_db) {
		snprintf(err, cap, "%s: [console] db = is required (the gate's key store)", path);
		return err;
	}
	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		snprintf(err, cap, "%s: [console] tls_cert and tls_key go together", path);
		return err;
	}
	if (cfg->session_absolute_s < cfg->session_idle_s) {
		snprintf(err, cap, "%s: [console] session_absolute must not be below session_idle", path);
		return err;
	}
	/* the gate files' own [route]s, in the order named, then the built-in table */
	p.gate_file = true;
	for (size_t i = 0; i < p.n_includes; i++) {
		char inc[4096];
		snprintf(inc, sizeof(inc), "%s", p.includes[i]);
		ini_dir_of(inc, dir, sizeof(dir));
		if ((e = parse_file(&p, inc, err, cap)))
			return e;
	}
	if (p.stripe) {
		gate_routes_add_stripe(&cfg->routes, &e);
		if (e) {
			snprintf(err, cap, "%s: routes = stripe: %s", path, e);
			return err;
		}
	}
	return NULL;
}

void console_config_free(struct console_config *cfg)
{
	gate_routes_free(&cfg->routes);
	free(cfg->egress);
	cfg->egress = NULL;
	cfg->n_egress = 0;
}
