/* test_http_target.c: the canonical request target (http/target.c) and the shared hop-by-hop
 * rule (http/hop.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/hop.h"
#include "http/target.h"

struct row {
	const char *in;
	enum http_target_result want;
	const char *path;       /* canonical path (CANONICAL / REWRITTEN) */
	const char *reason;     /* NULL for CANONICAL */
};

static const struct row rows[] = {
	{ "/", HTTP_TARGET_CANONICAL, "/", NULL },
	{ "/v1/charges", HTTP_TARGET_CANONICAL, "/v1/charges", NULL },
	{ "/v1/charges/", HTTP_TARGET_CANONICAL, "/v1/charges/", NULL },
	{ "/v1/charges?limit=3&x=%2F..", HTTP_TARGET_CANONICAL, "/v1/charges", NULL },
	{ "/v1/ch_1:x@y!$&'()*+,=", HTTP_TARGET_CANONICAL, "/v1/ch_1:x@y!$&'()*+,=", NULL },
	{ "/v1/a%20b%3A", HTTP_TARGET_CANONICAL, "/v1/a%20b%3A", NULL },
	{ "/v1/charges/../customers", HTTP_TARGET_REWRITTEN, "/v1/customers", "dot_segment" },
	{ "/v1/charges/%2e%2e/customers", HTTP_TARGET_REWRITTEN, "/v1/customers", "dot_segment" },
	{ "/v1/charges/%2E%2e/customers", HTTP_TARGET_REWRITTEN, "/v1/customers", "dot_segment" },
	{ "/v1/charges/.%2E/customers", HTTP_TARGET_REWRITTEN, "/v1/customers", "dot_segment" },
	{ "/v1/charges/./x", HTTP_TARGET_REWRITTEN, "/v1/charges/x", "dot_segment" },
	{ "/v1/charges/.", HTTP_TARGET_REWRITTEN, "/v1/charges/", "dot_segment" },
	{ "/v1/charges/..", HTTP_TARGET_REWRITTEN, "/v1/", "dot_segment" },
	{ "/../../etc", HTTP_TARGET_REWRITTEN, "/etc", "dot_segment" },
	{ "/..", HTTP_TARGET_REWRITTEN, "/", "dot_segment" },
	{ "/v1/charges/...", HTTP_TARGET_CANONICAL, "/v1/charges/...", NULL },
	{ "/v1/charges/..x/.y", HTTP_TARGET_CANONICAL, "/v1/charges/..x/.y", NULL },
	{ "/v1//charges", HTTP_TARGET_REWRITTEN, "/v1/charges", "empty_segment" },
	{ "//v1/charges", HTTP_TARGET_REWRITTEN, "/v1/charges", "empty_segment" },
	{ "/v1/charges//", HTTP_TARGET_REWRITTEN, "/v1/charges/", "empty_segment" },
	{ "/v1/charges//../customers", HTTP_TARGET_REWRITTEN, "/v1/customers", "dot_segment" },
	{ "/v1/%63harges", HTTP_TARGET_REWRITTEN, "/v1/charges", "encoded_unreserved" },
	{ "/v1/charges%7E%2d%5f", HTTP_TARGET_REWRITTEN, "/v1/charges~-_", "encoded_unreserved" },
	{ "/v1/a%3a", HTTP_TARGET_REWRITTEN, "/v1/a%3A", "percent_case" },
	{ "/v1/a%3a?q=%3a", HTTP_TARGET_REWRITTEN, "/v1/a%3A", "percent_case" },
	/* refused in every mode */
	{ "/v1/charges%2F..%2Fcustomers", HTTP_TARGET_REFUSED, NULL, "encoded_slash" },
	{ "/v1/charges%2f..%2fcustomers", HTTP_TARGET_REFUSED, NULL, "encoded_slash" },
	{ "/v1/charges%5C..%5Ccustomers", HTTP_TARGET_REFUSED, NULL, "encoded_backslash" },
	{ "/v1/charges\\..\\customers", HTTP_TARGET_REFUSED, NULL, "backslash" },
	{ "/v1/charges;/../customers", HTTP_TARGET_REFUSED, NULL, "path_parameter" },
	{ "/v1/charges/..;/customers", HTTP_TARGET_REFUSED, NULL, "path_parameter" },
	{ "/v1/charges%3B/../customers", HTTP_TARGET_REFUSED, NULL, "path_parameter" },
	{ "/v1/charges%00/../customers", HTTP_TARGET_REFUSED, NULL, "control_char" },
	{ "/v1/charges%0d%0aX: y", HTTP_TARGET_REFUSED, NULL, "control_char" },
	{ "/v1/charges%7f", HTTP_TARGET_REFUSED, NULL, "control_char" },
	{ "/v1/charges\x01", HTTP_TARGET_REFUSED, NULL, "control_char" },
	{ "/v1/charges\xc3\xa9", HTTP_TARGET_REFUSED, NULL, "non_ascii" },
	{ "/v1/charges%C3%A9", HTTP_TARGET_REFUSED, NULL, "non_ascii" },
	{ "/v1/charges%252e%252e/customers", HTTP_TARGET_REFUSED, NULL, "encoded_percent" },
	{ "/v1/charges%2", HTTP_TARGET_REFUSED, NULL, "bad_percent" },
	{ "/v1/charges%zz", HTTP_TARGET_REFUSED, NULL, "bad_percent" },
	{ "/v1/charges#x", HTTP_TARGET_REFUSED, NULL, "fragment" },
	{ "/v1/charges x", HTTP_TARGET_REFUSED, NULL, "bad_char" },
	{ "/v1/charges<", HTTP_TARGET_REFUSED, NULL, "bad_char" },
	{ "/v1/charges?a=%00", HTTP_TARGET_REFUSED, NULL, "control_char" },
	{ "/v1/charges?a=%1F", HTTP_TARGET_REFUSED, NULL, "control_char" },
	{ "/v1/charges?a#b", HTTP_TARGET_REFUSED, NULL, "fragment" },
	{ "v1/charges", HTTP_TARGET_REFUSED, NULL, "not_origin_form" },
	{ "http://a/v1/charges", HTTP_TARGET_REFUSED, NULL, "not_origin_form" },
	{ "*", HTTP_TARGET_REFUSED, NULL, "not_origin_form" },
	{ "", HTTP_TARGET_REFUSED, NULL, "not_origin_form" },
	{ "?x", HTTP_TARGET_REFUSED, NULL, "not_origin_form" },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_target t;
		const struct row *r = &rows[i];
		enum http_target_result got = http_target_canon(r->in, strlen(r->in), &t);
		if (got != r->want || (r->path && strcmp(t.path, r->path)) ||
		    (r->reason ? !t.reason || strcmp(t.reason, r->reason) : t.reason != NULL)) {
			print_error("%s: got %d %s (%s), want %d %s (%s)\n", r->in, got, t.path,
				    t.reason ? t.reason : "-", r->want, r->path ? r->path : "-",
				    r->reason ? r->reason : "-");
			fail();
		}
		if (got != HTTP_TARGET_REFUSED)
			assert_int_equal(t.path_len, strlen(t.path));
	}
}

