/* test_gate_config.c: the gate's INI file: listeners and their options, routes in order,
 * relative paths, and one-line errors for bad values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate/config.h"

static char dir[] = "/tmp/iplock-gcfg-XXXXXX";

static const char *load(const char *text, struct gate_config *cfg, char *err, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/g.ini", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return gate_config_load(path, cfg, err, cap);
}

static void test_good(void **state)
{
	struct gate_config cfg;
	char err[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	const char *e = load("[gate]\nlisten = 127.0.0.1:8080\n"
			     "listen = [::1]:8443 tls proxy_protocol=v2\n"
			     "db = keys.db\nupstream = 127.0.0.1:9000\nmode = both\n"
			     "tls_cert = c.pem\ntls_key = /abs/k.pem\n"
			     "trusted_proxies = 10.0.0.0/8, ::1\naccount = acct_1\nworkers = 4\n"
			     "[route tokens]\nmethod = POST\npath = /v1/tokens*\nresource = token\n"
			     "publishable = true\n"
			     "[route charges]\npath = /v1/charges*\nresource = charge\n",
			     &cfg, err, sizeof(err));
	assert_null(e);
	assert_int_equal(cfg.n_listen, 2);
	assert_false(cfg.listen[0].tls);
	assert_true(cfg.listen[1].tls);
	assert_int_equal(cfg.listen[1].pp, PP_V2);
	assert_int_equal(cfg.mode, GATE_MODE_BOTH);
	assert_int_equal(cfg.workers, 4);
	assert_int_equal(cfg.path_norm, GATE_PATH_REFUSE);     /* the default */
	assert_int_equal(cfg.header_timeout_s, 10);
	assert_int_equal(cfg.resync_ms, 5000);
	assert_int_equal(cfg.drain_timeout_ms, 30000);     /* the default, as the proxy's */
	assert_non_null(strstr(cfg.db, dir));
	assert_string_equal(cfg.tls_key, "/abs/k.pem");
	assert_int_equal(cfg.routes.n, 2);
	assert_string_equal(cfg.routes.v[0].name, "tokens");
	assert_true(cfg.routes.v[0].publishable);
	assert_string_equal(cfg.routes.v[1].methods, "*");
	struct ipaddr p;
	assert_null(ipaddr_parse("10.9.9.9", 8, &p));
	assert_true(cidr_set_contains(cfg.trusted, &p));
	gate_config_free(&cfg);
}

/* decimal seconds as before, and the units every other config takes */
static void test_durations(void **state)
{
	struct gate_config cfg;
	char err[512];

	(void)state;
	assert_null(load("[gate]\nlisten = 127.0.0.1:1\ndb = k\nmode = forward-auth\nresync = 0.05\n"
			 "usage_flush = 1500ms\nmetrics = on\nusage = off\ndrain_timeout = 0\n", &cfg, err, sizeof(err)));
	assert_int_equal(cfg.drain_timeout_ms, 0);
	assert_int_equal(cfg.resync_ms, 50);
	assert_int_equal(cfg.usage_flush_ms, 1500);
	assert_true(cfg.metrics);
	assert_false(cfg.usage);
	gate_config_free(&cfg);
}

static void test_bad(void **state)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
		{ "[gate]\ndb = k.db\nupstream = 127.0.0.1:1\n", "listen" },
		{ "[gate]\nlisten = 127.0.0.1:1\nupstream = 127.0.0.1:1\n", "db" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\n", "upstream" },
		{ "[gate]\nlisten = 127.0.0.1:1 fast\ndb = k\nupstream = 127.0.0.1:1\n", "listen option" },
		{ "[gate]\nlisten = 127.0.0.1:1 tls\ndb = k\nupstream = 127.0.0.1:1\n", "tls_cert" },
		/* the key once: "[gate] mode must be", not "[gate] mode: mode must be" (issue 16) */
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nmode = magic\n", ":5: [gate] mode must be" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nworkers = 99\n", ":5: [gate] workers must be 1-64" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nfoo = 1\n", "unknown key" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\npath_normalize = on\n", "refuse or rewrite" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nmode = forward-auth\npath_normalize = rewrite\n", "needs mode = reverse-proxy" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\n[route r]\npath = /x\n", "resource" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\n[route r]\npath = /x\nresource = x\nmethod = get\n", "method" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\ntrusted_proxies = 10.0.0.1/8\n", "host bits" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\n[other]\nx = 1\n", "section" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nworkers = 0\n", "workers" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nheader_timeout = x\n", "header_timeout" },
		/* core/ini: a key said twice, a long line (inih alone cut it and read the rest as a
		 * line of its own), a route's error at its own header */
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nmode = both\nmode = forward-auth\n",
		  "g.ini:6: [gate] duplicate key mode (first at line 5)" },
		{ "[route r]\npath = /x\nresource = r\npath = /y\n", "g.ini:4: [route r] duplicate key path (first at line 2)" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\naccess_log = /tmp/"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		  "g.ini:5: line longer than 197 characters" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\n[route a]\npath = /a\n[route b]\n"
		  "path = /b\nresource = b\n", "g.ini:5: route a: route needs resource =" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nresync = 10ms\n", "resync must be 0.05-3600 seconds" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\nworkers = 04\n", "workers must be 1-64" },
		{ "[gate]\nlisten = 127.0.0.1:1\ndb = k\nupstream = 127.0.0.1:1\ndrain_timeout = 2d\n",
		  ":5: [gate] drain_timeout: duration must be a number" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gate_config cfg;
		char err[512];
		const char *e = load(cases[i].text, &cfg, err, sizeof(err));
		if (!e || !strstr(e, cases[i].needle))
			fail_msg("case %zu: got '%s', want '%s'", i, e ? e : "(ok)", cases[i].needle);
		gate_config_free(&cfg);
	}
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
