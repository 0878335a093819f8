/* server.c (console): connections of `iplock console` on net/server (console.h).
 *
 * One worker (the store connection is the worker's: SQLite and libpq connections are not
 * shared between threads), plain or TLS (net/stream). Each connection reads a request head
 * (at most CON_HEAD_MAX bytes), then a body framed by Content-Length only (a chunked body is a
 * 411, a declared length above CONSOLE_BODY_MAX a 413, both answered before any body byte is
 * read, and the connection closed), hands the request to api.c and writes the answer with the
 * security headers every answer carries (CSP without inline script, nosniff, no framing, no
 * referrer, no-store for the API). One JSON access-log line per request on stderr: method,
 * path, status, actor, time; never a header, a body or a query string (search text stays out
 * of logs). */
#include "console/console.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "console/api.h"
#include "console/assets.h"
#include "console/parse.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/head.h"
#include "http/reply.h"
#include "net/addr.h"
#include "net/server.h"
#include "net/stream.h"
#include "net/tls.h"
#include "store/store.h"

#define CON_HEAD_MAX     16384   /* a request head must fit: 431 otherwise */
#define CON_IN_CAP       (CON_HEAD_MAX + CONSOLE_BODY_MAX)
#define CON_MAX          512     /* connections; beyond this, new ones are closed at once */
#define CON_MAX_REQS     1000    /* requests per connection */
#define CON_IDLE_MS      30000   /* no byte for this long: close */
#define CON_MAX_HEADERS  64
#define CON_DRAIN_MS     1000
#define CON_DRAIN_MAX    (256 * 1024)
#define CON_STOP_MS      3000

#define SECURITY_HEADERS \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; " \
	"form-action 'self'; frame-ancestors 'none'\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"X-Frame-Options: DENY\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"Cross-Origin-Opener-Policy: same-origin\r\n"

struct console {
	struct console_config cfg;      /* a copy: the routes and egress list are owned here */
	SSL_CTX *ctx;
	struct server *rt;
	struct store *st;
	struct api *api;
	struct loop *loop;
	struct con *conns;
	size_t nconns;
	bool stopping;
};

struct con {
	struct console *srv;
	struct con *prev, *next;
	struct io io;
	struct timer timer;
	struct deferred dfr;
	struct stream st;
	char peer[IPADDR_STRLEN];
	struct http_head head;
	bool have_head;
	size_t need;                    /* head + body bytes of the request being read */
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	unsigned nreq;
	bool close_after, draining, closed;
	size_t drained;
	char in[CON_IN_CAP];
};

static void con_free(struct deferred *d)
{
	struct con *c = container_of(d, struct con, dfr);

	free(c->out);
	free(c);
}

static void con_close(struct con *c)
{
	struct console *s = c->srv;

	if (c->closed)
		return;
	c->closed = true;
	timer_stop(s->loop, &c->timer);
	stream_free(&c->st);
	io_close(s->loop, &c->io);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	/* a request may have held a key's or a password's text: gone with the connection */
	explicit_bzero(c->in, c->inlen);
	loop_defer(s->loop, &c->dfr, con_free);
}

/* Queues an answer: head (status, type, security headers, extra lines) and body. */
static void con_answer(struct con *c, int status, const char *ctype, const void *body, size_t blen,
		       const char *extra, bool api, bool head_only)
{
	char head[2048], hdrs[API_EXTRA_MAX + 1024];
	long hn;

	snprintf(hdrs, sizeof(hdrs), SECURITY_HEADERS "%s%s", api ? "" : "Cache-Control: no-cache\r\n",
		 extra ? extra : "");
	hn = http_reply_head(head, sizeof(head), status, ctype, blen, hdrs,
			     (api ? HTTP_REPLY_NO_STORE : 0) | (c->close_after ? HTTP_REPLY_CLOSE : 0));
	if (hn < 0)
		hn = 0;
	if (status == 204) {
		/* no body and no Content-Length on a 204 (RFC 9110 8.6) */
		char *cl = strstr(head, "Content-Length: 0\r\n");
		if (cl) {
			memmove(cl, cl + 19, strlen(cl + 19) + 1);
			hn -= 19;
		}
		blen = 0;
	}
	if (head_only)
		blen = 0;
	free(c->out);
	c->out = malloc((size_t)hn + blen);
	if (!c->out) {
		c->outlen = 0;
		c->close_after = true;
		return;
	}
	memcpy(c->out, head, (size_t)hn);
	if (blen)
		memcpy(c->out + hn, body, blen);
	c->outlen = (size_t)hn + blen;
	c->outoff = 0;
}

