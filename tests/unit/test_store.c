/* test_store.c: key store: formats, hashing at rest, changes, rotation, audit, concurrency.
 * Runs against SQLite, or against PostgreSQL when IPLOCK_TEST_PG holds a libpq key=value
 * connection string (a fresh database per test; `make unit` starts a throwaway cluster). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include "store/store.h"

#define STORE_FIXTURE_NAME "store"
#include "store_fixture.h"

static void test_key_parse(void **state)
{
	enum key_type t;
	enum key_mode m;
	const char *k1 = "sk_live_abcdefghij";
	const char *k2 = "sk_org_test_0123456789ABCDEF";
	const char *k3 = "rk_test_short";
	const char *k4 = "pk_live_abc-defghijkl";

	(void)state;
	assert_true(key_parse(k1, strlen(k1), &t, &m));
	assert_int_equal(t, KEY_SECRET);
	assert_int_equal(m, KEY_LIVE);
	assert_true(key_parse(k2, strlen(k2), &t, &m));
	assert_int_equal(t, KEY_ORG);
	assert_int_equal(m, KEY_TEST);
	assert_false(key_parse(k3, strlen(k3), &t, &m));     /* body under 10 */
	assert_false(key_parse(k4, strlen(k4), &t, &m));     /* '-' in body */
	assert_false(key_parse("xk_live_abcdefghijk", 19, &t, &m));
	assert_false(key_parse("sk_live_", 8, &t, &m));
	assert_string_equal(key_prefix(KEY_ORG, KEY_LIVE), "sk_org_live_");
	assert_string_equal(key_prefix(KEY_PUBLISHABLE, KEY_TEST), "pk_test_");
}

static void test_entry_canon(void **state)
{
	char out[64];

	(void)state;
	assert_null(store_entry_canon("10.0.0.0/8", out, sizeof(out)));
	assert_string_equal(out, "10.0.0.0/8");
	assert_null(store_entry_canon("::ffff:1.2.3.4", out, sizeof(out)));
	assert_string_equal(out, "1.2.3.4");
	assert_null(store_entry_canon("2001:db8::/32", out, sizeof(out)));
	assert_string_equal(out, "2001:db8::/32");
	assert_null(store_entry_canon("127.0.0.2/32", out, sizeof(out)));
	assert_string_equal(out, "127.0.0.2");
	assert_non_null(store_entry_canon("10.0.0.1/8", out, sizeof(out)));
	assert_non_null(store_entry_canon("300.1.1.1", out, sizeof(out)));
	assert_non_null(store_entry_canon("1.2.3.0/33", out, sizeof(out)));
	assert_non_null(store_entry_canon("", out, sizeof(out)));
}

static void test_create_hashed(void **state)
{
	struct fx *f = *state;
	char secret[STORE_KEY_MAX], hex[SHA256_HEX_LEN + 1];
	const char *allow[] = { "127.0.0.2", "10.0.0.0/8" };
	struct key_perm perms[] = { { "charge", PERM_WRITE }, { "customer", PERM_READ } };
	struct key_spec spec = { .type = KEY_RESTRICTED, .mode = KEY_TEST, .name = "ci",
				 .allow = allow, .n_allow = 2, .perms = perms, .n_perms = 2 };
	struct key_info k, g;

	assert_int_equal(store_key_create(f->st, &spec, "tester", secret, sizeof(secret), &k), 0);
	assert_int_equal(strlen(secret), 8 + 99);
	assert_memory_equal(secret, "rk_test_", 8);
	assert_true(key_parse(secret, strlen(secret), NULL, NULL));
	assert_int_equal(strlen(k.id), STORE_ID_LEN);
	assert_memory_equal(k.id, "key_", 4);
	secret_sha256_hex(secret, strlen(secret), hex);
	assert_string_equal(k.hash, hex);
	assert_int_equal(strlen(k.masked), 8 + 4 + 4);
	assert_int_equal(k.n_allow, 2);
	assert_string_equal(k.allow[0], "10.0.0.0/8");
	assert_int_equal(k.n_perms, 2);
	assert_string_equal(k.perms[0].resource, "charge");
	assert_int_equal(k.perms[0].level, PERM_WRITE);

	assert_int_equal(store_key_get_by_hash(f->st, hex, &g), 0);
	assert_string_equal(g.id, k.id);
	store_key_clear(&g);
	store_key_clear(&k);

	if (pg_base) {
		/* the secret never reaches a table */
		PGconn *c = PQconnectdb(f->path);
		PGresult *r = PQexec(c, "SELECT (SELECT string_agg(k::text, '|') FROM keys k) || "
				     "(SELECT string_agg(a::text, '|') FROM audit a)");
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_true(strlen(PQgetvalue(r, 0, 0)) > 100);
		assert_null(strstr(PQgetvalue(r, 0, 0), secret + 8));
		PQclear(r);
		PQfinish(c);
		return;
	}
	/* the secret never reaches the database file */
	FILE *fp = fopen(f->path, "rb");
	char *buf = malloc(1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, fp);
	fclose(fp);
	assert_null(memmem(buf, n, secret + 8, 99));
	free(buf);
}

