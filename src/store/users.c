/* users.c: the proxy fleet's tables (users.h). Written once over the backends' generic
 * statement (ops->sql, shared with the console), so SQLite and PostgreSQL run the same SQL and the same rules. */
#include "store/users.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/bug.h"
#include "core/ini.h"
#include "store/store_be.h"

#define fail store_fail

#define USER_COLS "name, hash, COALESCE(old_hash, ''), old_expires, allow, egress, req_month, " \
	"bytes_month, max_conns, created, removed_at, gen"

/* One statement through the backends' generic op (ops->sql), each row to row() (NULL cell =
 * SQL NULL; a non-zero return stops). */
static int exec(struct store *st, const char *sql, int n, const char *const *p,
		int (*row)(void *arg, int ncol, const char *const *vals), void *arg)
{
	struct store_rows r;
	const char *vals[16];
	int rc = st->ops->sql(st, sql, p, (size_t)n, row ? &r : NULL);

	if (rc || !row)
		return rc;
	if (BUG_ON(r.ncol > 16)) {
		store_rows_free(&r);
		return fail(st, -EIO, "a statement of users.c has more than 16 columns");
	}
	for (size_t i = 0; i < r.n; i++) {
		for (size_t j = 0; j < r.ncol; j++)
			vals[j] = store_cell(&r, i, j);
		if (row(arg, (int)r.ncol, vals))
			break;
	}
	store_rows_free(&r);
	return 0;
}

static int64_t num(const char *v)
{
	return v ? strtoll(v, NULL, 10) : 0;
}

static void i64(char *out, int64_t v)
{
	snprintf(out, 24, "%" PRId64, v);
}

/* a user's name is its [user NAME] section in the proxy's config: the INI rule, once */
_Static_assert(STORE_USER_NAME_MAX == INI_SECTION_NAME_MAX, "user names are section names");
bool store_user_name_valid(const char *name)
{
	return ini_name_valid(name, strlen(name));
}

/* Text that becomes one line of the proxy's [user] block: only these characters, so no
 * value can start a new key or section there. */
static const char *list_check(const char *s, const char *extra)
{
	if (strlen(s) >= STORE_USER_LIST_MAX)
		return "list too long";
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ' ' || strchr(extra, c)))
			return "unexpected character";
	}
	return NULL;
}

const char *store_user_valid(const struct store_user *u)
{
	if (!store_user_name_valid(u->name))
		return "bad user name (1-64 of A-Z a-z 0-9 . _ -)";
	if (strncmp(u->hash, "pbkdf2-sha256$", 14) || strchr(u->hash, '\n') ||
	    strlen(u->hash) >= STORE_USER_HASH_MAX)
		return "bad password hash";
	if (list_check(u->allow, ".-_:*[]"))
		return "bad destination rules (letters, digits, . - _ : * [ ] and spaces)";
	if (list_check(u->egress, ".:[]"))
		return "bad egress addresses (letters, digits, . : [ ] and spaces)";
	if (u->req_month < 0 || u->bytes_month < 0 || u->max_conns < 0 || u->max_conns > 10000000)
		return "plan limits out of range";
	return NULL;
}

static int check_user(struct store *st, const struct store_user *u)
{
	const char *why = store_user_valid(u);

	return why ? fail(st, -EINVAL, "user %.64s: %s", u->name, why) : 0;
}

/* A row of USER_COLS into a zeroed store_user. */
static void fill_user(void *e, const char *const *v)
{
	struct store_user *u = e;

	store_text_copy(u->name, sizeof(u->name), v[0]);
	store_text_copy(u->hash, sizeof(u->hash), v[1]);
	store_text_copy(u->old_hash, sizeof(u->old_hash), v[2]);
	u->old_expires = num(v[3]);
	store_text_copy(u->allow, sizeof(u->allow), v[4]);
	store_text_copy(u->egress, sizeof(u->egress), v[5]);
	u->req_month = num(v[6]);
	u->bytes_month = num(v[7]);
	u->max_conns = num(v[8]);
	u->created = num(v[9]);
	u->removed_at = num(v[10]);
	u->gen = num(v[11]);
}

/* The rows of a query as an array of sz-byte elements, one per row (vec_query). */
struct row_vec {
	void *v;
	size_t n, cap, sz;
	int err;
	int min_cols;                           /* a row with fewer columns is passed over */
	void (*fill)(void *e, const char *const *v);    /* a row into a zeroed element */
};

