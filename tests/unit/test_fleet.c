/* test_fleet.c: a store user becomes a [user] block the proxy's parser takes, exactly when
 * fleet_user_check() says so (a bad row is left out instead of failing every user's update). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/fleet.h"

#define HASH "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA=="

static struct store_user mk(const char *allow, const char *egress)
{
	struct store_user u;

	memset(&u, 0, sizeof(u));
	snprintf(u.name, sizeof(u.name), "alice");
	snprintf(u.hash, sizeof(u.hash), "%s", HASH);
	snprintf(u.allow, sizeof(u.allow), "%s", allow);
	snprintf(u.egress, sizeof(u.egress), "%s", egress);
	return u;
}

/* Renders u after a [proxy] section and loads it: 0 and the user, or -1. */
static int load(const struct store_user *u, struct proxy_config **cfg)
{
	char text[8192], err[512];
	int n = snprintf(text, sizeof(text), "[proxy]\nlisten = 127.0.0.1:3128\negress = 127.0.0.2\n");

	assert_true(fleet_render_user(u, text + n, sizeof(text) - (size_t)n) > 0);
	return proxy_config_load_string(text, "t.ini", cfg, err, sizeof(err)) ? -1 : 0;
}

static void test_render_round_trip(void **state)
{
	struct store_user u = mk("api.stripe.com:443 *.example.com:443 host:*", "127.0.0.2 ::1");
	struct proxy_config *cfg;

	(void)state;
	u.max_conns = 3;
	assert_null(fleet_user_check(&u));
	assert_int_equal(load(&u, &cfg), 0);
	int k = proxy_config_find_user(cfg, "alice", 5);
	assert_true(k >= 0);
	assert_string_equal(cfg->users[k].password_hash, HASH);
	assert_int_equal(cfg->users[k].nallow, 3);
	assert_int_equal(cfg->users[k].egress->n, 2);
	assert_int_equal(cfg->users[k].max_conns, 3);
	proxy_config_free(cfg);
}

static void test_check_agrees_with_the_parser(void **state)
{
	/* each was accepted by an earlier check and then failed the whole merged config */
	struct store_user dup = mk("", "127.0.0.2 127.0.0.2"), lead = mk("", " .0");
	char many[1024] = "";
	struct proxy_config *cfg;

	(void)state;
	assert_non_null(fleet_user_check(&dup));
	assert_non_null(fleet_user_check(&lead));
	/* a long list renders one key line per rule, under the INI line limit */
	for (int i = 0; i < 20; i++) {
		char r[64];
		snprintf(r, sizeof(r), "%sapi%d.example.com:443", i ? " " : "", i);
		strcat(many, r);
	}
	struct store_user u = mk(many, "");
	assert_null(fleet_user_check(&u));
	assert_int_equal(load(&u, &cfg), 0);
	assert_int_equal(cfg->users[0].nallow, 20);
	proxy_config_free(cfg);
	struct store_user bad = mk("", "");
	snprintf(bad.hash, sizeof(bad.hash), "pbkdf2-sha256$1$x$y");
	assert_non_null(fleet_user_check(&bad));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_round_trip),
		cmocka_unit_test(test_check_agrees_with_the_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
