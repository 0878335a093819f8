/* test_tunnel.c: `iplock tunnel` settings: proxy URLs (credentials decoded, password masked),
 * mappings, the INI form with FILE:LINE errors, and reading the proxy's refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tunnel/tunnel.h"

static void test_proxy_url(void **state)
{
	struct tunnel_proxy p;

	(void)state;
	assert_null(tunnel_proxy_parse("http://alice:p%40ss%3Aw0rd-long@127.0.0.1:3128", &p));
	assert_int_equal(p.scheme, TUNNEL_HTTP);
	assert_true(p.has_auth);
	assert_string_equal(p.user, "alice");
	assert_string_equal(p.pass, "p@ss:w0rd-long");
	assert_int_equal(p.port, 3128);
	assert_string_equal(p.display, "http://alice:****@127.0.0.1:3128");
	assert_null(strstr(p.display, "p@ss"));
	assert_null(tunnel_proxy_parse("socks5h://u:short@proxy.example.com:1080/", &p));
	assert_int_equal(p.scheme, TUNNEL_SOCKS5H);
	assert_int_equal(p.host.kind, HOST_NAME);
	assert_string_equal(p.display, "socks5h://u:****@proxy.example.com:1080");
	assert_null(tunnel_proxy_parse("https://u:pw@proxy.example.com:8443", &p));
	assert_int_equal(p.scheme, TUNNEL_HTTPS);
	assert_string_equal(p.display, "https://u:****@proxy.example.com:8443");
	assert_null(tunnel_proxy_parse("http://[::1]:8080", &p));
	assert_false(p.has_auth);
	assert_string_equal(p.display, "http://[::1]:8080");
	/* an unescaped '@' in the password: the last one ends the credentials */
	assert_null(tunnel_proxy_parse("http://u:a@b@10.0.0.1:1", &p));
	assert_string_equal(p.pass, "a@b");
	assert_non_null(tunnel_proxy_parse("http://127.0.0.1", &p));
	assert_non_null(tunnel_proxy_parse("ftp://127.0.0.1:21", &p));
	assert_non_null(tunnel_proxy_parse("http://u:p@127.0.0.1:3128/path", &p));
	assert_non_null(tunnel_proxy_parse("http://u:%0a@127.0.0.1:3128", &p));
	assert_non_null(tunnel_proxy_parse("http://u:%4@127.0.0.1:3128", &p));
	assert_non_null(tunnel_proxy_parse("http://:p@127.0.0.1:3128", &p));
	assert_non_null(tunnel_proxy_parse("http://0x7f000001:3128", &p));
}

static void test_map(void **state)
{
	struct tunnel_map m;
	struct tunnel_config cfg;

	(void)state;
	tunnel_config_init(&cfg);
	assert_null(tunnel_map_parse("5432=db.example.com:5432", &m));
	assert_string_equal(m.name, "127.0.0.1:5432");
	assert_string_equal(m.authority, "db.example.com:5432");
	assert_null(tunnel_config_add(&cfg, &m));
	assert_non_null(tunnel_config_add(&cfg, &m));
	assert_null(tunnel_map_parse("[::1]:6000=[2001:db8::5]:22", &m));
	assert_string_equal(m.authority, "[2001:db8::5]:22");
	assert_string_equal(m.name, "[::1]:6000");
	assert_non_null(tunnel_map_parse("5432", &m));
	assert_non_null(tunnel_map_parse("localhost:5432=db:5432", &m));
	assert_non_null(tunnel_map_parse("5432=db", &m));
	assert_non_null(tunnel_map_parse("0=db:1", &m));
}