static void con_error(struct con *c, int status, const char *code, const char *msg)
{
	char body[600];
	long n = http_error_json(body, sizeof(body), status == 401 ? "authentication_error" :
				 status >= 500 ? "api_error" : "invalid_request_error", code, msg);

	c->close_after = true;
	con_answer(c, status, "application/json", body, n < 0 ? 0 : (size_t)n, NULL, true, false);
}

static const char *hdr_val(const struct http_head *h, const char *base, const char *name,
			   size_t *len)
{
	int i = http_head_find(h, base, name);

	if (i < 0) {
		*len = 0;
		return NULL;
	}
	*len = h->hdrs[i].val_len;
	return base + h->hdrs[i].val_off;
}

static void access_log(struct con *c, const struct api_req *rq, int status, const char *actor,
		       uint64_t start_ms)
{
	struct jline j;

	jline_begin(&j);
	jline_time(&j, "time");
	jline_str(&j, "client", c->peer);
	jline_strn(&j, "method", rq->method, rq->method_len);
	jline_strn(&j, "path", rq->path, rq->path_len > 200 ? 200 : rq->path_len);
	jline_int(&j, "status", status);
	jline_str(&j, "actor", actor[0] ? actor : NULL);
	jline_uint(&j, "ms", loop_clock_ms() - start_ms);
	jline_end(&j);
	jline_write(&j, 2);
}

/* A whole request (head and body) is in c->in. */
static void con_request(struct con *c)
{
	struct http_head *h = &c->head;
	struct api_req rq = { 0 };
	struct api_resp *rs = calloc(1, sizeof(*rs));
	uint64_t t0 = loop_clock_ms();
	const char *url = c->in + h->url_off;
	size_t ulen = h->url_len;
	const char *q = memchr(url, '?', ulen);

	c->nreq++;
	if (!llhttp_should_keep_alive(&h->parser) || c->nreq >= CON_MAX_REQS || c->srv->stopping)
		c->close_after = true;
	if (!rs) {
		con_error(c, 500, "store_error", "out of memory");
		return;
	}
	rq.method = llhttp_method_name((llhttp_method_t)h->parser.method);
	rq.method_len = strlen(rq.method);
	rq.path = url;
	rq.path_len = q ? (size_t)(q - url) : ulen;
	rq.query = q ? q + 1 : NULL;
	rq.query_len = q ? ulen - rq.path_len - 1 : 0;
	rq.cookie = hdr_val(h, c->in, "cookie", &rq.cookie_len);
	rq.csrf = hdr_val(h, c->in, "x-csrf-token", &rq.csrf_len);
	rq.auth = hdr_val(h, c->in, "authorization", &rq.auth_len);
	rq.ctype = hdr_val(h, c->in, "content-type", &rq.ctype_len);
	rq.body = c->in + h->head_len;
	rq.body_len = c->need - h->head_len;
	rq.has_body = rq.body_len > 0;
	rq.peer = c->peer;
	rq.tls = stream_is_tls(&c->st);
	if (rq.path_len == 0 || rq.path[0] != '/') {
		con_error(c, 400, "invalid_field", "request target must be a path");
		free(rs);
		return;
	}
	struct timespec ts0, ts1;
	clock_gettime(CLOCK_MONOTONIC, &ts0);
	api_handle(c->srv->api, &rq, rs);
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	/* the time spent answering (store included), for clients and benchmarks (W3C Server-Timing) */
	double dur = (double)(ts1.tv_sec - ts0.tv_sec) * 1e3 + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e6;
	size_t el = strlen(rs->extra);
	snprintf(rs->extra + el, sizeof(rs->extra) - el, "Server-Timing: app;dur=%.3f\r\n", dur);
	bool api = !rs->static_body && !(rs->ctype && strncmp(rs->ctype, "application/json", 16));
	con_answer(c, rs->status, rs->ctype ? rs->ctype : "application/json",
		   rs->static_body ? (const void *)rs->static_body : rs->body, rs->body_len,
		   rs->extra, api, h->parser.method == HTTP_HEAD);
	access_log(c, &rq, rs->status, rs->actor, t0);
	if (rs->body) {
		/* an answer may hold a key's or a token's text, shown once */
		explicit_bzero(rs->body, rs->body_len);
		free(rs->body);
	}
	free(rs);
}

