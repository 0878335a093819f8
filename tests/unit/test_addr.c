/* test_addr.c: strict IP literals, CIDR parsing, CIDR sets, special ranges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/addr.h"

static struct ipaddr ip(const char *s)
{
	struct ipaddr a;
	const char *err = ipaddr_parse(s, strlen(s), &a);
	if (err)
		fail_msg("ipaddr_parse(%s): %s", s, err);
	return a;
}

static struct cidr cidr(const char *s)
{
	struct cidr c;
	const char *err = cidr_parse(s, strlen(s), &c);
	if (err)
		fail_msg("cidr_parse(%s): %s", s, err);
	return c;
}

static void test_ipv4_strict(void **state)
{
	(void)state;
	static const char *bad[] = {
		"0x7f000001", "0177.0.0.1", "127.1", "2130706433", "127.0.0.01", "01.2.3.4",
		"127.0.0.1.", ".127.0.0.1", "256.0.0.1", "1.2.3.4.5", "1.2.3", "1..2.3", "1.2.3.-4",
		"1.2.3.4 ", " 1.2.3.4", "0x7f.0.0.1", "1.2.3.1000", "", "1.2.3.4/32", "127.0.0.1\n",
		"1.2.3.a", "+1.2.3.4", "0.0.0.00", "[127.0.0.1]", "127.000.0.1",
	};
	struct ipaddr a;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!ipaddr_parse(bad[i], strlen(bad[i]), &a))
			fail_msg("accepted %s", bad[i]);
	a = ip("127.0.0.1");
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.a, "\x7f\0\0\x01", 4);
	a = ip("0.0.0.0");
	assert_int_equal(a.family, AF_INET);
	a = ip("255.255.255.255");
	assert_memory_equal(a.a, "\xff\xff\xff\xff", 4);
	/* embedded NUL within len is refused */
	assert_non_null(ipaddr_parse("1.2.3.4\0", 8, &a));
	/* len bounds the parse: no read past it */
	a = ip("10.1.2.3");
	assert_null(ipaddr_parse("10.1.2.3999", 8, &a));
	assert_memory_equal(a.a, "\x0a\x01\x02\x03", 4);
}

static void test_ipv6(void **state)
{
	(void)state;
	struct ipaddr a = ip("::1"), b;
	assert_int_equal(a.family, AF_INET6);
	assert_int_equal(a.a[15], 1);
	a = ip("2001:db8::1");
	assert_int_equal(a.family, AF_INET6);
	/* mapped becomes v4 */
	a = ip("::ffff:127.0.0.1");
	assert_int_equal(a.family, AF_INET);
	assert_memory_equal(a.a, "\x7f\0\0\x01", 4);
	b = ip("::ffff:7f00:1");
	assert_true(ipaddr_equal(&a, &b));
	static const char *bad[] = {
		"[::1]", "::1%lo", "fe80::1%eth0", ":::1", "1:2:3:4:5:6:7:8:9", "::ffff:127.0.0.01",
		"::g", "0000:0000:0000:0000:0000:0000:0000:0000:1",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc", "::1 ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!ipaddr_parse(bad[i], strlen(bad[i]), &a))
			fail_msg("accepted %s", bad[i]);
}

