/* test_config_inbound.c: [inbound NAME] sections of the proxy config: a good one with every key,
 * and each error with its line number. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/inbound.h"

/* lines 1-5: a proxy without auth, so no password hash is needed */
static const char base[] = "[proxy]\nlisten = 127.0.0.1:3128\negress = 127.0.0.2\nauth = none\nopen_proxy = yes\n";

static struct proxy_config *load_ok(const char *tail)
{
	struct proxy_config *cfg;
	char text[4096], err[512];

	snprintf(text, sizeof(text), "%s%s", base, tail);
	if (proxy_config_load_string(text, "t.ini", &cfg, err, sizeof(err)))
		fail_msg("refused: %s", err);
	return cfg;
}

static void expect_error(const char *tail, const char *want)
{
	struct proxy_config *cfg;
	char text[4096], err[512];

	snprintf(text, sizeof(text), "%s%s", base, tail);
	const char *e = proxy_config_load_string(text, "t.ini", &cfg, err, sizeof(err));
	if (!e)
		fail_msg("accepted:\n%s", text);
	if (strcmp(e, want))
		fail_msg("got  '%s'\nwant '%s'", e, want);
}

static void test_good(void **state)
{
	struct ipaddr ip;

	(void)state;
	struct proxy_config *cfg = load_ok(
		"[inbound web]\nlisten = 0.0.0.0:8443\nforward = app.internal:443\n"
		"sni = a.example.com=10.0.0.5:443 *.b.example.com=[2001:db8::1]:8443\n"
		"  c.example.com=backend:443\n"
		"proxy_protocol = v2\nallow = 127.0.0.0/8 10.0.0.0/8\n"
		"[inbound ssh]\nlisten = 127.0.0.1:2222\nforward = 10.0.0.9:22\n");
	assert_int_equal(cfg->ninbound, 2);
	const struct proxy_inbound *ib = &cfg->inbound[0];
	assert_string_equal(ib->name, "web");
	assert_int_equal(ib->listen.port, 8443);
	assert_true(ib->has_forward);
	assert_string_equal(ib->forward.name, "app.internal");
	assert_int_equal(ib->forward_port, 443);
	assert_int_equal(ib->nroutes, 3);
	assert_string_equal(ib->routes[1].host, "*.b.example.com");
	assert_int_equal(ib->routes[1].port, 8443);
	assert_string_equal(ib->routes[2].backend.name, "backend");
	assert_int_equal(ib->proxy_protocol, PP_V2);
	assert_null(ipaddr_parse("10.1.2.3", 8, &ip));
	assert_true(cidr_set_contains(ib->allow, &ip));
	assert_null(ipaddr_parse("192.0.2.1", 9, &ip));
	assert_false(cidr_set_contains(ib->allow, &ip));
	assert_null(cfg->inbound[1].allow);
	assert_int_equal(cfg->inbound[1].proxy_protocol, PP_OFF);
	proxy_config_free(cfg);
	/* sni alone, without a default forward */
	cfg = load_ok("[inbound x]\nlisten = 127.0.0.1:9000\nsni = A.Example=127.0.0.1:1\n");
	assert_false(cfg->inbound[0].has_forward);
	assert_string_equal(cfg->inbound[0].routes[0].host, "a.example");
	proxy_config_free(cfg);
}

/* issue 16: "*." is one label in sni routes as in [user] allow; "**." is any depth */
static void test_sni_wildcard_depth_matches_allow(void **state)
{
	(void)state;
	struct proxy_config *cfg = load_ok(
		"[inbound w]\nlisten = 127.0.0.1:9000\n"
		"sni = *.stripe.com=127.0.0.1:1 **.stripe.com=127.0.0.1:2 **.eu.stripe.com=127.0.0.1:3\n"
		"  api.stripe.com=127.0.0.1:4\n");
	const struct proxy_inbound *ib = &cfg->inbound[0];
	assert_int_equal(ib->routes[0].wild, HOST_WILD_ONE);
	assert_string_equal(ib->routes[1].host, "**.stripe.com");
	assert_int_equal(ib->routes[1].wild, HOST_WILD_ANY);
	static const struct {
		const char *sni;
		int port;   /* 0 = no route */
	} cases[] = {
		{ "api.stripe.com", 4 },        /* exact wins */
		{ "files.stripe.com", 1 },      /* one label: "*." before "**." */
		{ "FILES.Stripe.COM", 1 },
		{ "a.b.stripe.com", 2 },        /* two labels: only "**." */
		{ "x.y.eu.stripe.com", 3 },     /* the longest "**." suffix */
		{ "a.eu.stripe.com", 3 },       /* two labels below stripe.com: not "*." */
		{ "stripe.com", 0 },
		{ "evilstripe.com", 0 },
		{ ".stripe.com", 0 },
		{ "a..stripe.com", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct inbound_route *r = inbound_route_find(ib, cases[i].sni);
		int got = r ? r->port : 0;
		if (got != cases[i].port)
			fail_msg("%s: route to port %d, want %d", cases[i].sni, got, cases[i].port);
	}
	proxy_config_free(cfg);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[inbound a]\nforward = 10.0.0.1:1\n", "t.ini:6: inbound a has no listen address");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\n", "t.ini:6: inbound a needs forward = HOST:PORT or sni routes");
	expect_error("[inbound a]\nlisten = localhost:9000\n", "t.ini:7: listen takes an IP address and port (0.0.0.0:443), not a name");
	expect_error("[inbound a]\nlisten = 127.0.0.1:3128\nforward = 10.0.0.1:1\n", "t.ini:7: listen: the proxy listens there already");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = 10.0.0.1:1\n[inbound b]\nlisten = 127.0.0.1:9000\nforward = 10.0.0.1:2\n",
		     "t.ini:10: listen: inbound a listens there already");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = 10.0.0.1\n", "t.ini:8: forward: port required");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = a.example\n", "t.ini:8: sni routes are HOST=BACKEND:PORT");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = 10.0.0.1=b:1\n", "t.ini:8: sni routes name hosts, not IP addresses (clients send no SNI for addresses)");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = a.example=b:1\n  A.example=c:2\n", "t.ini:9: duplicate sni host");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = a.example.=b:1\n", "t.ini:8: sni host with a trailing dot (clients never send one)");
	/* a '*' anywhere but a leading "*." or "**." is refused, not taken literally (issue 16) */
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = *.*.example=b:1\n", "t.ini:8: sni: '*' only as a leading \"*.\" (one label) or \"**.\" (any depth)");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = ***.example=b:1\n", "t.ini:8: sni: '*' only as a leading \"*.\" (one label) or \"**.\" (any depth)");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nsni = *example=b:1\n", "t.ini:8: sni: '*' only as a leading \"*.\" (one label) or \"**.\" (any depth)");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = b:1\nproxy_protocol = v3\n", "t.ini:9: proxy_protocol must be v2 or off");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = b:1\nallow = 10.0.0.1/8\n", "t.ini:9: allow: host bits set");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = b:1\nlisten = 127.0.0.1:9001\n", "t.ini:9: duplicate key listen (first at line 7)");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = b:1\nbogus = 1\n", "t.ini:9: unknown key bogus in [inbound]");
	expect_error("[inbound a b]\n", "t.ini:6: bad inbound name (1-64 of A-Z a-z 0-9 . _ -)");
	expect_error("[inbound a]\nlisten = 127.0.0.1:9000\nforward = b:1\n[inbound a]\n", "t.ini:9: duplicate inbound a (first at line 6)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sni_wildcard_depth_matches_allow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
