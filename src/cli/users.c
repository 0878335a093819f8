/* users.c: `iplock users`: the proxy users kept in the store (`[proxy] users_db`), their plans,
 * usage and the fleet's egress addresses. Only parses arguments and prints: every rule is the
 * store's (store/users.c) and the proxy's (fleet_user_check). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/secret.h"
#include "net/host.h"
#include "proxy/auth.h"
#include "proxy/config.h"
#include "proxy/fleet.h"
#include "store/users.h"

#define PASSWORD_LEN 24

static const char usage_text[] =
	"usage: iplock users --db PATH [--json] COMMAND ...\n"
	"\n"
	"Manages the proxy's users in the store that every node of a proxy fleet reads\n"
	"([proxy] users_db): passwords, plans, usage, the fleet's egress addresses (docs/fleet.md).\n"
	"\n"
	"  add NAME [--allow RULES] [--egress ADDRS] [--requests-per-month N]\n"
	"      [--bytes-per-month N] [--max-conns N] [--host H] [--port P]\n"
	"                         a new user with a random password: the proxy URL is printed once\n"
	"  list                   every user with plan, destinations and pool\n"
	"  show NAME              one user\n"
	"  remove NAME            the user stops working; its open tunnels are closed\n"
	"  allow NAME RULES...    destination rules (api.stripe.com:443 *.x.com:443 ...);\n"
	"                         --any: every destination\n"
	"  egress NAME ADDRS...   the user's own egress pool; --global: the proxy's pool\n"
	"  rotate NAME [--keep-old now|90s|30m|24h|7d] [--host H] [--port P]\n"
	"                         a new password (URL printed once); the old one keeps working\n"
	"                         for the overlap (default now), then stops\n"
	"  plan NAME [--requests-per-month N] [--bytes-per-month N] [--max-conns N]\n"
	"                         limits (0 = unlimited); over a monthly limit: HTTP 429, SOCKS 0x02\n"
	"  usage NAME [--month YYYY-MM]   requests and bytes by egress address (default: now)\n"
	"  egress-ips             every proxy node's egress addresses, health and heartbeat\n"
	"\n"
	"  --db PATH     the store: a SQLite file or postgresql://... (the proxy's users_db)\n"
	"  --json        machine-readable output\n"
	"  -h, --help    this text\n"
	"\n"
	"Lists (RULES, ADDRS) may be separate arguments or joined with commas.\n"
	"Every change is audited (iplock keys --db PATH audit) with the OS user running it.\n"
	"\n"
	"Exit status: 0 done; 1 bad input; 2 bad usage; 3 database error.\n";

struct opts {
	const char *db;
	bool json;
	const char *host;
	uint16_t port;
	char actor[128];
};

static int usage_err(const char *msg, const char *arg)
{
	cli_errorf("iplock users: %s%s%s (see iplock users --help)\n", msg, arg ? ": " : "",
		   arg ? arg : "");
	return 2;
}

static int input_err(const char *msg, const char *arg)
{
	cli_errorf("iplock users: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	return 1;
}

static int db_err(struct store *st, int rc)
{
	cli_errorf("iplock users: %s\n", store_errmsg(st));
	return rc == -EIO || rc == -ENOMEM ? 3 : 1;
}

static bool num_parse(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* Joins arguments (each may be a comma list) into one space-separated list. */
static int join_list(char *out, size_t cap, char **argv, int argc)
{
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < argc; i++)
		for (const char *p = argv[i]; *p;) {
			size_t l = strcspn(p, ", \t");
			if (l) {
				if (o + l + 2 > cap)
					return -ENOSPC;
				if (o)
					out[o++] = ' ';
				memcpy(out + o, p, l);
				o += l;
				out[o] = '\0';
			}
			p += l;
			p += strspn(p, ", \t");
		}
	return 0;
}

static void print_url(const struct opts *o, const char *name, const char *pw)
{
	bool v6 = strchr(o->host, ':') != NULL;

	printf("http://%s:%s@%s%s%s:%u\n", name, pw, v6 ? "[" : "", o->host, v6 ? "]" : "", o->port);
}

