/* test_store_users.c: the proxy fleet's tables (store/users.c): users and their changes,
 * rotation overlap, plans, the change feed, audit, usage by hour and month, node heartbeats.
 * Runs on SQLite, or on PostgreSQL when IPLOCK_TEST_PG is set (`make unit` runs both). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/users.h"

#define STORE_FIXTURE_NAME "users"
#include "store_fixture.h"

#define HASH1 "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=="
#define HASH2 "pbkdf2-sha256$1000$b3RoZXJzYWx0c2FsdA==$b3RoZXJoYXNob3RoZXJoYQ=="

static struct store_user mk(const char *name)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "%s", name);
	snprintf(u.hash, sizeof(u.hash), "%s", HASH1);
	return u;
}

static int count_audit(const struct audit_record *r, void *arg)
{
	int *n = arg;

	if (r->key_id && !strncmp(r->key_id, "user:", 5)) {
		(*n)++;
		/* the password is never in the audit log, old or new */
		assert_null(r->after ? strstr(r->after, "pbkdf2") : NULL);
		assert_null(r->before ? strstr(r->before, "pbkdf2") : NULL);
	}
	return 0;
}

static void test_users_lifecycle(void **state)
{
	struct fx *f = *state;
	struct store_user u = mk("alice"), got, *v;
	size_t n;
	int audits = 0;

	snprintf(u.allow, sizeof(u.allow), "api.stripe.com:443");
	u.req_month = 100;
	assert_int_equal(store_user_add(f->st, &u, "t"), 0);
	assert_int_equal(store_user_add(f->st, &u, "t"), -EEXIST);
	assert_int_equal(store_user_get(f->st, "alice", &got), 0);
	assert_string_equal(got.hash, HASH1);
	assert_string_equal(got.allow, "api.stripe.com:443");
	assert_int_equal(got.req_month, 100);
	assert_true(got.gen > 0);
	/* bad input: an error and nothing written */
	struct store_user bad = mk("bad+name");
	assert_int_equal(store_user_add(f->st, &bad, "t"), -EINVAL);
	bad = mk("b");
	snprintf(bad.hash, sizeof(bad.hash), "plain");
	assert_int_equal(store_user_add(f->st, &bad, "t"), -EINVAL);
	bad = mk("c");
	snprintf(bad.allow, sizeof(bad.allow), "x:443\n[proxy]");
	assert_int_equal(store_user_add(f->st, &bad, "t"), -EINVAL);
	assert_int_equal(store_user_set_egress(f->st, "nobody", "127.0.0.2", "t"), -ENOENT);
	assert_int_equal(store_user_list(f->st, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	/* changes */
	assert_int_equal(store_user_set_egress(f->st, "alice", "127.0.0.2 127.0.0.3", "t"), 0);
	assert_int_equal(store_user_plan(f->st, "alice", -1, 5000, 7, "t"), 0);
	assert_int_equal(store_user_get(f->st, "alice", &got), 0);
	assert_string_equal(got.egress, "127.0.0.2 127.0.0.3");
	assert_int_equal(got.req_month, 100);      /* -1 left it */
	assert_int_equal(got.bytes_month, 5000);
	assert_int_equal(got.max_conns, 7);
	/* removed: gone for get and list, back as a new user on add */
	assert_int_equal(store_user_remove(f->st, "alice", "t"), 0);
	assert_int_equal(store_user_get(f->st, "alice", &got), -ENOENT);
	assert_int_equal(store_user_remove(f->st, "alice", "t"), -ENOENT);
	u = mk("alice");
	assert_int_equal(store_user_add(f->st, &u, "t"), 0);
	assert_int_equal(store_user_get(f->st, "alice", &got), 0);
	assert_string_equal(got.egress, "");
	assert_int_equal(store_user_list(f->st, &v, &n), 0);
	assert_int_equal(n, 1);
	free(v);
	assert_int_equal(store_audit_each(f->st, count_audit, &audits), 0);
	assert_int_equal(audits, 5);    /* add, egress, plan, remove, add (failed ones write none) */
}

static void test_rotate_overlap(void **state)
{
	struct fx *f = *state;
	struct store_user u = mk("bob"), got;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(store_user_add(f->st, &u, "t"), 0);
	assert_int_equal(store_user_rotate(f->st, "bob", HASH2, 86400, "t"), 0);
	assert_int_equal(store_user_get(f->st, "bob", &got), 0);
	assert_string_equal(got.hash, HASH2);
	assert_string_equal(got.old_hash, HASH1);
	assert_true(got.old_expires >= now + 86400 && got.old_expires <= now + 86402);
	assert_int_equal(store_user_rotate(f->st, "bob", HASH1, 8 * 86400, "t"), -EINVAL);
	assert_int_equal(store_user_rotate(f->st, "bob", HASH1, 0, "t"), 0);
	assert_int_equal(store_user_get(f->st, "bob", &got), 0);
	assert_string_equal(got.hash, HASH1);
	assert_string_equal(got.old_hash, "");
	assert_int_equal(got.old_expires, 0);
}

static void test_changed_feed(void **state)
{
	struct fx *f = *state;
	struct store_user u = mk("carol"), *v;
	size_t n;
	int64_t g0 = 0, g1 = 0, g2 = 0;

	assert_int_equal(store_user_changed(f->st, 0, &v, &n, &g0), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(store_user_add(f->st, &u, "t"), 0);
	u = mk("dave");
	assert_int_equal(store_user_add(f->st, &u, "t"), 0);
	assert_int_equal(store_user_changed(f->st, g0, &v, &n, &g1), 0);
	assert_int_equal(n, 2);
	assert_true(g1 > g0);
	free(v);
	assert_int_equal(store_user_remove(f->st, "carol", "t"), 0);
	assert_int_equal(store_user_changed(f->st, g1, &v, &n, &g2), 0);
	assert_int_equal(n, 1);       /* only the change since g1, the removal included */
	assert_string_equal(v[0].name, "carol");
	assert_true(v[0].removed_at > 0);
	assert_true(g2 > g1);
	free(v);
	if (pg_base) {
		/* PostgreSQL: a user change is announced like a key change */
		struct store *other;
		int64_t ver = 0;
		assert_int_equal(store_open(f->path, &other), 0);
		assert_int_equal(store_listen(other), 0);
		assert_int_equal(store_user_plan(f->st, "dave", 10, -1, -1, "t"), 0);
		assert_int_equal(store_wait_change(other, 2000, &ver), 1);
		assert_true(ver > g2);
		assert_int_equal(store_user_plan(f->st, "nobody", 10, -1, -1, "t"), -ENOENT);
		assert_int_equal(store_wait_change(other, 100, &ver), 0);   /* a failed change: none */
		store_close(other);
	}
}

static void sum_cb(void *arg, const char *user, int64_t req, int64_t bytes)
{
	int64_t *s = arg;

	if (!strcmp(user, "erin")) {
		s[0] = req;
		s[1] = bytes;
	}
}

static void test_usage_by_hour_and_month(void **state)
{
	struct fx *f = *state;
	int64_t from, to, mfrom, mto, sums[2] = { 0, 0 };
	struct store_usage r[3], *v;
	size_t n;

	assert_null(store_month_parse("2026-02", &from, &to));
	assert_int_equal(to - from, 28 * 86400);
	assert_non_null(store_month_parse("2026-13", &from, &to));
	assert_non_null(store_month_parse("2026-1", &from, &to));
	assert_non_null(store_month_parse("20x6-01", &from, &to));
	store_month_parse("2026-12", &mfrom, &mto);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 3; i++) {
		snprintf(r[i].user, sizeof(r[i].user), "erin");
		snprintf(r[i].egress, sizeof(r[i].egress), i == 2 ? "127.0.0.3" : "127.0.0.2");
		r[i].hour = mfrom + 3600 * (i == 1 ? 5 : 0);
		r[i].requests = 1 + i;
		r[i].bytes_up = 10;
		r[i].bytes_down = 100;
	}
	assert_int_equal(store_proxy_usage_add(f->st, r, 3), 0);
	assert_int_equal(store_proxy_usage_add(f->st, r, 1), 0);     /* adds up */
	r[0].hour = mfrom - 3600;                                     /* the month before */
	assert_int_equal(store_proxy_usage_add(f->st, r, 1), 0);
	assert_int_equal(store_proxy_usage_totals(f->st, mfrom, mto, sum_cb, sums), 0);
	assert_int_equal(sums[0], 1 + 2 + 3 + 1);
	assert_int_equal(sums[1], 4 * 110);
	assert_int_equal(store_proxy_usage_get(f->st, "erin", mfrom, mto, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].hour, mfrom);
	assert_string_equal(v[0].egress, "127.0.0.2");
	assert_int_equal(v[0].requests, 2);
	assert_string_equal(v[1].egress, "127.0.0.3");
	assert_int_equal(v[2].hour, mfrom + 5 * 3600);
	free(v);
	struct store_usage bad = r[0];
	bad.requests = -1;
	assert_int_equal(store_proxy_usage_add(f->st, &bad, 1), -EINVAL);
}

static void test_durations(void **state)
{
	int64_t s;

	(void)state;
	assert_null(store_duration_parse("24h", &s));
	assert_int_equal(s, 86400);
	assert_null(store_duration_parse("now", &s));
	assert_int_equal(s, 0);
	assert_null(store_duration_parse("90", &s));
	assert_int_equal(s, 90);
	assert_null(store_duration_parse("7d", &s));
	assert_non_null(store_duration_parse("8d", &s));
	assert_non_null(store_duration_parse("1w", &s));
	assert_non_null(store_duration_parse("h", &s));
	assert_non_null(store_duration_parse("01h", &s));
	assert_non_null(store_duration_parse("99999999999999d", &s));
}

static void test_nodes_and_egress_list(void **state)
{
	struct fx *f = *state;
	struct store_egress e[2], *v;
	size_t n;

	memset(e, 0, sizeof(e));
	snprintf(e[0].addr, sizeof(e[0].addr), "127.0.0.2");
	e[0].healthy = true;
	snprintf(e[0].verdict, sizeof(e[0].verdict), "up");
	snprintf(e[1].addr, sizeof(e[1].addr), "127.0.0.9");
	snprintf(e[1].verdict, sizeof(e[1].verdict), "probe failed");
	assert_int_equal(store_node_beat(f->st, "n1", 100, 200, e, 2), 0);
	assert_int_equal(store_node_beat(f->st, "n2", 100, 201, e, 1), 0);
	/* a node's next beat replaces its addresses */
	assert_int_equal(store_node_beat(f->st, "n1", 100, 300, e, 1), 0);
	assert_int_equal(store_egress_list(f->st, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].node, "n1");
	assert_int_equal(v[0].heartbeat, 300);
	assert_true(v[0].healthy);
	assert_string_equal(v[1].node, "n2");
	free(v);
	assert_int_equal(store_node_beat(f->st, "bad node", 1, 1, e, 1), -EINVAL);
}

int main(int argc, char **argv)
{
	store_fixture_init(argc, argv, "test_store_users");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test_setup_teardown(test_users_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotate_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_feed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_by_hour_and_month, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodes_and_egress_list, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