static void test_nul_inside(void **state)
{
	struct http_target t;

	(void)state;
	assert_int_equal(http_target_canon("/v1/charges\0/x", 14, &t), HTTP_TARGET_REFUSED);
	assert_string_equal(t.reason, "control_char");
}

static void test_query_kept_apart(void **state)
{
	struct http_target t;
	const char *in = "/v1/./charges?expand[]=x&q=%2e%2E/..";

	(void)state;
	assert_int_equal(http_target_canon(in, strlen(in), &t), HTTP_TARGET_REWRITTEN);
	assert_string_equal(t.path, "/v1/charges");
	assert_ptr_equal(t.query, in + 13);
	assert_int_equal(t.query_len, strlen(in) - 13);
}

static void test_length_limit(void **state)
{
	static char p[HTTP_PATH_MAX + 2];
	struct http_target t;

	(void)state;
	memset(p, 'a', sizeof(p));
	p[0] = '/';
	assert_int_equal(http_target_canon(p, HTTP_PATH_MAX, &t), HTTP_TARGET_CANONICAL);
	assert_int_equal(t.path_len, HTTP_PATH_MAX);
	assert_int_equal(http_target_canon(p, HTTP_PATH_MAX + 1, &t), HTTP_TARGET_REFUSED);
	assert_string_equal(t.reason, "path_too_long");
}

