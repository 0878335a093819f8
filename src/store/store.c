/* store.c: the API-key store on SQLite. One connection per process; every write runs in a
 * BEGIN IMMEDIATE transaction with its audit record, so a failed call changes nothing. */
#include "store/store.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "net/addr.h"

/* Migrations: entry i brings the schema from version i to i + 1. Never edit a shipped entry;
 * append a new one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE keys ("
	"  id TEXT PRIMARY KEY,"
	"  hash TEXT NOT NULL UNIQUE,"
	"  masked TEXT NOT NULL,"
	"  type TEXT NOT NULL CHECK (type IN ('secret','restricted','publishable','org')),"
	"  mode TEXT NOT NULL CHECK (mode IN ('live','test')),"
	"  name TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  expires_at INTEGER,"
	"  revoked_at INTEGER,"
	"  rotated_from TEXT,"
	"  gen INTEGER NOT NULL);"
	"CREATE INDEX keys_gen ON keys(gen);"
	"CREATE TABLE allow ("
	"  key_id TEXT NOT NULL REFERENCES keys(id),"
	"  entry TEXT NOT NULL,"
	"  PRIMARY KEY (key_id, entry)) WITHOUT ROWID;"
	"CREATE TABLE perms ("
	"  key_id TEXT NOT NULL REFERENCES keys(id),"
	"  resource TEXT NOT NULL,"
	"  level TEXT NOT NULL CHECK (level IN ('read','write')),"
	"  PRIMARY KEY (key_id, resource)) WITHOUT ROWID;"
	"CREATE TABLE audit ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  key_id TEXT,"
	"  action TEXT NOT NULL,"
	"  before TEXT,"
	"  after TEXT,"
	"  reason TEXT);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

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
	ST_COUNT,
};

#define KEY_COLS "id, hash, masked, type, mode, name, created, expires_at, revoked_at, " \
	"rotated_from, gen"

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
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	char err[256];
};

static int fail(struct store *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct store *st, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	/* reasons quote the caller's input (an id, an entry): a key given by mistake is masked */
	secret_redact(st->err, strlen(st->err));
	return rc;
}

static int fail_db(struct store *st)
{
	return fail(st, -EIO, "database error: %s", sqlite3_errmsg(st->db));
}

static char open_err[256];

const char *store_errmsg(const struct store *st)
{
	return st ? st->err : open_err;
}

int store_schema_version(void)
{
	return SCHEMA_VERSION;
}

/* ---- names ---- */

static const char *const type_names[] = { "secret", "restricted", "publishable", "org" };
static const char *const mode_names[] = { "live", "test" };
static const char *const level_names[] = { "none", "read", "write" };

const char *key_type_name(enum key_type t)
{
	return (unsigned)t < 4 ? type_names[t] : "?";
}

const char *key_mode_name(enum key_mode m)
{
	return (unsigned)m < 2 ? mode_names[m] : "?";
}

const char *perm_level_name(enum perm_level l)
{
	return (unsigned)l < 3 ? level_names[l] : "?";
}

bool key_type_parse(const char *s, enum key_type *out)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, type_names[i])) {
			*out = (enum key_type)i;
			return true;
		}
	return false;
}

bool key_mode_parse(const char *s, enum key_mode *out)
{
	for (int i = 0; i < 2; i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum key_mode)i;
			return true;
		}
	return false;
}

bool perm_level_parse(const char *s, enum perm_level *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, level_names[i])) {
			*out = (enum perm_level)i;
			return true;
		}
	return false;
}

bool store_resource_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > STORE_RESOURCE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static const char *const prefixes[4][2] = {
	[KEY_SECRET] = { "sk_live_", "sk_test_" },
	[KEY_RESTRICTED] = { "rk_live_", "rk_test_" },
	[KEY_PUBLISHABLE] = { "pk_live_", "pk_test_" },
	[KEY_ORG] = { "sk_org_live_", "sk_org_test_" },
};

const char *key_prefix(enum key_type t, enum key_mode m)
{
	if ((unsigned)t >= 4 || (unsigned)m >= 2)
		return "";
	return prefixes[t][m];
}

