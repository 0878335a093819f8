/* h1conn.h (http): the connection plumbing of a small HTTP/1 server on net/server, shared by
 * `iplock echo` and `iplock console`: read a request head (http/head) and a Content-Length body
 * into the connection's buffer, hand the whole request to the product, send its answer over
 * net/stream (plain or TLS), keep-alive and pipelining, a lingering close after the last answer
 * (unread bytes are discarded so the close does not become a reset that eats the answer), an
 * idle timer, and the list of a worker's connections for drain and teardown.
 * May include core, net and http. The product embeds struct h1conn in its connection. */
#ifndef IPLOCK_HTTP_H1CONN_H
#define IPLOCK_HTTP_H1CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/loop.h"
#include "http/head.h"
#include "net/addr.h"
#include "net/stream.h"

struct h1conn;

struct h1conn_ops {
	size_t head_max;            /* a longer head is a 431 */
	unsigned max_headers;
	unsigned max_reqs;          /* requests per connection; the last one says Connection: close */
	unsigned idle_ms;           /* no byte for this long (handshake, head, keep-alive): close */
	unsigned drain_ms;          /* lingering close: how long unread bytes are discarded */
	size_t drain_max;           /* ... and how many */
	bool wipe;                  /* requests and answers may hold secrets: zero them when done */
	/* a request buffered when the worker stops is still answered (else the connection closes) */
	bool answer_on_stop;
	/* The head is complete: set c->need (head and body bytes), or queue an error answer
	 * (with close_after) and return false. */
	bool (*head)(struct h1conn *c);
	/* A whole request (c->need bytes) is in c->in: queue the answer (c->out, c->outlen). */
	void (*request)(struct h1conn *c);
	/* A malformed request or a head too large: queue this error answer (close_after is set). */
	void (*error)(struct h1conn *c, int status, const char *reason);
	/* Deferred after the close: free the connection. */
	void (*free)(struct h1conn *c);
};

/* A worker's connections. */
struct h1conn_set {
	const struct h1conn_ops *ops;
	struct loop *loop;
	struct h1conn *conns;
	size_t n;
	bool stopping;              /* draining: every answer is the connection's last */
};

struct h1conn {
	struct h1conn_set *set;
	struct h1conn *prev, *next;
	struct io io;
	struct timer timer;
	struct deferred dfr;
	struct stream st;
	char peer[IPADDR_STRLEN];
	struct http_head head;
	bool have_head;
	size_t need;                /* head + body bytes of the request being read */
	char *in;                   /* the product's buffer of incap bytes */
	size_t incap, inlen;
	char *out;                  /* the product's answer */
	size_t outlen, outoff;
	unsigned nreq;
	bool close_after;           /* close once the output is sent */
	bool draining;              /* answered and half-closed: unread bytes are discarded */
	bool closed;
	size_t drained;
};

/* Takes over fd (the product zeroed c and set c->in, c->incap): 0, or -1 when c is NULL (the
 * product had no room for it) or the TLS session cannot be made; then fd is closed and c, if
 * any, given to ops->free. On 0 the connection runs, and may already be closed on return. */
int h1conn_open(struct h1conn_set *s, struct h1conn *c, int fd, const struct sockaddr_storage *ss,
		SSL_CTX *ctx);
void h1conn_close(struct h1conn *c);

/* net/server's drain: a connection waiting for its next request closes now; one with a request
 * or an answer under way finishes it (Connection: close) and then closes. */
void h1conn_set_drain(struct h1conn_set *s);
/* net/server's teardown: closes every connection and frees them. */
void h1conn_set_teardown(struct h1conn_set *s);

/* net/server's worker_init of a product on h1conn: a worker's empty set, which is its wstate. */
void h1conn_set_init(struct h1conn_set *s, const struct h1conn_ops *ops, struct loop *loop,
		     void **wstate);

/* The same three as net/server's drain, busy and teardown for a worker whose wstate is its
 * h1conn_set (its accept finds the product's worker around it with container_of). */
void h1conn_worker_drain(void *wstate);
bool h1conn_worker_busy(void *wstate);
void h1conn_worker_teardown(void *wstate);

#endif
