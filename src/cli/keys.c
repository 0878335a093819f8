/* keys.c: `iplock keys`: create, list, restrict, rotate, expire and revoke API keys in the
 * SQLite store the gate reads. The full key is printed once, by create and rotate. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "gate/config.h"
#include "store/store.h"


static const char usage_text[] =
	"usage: iplock keys (--db PATH | -c CONFIG) [--json] COMMAND ...\n"
	"\n"
	"Manages the API keys of the gate's key store (an SQLite file or PostgreSQL): create,\n"
	"restrict, rotate, expire, revoke; every change is recorded in the audit log.\n"
	"\n"
	"  create --type secret|restricted|publishable|org [--mode live|test] [--name N]\n"
	"         [--allow ADDR|CIDR]... [--perm RESOURCE=read|write]...\n"
	"                         create a key; prints the full key once\n"
	"  list                   every key (masked), with status and allowlist\n"
	"  show ID                one key\n"
	"  restrict ID [--allow ADDR|CIDR]... [--remove ADDR|CIDR]... [--clear] [--report|--enforce]\n"
	"                         change the IP allowlist (empty list = any address);\n"
	"                         --allow/--remove take one entry or a list: 10.0.0.0/8,192.0.2.7;\n"
	"                         --report: outside the list is allowed but counted and flagged\n"
	"                         (Iplock-Ip-Validation: would-refuse); --enforce: refused again\n"
	"  perm ID RESOURCE=none|read|write...   set permissions of a restricted key\n"
	"  rotate ID [--expire-old now|1h|24h|7d|MINUTES]\n"
	"                         new key with the same settings; old one expires (max 7d)\n"
	"  expire ID              expire a key now\n"
	"  revoke ID [--reason R] revoke a key now\n"
	"  audit                  the change log\n"
	"ID is a key id (key_...) or the key's full text (found by its SHA-256).\n"
	"\n"
	"  --db PATH     the key store (created when missing)\n"
	"  -c CONFIG     the gate's config: the store from [gate] db=, and permissions are\n"
	"                checked against the resources of its [route] table\n"
	"  --json        machine-readable output\n"
	"The audit log records the OS user running the command.\n"
	"Exit status: 0 done; 1 bad input (unknown key, malformed address, unknown resource,\n"
	"value out of range, bad gate config); 2 bad usage; 3 database error.\n";

/* A growable list of strings (allowlist entries split out of the arguments). */
struct strlist {
	char **v;
	size_t n, cap;
};

#define KEYS_LIST_MAX 100000   /* entries in one command: far above any real allowlist */

struct opts {
	const char *db;
	const char *config;
	bool json;
	/* permissions: at most one per argument, so sized by argc */
	struct key_perm *perms;
	/* allowlist entries (--allow, --remove): an argument may hold a list */
	struct strlist list_a, list_b;
	/* the gate's route table when -c gave its config, else NULL */
	struct gate_config *gate;
	char actor[128];
};

/* Bad usage: the command line does not have the shape --help gives. Exit status 2. */
static int usage_err(const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	cli_errorf("iplock keys: %s (see iplock keys --help)\n", msg);
	return 2;
}

