/* resp.c: HTTP responses for iplock verify and scan --verify: the head by http/head, the body
 * by its framing (http_body_feed), kept up to VRESP_BODY_CAP. */
#include "http/resp.h"

#include <string.h>

static void keep_body(struct http_head *h, const char *at, size_t len)
{
	struct vresp *r = ((struct vresp_parser *)h->user)->r;
	size_t room = VRESP_BODY_CAP - r->body_len;

	if (len > room) {
		r->truncated = true;
		len = room;
	}
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
}

void vresp_parser_init(struct vresp_parser *p, struct vresp *out, bool connect)
{
	p->r = out;
	p->connect = connect;
	p->head_done = false;
	p->done = false;
	p->head_len = 0;
	http_head_init(&p->h, HTTP_RESPONSE, HTTP_HEADERS_CAP);
	p->h.on_body = keep_body;
	p->h.user = p;
	out->status = 0;
	out->body_len = 0;
	out->body[0] = '\0';
	out->truncated = false;
}

/* Body bytes: *used of data[0..len) belong to this response. */
static enum vresp_result body(struct vresp_parser *p, const char *data, size_t len, size_t *used,
			      const char **err)
{
	size_t n;

	switch (http_body_feed(&p->h, data, len, &n)) {
	case HTTP_DONE:
		p->done = true;
		*used = n;
		return VRESP_DONE;
	case HTTP_MORE:
		*used = len;
		return VRESP_MORE;
	default:
		*err = p->h.err;
		return VRESP_ERROR;
	}
}

enum vresp_result vresp_parser_feed(struct vresp_parser *p, const char *data, size_t len,
				    size_t *used, const char **err)
{
	*used = 0;
	if (p->done)
		return VRESP_DONE;
	if (p->head_done)
		return body(p, data, len, used, err);
	size_t skip = 0;
	while (!p->head_len && skip < len && (data[skip] == '\r' || data[skip] == '\n'))
		skip++;         /* empty lines before the status line are ignored (RFC 9112 2.2) */
	if (skip) {
		enum vresp_result r = skip < len ? vresp_parser_feed(p, data + skip, len - skip, used, err)
						 : VRESP_MORE;
		*used += skip;
		return r;
	}
	/* the head, gathered until its blank line is in: http/head parses it in one pass */
	size_t take = len < sizeof(p->head) - p->head_len ? len : sizeof(p->head) - p->head_len;
	memcpy(p->head + p->head_len, data, take);
	p->head_len += take;
	switch (http_head_parse(&p->h, p->head, p->head_len)) {
	case HTTP_MORE:
		if (p->head_len == sizeof(p->head)) {
			*err = "response head too large";
			return VRESP_ERROR;
		}
		*used = len;
		return VRESP_MORE;
	case HTTP_ERROR:
		*err = p->h.err;
		return VRESP_ERROR;
	case HTTP_DONE:
		break;
	}
	p->head_done = true;
	p->r->status = p->h.parser.status_code;
	/* what came after the head is in this feed: everything before it had no blank line */
	size_t after = p->head_len - p->h.head_len;
	size_t head_part = take - after;
	if (p->connect && p->r->status / 100 == 2) {
		p->done = true;          /* the tunnel starts right after this head */
		*used = head_part;
		return VRESP_DONE;
	}
	http_body_begin(&p->h, false);
	enum vresp_result r = body(p, data + head_part, len - head_part, used, err);
	*used += head_part;
	return r;
}

enum vresp_result vresp_parser_eof(struct vresp_parser *p, const char **err)
{
	if (p->done)
		return VRESP_DONE;
	if (p->head_done && http_body_eof(&p->h) == HTTP_DONE) {
		p->done = true;          /* a body that ends at close */
		return VRESP_DONE;
	}
	*err = p->head_done ? "the connection closed in the middle of the response"
			    : "the connection closed before a response";
	return VRESP_ERROR;
}
