/* server.c (console): connections of `iplock console` on net/server and http/h1conn (console.h).
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

#include <openssl/ssl.h>

#include "console/api.h"
#include "console/assets.h"
#include "console/parse.h"
#include "core/log.h"
#include "core/loop.h"
#include "http/h1conn.h"
#include "http/head.h"
#include "http/reply.h"
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
	struct h1conn_set conns;
};

struct con {
	struct console *srv;
	struct h1conn c;                /* its in points below; its out is malloc'ed per answer */
	char in[CON_IN_CAP];
};

static void con_free(struct h1conn *c)
{
	free(c->out);
	free(container_of(c, struct con, c));
}

/* Queues an answer: head (status, type, security headers, extra lines) and body. */
static void con_answer(struct h1conn *c, int status, const char *ctype, const void *body, size_t blen,
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

static void con_error(struct h1conn *c, int status, const char *code, const char *msg)
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

static void access_log(struct h1conn *c, const struct api_req *rq, int status, const char *actor,
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
static void con_request(struct h1conn *c)
{
	struct console *srv = container_of(c, struct con, c)->srv;
	struct http_head *h = &c->head;
	struct api_req rq = { 0 };
	struct api_resp *rs = calloc(1, sizeof(*rs));
	uint64_t t0 = loop_clock_ms();
	const char *url = c->in + h->url_off;
	size_t ulen = h->url_len;
	const char *q = memchr(url, '?', ulen);

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
	api_handle(srv->api, &rq, rs);
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
static bool con_head_done(struct h1conn *c)
{
	struct http_head *h = &c->head;

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

/* The parser's and the loop's errors: a malformed request, a head too large. */
static void con_bad(struct h1conn *c, int status, const char *reason)
{
	con_error(c, status, "bad_request", reason);
}

static const struct h1conn_ops con_ops = {
	.head_max = CON_HEAD_MAX, .max_headers = CON_MAX_HEADERS, .max_reqs = CON_MAX_REQS,
	.idle_ms = CON_IDLE_MS, .drain_ms = CON_DRAIN_MS, .drain_max = CON_DRAIN_MAX,
	.wipe = true,
	.head = con_head_done, .request = con_request, .error = con_bad, .free = con_free,
};

static void srv_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *ss)
{
	struct console *s = container_of(wstate, struct console, conns);
	struct con *c = s->conns.n < CON_MAX ? malloc(sizeof(*c)) : NULL;

	(void)tag;
	if (c) {
		memset(c, 0, offsetof(struct con, in));
		c->srv = s;
		c->c.in = c->in;
		c->c.incap = sizeof(c->in);
	}
	h1conn_open(&s->conns, c ? &c->c : NULL, fd, ss, s->ctx);
}

static int srv_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct console *s = arg;

	(void)id;
	h1conn_set_init(&s->conns, &con_ops, loop, wstate);
	return 0;
}

static void srv_reload(void *arg)
{
	(void)arg;
	log_info("console: SIGHUP: restart the console to read its configuration again");
}

static const struct server_ops console_ops = {
	.worker_init = srv_worker_init, .accept = srv_accept, .reload = srv_reload,
	.drain = h1conn_worker_drain, .busy = h1conn_worker_busy, .teardown = h1conn_worker_teardown,
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
	struct server_config scfg = { .ops = &console_ops, .arg = s, .nworkers = 1,
				      .stop_ms = CON_STOP_MS };
	if (server_open_one(&scfg, (const struct sockaddr *)&cfg->addr, cfg->addrlen, 256,
			    "console listener", cfg->listen_text, &s->rt, err, cap))
		goto fail;
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