static void test_idempotent(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_target a, b;
		if (http_target_canon(rows[i].in, strlen(rows[i].in), &a) == HTTP_TARGET_REFUSED)
			continue;
		assert_int_equal(http_target_canon(a.path, a.path_len, &b), HTTP_TARGET_CANONICAL);
		assert_string_equal(a.path, b.path);
	}
}

static void test_reason_text(void **state)
{
	(void)state;
	assert_non_null(strstr(http_target_reason_text("encoded_slash"), "%2F"));
	assert_non_null(http_target_reason_text("no such reason"));
}

/* ---- hop-by-hop ---- */

static void test_hop_names(void **state)
{
	(void)state;
	static const char *const hop[] = { "Connection", "keep-alive", "TE", "Trailer", "Upgrade",
					   "Proxy-Authorization", "proxy-connection",
					   "Proxy-Authenticate" };
	static const char *const e2e[] = { "Authorization", "Transfer-Encoding", "Content-Length",
					   "Host", "Proxy", "Tea", "X-Proxy-Foo" };
	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		assert_true(http_hop_by_hop(hop[i], strlen(hop[i])));
	for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++)
		assert_false(http_hop_by_hop(e2e[i], strlen(e2e[i])));
}

static bool skip_x(void *arg, const char *n, size_t l)
{
	(void)arg;
	return l == 5 && !strncasecmp(n, "x-own", 5);
}

static void test_fields_copy(void **state)
{
	struct http_head h;
	const char *r = "GET / HTTP/1.1\r\nHost: a\r\n"
			"Connection: keep-alive, X-Secret, Transfer-Encoding, Host\r\n"
			"X-Secret: 1\r\nConnection: X-Other\r\nX-Other: 2\r\nTE: trailers\r\n"
			"Upgrade: h2c\r\nTrailer: X\r\nProxy-Authorization: Basic eA==\r\n"
			"Keep-Alive: timeout=5\r\nX-Own: 3\r\nAccept: */*\r\n"
			"Transfer-Encoding: chunked\r\n\r\n";
	struct buf *b = buf_get();

	(void)state;
	assert_non_null(b);
	http_head_init(&h, HTTP_REQUEST, 100);
	assert_int_equal(http_head_parse(&h, r, strlen(r)), HTTP_DONE);
	assert_int_equal(http_fields_copy(&h, r, b, skip_x, NULL), 0);
	b->data[b->len] = '\0';
	assert_string_equal(b->data, "Host: a\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\n");
	int i = http_head_find(&h, r, "x-other");
	assert_true(http_field_is_hop(&h, r, (size_t)i));
	i = http_head_find(&h, r, "accept");
	assert_false(http_field_is_hop(&h, r, (size_t)i));
	/* framing stays whatever Connection names: the body is relayed with it */
	i = http_head_find(&h, r, "transfer-encoding");
	assert_false(http_field_is_hop(&h, r, (size_t)i));
	buf_put(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul_inside),
		cmocka_unit_test(test_query_kept_apart),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_reason_text),
		cmocka_unit_test(test_hop_names),
		cmocka_unit_test(test_fields_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
