/* respond.c: error responses as {"error": {"type": "proxy_error", "code", "message"}}, built
 * for the session to send (it knows whether the client speaks HTTP or SOCKS5); http/reply
 * writes the head and the envelope. */
#include "proxy/respond.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "http/reply.h"

struct buf *respond_error_build(int status, const char *code, const char *message)
{
	struct buf *b = buf_get();
	char body[512];

	if (!b)
		return NULL;
	long blen = http_error_json(body, sizeof(body), "proxy_error", code, message);
	long hlen = blen < 0 ? blen :
		http_reply_head(b->data, b->cap, status, "application/json", (size_t)blen,
				status == 407 ? "Proxy-Authenticate: Basic realm=\"iplock\"\r\n" : NULL,
				HTTP_REPLY_CLOSE);
	if (hlen < 0) {
		buf_put(b);
		return NULL;
	}
	b->len = (size_t)hlen;
	if (buf_append(b, body, (size_t)blen)) {
		buf_put(b);
		return NULL;
	}
	return b;
}

struct buf *respond_json_build(int status, const char *json, size_t len)
{
	struct buf *b = buf_get();

	if (b) {
		long n = http_reply_head(b->data, b->cap, status, "application/json", len, NULL,
					 HTTP_REPLY_NO_STORE | HTTP_REPLY_CLOSE);
		b->len = n < 0 ? 0 : (size_t)n;
		if (n < 0 || buf_append(b, json, len)) {
			buf_put(b);
			b = NULL;
		}
	}
	return b;
}
