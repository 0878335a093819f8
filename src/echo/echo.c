/* echo.c: the `iplock echo` server (echo.h): tells callers the address they came from, as
 * httpbin's /ip does, so teams can host their own check target for `iplock verify`.
 *
 * Owns: the server, its connections and its answers. May include: core, net, http.
 *
 * On net/server (workers, SO_REUSEPORT listener, signals, drain); each worker has its own
 * loop and connections. Each connection owns a fixed input buffer (the cap of a
 * request head), a fixed output buffer and an idle timer; requests are answered in order
 * (keep-alive and pipelining), a request with a body is answered and the connection closed
 * (nothing here needs a body, so none is ever read). */
#include "echo/echo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/log.h"
#include "core/loop.h"
#include "http/head.h"
#include "http/reply.h"
#include "net/addr.h"
#include "net/server.h"
#include "net/sock.h"
#include "net/stream.h"
#include "net/tls.h"

#define ECHO_IN_CAP      8192    /* a request head must fit: 431 otherwise */
#define ECHO_OUT_CAP     1024    /* the longest answer (an escaped 400 reason) fits */
#define ECHO_MAX_CONNS   1024    /* per worker; beyond this, new connections are closed at once */
#define ECHO_MAX_REQS    1000    /* requests per connection before it is closed */
#define ECHO_IDLE_MS     10000   /* no byte for this long (handshake, head, keep-alive): close */
#define ECHO_MAX_HEADERS 64
#define ECHO_DRAIN_MS    1000    /* lingering close: how long unread bytes are discarded */
#define ECHO_DRAIN_MAX   (256 * 1024)
#define ECHO_STOP_MS     2000    /* SIGTERM: answers in flight get this long to be sent */

struct echo_worker {
	struct echo_server *srv;
	struct loop *loop;
	struct echo_conn *conns;     /* every open connection, for drain and teardown */
	size_t nconns;
	bool stopping;               /* draining: every answer is the connection's last */
};

struct echo_server {
	SSL_CTX *ctx;                /* NULL for plain HTTP */
	struct server *rt;
	unsigned nworkers;
	struct echo_worker *workers;
};

struct echo_conn {
	struct echo_worker *w;
	struct echo_conn *prev, *next;
	struct io io;
	struct timer timer;
	struct deferred dfr;
	struct stream st;
	char peer[IPADDR_STRLEN];
	struct http_head head;
	size_t inlen;
	size_t outlen, outoff;
	unsigned nreq;
	bool close_after;            /* close once the output is sent */
	bool draining;               /* answered and half-closed: unread bytes are discarded, so
	                              * the close does not become a reset that eats the answer */
	size_t drained;
	bool closed;
	char in[ECHO_IN_CAP];
	char out[ECHO_OUT_CAP];
};

static void conn_free(struct deferred *d)
{
	free(container_of(d, struct echo_conn, dfr));
}

static void conn_close(struct echo_conn *c)
{
	struct echo_worker *w = c->w;

	if (c->closed)
		return;
	c->closed = true;
	timer_stop(w->loop, &c->timer);
	stream_free(&c->st);
	io_close(w->loop, &c->io);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	loop_defer(w->loop, &c->dfr, conn_free);
}

/* Queue one answer; the body is JSON text already escaped. HEAD gets the head only. */
static void conn_reply(struct echo_conn *c, int status, const char *body, bool head_only)
{
	size_t blen = strlen(body);
	long n = http_reply_head(c->out, sizeof(c->out), status, "application/json", blen,
				 status == 405 ? "Allow: GET, HEAD\r\n" : NULL,
				 HTTP_REPLY_NO_STORE | (c->close_after ? HTTP_REPLY_CLOSE : 0));
	/* ECHO_OUT_CAP holds the longest head and body */
	c->outlen = n < 0 ? 0 : (size_t)n;
	if (!head_only && c->outlen + blen < sizeof(c->out)) {
		memcpy(c->out + c->outlen, body, blen);
		c->outlen += blen;
	}
	c->outoff = 0;
}

static void conn_reply_error(struct echo_conn *c, int status, const char *reason)
{
	char esc[256], body[400];
	size_t n = json_escape(esc, sizeof(esc) - 1, reason, strlen(reason));

	esc[n] = '\0';
	snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", esc);
	conn_reply(c, status, body, false);
}

