/* test_egress.c: egress pool selection. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy/egress.h"

static void pool3(struct egress_pool *p, enum egress_policy pol)
{
	struct ipaddr a[3];
	const char *txt[] = { "127.0.0.2", "127.0.0.3", "::1" };
	for (int i = 0; i < 3; i++)
		assert_null(ipaddr_parse(txt[i], strlen(txt[i]), &a[i]));
	assert_int_equal(egress_pool_init(p, a, 3, pol), 0);
}

static size_t pick(struct egress_pool *p, const char *host, int pin, uint64_t now, uint32_t tried)
{
	size_t idx = 99;
	assert_int_equal(egress_pick(p, host, pin, now, tried, &idx), 0);
	return idx;
}

static void test_policy_parse(void **state)
{
	(void)state;
	enum egress_policy pol;
	assert_null(egress_policy_parse("round-robin", &pol));
	assert_int_equal(pol, EGRESS_ROUND_ROBIN);
	assert_null(egress_policy_parse("sticky", &pol));
	assert_int_equal(pol, EGRESS_STICKY);
	assert_null(egress_policy_parse("primary", &pol));
	assert_int_equal(pol, EGRESS_PRIMARY);
	assert_non_null(egress_policy_parse("random", &pol));
	assert_non_null(egress_policy_parse("", &pol));
	assert_string_equal(egress_policy_name(EGRESS_STICKY), "sticky");
}

static void test_init(void **state)
{
	(void)state;
	struct egress_pool p;
	struct ipaddr many[EGRESS_MAX + 1] = { 0 };
	assert_int_equal(egress_pool_init(&p, many, 0, EGRESS_PRIMARY), -EINVAL);
	assert_int_equal(egress_pool_init(&p, many, EGRESS_MAX + 1, EGRESS_PRIMARY), -EINVAL);
	assert_int_equal(egress_pool_init(&p, many, EGRESS_MAX, EGRESS_PRIMARY), 0);
	size_t idx;
	assert_int_equal(egress_pick(&p, "h", EGRESS_MAX, 0, 0, &idx), 0);
	assert_int_equal(idx, EGRESS_MAX - 1);
	egress_pool_free(&p);
	egress_pool_free(&p);   /* idempotent */
}

static void test_round_robin(void **state)
{
	(void)state;
	struct egress_pool p;
	pool3(&p, EGRESS_ROUND_ROBIN);
	unsigned seen[3] = { 0 };
	size_t prev = pick(&p, "a", -1, 1000, 0);
	seen[prev]++;
	for (int i = 0; i < 299; i++) {
		size_t idx = pick(&p, "a", -1, 1000, 0);
		assert_int_equal(idx, (prev + 1) % 3);
		seen[idx]++;
		prev = idx;
	}
	assert_int_equal(seen[0], 100);
	assert_int_equal(seen[1], 100);
	assert_int_equal(seen[2], 100);

	/* one down: the other two alternate, never the down one */
	egress_mark_down(&p, 1, 1000, 500);
	for (int i = 0; i < 10; i++)
		assert_int_not_equal(pick(&p, "a", -1, 1200, 0), 1);
	/* recovers once the time has passed */
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < 9; i++)
		seen[pick(&p, "a", -1, 1500, 0)]++;
	assert_int_equal(seen[1], 3);
	egress_pool_free(&p);
}

static void test_sticky(void **state)
{
	(void)state;
	struct egress_pool p;
	pool3(&p, EGRESS_STICKY);
	char host[32];
	unsigned seen[3] = { 0 };
	for (int h = 0; h < 60; h++) {
		snprintf(host, sizeof(host), "h%d.example.com", h);
		size_t first = pick(&p, host, -1, 0, 0);
		seen[first]++;
		for (int k = 0; k < 5; k++)
			assert_int_equal(pick(&p, host, -1, 0, 0), first);
		/* case does not change the choice */
		host[0] = 'H';
		assert_int_equal(pick(&p, host, -1, 0, 0), first);
	}
	/* hosts spread over the pool */
	assert_true(seen[0] > 5 && seen[1] > 5 && seen[2] > 5);

	/* while its address is down a host moves to the next one, then comes back */
	size_t home = pick(&p, "api.stripe.com", -1, 0, 0);
	egress_mark_down(&p, home, 100, 1000);
	size_t away = pick(&p, "api.stripe.com", -1, 200, 0);
	assert_int_equal(away, (home + 1) % 3);
	assert_int_equal(pick(&p, "api.stripe.com", -1, 1100, 0), home);
	egress_pool_free(&p);
}

