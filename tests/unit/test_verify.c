/* test_verify.c: the URLs and HTTP responses `iplock verify` reads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/resp.h"
#include "http/url.h"

static void test_url_parts(void **state)
{
	(void)state;
	struct vurl u;
	char buf[600];

	assert_null(vurl_parse("http://alice+egress=2:p%40ss:w@127.0.0.1:3128", &u));
	assert_false(u.tls);
	assert_string_equal(u.user, "alice+egress=2");
	assert_string_equal(u.password, "p@ss:w");   /* the first ':' splits; escapes decoded */
	assert_string_equal(u.host, "127.0.0.1");
	assert_true(u.host_is_ip);
	assert_int_equal(u.port, 3128);
	assert_string_equal(u.path, "/");
	vurl_display(&u, false, buf, sizeof(buf));
	assert_string_equal(buf, "http://alice+egress=2:****@127.0.0.1:3128");

	assert_null(vurl_parse("HTTPS://API.Stripe.com/v1?x=1#frag", &u));
	assert_true(u.tls);
	assert_false(u.has_user);
	assert_string_equal(u.host, "api.stripe.com");
	assert_int_equal(u.port, 443);
	assert_string_equal(u.path, "/v1?x=1");
	vurl_authority(&u, buf, sizeof(buf));
	assert_string_equal(buf, "api.stripe.com:443");

	assert_null(vurl_parse("http://[::1]:8080?q", &u));
	assert_true(u.host_is_v6);
	assert_string_equal(u.path, "/?q");
	vurl_authority(&u, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:8080");

	/* a raw '@' in the password: the last '@' of the authority ends the credentials */
	assert_null(vurl_parse("http://u:a@b@h:1/", &u));
	assert_string_equal(u.password, "a@b");
	assert_string_equal(u.host, "h");
}

static void test_url_refused(void **state)
{
	(void)state;
	struct vurl u;
	static const char *bad[] = {
		"ftp://h", "h:80", "http://", "http://u:p@", "http://h:0", "http://h:99999",
		"http://0x7f000001", "http://127.1", "http://h /x", "http://u%0d%0a:p@h",
		"http://u:p%4@h", "http://u:%zz@h", "http://::1/", "http://h:80x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!vurl_parse(bad[i], &u))
			fail_msg("'%s' accepted", bad[i]);
}

static enum vresp_result feed_all(const char *text, bool connect, struct vresp *r, size_t step)
{
	struct vresp_parser p;
	const char *err = NULL;
	size_t used, len = strlen(text);

	vresp_parser_init(&p, r, connect);
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		enum vresp_result res = vresp_parser_feed(&p, text + off, n, &used, &err);
		if (res != VRESP_MORE)
			return res;
	}
	return vresp_parser_eof(&p, &err);
}

static void test_responses(void **state)
{
	(void)state;
	struct vresp *r = malloc(sizeof(*r));
	assert_non_null(r);
	for (size_t step = 1; step <= 4096; step *= 64) {
		assert_int_equal(feed_all("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", false, r, step), VRESP_DONE);
		assert_int_equal(r->status, 200);
		assert_string_equal(r->body, "hello");
		assert_int_equal(feed_all("HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n"
					  "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", false, r, step), VRESP_DONE);
		assert_int_equal(r->status, 401);
		assert_string_equal(r->body, "abcde");
		/* a body that ends at close (the regression: llhttp_finish pauses in our callback) */
		assert_int_equal(feed_all("HTTP/1.0 200 OK\r\n\r\n{\"origin\": \"1.2.3.4\"}", false, r, step), VRESP_DONE);
		assert_string_equal(r->body, "{\"origin\": \"1.2.3.4\"}");
		/* CONNECT: a 2xx ends at its head, a refusal carries a body */
		assert_int_equal(feed_all("HTTP/1.1 200 Connection established\r\n\r\n", true, r, step), VRESP_DONE);
		assert_int_equal(r->status, 200);
		assert_int_equal(feed_all("HTTP/1.1 407 No\r\nContent-Length: 2\r\n\r\n{}", true, r, step), VRESP_DONE);
		assert_int_equal(r->status, 407);
		assert_int_equal(feed_all("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", false, r, step), VRESP_ERROR);
		assert_int_equal(feed_all("SSH-2.0-OpenSSH\r\n\r\n", false, r, step), VRESP_ERROR);
		assert_int_equal(feed_all("", false, r, step), VRESP_ERROR);
	}
	/* the body cap: kept up to the cap, flagged, the message still completes */
	size_t big = VRESP_BODY_CAP + 100;
	char *text = malloc(big + 100);
	assert_non_null(text);
	int h = snprintf(text, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
	memset(text + h, 'x', big);
	text[h + big] = '\0';
	assert_int_equal(feed_all(text, false, r, 4096), VRESP_DONE);
	assert_true(r->truncated);
	assert_int_equal(r->body_len, VRESP_BODY_CAP);
	free(text);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parts),
		cmocka_unit_test(test_url_refused),
		cmocka_unit_test(test_responses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