/* A complete head is in c->in: decide the answer, then drop the head from the buffer. */
static void conn_handle(struct echo_conn *c)
{
	struct http_head *h = &c->head;
	const char *url = c->in + h->url_off;
	size_t ulen = h->url_len;
	uint8_t method = h->parser.method;
	bool head_only = method == HTTP_HEAD;

	c->nreq++;
	/* a body is never read: answer, then close so its bytes are not taken for a request */
	if ((h->parser.flags & (F_CHUNKED | F_CONTENT_LENGTH)) &&
	    !((h->parser.flags & F_CONTENT_LENGTH) && h->parser.content_length == 0))
		c->close_after = true;
	if (!llhttp_should_keep_alive(&h->parser) || c->nreq >= ECHO_MAX_REQS || c->w->stopping)
		c->close_after = true;
	const char *q = memchr(url, '?', ulen);
	if (q)
		ulen = (size_t)(q - url);
	bool known = (ulen == 1 && url[0] == '/') || (ulen == 3 && !memcmp(url, "/ip", 3));
	if (!known) {
		conn_reply(c, 404, "{\"error\": \"not found: try GET /ip\"}\n", head_only);
	} else if (method != HTTP_GET && method != HTTP_HEAD) {
		conn_reply(c, 405, "{\"error\": \"method not allowed: use GET\"}\n", head_only);
	} else {
		char body[IPADDR_STRLEN + 32];
		snprintf(body, sizeof(body), "{\"origin\": \"%s\"}\n", c->peer);
		conn_reply(c, 200, body, head_only);
	}
	memmove(c->in, c->in + h->head_len, c->inlen - h->head_len);
	c->inlen -= h->head_len;
	http_head_init(&c->head, HTTP_REQUEST, ECHO_MAX_HEADERS);
}

/* Make every step that can progress: send pending output, answer buffered requests, read. */
static void conn_pump(struct echo_conn *c)
{
	struct loop *loop = c->w->loop;
	SSL *ssl = c->st.ssl;

	for (int guard = 0; guard < 4 * ECHO_MAX_REQS + 64; guard++) {
		if (c->draining) {
			long n = sock_read(c->io.fd, c->in, sizeof(c->in));
			if (n == -EAGAIN) {
				io_want(loop, &c->io, EPOLLIN);
				return;
			}
			if (n <= 0 || (c->drained += (size_t)n) > ECHO_DRAIN_MAX)
				goto close;
			continue;
		}
		if (c->outoff < c->outlen) {
			long n = stream_write(&c->st, c->out + c->outoff, c->outlen - c->outoff);
			if (n == -EAGAIN) {
				io_want(loop, &c->io, ssl && SSL_want_read(ssl) ? EPOLLIN : EPOLLOUT);
				return;
			}
			if (n <= 0)
				goto close;
			c->outoff += (size_t)n;
			continue;
		}
		if (c->outlen) {
			c->outlen = c->outoff = 0;
			if (c->close_after) {
				stream_shutdown(&c->st);   /* best effort close_notify */
				shutdown(c->io.fd, SHUT_WR);
				c->draining = true;
				timer_start(loop, &c->timer, ECHO_DRAIN_MS);
				continue;
			}
		}
		if (c->inlen) {
			enum http_parse_result r = http_head_parse(&c->head, c->in, c->inlen);
			if (r == HTTP_DONE) {
				conn_handle(c);
				continue;
			}
			if (r == HTTP_ERROR) {
				c->close_after = true;
				conn_reply_error(c, c->head.err_status ? c->head.err_status : 400,
						 c->head.err ? c->head.err : "malformed request");
				continue;
			}
			if (c->inlen == sizeof(c->in)) {
				c->close_after = true;
				conn_reply_error(c, 431, "request head too large");
				continue;
			}
		}
		c->st.want_write = false;
		long n = stream_read(&c->st, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n == -EAGAIN) {
			io_want(loop, &c->io, c->st.want_write ? EPOLLOUT : EPOLLIN);
			return;
		}
		if (n <= 0)
			goto close;
		c->inlen += (size_t)n;
		timer_start(loop, &c->timer, ECHO_IDLE_MS);
	}
close:
	conn_close(c);
}

static void conn_io_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)loop;
	(void)revents;
	conn_pump(container_of(io, struct echo_conn, io));
}

static void conn_timer_cb(struct loop *loop, struct timer *t)
{
	(void)loop;
	conn_close(container_of(t, struct echo_conn, timer));
}