/* Bad input: the shape is right but a value is refused. Exit status 1. */
static int input_err(const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	cli_errorf("iplock keys: %s\n", msg);
	return 1;
}

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Adds every entry of arg, a list separated by commas and/or spaces (as verify --expect and
 * the config's lists are). Returns 0 or an exit status. */
static int strlist_add(struct strlist *l, const char *opt, const char *arg)
{
	size_t added = 0;

	for (const char *s = arg; *s;) {
		size_t len = strcspn(s, ", \t");
		if (len) {
			if (l->n >= KEYS_LIST_MAX)
				return input_err("too many entries in one command%s", NULL);
			if (l->n == l->cap) {
				size_t ncap = l->cap ? l->cap * 2 : 16;
				char **nv = realloc(l->v, ncap * sizeof(*nv));
				if (!nv)
					return input_err("out of memory%s", NULL);
				l->v = nv;
				l->cap = ncap;
			}
			if (!(l->v[l->n] = strndup(s, len)))
				return input_err("out of memory%s", NULL);
			l->n++;
			added++;
		}
		s += len;
		s += strspn(s, ", \t");
	}
	if (!added)
		return input_err("%s needs an address or CIDR (or a list: 10.0.0.0/8,192.0.2.7)", opt);
	return 0;
}

/* The gate's config for -c: the store path (relative to the config, as the gate reads it)
 * and the route table, read by the gate's own parser. */
static int gate_config_read(struct opts *o)
{
	char err[512];

	if (!(o->gate = calloc(1, sizeof(*o->gate))))
		return input_err("out of memory%s", NULL);
	if (gate_config_load(o->config, o->gate, err, sizeof(err)))
		return input_err("%s", err);
	return 0;
}

/* With the gate's route table known, a resource must be one of its routes' resources so a
 * typo is caught here, not by a 403 later. Removing (none) is always allowed. */
static int perm_resource_check(const struct opts *o, const struct key_perm *p)
{
	const struct gate_routes *r = o->gate ? &o->gate->routes : NULL;
	char known[1024] = "";
	size_t kl = 0, nknown = 0;

	if (!r || p->level == PERM_NONE)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].resource, p->resource))
			return 0;
	for (size_t i = 0; i < r->n; i++) {
		const char *res = r->v[i].resource;
		bool seen = !res[0];
		for (size_t j = 0; j < i && !seen; j++)
			seen = !strcmp(r->v[j].resource, res);
		if (seen)
			continue;
		nknown++;
		if (kl < sizeof(known))
			kl += (size_t)snprintf(known + kl, sizeof(known) - kl, "%s%s", kl ? ", " : "",
					       res);
	}
	if (!nknown) {
		cli_errorf("iplock keys: unknown resource '%s': the gate's routes (%s) name no "
			   "resource\n", p->resource, o->config);
		return 1;
	}
	cli_errorf("iplock keys: unknown resource '%s': the gate's routes (%s) know %s\n",
		   p->resource, o->config, known);
	return 1;
}

static const char *key_status(const struct key_info *k, char *buf, size_t cap)
{
	time_t now = time(NULL);

	if (k->revoked_at)
		return "revoked";
	if (k->expires_at && k->expires_at <= now)
		return "expired";
	if (k->expires_at) {
		int64_t left = k->expires_at - now;
		snprintf(buf, cap, "expires in %" PRId64 "m", (left + 59) / 60);
		return buf;
	}
	return "active";
}

static void fmt_time(int64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm)) {
		snprintf(buf, cap, "-");
		return;
	}
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_json(json_t *j)
{
	cli_json_print(j, JSON_INDENT(2) | JSON_SORT_KEYS);
}

static json_t *key_json_status(const struct key_info *k)
{
	json_t *j = store_key_json(k);
	char buf[64];

	if (j)
		json_object_set_new(j, "status", json_string(key_status(k, buf, sizeof(buf))));
	return j;
}

/* --json: one key with its status. */
static void print_key_json(const struct key_info *k)
{
	json_t *j = key_json_status(k);

	print_json(j);
	json_decref(j);
}

static void print_key_text(const struct key_info *k)
{
	char st[64], c[32], e[32];

	fmt_time(k->created, c, sizeof(c));
	fmt_time(k->expires_at, e, sizeof(e));
	printf("id:           %s\n", k->id);
	printf("key:          %s\n", k->masked);
	printf("type:         %s\n", key_type_name(k->type));
	printf("mode:         %s\n", key_mode_name(k->mode));
	printf("name:         %s\n", k->name);
	printf("status:       %s\n", key_status(k, st, sizeof(st)));
	printf("created:      %s\n", c);
	printf("expires:      %s\n", e);
	if (k->rotated_from[0])
		printf("rotated from: %s\n", k->rotated_from);
	if (k->type == KEY_PUBLISHABLE) {
		printf("allow:        (publishable: any address)\n");
	} else if (!k->n_allow) {
		printf("allow:        any address (no IP allowlist)\n");
	} else {
		for (size_t i = 0; i < k->n_allow; i++)
			printf("%s%s\n", i ? "              " : "allow:        ", k->allow[i]);
	}
	if (k->type == KEY_RESTRICTED) {
		if (!k->n_perms)
			printf("permissions:  none\n");
		for (size_t i = 0; i < k->n_perms; i++)
			printf("%s%s=%s\n", i ? "              " : "permissions:  ",
			       k->perms[i].resource, perm_level_name(k->perms[i].level));
	}
}