bool key_parse(const char *key, size_t len, enum key_type *type, enum key_mode *mode)
{
	/* org first: "sk_org_" would otherwise never match since "sk_" has no "org_" mode */
	static const enum key_type order[] = { KEY_ORG, KEY_SECRET, KEY_RESTRICTED, KEY_PUBLISHABLE };

	for (size_t i = 0; i < 4; i++) {
		for (int m = 0; m < 2; m++) {
			const char *p = prefixes[order[i]][m];
			size_t pl = strlen(p);
			if (len < pl || memcmp(key, p, pl))
				continue;
			size_t body = len - pl;
			if (body < 10 || body > 247)
				return false;
			for (size_t j = pl; j < len; j++) {
				char c = key[j];
				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				      (c >= '0' && c <= '9')))
					return false;
			}
			if (type)
				*type = order[i];
			if (mode)
				*mode = (enum key_mode)m;
			return true;
		}
	}
	return false;
}

const char *store_entry_canon(const char *entry, char *out, size_t cap)
{
	struct cidr c;
	size_t n = strlen(entry);
	const char *err;
	int rc;

	if (n == 0)
		return "empty allowlist entry";
	if (n > STORE_ENTRY_MAX)
		return "allowlist entry too long";
	if ((err = cidr_parse(entry, n, &c)))
		return err;
	/* a single address reads best without its /32 or /128 */
	if (c.prefix == (c.net.family == AF_INET ? 32 : 128))
		rc = ipaddr_format(&c.net, out, cap);
	else
		rc = cidr_format(&c, out, cap);
	return rc ? "allowlist entry too long" : NULL;
}

void store_actor_default(char *out, size_t cap)
{
	uid_t uid = geteuid();
	struct passwd *pw = getpwuid(uid);

	if (pw && pw->pw_name)
		snprintf(out, cap, "%s", pw->pw_name);
	else
		snprintf(out, cap, "uid:%u", (unsigned)uid);
}

/* ---- open / close ---- */

static int exec_simple(struct store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fail(st, -EIO, "database error: %s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int migrate(struct store *st)
{
	sqlite3_stmt *s = NULL;
	int version = 0, rc;

	if ((rc = exec_simple(st, "BEGIN IMMEDIATE")))
		return rc;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		rc = fail_db(st);
		goto out;
	}
	version = sqlite3_column_int(s, 0);
	if (version > SCHEMA_VERSION) {
		rc = fail(st, -EPROTO, "database schema version %d is newer than this iplock (%d)",
			  version, SCHEMA_VERSION);
		goto out;
	}
	for (; version < SCHEMA_VERSION; version++) {
		char sql[64];
		if ((rc = exec_simple(st, migrations[version])))
			goto out;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
		if ((rc = exec_simple(st, sql)))
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	if (rc) {
		char keep[sizeof(st->err)];
		memcpy(keep, st->err, sizeof(keep));
		exec_simple(st, "ROLLBACK");
		memcpy(st->err, keep, sizeof(keep));
		return rc;
	}
	return exec_simple(st, "COMMIT");
}

int store_open(const char *path, struct store **out)
{
	struct store *st = calloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	if (!st)
		return -ENOMEM;
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = fail(st, -EIO, "cannot open %s: %s", path,
			  st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto out;
	}
	/* Writers from other processes (iplock keys while the gate runs) wait instead of failing. */
	sqlite3_busy_timeout(st->db, 5000);
	if ((rc = exec_simple(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
			      "PRAGMA foreign_keys = ON;")))
		goto out;
	if ((rc = migrate(st)))
		goto out;
	for (int i = 0; i < ST_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			rc = fail_db(st);
			goto out;
		}
	*out = st;
	return 0;
out:
	/* the caller has no store: store_errmsg(NULL) gives the reason */
	memcpy(open_err, st->err, sizeof(open_err));
	store_close(st);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st);
}


/* ---- reading ---- */

static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
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
}

void store_key_clear(struct key_info *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n_allow; i++)
		free(k->allow[i]);
	free(k->allow);
	free(k->perms);
	k->allow = NULL;
	k->perms = NULL;
	k->n_allow = k->n_perms = 0;
}

