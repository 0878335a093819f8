/* server.c (~2,000 lines, one file on purpose: the request checks, the decision and the two
 * sides of the reverse proxy share one connection state machine and read best together; the
 * shared HTTP pieces already live in http/): the gate's connections.
 * Each connection is a small state machine on two sides:
 * the request side (PROXY header, TLS handshake, head, body) and the response side (local
 * answer, upstream connect, upstream head, upstream body). pump() makes every step that can
 * progress, then sets epoll interest from what is still pending (level-triggered), so no
 * event is ever lost between the two sockets. Bodies are streamed in 16 KiB buffers. */
#include "gate/server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/loop.h"
#include "gate/usage.h"
#include "http/exchange.h"
#include "http/head.h"
#include "http/hop.h"
#include "http/reply.h"
#include "http/target.h"
#include "net/server.h"
#include "net/sock.h"
#include "net/stream.h"
#include "net/tls.h"

#define REFRESH_MS      1       /* key store change check at most this often */
#define METRICS_PATH    "/_iplock/metrics" /* metrics = on: the store's freshness */
#define CHAIN_LOG_MAX   256     /* bytes of X-Forwarded-For kept for the access log */
#define XFF_MAX         2048    /* joined X-Forwarded-For values read for the decision */
#define DISCARD_MAX     (1 << 20) /* body bytes of a refused request read and dropped */
_Static_assert(GATE_MAX_LISTEN <= SERVER_MAX_LISTENERS, "net/server holds every listener");

struct gate_server;

struct gate_worker;

/* One worker's state: its key cache (its own SQLite connection) and connections. Its thread,
 * loop and listeners (SO_REUSEPORT when several) are net/server's. Nothing is shared between
 * workers but the config, the TLS context and the access log descriptor. */
struct gate_worker {
	struct gate_server *srv;
	int index;
	struct loop *loop;
	struct keycache *kc;
	struct gate_usage *usage;       /* NULL unless usage = on */
	struct gconn *conns;    /* every open connection, for shutdown */
	bool draining;          /* stopping: no new request, the ones in flight finish */
};

struct gate_server {
	const struct gate_config *cfg;
	SSL_CTX *ssl;
	SSL_CTX *up_ssl;        /* https:// upstream: client context, peer verified */
	struct server *rt;      /* net/server: threads, listeners, signals */
	char init_err[4608];    /* why a worker could not start (db paths are long) */
	int log_fd;             /* -1 = no access log */
	uint64_t next_id;       /* connection ids, shared (atomic) */
	struct gate_worker *workers;
	int n_workers;
};

enum rq_state {
	RQ_PROXY_HDR = 0,       /* waiting for the PROXY protocol header */
	RQ_TLS,                 /* TLS handshake */
	RQ_HEAD,                /* reading a request head */
	RQ_BODY,                /* streaming (or discarding) the request body */
	RQ_DONE,                /* request read; waiting for its response to finish */
};

enum rs_state {
	RS_IDLE = 0,            /* no response under way */
	RS_LOCAL,               /* an answer made here is in cout */
	RS_CONNECT,             /* connecting to upstream */
	RS_HEAD,                /* reading the upstream response head */
	RS_BODY,                /* streaming the upstream response body */
	RS_DONE,                /* upstream response read to its end */
};

struct gconn {
	struct gconn *prev, *next;
	struct gate_server *srv;
	struct gate_worker *w;
	const struct gate_listen *lcfg;
	uint64_t id;
	struct io cio, uio;
	struct timer timer;
	struct deferred dfr;
	struct stream cs;       /* the client: plain or TLS (net/stream) */
	SSL *ussl;              /* https:// upstream */
	bool up_hs;             /* TCP connected, TLS handshake with the upstream under way */
	bool ussl_want_write;   /* that handshake waits for the socket to be writable */
	bool up_writable;       /* upstream reported EPOLLOUT/ERR since the last check */
	/* Read hints (plain sockets): false after a read found the socket drained, true again
	 * when epoll reports it readable. Interest is level-triggered and asks for EPOLLIN
	 * whenever a step would read, so skipping the read that would only say EAGAIN loses
	 * nothing and saves a system call per request on each side. */
	bool c_readable, up_readable;
	enum rq_state rq;
	enum rs_state rs;
	struct buf *cin, *cout, *uin, *uout;
	size_t cfed, ufed;      /* cin/uin bytes [off, fed) are parsed body bytes to forward */
	struct pp_reader *pp;   /* RQ_PROXY_HDR: the header read so far (net/proxyproto) */
	struct http_head req;
	struct http_exchange x; /* the upstream side of the current request (http/exchange) */
	struct ipaddr peer, client;
	char peer_txt[IPADDR_STRLEN]; /* peer as text, formatted once */
	uint16_t peer_port;
	enum gate_client ckind;
	bool pp_unknown;        /* PROXY header gave no usable source */
	bool client_eof, up_eof;
	bool keep_alive;        /* the client side stays open after this exchange */
	bool up_reuse;          /* the upstream connection may serve the next request */
	bool discard;           /* request body is read and dropped (refused request) */
	size_t discarded;
	bool head_req;
	uint64_t head_start_ms; /* first byte of the current request head (0 = none yet) */
	uint64_t deadline_ms;   /* when the timer should act; the armed one may be earlier */
	int closing;            /* 0 open, 1 close asked, 2 closed and queued for free */
	bool logged;
	/* per request, for the access log */
	struct timespec t0;
	int status;
	bool is_auth;
	const char *reason;
	bool allowed;
	bool would_refuse;      /* allowed by a report-only allowlist the client is outside of */
	char method[16];
	char path[256];         /* the path decided on */
	char path_in[256];      /* path_normalize = rewrite: the path that came in */
	bool rewritten;         /* the target was decided on (and forwarded) in canonical form */
	char reason_buf[48];    /* "path_<why>" for a refused target */
	char key_id[STORE_ID_MAX];
	enum key_type key_type;
	enum key_mode key_mode;
	char chain[CHAIN_LOG_MAX];
};

static void pump(struct gconn *c);

/* ---- small helpers ---- */

static bool ensure_buf(struct buf **b)
{
	if (!*b)
		*b = buf_get();
	return *b != NULL;
}

static void release_if_empty(struct buf **b, size_t *fed)
{
	if (*b && (*b)->off == (*b)->len) {
		buf_put(*b);
		*b = NULL;
		if (fed)
			*fed = 0;
	}
}

/* Slides unconsumed bytes to the front, keeping a fed offset in step. */
static void compact(struct buf *b, size_t *fed)
{
	if (!b || !b->off)
		return;
	if (fed)
		*fed = *fed >= b->off ? *fed - b->off : 0;
	buf_compact(b);
}

static int appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, buf_room(b), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= buf_room(b))
		return -ENOSPC;
	b->len += (size_t)n;
	return 0;
}