static void test_ini(void **state)
{
	struct tunnel_config cfg;
	char err[256];

	(void)state;
	tunnel_config_init(&cfg);
	assert_null(tunnel_config_load_string("[proxy]\nurl = http://u:p@127.0.0.1:3128\nidle_timeout = 5m\n"
					      "relay = copy\n[tunnel db]\nlisten = 127.0.0.1:5432\n"
					      "remote = db:5432\n[tunnel ldap]\nlisten = 1389\nremote = ldap:389\n",
					      "t.ini", &cfg, err, sizeof(err)));
	assert_int_equal(cfg.nmaps, 2);
	assert_string_equal(cfg.maps[1].name, "ldap");
	assert_int_equal(cfg.idle_timeout_ms, 300000);
	assert_false(cfg.splice);
	assert_false(cfg.splice_auto);
	assert_int_equal(cfg.maps[0].line, 5);
	tunnel_config_init(&cfg);
	assert_null(tunnel_config_load_string("[proxy]\nurl = https://u:p@127.0.0.1:3129\ncacert = /etc/x.pem\n",
					      "t.ini", &cfg, err, sizeof(err)));
	assert_string_equal(cfg.cacert, "/etc/x.pem");

	static const struct { const char *text, *want; } bad[] = {
		{ "[proxy]\nurl = http://u:p@127.0.0.1:3128\n[tunnel db]\nlisten = 1\n", "t.ini:3: [tunnel db] needs listen and remote" },
		{ "[proxy]\nurl = http://u:p@127.0.0.1:3128\nurl = http://x:1\n", "t.ini:3: duplicate key url (first at line 2)" },
		{ "[proxy]\n\n[tunel x]\n", "t.ini:3: unknown section [tunel x] (expected [proxy] or [tunnel NAME])" },
		{ "[proxy]\nurl = http://u:p@127.0.0.1:3128\n[tunnel a]\nlisten = 1\nremote = x:1\nport = 3\n", "t.ini:6: unknown key port in [tunnel a] (expected listen or remote)" },
		{ "[tunnel a]\nlisten = 1\nremote = x:1\n", "t.ini: missing [proxy] section with url = http://user:pass@host:port" },
		{ "[proxy]\nconnect_timeout = 5s\n", "t.ini:1: [proxy] has no url" },
		{ "url = x\n", "t.ini:1: key url outside a section (start with [proxy])" },
		{ "[proxy]\nurl = http://u:p@127.0.0.1:3128\nrelay = fast\n", "t.ini:3: relay must be auto, splice or copy" },
		{ "[proxy]\nurl = http://u:p@127.0.0.1:3128\n[tunnel a b]\n", "t.ini:3: bad tunnel name (1-64 of A-Z a-z 0-9 . _ -)" },
		{ "[proxy]\nurl = http://u:p@127.0.0.1:3128\nnonsense\n", "t.ini:3: syntax error (expected [section], key = value, or a ; comment)" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tunnel_config_init(&cfg);
		const char *e = tunnel_config_load_string(bad[i].text, "t.ini", &cfg, err, sizeof(err));
		assert_non_null(e);
		assert_string_equal(e, bad[i].want);
	}
}

static void test_reply(void **state)
{
	int st = 0;
	char reason[200];
	const char *body = "{\"error\": {\"type\": \"proxy_error\", \"code\": \"proxy_auth_invalid\", "
			   "\"message\": \"proxy credentials are not valid\"}}\n";

	(void)state;
	assert_int_equal(tunnel_parse_reply("HTTP/1.1 200 Connection established\r\n\r\n", 39, &st), 0);
	assert_int_equal(st, 200);
	assert_int_equal(tunnel_parse_reply("HTTP/1.0 407\r\n\r\n", 16, &st), 0);
	assert_int_equal(st, 407);
	assert_int_not_equal(tunnel_parse_reply("SSH-2.0-OpenSSH\r\n\r\n", 19, &st), 0);
	assert_int_not_equal(tunnel_parse_reply("HTTP/1.1 20x OK\r\n\r\n", 19, &st), 0);
	assert_int_not_equal(tunnel_parse_reply("HTTP/1.1 2000 OK\r\n\r\n", 20, &st), 0);
	tunnel_error_reason(body, strlen(body), reason, sizeof(reason));
	assert_string_equal(reason, "proxy_auth_invalid: proxy credentials are not valid");
	tunnel_error_reason("Access denied\x1b[31m\r\nmore", 24, reason, sizeof(reason));
	assert_string_equal(reason, "Access denied?[31m");
	tunnel_error_reason("", 0, reason, sizeof(reason));
	assert_string_equal(reason, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_url),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_ini),
		cmocka_unit_test(test_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