static void test_bad_input_changes_nothing(void **state)
{
	struct fx *f = *state;
	char secret[STORE_KEY_MAX];
	const char *bad[] = { "127.0.0.1", "10.0.0.300" };
	const char *ok[] = { "127.0.0.1" };
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_LIVE, .allow = bad, .n_allow = 2 };
	struct key_info *all, k;
	size_t n;

	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), NULL), -EINVAL);
	assert_string_equal(secret, "");
	assert_non_null(strstr(store_errmsg(f->st), "10.0.0.300"));
	spec.type = KEY_PUBLISHABLE;
	spec.allow = ok;
	spec.n_allow = 1;
	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), NULL), -EINVAL);
	assert_int_equal(store_key_list(f->st, &all, &n), 0);
	assert_int_equal(n, 0);
	store_key_list_free(all, n);

	spec.n_allow = 0;
	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), &k), 0);
	assert_int_equal(store_key_restrict(f->st, k.id, false, ok, 1, NULL, 0, "t"), -EINVAL);
	assert_int_equal(store_key_expire(f->st, k.id, "t"), -EPERM);
	assert_int_equal(store_key_perm(f->st, k.id, "charge", PERM_READ, "t"), -EINVAL);
	assert_int_equal(store_key_revoke(f->st, "key_nope", "t", NULL), -ENOENT);
	store_key_clear(&k);

	spec.type = KEY_SECRET;
	spec.allow = ok;
	spec.n_allow = 1;
	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), &k), 0);
	/* one bad entry among good ones: nothing applied */
	const char *mix[] = { "192.168.0.0/16", "nope" };
	assert_int_equal(store_key_restrict(f->st, k.id, true, mix, 2, NULL, 0, "t"), -EINVAL);
	const char *missing[] = { "8.8.8.8" };
	assert_int_equal(store_key_restrict(f->st, k.id, false, NULL, 0, missing, 1, "t"), -EINVAL);
	struct key_info g;
	assert_int_equal(store_key_get(f->st, k.id, &g), 0);
	assert_int_equal(g.n_allow, 1);
	assert_string_equal(g.allow[0], "127.0.0.1");
	assert_int_equal(g.gen, k.gen);
	store_key_clear(&g);
	store_key_clear(&k);
}

static int count_cb(const struct audit_record *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

/* issue 16 item 7: one perm command with two changes is one transaction and one record. */
static void test_perms_one_record(void **state)
{
	struct fx *f = *state;
	char secret[STORE_KEY_MAX];
	struct key_spec spec = { .type = KEY_RESTRICTED, .mode = KEY_TEST };
	struct key_info k, g;
	struct key_perm two[] = { { "charge", PERM_WRITE }, { "refund", PERM_READ } };
	struct key_perm bad[] = { { "customer", PERM_READ }, { "Bad Name", PERM_READ } };
	int before = 0, after = 0;

	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), &k), 0);
	assert_int_equal(store_audit_each(f->st, count_cb, &before), 0);
	assert_int_equal(store_key_perms(f->st, k.id, two, 2, "t"), 0);
	assert_int_equal(store_audit_each(f->st, count_cb, &after), 0);
	assert_int_equal(after, before + 1);
	/* a bad one among good ones: nothing changes, nothing is recorded */
	assert_int_equal(store_key_perms(f->st, k.id, bad, 2, "t"), -EINVAL);
	after = 0;
	assert_int_equal(store_audit_each(f->st, count_cb, &after), 0);
	assert_int_equal(after, before + 1);
	assert_int_equal(store_key_get(f->st, k.id, &g), 0);
	assert_int_equal(g.n_perms, 2);
	assert_string_equal(g.perms[0].resource, "charge");
	assert_string_equal(g.perms[1].resource, "refund");
	store_key_clear(&g);
	store_key_clear(&k);
}

