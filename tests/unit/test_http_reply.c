/* test_http_reply.c: http/reply: status text, the local response head, the error envelope. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "http/reply.h"

static void test_status_text(void **state)
{
	(void)state;
	assert_string_equal(http_status_text(200), "OK");
	assert_string_equal(http_status_text(407), "Proxy Authentication Required");
	assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_text(504), "Gateway Timeout");
	assert_string_equal(http_status_text(299), "Error");
}

static void test_head(void **state)
{
	char out[256];

	(void)state;
	long n = http_reply_head(out, sizeof(out), 405, "application/json", 12, "Allow: GET, HEAD\r\n",
				 HTTP_REPLY_NO_STORE | HTTP_REPLY_CLOSE);
	assert_string_equal(out, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
			    "Cache-Control: no-store\r\nAllow: GET, HEAD\r\nContent-Length: 12\r\n"
			    "Connection: close\r\n\r\n");
	assert_int_equal(n, strlen(out));
	n = http_reply_head(out, sizeof(out), 200, "text/plain", 0, NULL, 0);
	assert_string_equal(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(n, strlen(out));
	/* too small: an error and an empty string, never a cut head */
	assert_int_equal(http_reply_head(out, 20, 200, "text/plain", 0, NULL, 0), -ENOSPC);
	assert_string_equal(out, "");
}

static void test_error_json(void **state)
{
	char out[1024], longmsg[600];
	json_error_t jerr;

	(void)state;
	long n = http_error_json(out, sizeof(out), "proxy_error", "bad_port", "port \"25\"\nrefused");
	assert_string_equal(out, "{\"error\": {\"type\": \"proxy_error\", \"code\": \"bad_port\", "
			    "\"message\": \"port \\\"25\\\"\\u000arefused\"}}\n");
	assert_int_equal(n, strlen(out));
	n = http_error_json(out, sizeof(out), "invalid_request_error", NULL, "no key");
	assert_string_equal(out, "{\"error\": {\"type\": \"invalid_request_error\", \"message\": \"no key\"}}\n");
	/* a long message is cut to HTTP_ERROR_MESSAGE_MAX bytes and stays valid JSON */
	memset(longmsg, 'x', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	longmsg[398] = '"';
	n = http_error_json(out, sizeof(out), "proxy_error", "c", longmsg);
	assert_true(n > 0);
	json_t *j = json_loadb(out, (size_t)n, 0, &jerr);
	assert_non_null(j);
	const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	assert_non_null(m);
	assert_int_equal(strlen(m), 398);   /* the escaped quote (2 bytes) did not fit: cut before */
	json_decref(j);
	assert_int_equal(http_error_json(out, 40, "proxy_error", "c", "m"), -ENOSPC);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_head),
		cmocka_unit_test(test_error_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