/* Prints a key just made by create or rotate, with its full text: the only time it is shown. */
static void print_new_key(const struct opts *o, const struct key_info *k, const char *secret)
{
	if (o->json) {
		json_t *j = key_json_status(k);
		json_object_set_new(j, "secret", json_string(secret));
		print_json(j);
		json_decref(j);
		return;
	}
	print_key_text(k);
	printf("\n%s\n\nThis is the only time the full key is shown: store it now.\n", secret);
}

static int store_err(struct store *st, int rc)
{
	cli_errorf("iplock keys: %s\n", store_errmsg(st));
	return rc == -EIO ? 3 : 1;
}

/* Finds the key an ID argument names: a key id, or the key's full text (by its hash). When
 * found by text, says which id that is, with the key masked. Returns 0 or an exit status. */
static int resolve_key(struct store *st, const char *arg, char id_out[STORE_ID_MAX])
{
	struct key_info k;
	bool by_key = false;
	int rc;

	if ((rc = store_key_find(st, arg, &k, &by_key)))
		return store_err(st, rc);
	if (by_key)
		cli_errorf("iplock keys: %s is %s\n", k.masked, k.id);
	memcpy(id_out, k.id, STORE_ID_MAX);
	store_key_clear(&k);
	return 0;
}

/* ---- subcommands ---- */

/* RESOURCE=LEVEL. Returns 0, or an exit status after saying why: a missing '=' or an unknown
 * level is bad usage (2); a malformed resource name or one the gate's routes do not know is
 * bad input (1). */
static int parse_perm(const struct opts *o, const char *arg, struct key_perm *p, bool allow_none)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;
	const char *levels = allow_none ? "RESOURCE=none|read|write" : "RESOURCE=read|write";

	if (!eq || n == 0 || !perm_level_parse(eq + 1, &p->level) ||
	    (!allow_none && p->level == PERM_NONE)) {
		cli_errorf("iplock keys: bad permission '%s' (%s) (see iplock keys --help)\n", arg,
			   levels);
		return 2;
	}
	if (n > STORE_RESOURCE_MAX)
		return input_err("resource name too long in '%s'", arg);
	memcpy(p->resource, arg, n);
	p->resource[n] = '\0';
	if (!store_resource_valid(p->resource))
		return input_err("bad resource name in '%s' (use a-z, 0-9, '_', '.')", arg);
	return perm_resource_check(o, p);
}

static int cmd_create(struct store *st, struct opts *o, int argc, char **argv)
{
	struct key_spec spec = { .mode = KEY_TEST };
	struct strlist *allow = &o->list_a;
	struct key_perm *perms = o->perms;
	char secret[STORE_KEY_MAX];
	struct key_info k;
	bool have_type = false;
	int rc;

	/* every option takes a value */
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--type") && v) {
			if (!key_type_parse(v, &spec.type))
				return usage_err("unknown key type '%s' (secret|restricted|publishable|org)", v);
			have_type = true;
		} else if (!strcmp(a, "--mode") && v) {
			if (!key_mode_parse(v, &spec.mode))
				return usage_err("unknown mode '%s' (live|test)", v);
		} else if (!strcmp(a, "--name") && v) {
			if (strlen(v) > STORE_NAME_MAX)
				return input_err("name longer than 200 bytes%s", NULL);
			spec.name = v;
		} else if (!strcmp(a, "--allow") && v) {
			if ((rc = strlist_add(allow, a, v)))
				return rc;
		} else if (!strcmp(a, "--perm") && v) {
			if ((rc = parse_perm(o, v, &perms[spec.n_perms], false)))
				return rc;
			spec.n_perms++;
		} else {
			return usage_err(v ? "create: unexpected argument '%s'"
					   : "create: '%s' needs a value", a);
		}
	}
	if (!have_type)
		return usage_err("create needs --type secret|restricted|publishable|org%s", NULL);
	spec.allow = (const char *const *)allow->v;
	spec.n_allow = allow->n;
	spec.perms = perms;
	if ((rc = store_key_create(st, &spec, o->actor, secret, sizeof(secret), &k)))
		return store_err(st, rc);
	print_new_key(o, &k, secret);
	memset(secret, 0, sizeof(secret));
	store_key_clear(&k);
	return 0;
}