/* Loads the allowlist and permissions of k->id. */
static int load_children(struct store *st, struct key_info *k)
{
	sqlite3_stmt *s = stmt_get(st, ST_ALLOW_OF);
	size_t cap = 0;
	int rc;

	sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (k->n_allow == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			char **na = realloc(k->allow, ncap * sizeof(*na));
			if (!na)
				return -ENOMEM;
			k->allow = na;
			cap = ncap;
		}
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (!(k->allow[k->n_allow] = strdup(t ? t : "")))
			return -ENOMEM;
		k->n_allow++;
	}
	if (rc != SQLITE_DONE)
		return fail_db(st);
	sqlite3_reset(s);

	s = stmt_get(st, ST_PERMS_OF);
	cap = 0;
	sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (k->n_perms == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct key_perm *np = realloc(k->perms, ncap * sizeof(*np));
			if (!np)
				return -ENOMEM;
			k->perms = np;
			cap = ncap;
		}
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
}

static int get_one(struct store *st, enum stmt_id which, const char *arg, struct key_info *out)
{
	sqlite3_stmt *s = stmt_get(st, which);
	int rc;

	memset(out, 0, sizeof(*out));
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		return fail(st, -ENOENT, "no such key: %.64s", arg);
	}
	if (rc != SQLITE_ROW) {
		rc = fail_db(st);
		sqlite3_reset(s);
		return rc;
	}
	row_to_key(s, out);
	sqlite3_reset(s);
	if ((rc = load_children(st, out))) {
		store_key_clear(out);
		return rc;
	}
	return 0;
}

int store_key_get(struct store *st, const char *id, struct key_info *out)
{
	return get_one(st, ST_KEY_BY_ID, id, out);
}

int store_key_get_by_hash(struct store *st, const char *sha256_hex, struct key_info *out)
{
	return get_one(st, ST_KEY_BY_HASH, sha256_hex, out);
}

int store_key_find(struct store *st, const char *id_or_key, struct key_info *out, bool *by_key)
{
	size_t len = strlen(id_or_key);
	char hex[SHA256_HEX_LEN + 1], masked[SECRET_MASK_MAX];
	int rc;

	*by_key = false;
	if (!key_parse(id_or_key, len, NULL, NULL))
		return store_key_get(st, id_or_key, out);
	/* the store holds only hashes: a key's text is found by its SHA-256, as the gate does */
	*by_key = true;
	secret_sha256_hex(id_or_key, len, hex);
	rc = store_key_get_by_hash(st, hex, out);
	if (rc == -ENOENT) {
		secret_mask(id_or_key, len, masked);
		return fail(st, -ENOENT, "no key %s in this store (looked up by the SHA-256 of its "
			    "text)", masked);
	}
	return rc;
}

void store_key_list_free(struct key_info *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_key_clear(&keys[i]);
	free(keys);
}

static int list_rows(struct store *st, sqlite3_stmt *s, struct key_info **out, size_t *n)
{
	struct key_info *keys = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct key_info *nk = realloc(keys, ncap * sizeof(*nk));
			if (!nk) {
				rc = -ENOMEM;
				goto out;
			}
			keys = nk;
			cap = ncap;
		}
		row_to_key(s, &keys[cnt++]);
	}
	if (rc != SQLITE_DONE) {
		rc = fail_db(st);
		goto out;
	}
	sqlite3_reset(s);
	for (size_t i = 0; i < cnt; i++)
		if ((rc = load_children(st, &keys[i])))
			goto out;
	*out = keys;
	*n = cnt;
	return 0;
out:
	sqlite3_reset(s);
	store_key_list_free(keys, cnt);
	return rc;
}

int store_key_list(struct store *st, struct key_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	return list_rows(st, stmt_get(st, ST_KEY_ALL), out, n);
}