/* The next element, zeroed; NULL (and err set) when out of memory. */
static void *vec_next(struct row_vec *rv)
{
	if (store_grow(&rv->v, &rv->cap, rv->n, rv->sz)) {
		rv->err = -ENOMEM;
		return NULL;
	}
	void *e = (char *)rv->v + rv->n++ * rv->sz;
	memset(e, 0, rv->sz);
	return e;
}

static int vec_row(void *arg, int ncol, const char *const *vals)
{
	struct row_vec *rv = arg;
	void *e;

	if (ncol < rv->min_cols)
		return 0;
	if (!(e = vec_next(rv)))
		return 1;
	rv->fill(e, vals);
	return 0;
}

/* One statement whose rows of at least min_cols columns fill() an array of sz-byte elements:
 * 0 with the array in *out (free()) and its length in *cnt, or -errno with both untouched. */
static int vec_query(struct store *st, const char *sql, int n, const char *const *p,
		     int min_cols, void (*fill)(void *e, const char *const *v), size_t sz,
		     void *out, size_t *cnt)
{
	struct row_vec rv = { .sz = sz, .min_cols = min_cols, .fill = fill };
	int rc = exec(st, sql, n, p, vec_row, &rv);

	if (!rc)
		rc = rv.err;
	if (rc) {
		free(rv.v);
		return rc;
	}
	*(void **)out = rv.v;
	*cnt = rv.n;
	return 0;
}

/* Rows of a query returning USER_COLS. */
static int users_query(struct store *st, const char *sql, int n, const char *const *p,
		       struct store_user **out, size_t *cnt)
{
	return vec_query(st, sql, n, p, 12, fill_user, sizeof(**out), out, cnt);
}

/* Any row of the name, removed or not. */
static int row_get(struct store *st, const char *name, struct store_user *out)
{
	const char *p[1] = { name };
	struct store_user *v = NULL;
	size_t n = 0;
	int rc = users_query(st, "SELECT " USER_COLS " FROM proxy_users WHERE name = $1", 1, p,
			     &v, &n);

	if (rc)
		return rc;
	if (!n) {
		free(v);
		return -ENOENT;
	}
	*out = v[0];
	free(v);
	return 0;
}

int store_user_get(struct store *st, const char *name, struct store_user *out)
{
	int rc = row_get(st, name, out);

	if (rc == -ENOENT || (!rc && out->removed_at))
		return fail(st, -ENOENT, "no such user: %.64s", name);
	return rc;
}

int store_user_list(struct store *st, struct store_user **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return users_query(st, "SELECT " USER_COLS " FROM proxy_users WHERE removed_at = 0 "
			   "ORDER BY name", 0, NULL, out, n);
}

int store_user_changed(struct store *st, int64_t after, struct store_user **out, size_t *n,
		       int64_t *max_gen)
{
	char a[24];
	const char *p[1] = { a };
	int rc;

	*out = NULL;
	*n = 0;
	i64(a, after < 0 ? 0 : after);
	if ((rc = users_query(st, "SELECT " USER_COLS " FROM proxy_users WHERE gen > "
			      "CAST($1 AS BIGINT) ORDER BY gen", 1, p, out, n)))
		return rc;
	*max_gen = after;
	for (size_t i = 0; i < *n; i++)
		if ((*out)[i].gen > *max_gen)
			*max_gen = (*out)[i].gen;
	return 0;
}

json_t *store_user_json(const struct store_user *u)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "name", json_string(u->name));
	json_object_set_new(o, "allow", json_string(u->allow));
	json_object_set_new(o, "egress", json_string(u->egress));
	json_object_set_new(o, "requests_per_month", json_integer(u->req_month));
	json_object_set_new(o, "bytes_per_month", json_integer(u->bytes_month));
	json_object_set_new(o, "max_conns", json_integer(u->max_conns));
	json_object_set_new(o, "created", json_integer(u->created));
	json_object_set_new(o, "old_password_expires",
			    u->old_hash[0] && u->old_expires ? json_integer(u->old_expires) :
			    json_null());
	if (u->removed_at)
		json_object_set_new(o, "removed_at", json_integer(u->removed_at));
	return o;
}

/* ---- writing ---- */