static int cmd_list(struct store *st, struct opts *o, int argc, char **argv)
{
	struct key_info *keys;
	size_t n;
	int rc;

	(void)argv;
	if (argc > 1)
		return usage_err("list takes no arguments%s", NULL);
	if ((rc = store_key_list(st, &keys, &n)))
		return store_err(st, rc);
	if (o->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, key_json_status(&keys[i]));
		print_json(arr);
		json_decref(arr);
	} else {
		printf("%-20s %-11s %-4s %-20s %-16s %-20s %s\n", "ID", "TYPE", "MODE", "KEY", "STATUS",
		       "NAME", "ALLOW");
		for (size_t i = 0; i < n; i++) {
			const struct key_info *k = &keys[i];
			char stb[64], allow[96];
			if (k->n_allow == 0)
				snprintf(allow, sizeof(allow), "any");
			else if (k->n_allow == 1)
				snprintf(allow, sizeof(allow), "%s", k->allow[0]);
			else
				snprintf(allow, sizeof(allow), "%s +%zu", k->allow[0], k->n_allow - 1);
			printf("%-20s %-11s %-4s %-20s %-16s %-20.20s %s\n", k->id,
			       key_type_name(k->type), key_mode_name(k->mode), k->masked,
			       key_status(k, stb, sizeof(stb)), k->name, allow);
		}
	}
	store_key_list_free(keys, n);
	return 0;
}

static int show_key(struct store *st, const struct opts *o, const char *id)
{
	struct key_info k;
	int rc;

	if ((rc = store_key_get(st, id, &k)))
		return store_err(st, rc);
	if (o->json) {
		print_key_json(&k);
	} else {
		print_key_text(&k);
	}
	store_key_clear(&k);
	return 0;
}

static int cmd_show(struct store *st, struct opts *o, int argc, char **argv)
{
	char id[STORE_ID_MAX];
	int rc;

	if (argc != 2)
		return usage_err("show needs exactly one key ID%s", NULL);
	if ((rc = resolve_key(st, argv[1], id)))
		return rc;
	return show_key(st, o, id);
}

static int cmd_restrict(struct store *st, struct opts *o, int argc, char **argv)
{
	struct strlist *add = &o->list_a, *rem = &o->list_b;
	bool clear = false;
	int mode = -1;          /* 1 report-only, 0 enforce, -1 unchanged */
	char id[STORE_ID_MAX];
	struct key_info k;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return usage_err("restrict needs a key ID%s", NULL);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--clear")) {
			clear = true;
		} else if (!strcmp(a, "--report") || !strcmp(a, "--enforce")) {
			int m = !strcmp(a, "--report");
			if (mode >= 0 && mode != m)
				return usage_err("restrict: --report and --enforce exclude each other%s", NULL);
			mode = m;
		} else if (!strcmp(a, "--allow") && v) {
			if ((rc = strlist_add(add, a, v)))
				return rc;
			i++;
		} else if (!strcmp(a, "--remove") && v) {
			if ((rc = strlist_add(rem, a, v)))
				return rc;
			i++;
		} else {
			return usage_err(!strcmp(a, "--allow") || !strcmp(a, "--remove") ?
					 "restrict: '%s' needs a value" : "restrict: unexpected argument '%s'", a);
		}
	}
	if (!clear && !add->n && !rem->n && mode < 0)
		return usage_err("restrict needs --allow, --remove, --clear, --report or --enforce%s", NULL);
	if ((rc = resolve_key(st, argv[1], id)))
		return rc;
	if ((clear || add->n || rem->n) &&
	    (rc = store_key_restrict(st, id, clear, (const char *const *)add->v, add->n,
				     (const char *const *)rem->v, rem->n, o->actor)))
		return store_err(st, rc);
	if (mode >= 0 && (rc = store_key_set_report(st, id, mode == 1, o->actor)))
		return store_err(st, rc);
	if ((rc = store_key_get(st, id, &k)))
		return store_err(st, rc);
	if (o->json) {
		print_key_json(&k);
	} else if (k.n_allow == 0) {
		printf("%s: the IP allowlist is now empty: this key works from ANY address\n", k.id);
	} else {
		printf("%s: allowed from %zu entr%s%s:\n", k.id, k.n_allow, k.n_allow == 1 ? "y" : "ies",
		       k.allow_report ? " (report-only: other addresses are allowed, counted and "
		       "flagged, not refused)" : "");
		for (size_t i = 0; i < k.n_allow; i++)
			printf("  %s\n", k.allow[i]);
	}
	store_key_clear(&k);
	return 0;
}

