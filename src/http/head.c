/* head.c: llhttp glue: head spans, header caps, body framing. */
#include "http/head.h"

#include <string.h>
#include <strings.h>

static struct http_head *head_of(llhttp_t *p) { return (struct http_head *)p->data; }

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_head *h = head_of(p);

	if (h->url_len == 0)
		h->url_off = (uint32_t)(at - h->base);
	h->url_len += (uint32_t)len;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_head *h = head_of(p);

	if (h->nhdrs == 0 || h->in_value) {
		if (h->nhdrs >= h->max_headers) {
			h->too_many = true;
			return -1;
		}
		struct http_hdr *hd = &h->hdrs[h->nhdrs++];
		hd->name_off = (uint32_t)(at - h->base);
		hd->name_len = 0;
		hd->val_off = 0;
		hd->val_len = 0;
		h->in_value = false;
	}
	h->hdrs[h->nhdrs - 1].name_len += (uint32_t)len;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_head *h = head_of(p);
	struct http_hdr *hd = &h->hdrs[h->nhdrs - 1];

	if (!h->in_value) {
		hd->val_off = (uint32_t)(at - h->base);
		h->in_value = true;
	}
	hd->val_len += (uint32_t)len;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	(void)p;
	return HPE_PAUSED;   /* stop right after the head: the caller decides what the body is */
}

static int on_message_complete(llhttp_t *p)
{
	head_of(p)->body_done = true;
	return HPE_PAUSED;   /* stop at the end of this message: pipelined bytes are not ours */
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_head *h = head_of(p);

	if (h->on_body)
		h->on_body(h, at, len);
	return 0;
}

static const llhttp_settings_t settings = {
	.on_url = on_url,
	.on_body = on_body,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

void http_head_init(struct http_head *h, llhttp_type_t type, unsigned max_headers)
{
	llhttp_init(&h->parser, type, &settings);
	h->parser.data = h;
	h->max_headers = max_headers && max_headers < HTTP_HEADERS_CAP ? max_headers : HTTP_HEADERS_CAP;
	h->base = NULL;
	h->head_len = 0;
	h->url_off = h->url_len = 0;
	h->nhdrs = 0;
	h->in_value = false;
	h->too_many = false;
	h->body_done = false;
	h->err = NULL;
	h->err_status = 0;
	h->on_body = NULL;
	h->user = NULL;
}

/* The blank line that ends a head: CRLF CRLF, or a bare LF pair that llhttp will judge. */
static bool head_has_end(const char *data, size_t len)
{
	return memmem(data, len, "\n\r\n", 3) || memmem(data, len, "\n\n", 2);
}

/* RFC 9110 5.6.2 token: what a field name must be (llhttp lets some bytes through) */
static bool is_token(const char *s, size_t len)
{
	static const char tchar_extra[] = "!#$%&'*+-.^_`|~";

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(tchar_extra, c))))
			return false;
	}
	return true;
}

/* A header line that starts with a space or tab continues the previous one (obs-fold). */
static bool head_has_fold(const char *data, size_t len)
{
	for (const char *p = data; (p = memchr(p, '\n', (size_t)(data + len - p))) && p + 1 < data + len; p++)
		if (p[1] == ' ' || p[1] == '\t')
			return true;
	return false;
}