/* Bounded copy with NUL, no printf (per-request fields). */
static void copy_field(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- upstream I/O (plain or TLS) ---- */

static long u_read(struct gconn *c, void *p, size_t n)
{
	if (!c->ussl)
		return sock_read(c->uio.fd, p, n);
	ERR_clear_error();
	int r = SSL_read(c->ussl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ussl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:      /* no renegotiation in TLS 1.3; EPOLLOUT follows uout */
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		return -EIO;
	}
}

static long u_write(struct gconn *c, const void *p, size_t n)
{
	if (!c->ussl)
		return sock_write(c->uio.fd, p, n);
	ERR_clear_error();
	int r = SSL_write(c->ussl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ussl, r)) {
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

/* Sends data[*off..end) to the upstream (to_up) or the client until it would block: 0 all sent,
 * 1 blocked, -1 failed (closing is set). *progress once a byte went. */
static int send_all(struct gconn *c, bool to_up, const char *data, size_t *off, size_t end,
		    bool *progress)
{
	while (end > *off) {
		long n = to_up ? u_write(c, data + *off, end - *off)
			       : stream_write(&c->cs, data + *off, end - *off);
		if (n == -EAGAIN)
			return 1;
		if (n < 0) {
			c->closing = true;
			return -1;
		}
		*off += (size_t)n;
		*progress = true;
	}
	return 0;
}

/* ---- access log ---- */

static void access_log(struct gconn *c)
{
	struct gate_server *s = c->srv;
	char peer[IPADDR_STRLEN] = "", client[IPADDR_STRLEN] = "";
	struct jline j;

	if (c->logged || !c->method[0])
		return;
	c->logged = true;
	if (s->log_fd < 0)
		return;
	memcpy(peer, c->peer_txt, sizeof(peer));
	if (c->ckind == GATE_CLIENT_PEER)
		memcpy(client, c->peer_txt, sizeof(client));
	else if (c->ckind != GATE_CLIENT_UNKNOWN && c->client.family)
		ipaddr_format(&c->client, client, sizeof(client));
	jline_begin(&j);
	jline_time(&j, "time");
	jline_uint(&j, "conn", c->id);
	jline_str(&j, "mode", c->is_auth ? "forward-auth" : "reverse-proxy");
	jline_str(&j, "method", c->method);
	jline_str(&j, "path", c->path);
	if (c->path_in[0])
		jline_str(&j, "path_in", c->path_in);
	jline_str(&j, "key_id", c->key_id[0] ? c->key_id : NULL);
	if (c->key_id[0]) {
		jline_str(&j, "key_type", key_type_name(c->key_type));
		jline_str(&j, "key_mode", key_mode_name(c->key_mode));
	}
	jline_str(&j, "client", client[0] ? client : NULL);
	jline_str(&j, "client_from", c->ckind == GATE_CLIENT_XFF ? "x-forwarded-for" :
		  c->ckind == GATE_CLIENT_UNKNOWN ? "unknown" :
		  c->lcfg->pp != PP_OFF ? "proxy-protocol" : "peer");
	jline_str(&j, "peer", peer);
	jline_str(&j, "chain", c->chain[0] ? c->chain : NULL);
	jline_str(&j, "decision", c->allowed ? "allow" : "deny");
	jline_str(&j, "reason", c->reason ? c->reason : "");
	jline_int(&j, "status", c->status);
	jline_uint(&j, "duration_us", (uint64_t)(elapsed_ms(&c->t0) * 1000.0));
	jline_end(&j);
	jline_write(&j, s->log_fd);
}

/* ---- connection life cycle ---- */

static void conn_unlink(struct gconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (c->w->conns == c)
		c->w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void conn_free(struct deferred *d)
{
	struct gconn *c = container_of(d, struct gconn, dfr);

	conn_unlink(c);
	stream_free(&c->cs);
	if (c->ussl)
		SSL_free(c->ussl);
	buf_put(c->cin);
	buf_put(c->cout);
	buf_put(c->uin);
	buf_put(c->uout);
	free(c->pp);
	free(c);
}

/* Closes the upstream connection (and its TLS session, if any). */
static void up_close(struct gconn *c)
{
	if (c->ussl) {
		SSL_free(c->ussl);
		c->ussl = NULL;
	}
	c->up_hs = false;
	io_close(c->w->loop, &c->uio);
}

static void conn_close(struct gconn *c)
{
	struct loop *loop = c->w->loop;

	if (c->closing == 2)
		return;
	if (c->method[0] && !c->logged) {
		if (!c->status)
			c->status = 499; /* closed before a response was complete */
		access_log(c);
	}
	timer_stop(loop, &c->timer);
	/* TLS clients tell a complete close-delimited body from a cut one by close_notify */
	if (stream_is_tls(&c->cs) && c->cio.fd != -1)
		stream_shutdown(&c->cs);
	io_close(loop, &c->cio);
	up_close(c);
	if (c->closing != 2) {
		c->closing = 2;
		loop_defer(loop, &c->dfr, conn_free);
	}
}

static void timer_fired(struct loop *loop, struct timer *t)
{
	struct gconn *c = container_of(t, struct gconn, timer);
	uint64_t now = loop_now(loop);

	if (c->deadline_ms > now) {
		/* armed before activity moved the deadline on: not due yet */
		timer_start(loop, t, c->deadline_ms - now);
		return;
	}
	if (c->rs == RS_CONNECT || c->rs == RS_HEAD) {
		/* the upstream never answered: tell the client rather than hang up on it */
		up_close(c);
		c->rs = RS_IDLE;
		c->status = 504;
	}
	c->closing = true;
	pump(c);
}

static void update_interest(struct gconn *c)
{
	struct loop *loop = c->w->loop;
	uint32_t ce = 0, ue = 0;
	bool c_out_pending = buf_pending(c->cout) ||
		(c->uin && (c->rs == RS_BODY || c->rs == RS_DONE) && c->ufed > c->uin->off);

	if (c->cio.fd != -1) {
		bool want_in = false;
		switch (c->rq) {
		case RQ_PROXY_HDR:
		case RQ_TLS:
			want_in = true;
			break;
		case RQ_HEAD:
			want_in = c->rs == RS_IDLE && (!c->cin || buf_room(c->cin) > 0 || c->cin->off);
			break;
		case RQ_BODY:
			want_in = !c->cin || buf_room(c->cin) > 0 || c->cin->off;
			break;
		case RQ_DONE:
			break;
		}
		/* A drained plain socket keeps EPOLLIN while its request is served: nothing fires
		 * until the client sends again, and turning interest off and on around every
		 * request cost two epoll_ctl calls. If bytes do come early (pipelining), the event
		 * sets c_readable and interest drops here until they can be read. */
		if ((want_in || (!stream_is_tls(&c->cs) && !c->c_readable && c->rq != RQ_PROXY_HDR)) &&
		    !c->client_eof)
			ce |= EPOLLIN;
		/* an SSL read that must write first: wait for writable only while reading */
		if (c_out_pending || (c->cs.want_write && (want_in || c->rq == RQ_TLS)))
			ce |= EPOLLOUT;
		io_want(loop, &c->cio, ce);
	}
	if (c->uio.fd != -1) {
		/* during a TLS handshake only its own wants count (the request waits in uout) */
		if ((c->rs == RS_CONNECT && c->up_hs) ? c->ussl_want_write :
		    (c->rs == RS_CONNECT || buf_pending(c->uout) ||
		     (c->cin && c->cfed > c->cin->off && !c->discard)))
			ue |= EPOLLOUT;
		if ((c->rs == RS_HEAD || c->rs == RS_BODY || c->rs == RS_IDLE) && !c->up_eof &&
		    (!c->uin || buf_room(c->uin) > 0 || c->uin->off))
			ue |= EPOLLIN;
		else if (c->rs != RS_CONNECT && !c->up_readable && !c->up_eof)
			ue |= EPOLLIN; /* drained: stays quiet until bytes come (as for the client) */
		else if (c->rs == RS_CONNECT && c->up_hs && !c->ussl_want_write)
			ue |= EPOLLIN; /* the handshake waits for the server's flight */
		io_want(loop, &c->uio, ue);
	}
}

/* An answer made here: Stripe envelope (or empty for 200) into cout. */
static void local_response(struct gconn *c, int status, const char *extra_headers,
			   const char *body, size_t blen)
{
	if (!ensure_buf(&c->cout)) {
		c->closing = true;
		return;
	}
	c->cout->off = c->cout->len = 0;
	if (appendf(c->cout, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n", status,
		    http_status_text(status), blen, extra_headers ? extra_headers : "",
		    c->keep_alive ? "" : "Connection: close\r\n") ||
	    buf_append(c->cout, body, blen)) {
		c->closing = true;
		return;
	}
	c->status = status;
	c->rs = RS_LOCAL;
}

/* A local answer already in cout gets "Connection: close" before its blank line. */
static void local_response_close(struct gconn *c)
{
	struct buf *b = c->cout;
	char *end = memmem(b->data + b->off, b->len - b->off, "\r\n\r\n", 4);
	static const char hdr[] = "\r\nConnection: close";

	if (!end || buf_room(b) < sizeof(hdr) - 1) {
		c->closing = true;
		return;
	}
	size_t at = (size_t)(end - b->data);
	memmove(b->data + at + sizeof(hdr) - 1, b->data + at, b->len - at);
	memcpy(b->data + at, hdr, sizeof(hdr) - 1);
	b->len += sizeof(hdr) - 1;
}

static void plain_error(struct gconn *c, int status, const char *type, const char *msg)
{
	char body[512];
	char esc[300];

	size_t el = json_escape(esc, sizeof(esc) - 1, msg, strlen(msg));
	esc[el] = '\0';
	int n = snprintf(body, sizeof(body), "{\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}\n",
			 type, esc);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	c->keep_alive = false;
	local_response(c, status, NULL, body, (size_t)n);
}

/* ---- request handling ---- */

static bool hdr_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && !strncasecmp(name, want, n);
}

/* Value of the first header called name, or NULL. */
static const char *hdr_get(const struct http_head *h, const char *base, const char *name,
			   size_t *len)
{
	int i = http_head_find(h, base, name);

	if (i < 0)
		return NULL;
	*len = h->hdrs[i].val_len;
	return base + h->hdrs[i].val_off;
}

/* The gate's own fields on top of the shared hop-by-hop rule: identity headers are the
 * gate's to write, X-Forwarded-For is rewritten as one field. */
static bool skip_own(void *arg, const char *n, size_t l)
{
	(void)arg;
	return (l >= 9 && !strncasecmp(n, "x-iplock-", 9)) || hdr_is(n, l, "x-forwarded-for");
}

static int upstream_connect(struct gconn *c)
{
	const struct gate_config *cfg = c->srv->cfg;
	int fd = socket(cfg->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&cfg->upstream, cfg->upstream_len) == -1 &&
	    errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	sock_set_nodelay(fd);
	if (c->srv->up_ssl) {
		const struct gate_config *ucfg = c->srv->cfg;
		struct ipaddr ip;
		c->ussl = SSL_new(c->srv->up_ssl);
		bool is_ip = ipaddr_parse(ucfg->upstream_host, strlen(ucfg->upstream_host), &ip) == NULL;
		/* the certificate must name the configured host (or IP), else the handshake fails */
		if (!c->ussl || SSL_set_fd(c->ussl, fd) != 1 ||
		    (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ussl), ucfg->upstream_host) != 1 :
		     (SSL_set_tlsext_host_name(c->ussl, ucfg->upstream_host) != 1 ||
		      SSL_set1_host(c->ussl, ucfg->upstream_host) != 1))) {
			if (c->ussl)
				SSL_free(c->ussl);
			c->ussl = NULL;
			close(fd);
			return -ENOMEM;
		}
		SSL_set_connect_state(c->ussl);
	}
	c->up_hs = false;
	c->ussl_want_write = false;
	io_init(&c->uio, fd, c->uio.cb);
	c->up_writable = false;
	c->up_readable = false; /* nothing to read before the request is sent */
	c->up_eof = false;
	return 0;
}

