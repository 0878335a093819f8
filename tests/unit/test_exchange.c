/* test_exchange.c: http/exchange, the streamed exchange the proxy and the gate share: response
 * framing (Content-Length, chunked, until close, bodiless answers), interim heads, 101
 * refused, upstream reuse, the one redial, the client's head (own version, hop-by-hop rule,
 * Connection: close) and head + body in one writev. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "http/exchange.h"

static struct http_exchange x;

/* Feeds a whole response (head then body) in pieces of step bytes; returns the body bytes
 * taken and sets *done. The head must fit in the first call (as it does in a buffer). */
static size_t run(const char *resp, size_t step, bool head_req, bool *done, enum http_xhead *hr)
{
	size_t len = strlen(resp), body = 0;

	http_exchange_begin(&x, head_req, false, false);
	*hr = http_exchange_head(&x, resp, len);
	*done = false;
	if (*hr != HTTP_XHEAD_FINAL)
		return 0;
	*done = x.body_done;
	for (size_t off = x.resp.head_len; off < len && !*done;) {
		size_t n = len - off < step ? len - off : step, used = 0;
		enum http_parse_result r = http_exchange_body(&x, resp + off, n, &used);
		assert_int_not_equal(r, HTTP_ERROR);
		body += used;
		off += used;
		*done = r == HTTP_DONE;
		if (used < n)
			break;   /* bytes after the end: not ours */
	}
	return body;
}

static void test_content_length(void **state)
{
	(void)state;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
	bool done;
	enum http_xhead hr;

	for (size_t step = 1; step < 8; step++) {
		assert_int_equal(run(r, step, false, &done, &hr), 5);
		assert_int_equal(hr, HTTP_XHEAD_FINAL);
		assert_true(done);
		assert_int_equal(x.body, HTTP_XBODY_FRAMED);
		assert_int_equal(x.status, 200);
		assert_true(x.up_keep);
	}
	http_exchange_extra(&x);
	assert_false(x.up_keep);
}

static void test_chunked(void **state)
{
	(void)state;
	const char *r = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer-A: 1\r\n\r\n";
	bool done;
	enum http_xhead hr;

	for (size_t step = 1; step < 6; step++) {
		size_t body = run(r, step, false, &done, &hr);
		assert_true(done);
		/* the chunk framing is the body's own: every byte up to the last CRLF is passed on */
		assert_int_equal(body, strlen(r) - x.resp.head_len);
		assert_true(x.up_keep);
	}
}

static void test_until_close(void **state)
{
	(void)state;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed bytes";
	bool done;
	enum http_xhead hr;

	assert_int_equal(run(r, 4, false, &done, &hr), 14);
	assert_false(done);
	assert_int_equal(x.body, HTTP_XBODY_UNTIL_CLOSE);
	assert_false(x.up_keep);
	assert_int_equal(http_exchange_eof(&x), HTTP_DONE);
	assert_true(x.body_done);
}

static void test_framed_cut_short(void **state)
{
	(void)state;
	const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
	bool done;
	enum http_xhead hr;

	assert_int_equal(run(r, 64, false, &done, &hr), 5);
	assert_false(done);
	assert_int_equal(http_exchange_eof(&x), HTTP_ERROR);
	assert_non_null(x.err);
	assert_false(x.up_keep);
}