int store_key_changed(struct store *st, int64_t after, struct key_info **out, size_t *n,
		      int64_t *max_gen)
{
	sqlite3_stmt *s = stmt_get(st, ST_KEY_CHANGED);
	int rc;

	*out = NULL;
	*n = 0;
	sqlite3_bind_int64(s, 1, after);
	/* one read transaction so rows and their children are one consistent snapshot */
	if ((rc = exec_simple(st, "BEGIN")))
		return rc;
	rc = list_rows(st, s, out, n);
	exec_simple(st, "COMMIT");
	if (rc)
		return rc;
	*max_gen = after;
	for (size_t i = 0; i < *n; i++)
		if ((*out)[i].gen > *max_gen)
			*max_gen = (*out)[i].gen;
	return 0;
}

int store_data_version(struct store *st, int64_t *out)
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

/* ---- JSON ---- */

json_t *store_key_json(const struct key_info *k)
{
	json_t *o = json_object(), *allow = json_array(), *perms = json_object();

	if (!o || !allow || !perms) {
		json_decref(o);
		json_decref(allow);
		json_decref(perms);
		return NULL;
	}
	for (size_t i = 0; i < k->n_allow; i++)
		json_array_append_new(allow, json_string(k->allow[i]));
	for (size_t i = 0; i < k->n_perms; i++)
		json_object_set_new(perms, k->perms[i].resource,
				    json_string(perm_level_name(k->perms[i].level)));
	json_object_set_new(o, "id", json_string(k->id));
	json_object_set_new(o, "masked", json_string(k->masked));
	json_object_set_new(o, "type", json_string(key_type_name(k->type)));
	json_object_set_new(o, "mode", json_string(key_mode_name(k->mode)));
	json_object_set_new(o, "name", json_string(k->name));
	json_object_set_new(o, "created", json_integer(k->created));
	json_object_set_new(o, "expires_at", k->expires_at ? json_integer(k->expires_at) : json_null());
	json_object_set_new(o, "revoked_at", k->revoked_at ? json_integer(k->revoked_at) : json_null());
	json_object_set_new(o, "rotated_from",
			    k->rotated_from[0] ? json_string(k->rotated_from) : json_null());
	json_object_set_new(o, "allow", allow);
	json_object_set_new(o, "permissions", perms);
	return o;
}

static char *key_json_text(const struct key_info *k)
{
	json_t *j = store_key_json(k);
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return t;
}

/* ---- writing ---- */

static int tx_begin(struct store *st)
{
	sqlite3_stmt *s = stmt_get(st, ST_BEGIN);
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : fail_db(st);
}

static int tx_end(struct store *st, int rc)
{
	sqlite3_stmt *s = stmt_get(st, rc ? ST_ROLLBACK : ST_COMMIT);
	int r = sqlite3_step(s);

	sqlite3_reset(s);
	if (rc)
		return rc;
	if (r != SQLITE_DONE) {
		rc = fail_db(st);
		s = stmt_get(st, ST_ROLLBACK);
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	return rc;
}

static int step_done(struct store *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : fail_db(st);
}

static int bump(struct store *st, const char *id)
{
	sqlite3_stmt *s = stmt_get(st, ST_KEY_BUMP);

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	return step_done(st, s);
}

static int audit(struct store *st, const char *actor, const char *id, const char *action,
		 const struct key_info *before, const struct key_info *after, const char *reason)
{
	sqlite3_stmt *s;
	char *b = before ? key_json_text(before) : NULL;
	char *a = after ? key_json_text(after) : NULL;
	char *why = reason ? strdup(reason) : NULL;
	int rc;

	if ((before && !b) || (after && !a) || (reason && !why)) {
		rc = -ENOMEM;
		goto out;
	}
	s = stmt_get(st, ST_AUDIT_INSERT);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(s, 2, actor && actor[0] ? actor : "unknown", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, action, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(s, 5, b, -1, SQLITE_STATIC);
	if (a)
		sqlite3_bind_text(s, 6, a, -1, SQLITE_STATIC);
	if (why) {
		/* a reason is shown by every audit listing: a key quoted in it is kept masked */
		secret_redact(why, strlen(why));
		sqlite3_bind_text(s, 7, why, -1, SQLITE_STATIC);
	}
	rc = step_done(st, s);
out:
	free(b);
	free(a);
	free(why);
	return rc;
}

/* Finishes a change of key `id`: bumps its gen, reloads it and writes the audit record. */
static int finish_change(struct store *st, const char *id, const char *action,
			 const struct key_info *before, const char *actor, const char *reason,
			 struct key_info *after_out)
{
	struct key_info after;
	int rc;

	if ((rc = bump(st, id)))
		return rc;
	if ((rc = store_key_get(st, id, &after)))
		return rc;
	rc = audit(st, actor, id, action, before, &after, reason);
	if (!rc && after_out)
		*after_out = after;
	else
		store_key_clear(&after);
	return rc;
}

static int add_entries(struct store *st, const char *id, const char *const *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char canon[STORE_ENTRY_MAX + 1];
		const char *why = store_entry_canon(e[i], canon, sizeof(canon));
		if (why)
			return fail(st, -EINVAL, "bad allowlist entry '%.64s': %s", e[i], why);
		sqlite3_stmt *s = stmt_get(st, ST_ALLOW_INSERT);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, canon, -1, SQLITE_TRANSIENT);
		int rc = step_done(st, s);
		if (rc)
			return rc;
	}
	return 0;
}

