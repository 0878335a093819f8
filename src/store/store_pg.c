/* store_pg.c (~750 lines: one backend, each primitive of store_be.h beside its SQL, as in
 * store_sqlite.c, so the two read side by side): the key store's PostgreSQL backend (libpq).
 *
 * Every write transaction first locks the one row of iplock_version, so writers are serialised
 * as SQLite's BEGIN IMMEDIATE serialises them, and versions commit in the order they are
 * taken: a reader that sees version v has seen every version below it. Each change moves its
 * key to version + 1 (keys.gen); the commit sends NOTIFY iplock_keys with only that number. */
#include "store/store_be.h"
#include "store/store_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define CHANNEL "iplock_keys"

/* Migrations: the shared schema steps in PostgreSQL's words (store_schema.h). */
static const char *const migrations[] = STORE_MIGRATIONS_PG;
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
	       "one migration per schema version");
/* pg_advisory_xact_lock key: two processes creating one fresh database take turns */
#define MIGRATE_LOCK "7151020391"

#define KEY_COLS "id, hash, masked, type, mode, name, created, COALESCE(expires_at, 0), " \
	"COALESCE(revoked_at, 0), COALESCE(rotated_from, ''), gen, note, allow_report"

struct pg {
	PGconn *conn;
	int64_t bumped;         /* version of this transaction's last change; 0 = none */
	char shown[512];        /* the target, password masked */
};

#define PG(st) ((struct pg *)(st)->be)

/* libpq's messages end in a newline and may run over lines: the first line is the reason */
static int fail_pg(struct store *st, const char *msg)
{
	char line[200];
	size_t n;

	/* "ERROR:  reason": the severity says nothing a reason does not */
	for (const char *sev = strstr(msg, ":  "); sev && sev - msg <= 7; sev = NULL)
		msg = sev + 3;
	n = strcspn(msg, "\n");

	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, msg, n);
	line[n] = '\0';
	return store_fail(st, -EIO, "database error: %s", n ? line : "connection lost");
}

/* Runs sql with text parameters; NULL after setting the error unless the status is want. */
static PGresult *q(struct store *st, const char *sql, int n, const char *const *params,
		   ExecStatusType want)
{
	/* without parameters, PQexec: a migration is several statements */
	PGresult *r = n ? PQexecParams(PG(st)->conn, sql, n, NULL, params, NULL, NULL, 0) :
		      PQexec(PG(st)->conn, sql);

	if (PQresultStatus(r) == want)
		return r;
	const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(PG(st)->conn);
	if (r && !m[0])
		m = PQresStatus(PQresultStatus(r));     /* an answer of the wrong kind */
	fail_pg(st, m);
	PQclear(r);
	return NULL;
}

/* A query whose rows become a zeroed array of sz-byte elements, one a row (NULL when there
 * is none): the caller fills it from *res (PQntuples() of them) and clears *res. */
static int q_array(struct store *st, const char *sql, int n, const char *const *params,
		   size_t sz, PGresult **res, void **out)
{
	PGresult *r = q(st, sql, n, params, PGRES_TUPLES_OK);
	int rows;

	*out = NULL;
	if (!r)
		return -EIO;
	rows = PQntuples(r);
	if (rows && !(*out = calloc((size_t)rows, sz))) {
		PQclear(r);
		return -ENOMEM;
	}
	*res = r;
	return 0;
}

static int cmd(struct store *st, const char *sql, int n, const char *const *params)
{
	PGresult *r = q(st, sql, n, params, PGRES_COMMAND_OK);

	PQclear(r);
	return r ? 0 : -EIO;
}

/* A one-value query: the first row's first column as a number, dflt when there is no row. */
static int q_num(struct store *st, const char *sql, int64_t dflt, int64_t *out)
{
	PGresult *r = q(st, sql, 0, NULL, PGRES_TUPLES_OK);

	if (!r)
		return -EIO;
	*out = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : dflt;
	PQclear(r);
	return 0;
}

static int run_step(struct store *st, const char *sql)
{
	return cmd(st, sql, 0, NULL);
}

