/* test_http_head.c: request/response heads and body framing on llhttp, incl. smuggling rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "http/head.h"

static enum http_parse_result parse(struct http_head *h, const char *s)
{
	http_head_init(h, HTTP_REQUEST, 100);
	return http_head_parse(h, s, strlen(s));
}

static void test_head_spans(void **state)
{
	struct http_head h;
	const char *r = "GET http://a.example/x?y HTTP/1.1\r\nHost: a\r\nX-Two: b c\r\n\r\nBODY";

	(void)state;
	assert_int_equal(parse(&h, r), HTTP_DONE);
	assert_int_equal(h.head_len, strlen(r) - 4);
	assert_int_equal(h.nhdrs, 2);
	assert_memory_equal(r + h.url_off, "http://a.example/x?y", h.url_len);
	int i = http_head_find(&h, r, "x-two");
	assert_int_equal(i, 1);
	assert_memory_equal(r + h.hdrs[i].val_off, "b c", h.hdrs[i].val_len);
}

static void test_incomplete(void **state)
{
	struct http_head h;

	(void)state;
	assert_int_equal(parse(&h, "GET http://a/ HTTP/1.1\r\nHost: a\r\n"), HTTP_MORE);
}

static void test_smuggling_refused(void **state)
{
	static const char *bad[] = {
		"POST http://a/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nX-Fold: a\r\n b\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nBad Name: x\r\n\r\n",
	};
	struct http_head h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(&h, bad[i]) != HTTP_ERROR)
			fail_msg("accepted #%zu", i);
		assert_int_equal(h.err_status, 400);
		assert_non_null(h.err);
	}
}

static void test_too_many_headers_431(void **state)
{
	char req[4096];
	size_t n = (size_t)snprintf(req, sizeof(req), "GET http://a/ HTTP/1.1\r\n");
	struct http_head h;

	(void)state;
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "X-%d: v\r\n", i);
	snprintf(req + n, sizeof(req) - n, "\r\n");
	http_head_init(&h, HTTP_REQUEST, 10);
	assert_int_equal(http_head_parse(&h, req, strlen(req)), HTTP_ERROR);
	assert_int_equal(h.err_status, 431);
}

static void test_chunked_body_framing(void **state)
{
	struct http_head h;
	const char *r = "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *body = "5\r\nhello\r\n0\r\n\r\nGET http://next/ HTTP/1.1\r\n";
	size_t consumed;

	(void)state;
	assert_int_equal(parse(&h, r), HTTP_DONE);
	http_body_begin(&h, false);
	/* byte by byte: the end of the message is found exactly, pipelined bytes are left */
	size_t total = 0;
	enum http_parse_result res = HTTP_MORE;
	for (size_t i = 0; i < strlen(body) && res == HTTP_MORE; i++) {
		res = http_body_feed(&h, body + i, 1, &consumed);
		total += consumed;
	}
	assert_int_equal(res, HTTP_DONE);
	assert_int_equal(total, strlen("5\r\nhello\r\n0\r\n\r\n"));
}

static void test_bad_chunk_size(void **state)
{
	struct http_head h;
	size_t consumed;

	(void)state;
	assert_int_equal(parse(&h, "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_DONE);
	http_body_begin(&h, false);
	assert_int_equal(http_body_feed(&h, "zz\r\n", 4, &consumed), HTTP_ERROR);
}

static void test_response_until_close(void **state)
{
	struct http_head h;
	const char *r = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
	size_t consumed;

	(void)state;
	http_head_init(&h, HTTP_RESPONSE, 100);
	assert_int_equal(http_head_parse(&h, r, strlen(r)), HTTP_DONE);
	http_body_begin(&h, false);
	assert_int_equal(http_body_feed(&h, "abc", 3, &consumed), HTTP_MORE);
	assert_int_equal(consumed, 3);
	assert_int_equal(http_body_eof(&h), HTTP_DONE);
}

static void test_token_list(void **state)
{
	(void)state;
	assert_true(http_token_list_has("keep-alive, X-Foo", 17, "x-foo", 5));
	assert_false(http_token_list_has("keep-alive, X-Foobar", 20, "x-foo", 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_spans),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_smuggling_refused),
		cmocka_unit_test(test_too_many_headers_431),
		cmocka_unit_test(test_chunked_body_framing),
		cmocka_unit_test(test_bad_chunk_size),
		cmocka_unit_test(test_response_until_close),
		cmocka_unit_test(test_token_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