static int set_perm(struct store *st, const char *id, const char *resource,
		    enum perm_level level)
{
	sqlite3_stmt *s;

	if (!store_resource_valid(resource))
		return fail(st, -EINVAL, "bad resource name '%.64s' (use a-z, 0-9, '_', '.')",
			    resource);
	if (level == PERM_NONE) {
		s = stmt_get(st, ST_PERM_DELETE);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, resource, -1, SQLITE_STATIC);
	} else {
		s = stmt_get(st, ST_PERM_UPSERT);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, resource, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, perm_level_name(level), -1, SQLITE_STATIC);
	}
	return step_done(st, s);
}

/* Inserts a new key row with fresh id and secret; children are added by the caller. */
static int insert_key(struct store *st, enum key_type type, enum key_mode mode,
		      const char *name, const char *rotated_from, char *secret_out, size_t cap,
		      char id_out[STORE_ID_MAX])
{
	const char *prefix = key_prefix(type, mode);
	size_t pl = strlen(prefix);
	char hash[SHA256_HEX_LEN + 1], masked[SECRET_MASK_MAX], shown[STORE_NAME_MAX + 1];
	sqlite3_stmt *s;
	int rc;

	if (cap < pl + STORE_KEY_BODY + 1)
		return fail(st, -ENOBUFS, "key buffer too small");
	memcpy(id_out, "key_", 4);
	memcpy(secret_out, prefix, pl);
	if (secret_random_alnum(id_out + 4, STORE_ID_LEN - 4) ||
	    secret_random_alnum(secret_out + pl, STORE_KEY_BODY))
		return fail(st, -EIO, "random source failed");
	secret_sha256_hex(secret_out, pl + STORE_KEY_BODY, hash);
	secret_mask(secret_out, pl + STORE_KEY_BODY, masked);
	s = stmt_get(st, ST_KEY_INSERT);
	sqlite3_bind_text(s, 1, id_out, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, masked, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, key_type_name(type), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, key_mode_name(mode), -1, SQLITE_STATIC);
	/* the name is listed everywhere: a key pasted into it is stored masked */
	snprintf(shown, sizeof(shown), "%s", name ? name : "");
	secret_redact(shown, strlen(shown));
	sqlite3_bind_text(s, 6, shown, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, (sqlite3_int64)time(NULL));
	if (rotated_from)
		sqlite3_bind_text(s, 8, rotated_from, -1, SQLITE_STATIC);
	rc = step_done(st, s);
	return rc;
}

static int check_spec(struct store *st, const struct key_spec *spec)
{
	if ((unsigned)spec->type > KEY_ORG || (unsigned)spec->mode > KEY_TEST)
		return fail(st, -EINVAL, "bad key type or mode");
	if (spec->name && strlen(spec->name) > STORE_NAME_MAX)
		return fail(st, -EINVAL, "name longer than %d bytes", STORE_NAME_MAX);
	if (spec->type == KEY_PUBLISHABLE && spec->n_allow)
		return fail(st, -EINVAL, "publishable keys cannot have an IP allowlist "
			    "(they are made to be public)");
	if (spec->type != KEY_RESTRICTED && spec->n_perms)
		return fail(st, -EINVAL, "permissions apply to restricted keys only");
	return 0;
}

