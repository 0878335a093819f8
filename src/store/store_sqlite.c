/* store_sqlite.c: the key store's SQLite backend. One connection per process; writes run in
 * BEGIN IMMEDIATE transactions, which serialise writers across processes. */
#include "store/store_be.h"
#include "store/store_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* Migrations: the shared schema steps in SQLite's words (store_schema.h). */
static const char *const migrations[] = STORE_MIGRATIONS_SQLITE;
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
	       "one migration per schema version");

enum stmt_id {
	ST_KEY_BY_ID = 0,       /* one key row by id */
	ST_KEY_BY_HASH,         /* one key row by hash */
	ST_KEY_ALL,             /* every key row */
	ST_KEY_CHANGED,         /* rows with gen above ? */
	ST_ALLOW_OF,            /* allowlist of one key */
	ST_PERMS_OF,            /* permissions of one key */
	ST_KEY_INSERT,          /* new key row */
	ST_ALLOW_INSERT,        /* add an entry */
	ST_ALLOW_DELETE,        /* remove an entry */
	ST_ALLOW_CLEAR,         /* remove all entries of a key */
	ST_PERM_UPSERT,         /* set a permission */
	ST_PERM_DELETE,         /* remove a permission */
	ST_KEY_BUMP,            /* gen = max + 1 */
	ST_KEY_SET_EXPIRY,      /* expires_at */
	ST_KEY_SET_REVOKED,     /* revoked_at */
	ST_AUDIT_INSERT,        /* audit record */
	ST_AUDIT_ALL,           /* audit records in order */
	ST_DATA_VERSION,        /* PRAGMA data_version */
	ST_BEGIN,               /* BEGIN IMMEDIATE */
	ST_COMMIT,              /* COMMIT */
	ST_ROLLBACK,            /* ROLLBACK */
	ST_USAGE_LAST,          /* upsert last use */
	ST_USAGE_HOUR,          /* add hourly counts */
	ST_USAGE_PRUNE,         /* drop old hours */
	ST_USAGE_GET_LAST,      /* last use of a key */
	ST_USAGE_GET_HOURS,     /* hourly rows of a key */
	ST_COUNT,
};

#define KEY_COLS "id, hash, masked, type, mode, name, created, expires_at, revoked_at, " \
	"rotated_from, gen, note, allow_report"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_KEY_BY_ID] = "SELECT " KEY_COLS " FROM keys WHERE id = ?1",
	[ST_KEY_BY_HASH] = "SELECT " KEY_COLS " FROM keys WHERE hash = ?1",
	[ST_KEY_ALL] = "SELECT " KEY_COLS " FROM keys ORDER BY created, rowid",
	[ST_KEY_CHANGED] = "SELECT " KEY_COLS " FROM keys WHERE gen > ?1 ORDER BY gen",
	[ST_ALLOW_OF] = "SELECT entry FROM allow WHERE key_id = ?1 ORDER BY entry",
	[ST_PERMS_OF] = "SELECT resource, level FROM perms WHERE key_id = ?1 ORDER BY resource",
	[ST_KEY_INSERT] = "INSERT INTO keys (id, hash, masked, type, mode, name, created, "
		"expires_at, revoked_at, rotated_from, gen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
		"NULL, NULL, ?8, (SELECT COALESCE(MAX(gen), 0) + 1 FROM keys))",
	[ST_ALLOW_INSERT] = "INSERT OR IGNORE INTO allow (key_id, entry) VALUES (?1, ?2)",
	[ST_ALLOW_DELETE] = "DELETE FROM allow WHERE key_id = ?1 AND entry = ?2",
	[ST_ALLOW_CLEAR] = "DELETE FROM allow WHERE key_id = ?1",
	[ST_PERM_UPSERT] = "INSERT INTO perms (key_id, resource, level) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (key_id, resource) DO UPDATE SET level = excluded.level",
	[ST_PERM_DELETE] = "DELETE FROM perms WHERE key_id = ?1 AND resource = ?2",
	[ST_KEY_BUMP] = "UPDATE keys SET gen = (SELECT MAX(gen) + 1 FROM keys) WHERE id = ?1",
	[ST_KEY_SET_EXPIRY] = "UPDATE keys SET expires_at = ?2 WHERE id = ?1",
	[ST_KEY_SET_REVOKED] = "UPDATE keys SET revoked_at = ?2 WHERE id = ?1",
	[ST_AUDIT_INSERT] = "INSERT INTO audit (time, actor, key_id, action, before, after, reason) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_AUDIT_ALL] = "SELECT seq, time, actor, key_id, action, before, after, reason "
		"FROM audit ORDER BY seq",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_USAGE_LAST] = "INSERT INTO key_usage (key_id, last_used, last_client) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (key_id) DO UPDATE SET last_used = excluded.last_used, "
		"last_client = excluded.last_client WHERE excluded.last_used >= key_usage.last_used",
	[ST_USAGE_HOUR] = "INSERT INTO key_usage_hourly (key_id, client, hour, allowed, denied, "
		"reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key_id, client, hour) DO UPDATE SET "
		"allowed = key_usage_hourly.allowed + excluded.allowed, "
		"denied = key_usage_hourly.denied + excluded.denied, "
		"reported = key_usage_hourly.reported + excluded.reported",
	[ST_USAGE_PRUNE] = "DELETE FROM key_usage_hourly WHERE hour < ?1",
	[ST_USAGE_GET_LAST] = "SELECT last_used, last_client FROM key_usage WHERE key_id = ?1",
	[ST_USAGE_GET_HOURS] = "SELECT client, hour, allowed, denied, reported FROM key_usage_hourly "
		"WHERE key_id = ?1 ORDER BY hour, client",
};