static int append_mem(struct buf *b, const char *p, size_t n)
{
	if (buf_room(b) < n)
		return -ENOSPC;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static int append_str(struct buf *b, const char *s)
{
	return append_mem(b, s, strlen(s));
}

/* The key's identity headers, appended to b (nothing without a key). */
static int append_key_headers(struct gconn *c, const struct gate_decision *d, struct buf *b)
{
	char client[IPADDR_STRLEN] = "unknown";

	if (!d->key)
		return 0;
	if (c->ckind == GATE_CLIENT_PEER && c->peer_txt[0])
		memcpy(client, c->peer_txt, sizeof(client));
	else if (c->ckind != GATE_CLIENT_UNKNOWN && c->client.family)
		ipaddr_format(&c->client, client, sizeof(client));
	const char *tn = key_type_name(d->key->type), *mn = key_mode_name(d->key->mode);
	if (http_field_append(b, "X-Iplock-Key-Id", 15, d->key->id, strlen(d->key->id)) ||
	    http_field_append(b, "X-Iplock-Key-Type", 17, tn, strlen(tn)) ||
	    http_field_append(b, "X-Iplock-Key-Mode", 17, mn, strlen(mn)) ||
	    http_field_append(b, "X-Iplock-Client", 15, client, strlen(client)))
		return -ENOSPC;
	return 0;
}

static void key_headers(struct gconn *c, const struct gate_decision *d, char *out, size_t cap)
{
	struct buf *b = buf_get();

	out[0] = '\0';
	if (b && !append_key_headers(c, d, b) && b->len < cap) {
		memcpy(out, b->data, b->len);
		out[b->len] = '\0';
	}
	buf_put(b);
}

/* Builds the upstream request head in uout: hop-by-hop and X-Iplock-* headers from the
 * client are dropped, the key's identity is added. No printf: this runs per request. */
static int build_upstream_head(struct gconn *c, const struct gate_decision *d,
			       const char *path, size_t plen, const char *query, size_t qlen,
			       const char *xff, size_t xlen)
{
	const char *base = c->cin->data + c->cin->off;
	const struct http_head *h = &c->req;
	struct buf *b;

	if (!ensure_buf(&c->uout))
		return -ENOMEM;
	b = c->uout;
	b->off = b->len = 0;
	/* the target decided on, in origin-form: canonical path, query byte for byte */
	if (append_str(b, llhttp_method_name(h->parser.method)) || append_mem(b, " ", 1) ||
	    append_mem(b, path, plen) || (qlen && append_mem(b, query, qlen)) ||
	    append_mem(b, " HTTP/1.1\r\n", 11))
		return -ENOSPC;
	if (http_fields_copy(h, base, b, skip_own, NULL))
		return -ENOSPC;
	/* one X-Forwarded-For: the chain received plus the peer, as proxies append it */
	const char *peer = c->peer_txt[0] ? c->peer_txt : "unknown";
	if (append_str(b, "X-Forwarded-For: ") ||
	    (xlen && (append_mem(b, xff, xlen) || append_mem(b, ", ", 2))) ||
	    append_str(b, peer) || append_mem(b, "\r\n", 2))
		return -ENOSPC;
	if (append_key_headers(c, d, b) || append_mem(b, "\r\n", 2))
		return -ENOSPC;
	return 0;
}

/* How many fields called name. */
static size_t hdr_count(const struct http_head *h, const char *base, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < h->nhdrs; i++)
		n += http_hdr_name_is(h, base, i, name);
	return n;
}

/* A header-supplied method (forward-auth) must be a plain token, as on a request line. */
static bool method_token_ok(const char *m, size_t n)
{
	if (n == 0 || n > 15)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((m[i] >= 'A' && m[i] <= 'Z') || m[i] == '-' || m[i] == '_'))
			return false;
	return true;
}

/* One credential, one method, one Host: what could let the gate and the API read one
 * request differently is refused before any decision. NULL, or a reason token with a
 * message for the client. */
static const char *request_ambiguity(const struct http_head *h, const char *base,
				     const char **msg)
{
	static const char *const overrides[] = { "x-http-method-override", "x-http-method",
						 "x-method-override" };

	if (hdr_count(h, base, "authorization") > 1) {
		*msg = "More than one Authorization header: send exactly one API key.";
		return "duplicate_credentials";
	}
	if (hdr_count(h, base, "proxy-authorization")) {
		*msg = "Proxy-Authorization is not accepted: send the API key in the Authorization "
		       "header only.";
		return "proxy_authorization";
	}
	for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++)
		if (hdr_count(h, base, overrides[i])) {
			*msg = "Method override headers (X-HTTP-Method-Override, X-HTTP-Method, "
			       "X-Method-Override) are not accepted: send the real method.";
			return "method_override";
		}
	if (hdr_count(h, base, "host") > 1) {
		*msg = "More than one Host header.";
		return "duplicate_host";
	}
	return NULL;
}

/* Absolute-form "http://authority/path?q": the authority must be the Host field; *path is
 * where the origin-form part starts. NULL, or a reason token with a message. */
static const char *absolute_form(const struct http_head *h, const char *base, const char *u,
				 size_t n, size_t *path, const char **msg)
{
	size_t s, hl = 0;
	const char *host = hdr_get(h, base, "host", &hl);

	if (n >= 7 && !strncasecmp(u, "http://", 7))
		s = 7;
	else if (n >= 8 && !strncasecmp(u, "https://", 8))
		s = 8;
	else {
		*path = 0;
		return NULL;    /* not absolute-form: the canonicaliser judges it */
	}
	size_t e = s;
	while (e < n && u[e] != '/' && u[e] != '?' && u[e] != '#')
		e++;
	if (!host || hl != e - s || strncasecmp(host, u + s, hl)) {
		*msg = "The authority in the request target differs from the Host header.";
		return "host_mismatch";
	}
	*path = e;
	return NULL;
}

/* A refusal made before any key decision: 400 with Stripe's envelope (and, for forward
 * auth, the X-Iplock-Status/X-Iplock-Error headers nginx reads); the connection closes. */
static void refuse_request(struct gconn *c, const char *reason, const char *msg)
{
	char body[640], esc[512], hdrs[900] = "";

	size_t el = json_escape(esc, sizeof(esc) - 1, msg, strlen(msg));
	esc[el] = '\0';
	int n = snprintf(body, sizeof(body),
			 "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"%s\"}}\n", esc);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	if (c->is_auth && n > 0) {
		int hl = snprintf(hdrs, sizeof(hdrs), "X-Iplock-Status: 400\r\nX-Iplock-Error: %.*s\r\n",
				  n - 1, body);
		if (hl < 0 || (size_t)hl >= sizeof(hdrs))
			hdrs[0] = '\0';
	}
	c->reason = reason;
	c->allowed = false;
	c->would_refuse = false;
	c->keep_alive = false;
	local_response(c, 400, hdrs, body, (size_t)n);
}

/* The target the decision is made on, in t: canonical, or refused (reason_buf names why and
 * msg is the client's line). rewrite: a non-canonical target that has a canonical form is
 * decided on (and forwarded) in that form. */
static bool canon_target(struct gconn *c, const char *u, size_t n, bool rewrite,
			 struct http_target *t, char *msg, size_t cap)
{
	enum http_target_result r = http_target_canon(u, n, t);

	if (r == HTTP_TARGET_CANONICAL || (r == HTTP_TARGET_REWRITTEN && rewrite)) {
		c->rewritten = r == HTTP_TARGET_REWRITTEN;
		return true;
	}
	snprintf(c->reason_buf, sizeof(c->reason_buf), "path_%s", t->reason);
	snprintf(msg, cap, "The request path is refused: it contains %s%s", http_target_reason_text(t->reason),
		 r == HTTP_TARGET_REWRITTEN ? "; send it in canonical form (see the gate's docs)." : ".");
	return false;
}

/* Prometheus text about this worker's copy of the key store. */
static int store_metrics_text(const struct keycache *kc, char *buf, size_t cap)
{
	struct keycache_stats ks;
	int n;

	keycache_stats(kc, &ks);
	n = snprintf(buf, cap,
		     "# TYPE iplock_gate_store_version gauge\n"
		     "iplock_gate_store_version{backend=\"%s\"} %lld\n"
		     "# TYPE iplock_gate_store_staleness_seconds gauge\n"
		     "iplock_gate_store_staleness_seconds %.3f\n"
		     "# TYPE iplock_gate_store_reconnects_total counter\n"
		     "iplock_gate_store_reconnects_total %llu\n"
		     "# TYPE iplock_gate_store_connected gauge\n"
		     "iplock_gate_store_connected %d\n"
		     "# TYPE iplock_gate_store_stale gauge\n"
		     "iplock_gate_store_stale %d\n"
		     "# TYPE iplock_gate_keys gauge\n"
		     "iplock_gate_keys %zu\n",
		     ks.backend, (long long)ks.version, ks.staleness_s,
		     (unsigned long long)ks.reconnects, ks.connected, keycache_stale(kc),
		     keycache_count(kc));
	return n < 0 ? 0 : (size_t)n >= cap ? (int)cap - 1 : n;
}

