/* test_config.c: the proxy INI config: a full good file, defaults, and each error with its
 * line number. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/auth.h"
#include "proxy/config.h"

static char hash[AUTH_HASH_MAX];

static int setup(void **state)
{
	(void)state;
	return auth_hash_password_iter("pw", 2, 1000, hash, sizeof(hash));
}

/* text with every "@H" replaced by a valid password hash */
static char *expand(const char *text)
{
	size_t n = strlen(text) + 1;
	for (const char *p = text; (p = strstr(p, "@H")); p += 2)
		n += strlen(hash);
	char *out = malloc(n), *o = out;
	for (const char *p = text; *p;) {
		if (p[0] == '@' && p[1] == 'H') {
			memcpy(o, hash, strlen(hash));
			o += strlen(hash);
			p += 2;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

static const char *load(const char *text, struct proxy_config **cfg, char *err, size_t cap)
{
	char *t = expand(text);
	const char *e = proxy_config_load_string(t, "t.ini", cfg, err, cap);
	free(t);
	return e;
}

static const char good[] =
	"; a full configuration\n"
	"[proxy]\n"
	"listen = 127.0.0.1:3128 [::1]:3129\n"
	"egress = 127.0.0.2 127.0.0.3   ; the pair\n"
	"egress_policy = sticky\n"
	"allow_destinations = 10.1.0.0/16\n"
	"    192.168.5.5 fd00::/8\n"
	"allow_destinations = ::ffff:172.16.0.0/108\n"
	"connect_ports = 443 8000-8100\n"
	"http_ports = 80,8080\n"
	"header_timeout = 5s\n"
	"connect_timeout = 2500ms\n"
	"idle_timeout = 10m\n"
	"max_header_bytes = 32768\n"
	"max_headers = 50\n"
	"max_conns = 1000\n"
	"max_conns_per_user = 10\n"
	"workers = 2\n"
	"egress_down = 5\n"
	"relay = copy\n"
	"access_log = /var/log/iplock/proxy.log\n"
	"\n"
	"# users\n"
	"[user alice]\n"
	"password_hash = @H\n"
	"egress = 127.0.0.3\n"
	"allow = api.stripe.com:443 *.stripe.com:443\n"
	"  files.example.com:*\n"
	"max_conns = 5\n"
	"\n"
	"[user bob.smith-2_x]\n"
	"password_hash = @H\n"
	"egress = 127.0.0.2 127.0.0.4\n"
	"egress_policy = primary\n";

static void test_good(void **state)
{
	(void)state;
	struct proxy_config *cfg;
	char err[512];
	const char *e = load(good, &cfg, err, sizeof(err));
	if (e)
		fail_msg("%s", e);
	assert_int_equal(cfg->nlisten, 2);
	assert_int_equal(cfg->listen[0].port, 3128);
	assert_int_equal(cfg->listen[1].port, 3129);
	assert_int_equal(cfg->listen[1].ip.family, AF_INET6);
	assert_int_equal(cfg->egress.n, 2);
	assert_int_equal(cfg->egress.policy, EGRESS_STICKY);
	struct ipaddr a;
	assert_null(ipaddr_parse("10.1.2.3", 8, &a));
	assert_true(cidr_set_contains(cfg->allow_destinations, &a));
	assert_null(ipaddr_parse("192.168.5.5", 11, &a));
	assert_true(cidr_set_contains(cfg->allow_destinations, &a));
	assert_null(ipaddr_parse("172.16.9.9", 10, &a));
	assert_true(cidr_set_contains(cfg->allow_destinations, &a));
	assert_null(ipaddr_parse("192.168.5.6", 11, &a));
	assert_false(cidr_set_contains(cfg->allow_destinations, &a));
	assert_int_equal(cidr_set_count(cfg->allow_destinations), 4);
	assert_true(portset_has(&cfg->connect_ports, 443));
	assert_true(portset_has(&cfg->connect_ports, 8050));
	assert_false(portset_has(&cfg->connect_ports, 80));
	assert_true(portset_has(&cfg->http_ports, 8080));
	assert_false(portset_has(&cfg->http_ports, 443));
	assert_int_equal(cfg->header_timeout_ms, 5000);
	assert_int_equal(cfg->connect_timeout_ms, 2500);
	assert_int_equal(cfg->idle_timeout_ms, 600000);
	assert_int_equal(cfg->max_header_bytes, 32768);
	assert_int_equal(cfg->max_headers, 50);
	assert_int_equal(cfg->max_conns, 1000);
	assert_int_equal(cfg->max_conns_per_user, 10);
	assert_int_equal(cfg->workers, 2);
	assert_int_equal(cfg->egress_down_ms, 5000);
	assert_true(cfg->auth_required);
	assert_string_equal(cfg->relay, "copy");
	assert_string_equal(cfg->access_log, "/var/log/iplock/proxy.log");
	assert_int_equal(cfg->nusers, 2);
	struct proxy_user *u = &cfg->users[0];
	assert_string_equal(u->name, "alice");
	assert_string_equal(u->password_hash, hash);
	assert_non_null(u->egress);
	assert_int_equal(u->egress->n, 1);
	assert_int_equal(u->egress->policy, EGRESS_STICKY);   /* inherited */
	assert_int_equal(u->nallow, 3);
	assert_true(dest_rules_allow(u->allow, u->nallow, "api.stripe.com", 443));
	assert_true(dest_rules_allow(u->allow, u->nallow, "files.example.com", 22));
	assert_false(dest_rules_allow(u->allow, u->nallow, "example.com", 443));
	assert_int_equal(u->max_conns, 5);
	u = &cfg->users[1];
	assert_string_equal(u->name, "bob.smith-2_x");
	assert_int_equal(u->egress->n, 2);
	assert_int_equal(u->egress->policy, EGRESS_PRIMARY);
	assert_int_equal(u->nallow, 0);
	assert_int_equal(proxy_config_find_user(cfg, "alice", 5), 0);
	assert_int_equal(proxy_config_find_user(cfg, "bob.smith-2_x", 13), 1);
	assert_int_equal(proxy_config_find_user(cfg, "ali", 3), -1);

	/* each load has its own generation */
	struct proxy_config *cfg2;
	assert_null(load(good, &cfg2, err, sizeof(err)));
	assert_true(cfg2->generation != cfg->generation);
	proxy_config_free(cfg2);
	proxy_config_free(cfg);
	proxy_config_free(NULL);
}

static void test_defaults(void **state)
{
	(void)state;
	struct proxy_config *cfg;
	char err[512];
	const char *e = load("[proxy]\nlisten = 127.0.0.1\negress = 127.0.0.2\n[user a]\npassword_hash = @H\n",
			     &cfg, err, sizeof(err));
	if (e)
		fail_msg("%s", e);
	assert_int_equal(cfg->listen[0].port, 3128);
	assert_int_equal(cfg->egress.policy, EGRESS_ROUND_ROBIN);
	assert_true(portset_has(&cfg->connect_ports, 443));
	assert_true(portset_has(&cfg->connect_ports, 80));
	assert_false(portset_has(&cfg->connect_ports, 22));
	assert_true(portset_has(&cfg->http_ports, 80));
	assert_true(portset_has(&cfg->http_ports, 443));
	assert_int_equal(cfg->header_timeout_ms, 10000);
	assert_int_equal(cfg->connect_timeout_ms, 10000);
	assert_int_equal(cfg->idle_timeout_ms, 300000);
	assert_int_equal(cfg->max_header_bytes, 16384);
	assert_int_equal(cfg->max_headers, 100);
	assert_int_equal(cfg->max_conns, 20000);
	assert_int_equal(cfg->max_conns_per_user, 0);
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->egress_down_ms, 30000);
	assert_true(cfg->auth_required);
	assert_string_equal(cfg->relay, PROXY_RELAY_DEFAULT);
	assert_string_equal(cfg->access_log, "-");
	assert_int_equal(cidr_set_count(cfg->allow_destinations), 0);
	assert_null(cfg->users[0].egress);
	proxy_config_free(cfg);

	/* an open proxy when explicitly asked for */
	e = load("[proxy]\nlisten = 127.0.0.1:1\negress = ::1\nauth = none\nopen_proxy = yes\n", &cfg, err, sizeof(err));
	if (e)
		fail_msg("%s", e);
	assert_false(cfg->auth_required);
	assert_int_equal(cfg->nusers, 0);
	proxy_config_free(cfg);
}

static const char base[] = "[proxy]\nlisten = 127.0.0.1:3128\negress = 127.0.0.2\n";   /* lines 1-3 */

static void expect_error(const char *tail, const char *want)
{
	struct proxy_config *cfg = (struct proxy_config *)1;
	char text[4096], err[512];
	snprintf(text, sizeof(text), "%s%s", base, tail);
	const char *e = load(text, &cfg, err, sizeof(err));
	if (!e)
		fail_msg("accepted:\n%s", text);
	assert_ptr_equal(cfg, NULL);
	if (strcmp(e, want))
		fail_msg("got  '%s'\nwant '%s'", e, want);
}

/* listen = ADDR proxy_protocol=v1|v2 and trusted_balancers */
static void test_proxy_protocol(void **state)
{
	struct proxy_config *cfg;
	char err[512], text[1024];
	(void)state;

	snprintf(text, sizeof(text), "[proxy]\nlisten = 127.0.0.1:3128 proxy_protocol=v2 127.0.0.1:3129\n"
		 "tls_listen = 127.0.0.1:3130 proxy_protocol=v1\nsocks_listen = 127.0.0.1:1080 proxy_protocol=v2\n"
		 "tls_cert = c.pem\ntls_key = k.pem\ntrusted_balancers = 10.0.0.0/8 ::1\negress = 127.0.0.2\n"
		 "[user a]\npassword_hash = @H\n");
	const char *e = load(text, &cfg, err, sizeof(err));
	if (e)
		fail_msg("%s", e);
	assert_int_equal(cfg->nlisten, 2);
	assert_int_equal(cfg->listen[0].pp, PP_V2);
	assert_int_equal(cfg->listen[1].pp, PP_OFF);
	assert_int_equal(cfg->tls_listen[0].pp, PP_V1);
	assert_int_equal(cfg->socks_listen[0].pp, PP_V2);
	struct ipaddr a;
	assert_null(ipaddr_parse("10.1.2.3", 8, &a));
	assert_true(cidr_set_contains(cfg->trusted_balancers, &a));
	assert_null(ipaddr_parse("11.1.2.3", 8, &a));
	assert_false(cidr_set_contains(cfg->trusted_balancers, &a));
	proxy_config_free(cfg);
	expect_error("listen = 127.0.0.1:3129 proxy_protocol=v2\n[user a]\npassword_hash = @H\n",
		     "t.ini:4: proxy_protocol= needs trusted_balancers = the balancers' addresses "
		     "(CIDRs; the header is taken from those peers only)");
	expect_error("listen = proxy_protocol=v2 127.0.0.1:3129\ntrusted_balancers = 10.0.0.0/8\n",
		     "t.ini:4: proxy_protocol= follows the address it applies to "
		     "(listen = 10.0.0.5:3128 proxy_protocol=v2)");
	expect_error("listen = 127.0.0.1:3129 proxy_protocol=v3\n", "t.ini:4: listen: proxy_protocol must be v1, v2 or off");
	expect_error("listen = 127.0.0.1:3129 tls=yes\n", "t.ini:4: unknown listen option (proxy_protocol=v1|v2|off)");
	expect_error("trusted_balancers = 10.0.0.1/8\n", "t.ini:4: trusted_balancers: host bits set");
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[user a]\npassword_hash = @H\nbogus = 1\n", "t.ini:6: unknown key bogus in [user]");
	expect_error("colour = blue\n[user a]\npassword_hash = @H\n", "t.ini:4: unknown key colour in [proxy]");
	expect_error("[gate]\n", "t.ini:4: unknown section [gate] (expected [proxy] or [user NAME])");
	expect_error("[user a]\npassword_hash = @H\n[proxy]\n", "t.ini:6: duplicate [proxy] section (first at line 1)");
	expect_error("[user a]\npassword_hash = @H\n[user a]\n", "t.ini:6: duplicate user a (first at line 4)");
	expect_error("[user a+b]\n", "t.ini:4: bad user name (1-64 of A-Z a-z 0-9 . _ -)");
	expect_error("[user ]\n", "t.ini:4: unknown section [user] (expected [proxy] or [user NAME])");
	expect_error("[user a]\n", "t.ini:4: user a has no password_hash (make one with iplock passwd a)");
	expect_error("[user a]\npassword_hash = secret\n",
		     "t.ini:5: password_hash must start with pbkdf2-sha256$ (make one with iplock passwd)");
	expect_error("egress_policy = random\n", "t.ini:4: egress_policy must be round-robin, sticky or primary");
	expect_error("egress = 127.1\n", "t.ini:4: egress: IPv4 address needs 4 dot-separated parts");
	expect_error("egress = 127.0.0.2\n", "t.ini:4: duplicate egress address");
	expect_error("listen = localhost:3128\n", "t.ini:4: listen takes IP addresses (127.0.0.1:3128, [::1]:3128), not names");
	expect_error("listen = 127.0.0.1:99999\n", "t.ini:4: listen: port out of range");
	expect_error("allow_destinations = 10.0.0.1/8\n", "t.ini:4: allow_destinations: host bits set");
	expect_error("allow_destinations = 10.0.0.0/8\n  0x0a000000/8\n", "t.ini:5: allow_destinations: bad IPv4 address");
	expect_error("connect_ports = 443 70000\n", "t.ini:4: connect_ports: port out of range");
	expect_error("http_ports =\n", "t.ini:4: http_ports: empty port list");
	expect_error("header_timeout = 10x\n", "t.ini:4: header_timeout: duration must be a number with an optional unit ms, s, m or h");
	expect_error("header_timeout = 0\n", "t.ini:4: header_timeout: must be 100ms-3600s");
	expect_error("idle_timeout = 8d\n", "t.ini:4: idle_timeout: duration must be a number with an optional unit ms, s, m or h");
	expect_error("max_header_bytes = 100\n", "t.ini:4: max_header_bytes: must be 1024-1048576");
	expect_error("max_headers = -1\n", "t.ini:4: max_headers: not a number");
	expect_error("max_conns = 0\n", "t.ini:4: max_conns: must be 1-10000000");
	expect_error("workers = 99999999999999999999999\n", "t.ini:4: workers: must be 0-1024");
	expect_error("workers = 2\nworkers = 3\n", "t.ini:5: duplicate key workers (first at line 4)");
	expect_error("workers = 2\n  3\n", "t.ini:5: workers takes one value on one line");
	expect_error("relay = zerocopy\n", "t.ini:4: relay must be auto, splice or copy");
	expect_error("auth = digest\n", "t.ini:4: auth must be basic or none");
	expect_error("auth = none\n", "t.ini:4: auth = none makes an open proxy: also set open_proxy = yes if that is intended");
	expect_error("open_proxy = maybe\n", "t.ini:4: open_proxy: must be yes or no");
	expect_error("open_proxy = yes\n[user a]\npassword_hash = @H\n", "t.ini:4: open_proxy = yes needs auth = none");
	expect_error("", "t.ini:1: auth is required but no [user NAME] is defined (see iplock passwd)");
	expect_error("[user a]\npassword_hash = @H\nallow = api.stripe.com\n",
		     "t.ini:6: allow: rule needs a port: host:PORT or host:*");
	expect_error("[user a]\npassword_hash = @H\nallow = a.com:443\n  0x7f000001:443\n",
		     "t.ini:7: allow: ambiguous numeric host");
	expect_error("[user a]\npassword_hash = @H\negress_policy = sticky\n",
		     "t.ini:6: egress_policy for user a needs its own egress addresses");
	expect_error("[user a]\npassword_hash = @H\nmax_conns = x\n", "t.ini:6: max_conns: not a number");
	expect_error("this is not ini\n", "t.ini:4: syntax error (expected [section], key = value, or a ; comment)");
	expect_error("[proxy\n", "t.ini:4: syntax error (expected [section], key = value, or a ; comment)");
	expect_error("access_log = \n", "t.ini:4: access_log: empty value");

	char longline[400];
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "access_log = ", 13);
	longline[300] = '\n';
	longline[301] = '\0';
	expect_error(longline, "t.ini:4: line longer than 197 characters (continue long lists on indented lines)");

	/* whole-file and structural errors */
	struct proxy_config *cfg;
	char err[512];
	assert_non_null(load("", &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini: missing [proxy] section");
	assert_non_null(load("key = 1\n", &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:1: key key outside a section (start with [proxy])");
	assert_non_null(load("\n\n[proxy]\negress = 127.0.0.2\n[user a]\npassword_hash = @H\n", &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:3: [proxy] has no listen address (listen = 127.0.0.1:3128)");
	assert_non_null(load("[proxy]\nlisten = 127.0.0.1\n[user a]\npassword_hash = @H\n", &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:1: [proxy] has no egress address (egress = 192.0.2.10 192.0.2.11)");
	/* the first error wins */
	assert_non_null(load("[proxy]\nworkers = x\nbogus = 1\n", &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:2: workers: not a number");
	/* small error buffers truncate, never overflow */
	char small[8];
	assert_non_null(load("[proxy]\nworkers = x\n", &cfg, small, sizeof(small)));
	assert_string_equal(small, "t.ini:2");
}

static void test_limits(void **state)
{
	(void)state;
	struct proxy_config *cfg;
	char err[512];
	/* 9 listen addresses, 33 egress addresses */
	assert_non_null(load("[proxy]\nlisten = 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4 127.0.0.1:5\n"
			     "  127.0.0.1:6 127.0.0.1:7 127.0.0.1:8 127.0.0.1:9\n", &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:3: at most 8 listen addresses");
	char text[8192];
	size_t n = (size_t)snprintf(text, sizeof(text), "[proxy]\nlisten = 127.0.0.1\n");
	for (int i = 0; i < 33; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "egress = 127.0.1.%d\n", i + 1);
	assert_non_null(load(text, &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:35: at most 32 egress addresses");

	/* a user name of 64 characters: longer than inih's section buffer */
	char name[65];
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), "%s[user %s]\npassword_hash = @H\n", base, name);
	assert_null(load(text, &cfg, err, sizeof(err)));
	assert_string_equal(cfg->users[0].name, name);
	proxy_config_free(cfg);
	snprintf(text, sizeof(text), "%s[user %sn]\npassword_hash = @H\n", base, name);
	assert_non_null(load(text, &cfg, err, sizeof(err)));
	assert_string_equal(err, "t.ini:4: bad user name (1-64 of A-Z a-z 0-9 . _ -)");

	/* 3000 CIDRs over continuation lines, and 300 users */
	size_t cap = 1 << 20;
	char *big = malloc(cap);
	n = (size_t)snprintf(big, cap, "%sallow_destinations = 10.0.0.0/8\n", base);
	for (int i = 0; i < 3000; i++)
		n += (size_t)snprintf(big + n, cap - n, "  100.%d.%d.0/24\n", 64 + i / 256, i % 256);
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(big + n, cap - n, "[user u%d]\npassword_hash = %s\n", i, hash);
	const char *e = proxy_config_load_string(big, "big.ini", &cfg, err, sizeof(err));
	if (e)
		fail_msg("%s", e);
	assert_int_equal(cidr_set_count(cfg->allow_destinations), 3001);
	assert_int_equal(cfg->nusers, 300);
	struct ipaddr a;
	assert_null(ipaddr_parse("100.75.183.9", 12, &a));
	assert_true(cidr_set_contains(cfg->allow_destinations, &a));
	proxy_config_free(cfg);
	free(big);
}

static void test_file(void **state)
{
	(void)state;
	char path[] = "/tmp/iplock-test-config-XXXXXX", err[512];
	struct proxy_config *cfg;
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char *t = expand(good);
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	free(t);
	close(fd);
	assert_null(proxy_config_load(path, &cfg, err, sizeof(err)));
	assert_int_equal(cfg->nusers, 2);
	proxy_config_free(cfg);
	unlink(path);
	assert_non_null(proxy_config_load(path, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
	assert_null(cfg);
	/* a NUL in the file is refused, not silently cut */
	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	fd = mkstemp(path);
	assert_int_equal(write(fd, "[proxy]\n\0x", 10), 10);
	close(fd);
	assert_non_null(proxy_config_load(path, &cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "NUL byte in file"));
	unlink(path);
}

/* the documented example in the repository stays valid */
static void test_example_file(void **state)
{
	(void)state;
	struct proxy_config *cfg;
	char err[512];
	const char *e = proxy_config_load("etc/iplock-proxy.example.ini", &cfg, err, sizeof(err));
	if (e)
		fail_msg("%s", e);
	assert_int_equal(cfg->nlisten, 2);
	assert_int_equal(cfg->egress.n, 2);
	assert_int_equal(cfg->nusers, 2);
	assert_int_equal(cfg->users[0].nallow, 2);
	assert_int_equal(cfg->users[1].egress->policy, EGRESS_PRIMARY);
	proxy_config_free(cfg);
	/* the two nodes behind HAProxy (etc/fleet, docs/fleet.md): PROXY v2 from the balancer */
	const char *nodes[2] = { "etc/fleet/node1.ini", "etc/fleet/node2.ini" };
	for (int i = 0; i < 2; i++) {
		if ((e = proxy_config_load(nodes[i], &cfg, err, sizeof(err))))
			fail_msg("%s", e);
		assert_int_equal(cfg->listen[0].pp, PP_V2);
		assert_non_null(cfg->trusted_balancers);
		assert_int_equal(cfg->egress.n, 1);
		assert_int_equal(cfg->egress.addrs[0].a[3], 2 + i);   /* 127.0.0.2, 127.0.0.3 */
		proxy_config_free(cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_proxy_protocol),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_example_file),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