static int gen_row(void *arg, int ncol, const char *const *vals)
{
	if (ncol >= 1)
		*(int64_t *)arg = num(vals[0]);
	return 1;
}

/* A version above every user's: PostgreSQL's shared counter (announced at commit), or one
 * more than the table's highest (SQLite: data_version tells readers something changed). */
static int take_gen(struct store *st, int64_t *v)
{
	*v = 0;
	if (st->ops->version_next)
		return st->ops->version_next(st, v);
	return exec(st, "SELECT COALESCE(MAX(gen), 0) + 1 FROM proxy_users", 0, NULL, gen_row, v);
}

static int audit_user(struct store *st, const char *actor, const char *name, const char *action,
		      const struct store_user *before, const struct store_user *after)
{
	json_t *b = before ? store_user_json(before) : NULL, *a = after ? store_user_json(after) : NULL;
	char *bt = b ? json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char *at = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char id[STORE_USER_NAME_MAX + 8];
	int rc;

	json_decref(b);
	json_decref(a);
	snprintf(id, sizeof(id), "user:%s", name);
	if ((before && !bt) || (after && !at))
		rc = -ENOMEM;
	else
		rc = st->ops->audit_add(st, (int64_t)time(NULL), actor && actor[0] ? actor : "unknown",
					id, action, bt, at, NULL);
	free(bt);
	free(at);
	return rc;
}

/* Writes every column of u under a fresh gen, audits, commits. */
static int write_user(struct store *st, struct store_user *u, bool insert, const char *action,
		      const struct store_user *before, const char *actor)
{
	char g[24], oe[24], rq[24], by[24], mc[24], cr[24], rm[24];
	int64_t gen;
	int rc;

	if ((rc = check_user(st, u)))
		return rc;
	if ((rc = take_gen(st, &gen)))
		return rc;
	u->gen = gen;
	i64(g, gen);
	i64(oe, u->old_expires);
	i64(rq, u->req_month);
	i64(by, u->bytes_month);
	i64(mc, u->max_conns);
	i64(cr, u->created);
	i64(rm, u->removed_at);
	const char *p[12] = { u->name, u->hash, u->old_hash[0] ? u->old_hash : NULL, oe, u->allow,
			      u->egress, rq, by, mc, cr, rm, g };
	rc = exec(st, insert ?
		  "INSERT INTO proxy_users (name, hash, old_hash, old_expires, allow, egress, "
		  "req_month, bytes_month, max_conns, created, removed_at, gen) VALUES ($1, $2, $3, "
		  "CAST($4 AS BIGINT), $5, $6, CAST($7 AS BIGINT), CAST($8 AS BIGINT), "
		  "CAST($9 AS BIGINT), CAST($10 AS BIGINT), CAST($11 AS BIGINT), CAST($12 AS BIGINT))" :
		  "UPDATE proxy_users SET hash = $2, old_hash = $3, old_expires = CAST($4 AS BIGINT), "
		  "allow = $5, egress = $6, req_month = CAST($7 AS BIGINT), bytes_month = "
		  "CAST($8 AS BIGINT), max_conns = CAST($9 AS BIGINT), created = CAST($10 AS BIGINT), "
		  "removed_at = CAST($11 AS BIGINT), gen = CAST($12 AS BIGINT) WHERE name = $1",
		  12, p, NULL, NULL);
	if (rc)
		return rc;
	return audit_user(st, actor, u->name, action, before, u->removed_at ? NULL : u);
}

int store_user_add(struct store *st, const struct store_user *spec, const char *actor)
{
	struct store_user u = *spec, old;
	int rc;

	u.old_hash[0] = '\0';
	u.old_expires = 0;
	u.removed_at = 0;
	u.created = (int64_t)time(NULL);
	if ((rc = check_user(st, &u)))
		return rc;
	if ((rc = st->ops->begin(st)))
		return rc;
	rc = row_get(st, u.name, &old);
	if (!rc && !old.removed_at) {
		rc = fail(st, -EEXIST, "user %s exists already", u.name);
		goto out;
	}
	if (rc && rc != -ENOENT)
		goto out;
	/* a removed name comes back as a new user: its row is reused */
	rc = write_user(st, &u, rc == -ENOENT, "user.add", NULL, actor);
out:
	return store_tx_end(st, rc);
}