static int set_schema_version(struct store *st, int version)
{
	char v[16];
	const char *p[1] = { v };

	snprintf(v, sizeof(v), "%d", version);
	return cmd(st, "UPDATE iplock_schema SET version = $1::integer", 1, p);
}

static void pg_rollback(struct store *st);

static int migrate(struct store *st)
{
	int64_t have, version;
	int rc;

	/* an up-to-date database is only read, so a read-only role (the gate's) can open it */
	if ((rc = q_num(st, "SELECT (to_regclass('iplock_schema') IS NOT NULL)::integer", 0, &have)))
		return rc;
	if (have) {
		if ((rc = q_num(st, "SELECT version FROM iplock_schema", 0, &version)))
			return rc;
		if (version == STORE_SCHEMA_VERSION)
			return 0;
	}
	if ((rc = cmd(st, "BEGIN", 0, NULL)))
		return rc;
	if ((rc = q_num(st, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, &version)) ||
	    (rc = cmd(st, "CREATE TABLE IF NOT EXISTS iplock_schema (version INTEGER NOT NULL)",
		      0, NULL)) ||
	    (rc = q_num(st, "SELECT version FROM iplock_schema", -1, &version)))
		goto out;
	if (version < 0) {
		if ((rc = cmd(st, "INSERT INTO iplock_schema (version) VALUES (0)", 0, NULL)))
			goto out;
		version = 0;
	}
	if ((rc = store_migrate_steps(st, (int)version, migrations, run_step, set_schema_version)))
		goto out;
	rc = cmd(st, "COMMIT", 0, NULL);
out:
	if (rc)
		store_rollback_keep(st, pg_rollback);
	return rc;
}

/* Session settings: a writer waits for another at most 5 s (SQLite's busy timeout); the
 * server's notices ("already exists, skipping") are not for our users. */
static int session_setup(struct store *st)
{
	return cmd(st, "SET lock_timeout = '5s'; SET client_min_messages = warning", 0, NULL);
}

static int pg_open(struct store *st, const char *target)
{
	struct pg *p = calloc(1, sizeof(*p));
	/* the target is expanded as a connection string; the rest bound a dead peer's wait */
	const char *const keys[] = { "dbname", "application_name", "connect_timeout",
				     "keepalives_idle", "keepalives_interval", "keepalives_count",
				     "tcp_user_timeout", NULL };
	const char *const vals[] = { target, "iplock", "5", "5", "2", "2", "10000", NULL };
	int rc;

	if (!p)
		return store_fail(st, -ENOMEM, "out of memory");
	st->be = p;
	store_target_display(target, p->shown, sizeof(p->shown));
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (!p->conn)
		return store_fail(st, -ENOMEM, "out of memory");
	if (PQstatus(p->conn) != CONNECTION_OK) {
		char why[200];
		const char *m = PQerrorMessage(p->conn);
		size_t n = strcspn(m, "\n");
		snprintf(why, sizeof(why), "%.*s", (int)(n < sizeof(why) ? n : sizeof(why) - 1), m);
		return store_fail(st, -EIO, "cannot open %s: %s", p->shown,
				  why[0] ? why : "connection failed");
	}
	if ((rc = session_setup(st)) || (rc = migrate(st)))
		return rc;
	return 0;
}

static void pg_close(struct store *st)
{
	struct pg *p = st->be;

	if (!p)
		return;
	PQfinish(p->conn);
	free(p);
	st->be = NULL;
}

static int pg_begin(struct store *st)
{
	PG(st)->bumped = 0;
	if (cmd(st, "BEGIN", 0, NULL))
		return -EIO;
	/* the version row's lock serialises writers until commit, so versions commit in order */
	PGresult *r = q(st, "SELECT v FROM iplock_version WHERE id = 1 FOR UPDATE", 0, NULL,
			PGRES_TUPLES_OK);
	if (!r) {
		store_rollback_keep(st, pg_rollback);
		return -EIO;
	}
	PQclear(r);
	return 0;
}