static void handle_request(struct gconn *c)
{
	struct gate_server *s = c->srv;
	const struct gate_config *cfg = s->cfg;
	const char *base = c->cin->data + c->cin->off;
	struct http_head *h = &c->req;
	struct gate_input in = { 0 };
	struct gate_decision d;
	char xff[XFF_MAX], tmsg[256];
	size_t xlen = 0, l;
	const char *v, *pre = NULL, *pre_msg = NULL;
	struct http_target own, chk;    /* the request's own target; the one checked */
	const struct http_target *dec = &own;

	own.path[0] = chk.path[0] = '\0';
	own.path_len = chk.path_len = 0;
	own.query = NULL;
	own.query_len = 0;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	c->logged = false;
	c->status = 0;
	c->key_id[0] = '\0';
	c->chain[0] = '\0';
	c->rewritten = false;
	c->path_in[0] = '\0';
	const char *mname = llhttp_method_name(h->parser.method);
	copy_field(c->method, sizeof(c->method), mname, strlen(mname));
	const char *url = base + h->url_off;
	size_t url_len = h->url_len;
	{
		const char *q = memchr(url, '?', url_len);
		size_t pl = q ? (size_t)(q - url) : url_len;
		/* the query string may carry secrets: it is never logged */
		copy_field(c->path, sizeof(c->path), url, pl);
	}
	c->keep_alive = llhttp_should_keep_alive(&h->parser);
	c->head_req = h->parser.method == HTTP_HEAD;
	bool has_body = http_request_has_body(h);

	/* every X-Forwarded-For line, joined in arrival order */
	for (size_t i = 0; i < h->nhdrs; i++) {
		if (!http_hdr_name_is(h, base, i, "x-forwarded-for"))
			continue;
		size_t vl = h->hdrs[i].val_len;
		if (xlen + vl + 1 >= sizeof(xff)) {
			xlen = sizeof(xff); /* too long to judge: unknown */
			break;
		}
		if (xlen)
			xff[xlen++] = ',';
		memcpy(xff + xlen, base + h->hdrs[i].val_off, vl);
		xlen += vl;
	}
	if (xlen && xlen < sizeof(xff))
		copy_field(c->chain, sizeof(c->chain), xff, xlen);
	if (c->pp_unknown) {
		c->ckind = GATE_CLIENT_UNKNOWN;
		memset(&c->client, 0, sizeof(c->client));
	} else if (xlen == sizeof(xff)) {
		c->ckind = cfg->trusted && cidr_set_contains(cfg->trusted, &c->peer) ?
			   GATE_CLIENT_UNKNOWN : GATE_CLIENT_PEER;
		c->client = c->peer;
	} else {
		c->ckind = gate_client_addr(&c->peer, xlen ? xff : NULL, xlen, cfg->trusted,
					    &c->client);
	}

	/* the request's own target: absolute-form only with the Host it names, then canonical */
	size_t path_at = 0;
	pre = request_ambiguity(h, base, &pre_msg);
	if (!pre)
		pre = absolute_form(h, base, url, url_len, &path_at, &pre_msg);
	bool own_ok = !pre && canon_target(c, url + path_at, url_len - path_at,
					   cfg->path_norm == GATE_PATH_REWRITE &&
					   cfg->mode != GATE_MODE_AUTH, &own, tmsg, sizeof(tmsg));
	if (!pre && !own_ok) {
		pre = c->reason_buf;
		pre_msg = tmsg;
	}

	/* metrics = on: the gate's own page (its canonical path), before forward-auth reads headers */
	bool metrics_req = cfg->metrics && own_ok && !strcmp(own.path, METRICS_PATH) &&
			   !strcmp(c->method, "GET");
	/* forward-auth: the checked request is described by headers, else it is this one */
	c->is_auth = cfg->mode == GATE_MODE_AUTH ||
		     (cfg->mode == GATE_MODE_BOTH && own_ok && own.path_len == strlen(cfg->auth_path) &&
		      !strcmp(own.path, cfg->auth_path));
	in.method = c->method;
	in.method_len = strlen(c->method);
	if (c->is_auth && !pre) {
		const char *ou = NULL, *om = NULL;
		size_t oul = 0, oml = 0;
		if ((v = hdr_get(h, base, "x-original-method", &l)) ||
		    (v = hdr_get(h, base, "x-forwarded-method", &l))) {
			om = v;
			oml = l;
		}
		if ((v = hdr_get(h, base, "x-original-uri", &l)) ||
		    (v = hdr_get(h, base, "x-forwarded-uri", &l))) {
			ou = v;
			oul = l;
		}
		/* one description of the checked request: two that could differ are refused */
		if (hdr_count(h, base, "x-original-method") + hdr_count(h, base, "x-forwarded-method") > 1 ||
		    hdr_count(h, base, "x-original-uri") + hdr_count(h, base, "x-forwarded-uri") > 1) {
			pre = "ambiguous_original_request";
			pre_msg = "More than one X-Original-URI/X-Forwarded-Uri or "
				  "X-Original-Method/X-Forwarded-Method header.";
		} else if (om && !method_token_ok(om, oml)) {
			pre = "bad_method";
			pre_msg = "The checked method is not a valid HTTP method.";
		} else {
			if (om)
				copy_field(c->method, sizeof(c->method), om, oml);
			in.method = c->method;
			in.method_len = strlen(c->method);
			if (ou) {
				const char *q = memchr(ou, '?', oul);
				copy_field(c->path, sizeof(c->path), ou, q ? (size_t)(q - ou) : oul);
				/* the front proxy forwards what it forwards: never rewritten here */
				if (!canon_target(c, ou, oul, false, &chk, tmsg, sizeof(tmsg))) {
					pre = c->reason_buf;
					pre_msg = tmsg;
				}
				dec = &chk;
			}
		}
	}
	if (!pre) {
		/* the access log names the path decided on (and what came in, when rewritten) */
		if (c->rewritten)
			copy_field(c->path_in, sizeof(c->path_in), c->path, strlen(c->path));
		copy_field(c->path, sizeof(c->path), dec->path, dec->path_len);
	}
	in.target = dec->path;
	in.target_len = dec->path_len;
	in.auth = hdr_get(h, base, "authorization", &in.auth_len);
	in.has_context = (v = hdr_get(h, base, "stripe-context", &l)) && l > 0;
	in.has_version = (v = hdr_get(h, base, "stripe-version", &l)) && l > 0;
	in.client_kind = c->ckind;
	in.client = c->client;
	in.now = (int64_t)time(NULL);

	bool stale = false;
	if (!pre) {
		int rr = keycache_refresh(c->w->kc, loop_now(c->w->loop), REFRESH_MS);
		if (rr < 0)
			log_warn("gate: key store refresh failed: %d (serving the last good copy)", rr);
		gate_decide(c->w->kc, &cfg->routes, &in, &d);
		/* on_stale = deny: past max_staleness no decision is made on data that old */
		stale = !metrics_req && cfg->stale_deny && keycache_stale(c->w->kc);
		if (stale) {
			d.outcome = GATE_INVALID_KEY;
			d.status = 503;
			d.reason = "store_stale";
		}
		c->reason = metrics_req ? "metrics" : d.reason;
		c->allowed = metrics_req || d.outcome == GATE_ALLOW;
		c->would_refuse = c->allowed && d.would_refuse;
		if (c->would_refuse)
			c->reason = "ip_would_refuse";
		if (d.key) {
			copy_field(c->key_id, sizeof(c->key_id), d.key->id, strlen(d.key->id));
			c->key_type = d.key->type;
			c->key_mode = d.key->mode;
			if (c->w->usage && !metrics_req) {
				char ctext[IPADDR_STRLEN] = "unknown";
				if (c->ckind != GATE_CLIENT_UNKNOWN)
					ipaddr_format(&c->client, ctext, sizeof(ctext));
				gate_usage_note(c->w->usage, d.key->id, ctext, c->allowed,
						c->would_refuse, in.now, loop_now(c->w->loop));
			}
		}
	} else {
		c->allowed = false;
		c->would_refuse = false;
	}

	size_t head_len = h->head_len;
	if (!c->allowed || c->is_auth || metrics_req) {
		char body[2048], hdrs[1024];
		int n = 0;
		hdrs[0] = '\0';
		if (pre) {
			refuse_request(c, pre, pre_msg);
		} else if (metrics_req) {
			n = store_metrics_text(c->w->kc, body, sizeof(body));
			local_response(c, 200, "Content-Type: text/plain; version=0.0.4\r\n", body,
				       (size_t)n);
		} else if (c->allowed) {
			key_headers(c, &d, hdrs, sizeof(hdrs));
			if (c->would_refuse && strlen(hdrs) + sizeof(GATE_WOULD_REFUSE_HEADER) < sizeof(hdrs))
				strcat(hdrs, GATE_WOULD_REFUSE_HEADER);
			local_response(c, 200, hdrs, "", 0);
		} else {
			n = stale ? snprintf(body, sizeof(body), "{\"error\":{\"message\":\"The key "
					     "store has not been reachable for over %u seconds; requests "
					     "are refused until it is (on_stale = deny).\",\"type\":"
					     "\"api_error\"}}\n", cfg->max_staleness_s) :
				gate_error_body(&d, cfg->account[0] ? cfg->account : NULL, body,
						sizeof(body));
			if (n < 0)
				n = 0;
			if (c->is_auth && n > 0) {
				/* nginx auth_request drops the body: hand it over in a header too */
				int hl = snprintf(hdrs, sizeof(hdrs),
						  "X-Iplock-Status: %d\r\nX-Iplock-Error: %.*s\r\n",
						  d.status, n - 1, body);
				if (hl < 0 || (size_t)hl >= sizeof(hdrs))
					hdrs[0] = '\0';
			}
			local_response(c, d.status, hdrs, body, (size_t)n);
		}
		c->cin->off += head_len;
		c->cfed = c->cin->off;
		if (has_body && hdr_get(h, base, "expect", &l)) {
			/* a client waiting for 100 Continue sends no body after a final answer, and
			 * we cannot tell where its next request starts: close after answering */
			if (c->keep_alive && c->cout && c->rs == RS_LOCAL)
				local_response_close(c);
			c->keep_alive = false;
			c->rq = RQ_DONE;
		} else if (has_body) {
			http_body_begin(h, false);
			c->discard = true;
			c->discarded = 0;
			c->rq = RQ_BODY;
		} else {
			c->rq = RQ_DONE;
		}
		return;
	}

	if (build_upstream_head(c, &d, own.path, own.path_len, own.query, own.query_len,
				xff, xlen < sizeof(xff) ? xlen : 0)) {
		plain_error(c, 431, "invalid_request_error", "Request header too large.");
		c->rq = RQ_DONE;
		return;
	}
	c->cin->off += head_len;
	c->cfed = c->cin->off;
	c->discard = false;
	if (has_body) {
		http_body_begin(h, false);
		c->rq = RQ_BODY;
	} else {
		c->rq = RQ_DONE;
	}
	http_exchange_begin(&c->x, c->head_req, has_body, c->uio.fd != -1);
	if (c->uio.fd == -1) {
		int e = upstream_connect(c);
		if (e) {
			log_warn("gate: upstream %s: %s", cfg->upstream_text, strerror(-e));
			plain_error(c, 502, "api_error", "The upstream API server is unreachable.");
			c->reason = "upstream_unreachable";
			c->rq = has_body ? RQ_DONE : c->rq;
			return;
		}
		c->rs = RS_CONNECT;
	} else {
		c->rs = RS_HEAD;
	}
	c->up_reuse = true;
}

