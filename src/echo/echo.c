/* echo.c: the `iplock echo` server (echo.h): tells callers the address they came from, as
 * httpbin's /ip does, so teams can host their own check target for `iplock verify`.
 *
 * Owns: the server, its connections and its answers. May include: core, net, http.
 *
 * One thread on the core epoll loop. Each connection owns a fixed input buffer (the cap of a
 * request head), a fixed output buffer and an idle timer; requests are answered in order
 * (keep-alive and pipelining), a request with a body is answered and the connection closed
 * (nothing here needs a body, so none is ever read). */
#include "echo/echo.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/log.h"
#include "core/loop.h"
#include "http/head.h"
#include "http/reply.h"
#include "net/addr.h"
#include "net/sock.h"
#include "net/tls.h"

#define ECHO_IN_CAP      8192    /* a request head must fit: 431 otherwise */
#define ECHO_OUT_CAP     1024    /* the longest answer (an escaped 400 reason) fits */
#define ECHO_MAX_CONNS   1024    /* beyond this, new connections are closed at once */
#define ECHO_MAX_REQS    1000    /* requests per connection before it is closed */
#define ECHO_IDLE_MS     10000   /* no byte for this long (handshake, head, keep-alive): close */
#define ECHO_MAX_HEADERS 64
#define ECHO_DRAIN_MS    1000    /* lingering close: how long unread bytes are discarded */
#define ECHO_DRAIN_MAX   (256 * 1024)

struct echo_server {
	struct loop *loop;
	struct io lio;
	struct io sig_io;
	SSL_CTX *ctx;                /* NULL for plain HTTP */
	struct echo_conn *conns;     /* every open connection, for shutdown */
	size_t nconns;
};

struct echo_conn {
	struct echo_server *srv;
	struct echo_conn *prev, *next;
	struct io io;
	struct timer timer;
	struct deferred dfr;
	SSL *ssl;
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
	struct echo_server *srv = c->srv;

	if (c->closed)
		return;
	c->closed = true;
	timer_stop(srv->loop, &c->timer);
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	io_close(srv->loop, &c->io);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	loop_defer(srv->loop, &c->dfr, conn_free);
}

static long conn_read(struct echo_conn *c, void *buf, size_t len)
{
	return c->ssl ? tls_read(c->ssl, buf, len) : sock_read(c->io.fd, buf, len);
}

static long conn_write(struct echo_conn *c, const void *buf, size_t len)
{
	return c->ssl ? tls_write(c->ssl, buf, len) : sock_write(c->io.fd, buf, len);
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
	if (!llhttp_should_keep_alive(&h->parser) || c->nreq >= ECHO_MAX_REQS)
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
	struct loop *loop = c->srv->loop;

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
			long n = conn_write(c, c->out + c->outoff, c->outlen - c->outoff);
			if (n == -EAGAIN) {
				io_want(loop, &c->io, c->ssl && SSL_want_read(c->ssl) ? EPOLLIN : EPOLLOUT);
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
				if (c->ssl)
					SSL_shutdown(c->ssl);   /* best effort close_notify */
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
		long n = conn_read(c, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (n == -EAGAIN) {
			io_want(loop, &c->io, c->ssl && SSL_want_write(c->ssl) ? EPOLLOUT : EPOLLIN);
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

static void accept_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct echo_server *srv = container_of(io, struct echo_server, lio);

	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = sock_accept(io->fd, &ss, &sl);
		if (fd < 0)
			return;
		struct echo_conn *c = srv->nconns < ECHO_MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = srv;
		struct ipaddr peer;
		ipaddr_from_sockaddr((struct sockaddr *)&ss, &peer);
		if (ipaddr_format(&peer, c->peer, sizeof(c->peer)))
			snprintf(c->peer, sizeof(c->peer), "unknown");
		http_head_init(&c->head, HTTP_REQUEST, ECHO_MAX_HEADERS);
		io_init(&c->io, fd, conn_io_cb);
		timer_init(&c->timer, conn_timer_cb);
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		if (srv->ctx) {
			c->ssl = SSL_new(srv->ctx);
			if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
				ERR_clear_error();
				conn_close(c);
				continue;
			}
			SSL_set_accept_state(c->ssl);
		}
		timer_start(loop, &c->timer, ECHO_IDLE_MS);
		conn_pump(c);
	}
}

static void signal_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct signalfd_siginfo si;

	(void)revents;
	if (read(io->fd, &si, sizeof(si)) > 0)
		loop_stop(loop);
}

struct echo_server *echo_open(const struct sockaddr *sa, socklen_t sl, const char *listen_text,
			      const char *cert, const char *key, char *err, size_t cap)
{
	struct echo_server *srv = calloc(1, sizeof(*srv));

	if (!srv) {
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	srv->lio.fd = srv->sig_io.fd = -1;
	if (cert && !(srv->ctx = tls_server_ctx(cert, key, err, cap)))
		goto fail;
	int lrc = loop_new(&srv->loop);
	if (lrc) {
		snprintf(err, cap, "cannot create the event loop: %s", strerror(-lrc));
		goto fail;
	}
	int lfd = sock_listen(sa, sl, false, 512);
	if (lfd < 0) {
		snprintf(err, cap, "cannot listen on %s: %s", listen_text, strerror(-lfd));
		goto fail;
	}
	io_init(&srv->lio, lfd, accept_cb);
	io_want(srv->loop, &srv->lio, EPOLLIN);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd >= 0) {
		io_init(&srv->sig_io, sfd, signal_cb);
		io_want(srv->loop, &srv->sig_io, EPOLLIN);
	}
	signal(SIGPIPE, SIG_IGN);
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
	return loop_run(srv->loop) ? -1 : 0;
}

void echo_close(struct echo_server *srv)
{
	if (!srv)
		return;
	if (srv->loop) {
		while (srv->conns)
			conn_close(srv->conns);
		if (srv->lio.fd >= 0)
			io_close(srv->loop, &srv->lio);
		if (srv->sig_io.fd >= 0)
			io_close(srv->loop, &srv->sig_io);
		loop_run_deferred(srv->loop);
		loop_free(srv->loop);
	}
	SSL_CTX_free(srv->ctx);
	free(srv);
}
