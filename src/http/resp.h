/* resp.h: one HTTP/1.1 response as the HTTP clients (`iplock verify`, `scan --verify`) read it:
 * the status and up to VRESP_BODY_CAP bytes of body (de-chunked). The head is read by
 * http/head (the one response-head parser: the proxy, the gate and `iplock tunnel` use it too),
 * the body walked by its framing. An answer to CONNECT ends at its head when it is 2xx (the
 * tunnel starts there). Pure code, fed by the caller; fuzzed. */
#ifndef IPLOCK_HTTP_RESP_H
#define IPLOCK_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>

#include "http/head.h"

#define VRESP_BODY_CAP (64 * 1024)     /* body bytes kept; more is parsed and dropped */
#define VRESP_HEAD_CAP (32 * 1024)     /* a longer response head is an error */

struct vresp {
	int status;
	char body[VRESP_BODY_CAP + 1];   /* NUL-terminated */
	size_t body_len;
	bool truncated;
};

struct vresp_parser {
	struct http_head h;
	struct vresp *r;
	bool connect;
	bool head_done;
	bool done;
	size_t head_len;                 /* bytes gathered in head[] until the blank line came */
	char head[VRESP_HEAD_CAP];
};

enum vresp_result {
	VRESP_ERROR = -1,      /* not HTTP: *err says why */
	VRESP_MORE = 0,        /* feed more bytes */
	VRESP_DONE = 1,        /* the response is complete; *used bytes of this feed were part of it */
};

/* p must not move after this (llhttp keeps a pointer to it). */
void vresp_parser_init(struct vresp_parser *p, struct vresp *out, bool connect);
enum vresp_result vresp_parser_feed(struct vresp_parser *p, const char *data, size_t len,
				    size_t *used, const char **err);
/* The peer closed: VRESP_DONE when that ends the response (a body read until close). */
enum vresp_result vresp_parser_eof(struct vresp_parser *p, const char **err);

#endif
