/* test_host.c: host literals and names, authorities, port sets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "net/host.h"

static const char *hp(const char *s, struct host *h)
{
	return host_parse(s, strlen(s), h);
}

static void test_host_names(void **state)
{
	(void)state;
	struct host h;
	assert_null(hp("API.Stripe.COM", &h));
	assert_int_equal(h.kind, HOST_NAME);
	assert_string_equal(h.name, "api.stripe.com");
	assert_null(hp("example.com.", &h));
	assert_string_equal(h.name, "example.com");
	assert_null(hp("_dmarc.example.com", &h));
	assert_null(hp("localhost", &h));
	assert_null(hp("a-b.c1", &h));
	assert_null(hp("1e100.net", &h));
	assert_null(hp("123.example", &h));
	assert_null(hp("0x.example", &h));

	char label63[64], label64[65], long254[300];
	memset(label63, 'a', 63); label63[63] = '\0';
	memset(label64, 'a', 64); label64[64] = '\0';
	assert_null(hp(label63, &h));
	assert_string_equal(hp(label64, &h), "host name label longer than 63 characters");
	/* 253 characters is the limit (plus an optional trailing dot) */
	memset(long254, 'a', sizeof(long254));
	for (int i = 50; i < 253; i += 51)
		long254[i] = '.';
	long254[253] = '\0';
	assert_null(hp(long254, &h));
	assert_int_equal(strlen(h.name), 253);
	long254[253] = '.'; long254[254] = '\0';
	assert_null(hp(long254, &h));
	long254[253] = 'a';
	assert_string_equal(hp(long254, &h), "host name longer than 253 characters");

	static const char *bad[][2] = {
		{ "", "empty host" }, { ".", "empty host" }, { "a..b", "empty label in host name" },
		{ ".a", "empty label in host name" }, { "a.b..", "empty label in host name" },
		{ "-a.com", "host name label starts or ends with '-'" },
		{ "a-.com", "host name label starts or ends with '-'" },
		{ "a b", "invalid character in host name" }, { "a%2eb", "invalid character in host name" },
		{ "exa\xc3\xa9mple.com", "invalid character in host name" },
		{ "a/b", "invalid character in host name" }, { "a@b", "invalid character in host name" },
		{ "[a.com]", "only IPv6 addresses go in brackets" },
		{ "[::1", "missing ']' after IPv6 address" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = hp(bad[i][0], &h);
		if (!err || strcmp(err, bad[i][1]))
			fail_msg("%s: got %s, want %s", bad[i][0], err ? err : "ok", bad[i][1]);
	}
	assert_non_null(host_parse("a\0b", 3, &h));
}

static void test_host_numeric_bypass(void **state)
{
	(void)state;
	struct host h;
	static const char *bad[] = {
		"0x7f000001", "0177.0.0.1", "127.1", "2130706433", "127.0.0.01", "127.0.1",
		"0x7f.1", "0X7F.0.0.1", "127.0.0.1.", "017700000001", "1.2.3.4.5", "256.1.1.1",
		"example.123", "foo.0x1f", "0", "0x", "00", "1.2.3.4.",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = hp(bad[i], &h);
		if (!err || strcmp(err, "ambiguous numeric host"))
			fail_msg("%s: got %s", bad[i], err ? err : "accepted");
	}
}

static void test_host_ip(void **state)
{
	(void)state;
	struct host h;
	assert_null(hp("127.0.0.1", &h));
	assert_int_equal(h.kind, HOST_IP);
	assert_int_equal(h.ip.family, AF_INET);
	assert_string_equal(h.name, "127.0.0.1");
	assert_null(hp("[::1]", &h));
	assert_int_equal(h.kind, HOST_IP);
	assert_int_equal(h.ip.family, AF_INET6);
	assert_string_equal(h.name, "::1");
	assert_null(hp("2001:DB8::1", &h));
	assert_string_equal(h.name, "2001:db8::1");
	assert_null(hp("[::ffff:127.0.0.1]", &h));
	assert_int_equal(h.ip.family, AF_INET);
	assert_string_equal(h.name, "127.0.0.1");
	assert_non_null(hp("[fe80::1%25eth0]", &h));
	assert_non_null(hp("[::1]x", &h));
}