static void test_bodiless(void **state)
{
	(void)state;
	bool done;
	enum http_xhead hr;

	/* HEAD: the Content-Length describes the GET's body, none follows */
	assert_int_equal(run("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 8, true, &done, &hr), 0);
	assert_true(done);
	assert_int_equal(x.body, HTTP_XBODY_NONE);
	assert_true(x.up_keep);
	/* and without any length: still no body, and the connection may serve again */
	run("HTTP/1.1 200 OK\r\n\r\n", 8, true, &done, &hr);
	assert_true(done);
	assert_true(x.up_keep);
	run("HTTP/1.1 204 No Content\r\n\r\n", 8, false, &done, &hr);
	assert_true(done);
	assert_int_equal(x.body, HTTP_XBODY_NONE);
	run("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", 8, false, &done, &hr);
	assert_true(done);
	run("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 8, false, &done, &hr);
	assert_true(done);
	assert_int_equal(x.body, HTTP_XBODY_NONE);
	/* an HTTP/1.0 answer without keep-alive ends its connection */
	run("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 8, false, &done, &hr);
	assert_false(x.up_keep);
	run("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 8, false, &done, &hr);
	assert_false(x.up_keep);
}

static void test_interim_then_final(void **state)
{
	(void)state;
	const char *r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
	size_t len = strlen(r), used;

	http_exchange_begin(&x, false, true, false);
	assert_int_equal(http_exchange_head(&x, r, len), HTTP_XHEAD_INTERIM);
	assert_int_equal(x.status, 0);
	size_t off = x.resp.head_len;
	http_exchange_next(&x);
	assert_int_equal(http_exchange_head(&x, r + off, len - off), HTTP_XHEAD_FINAL);
	assert_int_equal(x.status, 201);
	off += x.resp.head_len;
	assert_int_equal(http_exchange_body(&x, r + off, len - off, &used), HTTP_DONE);
	assert_int_equal(used, 2);
}

static void test_refused_heads(void **state)
{
	(void)state;
	const char *sw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

	http_exchange_begin(&x, false, false, false);
	assert_int_equal(http_exchange_head(&x, sw, strlen(sw)), HTTP_XHEAD_ERROR);
	assert_string_equal(x.err, "upstream switched protocols");
	http_exchange_begin(&x, false, false, false);
	assert_int_equal(http_exchange_head(&x, "HTTP/1.1 200 OK\r\nContent-Le", 27), HTTP_XHEAD_MORE);
	http_exchange_begin(&x, false, false, false);
	const char *bad = "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n";
	assert_int_equal(http_exchange_head(&x, bad, strlen(bad)), HTTP_XHEAD_ERROR);
	const char *fold = "HTTP/1.1 200 OK\r\nA: x\r\n y\r\n\r\n";
	http_exchange_begin(&x, false, false, false);
	assert_int_equal(http_exchange_head(&x, fold, strlen(fold)), HTTP_XHEAD_ERROR);
}

static void test_redial_once(void **state)
{
	(void)state;
	/* reused, no body, nothing came back: once */
	http_exchange_begin(&x, false, false, true);
	assert_true(http_exchange_redial(&x, 0));
	assert_false(http_exchange_redial(&x, 0));
	/* a fresh connection: the failure is the upstream's */
	http_exchange_begin(&x, false, false, false);
	assert_false(http_exchange_redial(&x, 0));
	/* a request body may have been consumed: never twice */
	http_exchange_begin(&x, false, true, true);
	assert_false(http_exchange_redial(&x, 0));
	/* some of the answer came: it was not a stale connection */
	http_exchange_begin(&x, false, false, true);
	assert_false(http_exchange_redial(&x, 3));
}

static void test_client_head(void **state)
{
	(void)state;
	const char *r = "HTTP/1.0 200 Fine Thanks\r\nConnection: x-secret, keep-alive\r\nX-Secret: 1\r\n"
			"Keep-Alive: timeout=5\r\nTrailer: A\r\nUpgrade: h2c\r\nProxy-Authenticate: Basic\r\nTE: trailers\r\n"
			"X-Iplock-Egress: 2\r\nContent-Length: 2\r\nX-Kept: yes\r\n\r\nok";
	struct buf *out = buf_get();

	assert_non_null(out);
	http_exchange_begin(&x, false, false, false);
	assert_int_equal(http_exchange_head(&x, r, strlen(r)), HTTP_XHEAD_FINAL);
	assert_int_equal(http_exchange_client_head(&x, r, out, true, NULL, NULL, NULL), 0);
	const char *want = "HTTP/1.1 200 Fine Thanks\r\nX-Iplock-Egress: 2\r\nContent-Length: 2\r\n"
			   "X-Kept: yes\r\nConnection: close\r\n\r\n";
	assert_int_equal(out->len, strlen(want));
	assert_memory_equal(out->data, want, out->len);

	/* no reason phrase: the space after the code stays (RFC 9112 4) */
	const char *r2 = "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
	out->off = out->len = 0;
	http_exchange_begin(&x, false, false, false);
	assert_int_equal(http_exchange_head(&x, r2, strlen(r2)), HTTP_XHEAD_FINAL);
	assert_int_equal(http_exchange_client_head(&x, r2, out, false, NULL, NULL, NULL), 0);
	assert_memory_equal(out->data, "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", out->len);
	buf_put(out);
}

/* the hop-by-hop names, any case, and near misses that are end-to-end */
static void test_hop_names(void **state)
{
	(void)state;
	static const char *const hop[] = { "Connection", "connection", "KEEP-ALIVE", "Keep-Alive", "TE", "te",
					   "tE", "Trailer", "TRAILER", "Upgrade", "upgrade", "Proxy-Authorization",
					   "proxy-connection", "PROXY-X" };
	static const char *const e2e[] = { "Connections", "Connectio", "Keep-Alive2", "T", "TEE", "Trailers",
					   "Upgrades", "Proxy", "Proxy_Auth", "Xproxy-a", "Host", "Content-Length",
					   "Transfer-Encoding", "Accept", "Date", "Tf", "Ue" };

	for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
		assert_true(http_hop_by_hop(hop[i], strlen(hop[i])));
	for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++)
		assert_false(http_hop_by_hop(e2e[i], strlen(e2e[i])));
	assert_false(http_hop_by_hop("", 0));
}

static void test_writev_head_and_body(void **state)
{
	(void)state;
	int sv[2];
	struct buf *head = buf_get();
	char got[64];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(buf_append(head, "HEAD|", 5), 0);
	assert_int_equal(http_exchange_writev(sv[0], head, "body", 4), 4);
	assert_int_equal(buf_pending(head), 0);
	assert_int_equal(read(sv[1], got, sizeof(got)), 9);
	assert_memory_equal(got, "HEAD|body", 9);
	close(sv[1]);
	head->off = 0;
	assert_int_equal(http_exchange_writev(sv[0], head, "body", 4), -EPIPE);
	close(sv[0]);
	buf_put(head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_until_close),
		cmocka_unit_test(test_framed_cut_short),
		cmocka_unit_test(test_bodiless),
		cmocka_unit_test(test_interim_then_final),
		cmocka_unit_test(test_refused_heads),
		cmocka_unit_test(test_redial_once),
		cmocka_unit_test(test_client_head),
		cmocka_unit_test(test_hop_names),
		cmocka_unit_test(test_writev_head_and_body),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
