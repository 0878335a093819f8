/* test_policy.c: destination allow rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/policy.h"

static struct dest_rule rule(const char *s)
{
	struct dest_rule r;
	const char *err = dest_rule_parse(s, strlen(s), &r);
	if (err)
		fail_msg("dest_rule_parse(%s): %s", s, err);
	return r;
}

static void test_rule_parse(void **state)
{
	(void)state;
	struct dest_rule r = rule("API.stripe.com:443");
	assert_string_equal(r.host, "api.stripe.com");
	assert_false(r.wildcard);
	assert_int_equal(r.port, 443);
	r = rule("*.stripe.com:443");
	assert_string_equal(r.host, "stripe.com");
	assert_true(r.wildcard);
	assert_int_equal(r.wild, HOST_WILD_ONE);
	r = rule("**.stripe.com:443");
	assert_string_equal(r.host, "stripe.com");
	assert_int_equal(r.wild, HOST_WILD_ANY);
	r = rule("example.com:*");
	assert_int_equal(r.port, 0);
	r = rule("*:443");
	assert_true(r.wildcard);
	assert_string_equal(r.host, "");
	r = rule("[2001:db8::1]:443");
	assert_string_equal(r.host, "2001:db8::1");
	r = rule("192.0.2.7:*");
	assert_string_equal(r.host, "192.0.2.7");

	static const char *bad[][2] = {
		{ "api.stripe.com", "rule needs a port: host:PORT or host:*" },
		{ "api.stripe.com:0", "port out of range" },
		{ "api.stripe.com:x", "port is not a number" },
		{ "api.*.com:443", "'*' only as a whole host or as a leading \"*.\" or \"**.\"" },
		{ "*stripe.com:443", "'*' only as a whole host or as a leading \"*.\" or \"**.\"" },
		{ "**:443", "'*' only as a whole host or as a leading \"*.\" or \"**.\"" },
		{ "***.stripe.com:443", "'*' only as a whole host or as a leading \"*.\" or \"**.\"" },
		{ "*.*.stripe.com:443", "'*' only as a whole host or as a leading \"*.\" or \"**.\"" },
		{ "**.1.2.3.4:443", "a wildcard applies to names, not IP addresses" },
		{ "*.:443", "empty host" },
		{ "*.1.2.3.4:443", "a wildcard applies to names, not IP addresses" },
		{ "*.example.1:443", "ambiguous numeric host" },
		{ "*.[::1]:443", "IPv6 address must be in brackets" },
		{ "0x7f000001:443", "ambiguous numeric host" },
		{ "::1:443", "IPv6 address must be in brackets" },
		{ "[::1:443", "missing ']' after IPv6 address" },
		{ ":443", "empty host" },
		{ "", "rule needs a port: host:PORT or host:*" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = dest_rule_parse(bad[i][0], strlen(bad[i][0]), &r);
		if (!err || strcmp(err, bad[i][1]))
			fail_msg("%s: got %s, want %s", bad[i][0], err ? err : "ok", bad[i][1]);
	}
}

static void test_rules_allow(void **state)
{
	(void)state;
	struct dest_rule rules[] = {
		rule("api.stripe.com:443"), rule("*.example.com:443"), rule("files.local:*"),
		rule("[2001:db8::1]:8443"), rule("**.deep.test:443"),
	};
	size_t n = sizeof(rules) / sizeof(rules[0]);
	assert_true(dest_rules_allow(rules, n, "api.stripe.com", 443));
	assert_true(dest_rules_allow(rules, n, "API.Stripe.com.", 443));
	assert_false(dest_rules_allow(rules, n, "api.stripe.com", 80));
	assert_false(dest_rules_allow(rules, n, "stripe.com", 443));
	assert_false(dest_rules_allow(rules, n, "evilapi.stripe.com", 443));
	assert_false(dest_rules_allow(rules, n, "api.stripe.com.evil.net", 443));
	assert_true(dest_rules_allow(rules, n, "a.example.com", 443));
	/* issue 16: "*." is exactly one label, as in [inbound] sni and certificates */
	assert_false(dest_rules_allow(rules, n, "a.b.example.com", 443));
	assert_true(dest_rules_allow(rules, n, "a.deep.test", 443));
	assert_true(dest_rules_allow(rules, n, "a.b.c.deep.test", 443));
	assert_true(dest_rules_allow(rules, n, "A.B.Deep.Test.", 443));
	assert_false(dest_rules_allow(rules, n, "deep.test", 443));
	assert_false(dest_rules_allow(rules, n, "notdeep.test", 443));
	assert_false(dest_rules_allow(rules, n, "a..deep.test", 443));
	assert_false(dest_rules_allow(rules, n, "a.deep.test", 80));
	assert_false(dest_rules_allow(rules, n, "example.com", 443));
	assert_false(dest_rules_allow(rules, n, "badexample.com", 443));
	assert_false(dest_rules_allow(rules, n, ".example.com", 443));
	assert_false(dest_rules_allow(rules, n, "a.example.com", 80));
	assert_true(dest_rules_allow(rules, n, "files.local", 1));
	assert_true(dest_rules_allow(rules, n, "files.local", 65535));
	assert_true(dest_rules_allow(rules, n, "2001:db8::1", 8443));
	assert_true(dest_rules_allow(rules, n, "[2001:db8::1]", 8443));
	assert_false(dest_rules_allow(rules, n, "2001:db8::2", 8443));
	assert_false(dest_rules_allow(rules, n, "", 443));
	/* no rules: everything (the global safety checks still apply elsewhere) */
	assert_true(dest_rules_allow(NULL, 0, "anything.example", 22));
	struct dest_rule any = rule("*:443");
	assert_true(dest_rules_allow(&any, 1, "x.y", 443));
	assert_false(dest_rules_allow(&any, 1, "x.y", 444));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_parse),
		cmocka_unit_test(test_rules_allow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