/* One change of a present user: load, apply fn, write, audit. */
static int change(struct store *st, const char *name, const char *action, const char *actor,
		  int (*fn)(struct store *st, struct store_user *u, const void *arg), const void *arg)
{
	struct store_user before, u;
	int rc;

	if (!store_user_name_valid(name))
		return fail(st, -EINVAL, "bad user name '%.64s' (1-64 of A-Z a-z 0-9 . _ -)", name);
	if ((rc = st->ops->begin(st)))
		return rc;
	if ((rc = store_user_get(st, name, &before)))
		goto out;
	u = before;
	if ((rc = fn(st, &u, arg)))
		goto out;
	rc = write_user(st, &u, false, action, &before, actor);
out:
	return store_tx_end(st, rc);
}

static int do_remove(struct store *st, struct store_user *u, const void *arg)
{
	(void)st;
	(void)arg;
	u->removed_at = (int64_t)time(NULL);
	u->old_hash[0] = '\0';
	u->old_expires = 0;
	return 0;
}

int store_user_remove(struct store *st, const char *name, const char *actor)
{
	return change(st, name, "user.remove", actor, do_remove, NULL);
}

static int do_allow(struct store *st, struct store_user *u, const void *arg)
{
	(void)st;
	if (strlen(arg) >= sizeof(u->allow))
		return fail(st, -EINVAL, "destination rules too long");
	snprintf(u->allow, sizeof(u->allow), "%s", (const char *)arg);
	return 0;
}

int store_user_set_allow(struct store *st, const char *name, const char *allow, const char *actor)
{
	return change(st, name, "user.allow", actor, do_allow, allow);
}

static int do_egress(struct store *st, struct store_user *u, const void *arg)
{
	if (strlen(arg) >= sizeof(u->egress))
		return fail(st, -EINVAL, "egress list too long");
	snprintf(u->egress, sizeof(u->egress), "%s", (const char *)arg);
	return 0;
}

int store_user_set_egress(struct store *st, const char *name, const char *egress,
			  const char *actor)
{
	return change(st, name, "user.egress", actor, do_egress, egress);
}

struct rotate_arg {
	const char *hash;
	int64_t keep;
};

static int do_rotate(struct store *st, struct store_user *u, const void *arg)
{
	const struct rotate_arg *r = arg;

	if (strlen(r->hash) >= sizeof(u->hash))
		return fail(st, -EINVAL, "bad password hash");
	if (r->keep > 0) {
		memcpy(u->old_hash, u->hash, sizeof(u->hash));
		u->old_expires = (int64_t)time(NULL) + r->keep;
	} else {
		u->old_hash[0] = '\0';
		u->old_expires = 0;
	}
	snprintf(u->hash, sizeof(u->hash), "%s", r->hash);
	return 0;
}

int store_user_rotate(struct store *st, const char *name, const char *new_hash, int64_t keep_old_s,
		      const char *actor)
{
	struct rotate_arg r = { new_hash, keep_old_s };

	if (keep_old_s < 0 || keep_old_s > STORE_KEEP_OLD_MAX_S)
		return fail(st, -EINVAL, "the old password may keep working at most 7 days");
	return change(st, name, "user.rotate", actor, do_rotate, &r);
}

struct plan_arg {
	int64_t req, bytes, conns;
};

static int do_plan(struct store *st, struct store_user *u, const void *arg)
{
	const struct plan_arg *p = arg;

	(void)st;
	if (p->req >= 0)
		u->req_month = p->req;
	if (p->bytes >= 0)
		u->bytes_month = p->bytes;
	if (p->conns >= 0)
		u->max_conns = p->conns;
	return 0;
}

int store_user_plan(struct store *st, const char *name, int64_t req_month, int64_t bytes_month,
		    int64_t max_conns, const char *actor)
{
	struct plan_arg p = { req_month, bytes_month, max_conns };

	if (max_conns > 10000000)
		return fail(st, -EINVAL, "max_conns must be 0-10000000");
	return change(st, name, "user.plan", actor, do_plan, &p);
}

/* ---- usage ---- */

static const char *begin_plain(struct store *st)
{
	/* not a change: no version lock (PostgreSQL), but a writer from the start (SQLite) */
	return strcmp(store_backend(st), "sqlite") ? "BEGIN" : "BEGIN IMMEDIATE";
}