/* ---- steps ---- */

static bool step_proxy_header(struct gconn *c)
{
	struct pp_info pi;
	const char *err;

	if (!c->pp) {
		if (!(c->pp = calloc(1, sizeof(*c->pp)))) {
			c->closing = true;
			return true;
		}
		c->pp->want = c->lcfg->pp;
	}
	/* the same reader as the proxy's listeners: exactly the header's bytes are taken, so what
	 * follows (a TLS ClientHello) stays in the socket */
	int r = proxyproto_recv(c->cio.fd, c->pp, &pi, &err);
	if (r == 0)
		return false;   /* nothing more to read now: epoll says when */
	if (r < 0) {
		if (r == -EPROTO)
			log_info("gate: conn %llu: %s", (unsigned long long)c->id, err);
		c->closing = true;
		return true;
	}
	free(c->pp);
	c->pp = NULL;
	if (pi.kind == PP_KIND_PROXY) {
		c->peer = pi.src;
		c->peer_port = pi.sport;
		if (ipaddr_format(&c->peer, c->peer_txt, sizeof(c->peer_txt)))
			c->peer_txt[0] = '\0';
	} else if (pi.kind == PP_KIND_UNKNOWN) {
		c->pp_unknown = true;
	}
	c->rq = stream_is_tls(&c->cs) ? RQ_TLS : RQ_HEAD;
	return true;
}

static bool step_client_in(struct gconn *c)
{
	if (c->rq == RQ_PROXY_HDR)
		return step_proxy_header(c);
	if (c->rq == RQ_TLS) {
		int r = stream_handshake(&c->cs);
		if (r == 1) {
			c->rq = RQ_HEAD;
			return true;
		}
		if (r < 0)
			c->closing = true;
		return c->closing;
	}
	if (c->client_eof || c->closing)
		return false;
	if (c->rq != RQ_BODY && !(c->rq == RQ_HEAD && c->rs == RS_IDLE))
		return false;
	if (!ensure_buf(&c->cin)) {
		c->closing = true;
		return true;
	}
	if (!buf_room(c->cin))
		compact(c->cin, &c->cfed);
	if (!buf_room(c->cin))
		return false;
	if (!stream_is_tls(&c->cs) && !c->c_readable)
		return false;   /* drained at the last read; epoll says when more comes */
	c->cs.want_write = false;
	size_t want = buf_room(c->cin);
	long n = stream_read(&c->cs, c->cin->data + c->cin->len, want);
	if (n > 0) {
		c->cin->len += (size_t)n;
		/* a short read took all the socket held (TLS may hold more: always read it) */
		if ((size_t)n < want)
			c->c_readable = false;
		return true;
	}
	if (n == 0) {
		c->client_eof = true;
		return true;
	}
	if (n == -EAGAIN)
		c->c_readable = false;
	else
		c->closing = true;
	return n != -EAGAIN;
}

/* Access-log fields for a request refused before its head could be read. */
static void log_unparsed(struct gconn *c, const char *reason)
{
	snprintf(c->method, sizeof(c->method), "-");
	c->path[0] = '\0';
	c->path_in[0] = '\0';
	c->key_id[0] = '\0';
	c->chain[0] = '\0';
	c->logged = false;
	c->allowed = false;
	c->would_refuse = false;
	c->is_auth = false;
	c->client = c->peer;
	c->ckind = c->pp_unknown ? GATE_CLIENT_UNKNOWN : GATE_CLIENT_PEER;
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	c->reason = reason;
}

static bool step_request(struct gconn *c)
{
	if (c->rq == RQ_HEAD && c->rs == RS_IDLE) {
		if (!buf_pending(c->cin)) {
			if (c->client_eof)
				c->closing = true;
			return c->closing;
		}
		compact(c->cin, &c->cfed);
		enum http_parse_result r = http_head_parse(&c->req, c->cin->data, c->cin->len);
		if (r == HTTP_MORE) {
			if (!buf_room(c->cin)) {
				log_unparsed(c, "header_too_large");
				plain_error(c, 431, "invalid_request_error", "Request header too large.");
				c->rq = RQ_DONE;
				return true;
			}
			if (c->client_eof)
				c->closing = true;
			return c->closing;
		}
		if (r == HTTP_ERROR) {
			plain_error(c, c->req.err_status ? c->req.err_status : 400,
				    "invalid_request_error", c->req.err ? c->req.err : "Bad request.");
			log_unparsed(c, "bad_request");
			c->rq = RQ_DONE;
			return true;
		}
		handle_request(c);
		return true;
	}
	if (c->rq == RQ_BODY) {
		bool progress = false;
		if (c->cin && c->cfed < c->cin->len) {
			size_t used = 0;
			enum http_parse_result r = http_body_feed(&c->req, c->cin->data + c->cfed,
								  c->cin->len - c->cfed, &used);
			c->cfed += used;
			progress = used > 0;
			if (r == HTTP_ERROR) {
				c->closing = true;
				return true;
			}
			if (r == HTTP_DONE) {
				c->rq = RQ_DONE;
				progress = true;
			}
		}
		if (c->discard && c->cin) {
			c->discarded += c->cfed - c->cin->off;
			c->cin->off = c->cfed;
			if (c->discarded > DISCARD_MAX) {
				c->keep_alive = false;
				c->rq = RQ_DONE;
			}
		}
		if (c->rq == RQ_BODY && c->client_eof) {
			c->closing = true;
			return true;
		}
		return progress;
	}
	return false;
}