static int cmd_perm(struct store *st, struct opts *o, int argc, char **argv)
{
	struct key_perm *perms = o->perms;
	size_t n = 0;
	char id[STORE_ID_MAX];
	int rc;

	if (argc < 3 || argv[1][0] == '-')
		return usage_err("perm needs a key ID and RESOURCE=none|read|write%s", NULL);
	for (int i = 2; i < argc; i++) {
		if ((rc = parse_perm(o, argv[i], &perms[n], true)))
			return rc;
		n++;
	}
	if ((rc = resolve_key(st, argv[1], id)))
		return rc;
	/* every change of one command in one transaction: all or nothing, one audit record */
	if ((rc = store_key_perms(st, id, perms, n, o->actor)))
		return store_err(st, rc);
	return show_key(st, o, id);
}

/* now | 1h | 24h | 7d | MINUTES -> seconds; -1 when malformed. */
static int64_t parse_grace(const char *s)
{
	char *end;
	long long v;

	if (!strcmp(s, "now"))
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0 || s[0] == '-' || s[0] == '+')
		return -1;
	if (!*end)
		return v > 100000000 ? -1 : v * 60;
	if (end[1])
		return -1;
	if (v > 100000000)
		return -1;
	switch (*end) {
	case 'm':
		return v * 60;
	case 'h':
		return v * 3600;
	case 'd':
		return v * 86400;
	default:
		return -1;
	}
}

static int cmd_rotate(struct store *st, struct opts *o, int argc, char **argv)
{
	int64_t grace = 0;
	char secret[STORE_KEY_MAX], id[STORE_ID_MAX];
	struct key_info k;
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return usage_err("rotate needs a key ID%s", NULL);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--expire-old") && i + 1 < argc) {
			grace = parse_grace(argv[++i]);
			if (grace < 0)
				return usage_err("bad --expire-old '%s' (now|1h|24h|7d|MINUTES)", argv[i]);
			/* well-formed but out of range: bad input, not bad usage */
			if (grace > STORE_EXPIRE_MAX_S)
				return input_err("--expire-old %s is over the 7-day maximum", argv[i]);
		} else {
			return usage_err(!strcmp(argv[i], "--expire-old") ? "rotate: '%s' needs a value"
					 : "rotate: unexpected argument '%s'", argv[i]);
		}
	}
	if ((rc = resolve_key(st, argv[1], id)))
		return rc;
	if ((rc = store_key_rotate(st, id, grace, o->actor, secret, sizeof(secret), &k)))
		return store_err(st, rc);
	if (!o->json)
		printf("old key %s expires %s\n\n", id, grace ? "after the grace period" : "now");
	print_new_key(o, &k, secret);
	memset(secret, 0, sizeof(secret));
	store_key_clear(&k);
	return 0;
}

static int cmd_expire(struct store *st, struct opts *o, int argc, char **argv)
{
	char id[STORE_ID_MAX];
	int rc;

	if (argc != 2 || argv[1][0] == '-')
		return usage_err("expire needs exactly one key ID%s", NULL);
	if ((rc = resolve_key(st, argv[1], id)))
		return rc;
	if ((rc = store_key_expire(st, id, o->actor)))
		return store_err(st, rc);
	if (!o->json) {
		printf("%s expired\n", id);
		return 0;
	}
	return show_key(st, o, id);
}

static int cmd_revoke(struct store *st, struct opts *o, int argc, char **argv)
{
	const char *reason = NULL;
	char id[STORE_ID_MAX];
	int rc;

	if (argc < 2 || argv[1][0] == '-')
		return usage_err("revoke needs a key ID%s", NULL);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--reason") && i + 1 < argc)
			reason = argv[++i];
		else
			return usage_err(!strcmp(argv[i], "--reason") ? "revoke: '%s' needs a value"
					 : "revoke: unexpected argument '%s'", argv[i]);
	}
	if ((rc = resolve_key(st, argv[1], id)))
		return rc;
	if ((rc = store_key_revoke(st, id, o->actor, reason)))
		return store_err(st, rc);
	if (!o->json) {
		printf("%s revoked\n", id);
		return 0;
	}
	return show_key(st, o, id);
}

struct audit_out {
	const struct opts *o;
	json_t *arr;
};