int store_key_create(struct store *st, const struct key_spec *spec, const char *actor,
		     char *secret_out, size_t cap, struct key_info *info_out)
{
	char id[STORE_ID_MAX];
	int rc;

	if ((rc = check_spec(st, spec)))
		return rc;
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = insert_key(st, spec->type, spec->mode, spec->name, NULL, secret_out, cap, id)))
		goto out;
	if ((rc = add_entries(st, id, spec->allow, spec->n_allow)))
		goto out;
	for (size_t i = 0; i < spec->n_perms && !rc; i++)
		rc = set_perm(st, id, spec->perms[i].resource, spec->perms[i].level);
	if (rc)
		goto out;
	rc = finish_change(st, id, "create", NULL, actor, NULL, info_out);
out:
	rc = tx_end(st, rc);
	if (rc && cap)
		memset(secret_out, 0, cap);
	return rc;
}

/* Loads a key for a change inside the transaction; revoked keys cannot change. */
static int load_live(struct store *st, const char *id, struct key_info *k)
{
	int rc = store_key_get(st, id, k);

	if (rc)
		return rc;
	if (k->revoked_at) {
		store_key_clear(k);
		return fail(st, -EPERM, "key %s is revoked", id);
	}
	return 0;
}

int store_key_restrict(struct store *st, const char *id, bool clear,
		       const char *const *add, size_t n_add,
		       const char *const *remove, size_t n_remove, const char *actor)
{
	struct key_info before = { 0 };
	int rc;

	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = load_live(st, id, &before)))
		goto out;
	if (before.type == KEY_PUBLISHABLE && n_add) {
		rc = fail(st, -EINVAL, "publishable keys cannot have an IP allowlist "
			  "(they are made to be public)");
		goto out;
	}
	if (clear) {
		sqlite3_stmt *s = stmt_get(st, ST_ALLOW_CLEAR);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		if ((rc = step_done(st, s)))
			goto out;
	}
	for (size_t i = 0; i < n_remove; i++) {
		char canon[STORE_ENTRY_MAX + 1];
		const char *why = store_entry_canon(remove[i], canon, sizeof(canon));
		if (why) {
			rc = fail(st, -EINVAL, "bad allowlist entry '%.64s': %s", remove[i], why);
			goto out;
		}
		sqlite3_stmt *s = stmt_get(st, ST_ALLOW_DELETE);
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, canon, -1, SQLITE_TRANSIENT);
		if ((rc = step_done(st, s)))
			goto out;
		if (sqlite3_changes(st->db) == 0 && !clear) {
			rc = fail(st, -EINVAL, "'%.64s' is not in the allowlist of %s", remove[i], id);
			goto out;
		}
	}
	if ((rc = add_entries(st, id, add, n_add)))
		goto out;
	rc = finish_change(st, id, "restrict", &before, actor, NULL, NULL);
out:
	store_key_clear(&before);
	return tx_end(st, rc);
}

int store_key_perms(struct store *st, const char *id, const struct key_perm *perms, size_t n,
		    const char *actor)
{
	struct key_info before = { 0 };
	int rc;

	if (!n)
		return fail(st, -EINVAL, "no permission to change");
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = load_live(st, id, &before)))
		goto out;
	if (before.type != KEY_RESTRICTED) {
		rc = fail(st, -EINVAL, "permissions apply to restricted keys only (%s is %s)", id,
			  key_type_name(before.type));
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++)
		rc = set_perm(st, id, perms[i].resource, perms[i].level);
	if (rc)
		goto out;
	/* one command, one change: a single audit record holds every permission it set */
	rc = finish_change(st, id, "perm", &before, actor, NULL, NULL);
out:
	store_key_clear(&before);
	return tx_end(st, rc);
}

int store_key_perm(struct store *st, const char *id, const char *resource,
		   enum perm_level level, const char *actor)
{
	struct key_perm p = { .level = level };

	if (strlen(resource) > STORE_RESOURCE_MAX)
		return fail(st, -EINVAL, "bad resource name '%.64s' (use a-z, 0-9, '_', '.')",
			    resource);
	memcpy(p.resource, resource, strlen(resource) + 1);
	return store_key_perms(st, id, &p, 1, actor);
}