/* A new random password and its hash; 0 or an exit status. */
static int new_password(char *pw, char *hash, size_t hcap)
{
	if (secret_random_alnum(pw, PASSWORD_LEN) < 0)
		return input_err("no randomness available", NULL);
	pw[PASSWORD_LEN] = '\0';
	if (auth_hash_password(pw, PASSWORD_LEN, hash, hcap) < 0)
		return input_err("hashing failed", NULL);
	return 0;
}

static void print_user(const struct opts *o, const struct store_user *u)
{
	if (o->json) {
		json_t *j = store_user_json(u);
		if (j)
			cli_json_print(j, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(j);
		return;
	}
	printf("%s\n  destinations: %s\n  egress: %s\n  plan: %" PRId64 " requests/month, %" PRId64
	       " bytes/month, %" PRId64 " connections (0 = unlimited)\n", u->name,
	       u->allow[0] ? u->allow : "any", u->egress[0] ? u->egress : "the proxy's pool",
	       u->req_month, u->bytes_month, u->max_conns);
	if (u->old_hash[0] && u->old_expires > (int64_t)time(NULL))
		printf("  old password works until %" PRId64 " (unix)\n", u->old_expires);
}

/* --requests-per-month/--bytes-per-month/--max-conns at argv[*i]: true when taken. */
static int plan_opt(int argc, char **argv, int *i, int64_t *req, int64_t *bytes, int64_t *conns,
		    bool *taken)
{
	const char *a = argv[*i];
	int64_t *dst = !strcmp(a, "--requests-per-month") ? req : !strcmp(a, "--bytes-per-month") ?
		       bytes : !strcmp(a, "--max-conns") ? conns : NULL;

	*taken = false;
	if (!dst)
		return 0;
	if (*i + 1 >= argc)
		return usage_err("missing value for", a);
	if (!num_parse(argv[++*i], dst))
		return input_err("not a non-negative number", argv[*i]);
	if (dst == conns && *dst > 10000000)
		return input_err("--max-conns must be 0-10000000", argv[*i]);
	*taken = true;
	return 0;
}

static int host_opt(struct opts *o, int argc, char **argv, int *i, bool *taken)
{
	const char *a = argv[*i];

	*taken = false;
	if (strcmp(a, "--host") && strcmp(a, "--port"))
		return 0;
	if (*i + 1 >= argc)
		return usage_err("missing value for", a);
	const char *v = argv[++*i];
	if (a[2] == 'h') {
		struct host h;
		if (host_parse(v, strlen(v), &h))
			return input_err("bad host", v);
		o->host = v;
	} else if (port_parse(v, strlen(v), &o->port)) {
		return input_err("bad port", v);
	}
	*taken = true;
	return 0;
}

static int cmd_add(struct store *st, struct opts *o, int argc, char **argv)
{
	struct store_user u;
	char pw[PASSWORD_LEN + 1];
	const char *why;
	int rc;

	memset(&u, 0, sizeof(u));
	if (argc < 2)
		return usage_err("add needs a user NAME", NULL);
	if (!proxy_user_name_valid(argv[1], strlen(argv[1])))
		return input_err("NAME must be 1-64 of A-Z a-z 0-9 . _ - (no '+')", argv[1]);
	snprintf(u.name, sizeof(u.name), "%s", argv[1]);
	for (int i = 2; i < argc; i++) {
		bool taken;
		if ((rc = plan_opt(argc, argv, &i, &u.req_month, &u.bytes_month, &u.max_conns, &taken)) ||
		    taken)
			if (rc)
				return rc;
		if (taken)
			continue;
		if ((rc = host_opt(o, argc, argv, &i, &taken)))
			return rc;
		if (taken)
			continue;
		if ((!strcmp(argv[i], "--allow") || !strcmp(argv[i], "--egress")) && i + 1 < argc) {
			bool allow = argv[i][2] == 'a';
			i++;
			if (join_list(allow ? u.allow : u.egress, sizeof(u.allow), &argv[i], 1))
				return input_err("list too long", NULL);
			continue;
		}
		return usage_err("unknown or incomplete option", argv[i]);
	}
	if ((why = fleet_lists_check(u.allow, u.egress)))
		return input_err(why, u.allow[0] ? u.allow : u.egress);
	if ((rc = new_password(pw, u.hash, sizeof(u.hash))))
		return rc;
	if ((rc = store_user_add(st, &u, o->actor))) {
		OPENSSL_cleanse(pw, sizeof(pw));
		return db_err(st, rc);
	}
	/* the only time the password exists outside the client's hands */
	print_url(o, u.name, pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	return 0;
}

static int cmd_list(struct store *st, struct opts *o)
{
	struct store_user *v;
	size_t n;
	int rc = store_user_list(st, &v, &n);

	if (rc)
		return db_err(st, rc);
	if (o->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, store_user_json(&v[i]));
		cli_json_print(a, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(a);
	} else {
		for (size_t i = 0; i < n; i++)
			print_user(o, &v[i]);
		if (!n)
			printf("no users\n");
	}
	free(v);
	return 0;
}

static int cmd_rotate(struct store *st, struct opts *o, int argc, char **argv)
{
	char pw[PASSWORD_LEN + 1], hash[AUTH_HASH_MAX];
	int64_t keep = 0;
	int rc;

	for (int i = 2; i < argc; i++) {
		bool taken;
		if ((rc = host_opt(o, argc, argv, &i, &taken)))
			return rc;
		if (taken)
			continue;
		if (!strcmp(argv[i], "--keep-old") && i + 1 < argc) {
			const char *why = store_duration_parse(argv[++i], &keep);
			if (why)
				return input_err(why, argv[i]);
			continue;
		}
		return usage_err("unknown or incomplete option", argv[i]);
	}
	if ((rc = new_password(pw, hash, sizeof(hash))))
		return rc;
	if ((rc = store_user_rotate(st, argv[1], hash, keep, o->actor))) {
		OPENSSL_cleanse(pw, sizeof(pw));
		return db_err(st, rc);
	}
	print_url(o, argv[1], pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	return 0;
}

static int cmd_usage(struct store *st, struct opts *o, int argc, char **argv)
{
	int64_t from, to;
	struct store_usage *v;
	struct store_user u;
	size_t n;
	int rc;

	store_month_of((int64_t)time(NULL), &from, &to);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--month") && i + 1 < argc) {
			const char *why = store_month_parse(argv[++i], &from, &to);
			if (why)
				return input_err(why, argv[i]);
			continue;
		}
		return usage_err("unknown or incomplete option", argv[i]);
	}
	if ((rc = store_user_get(st, argv[1], &u)))
		return db_err(st, rc);
	if ((rc = store_proxy_usage_get(st, argv[1], from, to, &v, &n)))
		return db_err(st, rc);
	/* per egress address over the month, and the month's total */
	struct { char egress[STORE_ADDR_MAX]; int64_t r, up, down; } agg[64];
	size_t na = 0;
	int64_t tr = 0, tu = 0, td = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < na && strcmp(agg[k].egress, v[i].egress); k++)
			;
		if (k == na && na < sizeof(agg) / sizeof(agg[0])) {
			memset(&agg[na], 0, sizeof(agg[0]));
			snprintf(agg[na].egress, sizeof(agg[na].egress), "%s", v[i].egress);
			na++;
		}
		if (k < na) {
			agg[k].r += v[i].requests;
			agg[k].up += v[i].bytes_up;
			agg[k].down += v[i].bytes_down;
		}
		tr += v[i].requests;
		tu += v[i].bytes_up;
		td += v[i].bytes_down;
	}
	time_t ft = (time_t)from;
	struct tm tm;
	char month[16];
	gmtime_r(&ft, &tm);
	strftime(month, sizeof(month), "%Y-%m", &tm);
	if (o->json) {
		json_t *j = json_object(), *eg = json_array(), *hours = json_array();
		for (size_t k = 0; k < na; k++)
			json_array_append_new(eg, json_pack("{s:s,s:I,s:I,s:I}", "egress", agg[k].egress,
							    "requests", (json_int_t)agg[k].r, "bytes_up",
							    (json_int_t)agg[k].up, "bytes_down",
							    (json_int_t)agg[k].down));
		for (size_t i = 0; i < n; i++)
			json_array_append_new(hours, json_pack("{s:I,s:s,s:I,s:I,s:I}", "hour",
							       (json_int_t)v[i].hour, "egress", v[i].egress,
							       "requests", (json_int_t)v[i].requests,
							       "bytes_up", (json_int_t)v[i].bytes_up,
							       "bytes_down", (json_int_t)v[i].bytes_down));
		json_object_set_new(j, "user", json_string(u.name));
		json_object_set_new(j, "month", json_string(month));
		json_object_set_new(j, "requests", json_integer(tr));
		json_object_set_new(j, "bytes_up", json_integer(tu));
		json_object_set_new(j, "bytes_down", json_integer(td));
		json_object_set_new(j, "requests_per_month", json_integer(u.req_month));
		json_object_set_new(j, "bytes_per_month", json_integer(u.bytes_month));
		json_object_set_new(j, "by_egress", eg);
		json_object_set_new(j, "hours", hours);
		cli_json_print(j, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(j);
	} else {
		printf("%s %s: %" PRId64 " requests, %" PRId64 " bytes up, %" PRId64 " bytes down\n",
		       u.name, month, tr, tu, td);
		if (u.req_month || u.bytes_month)
			printf("  plan: %" PRId64 " requests, %" PRId64 " bytes (0 = unlimited)\n",
			       u.req_month, u.bytes_month);
		for (size_t k = 0; k < na; k++)
			printf("  from %s: %" PRId64 " requests, %" PRId64 " up, %" PRId64 " down\n",
			       agg[k].egress[0] ? agg[k].egress : "-", agg[k].r, agg[k].up, agg[k].down);
	}
	free(v);
	return 0;
}