static int audit_cb(const struct audit_record *r, void *arg)
{
	struct audit_out *a = arg;
	char t[32];

	fmt_time(r->time, t, sizeof(t));
	if (a->o->json) {
		json_t *j = json_object();
		json_object_set_new(j, "seq", json_integer(r->seq));
		json_object_set_new(j, "time", json_integer(r->time));
		json_object_set_new(j, "actor", json_string(r->actor ? r->actor : ""));
		json_object_set_new(j, "key_id", r->key_id ? json_string(r->key_id) : json_null());
		json_object_set_new(j, "action", json_string(r->action ? r->action : ""));
		json_object_set_new(j, "before", r->before ? json_loads(r->before, 0, NULL) : json_null());
		json_object_set_new(j, "after", r->after ? json_loads(r->after, 0, NULL) : json_null());
		json_object_set_new(j, "reason", r->reason ? json_string(r->reason) : json_null());
		json_array_append_new(a->arr, j);
		return 0;
	}
	printf("%s %-10s %-8s %s%s%s\n", t, r->actor ? r->actor : "", r->action ? r->action : "",
	       r->key_id ? r->key_id : "-", r->reason ? "  reason: " : "", r->reason ? r->reason : "");
	if (r->before)
		printf("    before: %s\n", r->before);
	if (r->after)
		printf("    after:  %s\n", r->after);
	return 0;
}

static int cmd_audit(struct store *st, struct opts *o, int argc, char **argv)
{
	struct audit_out a = { .o = o, .arr = o->json ? json_array() : NULL };
	int rc;

	(void)argv;
	if (argc > 1)
		return usage_err("audit takes no arguments%s", NULL);
	rc = store_audit_each(st, audit_cb, &a);
	if (!rc && o->json)
		print_json(a.arr);
	json_decref(a.arr);
	return rc ? store_err(st, rc) : 0;
}

static const struct {
	const char *name;
	int (*run)(struct store *st, struct opts *o, int argc, char **argv);
} subcommands[] = {
	{ "create", cmd_create },
	{ "list", cmd_list },
	{ "show", cmd_show },
	{ "restrict", cmd_restrict },
	{ "perm", cmd_perm },
	{ "rotate", cmd_rotate },
	{ "expire", cmd_expire },
	{ "revoke", cmd_revoke },
	{ "audit", cmd_audit },
};

int keys_main(int argc, char **argv)
{
	struct opts o = { 0 };
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int nrest = 0, rc = 2;
	struct store *st = NULL;

	if (!rest)
		return 1;
	/* global options may appear before or after the subcommand */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			rc = 0;
			goto out;
		} else if (!strcmp(a, "--json")) {
			o.json = true;
		} else if (!strcmp(a, "--db") || !strcmp(a, "-c")) {
			if (i + 1 >= argc) {
				rc = usage_err("%s needs a value", a);
				goto out;
			}
			if (!strcmp(a, "--db"))
				o.db = argv[++i];
			else
				o.config = argv[++i];
		} else {
			rest[nrest++] = argv[i];
		}
	}
	if (nrest == 0) {
		rc = usage_err("missing command%s", NULL);
		goto out;
	}
	if (!o.db && !o.config) {
		rc = usage_err("needs --db PATH or -c CONFIG%s", NULL);
		goto out;
	}
	if (o.config) {
		if ((rc = gate_config_read(&o)))
			goto out;
		if (!o.db)
			o.db = o.gate->db;
	}
	store_actor_default(o.actor, sizeof(o.actor));
	o.perms = calloc((size_t)argc, sizeof(*o.perms));
	if (!o.perms) {
		cli_errorf("iplock keys: out of memory\n");
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (strcmp(rest[0], subcommands[i].name))
			continue;
		if (store_open(o.db, &st)) {
			cli_errorf("iplock keys: %s\n", store_errmsg(NULL));
			rc = 3;
			goto out;
		}
		rc = subcommands[i].run(st, &o, nrest, rest);
		goto out;
	}
	rc = usage_err("unknown command '%s'", rest[0]);
out:
	store_close(st);
	strlist_free(&o.list_a);
	strlist_free(&o.list_b);
	free(o.perms);
	if (o.gate) {
		gate_config_free(o.gate);
		free(o.gate);
	}
	free(rest);
	return rc;
}