/* issue 16 item 3: a key is found by its text (hash) as well as its id, and an unknown key's
 * error shows only its masked form. */
static void test_find_by_text(void **state)
{
	struct fx *f = *state;
	char secret[STORE_KEY_MAX];
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_TEST };
	struct key_info k, g;
	bool by_key = true;
	const char *unknown = "sk_test_0123456789abcdefghijklmnopqrstuvwxyzWXYZ";

	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), &k), 0);
	assert_int_equal(store_key_find(f->st, k.id, &g, &by_key), 0);
	assert_false(by_key);
	assert_string_equal(g.id, k.id);
	store_key_clear(&g);
	assert_int_equal(store_key_find(f->st, secret, &g, &by_key), 0);
	assert_true(by_key);
	assert_string_equal(g.id, k.id);
	store_key_clear(&g);
	assert_int_equal(store_key_find(f->st, unknown, &g, &by_key), -ENOENT);
	assert_non_null(strstr(store_errmsg(f->st), "sk_test_****WXYZ"));
	assert_null(strstr(store_errmsg(f->st), "01234567"));
	/* an id-shaped miss that happens to hold a key is masked by the store's messages too */
	assert_int_equal(store_key_get(f->st, "x sk_live_abcdefghijklmnop", &g), -ENOENT);
	assert_null(strstr(store_errmsg(f->st), "abcdefgh"));
	store_key_clear(&k);
}

static void test_restrict_perm(void **state)
{
	struct fx *f = *state;
	char secret[STORE_KEY_MAX];
	struct key_spec spec = { .type = KEY_RESTRICTED, .mode = KEY_LIVE };
	struct key_info k, g;
	const char *add[] = { "127.0.0.2", "::ffff:127.0.0.3", "2001:db8::/48" };
	const char *rm[] = { "127.0.0.3/32" };

	assert_int_equal(store_key_create(f->st, &spec, "t", secret, sizeof(secret), &k), 0);
	assert_int_equal(store_key_restrict(f->st, k.id, false, add, 3, NULL, 0, "t"), 0);
	assert_int_equal(store_key_restrict(f->st, k.id, false, NULL, 0, rm, 1, "t"), 0);
	assert_int_equal(store_key_perm(f->st, k.id, "charge", PERM_READ, "t"), 0);
	assert_int_equal(store_key_perm(f->st, k.id, "charge", PERM_WRITE, "t"), 0);
	assert_int_equal(store_key_perm(f->st, k.id, "refund", PERM_READ, "t"), 0);
	assert_int_equal(store_key_perm(f->st, k.id, "refund", PERM_NONE, "t"), 0);
	assert_int_equal(store_key_perm(f->st, k.id, "Bad Name", PERM_READ, "t"), -EINVAL);
	assert_int_equal(store_key_get(f->st, k.id, &g), 0);
	assert_int_equal(g.n_allow, 2);
	assert_string_equal(g.allow[0], "127.0.0.2");
	assert_string_equal(g.allow[1], "2001:db8::/48");
	assert_int_equal(g.n_perms, 1);
	assert_int_equal(g.perms[0].level, PERM_WRITE);
	assert_true(g.gen > k.gen);
	store_key_clear(&g);
	assert_int_equal(store_key_restrict(f->st, k.id, true, NULL, 0, NULL, 0, "t"), 0);
	assert_int_equal(store_key_get(f->st, k.id, &g), 0);
	assert_int_equal(g.n_allow, 0);
	store_key_clear(&g);
	store_key_clear(&k);
}