static bool step_upstream_out(struct gconn *c)
{
	bool progress = false;
	int sent;

	if (c->uio.fd == -1)
		return false;
	if (c->rs == RS_CONNECT && c->up_hs) {
		/* TLS with the upstream: one step whenever the socket moved the way it waited */
		if (c->ussl_want_write ? !c->up_writable : !c->up_readable)
			return false;
		ERR_clear_error();
		int r = SSL_connect(c->ussl);
		if (r == 1) {
			c->up_hs = false;
			c->rs = RS_HEAD;
			c->up_readable = true;
			return true;
		}
		int se = SSL_get_error(c->ussl, r);
		if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
			c->ussl_want_write = se == SSL_ERROR_WANT_WRITE;
			c->up_readable = c->up_writable = false;
			return false;
		}
		long vr = SSL_get_verify_result(c->ussl);
		unsigned long ee = ERR_peek_error();
		log_warn("gate: upstream %s: TLS handshake failed: %s", c->srv->cfg->upstream_text,
			 vr != X509_V_OK ? X509_verify_cert_error_string(vr) :
			 ee ? ERR_reason_error_string(ee) : "connection closed");
		up_close(c);
		c->reason = "upstream_tls";
		c->allowed = false;
		c->would_refuse = false;
		plain_error(c, 502, "api_error", "The upstream API server's TLS certificate or "
			    "handshake was refused.");
		if (c->rq == RQ_BODY) {
			c->discard = true;
			c->keep_alive = false;
		}
		return true;
	}
	if (c->rs == RS_CONNECT) {
		if (!c->up_writable)
			return false;
		int e = sock_error(c->uio.fd);
		if (e) {
			log_warn("gate: upstream %s: %s", c->srv->cfg->upstream_text, strerror(e < 0 ? -e : e));
			up_close(c);
			c->reason = "upstream_unreachable";
			c->allowed = false;
			c->would_refuse = false;
			plain_error(c, 502, "api_error", "The upstream API server is unreachable.");
			if (c->rq == RQ_BODY) {
				c->discard = true;
				c->keep_alive = false;
			}
			return true;
		}
		if (c->ussl) {
			c->up_hs = true;        /* the handshake runs on the next steps */
			c->up_readable = true;
			return true;
		}
		c->rs = RS_HEAD;
		progress = true;
	}
	if (c->rs < RS_HEAD)
		return progress;
	while (buf_pending(c->uout)) {
		long n = u_write(c, c->uout->data + c->uout->off, buf_pending(c->uout));
		if (n == -EAGAIN)
			return progress;
		if (n < 0 && c->x.up_reused && !c->x.req_body) {
			c->up_eof = true; /* step_upstream_in retries on a new connection */
			return true;
		}
		if (n < 0) {
			c->closing = true;
			return true;
		}
		c->uout->off += (size_t)n;
		progress = true;
	}
	/* the head is kept until the response starts: a retry may need it */
	if (!c->x.up_reused || c->x.req_body)
		release_if_empty(&c->uout, NULL);
	if (c->cin && !c->discard && (sent = send_all(c, true, c->cin->data, &c->cin->off, c->cfed,
							&progress)))
		return sent > 0 ? progress : true;
	return progress;
}

/* Writes the response head for the client into cout, from the upstream head in uin. */
static int relay_response_head(struct gconn *c)
{
	if (!ensure_buf(&c->cout))
		return -ENOMEM;
	/* the same hop-by-hop rule as on the way in (and as the proxy's) */
	return http_exchange_client_head(&c->x, c->uin->data + c->uin->off, c->cout, !c->keep_alive,
					 c->would_refuse ? GATE_WOULD_REFUSE_HEADER : NULL, NULL, NULL);
}

static bool step_upstream_in(struct gconn *c)
{
	bool progress = false;

	if (c->uio.fd == -1)
		return false;
	if (c->rs == RS_IDLE) {
		/* an idle kept-alive upstream connection: any byte or EOF ends it */
		char tmp[64];
		if (!c->up_readable)
			return false;
		long n = u_read(c, tmp, sizeof(tmp));
		if (n != -EAGAIN) {
			up_close(c);
			return true;
		}
		c->up_readable = false;
		return false;
	}
	if (c->rs != RS_HEAD && c->rs != RS_BODY)
		return false;
	if (!c->up_eof) {
		if (!ensure_buf(&c->uin)) {
			c->closing = true;
			return true;
		}
		if (!buf_room(c->uin))
			compact(c->uin, &c->ufed);
		if (buf_room(c->uin) && c->up_readable) {
			size_t want = buf_room(c->uin);
			long n = u_read(c, c->uin->data + c->uin->len, want);
			if (n > 0) {
				c->uin->len += (size_t)n;
				/* drained: epoll says when more comes (TLS may hold more: read again) */
				if ((size_t)n < want && !c->ussl)
					c->up_readable = false;
				progress = true;
			} else if (n == 0 || n != -EAGAIN) {
				c->up_eof = true;
				progress = true;
			} else {
				c->up_readable = false;
			}
		}
	}
	if (c->rs == RS_HEAD) {
		if (!buf_pending(c->uin)) {
			if (c->up_eof)
				goto bad_gateway;
			return progress;
		}
		if (buf_pending(c->cout))
			return progress; /* a 1xx head is still being sent */
		compact(c->uin, &c->ufed);
		enum http_xhead r = http_exchange_head(&c->x, c->uin->data, c->uin->len);
		if (r == HTTP_XHEAD_MORE) {
			if (c->up_eof || !buf_room(c->uin))
				goto bad_gateway;
			return progress;
		}
		if (r == HTTP_XHEAD_ERROR)
			goto bad_gateway; /* malformed, or 101: Upgrade was stripped */
		if (r == HTTP_XHEAD_FINAL) {
			if (c->x.body == HTTP_XBODY_UNTIL_CLOSE)
				c->keep_alive = false; /* the client learns the end by the close */
			if (!c->x.up_keep)
				c->up_reuse = false;
		}
		if (relay_response_head(c)) {
			c->closing = true;
			return true;
		}
		c->uin->off += c->x.resp.head_len;
		c->ufed = c->uin->off;
		if (c->uout && !buf_pending(c->uout)) {
			buf_put(c->uout);
			c->uout = NULL;
		}
		if (r == HTTP_XHEAD_INTERIM) {
			http_exchange_next(&c->x);
			return true;
		}
		c->status = c->x.status;
		if (c->x.body == HTTP_XBODY_NONE) {
			c->rs = RS_DONE;
			/* bytes after a bodiless response are not ours: drop the connection later */
			if (buf_pending(c->uin)) {
				http_exchange_extra(&c->x);
				c->up_reuse = false;
				c->uin->len = c->uin->off;
			}
			return true;
		}
		c->rs = RS_BODY;
		progress = true;
	}
	if (c->rs == RS_BODY) {
		if (c->uin && c->ufed < c->uin->len) {
			size_t used = 0;
			enum http_parse_result r = http_exchange_body(&c->x, c->uin->data + c->ufed,
								      c->uin->len - c->ufed, &used);
			c->ufed += used;
			progress = progress || used > 0;
			if (r == HTTP_ERROR) {
				c->closing = true;
				return true;
			}
			if (r == HTTP_DONE) {
				c->rs = RS_DONE;
				if (c->ufed < c->uin->len) {
					http_exchange_extra(&c->x);
					c->up_reuse = false;
					c->uin->len = c->ufed;
				}
				return true;
			}
		}
		if (c->up_eof && c->rs == RS_BODY) {
			/* until close: this is the end; framed and cut short: the client must not
			 * take it as complete */
			if (http_exchange_eof(&c->x) != HTTP_DONE) {
				c->closing = true;
				return true;
			}
			c->rs = RS_DONE;
			progress = true;
		}
	}
	return progress;

bad_gateway:
	up_close(c);
	if (c->uout && !c->status && !buf_pending(c->cout) &&
	    http_exchange_redial(&c->x, c->uin ? c->uin->len : 0)) {
		/* a kept-alive upstream connection closed as we reused it: the request (no body)
		 * never reached the application, so it is sent once more on a new connection */
		c->uout->off = 0;
		http_exchange_next(&c->x);
		if (upstream_connect(c) == 0) {
			c->rs = RS_CONNECT;
			return true;
		}
	}
	if (c->status || buf_pending(c->cout)) {
		c->closing = true;
		return true;
	}
	c->reason = "upstream_bad_response";
	c->allowed = false;
	c->would_refuse = false;
	plain_error(c, 502, "api_error", "The upstream API server sent an invalid response.");
	if (c->rq == RQ_BODY)
		c->discard = true;
	if (c->uin)
		c->uin->off = c->uin->len = c->ufed = 0;
	return true;
}

static bool step_client_out(struct gconn *c)
{
	bool progress = false;
	int r;

	if (c->cio.fd == -1 || c->rq == RQ_PROXY_HDR || c->rq == RQ_TLS)
		return false;
	/* plain sockets: response head and the body bytes behind it in one writev */
	while (!stream_is_tls(&c->cs) && buf_pending(c->cout) && c->uin &&
	       (c->rs == RS_BODY || c->rs == RS_DONE) && c->ufed > c->uin->off) {
		struct iovec iov[2] = {
			{ c->cout->data + c->cout->off, buf_pending(c->cout) },
			{ c->uin->data + c->uin->off, c->ufed - c->uin->off },
		};
		ssize_t n = writev(c->cio.fd, iov, 2);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return progress;
		if (n < 0) {
			c->closing = true;
			return true;
		}
		size_t head = buf_pending(c->cout) < (size_t)n ? buf_pending(c->cout) : (size_t)n;
		c->cout->off += head;
		c->uin->off += (size_t)n - head;
		progress = true;
	}
	if (c->cout && (r = send_all(c, false, c->cout->data, &c->cout->off, c->cout->len, &progress)))
		return r > 0 ? progress : true;
	release_if_empty(&c->cout, NULL);
	if (c->uin && (c->rs == RS_BODY || c->rs == RS_DONE) &&
	    (r = send_all(c, false, c->uin->data, &c->uin->off, c->ufed, &progress)))
		return r > 0 ? progress : true;
	if (c->uin && c->uin->off == c->uin->len)
		release_if_empty(&c->uin, &c->ufed);
	return progress;
}