static int set_time(struct store *st, enum stmt_id which, const char *id, int64_t t)
{
	sqlite3_stmt *s = stmt_get(st, which);

	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, t);
	return step_done(st, s);
}

int store_key_rotate(struct store *st, const char *id, int64_t expire_in_s, const char *actor,
		     char *secret_out, size_t cap, struct key_info *info_out)
{
	struct key_info old = { 0 }, old_after = { 0 };
	char nid[STORE_ID_MAX];
	int64_t now = (int64_t)time(NULL), exp;
	int rc;

	if (expire_in_s < 0 || expire_in_s > STORE_EXPIRE_MAX_S)
		return fail(st, -EINVAL, "the old key may stay valid at most 7 days (10080 minutes)");
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = load_live(st, id, &old)))
		goto out;
	if ((rc = insert_key(st, old.type, old.mode, old.name, old.id, secret_out, cap, nid)))
		goto out;
	/* the replacement inherits everything that limits the key: allowlist and permissions */
	if ((rc = add_entries(st, nid, (const char *const *)old.allow, old.n_allow)))
		goto out;
	for (size_t i = 0; i < old.n_perms && !rc; i++)
		rc = set_perm(st, nid, old.perms[i].resource, old.perms[i].level);
	if (rc)
		goto out;
	exp = now + expire_in_s;
	if (old.expires_at && old.expires_at < exp)
		exp = old.expires_at;
	if ((rc = set_time(st, ST_KEY_SET_EXPIRY, id, exp)))
		goto out;
	if ((rc = finish_change(st, id, "rotate", &old, actor, "rotated out", &old_after)))
		goto out;
	rc = finish_change(st, nid, "create", NULL, actor, "rotation replacement", info_out);
out:
	store_key_clear(&old);
	store_key_clear(&old_after);
	rc = tx_end(st, rc);
	if (rc && cap)
		memset(secret_out, 0, cap);
	return rc;
}

int store_key_expire(struct store *st, const char *id, const char *actor)
{
	struct key_info before = { 0 };
	int rc;

	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = load_live(st, id, &before)))
		goto out;
	if (before.type == KEY_PUBLISHABLE) {
		rc = fail(st, -EPERM, "publishable keys cannot be expired");
		goto out;
	}
	if ((rc = set_time(st, ST_KEY_SET_EXPIRY, id, (int64_t)time(NULL))))
		goto out;
	rc = finish_change(st, id, "expire", &before, actor, NULL, NULL);
out:
	store_key_clear(&before);
	return tx_end(st, rc);
}

static int revoke_loaded(struct store *st, struct key_info *k, const char *actor,
			 const char *reason)
{
	int rc;

	if (k->revoked_at)
		return fail(st, -EALREADY, "key %s is already revoked", k->id);
	if ((rc = set_time(st, ST_KEY_SET_REVOKED, k->id, (int64_t)time(NULL))))
		return rc;
	return finish_change(st, k->id, "revoke", k, actor, reason, NULL);
}

int store_key_revoke(struct store *st, const char *id, const char *actor, const char *reason)
{
	struct key_info k = { 0 };
	int rc;

	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = store_key_get(st, id, &k)))
		goto out;
	rc = revoke_loaded(st, &k, actor, reason);
out:
	store_key_clear(&k);
	return tx_end(st, rc);
}

int store_revoke_by_hash(struct store *st, const char *sha256_hex, const char *actor,
			 const char *reason, char *key_id_out, size_t cap)
{
	struct key_info k = { 0 };
	int rc;

	if (cap)
		key_id_out[0] = '\0';
	if ((rc = tx_begin(st)))
		return rc;
	if ((rc = store_key_get_by_hash(st, sha256_hex, &k)))
		goto out;
	if (cap)
		snprintf(key_id_out, cap, "%s", k.id);
	rc = revoke_loaded(st, &k, actor, reason);
out:
	store_key_clear(&k);
	return tx_end(st, rc);
}

int store_audit_each(struct store *st, int (*cb)(const struct audit_record *r, void *arg),
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
