/* exchange.h: one streamed HTTP/1 exchange with an upstream, shared by the proxy's forwarding
 * (proxy/forward.c) and the gate's reverse proxy (gate/server.c): the request's body framing,
 * the response head read and judged (interim 1xx, 101 refused, body framing: none,
 * Content-Length or chunked, until close), the head rewritten for the client (the
 * intermediary's own version, hop-by-hop fields out, Connection: close when the client side
 * ends), the response body walked with its own framing, whether the upstream connection may
 * serve the next request, and the one redial of a kept-alive upstream found closed.
 * No sockets here: the products own their I/O (plain or TLS, epoll interest); this file owns
 * the decisions, so both sides make the same ones. May include core/ and http/ only. */
#ifndef IPLOCK_HTTP_EXCHANGE_H
#define IPLOCK_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "http/head.h"
#include "http/hop.h"

enum http_xbody {
	HTTP_XBODY_NONE = 0,       /* HEAD, 1xx, 204, 304, Content-Length: 0 */
	HTTP_XBODY_FRAMED,         /* Content-Length or chunked: the parser finds the end */
	HTTP_XBODY_UNTIL_CLOSE,    /* no framing: the body ends when the upstream closes */
};

enum http_xhead {
	HTTP_XHEAD_MORE = 0,       /* the blank line has not arrived */
	HTTP_XHEAD_INTERIM,        /* a 1xx head: pass it on, then call http_exchange_next() */
	HTTP_XHEAD_FINAL,          /* the final head: status, body and reuse are decided */
	HTTP_XHEAD_ERROR,          /* malformed, or 101 (Upgrade is never passed on) */
};

struct http_exchange {
	struct http_head resp;     /* the response head, then its body framing */
	enum http_xbody body;
	int status;                /* of the final head; 0 before */
	bool head_req;             /* the request was HEAD: no body whatever the head says */
	bool req_body;             /* the request carries a body: never sent twice */
	bool up_reused;            /* the request went out on a kept-alive upstream connection */
	bool up_keep;              /* the upstream connection may serve the next request */
	bool body_done;
	const char *err;           /* why HTTP_XHEAD_ERROR / a body error (constant string) */
};

/* Does this request carry a body (chunked, or a Content-Length above 0)? */
bool http_request_has_body(const struct http_head *req);

/* A new exchange: the request is HEAD, has a body, goes out on a reused connection. */
void http_exchange_begin(struct http_exchange *x, bool head_req, bool req_body, bool up_reused);

/* Reads the response head at data[0..len). On FINAL and INTERIM, x->resp.head_len bytes are
 * the head; what follows is body (or the next head after an interim one). */
enum http_xhead http_exchange_head(struct http_exchange *x, const char *data, size_t len);

/* After an interim head was passed on: wait for the next head. */
void http_exchange_next(struct http_exchange *x);

/* Appends the response head for the client to out: "HTTP/1.1 NNN reason", the end-to-end
 * fields of the upstream head at base (hop-by-hop ones and those skip names left out), and,
 * when the head is final, "Connection: close" if close_client and the caller's own fields
 * extra (whole "Name: value\r\n" lines, or NULL). -ENOSPC when out is full. */
int http_exchange_client_head(const struct http_exchange *x, const char *base, struct buf *out,
			      bool close_client, const char *extra, http_field_skip_fn skip,
			      void *arg);

/* Walks body bytes: *consumed of data[0..len) belong to this response. HTTP_DONE at its
 * end (bytes after it are not ours: the upstream is not reused then, see
 * http_exchange_extra), HTTP_ERROR on bad framing. */
enum http_parse_result http_exchange_body(struct http_exchange *x, const char *data, size_t len,
					  size_t *consumed);

/* The upstream closed: HTTP_DONE if that ends the body (until close), else HTTP_ERROR
 * (a framed body cut short must not reach the client as complete). */
enum http_parse_result http_exchange_eof(struct http_exchange *x);

/* Bytes the upstream sent after the end of the response: it cannot be reused. */
void http_exchange_extra(struct http_exchange *x);

/* The upstream closed or failed before any byte of the response: may the request go out
 * once more on a new connection? Only a bodyless request that went out on a reused
 * connection (the peer closed it as we reused it); the flag is cleared, so once. */
bool http_exchange_redial(struct http_exchange *x, size_t resp_bytes);

/* Sends head[off..len) and then body[0..blen) with one writev on a plain socket; moves
 * head->off and returns the body bytes sent (>= 0), or -errno (-EAGAIN: try again later). */
ssize_t http_exchange_writev(int fd, struct buf *head, const char *body, size_t blen);

#endif