/* The head is complete: decide how much body to read, or answer now. */
static bool con_head_done(struct con *c)
{
	struct http_head *h = &c->head;

	c->have_head = true;
	if (h->head_len > CON_HEAD_MAX) {
		con_error(c, 431, "bad_request", "request head too large");
		return false;
	}
	if (h->parser.flags & F_CHUNKED) {
		con_error(c, 411, "invalid_field", "send the body with Content-Length (chunked bodies "
			  "are not taken)");
		return false;
	}
	uint64_t cl = (h->parser.flags & F_CONTENT_LENGTH) ? h->parser.content_length : 0;
	if (cl > CONSOLE_BODY_MAX) {
		char msg[80];
		snprintf(msg, sizeof(msg), "request body larger than %d bytes", CONSOLE_BODY_MAX);
		con_error(c, 413, "body_too_large", msg);
		return false;
	}
	c->need = h->head_len + (size_t)cl;
	return true;
}

static void con_pump(struct con *c)
{
	struct loop *loop = c->srv->loop;
	SSL *ssl = c->st.ssl;

	for (int guard = 0; guard < 4 * CON_MAX_REQS + 64; guard++) {
		if (c->draining) {
			long n = read(c->io.fd, c->in, sizeof(c->in));
			if (n < 0 && errno == EAGAIN) {
				io_want(loop, &c->io, EPOLLIN);
				return;
			}
			if (n <= 0 || (c->drained += (size_t)n) > CON_DRAIN_MAX)
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
			explicit_bzero(c->out, c->outlen);
			c->outlen = c->outoff = 0;
			if (c->close_after) {
				stream_shutdown(&c->st);
				shutdown(c->io.fd, SHUT_WR);
				c->draining = true;
				timer_start(loop, &c->timer, CON_DRAIN_MS);
				continue;
			}
		}
		if (c->close_after)
			goto close;
		if (c->inlen && !c->have_head) {
			enum http_parse_result r = http_head_parse(&c->head, c->in, c->inlen);
			if (r == HTTP_DONE) {
				con_head_done(c);
				continue;
			}
			if (r == HTTP_ERROR) {
				con_error(c, c->head.err_status ? c->head.err_status : 400, "bad_request",
					  c->head.err ? c->head.err : "malformed request");
				continue;
			}
			if (c->inlen >= CON_HEAD_MAX) {
				con_error(c, 431, "bad_request", "request head too large");
				continue;
			}
		}
		if (c->have_head && c->inlen >= c->need) {
			con_request(c);
			explicit_bzero(c->in, c->need);
			memmove(c->in, c->in + c->need, c->inlen - c->need);
			c->inlen -= c->need;
			c->have_head = false;
			c->need = 0;
			http_head_init(&c->head, HTTP_REQUEST, CON_MAX_HEADERS);
			continue;
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
		timer_start(loop, &c->timer, CON_IDLE_MS);
	}
close:
	con_close(c);
}

static void con_io_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	(void)loop;
	(void)revents;
	con_pump(container_of(io, struct con, io));
}