enum http_parse_result http_head_parse(struct http_head *h, const char *data, size_t len)
{
	if (!head_has_end(data, len))
		return HTTP_MORE;
	h->base = data;
	llhttp_errno_t e = llhttp_execute(&h->parser, data, len);
	if (e == HPE_PAUSED) {
		h->head_len = (size_t)(llhttp_get_error_pos(&h->parser) - data);
		llhttp_resume(&h->parser);
		if (head_has_fold(data, h->head_len)) {
			/* llhttp joins folded lines; a proxy must not (RFC 9112 5.2: smuggling) */
			h->err = "obsolete line folding";
			h->err_status = 400;
			return HTTP_ERROR;
		}
		for (size_t i = 0; i < h->nhdrs; i++) {
			if (!is_token(data + h->hdrs[i].name_off, h->hdrs[i].name_len)) {
				h->err = "invalid header field name";
				h->err_status = 400;
				return HTTP_ERROR;
			}
		}
		if (h->parser.type == HTTP_REQUEST && (h->parser.flags & F_TRANSFER_ENCODING) &&
		    !(h->parser.flags & F_CHUNKED)) {
			/* llhttp would refuse it only after the head (RFC 9112 6.3): before forwarding */
			h->err = "Transfer-Encoding must end with chunked";
			h->err_status = 400;
			return HTTP_ERROR;
		}
		return HTTP_DONE;
	}
	if (h->too_many) {
		h->err = "too many header fields";
		h->err_status = 431;
	} else if (e == HPE_OK) {
		/* the blank line was inside a header value or a bare-LF oddity: not a head */
		h->err = "malformed request head";
		h->err_status = 400;
	} else {
		h->err = llhttp_get_error_reason(&h->parser);
		if (!h->err || !*h->err)
			h->err = llhttp_errno_name(e);
		h->err_status = 400;
	}
	return HTTP_ERROR;
}

void http_body_begin(struct http_head *h, bool skip_body)
{
	if (skip_body)
		h->parser.flags |= F_SKIPBODY;
	h->body_done = false;
}

enum http_parse_result http_body_feed(struct http_head *h, const char *data, size_t len,
				      size_t *consumed)
{
	*consumed = 0;
	if (h->body_done)
		return HTTP_DONE;
	h->base = data;
	llhttp_errno_t e = llhttp_execute(&h->parser, data, len);
	if (e == HPE_OK) {
		*consumed = len;
		return h->body_done ? HTTP_DONE : HTTP_MORE;
	}
	if (e == HPE_PAUSED && h->body_done) {
		*consumed = (size_t)(llhttp_get_error_pos(&h->parser) - data);
		return HTTP_DONE;
	}
	h->err = llhttp_get_error_reason(&h->parser);
	if (!h->err || !*h->err)
		h->err = llhttp_errno_name(e);
	h->err_status = 400;
	return HTTP_ERROR;
}

enum http_parse_result http_body_eof(struct http_head *h)
{
	if (h->body_done)
		return HTTP_DONE;
	llhttp_errno_t e = llhttp_finish(&h->parser);
	if ((e == HPE_OK || e == HPE_PAUSED) && h->body_done)
		return HTTP_DONE;
	h->err = "connection closed before the end of the message";
	h->err_status = 502;
	return HTTP_ERROR;
}

bool http_hdr_name_is(const struct http_head *h, const char *base, size_t i, const char *name)
{
	size_t n = strlen(name);

	return h->hdrs[i].name_len == n && strncasecmp(base + h->hdrs[i].name_off, name, n) == 0;
}

int http_head_find(const struct http_head *h, const char *base, const char *name)
{
	for (size_t i = 0; i < h->nhdrs; i++)
		if (http_hdr_name_is(h, base, i, name))
			return (int)i;
	return -1;
}

bool http_list_next(const char *val, size_t len, char sep, size_t *i, size_t *s, size_t *e)
{
	if (*i >= len)
		return false;
	while (*i < len && (val[*i] == ' ' || val[*i] == '\t' || val[*i] == sep))
		(*i)++;
	*s = *i;
	while (*i < len && val[*i] != sep)
		(*i)++;
	*e = *i;
	while (*e > *s && (val[*e - 1] == ' ' || val[*e - 1] == '\t'))
		(*e)--;
	return true;
}

bool http_token_list_has(const char *val, size_t len, const char *token, size_t toklen)
{
	size_t i = 0, s, e;

	while (http_list_next(val, len, ',', &i, &s, &e))
		if (e - s == toklen && strncasecmp(val + s, token, toklen) == 0)
			return true;
	return false;
}