static void rollback_plain(struct store *st)
{
	(void)exec(st, "ROLLBACK", 0, NULL, NULL, NULL);
}

/* Ends a begin_plain() transaction: COMMIT, or after an error ROLLBACK keeping its reason. */
static int end_plain(struct store *st, int rc)
{
	if (rc) {
		store_rollback_keep(st, rollback_plain);
		return rc;
	}
	return exec(st, "COMMIT", 0, NULL, NULL, NULL);
}

int store_proxy_usage_add(struct store *st, const struct store_usage *r, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++)
		if (!store_user_name_valid(r[i].user) || r[i].requests < 0 || r[i].bytes_up < 0 ||
		    r[i].bytes_down < 0)
			return fail(st, -EINVAL, "bad usage record");
	if (!n)
		return 0;
	if ((rc = exec(st, begin_plain(st), 0, NULL, NULL, NULL)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		char h[24], q[24], u[24], d[24];
		i64(h, r[i].hour);
		i64(q, r[i].requests);
		i64(u, r[i].bytes_up);
		i64(d, r[i].bytes_down);
		const char *p[6] = { r[i].user, r[i].egress, h, q, u, d };
		rc = exec(st, "INSERT INTO proxy_usage (user_name, egress, hour, requests, bytes_up, "
			  "bytes_down) VALUES ($1, $2, CAST($3 AS BIGINT), CAST($4 AS BIGINT), "
			  "CAST($5 AS BIGINT), CAST($6 AS BIGINT)) ON CONFLICT (user_name, egress, hour) "
			  "DO UPDATE SET requests = proxy_usage.requests + excluded.requests, "
			  "bytes_up = proxy_usage.bytes_up + excluded.bytes_up, "
			  "bytes_down = proxy_usage.bytes_down + excluded.bytes_down", 6, p, NULL, NULL);
	}
	return end_plain(st, rc);
}

struct totals_arg {
	void (*cb)(void *arg, const char *user, int64_t requests, int64_t bytes);
	void *arg;
};

static int totals_row(void *arg, int ncol, const char *const *v)
{
	struct totals_arg *t = arg;

	if (ncol >= 3 && v[0])
		t->cb(t->arg, v[0], num(v[1]), num(v[2]));
	return 0;
}

int store_proxy_usage_totals(struct store *st, int64_t from, int64_t to,
			     void (*cb)(void *arg, const char *user, int64_t requests,
					int64_t bytes),
			     void *arg)
{
	char f[24], t[24];
	const char *p[2] = { f, t };
	struct totals_arg ta = { cb, arg };

	i64(f, from);
	i64(t, to);
	return exec(st, "SELECT user_name, SUM(requests), SUM(bytes_up + bytes_down) FROM "
		    "proxy_usage WHERE hour >= CAST($1 AS BIGINT) AND hour < CAST($2 AS BIGINT) "
		    "GROUP BY user_name", 2, p, totals_row, &ta);
}

static void fill_usage(void *e, const char *const *v)
{
	struct store_usage *u = e;

	store_text_copy(u->user, sizeof(u->user), v[0]);
	store_text_copy(u->egress, sizeof(u->egress), v[1]);
	u->hour = num(v[2]);
	u->requests = num(v[3]);
	u->bytes_up = num(v[4]);
	u->bytes_down = num(v[5]);
}

int store_proxy_usage_get(struct store *st, const char *user, int64_t from, int64_t to,
			  struct store_usage **out, size_t *n)
{
	char f[24], t[24];
	const char *p[3] = { user, f, t };

	*out = NULL;
	*n = 0;
	i64(f, from);
	i64(t, to);
	return vec_query(st, "SELECT user_name, egress, hour, requests, bytes_up, bytes_down FROM "
			 "proxy_usage WHERE user_name = $1 AND hour >= CAST($2 AS BIGINT) AND hour < "
			 "CAST($3 AS BIGINT) ORDER BY hour, egress", 3, p, 6, fill_usage, sizeof(**out),
			 out, n);
}

void store_month_of(int64_t t, int64_t *start, int64_t *end)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	*start = (int64_t)timegm(&tm);
	tm.tm_mon++;
	*end = (int64_t)timegm(&tm);
}