#define SQL_CACHE 48     /* generic statements kept prepared (the console's handful of shapes) */

struct sq {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	struct { char *sql; sqlite3_stmt *s; } cache[SQL_CACHE];
	unsigned cache_next;
};

#define DB(st) (((struct sq *)(st)->be)->db)

static int fail_db(struct store *st)
{
	return store_fail(st, -EIO, "database error: %s", sqlite3_errmsg(DB(st)));
}

static int exec_simple(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(DB(st), sql, NULL, NULL, &msg) != SQLITE_OK) {
		store_fail(st, -EIO, "database error: %s", msg ? msg : sqlite3_errmsg(DB(st)));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int set_user_version(struct store *st, int version)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	return exec_simple(st, sql);
}

static void rollback_simple(struct store *st)
{
	(void)exec_simple(st, "ROLLBACK");
}

static int migrate(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = exec_simple(st, "BEGIN IMMEDIATE")))
		return rc;
	if (sqlite3_prepare_v2(DB(st), "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW)
		rc = fail_db(st);
	else
		rc = store_migrate_steps(st, sqlite3_column_int(s, 0), migrations, exec_simple,
					 set_user_version);
	sqlite3_finalize(s);
	if (rc) {
		store_rollback_keep(st, rollback_simple);
		return rc;
	}
	return exec_simple(st, "COMMIT");
}

static int sq_open(struct store *st, const char *path)
{
	struct sq *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return store_fail(st, -ENOMEM, "out of memory");
	st->be = q;
	if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return store_fail(st, -EIO, "cannot open %s: %s", path,
				  q->db ? sqlite3_errmsg(q->db) : "out of memory");
	/* Writers from other processes (iplock keys while the gate runs) wait instead of failing. */
	sqlite3_busy_timeout(q->db, 5000);
	if ((rc = exec_simple(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
			      "PRAGMA foreign_keys = ON;")))
		return rc;
	if ((rc = migrate(st)))
		return rc;
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &q->stmt[i], NULL) != SQLITE_OK)
			return fail_db(st);
	return 0;
}

static void sq_close(struct store *st)
{
	struct sq *q = st->be;

	if (!q)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->stmt[i]);
	for (int i = 0; i < SQL_CACHE; i++) {
		sqlite3_finalize(q->cache[i].s);
		free(q->cache[i].sql);
	}
	sqlite3_close(q->db);
	free(q);
	st->be = NULL;
}

static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = ((struct sq *)st->be)->stmt[id];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

static int step_done(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : fail_db(st);
}

static int run(struct store *st, enum stmt_id id)
{
	return step_done(st, stmt_get(st, id));
}

static int sq_begin(struct store *st)
{
	return run(st, ST_BEGIN);
}

static int sq_commit(struct store *st)
{
	return run(st, ST_COMMIT);
}

static void sq_rollback(struct store *st)
{
	(void)run(st, ST_ROLLBACK);
}

static int sq_read_begin(struct store *st)
{
	return exec_simple(st, "BEGIN");
}

static void sq_read_end(struct store *st)
{
	(void)exec_simple(st, "COMMIT");
}

