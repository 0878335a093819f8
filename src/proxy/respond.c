/* respond.c: error responses as {"error": {"type": "proxy_error", "code", "message"}}
 * (http/reply writes head and envelope). */
#include "proxy/respond.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "http/reply.h"
#include "proxy/session.h"

static struct buf *error_build(int status, const char *code, const char *message)
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

void respond_error(struct session *s, int status, const char *code, const char *message)
{
	s->code = code;
	if (s->socks) {
		s->reason = message;
		socks_reply_error(s, code, status);
		return;
	}
	session_reply(s, error_build(status, code, message), status, message);
}

void respond_error_dup(struct session *s, int status, const char *code, const char *message)
{
	snprintf(s->reason_buf, sizeof(s->reason_buf), "%s", message);
	s->reason = s->reason_buf;
	s->code = code;
	if (s->socks) {
		socks_reply_error(s, code, status);
		return;
	}
	session_reply(s, error_build(status, code, message), status, s->reason_buf);
}

void respond_json(struct session *s, int status, const char *json, size_t len)
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
	session_reply(s, b, status, NULL);
}
