/* exchange.c: the decisions of one streamed exchange with an upstream (see exchange.h). */
#include "http/exchange.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

bool http_request_has_body(const struct http_head *req)
{
	const llhttp_t *p = &req->parser;

	if (p->flags & F_CHUNKED)
		return true;
	return (p->flags & F_CONTENT_LENGTH) && p->content_length > 0;
}

void http_exchange_begin(struct http_exchange *x, bool head_req, bool req_body, bool up_reused)
{
	http_head_init(&x->resp, HTTP_RESPONSE, HTTP_HEADERS_CAP);
	x->body = HTTP_XBODY_NONE;
	x->status = 0;
	x->head_req = head_req;
	x->req_body = req_body;
	x->up_reused = up_reused;
	x->up_keep = false;
	x->body_done = false;
	x->err = NULL;
}

void http_exchange_next(struct http_exchange *x)
{
	http_head_init(&x->resp, HTTP_RESPONSE, HTTP_HEADERS_CAP);
}

enum http_xhead http_exchange_head(struct http_exchange *x, const char *data, size_t len)
{
	enum http_parse_result r = http_head_parse(&x->resp, data, len);

	if (r == HTTP_MORE)
		return HTTP_XHEAD_MORE;
	if (r == HTTP_ERROR) {
		x->err = "upstream sent a malformed response";
		return HTTP_XHEAD_ERROR;
	}
	int st = x->resp.parser.status_code;
	if (st == 101) {
		/* Upgrade was stripped on the way out: a switch is a broken upstream */
		x->err = "upstream switched protocols";
		return HTTP_XHEAD_ERROR;
	}
	if (st < 200)
		return HTTP_XHEAD_INTERIM;
	x->status = st;
	enum llhttp_flags fl = x->resp.parser.flags;
	if (st == 204 || st == 304 || x->head_req)
		x->body = HTTP_XBODY_NONE;
	else if (fl & F_CHUNKED)
		x->body = HTTP_XBODY_FRAMED;
	else if (fl & F_CONTENT_LENGTH)
		x->body = x->resp.parser.content_length ? HTTP_XBODY_FRAMED : HTTP_XBODY_NONE;
	else
		x->body = HTTP_XBODY_UNTIL_CLOSE;
	/* after http_body_begin: a bodiless answer (HEAD) needs no EOF, so it may keep alive */
	http_body_begin(&x->resp, x->body == HTTP_XBODY_NONE);
	x->up_keep = x->body != HTTP_XBODY_UNTIL_CLOSE && llhttp_should_keep_alive(&x->resp.parser);
	x->body_done = x->body == HTTP_XBODY_NONE;
	x->resp.body_done = x->body_done;
	return HTTP_XHEAD_FINAL;
}

int http_exchange_client_head(const struct http_exchange *x, const char *base, struct buf *out,
			      bool close_client, const char *extra, http_field_skip_fn skip,
			      void *arg)
{
	const struct http_head *h = &x->resp;
	int st = h->parser.status_code;
	char line[13] = "HTTP/1.1 000 ";

	/* the intermediary's own version (RFC 9110 2.5), the code, the reason as received */
	line[9] = (char)('0' + st / 100 % 10);
	line[10] = (char)('0' + st / 10 % 10);
	line[11] = (char)('0' + st % 10);
	if (buf_append(out, line, sizeof(line)))
		return -ENOSPC;
	const char *eol = memchr(base, '\n', h->head_len);
	const char *sp = eol ? memchr(base, ' ', (size_t)(eol - base)) : NULL;
	if (sp) {
		/* "HTTP/x.y SP NNN SP reason": the reason starts after the code's space */
		const char *rp = sp + 1;
		while (rp < eol && *rp >= '0' && *rp <= '9')
			rp++;
		if (rp < eol && *rp == ' ')
			rp++;
		size_t rpl = (size_t)(eol - rp);
		while (rpl && (rp[rpl - 1] == '\r' || rp[rpl - 1] == '\n'))
			rpl--;
		if (rpl && buf_append(out, rp, rpl))
			return -ENOSPC;
	}
	if (buf_append(out, "\r\n", 2))
		return -ENOSPC;
	if (http_fields_copy(h, base, out, skip, arg))
		return -ENOSPC;
	if (st >= 200 && close_client && buf_append(out, "Connection: close\r\n", 19))
		return -ENOSPC;
	if (st >= 200 && extra && buf_append(out, extra, strlen(extra)))
		return -ENOSPC;
	return buf_append(out, "\r\n", 2);
}

enum http_parse_result http_exchange_body(struct http_exchange *x, const char *data, size_t len,
					  size_t *consumed)
{
	*consumed = 0;
	if (x->body_done)
		return HTTP_DONE;
	enum http_parse_result r = http_body_feed(&x->resp, data, len, consumed);
	if (r == HTTP_ERROR) {
		x->err = "upstream sent a malformed body";
		x->up_keep = false;
		return r;
	}
	if (r == HTTP_DONE)
		x->body_done = true;
	return r;
}

enum http_parse_result http_exchange_eof(struct http_exchange *x)
{
	x->up_keep = false;
	if (x->body_done)
		return HTTP_DONE;
	if (http_body_eof(&x->resp) == HTTP_DONE) {
		x->body_done = true;
		return HTTP_DONE;
	}
	x->err = "upstream closed before the end of the response";
	return HTTP_ERROR;
}

void http_exchange_extra(struct http_exchange *x)
{
	x->up_keep = false;
}

bool http_exchange_redial(struct http_exchange *x, size_t resp_bytes)
{
	if (!x->up_reused || x->req_body || resp_bytes || x->status)
		return false;
	x->up_reused = false;
	return true;
}

ssize_t http_exchange_writev(int fd, struct buf *head, const char *body, size_t blen)
{
	struct iovec iov[2] = {
		{ head->data + head->off, buf_pending(head) },
		{ (void *)body, blen },
	};
	ssize_t n;

	do
		n = writev(fd, iov, blen ? 2 : 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	size_t h = buf_pending(head) < (size_t)n ? buf_pending(head) : (size_t)n;
	head->off += h;
	return n - (ssize_t)h;
}