static void test_format_sockaddr(void **state)
{
	(void)state;
	char buf[IPADDR_STRLEN];
	struct ipaddr a = ip("2001:DB8:0:0::1"), b;
	assert_int_equal(ipaddr_format(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2001:db8::1");
	assert_int_equal(ipaddr_format(&a, buf, 5), -ENOSPC);
	a = ip("192.0.2.1");
	assert_int_equal(ipaddr_format(&a, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "192.0.2.1");
	assert_int_equal(ipaddr_format(&a, buf, 9), -ENOSPC);
	assert_int_equal(ipaddr_format(&a, buf, 10), 0);

	struct sockaddr_storage ss;
	socklen_t sl = ipaddr_to_sockaddr(&a, 3128, &ss);
	assert_int_equal(sl, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 3128);
	ipaddr_from_sockaddr((struct sockaddr *)&ss, &b);
	assert_true(ipaddr_equal(&a, &b));

	/* a v4 peer on a dual-stack socket arrives mapped: it comes back as v4 */
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	ipaddr_from_sockaddr((struct sockaddr *)&sin6, &b);
	assert_int_equal(b.family, AF_INET);
	assert_true(ipaddr_equal(&a, &b));

	a = ip("::1");
	sl = ipaddr_to_sockaddr(&a, 80, &ss);
	assert_int_equal(sl, sizeof(struct sockaddr_in6));
	ipaddr_from_sockaddr((struct sockaddr *)&ss, &b);
	assert_true(ipaddr_equal(&a, &b));
	b = ip("::2");
	assert_false(ipaddr_equal(&a, &b));
}

static void test_cidr_parse(void **state)
{
	(void)state;
	struct cidr c;
	c = cidr("10.0.0.0/8");
	assert_int_equal(c.prefix, 8);
	c = cidr("10.1.2.3");
	assert_int_equal(c.prefix, 32);
	c = cidr("0.0.0.0/0");
	assert_int_equal(c.prefix, 0);
	c = cidr("2001:db8::/32");
	assert_int_equal(c.net.family, AF_INET6);
	assert_int_equal(c.prefix, 32);
	c = cidr("::1");
	assert_int_equal(c.prefix, 128);
	/* mapped prefixes become v4 ranges */
	c = cidr("::ffff:0:0/96");
	assert_int_equal(c.net.family, AF_INET);
	assert_int_equal(c.prefix, 0);
	c = cidr("::ffff:10.0.0.0/104");
	assert_int_equal(c.net.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	c = cidr("::ffff:1.2.3.4");
	assert_int_equal(c.net.family, AF_INET);
	assert_int_equal(c.prefix, 32);
	c = cidr("::/0");
	assert_int_equal(c.net.family, AF_INET6);

	struct { const char *s, *err; } bad[] = {
		{ "10.0.0.1/8", "host bits set" },
		{ "10.0.0.0/33", "prefix length above 32" },
		{ "::/129", "prefix length above 128" },
		{ "10.0.0.0/08", "leading zero in prefix length" },
		{ "10.0.0.0/", "bad prefix length" },
		{ "10.0.0.0/8/8", "bad prefix length" },
		{ "10.0.0.0/-1", "bad prefix length" },
		{ "10.0.0.0/ 8", "bad prefix length" },
		{ "2001:db8::1/32", "host bits set" },
		{ "010.0.0.0/8", "leading zero in IPv4 address" },
		{ "10/8", NULL },
		{ "/8", "empty address" },
		{ "::ffff:0:0/95", "host bits set" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = cidr_parse(bad[i].s, strlen(bad[i].s), &c);
		if (!err)
			fail_msg("accepted %s", bad[i].s);
		if (bad[i].err && strcmp(err, bad[i].err))
			fail_msg("%s: got '%s', want '%s'", bad[i].s, err, bad[i].err);
	}
	char buf[64];
	c = cidr("fe80::/10");
	assert_int_equal(cidr_format(&c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fe80::/10");
}

static void test_cidr_contains(void **state)
{
	(void)state;
	struct cidr c = cidr("172.16.0.0/12");
	struct ipaddr a = ip("172.31.255.255"), b = ip("172.32.0.0"), m = ip("::ffff:172.20.0.1");
	assert_true(cidr_contains(&c, &a));
	assert_false(cidr_contains(&c, &b));
	assert_true(cidr_contains(&c, &m));
	c = cidr("0.0.0.0/0");
	assert_true(cidr_contains(&c, &b));
	/* families never mix: ::/0 does not cover IPv4 (the smokescreen mapped-range bug) */
	c = cidr("::/0");
	assert_false(cidr_contains(&c, &a));
	a = ip("2001:db8::5");
	assert_true(cidr_contains(&c, &a));
	c = cidr("2001:db8::/33");
	assert_true(cidr_contains(&c, &a));
	a = ip("2001:db8:8000::");
	assert_false(cidr_contains(&c, &a));
	c = cidr("1.2.3.4");
	a = ip("1.2.3.4");
	b = ip("1.2.3.5");
	assert_true(cidr_contains(&c, &a));
	assert_false(cidr_contains(&c, &b));
}

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* 5000 random ranges of each family plus nesting and mapped ones, checked against a linear
 * scan on random probes and on every range's edges. */
static void test_cidr_set_large(void **state)
{
	(void)state;
	enum { N = 5000 };
	static struct cidr list[2 * N + 4];
	size_t n = 0;
	struct cidr_set *set = cidr_set_new();
	assert_non_null(set);

	for (int i = 0; i < N; i++) {
		struct cidr c = { .net.family = AF_INET, .prefix = (uint8_t)(8 + rnd() % 25) };
		uint32_t v = rnd();
		if (c.prefix < 32)
			v &= ~((1u << (32 - c.prefix)) - 1);
		c.net.a[0] = v >> 24; c.net.a[1] = v >> 16; c.net.a[2] = v >> 8; c.net.a[3] = v;
		list[n++] = c;
	}
	for (int i = 0; i < N; i++) {
		struct cidr c = { .net.family = AF_INET6, .prefix = (uint8_t)(16 + rnd() % 113) };
		for (int k = 0; k < 16; k++)
			c.net.a[k] = (uint8_t)rnd();
		c.net.a[0] = 0x20;      /* keep them out of the mapped block */
		for (unsigned bit = c.prefix; bit < 128; bit++)
			c.net.a[bit / 8] &= (uint8_t)~(0x80 >> (bit % 8));
		list[n++] = c;
	}
	list[n++] = cidr("::ffff:192.168.0.0/112");          /* = 192.168.0.0/16 */
	list[n++] = cidr("2001:db8::/32");
	list[n++] = cidr("2001:db8:1::/48");                 /* nested */
	list[n++] = cidr("2001:db8::/32");                   /* duplicate */

	clock_t t0 = clock();
	for (size_t i = 0; i < n; i++)
		assert_int_equal(cidr_set_add(set, &list[i]), 0);
	clock_t t1 = clock();
	assert_int_equal(cidr_set_count(set), n);
	print_message("cidr_set: %zu adds in %.1f ms\n", n, (t1 - t0) * 1000.0 / CLOCKS_PER_SEC);

	for (int probe = 0; probe < 2 * (int)n + 4000; probe++) {
		struct ipaddr a = { 0 };
		if (probe < 2 * (int)n) {
			/* edges: first and last address of a range, and one past the last */
			const struct cidr *c = &list[probe / 2];
			a = c->net;
			if (probe & 1) {
				unsigned max = a.family == AF_INET ? 32 : 128;
				for (unsigned bit = c->prefix; bit < max; bit++)
					a.a[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
				for (int k = (int)max / 8 - 1; k >= 0 && ++a.a[k] == 0; k--)
					;
			}
		} else {
			a.family = probe & 1 ? AF_INET : AF_INET6;
			for (int k = 0; k < (a.family == AF_INET ? 4 : 16); k++)
				a.a[k] = (uint8_t)rnd();
			if (a.family == AF_INET6)
				a.a[0] = 0x20;
		}
		bool want = false;
		for (size_t i = 0; i < n && !want; i++)
			want = cidr_contains(&list[i], &a);
		if (want != cidr_set_contains(set, &a)) {
			char buf[IPADDR_STRLEN];
			ipaddr_format(&a, buf, sizeof(buf));
			fail_msg("probe %d %s: want %d", probe, buf, want);
		}
	}
	struct ipaddr m = ip("::ffff:192.168.3.4"), v = ip("192.168.3.4");
	assert_true(cidr_set_contains(set, &m));
	assert_true(cidr_set_contains(set, &v));
	m = ip("2001:db8:1::1");
	assert_true(cidr_set_contains(set, &m));

	t0 = clock();
	unsigned hits = 0;
	for (int i = 0; i < 100000; i++) {
		struct ipaddr a = { .family = AF_INET };
		uint32_t r = rnd();
		memcpy(a.a, &r, 4);
		hits += cidr_set_contains(set, &a);
	}
	t1 = clock();
	print_message("cidr_set: 100k lookups in %.1f ms (%u hits)\n",
		      (t1 - t0) * 1000.0 / CLOCKS_PER_SEC, hits);
	cidr_set_free(set);
	cidr_set_free(NULL);
	assert_false(cidr_set_contains(NULL, &v));
}

static void test_cidr_set_small(void **state)
{
	(void)state;
	struct cidr_set *set = cidr_set_new();
	struct ipaddr a = ip("10.1.2.3");
	assert_false(cidr_set_contains(set, &a));
	struct cidr c = cidr("10.0.0.0/8");
	assert_int_equal(cidr_set_add(set, &c), 0);
	assert_true(cidr_set_contains(set, &a));
	a = ip("11.0.0.0");
	assert_false(cidr_set_contains(set, &a));
	a = ip("::a01:203");            /* IPv4-compatible form is v6, not 10.1.2.3 */
	assert_false(cidr_set_contains(set, &a));
	/* a deny address inside an allow range is still just membership of the range */
	c = cidr("0.0.0.0/0");
	assert_int_equal(cidr_set_add(set, &c), 0);
	a = ip("2001:db8::1");
	assert_false(cidr_set_contains(set, &a));
	assert_int_equal(cidr_set_count(set), 2);
	cidr_set_free(set);
}

static void expect_special(const char *addr, const char *range)
{
	struct ipaddr a = ip(addr);
	const char *got = ipaddr_special_range(&a);
	if (!range && got)
		fail_msg("%s: got %s, want public", addr, got);
	if (range && (!got || strcmp(got, range)))
		fail_msg("%s: got %s, want %s", addr, got ? got : "public", range);
}

static void test_special_ranges(void **state)
{
	(void)state;
	static const char *v4[][2] = {
		{ "0.0.0.0", "0.0.0.0/8" }, { "0.255.1.1", "0.0.0.0/8" },
		{ "10.0.0.1", "10.0.0.0/8" }, { "100.64.0.1", "100.64.0.0/10" },
		{ "100.127.255.255", "100.64.0.0/10" }, { "100.128.0.0", NULL },
		{ "127.0.0.1", "127.0.0.0/8" }, { "127.255.255.254", "127.0.0.0/8" },
		{ "169.254.169.254", "169.254.0.0/16" }, { "172.16.0.1", "172.16.0.0/12" },
		{ "172.31.255.255", "172.16.0.0/12" }, { "172.32.0.0", NULL }, { "172.15.255.255", NULL },
		{ "192.0.0.8", "192.0.0.0/24" }, { "192.0.2.1", "192.0.2.0/24" },
		{ "192.168.1.1", "192.168.0.0/16" }, { "198.18.0.1", "198.18.0.0/15" },
		{ "198.19.255.255", "198.18.0.0/15" }, { "198.20.0.0", NULL },
		{ "198.51.100.7", "198.51.100.0/24" }, { "203.0.113.9", "203.0.113.0/24" },
		{ "224.0.0.1", "224.0.0.0/4" }, { "239.255.255.255", "224.0.0.0/4" },
		{ "240.0.0.1", "240.0.0.0/4" }, { "255.255.255.255", "255.255.255.255/32" },
		{ "8.8.8.8", NULL }, { "1.1.1.1", NULL }, { "54.187.174.169", NULL },
		{ "223.255.255.255", NULL }, { "11.0.0.0", NULL }, { "9.255.255.255", NULL },
	};
	for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		expect_special(v4[i][0], v4[i][1]);
	static const char *v6[][2] = {
		{ "::", "::/128" }, { "::1", "::1/128" }, { "::2", "::/96" },
		{ "::ffff:127.0.0.1", "127.0.0.0/8" }, { "::ffff:8.8.8.8", NULL },
		{ "64:ff9b::8.8.8.8", "64:ff9b::/96" },
		{ "64:ff9b::127.0.0.1", "127.0.0.0/8" }, { "64:ff9b::a9fe:a9fe", "169.254.0.0/16" },
		{ "2001:0:4136:e378:8000:63bf:f7f7:f7f7", "2001::/32" },
		/* Teredo client 127.0.0.1 (inverted 80ff:fffe) and server 10.0.0.1 */
		{ "2001:0:0a00:0001::80ff:fffe", "127.0.0.0/8" },
		{ "2001:0:0a00:0001::f7f7:f7f7", "10.0.0.0/8" },
		{ "2001:db8::1", "2001:db8::/32" },
		{ "2002:808:808::1", "2002::/16" }, { "2002:7f00:1::1", "127.0.0.0/8" },
		{ "2002:a9fe:a9fe::", "169.254.0.0/16" },
		{ "fc00::1", "fc00::/7" }, { "fd12:3456::1", "fc00::/7" },
		{ "fe80::1", "fe80::/10" }, { "febf::1", "fe80::/10" },
		{ "ff02::1", "ff00::/8" }, { "100::1", "100::/64" },
		{ "2606:4700:4700::1111", NULL }, { "2a00:1450:4001:82a::200e", NULL },
		{ "3fff::1", "3fff::/20" }, { "4000::1", "outside 2000::/3" },
		{ "1::", "outside 2000::/3" },
	};
	for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
		expect_special(v6[i][0], v6[i][1]);
}

static void test_check_destination(void **state)
{
	(void)state;
	struct cidr_set *allow = cidr_set_new();
	struct cidr c = cidr("64:ff9b::/96");
	assert_int_equal(cidr_set_add(allow, &c), 0);
	c = cidr("10.1.0.0/16");
	assert_int_equal(cidr_set_add(allow, &c), 0);

	struct ipaddr a = ip("64:ff9b::8.8.8.8");
	assert_null(ipaddr_check_destination(&a, allow));
	assert_string_equal(ipaddr_check_destination(&a, NULL), "64:ff9b::/96");
	/* allowing the NAT64 prefix does not open the embedded loopback */
	a = ip("64:ff9b::127.0.0.1");
	assert_string_equal(ipaddr_check_destination(&a, allow), "127.0.0.0/8");
	a = ip("10.1.2.3");
	assert_null(ipaddr_check_destination(&a, allow));
	a = ip("::ffff:10.1.2.3");
	assert_null(ipaddr_check_destination(&a, allow));
	a = ip("10.2.0.1");
	assert_string_equal(ipaddr_check_destination(&a, allow), "10.0.0.0/8");
	a = ip("8.8.8.8");
	assert_null(ipaddr_check_destination(&a, NULL));
	/* mapped form as stored by a careless caller is still checked as v4 */
	struct ipaddr raw = { .family = AF_INET6 };
	inet_pton(AF_INET6, "::ffff:127.0.0.1", raw.a);
	assert_string_equal(ipaddr_check_destination(&raw, allow), "127.0.0.0/8");
	assert_string_equal(ipaddr_special_range(&raw), "127.0.0.0/8");
	cidr_set_free(allow);
}

/* cidr_set_add_many() answers as one cidr_set_add() per entry does, for v4 and v6 mixed. */
static void test_cidr_set_add_many(void **state)
{
	struct cidr_set *one = cidr_set_new(), *many = cidr_set_new();
	struct cidr *cs = calloc(3000, sizeof(*cs));
	char text[64];

	(void)state;
	for (int i = 0; i < 3000; i++) {
		if (i % 3 == 2)
			snprintf(text, sizeof(text), "2001:db8:%x::/48", i);
		else
			snprintf(text, sizeof(text), "10.%d.%d.0/%d", i / 256, i % 256, i % 2 ? 24 : 25);
		assert_null(cidr_parse(text, strlen(text), &cs[i]));
		assert_int_equal(cidr_set_add(one, &cs[i]), 0);
	}
	assert_int_equal(cidr_set_add_many(many, cs, 3000), 0);
	assert_int_equal(cidr_set_count(many), 3000);
	for (int i = 0; i < 20000; i++) {
		struct ipaddr ip;
		if (i % 3)
			snprintf(text, sizeof(text), "10.%d.%d.%d", i % 13, (i * 7) & 255, (i * 31) & 255);
		else
			snprintf(text, sizeof(text), "2001:db8:%x::1", (i >> 2) & 0xfff);
		assert_null(ipaddr_parse(text, strlen(text), &ip));
		assert_int_equal(cidr_set_contains(one, &ip), cidr_set_contains(many, &ip));
	}
	struct ipaddr in, out;
	assert_null(ipaddr_parse("10.0.1.9", 8, &in));
	assert_null(ipaddr_parse("10.0.0.200", 10, &out));
	assert_true(cidr_set_contains(many, &in));
	assert_false(cidr_set_contains(many, &out));    /* 10.0.0.0/25 */
	free(cs);
	cidr_set_free(one);
	cidr_set_free(many);
}

/* IPv4 is formatted by hand (no sprintf per request): the same text as inet_ntop, always */
static void test_format_ipv4_like_inet_ntop(void **state)
{
	(void)state;
	struct ipaddr a = { .family = AF_INET };
	char got[IPADDR_STRLEN], want[INET_ADDRSTRLEN];
	uint32_t x = 0x9E3779B9u;

	for (int i = 0; i < 20000; i++) {
		if (i < 256) {
			memset(a.a, i, 4);   /* every byte value in every position */
			a.a[i % 4] = (uint8_t)(255 - i);
		} else {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			memcpy(a.a, &x, 4);
		}
		assert_non_null(inet_ntop(AF_INET, a.a, want, sizeof(want)));
		assert_int_equal(ipaddr_format(&a, got, sizeof(got)), 0);
		assert_string_equal(got, want);
		assert_int_equal(ipaddr_format(&a, got, strlen(want)), -ENOSPC);
		assert_int_equal(ipaddr_format(&a, got, strlen(want) + 1), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_strict),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_format_sockaddr),
		cmocka_unit_test(test_format_ipv4_like_inet_ntop),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_cidr_set_small),
		cmocka_unit_test(test_cidr_set_large),
		cmocka_unit_test(test_cidr_set_add_many),
		cmocka_unit_test(test_special_ranges),
		cmocka_unit_test(test_check_destination),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