static void test_rotate_inherits(void **state)
{
	struct fx *f = *state;
	char s1[STORE_KEY_MAX], s2[STORE_KEY_MAX];
	const char *allow[] = { "127.0.0.2", "2001:db8::1" };
	struct key_perm perms[] = { { "charge", PERM_READ } };
	struct key_spec spec = { .type = KEY_RESTRICTED, .mode = KEY_LIVE, .name = "prod",
				 .allow = allow, .n_allow = 2, .perms = perms, .n_perms = 1 };
	struct key_info k, n, old;

	assert_int_equal(store_key_create(f->st, &spec, "t", s1, sizeof(s1), &k), 0);
	assert_int_equal(store_key_rotate(f->st, k.id, STORE_EXPIRE_MAX_S + 1, "t", s2, sizeof(s2),
					  &n), -EINVAL);
	assert_int_equal(store_key_rotate(f->st, k.id, 3600, "t", s2, sizeof(s2), &n), 0);
	assert_string_not_equal(s1, s2);
	assert_memory_equal(s2, "rk_live_", 8);
	assert_string_equal(n.rotated_from, k.id);
	assert_string_equal(n.name, "prod");
	assert_int_equal(n.type, KEY_RESTRICTED);
	assert_int_equal(n.n_allow, 2);
	assert_string_equal(n.allow[1], "2001:db8::1");
	assert_int_equal(n.n_perms, 1);
	assert_string_equal(n.perms[0].resource, "charge");
	assert_int_equal(n.expires_at, 0);
	assert_int_equal(store_key_get(f->st, k.id, &old), 0);
	assert_true(old.expires_at >= old.created + 3599 && old.expires_at <= old.created + 3700);
	store_key_clear(&old);
	/* a second rotation with a longer grace never extends the old key */
	assert_int_equal(store_key_rotate(f->st, k.id, 7200, "t", s2, sizeof(s2), NULL), 0);
	assert_int_equal(store_key_get(f->st, k.id, &old), 0);
	assert_true(old.expires_at <= old.created + 3700);
	store_key_clear(&old);
	store_key_clear(&n);
	store_key_clear(&k);
}

static void test_revoke_by_hash(void **state)
{
	struct fx *f = *state;
	char s[STORE_KEY_MAX], hex[SHA256_HEX_LEN + 1], id[STORE_ID_MAX];
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_LIVE };
	struct key_info k, g;

	assert_int_equal(store_key_create(f->st, &spec, "t", s, sizeof(s), &k), 0);
	secret_sha256_hex(s, strlen(s), hex);
	assert_int_equal(store_revoke_by_hash(f->st, hex, "scanner", "leaked in repo x", id,
					      sizeof(id)), 0);
	assert_string_equal(id, k.id);
	assert_int_equal(store_revoke_by_hash(f->st, hex, "scanner", "again", id, sizeof(id)),
			 -EALREADY);
	assert_string_equal(id, k.id);
	secret_sha256_hex("sk_live_nothere", 15, hex);
	assert_int_equal(store_revoke_by_hash(f->st, hex, "scanner", NULL, id, sizeof(id)), -ENOENT);
	assert_string_equal(id, "");
	assert_int_equal(store_key_get(f->st, k.id, &g), 0);
	assert_true(g.revoked_at > 0);
	store_key_clear(&g);
	assert_int_equal(store_key_restrict(f->st, k.id, true, NULL, 0, NULL, 0, "t"), -EPERM);
	store_key_clear(&k);
}

struct audit_acc {
	int n;
	char actions[256];
	int saw_reason;
};

static int audit_cb(const struct audit_record *r, void *arg)
{
	struct audit_acc *a = arg;
	size_t l = strlen(a->actions);

	snprintf(a->actions + l, sizeof(a->actions) - l, "%s%s", l ? "," : "", r->action);
	assert_non_null(r->actor);
	assert_non_null(r->after);
	if (r->reason && !strcmp(r->reason, "why"))
		a->saw_reason = 1;
	a->n++;
	return 0;
}