/* net/server: a connection accepted on this worker's listener. */
static void echo_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *ss)
{
	struct echo_worker *w = wstate;
	struct echo_conn *c = w->nconns < ECHO_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;

	(void)tag;
	if (!c || stream_init(&c->st, fd, w->srv->ctx)) {
		free(c);
		close(fd);
		return;
	}
	c->w = w;
	struct ipaddr peer;
	ipaddr_from_sockaddr((const struct sockaddr *)ss, &peer);
	if (ipaddr_format(&peer, c->peer, sizeof(c->peer)))
		snprintf(c->peer, sizeof(c->peer), "unknown");
	http_head_init(&c->head, HTTP_REQUEST, ECHO_MAX_HEADERS);
	io_init(&c->io, fd, conn_io_cb);
	timer_init(&c->timer, conn_timer_cb);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	timer_start(w->loop, &c->timer, ECHO_IDLE_MS);
	conn_pump(c);
}

static int echo_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct echo_server *srv = arg;
	struct echo_worker *w = &srv->workers[id];

	w->srv = srv;
	w->loop = loop;
	*wstate = w;
	return 0;
}

/* Drain: a connection waiting for its next request closes now; one with a request or an
 * answer under way finishes it (the answer says Connection: close) and then closes. */
static void echo_drain(void *wstate)
{
	struct echo_worker *w = wstate;

	w->stopping = true;
	for (struct echo_conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->draining)
			continue;   /* answered and half-closed: its own short timer ends it */
		if (!c->inlen && c->outoff >= c->outlen)
			conn_close(c);
		else
			c->close_after = true;
	}
}

static bool echo_busy(void *wstate)
{
	return ((struct echo_worker *)wstate)->nconns > 0;
}

static void echo_teardown(void *wstate)
{
	struct echo_worker *w = wstate;

	while (w->conns)
		conn_close(w->conns);
	loop_run_deferred(w->loop);
}

/* SIGHUP: echo has no configuration to read again. */
static void echo_reload(void *arg)
{
	(void)arg;
	log_info("echo: SIGHUP: nothing to reload");
}

static unsigned echo_stop(void *arg, int sig)
{
	(void)arg;
	(void)sig;
	return ECHO_STOP_MS;
}

static const struct server_ops echo_ops = {
	.worker_init = echo_worker_init, .accept = echo_accept, .drain = echo_drain,
	.busy = echo_busy, .teardown = echo_teardown, .reload = echo_reload, .stop = echo_stop,
};

struct echo_server *echo_open(const struct sockaddr *sa, socklen_t sl, const char *listen_text,
			      const char *cert, const char *key, unsigned nworkers, char *err,
			      size_t cap)
{
	struct echo_server *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv || !nworkers || !(srv->workers = calloc(nworkers, sizeof(*srv->workers)))) {
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	srv->nworkers = nworkers;
	if (cert && !(srv->ctx = tls_server_ctx(cert, key, err, cap)))
		goto fail;
	/* several workers bind with SO_REUSEPORT; net/server probes the address without it
	 * first, so a second process cannot join the port */
	struct server_config scfg = { .ops = &echo_ops, .arg = srv, .nworkers = nworkers,
				      .reuseport = nworkers > 1 };
	if ((rc = server_new(&scfg, &srv->rt))) {
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	struct server_listen l = { .len = sl, .backlog = 512, .what = "echo listener" };
	size_t bad;
	memcpy(&l.addr, sa, sl);
	if ((rc = server_start(srv->rt, &l, 1, NULL, &bad))) {
		if (bad == 0)
			snprintf(err, cap, "cannot listen on %s: %s%s", listen_text, strerror(-rc),
				 rc == -EADDRINUSE && nworkers > 1 ? " (another process listens there)" : "");
		else
			snprintf(err, cap, "cannot create the event loop: %s", strerror(-rc));
		goto fail;
	}
	return srv;
fail:
	echo_close(srv);
	return NULL;
}

bool echo_is_tls(const struct echo_server *srv)
{
	return srv->ctx != NULL;
}

int echo_run(struct echo_server *srv)
{
	return server_run(srv->rt) ? -1 : 0;
}

void echo_close(struct echo_server *srv)
{
	if (!srv)
		return;
	server_free(srv->rt);   /* tears down workers that never ran */
	free(srv->workers);
	SSL_CTX_free(srv->ctx);
	free(srv);
}