static int cmd_egress_ips(struct store *st, struct opts *o)
{
	struct store_egress *v;
	size_t n;
	int rc = store_egress_list(st, &v, &n);
	int64_t now = (int64_t)time(NULL);

	if (rc)
		return db_err(st, rc);
	if (o->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:s,s:I,s:I}", "node", v[i].node,
							   "addr", v[i].addr, "healthy", v[i].healthy,
							   "verdict", v[i].verdict, "checked",
							   (json_int_t)v[i].checked, "heartbeat",
							   (json_int_t)v[i].heartbeat));
		cli_json_print(a, JSON_COMPACT);
		json_decref(a);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%-40s %-16s %-14s heartbeat %" PRId64 " s ago\n", v[i].addr, v[i].node,
			       v[i].verdict, now - v[i].heartbeat);
		if (!n)
			printf("no proxy node has reported yet\n");
	}
	free(v);
	return 0;
}

int users_main(int argc, char **argv)
{
	struct opts o = { .host = "127.0.0.1", .port = 3128 };
	struct store *st = NULL;
	char *args[256];
	int na = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--db")) {
			if (i + 1 >= argc)
				return usage_err("missing value for", "--db");
			o.db = argv[++i];
		} else if (!strcmp(argv[i], "--json")) {
			o.json = true;
		} else if (na < (int)(sizeof(args) / sizeof(args[0]))) {
			args[na++] = argv[i];
		} else {
			return usage_err("too many arguments", NULL);
		}
	}
	if (!o.db)
		return usage_err("the store is required (--db PATH)", NULL);
	if (!na)
		return usage_err("missing COMMAND", NULL);
	const char *c = args[0];
	static const char *const with_name[] = { "add", "show", "remove", "allow", "egress", "rotate",
						 "plan", "usage" };
	bool known = !strcmp(c, "list") || !strcmp(c, "egress-ips");
	for (size_t i = 0; i < sizeof(with_name) / sizeof(with_name[0]); i++)
		if (!strcmp(c, with_name[i])) {
			known = true;
			if (na < 2)
				return usage_err("missing user NAME after", c);
			if (!proxy_user_name_valid(args[1], strlen(args[1])))
				return input_err("NAME must be 1-64 of A-Z a-z 0-9 . _ - (no '+')", args[1]);
		}
	if (!known)
		return usage_err("unknown command", c);
	if ((!strcmp(c, "list") || !strcmp(c, "egress-ips")) && na > 1)
		return usage_err("unexpected argument", args[1]);
	store_actor_default(o.actor, sizeof(o.actor));
	if ((rc = store_open(o.db, &st))) {
		cli_errorf("iplock users: %s\n", store_errmsg(NULL));
		return 3;
	}
	if (!strcmp(c, "add")) {
		rc = cmd_add(st, &o, na, args);
	} else if (!strcmp(c, "list")) {
		rc = cmd_list(st, &o);
	} else if (!strcmp(c, "show")) {
		struct store_user u;
		if (na > 2)
			rc = usage_err("unexpected argument", args[2]);
		else if ((rc = store_user_get(st, args[1], &u)))
			rc = db_err(st, rc);
		else
			print_user(&o, &u);
	} else if (!strcmp(c, "remove")) {
		if (na > 2)
			rc = usage_err("unexpected argument", args[2]);
		else if ((rc = store_user_remove(st, args[1], o.actor)))
			rc = db_err(st, rc);
		else
			printf("removed %s\n", args[1]);
	} else if (!strcmp(c, "allow") || !strcmp(c, "egress")) {
		bool allow = c[0] == 'a';
		char list[STORE_USER_LIST_MAX];
		const char *why;
		bool clear = na == 3 && !strcmp(args[2], allow ? "--any" : "--global");
		if (na < 3)
			rc = usage_err(allow ? "allow needs RULES or --any" : "egress needs ADDRS or --global",
				       NULL);
		else if (!clear && join_list(list, sizeof(list), &args[2], na - 2))
			rc = input_err("list too long", NULL);
		else if (!clear && args[2][0] == '-')
			rc = usage_err("unknown option", args[2]);
		else if (!clear && (why = fleet_lists_check(allow ? list : "", allow ? "" : list)))
			rc = input_err(why, list);
		else if ((rc = allow ? store_user_set_allow(st, args[1], clear ? "" : list, o.actor) :
			       store_user_set_egress(st, args[1], clear ? "" : list, o.actor)))
			rc = db_err(st, rc);
		else
			printf("%s of %s: %s\n", allow ? "destinations" : "egress", args[1],
			       clear ? (allow ? "any" : "the proxy's pool") : list);
	} else if (!strcmp(c, "rotate")) {
		rc = cmd_rotate(st, &o, na, args);
	} else if (!strcmp(c, "plan")) {
		int64_t req = -1, bytes = -1, conns = -1;
		bool any = false;
		rc = 0;
		for (int i = 2; i < na && !rc; i++) {
			bool taken;
			rc = plan_opt(na, args, &i, &req, &bytes, &conns, &taken);
			if (!rc && !taken)
				rc = usage_err("unknown or incomplete option", args[i]);
			any |= taken;
		}
		if (!rc && !any)
			rc = usage_err("plan needs --requests-per-month, --bytes-per-month or --max-conns",
				       NULL);
		if (!rc && (rc = store_user_plan(st, args[1], req, bytes, conns, o.actor)))
			rc = db_err(st, rc);
		if (!rc) {
			struct store_user u;
			if (!store_user_get(st, args[1], &u))
				print_user(&o, &u);
		}
	} else if (!strcmp(c, "usage")) {
		rc = cmd_usage(st, &o, na, args);
	} else {
		rc = cmd_egress_ips(st, &o);
	}
	store_close(st);
	return rc;
}