static void test_audit(void **state)
{
	struct fx *f = *state;
	char s[STORE_KEY_MAX];
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_TEST };
	struct key_info k;
	const char *add[] = { "127.0.0.2" };
	struct audit_acc acc = { 0 };

	assert_int_equal(store_key_create(f->st, &spec, "alice", s, sizeof(s), &k), 0);
	assert_int_equal(store_key_restrict(f->st, k.id, false, add, 1, NULL, 0, "alice"), 0);
	assert_int_equal(store_key_rotate(f->st, k.id, 0, "alice", s, sizeof(s), NULL), 0);
	assert_int_equal(store_key_revoke(f->st, k.id, "alice", "why"), 0);
	assert_int_equal(store_audit_each(f->st, audit_cb, &acc), 0);
	assert_string_equal(acc.actions, "create,restrict,rotate,create,revoke");
	assert_int_equal(acc.saw_reason, 1);
	store_key_clear(&k);
}

static void test_other_connection_sees_changes(void **state)
{
	struct fx *f = *state;
	struct store *other;
	char s[STORE_KEY_MAX];
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_TEST };
	int64_t v1, v2, v3, maxg = 0;
	struct key_info *ch;
	size_t n;

	assert_int_equal(store_open(f->path, &other), 0);
	assert_int_equal(store_data_version(other, &v1), 0);
	assert_int_equal(store_data_version(other, &v2), 0);
	assert_true(v1 == v2);
	assert_int_equal(store_key_create(f->st, &spec, "t", s, sizeof(s), NULL), 0);
	assert_int_equal(store_data_version(other, &v3), 0);
	assert_true(v3 != v2);
	assert_int_equal(store_key_changed(other, 0, &ch, &n, &maxg), 0);
	assert_int_equal(n, 1);
	assert_true(maxg > 0);
	store_key_list_free(ch, n);
	assert_int_equal(store_key_changed(other, maxg, &ch, &n, &maxg), 0);
	assert_int_equal(n, 0);
	store_key_list_free(ch, n);
	store_close(other);
}

static void test_schema_version(void **state)
{
	struct fx *f = *state;
	sqlite3 *db;
	sqlite3_stmt *s;
	struct store *again;

	if (pg_base) {
		PGconn *c = PQconnectdb(f->path);
		PGresult *r = PQexec(c, "SELECT version FROM iplock_schema");
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		assert_int_equal(atoi(PQgetvalue(r, 0, 0)), store_schema_version());
		PQclear(r);
		PQfinish(c);
		/* a newer schema than ours is refused rather than misread */
		pg_exec(f->path, "UPDATE iplock_schema SET version = 999");
		assert_int_equal(store_open(f->path, &again), -EPROTO);
		assert_null(again);
		assert_non_null(strstr(store_errmsg(NULL), "newer"));
		return;
	}
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), store_schema_version());
	sqlite3_finalize(s);
	/* a newer schema than ours is refused rather than misread */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, &again), -EPROTO);
	assert_null(again);
	assert_non_null(strstr(store_errmsg(NULL), "newer"));
}

static void test_target_display(void **state)
{
	char out[256];

	(void)state;
	assert_false(store_is_remote("keys.db"));
	assert_false(store_is_remote("/var/lib/iplock/keys.db"));
	assert_true(store_is_remote("postgresql://gate@db1/iplock"));
	assert_true(store_is_remote("postgres://db1"));
	assert_true(store_is_remote("host=/tmp dbname=x"));
	assert_true(store_is_remote(" dbname = x"));
	store_target_display("postgresql://gate:hunter2@db1:5432/iplock?sslmode=require", out,
			     sizeof(out));
	assert_string_equal(out, "postgresql://gate:***@db1:5432/iplock?sslmode=require");
	store_target_display("postgresql://db1/iplock?user=g&password=hunter2&sslmode=require", out,
			     sizeof(out));
	assert_string_equal(out, "postgresql://db1/iplock?user=g&password=***&sslmode=require");
	store_target_display("host=db1 password='hun ter\\'2' dbname=x", out, sizeof(out));
	assert_string_equal(out, "host=db1 password=*** dbname=x");
	store_target_display("host=db1 password = hunter2", out, sizeof(out));
	assert_null(strstr(out, "hunter2"));
	store_target_display("postgresql://gate:hunter2@db1", out, 12);
	assert_null(strstr(out, "hunter2"));
	store_target_display("keys.db", out, sizeof(out));
	assert_string_equal(out, "keys.db");
}

