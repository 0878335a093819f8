/* test_keycache.c: the gate's key cache over a real store: changes committed by another
 * connection are seen at the next refresh, only changed keys are reloaded, interval gating. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate/keycache.h"

static void test_refresh_sees_other_process(void **state)
{
	char dir[] = "/tmp/iplock-kc-XXXXXX", path[64], cmd[96];
	char secret[STORE_KEY_MAX];
	struct store *w;
	struct keycache *kc;
	struct key_info k;
	const char *allow[] = { "127.0.0.2" };
	struct key_spec spec = { .type = KEY_SECRET, .mode = KEY_LIVE, .allow = allow, .n_allow = 1 };
	struct ipaddr a2, a9;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k.db", dir);
	assert_int_equal(store_open(path, &w), 0);
	assert_int_equal(store_key_create(w, &spec, "t", secret, sizeof(secret), &k), 0);
	assert_int_equal(keycache_open(path, &kc), 0);
	assert_int_equal(keycache_count(kc), 1);
	const struct gate_key *g = keycache_find(kc, secret, strlen(secret));
	assert_non_null(g);
	assert_string_equal(g->id, k.id);
	assert_null(ipaddr_parse("127.0.0.2", 9, &a2));
	assert_null(ipaddr_parse("127.0.0.9", 9, &a9));
	assert_true(cidr_set_contains(g->allow, &a2));
	assert_false(cidr_set_contains(g->allow, &a9));

	/* nothing changed: nothing reloaded */
	assert_int_equal(keycache_refresh(kc, 1000, 1), 0);
	/* a change by the other connection */
	const char *add[] = { "127.0.0.9" };
	assert_int_equal(store_key_restrict(w, k.id, true, add, 1, NULL, 0, "t"), 0);
	/* within the interval: not looked at yet */
	assert_int_equal(keycache_refresh(kc, 1000, 5), 0);
	assert_int_equal(keycache_refresh(kc, 1005, 5), 1);
	g = keycache_find(kc, secret, strlen(secret));
	assert_false(cidr_set_contains(g->allow, &a2));
	assert_true(cidr_set_contains(g->allow, &a9));
	/* revocation and a new key in one refresh */
	char s2[STORE_KEY_MAX];
	assert_int_equal(store_key_revoke(w, k.id, "t", NULL), 0);
	spec.n_allow = 0;
	assert_int_equal(store_key_create(w, &spec, "t", s2, sizeof(s2), NULL), 0);
	assert_int_equal(keycache_refresh(kc, 2000, 1), 2);
	assert_true(keycache_find(kc, secret, strlen(secret))->revoked);
	assert_non_null(keycache_find(kc, s2, strlen(s2)));
	assert_null(keycache_find(kc, "sk_live_nope000000", 18));
	assert_int_equal(keycache_count(kc), 2);

	store_key_clear(&k);
	keycache_free(kc);
	store_close(w);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_sees_other_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