static void con_timer_cb(struct loop *loop, struct timer *t)
{
	(void)loop;
	con_close(container_of(t, struct con, timer));
}

static void srv_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *ss)
{
	struct console *s = wstate;
	struct con *c = s->nconns < CON_MAX ? malloc(sizeof(*c)) : NULL;

	(void)tag;
	if (c)
		memset(c, 0, offsetof(struct con, in));
	if (!c || stream_init(&c->st, fd, s->ctx)) {
		free(c);
		close(fd);
		return;
	}
	c->srv = s;
	struct ipaddr peer;
	ipaddr_from_sockaddr((const struct sockaddr *)ss, &peer);
	if (ipaddr_format(&peer, c->peer, sizeof(c->peer)))
		snprintf(c->peer, sizeof(c->peer), "unknown");
	http_head_init(&c->head, HTTP_REQUEST, CON_MAX_HEADERS);
	io_init(&c->io, fd, con_io_cb);
	timer_init(&c->timer, con_timer_cb);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	timer_start(s->loop, &c->timer, CON_IDLE_MS);
	con_pump(c);
}

static int srv_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct console *s = arg;

	(void)id;
	s->loop = loop;
	*wstate = s;
	return 0;
}

static void srv_drain(void *wstate)
{
	struct console *s = wstate;

	s->stopping = true;
	for (struct con *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->draining)
			continue;
		if (!c->inlen && c->outoff >= c->outlen)
			con_close(c);
		else
			c->close_after = true;
	}
}

static bool srv_busy(void *wstate)
{
	return ((struct console *)wstate)->nconns > 0;
}

static void srv_teardown(void *wstate)
{
	struct console *s = wstate;

	while (s->conns)
		con_close(s->conns);
	loop_run_deferred(s->loop);
}

static void srv_reload(void *arg)
{
	(void)arg;
	log_info("console: SIGHUP: restart the console to read its configuration again");
}

static unsigned srv_stop(void *arg, int sig)
{
	(void)arg;
	(void)sig;
	return CON_STOP_MS;
}

static const struct server_ops console_ops = {
	.worker_init = srv_worker_init, .accept = srv_accept, .drain = srv_drain,
	.busy = srv_busy, .teardown = srv_teardown, .reload = srv_reload, .stop = srv_stop,
};

struct console *console_open(struct console_config *cfg, char *err, size_t cap)
{
	struct console *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		console_config_free(cfg);
		snprintf(err, cap, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;   /* takes over the routes and the egress list */
	if (cfg->tls_cert[0] && !(s->ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, cap)))
		goto fail;
	if ((rc = store_open(cfg->db, &s->st))) {
		char shown[512];
		store_target_display(cfg->db, shown, sizeof(shown));
		snprintf(err, cap, "%s", store_errmsg(NULL));
		goto fail;
	}
	if (!(s->api = api_new(&s->cfg, s->st))) {
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	struct server_config scfg = { .ops = &console_ops, .arg = s, .nworkers = 1 };
	if ((rc = server_new(&scfg, &s->rt))) {
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	struct server_listen l = { .len = cfg->addrlen, .backlog = 256, .what = "console listener" };
	size_t bad;
	memcpy(&l.addr, &cfg->addr, cfg->addrlen);
	if ((rc = server_start(s->rt, &l, 1, NULL, &bad))) {
		if (bad == 0)
			snprintf(err, cap, "cannot listen on %s: %s", cfg->listen_text, strerror(-rc));
		else
			snprintf(err, cap, "cannot create the event loop: %s", strerror(-rc));
		goto fail;
	}
	return s;
fail:
	console_close(s);
	return NULL;
}

bool console_is_tls(const struct console *s)
{
	return s->ctx != NULL;
}

int console_run(struct console *s)
{
	return server_run(s->rt) ? -1 : 0;
}

void console_close(struct console *s)
{
	if (!s)
		return;
	server_free(s->rt);
	api_free(s->api);
	store_close(s->st);
	SSL_CTX_free(s->ctx);
	console_config_free(&s->cfg);
	free(s);
}