static void test_primary(void **state)
{
	(void)state;
	struct egress_pool p;
	pool3(&p, EGRESS_PRIMARY);
	for (int i = 0; i < 5; i++)
		assert_int_equal(pick(&p, "x", -1, 0, 0), 0);
	egress_mark_down(&p, 0, 0, 30000);
	assert_int_equal(pick(&p, "x", -1, 10, 0), 1);
	egress_mark_down(&p, 1, 0, 30000);
	assert_int_equal(pick(&p, "x", -1, 10, 0), 2);
	assert_int_equal(pick(&p, "x", -1, 30000, 0), 0);
	egress_pool_free(&p);
}

static void test_pin_and_tried(void **state)
{
	(void)state;
	struct egress_pool p;
	size_t idx;
	pool3(&p, EGRESS_ROUND_ROBIN);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pick(&p, "x", 2, 0, 0), 1);
	assert_int_equal(pick(&p, "x", 3, 0, 0), 2);
	assert_int_equal(egress_pick(&p, "x", 4, 0, 0, &idx), -ENOENT);
	assert_int_equal(egress_pick(&p, "x", 0, 0, 0, &idx), -ENOENT);
	assert_int_equal(egress_pick(&p, "x", -2, 0, 0, &idx), -ENOENT);
	/* a pinned address that is down fails closed: no other address */
	egress_mark_down(&p, 1, 0, 100);
	assert_int_equal(egress_pick(&p, "x", 2, 50, 0, &idx), -ENOENT);
	assert_int_equal(pick(&p, "x", 2, 100, 0), 1);
	/* pinned and already tried: nothing */
	assert_int_equal(egress_pick(&p, "x", 2, 100, 1u << 1, &idx), -ENOENT);

	/* tried_mask skips addresses for retries */
	for (int i = 0; i < 6; i++)
		assert_int_equal(pick(&p, "x", -1, 100, 0x3), 2);
	assert_int_equal(egress_pick(&p, "x", -1, 100, 0x7, &idx), -ENOENT);
	/* everything down -> -ENOENT */
	for (size_t i = 0; i < 3; i++)
		egress_mark_down(&p, i, 1000, 1000);
	assert_int_equal(egress_pick(&p, "x", -1, 1500, 0, &idx), -ENOENT);
	assert_int_equal(egress_pick(&p, "x", 1, 1500, 0, &idx), -ENOENT);
	assert_int_equal(pick(&p, "x", -1, 2000, 0x1) != 0, 1);
	egress_pool_free(&p);

	pool3(&p, EGRESS_STICKY);
	size_t home = pick(&p, "h", -1, 0, 0);
	assert_int_equal(pick(&p, "h", -1, 0, 1u << home), (home + 1) % 3);
	egress_pool_free(&p);
}

static void test_pin_parse(void **state)
{
	(void)state;
	struct egress_pool p;
	int pin = 0;
	pool3(&p, EGRESS_ROUND_ROBIN);
#define PP(s) egress_pin_parse(&p, s, strlen(s), &pin)
	assert_null(PP("2"));
	assert_int_equal(pin, 2);
	assert_null(PP(" 3 "));
	assert_int_equal(pin, 3);
	assert_null(PP("127.0.0.3"));
	assert_int_equal(pin, 2);
	assert_null(PP("::1"));
	assert_int_equal(pin, 3);
	assert_null(PP("[::1]"));
	assert_int_equal(pin, 3);
	assert_string_equal(PP("4"), "egress pin beyond the pool");
	assert_string_equal(PP("0"), "egress pin must be an index (1, 2, ...) or an address of the pool");
	assert_string_equal(PP("01"), "egress pin must be an index (1, 2, ...) or an address of the pool");
	assert_string_equal(PP("1x"), "egress pin must be an index (1, 2, ...) or an address of the pool");
	assert_string_equal(PP(""), "egress pin must be an index (1, 2, ...) or an address of the pool");
	assert_string_equal(PP("127.0.0.4"), "egress address not in the pool");
	assert_string_equal(PP("0x7f000002"), "egress pin must be an index (1, 2, ...) or an address of the pool");
#undef PP
	egress_pool_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_parse),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_sticky),
		cmocka_unit_test(test_primary),
		cmocka_unit_test(test_pin_and_tried),
		cmocka_unit_test(test_pin_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