/* When both sides of an exchange are done: log it, then serve the next request or close. */
static bool step_finish(struct gconn *c)
{
	bool resp_done = ((c->rs == RS_LOCAL) ||
			  (c->rs == RS_DONE && (!c->uin || c->uin->off == c->ufed))) &&
			 !buf_pending(c->cout);

	if (!resp_done)
		return false;
	if (c->rq == RQ_BODY && !c->discard) {
		/* upstream answered before the body was sent: the connection cannot be reused */
		access_log(c);
		c->closing = true;
		return true;
	}
	if (c->rq != RQ_DONE)
		return false;
	access_log(c);
	if (!c->keep_alive || c->x.body == HTTP_XBODY_UNTIL_CLOSE || c->w->draining) {
		c->closing = true;
		return true;
	}
	if (c->uio.fd != -1 && !c->up_reuse)
		up_close(c);
	if (c->uin) {
		buf_put(c->uin);
		c->uin = NULL;
	}
	c->ufed = 0;
	c->rs = RS_IDLE;
	c->rq = RQ_HEAD;
	c->x.body = HTTP_XBODY_NONE;
	c->discard = false;
	c->method[0] = '\0';
	http_head_init(&c->req, HTTP_REQUEST, HTTP_HEADERS_CAP);
	if (c->cin) {
		c->cfed = c->cin->off;
		release_if_empty(&c->cin, &c->cfed);
	}
	return true;
}

/* Idle timeout, or less while a request head is arriving: a client that trickles a head
 * byte by byte (slowloris) is cut off header_timeout after its first byte. */
static void arm_timer(struct gconn *c)
{
	struct loop *loop = c->w->loop;
	const struct gate_config *cfg = c->srv->cfg;
	uint64_t after = (uint64_t)cfg->idle_timeout_s * 1000, now = loop_now(loop);
	bool in_head = (c->rq == RQ_HEAD && c->rs == RS_IDLE && buf_pending(c->cin)) ||
		       c->rq == RQ_PROXY_HDR || c->rq == RQ_TLS;

	if (!in_head) {
		c->head_start_ms = 0;
	} else {
		if (!c->head_start_ms)
			c->head_start_ms = now;
		uint64_t end = c->head_start_ms + (uint64_t)cfg->header_timeout_s * 1000;
		uint64_t left = end > now ? end - now : 0;
		if (left < after)
			after = left;
	}
	/* Re-arming the heap timer on every pump cost more than the rest of the bookkeeping:
	 * an armed timer that fires no later than needed stays, and timer_fired() sleeps
	 * again until deadline_ms when activity moved it. */
	c->deadline_ms = now + after;
	if (!timer_active(&c->timer) || c->timer.deadline_ms > c->deadline_ms)
		timer_start(loop, &c->timer, after);
}

static void pump(struct gconn *c)
{
	for (int round = 0; round < 64 && !c->closing; round++) {
		bool p = false;
		p |= step_client_in(c);
		if (c->closing)
			break;
		p |= step_request(c);
		p |= step_upstream_out(c);
		p |= step_upstream_in(c);
		p |= step_client_out(c);
		if (c->closing)
			break;
		p |= step_finish(c);
		if (!p)
			break;
	}
	if (c->closing && c->status == 504 && !buf_pending(c->cout) && c->cio.fd != -1 &&
	    !c->logged) {
		/* upstream timeout with nothing sent yet: one best-effort answer */
		c->closing = false;
		c->reason = "upstream_timeout";
		c->allowed = false;
		c->would_refuse = false;
		plain_error(c, 504, "api_error", "The upstream API server did not answer in time.");
		step_client_out(c);
		c->closing = true;
	}
	if (c->closing) {
		conn_close(c);
		return;
	}
	update_interest(c);
	arm_timer(c);
}

static void client_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct gconn *c = container_of(io, struct gconn, cio);

	(void)loop;
	if (c->closing == 2)
		return;
	/* HUP/ERR on a TCP socket we never shut down means a reset: whatever it held is gone,
	 * and epoll reports it even when we are not reading, so it must end the connection */
	if (revents & (EPOLLERR | EPOLLHUP))
		c->closing = true;
	if (revents & EPOLLIN)
		c->c_readable = true;
	pump(c);
}

static void upstream_cb(struct loop *loop, struct io *io, uint32_t revents)
{
	struct gconn *c = container_of(io, struct gconn, uio);

	(void)loop;
	if (c->closing == 2)
		return;
	if (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		c->up_writable = true;
	if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
		c->up_readable = true;
	if ((revents & (EPOLLERR | EPOLLHUP)) && c->rs != RS_CONNECT) {
		/* reset by the upstream (reported even when not polled for): nothing more will
		 * come from it; an idle or finished connection is simply dropped */
		if (c->rs == RS_IDLE || c->rs == RS_DONE || c->rs == RS_LOCAL) {
			up_close(c);
			c->up_reuse = false;
		} else {
			c->up_eof = true;
		}
	}
	pump(c);
}

/* A new client on one of the listeners (net/server accepts; tag is its gate_listen). */
static void gate_accept(void *wstate, void *tag, int fd, const struct sockaddr_storage *peer)
{
	struct gate_worker *w = wstate;
	struct gate_server *s = w->srv;
	const struct gate_listen *lcfg = tag;
	const struct sockaddr_storage *ss = peer;
	struct gconn *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	if (stream_init(&c->cs, fd, lcfg->tls ? s->ssl : NULL)) {
		close(fd);
		free(c);
		return;
	}
	c->srv = s;
	c->w = w;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	c->lcfg = lcfg;
	c->id = __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED);
	io_init(&c->cio, fd, client_cb);
	c->c_readable = true;
	io_init(&c->uio, -1, upstream_cb);
	timer_init(&c->timer, timer_fired);
	ipaddr_from_sockaddr((const struct sockaddr *)ss, &c->peer);
	if (!c->peer.family || ipaddr_format(&c->peer, c->peer_txt, sizeof(c->peer_txt)))
		c->peer_txt[0] = '\0';
	c->peer_port = ntohs(ss->ss_family == AF_INET6 ?
			     ((const struct sockaddr_in6 *)ss)->sin6_port :
			     ((const struct sockaddr_in *)ss)->sin_port);
	http_head_init(&c->req, HTTP_REQUEST, HTTP_HEADERS_CAP);
	c->rq = lcfg->pp != PP_OFF ? RQ_PROXY_HDR : lcfg->tls ? RQ_TLS : RQ_HEAD;
	update_interest(c);
	arm_timer(c);
}