static void copy_col(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	size_t n = t ? strlen((const char *)t) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

static void row_to_key(sqlite3_stmt *s, struct key_info *k)
{
	char buf[32];

	memset(k, 0, sizeof(*k));
	copy_col(k->id, sizeof(k->id), s, 0);
	copy_col(k->hash, sizeof(k->hash), s, 1);
	copy_col(k->masked, sizeof(k->masked), s, 2);
	copy_col(buf, sizeof(buf), s, 3);
	key_type_parse(buf, &k->type);
	copy_col(buf, sizeof(buf), s, 4);
	key_mode_parse(buf, &k->mode);
	copy_col(k->name, sizeof(k->name), s, 5);
	k->created = sqlite3_column_int64(s, 6);
	k->expires_at = sqlite3_column_int64(s, 7);
	k->revoked_at = sqlite3_column_int64(s, 8);
	copy_col(k->rotated_from, sizeof(k->rotated_from), s, 9);
	k->gen = sqlite3_column_int64(s, 10);
	const char *note = (const char *)sqlite3_column_text(s, 11);
	k->note = note && note[0] ? strdup(note) : NULL;   /* NULL on failure: shown as none */
	k->allow_report = sqlite3_column_int(s, 12) != 0;
}

static int sq_key_row(struct store *st, bool by_hash, const char *arg, struct key_info *out)
{
	sqlite3_stmt *s = stmt_get(st, by_hash ? ST_KEY_BY_HASH : ST_KEY_BY_ID);
	int rc;

	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		row_to_key(s, out);
		rc = 0;
	} else {
		rc = rc == SQLITE_DONE ? -ENOENT : fail_db(st);
	}
	sqlite3_reset(s);
	return rc;
}

static int sq_key_rows(struct store *st, int64_t after, struct key_info **out, size_t *n)
{
	sqlite3_stmt *s = stmt_get(st, after < 0 ? ST_KEY_ALL : ST_KEY_CHANGED);
	struct key_info *keys = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	if (after >= 0)
		sqlite3_bind_int64(s, 1, after);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_grow(&keys, &cap, cnt, sizeof(*keys))) {
			rc = -ENOMEM;
			goto out;
		}
		row_to_key(s, &keys[cnt++]);
	}
	if (rc != SQLITE_DONE) {
		rc = fail_db(st);
		goto out;
	}
	sqlite3_reset(s);
	*out = keys;
	*n = cnt;
	return 0;
out:
	sqlite3_reset(s);
	free(keys);
	return rc;
}

static int sq_children(struct store *st, struct key_info *k)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_OF);
	size_t cap = 0;
	int rc;

	sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_grow(&k->allow, &cap, k->n_allow, sizeof(*k->allow)))
			goto nomem;
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (!(k->allow[k->n_allow] = strdup(t ? t : "")))
			goto nomem;
		k->n_allow++;
	}
	if (rc != SQLITE_DONE)
		return fail_db(st);
	sqlite3_reset(s);

	s = stmt_get(st, ST_PERMS_OF);
	cap = 0;
	sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_grow(&k->perms, &cap, k->n_perms, sizeof(*k->perms)))
			goto nomem;
		struct key_perm *p = &k->perms[k->n_perms++];
		char lvl[16];
		copy_col(p->resource, sizeof(p->resource), s, 0);
		copy_col(lvl, sizeof(lvl), s, 1);
		p->level = PERM_NONE;
		perm_level_parse(lvl, &p->level);
	}
	if (rc != SQLITE_DONE)
		return fail_db(st);
	sqlite3_reset(s);
	return 0;
nomem:
	sqlite3_reset(s);
	return -ENOMEM;
}

static int sq_key_insert(struct store *st, const struct key_info *k)
{
	sqlite3_stmt *s = stmt_get(st, ST_KEY_INSERT);

	sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, k->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, k->masked, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, key_type_name(k->type), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, key_mode_name(k->mode), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, k->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, k->created);
	if (k->rotated_from[0])
		sqlite3_bind_text(s, 8, k->rotated_from, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int sq_allow_add(struct store *st, const char *id, const char *entry)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_INSERT);

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, entry, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int sq_allow_del(struct store *st, const char *id, const char *entry, bool *removed)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_DELETE);
	int rc;

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, entry, -1, SQLITE_STATIC);
	rc = step_done(st, s);
	*removed = !rc && sqlite3_changes(DB(st)) > 0;
	return rc;
}

