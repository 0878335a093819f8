/* echo.c: the `iplock echo` server (echo.h): tells callers the address they came from, as
 * httpbin's /ip does, so teams can host their own check target for `iplock verify`.
 *
 * Owns: the server, its connections and its answers. May include: core, net, http.
 *
 * On net/server (workers, SO_REUSEPORT listener, signals, drain) and http/h1conn (the
 * connection loop); each worker has its own loop and connections. Each connection owns a fixed
 * input buffer (the cap of a request head) and a fixed output buffer; requests are answered in
 * order (keep-alive and pipelining), a request with a body is answered and the connection
 * closed (nothing here needs a body, so none is ever read). */
#include "echo/echo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/log.h"
#include "core/loop.h"
#include "http/h1conn.h"
#include "http/head.h"
#include "http/reply.h"
#include "net/addr.h"
#include "net/server.h"
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
	struct h1conn_set conns;     /* every open connection, for drain and teardown */
};

struct echo_server {
	SSL_CTX *ctx;                /* NULL for plain HTTP */
	struct server *rt;
	unsigned nworkers;
	struct echo_worker *workers;
};

struct echo_conn {
	struct h1conn c;             /* its in and out point below */
	char in[ECHO_IN_CAP];
	char out[ECHO_OUT_CAP];
};

static void conn_free(struct h1conn *c)
{
	free(container_of(c, struct echo_conn, c));
}

/* Queue one answer; the body is JSON text already escaped. HEAD gets the head only. */
static void conn_reply(struct h1conn *c, int status, const char *body, bool head_only)
{
	size_t blen = strlen(body);
	long n = http_reply_head(c->out, ECHO_OUT_CAP, status, "application/json", blen,
				 status == 405 ? "Allow: GET, HEAD\r\n" : NULL,
				 HTTP_REPLY_NO_STORE | (c->close_after ? HTTP_REPLY_CLOSE : 0));
	/* ECHO_OUT_CAP holds the longest head and body */
	c->outlen = n < 0 ? 0 : (size_t)n;
	if (!head_only && c->outlen + blen < ECHO_OUT_CAP) {
		memcpy(c->out + c->outlen, body, blen);
		c->outlen += blen;
	}
	c->outoff = 0;
}

static void conn_reply_error(struct h1conn *c, int status, const char *reason)
{
	char esc[256], body[400];
	size_t n = json_escape(esc, sizeof(esc) - 1, reason, strlen(reason));

	esc[n] = '\0';
	snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", esc);
	conn_reply(c, status, body, false);
}

/* The head is complete: nothing here reads a body, so the request is its head. */
static bool conn_head(struct h1conn *c)
{
	c->need = c->head.head_len;
	return true;
}

/* A complete head is in c->in: decide the answer. */
static void conn_handle(struct h1conn *c)
{
	struct http_head *h = &c->head;
	const char *url = c->in + h->url_off;
	size_t ulen = h->url_len;
	uint8_t method = h->parser.method;
	bool head_only = method == HTTP_HEAD;

	/* a body is never read: answer, then close so its bytes are not taken for a request */
	if ((h->parser.flags & (F_CHUNKED | F_CONTENT_LENGTH)) &&
	    !((h->parser.flags & F_CONTENT_LENGTH) && h->parser.content_length == 0))
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
}

static const struct h1conn_ops echo_conn_ops = {
	.head_max = ECHO_IN_CAP, .max_headers = ECHO_MAX_HEADERS, .max_reqs = ECHO_MAX_REQS,
	.idle_ms = ECHO_IDLE_MS, .drain_ms = ECHO_DRAIN_MS, .drain_max = ECHO_DRAIN_MAX,
	.answer_on_stop = true,
	.head = conn_head, .request = conn_handle, .error = conn_reply_error, .free = conn_free,
};

/* net/server: a connection accepted on this worker's listener. */
static void echo_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *ss)
{
	struct echo_worker *w = container_of(wstate, struct echo_worker, conns);
	struct echo_conn *ec = w->conns.n < ECHO_MAX_CONNS ? calloc(1, sizeof(*ec)) : NULL;

	(void)tag;
	if (ec) {
		ec->c.in = ec->in;
		ec->c.incap = sizeof(ec->in);
		ec->c.out = ec->out;
	}
	h1conn_open(&w->conns, ec ? &ec->c : NULL, fd, ss, w->srv->ctx);
}

static int echo_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct echo_server *srv = arg;
	struct echo_worker *w = &srv->workers[id];

	w->srv = srv;
	h1conn_set_init(&w->conns, &echo_conn_ops, loop, wstate);
	return 0;
}

/* SIGHUP: echo has no configuration to read again. */
static void echo_reload(void *arg)
{
	(void)arg;
	log_info("echo: SIGHUP: nothing to reload");
}

static const struct server_ops echo_ops = {
	.worker_init = echo_worker_init, .accept = echo_accept, .reload = echo_reload,
	.drain = h1conn_worker_drain, .busy = h1conn_worker_busy, .teardown = h1conn_worker_teardown,
};

struct echo_server *echo_open(const struct sockaddr *sa, socklen_t sl, const char *listen_text,
			      const char *cert, const char *key, unsigned nworkers, char *err,
			      size_t cap)
{
	struct echo_server *srv = calloc(1, sizeof(*srv));

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
				      .reuseport = nworkers > 1, .stop_ms = ECHO_STOP_MS };
	if (server_open_one(&scfg, sa, sl, 512, "echo listener", listen_text, &srv->rt, err, cap))
		goto fail;
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