static void test_authority(void **state)
{
	(void)state;
	struct host h;
	uint16_t port;
#define AP(s, d) authority_parse(s, strlen(s), &h, &port, d)
	assert_null(AP("api.stripe.com:443", 0));
	assert_string_equal(h.name, "api.stripe.com");
	assert_int_equal(port, 443);
	assert_null(AP("example.com", 80));
	assert_int_equal(port, 80);
	assert_string_equal(AP("example.com", 0), "port required");
	assert_null(AP("[::1]:8080", 0));
	assert_int_equal(h.kind, HOST_IP);
	assert_int_equal(port, 8080);
	assert_null(AP("[2001:db8::1]", 443));
	assert_int_equal(port, 443);
	assert_null(AP("127.0.0.1:65535", 0));
	assert_int_equal(port, 65535);
	assert_null(AP("a:1", 0));
	assert_int_equal(port, 1);

	static const char *bad[][2] = {
		{ "example.com:0", "port out of range" }, { "example.com:65536", "port out of range" },
		{ "example.com:", "empty port" }, { "example.com:0443", "leading zero in port" },
		{ "example.com:+443", "port is not a number" }, { "example.com:443 ", "port is not a number" },
		{ "example.com:4a", "port is not a number" }, { "example.com:100000", "port out of range" },
		{ "::1:443", "IPv6 address must be in brackets" }, { "::1", "IPv6 address must be in brackets" },
		{ "[::1]443", "unexpected text after ']'" }, { "[::1", "missing ']' after IPv6 address" },
		{ ":443", "empty host" }, { "", "empty host" },
		{ "0x7f000001:443", "ambiguous numeric host" }, { "127.1:80", "ambiguous numeric host" },
		{ "user@host:443", "invalid character in host name" },
		{ "[127.0.0.1]:443", "only IPv6 addresses go in brackets" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = AP(bad[i][0], 0);
		if (!err || strcmp(err, bad[i][1]))
			fail_msg("%s: got %s, want %s", bad[i][0], err ? err : "ok", bad[i][1]);
		assert_int_equal(port, 0);
	}
#undef AP
}

static void test_portset(void **state)
{
	(void)state;
	struct portset ps;
	assert_null(portset_parse("443 80 8000-9000", &ps));
	assert_true(portset_has(&ps, 443));
	assert_true(portset_has(&ps, 80));
	assert_true(portset_has(&ps, 8000));
	assert_true(portset_has(&ps, 8500));
	assert_true(portset_has(&ps, 9000));
	assert_false(portset_has(&ps, 9001));
	assert_false(portset_has(&ps, 7999));
	assert_false(portset_has(&ps, 0));
	assert_false(portset_has(&ps, 22));
	assert_null(portset_parse("443,80, 1-65535", &ps));
	assert_true(portset_has(&ps, 65535));
	assert_true(portset_has(&ps, 1));
	assert_false(portset_has(&ps, 0));
	assert_null(portset_parse("  22\t", &ps));
	assert_true(portset_has(&ps, 22));

	static const char *bad[][2] = {
		{ "", "empty port list" }, { " , ", "empty port list" }, { "0", "port out of range" },
		{ "443 x", "port is not a number" }, { "90-80", "port range upside down" },
		{ "80-", "empty port" }, { "-80", "empty port" }, { "80--90", "port is not a number" },
		{ "1-2-3", "port is not a number" }, { "65536", "port out of range" },
		{ "080", "leading zero in port" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = portset_parse(bad[i][0], &ps);
		if (!err || strcmp(err, bad[i][1]))
			fail_msg("'%s': got %s, want %s", bad[i][0], err ? err : "ok", bad[i][1]);
	}
}

/* issue 16: one meaning of "*." everywhere (one label), "**." for any depth */
static void test_host_wild(void **state)
{
	size_t skip;

	(void)state;
	assert_int_equal(host_wild_prefix("*.a.com", 7, &skip), HOST_WILD_ONE);
	assert_int_equal(skip, 2);
	assert_int_equal(host_wild_prefix("**.a.com", 8, &skip), HOST_WILD_ANY);
	assert_int_equal(skip, 3);
	assert_int_equal(host_wild_prefix("a.com", 5, &skip), HOST_WILD_NONE);
	assert_int_equal(skip, 0);
	assert_int_equal(host_wild_prefix("*", 1, &skip), HOST_WILD_NONE);
	static const struct {
		enum host_wild w;
		const char *suffix, *name;
		bool match;
	} cases[] = {
		{ HOST_WILD_ONE, "stripe.com", "api.stripe.com", true },
		{ HOST_WILD_ONE, "stripe.com", "API.STRIPE.com", true },
		{ HOST_WILD_ONE, "stripe.com", "a.b.stripe.com", false },
		{ HOST_WILD_ONE, "stripe.com", "stripe.com", false },
		{ HOST_WILD_ONE, "stripe.com", ".stripe.com", false },
		{ HOST_WILD_ONE, "stripe.com", "xstripe.com", false },
		{ HOST_WILD_ONE, "stripe.com", "api.stripe.com.evil", false },
		{ HOST_WILD_ANY, "stripe.com", "api.stripe.com", true },
		{ HOST_WILD_ANY, "stripe.com", "a.b.c.stripe.com", true },
		{ HOST_WILD_ANY, "stripe.com", "stripe.com", false },
		{ HOST_WILD_ANY, "stripe.com", "a..stripe.com", false },
		{ HOST_WILD_ANY, "stripe.com", ".a.stripe.com", false },
		{ HOST_WILD_ANY, "stripe.com", "evilstripe.com", false },
		{ HOST_WILD_NONE, "stripe.com", "Stripe.com", true },
		{ HOST_WILD_NONE, "stripe.com", "a.stripe.com", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (host_wild_match(cases[i].w, cases[i].suffix, cases[i].name, strlen(cases[i].name)) != cases[i].match)
			fail_msg("%d %s %s: want %d", cases[i].w, cases[i].suffix, cases[i].name, cases[i].match);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_names),
		cmocka_unit_test(test_host_numeric_bypass),
		cmocka_unit_test(test_host_ip),
		cmocka_unit_test(test_authority),
		cmocka_unit_test(test_portset),
		cmocka_unit_test(test_host_wild),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