const char *store_month_parse(const char *s, int64_t *start, int64_t *end)
{
	struct tm tm;

	if (strlen(s) != 7 || s[4] != '-')
		return "month must be YYYY-MM";
	for (int i = 0; i < 7; i++)
		if (i != 4 && (s[i] < '0' || s[i] > '9'))
			return "month must be YYYY-MM";
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = (s[5] - '0') * 10 + (s[6] - '0');
	if (m < 1 || m > 12)
		return "month must be 01-12";
	if (y < 1970 || y > 9999)
		return "year must be 1970-9999";
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = 1;
	*start = (int64_t)timegm(&tm);
	tm.tm_mon++;
	*end = (int64_t)timegm(&tm);
	return NULL;
}

const char *store_duration_parse(const char *s, int64_t *secs)
{
	int64_t v = 0, mul = 1;
	size_t n = strlen(s), i;

	if (!strcmp(s, "now")) {
		*secs = 0;
		return NULL;
	}
	if (n == 0 || n > 12)
		return "duration must be now, N, Ns, Nm, Nh or Nd";
	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (s[i] - '0');
	if (i == 0 || (i > 1 && s[0] == '0'))
		return "duration must be now, N, Ns, Nm, Nh or Nd";
	if (i < n) {
		if (i + 1 != n)
			return "duration must be now, N, Ns, Nm, Nh or Nd";
		switch (s[i]) {
		case 's': mul = 1; break;
		case 'm': mul = 60; break;
		case 'h': mul = 3600; break;
		case 'd': mul = 86400; break;
		default: return "duration must be now, N, Ns, Nm, Nh or Nd";
		}
	}
	if (v > STORE_KEEP_OLD_MAX_S / mul)
		return "at most 7 days";
	*secs = v * mul;
	return NULL;
}

/* ---- nodes ---- */

int store_node_beat(struct store *st, const char *node, int64_t started, int64_t now,
		    const struct store_egress *e, size_t n)
{
	char s[24], t[24];
	int rc;

	if (!store_user_name_valid(node))
		return fail(st, -EINVAL, "bad node name '%.64s' (1-64 of A-Z a-z 0-9 . _ -)", node);
	i64(s, started);
	i64(t, now);
	if ((rc = exec(st, begin_plain(st), 0, NULL, NULL, NULL)))
		return rc;
	const char *p[3] = { node, s, t };
	rc = exec(st, "INSERT INTO proxy_nodes (name, started, heartbeat) VALUES ($1, "
		  "CAST($2 AS BIGINT), CAST($3 AS BIGINT)) ON CONFLICT (name) DO UPDATE SET "
		  "started = excluded.started, heartbeat = excluded.heartbeat", 3, p, NULL, NULL);
	if (!rc)
		rc = exec(st, "DELETE FROM proxy_node_egress WHERE node = $1", 1, p, NULL, NULL);
	for (size_t i = 0; i < n && !rc; i++) {
		char c[24];
		i64(c, e[i].checked);
		const char *q[5] = { node, e[i].addr, e[i].healthy ? "1" : "0", e[i].verdict, c };
		rc = exec(st, "INSERT INTO proxy_node_egress (node, addr, healthy, verdict, checked) "
			  "VALUES ($1, $2, CAST($3 AS INTEGER), $4, CAST($5 AS BIGINT)) ON CONFLICT "
			  "(node, addr) DO UPDATE SET healthy = excluded.healthy, verdict = "
			  "excluded.verdict, checked = excluded.checked", 5, q, NULL, NULL);
	}
	return end_plain(st, rc);
}

static void fill_egress(void *elem, const char *const *v)
{
	struct store_egress *e = elem;

	store_text_copy(e->node, sizeof(e->node), v[0]);
	store_text_copy(e->addr, sizeof(e->addr), v[1]);
	e->healthy = num(v[2]) != 0;
	store_text_copy(e->verdict, sizeof(e->verdict), v[3]);
	e->checked = num(v[4]);
	e->heartbeat = num(v[5]);
}

int store_egress_list(struct store *st, struct store_egress **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return vec_query(st, "SELECT e.node, e.addr, e.healthy, e.verdict, e.checked, n.heartbeat "
			 "FROM proxy_node_egress e JOIN proxy_nodes n ON n.name = e.node ORDER BY "
			 "e.node, e.addr", 0, NULL, 6, fill_egress, sizeof(**out), out,
			 n);
}