static int open_access_log(const struct gate_config *cfg)
{
	if (!strcmp(cfg->access_log, "-"))
		return dup(STDOUT_FILENO);
	return open(cfg->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

static bool listen_same(const struct gate_listen *a, const struct gate_listen *b)
{
	return a->addrlen == b->addrlen && !memcmp(&a->addr, &b->addr, a->addrlen) && a->tls == b->tls &&
	       a->pp == b->pp;
}

/* SIGHUP does not rebind: say so when the file's listen set no longer matches the sockets. */
static void reload_check_listeners(const struct gate_config *cur)
{
	struct gate_config *next = malloc(sizeof(*next));
	char err[512];
	bool same;

	if (!next)
		return;
	if (gate_config_load(cur->path, next, err, sizeof(err))) {
		log_warn("gate: SIGHUP: %s (not applied; the running configuration and listeners stay)", err);
		goto out;
	}
	same = next->n_listen == cur->n_listen;
	for (int i = 0; same && i < cur->n_listen; i++) {
		bool found = false;
		for (int k = 0; k < next->n_listen && !found; k++)
			found = listen_same(&cur->listen[i], &next->listen[k]);
		same = found;
	}
	if (!same)
		log_warn("gate: SIGHUP: the listen lines in %s changed; listener changes need a restart, "
			 "the old listeners keep serving", cur->path);
out:
	gate_config_free(next);
	free(next);
}

/* SIGHUP (net/server's main thread): reopen the access log (after logrotate moved it); keys
 * need no reload; listener changes are reported, not applied. */
static void gate_reload(void *arg)
{
	struct gate_server *s = arg;

	reload_check_listeners(s->cfg);
	if (s->log_fd >= 0) {
		int fd = open_access_log(s->cfg);
		if (fd < 0) {
			log_warn("gate: reopen access log %s: %s", s->cfg->access_log, strerror(errno));
			return;
		}
		dup3(fd, s->log_fd, O_CLOEXEC);
		close(fd);
		log_info("gate: access log reopened");
	}
}

/* SIGTERM/SIGINT: the listeners close, requests in flight may finish for drain_timeout (a
 * second signal closes everything now; net/server counts the signals). */
static unsigned gate_stop(void *arg, int sig)
{
	struct gate_server *s = arg;
	unsigned ms = s->cfg->drain_timeout_ms;

	if (ms)
		log_info("gate: signal %d: draining (requests in flight may finish for %u.%03u s; "
			 "a second signal stops now)", sig, ms / 1000, ms % 1000);
	return ms;
}

/* No request under way: nothing read of a next one, no response pending. */
static bool conn_idle(const struct gconn *c)
{
	return c->rs == RS_IDLE && !buf_pending(c->cout) &&
	       ((c->rq == RQ_HEAD && !buf_pending(c->cin)) || c->rq == RQ_PROXY_HDR || c->rq == RQ_TLS);
}

/* Drain begins (the worker's thread, listeners closed): idle keep-alive clients are closed;
 * the others are closed by step_finish once their response is out. */
static void gate_drain(void *wstate)
{
	struct gate_worker *w = wstate;

	w->draining = true;
	for (struct gconn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (!c->closing && conn_idle(c))
			conn_close(c);
	}
}

static bool gate_busy(void *wstate)
{
	const struct gate_worker *w = wstate;

	for (const struct gconn *c = w->conns; c; c = c->next)
		if (c->closing != 2)
			return true;
	return false;
}

static void gate_drain_expired(void *wstate)
{
	struct gate_worker *w = wstate;
	unsigned n = 0;

	for (const struct gconn *c = w->conns; c; c = c->next)
		n += c->closing != 2;
	log_warn("gate: worker %d: drain_timeout reached, closing %u connection%s", w->index, n,
		 n == 1 ? "" : "s");
}

/* ---- server ---- */

static int gate_worker_init(void *arg, unsigned id, struct loop *loop, void **wstate)
{
	struct gate_server *s = arg;
	struct gate_worker *w = &s->workers[id];
	int rc;

	w->srv = s;
	w->index = (int)id;
	w->loop = loop;
	const struct gate_config *cfg = s->cfg;
	char shown[512];
	if ((rc = keycache_open_opts(cfg->db, &(struct keycache_opts){
			.resync_ms = cfg->resync_ms, .max_staleness_s = cfg->max_staleness_s }, &w->kc))) {
		store_target_display(cfg->db, shown, sizeof(shown));
		snprintf(s->init_err, sizeof(s->init_err), "key store %s: %s", shown, store_errmsg(NULL));
		return rc;
	}
	if (cfg->usage && (rc = gate_usage_new(cfg->db, cfg->usage_flush_ms, &w->usage))) {
		store_target_display(cfg->db, shown, sizeof(shown));
		snprintf(s->init_err, sizeof(s->init_err), "key usage store %s: %s", shown,
			 store_errmsg(NULL));
		keycache_free(w->kc);
		w->kc = NULL;
		return rc;
	}
	*wstate = w;
	return 0;
}

/* After the loop (worker thread) or a failed start: every connection and the key cache. */
static void gate_teardown(void *wstate)
{
	struct gate_worker *w = wstate;

	while (w->conns) {
		struct gconn *c = w->conns;
		conn_unlink(c);
		timer_stop(w->loop, &c->timer);
		io_close(w->loop, &c->cio);
		up_close(c);
		if (c->closing != 2)
			conn_free(&c->dfr); /* queued ones are freed by the loop's deferred list */
	}
	loop_run_deferred(w->loop);
	keycache_free(w->kc);
	w->kc = NULL;
	gate_usage_free(w->usage); /* flushes what is left */
	w->usage = NULL;
	buf_pool_trim(); /* this thread's pooled buffers die with it */
}

static const struct server_ops gate_ops = {
	.worker_init = gate_worker_init, .accept = gate_accept, .teardown = gate_teardown,
	.reload = gate_reload, .stop = gate_stop, .drain = gate_drain, .busy = gate_busy,
	.drain_expired = gate_drain_expired,
};

int gate_server_new(const struct gate_config *cfg, struct gate_server **out, char *err,
		    size_t cap)
{
	struct gate_server *s = calloc(1, sizeof(*s));
	int rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->cfg = cfg;
	s->log_fd = -1;
	s->n_workers = cfg->workers ? (int)cfg->workers : 1;
	s->workers = calloc((size_t)s->n_workers, sizeof(*s->workers));
	if (!s->workers) {
		rc = -ENOMEM;
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	if (cfg->access_log[0]) {
		s->log_fd = open_access_log(cfg);
		if (s->log_fd < 0) {
			rc = -errno;
			snprintf(err, cap, "access log %s: %s", cfg->access_log, strerror(errno));
			goto fail;
		}
	}
	bool need_tls = false;
	for (int i = 0; i < cfg->n_listen; i++)
		need_tls |= cfg->listen[i].tls;
	if (need_tls) {
		/* net/tls: the hardening every listener of iplock has (TLS 1.2 minimum, no
		 * renegotiation, one ticket, partial writes from a moved buffer) */
		char terr[400];
		if (!(s->ssl = tls_server_ctx(cfg->tls_cert, cfg->tls_key, terr, sizeof(terr)))) {
			snprintf(err, cap, "TLS: %s", terr);
			rc = -EINVAL;
			goto fail;
		}
	}
	if (cfg->upstream_tls && cfg->mode != GATE_MODE_AUTH) {
		/* https:// upstream: TLS 1.2+, the chain verified against upstream_ca (or the
		 * system store) and the name checked per connection */
		s->up_ssl = SSL_CTX_new(TLS_client_method());
		if (!s->up_ssl || !SSL_CTX_set_min_proto_version(s->up_ssl, TLS1_2_VERSION) ||
		    (cfg->upstream_ca[0] ?
		     SSL_CTX_load_verify_locations(s->up_ssl, cfg->upstream_ca, NULL) != 1 :
		     SSL_CTX_set_default_verify_paths(s->up_ssl) != 1)) {
			unsigned long e = ERR_get_error();
			snprintf(err, cap, "upstream TLS (%s): %s",
				 cfg->upstream_ca[0] ? cfg->upstream_ca : "system trust store",
				 e ? ERR_reason_error_string(e) : "cannot set up");
			rc = -EINVAL;
			goto fail;
		}
		SSL_CTX_set_verify(s->up_ssl, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_mode(s->up_ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
				 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	}
	/* several workers bind with SO_REUSEPORT, which would join another process's listener
	 * on the same address: net/server probes first, without it, so a second gate refuses to
	 * start. Signals are blocked before any thread starts and taken by gate_server_run. */
	struct server_config scfg = { .ops = &gate_ops, .arg = s, .nworkers = (unsigned)s->n_workers,
				      .reuseport = s->n_workers > 1 };
	struct server_listen sl[GATE_MAX_LISTEN];
	size_t bad;
	if ((rc = server_new(&scfg, &s->rt))) {
		snprintf(err, cap, "out of memory");
		goto fail;
	}
	for (int i = 0; i < cfg->n_listen; i++) {
		const struct gate_listen *gl = &cfg->listen[i];
		sl[i] = (struct server_listen){ .len = gl->addrlen, .backlog = 1024, .what = "gate listener",
						.tag = (void *)gl };
		memcpy(&sl[i].addr, &gl->addr, gl->addrlen);
	}
	if ((rc = server_start(s->rt, sl, (size_t)cfg->n_listen, NULL, &bad))) {
		if (bad < (size_t)cfg->n_listen)
			snprintf(err, cap, "listen %s: %s%s", cfg->listen[bad].text, strerror(-rc),
				 rc == -EADDRINUSE && s->n_workers > 1 ? " (another process listens there)" : "");
		else if (s->init_err[0])
			snprintf(err, cap, "%s", s->init_err);
		else
			snprintf(err, cap, "event loop: %s", strerror(-rc));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	gate_server_free(s);
	return rc ? rc : -EINVAL;
}

int gate_server_run(struct gate_server *s)
{
	const struct gate_config *cfg = s->cfg;

	for (int i = 0; i < cfg->n_listen; i++)
		log_info("gate: listening on %s%s%s (%s, %d worker%s)", cfg->listen[i].text,
			 cfg->listen[i].tls ? " tls" : "",
			 cfg->listen[i].pp == PP_V1 ? " proxy_protocol=v1" :
			 cfg->listen[i].pp == PP_V2 ? " proxy_protocol=v2" : "",
			 cfg->mode == GATE_MODE_AUTH ? "forward-auth" :
			 cfg->mode == GATE_MODE_BOTH ? "reverse-proxy + forward-auth" :
			 "reverse-proxy", s->n_workers, s->n_workers == 1 ? "" : "s");
	char shown[512];
	store_target_display(cfg->db, shown, sizeof(shown));
	log_info("gate: %zu keys loaded from %s", keycache_count(s->workers[0].kc), shown);
	return server_run(s->rt);
}

void gate_server_free(struct gate_server *s)
{
	if (!s)
		return;
	server_free(s->rt);   /* tears down workers that never ran */
	for (int i = 0; i < s->n_workers && s->workers; i++)
		keycache_free(s->workers[i].kc);   /* one whose init failed half-way */
	free(s->workers);
	if (s->log_fd >= 0)
		close(s->log_fd);
	if (s->ssl)
		SSL_CTX_free(s->ssl);
	if (s->up_ssl)
		SSL_CTX_free(s->up_ssl);
	free(s);
}