/* PostgreSQL: a change commits a higher version and announces it to a listener. */
static void test_pg_notify(void **state)
{
	struct fx *f = *state;
	struct store *other;
	char s[STORE_KEY_MAX];
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_TEST };
	struct key_info k;
	int64_t v = 0, v2 = 0;

	if (!pg_base)
		skip();
	assert_int_equal(store_open(f->path, &other), 0);
	assert_int_equal(store_listen(other), 0);
	assert_int_equal(store_wait_change(other, 50, &v), 0);
	assert_int_equal(store_key_create(f->st, &spec, "t", s, sizeof(s), &k), 0);
	assert_int_equal(store_wait_change(other, 2000, &v), 1);
	assert_int_equal(v, k.gen);
	assert_int_equal(store_data_version(other, &v2), 0);
	assert_int_equal(v2, k.gen);
	/* a failed change sends nothing */
	assert_int_equal(store_key_expire(f->st, "key_nope", "t"), -ENOENT);
	assert_int_equal(store_wait_change(other, 100, &v2), 0);
	assert_int_equal(store_key_revoke(f->st, k.id, "t", NULL), 0);
	assert_int_equal(store_wait_change(other, 2000, &v2), 1);
	assert_true(v2 > v);
	store_key_clear(&k);
	store_close(other);
}