static int pg_commit(struct store *st)
{
	if (PG(st)->bumped) {
		char v[24];
		const char *p[1] = { v };
		snprintf(v, sizeof(v), "%" PRId64, PG(st)->bumped);
		/* delivered at commit, in commit order; only the number (payloads are capped) */
		PGresult *r = q(st, "SELECT pg_notify('" CHANNEL "', $1)", 1, p, PGRES_TUPLES_OK);
		if (!r)
			return -EIO;
		PQclear(r);
	}
	PG(st)->bumped = 0;
	return cmd(st, "COMMIT", 0, NULL);
}

static void pg_rollback(struct store *st)
{
	PG(st)->bumped = 0;
	PQclear(PQexec(PG(st)->conn, "ROLLBACK"));
}

static int pg_read_begin(struct store *st)
{
	return cmd(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
}

static void pg_read_end(struct store *st)
{
	PQclear(PQexec(PG(st)->conn, "COMMIT"));
}

static void copy_val(char *dst, size_t cap, const PGresult *r, int row, int col)
{
	snprintf(dst, cap, "%s", PQgetvalue(r, row, col));
}

static const char *val_or_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void row_to_key(const PGresult *r, int row, struct key_info *k)
{
	memset(k, 0, sizeof(*k));
	copy_val(k->id, sizeof(k->id), r, row, 0);
	copy_val(k->hash, sizeof(k->hash), r, row, 1);
	copy_val(k->masked, sizeof(k->masked), r, row, 2);
	key_type_parse(PQgetvalue(r, row, 3), &k->type);
	key_mode_parse(PQgetvalue(r, row, 4), &k->mode);
	copy_val(k->name, sizeof(k->name), r, row, 5);
	k->created = strtoll(PQgetvalue(r, row, 6), NULL, 10);
	k->expires_at = strtoll(PQgetvalue(r, row, 7), NULL, 10);
	k->revoked_at = strtoll(PQgetvalue(r, row, 8), NULL, 10);
	copy_val(k->rotated_from, sizeof(k->rotated_from), r, row, 9);
	k->gen = strtoll(PQgetvalue(r, row, 10), NULL, 10);
	/* NULL on a failed copy: shown as no note */
	k->note = !PQgetisnull(r, row, 11) && PQgetvalue(r, row, 11)[0] ?
		  strdup(PQgetvalue(r, row, 11)) : NULL;
	k->allow_report = atoi(PQgetvalue(r, row, 12)) != 0;
}

static int pg_key_row(struct store *st, bool by_hash, const char *arg, struct key_info *out)
{
	const char *p[1] = { arg };
	PGresult *r = q(st, by_hash ? "SELECT " KEY_COLS " FROM keys WHERE hash = $1" :
			"SELECT " KEY_COLS " FROM keys WHERE id = $1", 1, p, PGRES_TUPLES_OK);
	int rc = 0;

	if (!r)
		return -EIO;
	if (PQntuples(r) == 0)
		rc = -ENOENT;
	else
		row_to_key(r, 0, out);
	PQclear(r);
	return rc;
}

/* Splits a '\n'-joined aggregate into the key's allowlist or permissions. */
static int split_children(struct key_info *k, const char *allow, const char *perms)
{
	size_t cap = 0;

	for (const char *p = allow; p && *p;) {
		size_t l = strcspn(p, "\n");
		if (store_grow(&k->allow, &cap, k->n_allow, sizeof(*k->allow)) ||
		    !(k->allow[k->n_allow] = strndup(p, l)))
			return -ENOMEM;
		k->n_allow++;
		p += l + (p[l] == '\n');
	}
	cap = 0;
	for (const char *p = perms; p && *p;) {
		size_t l = strcspn(p, "\n"), eq = strcspn(p, "=");
		char lvl[16];
		if (store_grow(&k->perms, &cap, k->n_perms, sizeof(*k->perms)))
			return -ENOMEM;
		struct key_perm *kp = &k->perms[k->n_perms++];
		if (eq > l)
			eq = l;
		snprintf(kp->resource, sizeof(kp->resource), "%.*s", (int)eq, p);
		snprintf(lvl, sizeof(lvl), "%.*s", (int)(eq < l ? l - eq - 1 : 0), p + eq + 1);
		kp->level = PERM_NONE;
		perm_level_parse(lvl, &kp->level);
		p += l + (p[l] == '\n');
	}
	return 0;
}

/* A key's allowlist and permissions, each '\n'-joined (split_children() splits them);
 * COLLATE "C": the same byte order as SQLite's, whatever the database's locale. */
#define CHILDREN_OF(KEY) "(SELECT string_agg(entry, E'\\n' ORDER BY entry COLLATE \"C\") FROM " \
	"allow WHERE key_id = " KEY "), (SELECT string_agg(resource || '=' || level, E'\\n' " \
	"ORDER BY resource COLLATE \"C\") FROM perms WHERE key_id = " KEY ")"
#define CHILDREN ", " CHILDREN_OF("k.id") " FROM keys k "

/* Key rows (all when after < 0, else gen > after) and, with full, their children in the same
 * statement: one snapshot, one round trip, whatever the count. */
static int key_rows(struct store *st, int64_t after, bool full, struct key_info **out,
		    size_t *n)
{
	char a[24];
	const char *p[1] = { a };
	const char *sql;
	PGresult *r;
	int rc = 0;

	snprintf(a, sizeof(a), "%" PRId64, after);
	if (after < 0)
		sql = full ? "SELECT " KEY_COLS CHILDREN "ORDER BY created, seq" :
		      "SELECT " KEY_COLS " FROM keys ORDER BY created, seq";
	else
		sql = full ? "SELECT " KEY_COLS CHILDREN "WHERE gen > $1::bigint ORDER BY gen" :
		      "SELECT " KEY_COLS " FROM keys WHERE gen > $1::bigint ORDER BY gen";
	struct key_info *keys;
	if ((rc = q_array(st, sql, after < 0 ? 0 : 1, p, sizeof(*keys), &r, (void **)&keys)))
		return rc;
	int rows = PQntuples(r);
	for (int i = 0; i < rows && !rc; i++) {
		row_to_key(r, i, &keys[i]);
		if (full)
			rc = split_children(&keys[i], val_or_null(r, i, 13), val_or_null(r, i, 14));
	}
	PQclear(r);
	if (rc) {
		store_key_list_free(keys, (size_t)rows);
		return rc;
	}
	*out = keys;
	*n = (size_t)rows;
	return 0;
}
#undef CHILDREN

static int pg_key_rows(struct store *st, int64_t after, struct key_info **out, size_t *n)
{
	return key_rows(st, after, false, out, n);
}

static int pg_key_rows_full(struct store *st, int64_t after, struct key_info **out, size_t *n)
{
	return key_rows(st, after, true, out, n);
}

static int pg_children(struct store *st, struct key_info *k)
{
	const char *p[1] = { k->id };
	PGresult *r = q(st, "SELECT " CHILDREN_OF("$1"), 1, p, PGRES_TUPLES_OK);
	int rc;

	if (!r)
		return -EIO;
	rc = PQntuples(r) ? split_children(k, val_or_null(r, 0, 0), val_or_null(r, 0, 1)) : 0;
	PQclear(r);
	return rc;
}

static int pg_key_insert(struct store *st, const struct key_info *k)
{
	char created[24];
	const char *p[8] = { k->id, k->hash, k->masked, key_type_name(k->type),
			     key_mode_name(k->mode), k->name, created,
			     k->rotated_from[0] ? k->rotated_from : NULL };

	snprintf(created, sizeof(created), "%" PRId64, k->created);
	return cmd(st, "INSERT INTO keys (id, hash, masked, type, mode, name, created, rotated_from, "
		   "gen) VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8, "
		   "(SELECT v FROM iplock_version WHERE id = 1))", 8, p);
}

static int pg_allow_add(struct store *st, const char *id, const char *entry)
{
	const char *p[2] = { id, entry };

	return cmd(st, "INSERT INTO allow (key_id, entry) VALUES ($1, $2) ON CONFLICT DO NOTHING",
		   2, p);
}

static int pg_allow_add_many(struct store *st, const char *id, const char *const *e, size_t n)
{
	size_t len = 3, o = 0;
	char *arr;
	int rc;

	for (size_t i = 0; i < n; i++)
		len += strlen(e[i]) + 3;
	if (!(arr = malloc(len)))
		return -ENOMEM;
	/* a text[] literal; canonical entries hold only hex digits, '.', ':' and '/' */
	arr[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(e[i]);
		if (i)
			arr[o++] = ',';
		arr[o++] = '"';
		memcpy(arr + o, e[i], l);
		o += l;
		arr[o++] = '"';
	}
	arr[o++] = '}';
	arr[o] = '\0';
	const char *p[2] = { id, arr };
	rc = cmd(st, "INSERT INTO allow (key_id, entry) SELECT $1, unnest($2::text[]) "
		 "ON CONFLICT DO NOTHING", 2, p);
	free(arr);
	return rc;
}

static int pg_allow_del(struct store *st, const char *id, const char *entry, bool *removed)
{
	const char *p[2] = { id, entry };
	PGresult *r = q(st, "DELETE FROM allow WHERE key_id = $1 AND entry = $2", 2, p,
			PGRES_COMMAND_OK);

	*removed = false;
	if (!r)
		return -EIO;
	*removed = atoi(PQcmdTuples(r)) > 0;
	PQclear(r);
	return 0;
}

static int pg_allow_clear(struct store *st, const char *id)
{
	const char *p[1] = { id };

	return cmd(st, "DELETE FROM allow WHERE key_id = $1", 1, p);
}

static int pg_perm_set(struct store *st, const char *id, const char *resource,
		       enum perm_level level)
{
	const char *p[3] = { id, resource, perm_level_name(level) };

	if (level == PERM_NONE)
		return cmd(st, "DELETE FROM perms WHERE key_id = $1 AND resource = $2", 2, p);
	return cmd(st, "INSERT INTO perms (key_id, resource, level) VALUES ($1, $2, $3) "
		   "ON CONFLICT (key_id, resource) DO UPDATE SET level = excluded.level", 3, p);
}

static int pg_bump(struct store *st, const char *id)
{
	const char *p[1] = { id };
	PGresult *r = q(st, "WITH nv AS (UPDATE iplock_version SET v = v + 1 WHERE id = 1 "
			"RETURNING v) UPDATE keys SET gen = (SELECT v FROM nv) WHERE id = $1 "
			"RETURNING gen", 1, p, PGRES_TUPLES_OK);

	if (!r)
		return -EIO;
	if (PQntuples(r) == 1)
		PG(st)->bumped = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return 0;
}

static int pg_set_time(struct store *st, const char *id, enum store_time_col col, int64_t t)
{
	char v[24];
	const char *p[2] = { id, v };

	snprintf(v, sizeof(v), "%" PRId64, t);
	return cmd(st, col == STORE_COL_REVOKED ?
		   "UPDATE keys SET revoked_at = $2::bigint WHERE id = $1" :
		   "UPDATE keys SET expires_at = $2::bigint WHERE id = $1", 2, p);
}

static int pg_audit_add(struct store *st, int64_t time, const char *actor, const char *id,
			const char *action, const char *before, const char *after,
			const char *reason)
{
	char t[24];
	const char *p[7] = { t, actor, id, action, before, after, reason };

	snprintf(t, sizeof(t), "%" PRId64, time);
	return cmd(st, "INSERT INTO audit (time, actor, key_id, action, before, after, reason) "
		   "VALUES ($1::bigint, $2, $3, $4, $5, $6, $7)", 7, p);
}

static int pg_audit_each(struct store *st, int (*cb)(const struct audit_record *r, void *arg),
			 void *arg)
{
	PGresult *r = q(st, "SELECT seq, time, actor, key_id, action, before, after, reason "
			"FROM audit ORDER BY seq", 0, NULL, PGRES_TUPLES_OK);

	if (!r)
		return -EIO;
	for (int i = 0; i < PQntuples(r); i++) {
		struct audit_record a = {
			.seq = strtoll(PQgetvalue(r, i, 0), NULL, 10),
			.time = strtoll(PQgetvalue(r, i, 1), NULL, 10),
			.actor = val_or_null(r, i, 2),
			.key_id = val_or_null(r, i, 3),
			.action = val_or_null(r, i, 4),
			.before = val_or_null(r, i, 5),
			.after = val_or_null(r, i, 6),
			.reason = val_or_null(r, i, 7),
		};
		if (cb(&a, arg))
			break;
	}
	PQclear(r);
	return 0;
}

static int pg_data_version(struct store *st, int64_t *out)
{
	return q_num(st, "SELECT v FROM iplock_version WHERE id = 1", 0, out);
}

static int pg_listen(struct store *st)
{
	return cmd(st, "LISTEN " CHANNEL, 0, NULL);
}

static int pg_wait_change(struct store *st, int timeout_ms, int64_t *version)
{
	PGconn *c = PG(st)->conn;
	struct pollfd pfd = { .fd = PQsocket(c), .events = POLLIN };
	PGnotify *nt;
	int got = 0;

	if (PQstatus(c) != CONNECTION_OK || pfd.fd < 0)
		return store_fail(st, -EIO, "database error: connection lost");
	/* notifications already read by an earlier query wait in libpq's queue */
	if (!(nt = PQnotifies(c))) {
		int n = poll(&pfd, 1, timeout_ms);
		if (n < 0)
			return n == -1 && errno == EINTR ? 0 : -errno;
		if (n == 0)
			return 0;
		if (!PQconsumeInput(c))
			return fail_pg(st, PQerrorMessage(c));
		nt = PQnotifies(c);
	}
	for (; nt; nt = PQnotifies(c)) {
		int64_t v = strtoll(nt->extra, NULL, 10);
		if (!got || v > *version)
			*version = v;
		got = 1;
		PQfreemem(nt);
	}
	if (!got && PQstatus(c) != CONNECTION_OK)
		return store_fail(st, -EIO, "database error: connection lost");
	return got;
}

static int pg_reconnect(struct store *st)
{
	PQreset(PG(st)->conn);
	if (PQstatus(PG(st)->conn) != CONNECTION_OK)
		return fail_pg(st, PQerrorMessage(PG(st)->conn));
	return session_setup(st);
}

static int pg_usage_write(struct store *st, const struct usage_rec *r, size_t n,
			  int64_t prune_before)
{
	char a[4][24];
	int rc;

	/* not a key change: no version lock, so it never waits for (or delays) key writers */
	if ((rc = cmd(st, "BEGIN", 0, NULL)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		snprintf(a[0], sizeof(a[0]), "%" PRId64, r[i].last_used);
		const char *p1[3] = { r[i].key_id, a[0], r[i].client };
		if ((rc = cmd(st, "INSERT INTO key_usage (key_id, last_used, last_client) VALUES "
			      "($1, $2::bigint, $3) ON CONFLICT (key_id) DO UPDATE SET last_used = "
			      "excluded.last_used, last_client = excluded.last_client WHERE "
			      "excluded.last_used >= key_usage.last_used", 3, p1)))
			break;
		snprintf(a[0], sizeof(a[0]), "%" PRId64, r[i].hour);
		snprintf(a[1], sizeof(a[1]), "%" PRId64, r[i].allowed);
		snprintf(a[2], sizeof(a[2]), "%" PRId64, r[i].denied);
		snprintf(a[3], sizeof(a[3]), "%" PRId64, r[i].reported);
		const char *p2[6] = { r[i].key_id, r[i].client, a[0], a[1], a[2], a[3] };
		rc = cmd(st, "INSERT INTO key_usage_hourly (key_id, client, hour, allowed, denied, "
			 "reported) VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint) "
			 "ON CONFLICT (key_id, client, hour) DO UPDATE SET allowed = "
			 "key_usage_hourly.allowed + excluded.allowed, denied = key_usage_hourly.denied "
			 "+ excluded.denied, reported = key_usage_hourly.reported + excluded.reported",
			 6, p2);
	}
	if (!rc) {
		snprintf(a[0], sizeof(a[0]), "%" PRId64, prune_before);
		const char *p3[1] = { a[0] };
		rc = cmd(st, "DELETE FROM key_usage_hourly WHERE hour < $1::bigint", 1, p3);
	}
	if (rc) {
		pg_rollback(st);
		return rc;
	}
	return cmd(st, "COMMIT", 0, NULL);
}

static int pg_usage_get(struct store *st, const char *key_id, int64_t *last_used,
			char *last_client, size_t cap, struct usage_rec **hours, size_t *n)
{
	const char *p[1] = { key_id };
	PGresult *r = q(st, "SELECT last_used, last_client FROM key_usage WHERE key_id = $1", 1, p,
			PGRES_TUPLES_OK);

	if (!r)
		return -EIO;
	if (PQntuples(r)) {
		*last_used = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		if (cap)
			snprintf(last_client, cap, "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	struct usage_rec *h;
	int rc = q_array(st, "SELECT client, hour, allowed, denied, reported FROM key_usage_hourly "
			 "WHERE key_id = $1 ORDER BY hour, client COLLATE \"C\"", 1, p, sizeof(*h),
			 &r, (void **)&h);
	if (rc)
		return rc;
	int rows = PQntuples(r);
	for (int i = 0; i < rows; i++) {
		snprintf(h[i].key_id, sizeof(h[i].key_id), "%s", key_id);
		copy_val(h[i].client, sizeof(h[i].client), r, i, 0);
		h[i].hour = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		h[i].allowed = strtoll(PQgetvalue(r, i, 2), NULL, 10);
		h[i].denied = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		h[i].reported = strtoll(PQgetvalue(r, i, 4), NULL, 10);
	}
	PQclear(r);
	*hours = h;
	*n = (size_t)rows;
	return 0;
}

static int pg_sql(struct store *st, const char *sql, const char *const *p, size_t np,
		  struct store_rows *rows)
{
	PGresult *r = PQexecParams(PG(st)->conn, sql, (int)np, NULL, p, NULL, NULL, 0);
	ExecStatusType es = PQresultStatus(r);

	if (rows)
		memset(rows, 0, sizeof(*rows));
	if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
		fail_pg(st, r ? PQresultErrorMessage(r) : PQerrorMessage(PG(st)->conn));
		PQclear(r);
		return -EIO;
	}
	if (rows && es == PGRES_TUPLES_OK) {
		size_t n = (size_t)PQntuples(r), nc = (size_t)PQnfields(r);
		char **v = n && nc ? calloc(n * nc, sizeof(*v)) : NULL;
		if (n && nc && !v)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			for (size_t j = 0; j < nc; j++)
				if (!PQgetisnull(r, (int)i, (int)j) &&
				    !(v[i * nc + j] = strdup(PQgetvalue(r, (int)i, (int)j)))) {
					rows->v = v;
					rows->n = n;
					rows->ncol = nc;
					store_rows_free(rows);
					goto nomem;
				}
		rows->v = v;
		rows->n = n;
		rows->ncol = nc;
	}
	PQclear(r);
	return 0;
nomem:
	PQclear(r);
	return store_fail(st, -ENOMEM, "out of memory");
}

/* A fresh version for a user change: the same counter as the keys', announced at commit. */
static int pg_version_next(struct store *st, int64_t *v)
{
	int rc = q_num(st, "UPDATE iplock_version SET v = v + 1 WHERE id = 1 RETURNING v", 0, v);

	if (!rc)
		PG(st)->bumped = *v;
	return rc;
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.read_begin = pg_read_begin,
	.read_end = pg_read_end,
	.key_row = pg_key_row,
	.key_rows = pg_key_rows,
	.key_rows_full = pg_key_rows_full,
	.children = pg_children,
	.key_insert = pg_key_insert,
	.allow_add = pg_allow_add,
	.allow_add_many = pg_allow_add_many,
	.allow_del = pg_allow_del,
	.allow_clear = pg_allow_clear,
	.perm_set = pg_perm_set,
	.bump = pg_bump,
	.set_time = pg_set_time,
	.audit_add = pg_audit_add,
	.audit_each = pg_audit_each,
	.data_version = pg_data_version,
	.usage_write = pg_usage_write,
	.usage_get = pg_usage_get,
	.sql = pg_sql,
	.listen = pg_listen,
	.wait_change = pg_wait_change,
	.reconnect = pg_reconnect,
	.version_next = pg_version_next,
};
