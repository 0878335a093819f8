/* head.h: HTTP/1.x message heads and body framing on llhttp.
 *
 * A head is parsed only once the blank line that ends it is in the buffer, in one pass, so
 * every header is one contiguous span of the caller's buffer (recorded as offsets). llhttp
 * pauses right after the head; the same parser then walks the body to find where the
 * message ends, so bodies are streamed with their original framing and never buffered whole.
 * llhttp runs strict: duplicate Content-Length, Content-Length with Transfer-Encoding,
 * whitespace before a colon and obs-fold are errors. */
#ifndef IPLOCK_HTTP_HEAD_H
#define IPLOCK_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#define HTTP_HEADERS_CAP 128   /* hard cap on headers per message, whatever the config says */

struct http_hdr {
	uint32_t name_off, name_len;
	uint32_t val_off, val_len;
};

enum http_parse_result {
	HTTP_ERROR = -1,      /* malformed: err and err_status say why */
	HTTP_MORE = 0,        /* need more bytes */
	HTTP_DONE = 1,        /* head complete (head_len) / message complete (consumed) */
};

struct http_head {
	llhttp_t parser;
	unsigned max_headers;
	const char *base;          /* buffer the offsets refer to (valid during parse only) */
	size_t head_len;           /* bytes of the head, blank line included */
	uint32_t url_off, url_len;
	size_t nhdrs;
	struct http_hdr hdrs[HTTP_HEADERS_CAP];
	bool in_value;             /* last span was a value: a new field starts a new header */
	bool too_many;
	bool body_done;
	const char *err;           /* one-line reason for the client */
	int err_status;            /* 400 or 431 */
	/* optional, set after http_head_init: the body's bytes (de-chunked) as http_body_feed
	 * walks them, for a client that reads the body (http/resp) */
	void (*on_body)(struct http_head *h, const char *at, size_t len);
	void *user;
};

void http_head_init(struct http_head *h, llhttp_type_t type, unsigned max_headers);

/* Parse the head at data[0..len). HTTP_MORE when the blank line has not arrived yet. */
enum http_parse_result http_head_parse(struct http_head *h, const char *data, size_t len);

/* Walk body bytes after the head: *consumed is how many belong to this message.
 * skip_body: a response to HEAD (or 204/304) that has no body whatever its headers say. */
void http_body_begin(struct http_head *h, bool skip_body);
enum http_parse_result http_body_feed(struct http_head *h, const char *data, size_t len,
				      size_t *consumed);
/* The peer closed: HTTP_DONE if that ends the message (read-until-close bodies). */
enum http_parse_result http_body_eof(struct http_head *h);

/* Header helpers: names compare case-insensitively. */
bool http_hdr_name_is(const struct http_head *h, const char *base, size_t i, const char *name);
int http_head_find(const struct http_head *h, const char *base, const char *name); /* index or -1 */
/* The next item of a list in val[0..len) (items end at sep; blanks and empty items before an
 * item are skipped, blanks after it trimmed): false when *i is at the end, else true with the
 * item at [*s, *e), which is empty only at the end of a list that ends in sep or blanks. */
bool http_list_next(const char *val, size_t len, char sep, size_t *i, size_t *s, size_t *e);
/* Does a comma-separated header value list (Connection) contain token? */
bool http_token_list_has(const char *val, size_t len, const char *token, size_t toklen);

#endif