/* PostgreSQL: writers in several processes get distinct versions in commit order. */
static void test_pg_concurrent_writers(void **state)
{
	struct fx *f = *state;
	struct key_info *all;
	size_t n;
	pid_t kids[4];

	if (!pg_base)
		skip();
	for (int i = 0; i < 4; i++) {
		if ((kids[i] = fork()) == 0) {
			struct store *st;
			char s[STORE_KEY_MAX];
			struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_TEST };
			if (store_open(f->path, &st))
				_exit(2);
			for (int j = 0; j < 10; j++)
				if (store_key_create(st, &spec, "w", s, sizeof(s), NULL))
					_exit(3);
			store_close(st);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) {
		int ws;
		assert_int_equal(waitpid(kids[i], &ws, 0), kids[i]);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	assert_int_equal(store_key_list(f->st, &all, &n), 0);
	assert_int_equal(n, 40);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_true(all[i].gen != all[j].gen);
	store_key_list_free(all, n);
}

/* Usage batches add up, the latest use wins, hours past 30 days go; no key change made. */
static void test_usage(void **state)
{
	struct fx *f = *state;
	int64_t now = 1800000000, hour = now / 3600 * 3600, last, v1, v2;
	struct usage_rec r[3] = {
		{ .key_id = "key_a", .client = "192.0.2.7", .hour = hour, .last_used = now,
		  .allowed = 3, .denied = 1 },
		{ .key_id = "key_a", .client = "2001:db8::1", .hour = hour, .last_used = now - 5,
		  .allowed = 0, .denied = 2 },
		{ .key_id = "key_a", .client = "192.0.2.7", .hour = hour - 31 * 86400,
		  .last_used = now - 31 * 86400, .allowed = 9, .denied = 0 },
	};
	struct usage_rec *h;
	struct key_info *ch;
	char client[STORE_CLIENT_MAX];
	size_t n;

	assert_int_equal(store_key_changed(f->st, 0, &ch, &n, &v1), 0);
	store_key_list_free(ch, n);
	assert_int_equal(store_usage_write(f->st, r, 3, now), 0);
	assert_int_equal(store_usage_write(f->st, r, 1, now), 0);
	assert_int_equal(store_usage_get(f->st, "key_a", &last, client, sizeof(client), &h, &n), 0);
	assert_int_equal(last, now);
	assert_string_equal(client, "192.0.2.7");
	assert_int_equal(n, 2);     /* the 31-day-old hour was pruned */
	assert_string_equal(h[0].client, "192.0.2.7");
	assert_int_equal(h[0].allowed, 6);
	assert_int_equal(h[0].denied, 2);
	assert_string_equal(h[1].client, "2001:db8::1");
	assert_int_equal(h[1].denied, 2);
	free(h);
	/* an older batch arriving late does not move last use back */
	r[1].last_used = now - 100;
	assert_int_equal(store_usage_write(f->st, &r[1], 1, now), 0);
	assert_int_equal(store_usage_get(f->st, "key_a", &last, client, sizeof(client), &h, &n), 0);
	assert_int_equal(last, now);
	assert_string_equal(client, "192.0.2.7");
	free(h);
	assert_int_equal(store_usage_get(f->st, "key_none", &last, client, sizeof(client), &h, &n), 0);
	assert_int_equal(last, 0);
	assert_int_equal(n, 0);
	/* usage is not a key change: caches have nothing to reload */
	assert_int_equal(store_key_changed(f->st, v1, &ch, &n, &v2), 0);
	assert_int_equal(n, 0);
	store_key_list_free(ch, n);
	/* a bad record writes nothing */
	r[0].allowed = -1;
	assert_int_equal(store_usage_write(f->st, r, 2, now), -EINVAL);
}

static int seq_cb(const struct audit_record *r, void *arg)
{
	char *acts = arg;

	strncat(acts, r->action, 200 - strlen(acts) - 2);
	strcat(acts, ",");
	return 0;
}

/* The console's store calls: key pages (keyset, filters, search), note and report flag,
 * whole-allowlist replacement (a bad entry changes nothing), users, tokens, audit queries. */
static void test_console(void **state)
{
	struct fx *f = *state;
	char secret[STORE_KEY_MAX], tok[STORE_TOKEN_MAX], acts[200] = "";
	struct key_info k[5];
	struct key_spec sp = { .type = KEY_SECRET, .mode = KEY_TEST, .name = "first" };
	struct key_listed *v;
	struct console_user u;
	struct console_token t;
	size_t n;
	bool more;

	for (int i = 0; i < 5; i++) {
		sp.type = i % 2 ? KEY_RESTRICTED : KEY_SECRET;
		sp.name = i == 3 ? "Shop Checkout" : "other";
		sp.note = i == 4 ? "rotate monthly" : NULL;
		sp.allow_report = i == 2;
		assert_int_equal(store_key_create(f->st, &sp, "t", secret, sizeof(secret), &k[i]), 0);
	}
	assert_true(k[2].allow_report);
	assert_string_equal(k[4].note, "rotate monthly");
	/* pages of 2, newest first, each key once */
	struct key_query q = { .limit = 2, .now = 1 };
	char seen[5][STORE_ID_MAX];
	size_t total = 0;
	for (;;) {
		assert_int_equal(store_key_page(f->st, &q, &v, &n, &more), 0);
		for (size_t i = 0; i < n; i++)
			memcpy(seen[total++], v[i].k.id, STORE_ID_MAX);
		if (n) {
			q.after_created = v[n - 1].k.created;
			memcpy(q.after_id, v[n - 1].k.id, STORE_ID_MAX);
		}
		store_key_page_free(v, n);
		if (!more)
			break;
	}
	assert_int_equal(total, 5);
	for (size_t i = 0; i < 5; i++)
		for (size_t j = i + 1; j < 5; j++)
			assert_string_not_equal(seen[i], seen[j]);
	struct key_query fq = { .limit = 100, .type = "restricted", .now = 1 };
	assert_int_equal(store_key_page(f->st, &fq, &v, &n, &more), 0);
	assert_int_equal(n, 2);
	store_key_page_free(v, n);
	struct key_query sq = { .limit = 100, .search = "checkOUT", .now = 1 };
	assert_int_equal(store_key_page(f->st, &sq, &v, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].k.id, k[3].id);
	store_key_page_free(v, n);
	sq.search = "50%_";
	assert_int_equal(store_key_page(f->st, &sq, &v, &n, &more), 0);
	assert_int_equal(n, 0);
	store_key_page_free(v, n);
	sq.search = NULL;
	sq.type = "bogus";
	assert_int_equal(store_key_page(f->st, &sq, &v, &n, &more), -EINVAL);
	/* allowlist replacement: all or nothing */
	const char *good[] = { "10.0.0.0/8", "::ffff:192.0.2.1" }, *bad[] = { "10.0.0.1", "10.0.0.1/8" };
	assert_int_equal(store_key_allow_replace(f->st, k[0].id, good, 2, "t", "confirmed"), 0);
	assert_int_equal(store_key_allow_replace(f->st, k[0].id, bad, 2, "t", NULL), -EINVAL);
	assert_non_null(strstr(store_errmsg(f->st), "write 10.0.0.0/8"));
	struct key_info g;
	assert_int_equal(store_key_get(f->st, k[0].id, &g), 0);
	assert_int_equal(g.n_allow, 2);
	assert_string_equal(g.allow[0], "10.0.0.0/8");
	assert_string_equal(g.allow[1], "192.0.2.1");
	store_key_clear(&g);
	assert_int_equal(store_key_set_report(f->st, k[0].id, true, "t"), 0);
	assert_int_equal(store_key_set_note(f->st, k[0].id, NULL, "n", "t"), 0);
	assert_int_equal(store_key_get(f->st, k[0].id, &g), 0);
	assert_true(g.allow_report);
	assert_string_equal(g.note, "n");
	assert_string_equal(g.name, "other");
	store_key_clear(&g);
	bool more_a;
	assert_int_equal(store_audit_query(f->st, k[0].id, NULL, 0, 10, seq_cb, acts, &more_a), 0);
	assert_string_equal(acts, "edit,report,restrict,create,");
	acts[0] = '\0';
	assert_int_equal(store_audit_query(f->st, k[0].id, "t", 0, 1, seq_cb, acts, &more_a), 0);
	assert_string_equal(acts, "edit,");
	assert_true(more_a);
	/* users and tokens */
	assert_int_equal(store_console_user_add(f->st, "alice", "pbkdf2-sha256$1000$x$y", "admin", "root"), 0);
	assert_int_equal(store_console_user_add(f->st, "alice", "h", "viewer", "root"), -EEXIST);
	assert_int_equal(store_console_user_add(f->st, "bad name", "h", "viewer", "root"), -EINVAL);
	assert_int_equal(store_console_user_add(f->st, "bob", "h", "root", "root"), -EINVAL);
	assert_int_equal(store_console_user_get(f->st, "alice", &u), 0);
	assert_string_equal(u.role, "admin");
	assert_int_equal(store_token_create(f->st, "ci", "read", "alice", tok, sizeof(tok), &t), 0);
	assert_int_equal(strlen(tok), 4 + STORE_TOKEN_BODY);
	char hex[SHA256_HEX_LEN + 1];
	struct console_token t2;
	secret_sha256_hex(tok, strlen(tok), hex);
	assert_int_equal(store_token_get_by_hash(f->st, hex, &t2), 0);
	assert_string_equal(t2.id, t.id);
	assert_int_equal(store_token_create(f->st, "ci", "write", "alice", tok, sizeof(tok), &t), -EEXIST);
	assert_int_equal(store_token_revoke(f->st, t2.id, "alice"), 0);
	assert_int_equal(store_token_get_by_hash(f->st, hex, &t2), -ENOENT);
	assert_int_equal(store_console_user_remove(f->st, "alice", "root"), 0);
	assert_int_equal(store_console_user_remove(f->st, "alice", "root"), -ENOENT);
	for (int i = 0; i < 5; i++)
		store_key_clear(&k[i]);
}

int main(int argc, char **argv)
{
	store_fixture_init(argc, argv, "test_store");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_display),
		cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_notify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_concurrent_writers, setup, teardown),
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_entry_canon),
		cmocka_unit_test_setup_teardown(test_create_hashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restrict_perm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_perms_one_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_by_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_inherits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_by_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_connection_sees_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