static int sq_allow_clear(struct store *st, const char *id)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_CLEAR);

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int sq_perm_set(struct store *st, const char *id, const char *resource,
		       enum perm_level level)
{
	sqlite3_stmt *s;

	if (level == PERM_NONE) {
		s = stmt_get(st, ST_PERM_DELETE);
	} else {
		s = stmt_get(st, ST_PERM_UPSERT);
		sqlite3_bind_text(s, 3, perm_level_name(level), -1, SQLITE_STATIC);
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, resource, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int sq_bump(struct store *st, const char *id)
{
	sqlite3_stmt *s = stmt_get(st, ST_KEY_BUMP);

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int sq_set_time(struct store *st, const char *id, enum store_time_col col, int64_t t)
{
	sqlite3_stmt *s = stmt_get(st, col == STORE_COL_REVOKED ? ST_KEY_SET_REVOKED :
				   ST_KEY_SET_EXPIRY);

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, t);
	return step_done(st, s);
}

static int sq_audit_add(struct store *st, int64_t time, const char *actor, const char *id,
			const char *action, const char *before, const char *after,
			const char *reason)
{
	sqlite3_stmt *s = stmt_get(st, ST_AUDIT_INSERT);

	sqlite3_bind_int64(s, 1, time);
	sqlite3_bind_text(s, 2, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC);
	if (before)
		sqlite3_bind_text(s, 5, before, -1, SQLITE_STATIC);
	if (after)
		sqlite3_bind_text(s, 6, after, -1, SQLITE_STATIC);
	if (reason)
		sqlite3_bind_text(s, 7, reason, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int sq_audit_each(struct store *st, int (*cb)(const struct audit_record *r, void *arg),
			 void *arg)
{
	sqlite3_stmt *s = stmt_get(st, ST_AUDIT_ALL);
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct audit_record r = {
			.seq = sqlite3_column_int64(s, 0),
			.time = sqlite3_column_int64(s, 1),
			.actor = (const char *)sqlite3_column_text(s, 2),
			.key_id = (const char *)sqlite3_column_text(s, 3),
			.action = (const char *)sqlite3_column_text(s, 4),
			.before = (const char *)sqlite3_column_text(s, 5),
			.after = (const char *)sqlite3_column_text(s, 6),
			.reason = (const char *)sqlite3_column_text(s, 7),
		};
		if (cb(&r, arg))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rc = fail_db(st);
	else
		rc = 0;
	sqlite3_reset(s);
	return rc;
}

static int sq_data_version(struct store *st, int64_t *out)
{
	sqlite3_stmt *s = stmt_get(st, ST_DATA_VERSION);
	int rc = sqlite3_step(s);

	if (rc != SQLITE_ROW) {
		rc = fail_db(st);
		sqlite3_reset(s);
		return rc;
	}
	*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

static int sq_usage_write(struct store *st, const struct usage_rec *r, size_t n,
			  int64_t prune_before)
{
	int rc;

	if ((rc = sq_begin(st)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++) {
		sqlite3_stmt *s = stmt_get(st, ST_USAGE_LAST);
		sqlite3_bind_text(s, 1, r[i].key_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, r[i].last_used);
		sqlite3_bind_text(s, 3, r[i].client, -1, SQLITE_STATIC);
		if ((rc = step_done(st, s)))
			break;
		s = stmt_get(st, ST_USAGE_HOUR);
		sqlite3_bind_text(s, 1, r[i].key_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, r[i].client, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, r[i].hour);
		sqlite3_bind_int64(s, 4, r[i].allowed);
		sqlite3_bind_int64(s, 5, r[i].denied);
		sqlite3_bind_int64(s, 6, r[i].reported);
		rc = step_done(st, s);
	}
	if (!rc) {
		sqlite3_stmt *s = stmt_get(st, ST_USAGE_PRUNE);
		sqlite3_bind_int64(s, 1, prune_before);
		rc = step_done(st, s);
	}
	if (rc) {
		sq_rollback(st);
		return rc;
	}
	return sq_commit(st);
}

static int sq_usage_get(struct store *st, const char *key_id, int64_t *last_used,
			char *last_client, size_t cap, struct usage_rec **hours, size_t *n)
{
	sqlite3_stmt *s = stmt_get(st, ST_USAGE_GET_LAST);
	struct usage_rec *h = NULL;
	size_t cnt = 0, hcap = 0;
	int rc;

	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*last_used = sqlite3_column_int64(s, 0);
		if (cap)
			copy_col(last_client, cap, s, 1);
	} else if (rc != SQLITE_DONE) {
		rc = fail_db(st);
		sqlite3_reset(s);
		return rc;
	}
	sqlite3_reset(s);
	s = stmt_get(st, ST_USAGE_GET_HOURS);
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (store_grow(&h, &hcap, cnt, sizeof(*h))) {
			sqlite3_reset(s);
			free(h);
			return -ENOMEM;
		}
		struct usage_rec *u = &h[cnt++];
		memset(u, 0, sizeof(*u));
		snprintf(u->key_id, sizeof(u->key_id), "%s", key_id);
		copy_col(u->client, sizeof(u->client), s, 0);
		u->hour = sqlite3_column_int64(s, 1);
		u->allowed = sqlite3_column_int64(s, 2);
		u->denied = sqlite3_column_int64(s, 3);
		u->reported = sqlite3_column_int64(s, 4);
	}
	if (rc != SQLITE_DONE) {
		rc = fail_db(st);
		sqlite3_reset(s);
		free(h);
		return rc;
	}
	sqlite3_reset(s);
	*hours = h;
	*n = cnt;
	return 0;
}

/* A generic statement, prepared once per SQL text (a small round-robin cache). */
static sqlite3_stmt *sql_prepare(struct store *st, const char *sql)
{
	struct sq *q = st->be;

	for (int i = 0; i < SQL_CACHE; i++)
		if (q->cache[i].sql && !strcmp(q->cache[i].sql, sql)) {
			sqlite3_reset(q->cache[i].s);
			sqlite3_clear_bindings(q->cache[i].s);
			return q->cache[i].s;
		}
	sqlite3_stmt *s = NULL;
	char *copy = strdup(sql);
	if (!copy || sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
	    SQLITE_OK) {
		free(copy);
		return NULL;
	}
	unsigned slot = q->cache_next++ % SQL_CACHE;
	sqlite3_finalize(q->cache[slot].s);
	free(q->cache[slot].sql);
	q->cache[slot].sql = copy;
	q->cache[slot].s = s;
	return s;
}

static int sq_sql(struct store *st, const char *sql, const char *const *p, size_t np,
		  struct store_rows *rows)
{
	sqlite3_stmt *s = sql_prepare(st, sql);
	size_t cap = 0, cnt = 0;
	char **v = NULL;
	int rc, ncol;

	if (rows)
		memset(rows, 0, sizeof(*rows));
	if (!s)
		return fail_db(st);
	for (size_t i = 0; i < np; i++) {
		char name[24];
		snprintf(name, sizeof(name), "$%zu", i + 1);
		int idx = sqlite3_bind_parameter_index(s, name);
		if (idx > 0 && p[i])
			sqlite3_bind_text(s, idx, p[i], -1, SQLITE_STATIC);
	}
	ncol = sqlite3_column_count(s);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!rows)
			continue;
		for (int j = 0; j < ncol; j++) {
			const unsigned char *t = sqlite3_column_text(s, j);
			if (store_grow(&v, &cap, cnt, sizeof(*v)))
				goto nomem;
			v[cnt] = NULL;
			if (t && !(v[cnt] = strdup((const char *)t)))
				goto nomem;
			cnt++;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = fail_db(st);
		goto fail;
	}
	sqlite3_reset(s);
	if (rows) {
		rows->v = v;
		rows->ncol = (size_t)ncol;
		rows->n = ncol ? cnt / (size_t)ncol : 0;
	}
	return 0;
nomem:
	rc = store_fail(st, -ENOMEM, "out of memory");
fail:
	sqlite3_reset(s);
	for (size_t i = 0; i < cnt; i++)
		free(v[i]);
	free(v);
	return rc;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.key_row = sq_key_row,
	.key_rows = sq_key_rows,
	.children = sq_children,
	.key_insert = sq_key_insert,
	.allow_add = sq_allow_add,
	.allow_del = sq_allow_del,
	.allow_clear = sq_allow_clear,
	.perm_set = sq_perm_set,
	.bump = sq_bump,
	.set_time = sq_set_time,
	.audit_add = sq_audit_add,
	.audit_each = sq_audit_each,
	.data_version = sq_data_version,
	.usage_write = sq_usage_write,
	.usage_get = sq_usage_get,
	.sql = sq_sql,
};
